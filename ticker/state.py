"""Match state as a pure fold of the live events: score, phase, minute. No I/O."""

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


def initial_state() -> dict[str, Any]:
    return {"score": {"home": 0, "away": 0}, "phase": "pre_match", "minute": 0, "added": 0}


def fold(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """State after the given live events, in log order.

    Goals scored during a penalty shootout are not added to the score: the shootout
    is told by its events, the score stays the result after play.
    """
    home = away = 0
    phase = "pre_match"
    minute = added = 0
    for event in events:
        kind = event["type"]
        if kind in PHASE_OF:
            phase = PHASE_OF[kind]
        elif kind == "goal" and phase != "penalties":
            if event.get("team") == "home":
                home += 1
            else:
                away += 1
        minute, added = event["minute"], event["added"]
    return {"score": {"home": home, "away": away}, "phase": phase, "minute": minute, "added": added}


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
