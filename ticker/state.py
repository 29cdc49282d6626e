"""Match state as a pure fold of the live events: score, phase, minute, stats, cards. No I/O."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

# Event type -> the phase it starts.
PHASE_OF = {
    "kickoff": "first_half",
    "half_time": "half_time",
    "second_half": "second_half",
    "extra_time": "extra_time",
    "penalty_shootout": "penalties",
    "full_time": "full_time",
}
IN_PLAY = frozenset({"first_half", "half_time", "second_half", "extra_time", "penalties"})
# Running period -> (minute the period starts after, its regular last minute).
PERIODS = {"first_half": (0, 45), "second_half": (45, 90), "extra_time": (90, 120)}
PERIOD_START = {"kickoff": "first_half", "second_half": "second_half", "extra_time": "extra_time"}

SIDES = ("home", "away")
OTHER = {"home": "away", "away": "home"}
STAT_KEYS = (
    "shots",
    "shots_on_target",
    "corners",
    "fouls",
    "offsides",
    "yellow_cards",
    "red_cards",
    "substitutions",
)
# Event types counted once for their own team.
_COUNTED = {
    "corner": "corners",
    "foul": "fouls",
    "offside": "offsides",
    "substitution": "substitutions",
}
# The keys protocol v1.1 added to `state`; a stored state without them is from a v1 log.
V11_KEYS = frozenset({"stats", "sent_off", "scorers", "penalties"})


def _player(event: dict[str, Any]) -> str | None:
    """The event's player as written, or None when missing or blank."""
    player = event.get("player")
    return player if isinstance(player, str) and player.strip() else None


class Tally:
    """The fold's running value: the state, plus the live yellows per player it needs.

    `fold` is `step` over the events in log order from a new Tally, so a log that only
    grows (an `add`) can step its Tally instead of folding again, with the same result.
    """

    def __init__(self) -> None:
        self.score = {"home": 0, "away": 0}
        self.phase = "pre_match"
        self.minute = self.added = 0
        self.stats = {side: dict.fromkeys(STAT_KEYS, 0) for side in SIDES}
        self.sent_off: list[dict[str, Any]] = []
        self.scorers: list[dict[str, Any]] = []
        self.penalties: dict[str, int] | None = None  # set by a penalty_shootout event
        self.yellows: dict[tuple[str, str], int] = {}  # (team, casefolded name) -> yellows
        self.off: set[tuple[str, str]] = set()  # named players sent off

    def copy(self) -> Tally:
        """An independent Tally (entries of sent_off and scorers are shared: never changed)."""
        other = Tally.__new__(Tally)
        other.__dict__.update(self.__dict__)
        other.score = dict(self.score)
        other.stats = {side: dict(self.stats[side]) for side in SIDES}
        other.sent_off = list(self.sent_off)
        other.scorers = list(self.scorers)
        other.penalties = None if self.penalties is None else dict(self.penalties)
        other.yellows = dict(self.yellows)
        other.off = set(self.off)
        return other

    def step(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        self.minute, self.added = event["minute"], event["added"]
        if kind in PHASE_OF:
            self.phase = PHASE_OF[kind]
            if kind == "penalty_shootout" and self.penalties is None:
                self.penalties = {"home": 0, "away": 0}
            return
        team = event.get("team")
        if team not in OTHER:
            return  # only hand-made logs lack it: the API requires a team for these types
        shootout = self.penalties is not None
        if kind in ("yellow_card", "red_card"):
            self._card(kind, team, _player(event), counted=not shootout)
        elif kind == "goal" and shootout:
            self.penalties[team] += 1  # type: ignore[index]
        elif shootout:
            return  # events logged after the shootout began count in no stats
        elif kind == "goal":
            self.score[team] += 1
            own_goal = event.get("detail") == "own_goal"
            if not own_goal:
                self._shot(team, on_target=True)
            self.scorers.append(
                {
                    "team": team,
                    "player": _player(event),
                    "minute": event["minute"],
                    "added": event["added"],
                    "own_goal": own_goal,
                }
            )
        elif kind == "save":
            self._shot(OTHER[team], on_target=True)  # `team` is the keeper's side
        elif kind == "miss":
            self._shot(team, on_target=False)
        elif kind in _COUNTED:
            self.stats[team][_COUNTED[kind]] += 1

    def _shot(self, team: str, on_target: bool) -> None:
        self.stats[team]["shots"] += 1
        self.stats[team]["shots_on_target"] += on_target

    def _card(self, kind: str, team: str, player: str | None, counted: bool) -> None:
        """A card: cards shown after the shootout began send off but count in no stats."""
        stats = self.stats[team]
        if kind == "yellow_card":
            stats["yellow_cards"] += counted
        key = (team, player.strip().casefold()) if player is not None else None
        if key is not None and key in self.off:
            return  # already sent off: a red after the second yellow is the same sending-off
        if kind == "yellow_card":
            if key is None:
                return  # a yellow for nobody named can never be someone's second
            self.yellows[key] = self.yellows.get(key, 0) + 1
            if self.yellows[key] < 2:
                return
        if key is not None:
            self.off.add(key)
        self.sent_off.append({"team": team, "player": player})
        stats["red_cards"] += counted

    def state(self) -> dict[str, Any]:
        """The state as clients see it: fresh containers (entries are never changed)."""
        return {
            "score": dict(self.score),
            "phase": self.phase,
            "minute": self.minute,
            "added": self.added,
            "stats": {side: dict(self.stats[side]) for side in SIDES},
            "sent_off": list(self.sent_off),
            "scorers": list(self.scorers),
            "penalties": None if self.penalties is None else dict(self.penalties),
        }


def tally(events: Iterable[dict[str, Any]]) -> Tally:
    result = Tally()
    for event in events:
        result.step(event)
    return result


def initial_state() -> dict[str, Any]:
    return Tally().state()


def fold(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """State after the given live events, in log order.

    Goals logged after a penalty_shootout event are not added to the score, the
    scorers or the stats: they count in `penalties`, and the score stays the result
    after play.
    """
    return tally(events).state()


def parse_at(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()


def clock(events: Iterable[dict[str, Any]], state: dict[str, Any], now: float) -> tuple[int, int]:
    """The match clock at wall time `now`: the minute a reporter would write for a new event.

    A running period counts from the `at` of the event that started it: 0:00-0:59 after
    kick-off is minute 1, and past the period's regular end the extra minutes go to `added`
    ("45+2"). An event of the period logged with a minute ahead of that count moves the
    start back to match it (the kick-off was entered late): the reporters' minutes win.
    Outside a running period the clock stands at the last event's minute.
    """
    phase = state["phase"]
    if phase not in PERIODS:
        return state["minute"], state["added"]
    base, end = PERIODS[phase]
    start: float | None = None
    for event in events:
        if PERIOD_START.get(event["type"]) == phase:
            start = parse_at(event["at"])
        elif start is not None:
            played = event["minute"] + event["added"] - base - 1
            start = min(start, parse_at(event["at"]) - max(0, played) * 60)
    if start is None:
        return state["minute"], state["added"]
    elapsed = max(0.0, now - start)
    minute = base + int(elapsed // 60) + 1
    if minute <= end:
        return minute, 0
    return end, min(30, minute - end)
