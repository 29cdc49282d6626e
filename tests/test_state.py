"""The state fold (ticker/state.py) and MatchLog's op builders (ticker/log.py), without I/O.

The property tests drive a MatchLog with random reporter actions (adds, corrections,
retractions, match changes, a wall clock that may jump back) and check the invariants the
engines and clients rely on against a small bookkeeping model kept apart from MatchLog.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticker.errors import Invalid, NotFound
from ticker.log import MatchLog, iso_ms
from ticker.model import EVENT_TYPES, TEAM_REQUIRED, Op, seq_key
from ticker.state import clock, fold, initial_state

T0 = 1_764_100_000.0  # 2025-11-25T19:46:40Z
MATCH = {
    "id": "fck-ssc",
    "home": {"name": "FC København", "short": "FCK"},
    "away": {"name": "SSC Napoli", "short": "NAP"},
}
NO_STATS = {
    "shots": 0,
    "shots_on_target": 0,
    "corners": 0,
    "fouls": 0,
    "offsides": 0,
    "yellow_cards": 0,
    "red_cards": 0,
    "substitutions": 0,
}
V1_KEYS = ("score", "phase", "minute", "added")
PROPS = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def new_log(now: float = T0) -> MatchLog:
    mlog = MatchLog(MATCH["id"])
    assert mlog.apply(mlog.build_match(MATCH, now=now))
    return mlog


def post(mlog: MatchLog, now: float, **fields: Any) -> Op:
    op = mlog.build_add(fields, "jens", now=now)
    assert mlog.apply(op)
    return op


def ev(kind: str, minute: int = 0, added: int = 0, **more: Any) -> dict[str, Any]:
    return {"type": kind, "minute": minute, "added": added, **more}


def view(mlog: MatchLog) -> tuple[Any, ...]:
    """Everything a client can see of a log."""
    return (
        mlog.head,
        [op.seq for op in mlog.ops],
        mlog.state,
        list(mlog.events.items()),
        mlog.match,
        mlog.snapshot().json,
        mlog.snapshot(reset=True).json,
    )


# The fold


def test_empty_log_is_pre_match_nil_nil() -> None:
    assert fold([]) == initial_state()
    assert initial_state() == {
        "score": {"home": 0, "away": 0},
        "phase": "pre_match",
        "minute": 0,
        "added": 0,
        "stats": {"home": NO_STATS, "away": NO_STATS},
        "sent_off": [],
        "scorers": [],
        "penalties": None,
    }


def test_goals_count_for_the_team_given() -> None:
    state = fold(
        [
            ev("kickoff"),
            ev("goal", 13, team="away"),
            ev("goal", 30, team="home"),
            ev("goal", 44, team="away"),
        ]
    )
    assert state["score"] == {"home": 1, "away": 2}
    assert state["phase"] == "first_half"


def test_own_goal_is_credited_to_the_side_given() -> None:
    # PROTOCOL: for a goal `team` is the team credited; an own goal by a home player
    # is sent as team "away", detail "own_goal".
    mlog = new_log()
    post(mlog, T0, type="kickoff")
    op = post(mlog, T0 + 600, type="goal", team="away", detail="own_goal", player="Kristensen")
    assert op.data["state"]["score"] == {"home": 0, "away": 1}
    assert op.data["event"]["detail"] == "own_goal"


def test_goals_in_a_penalty_shootout_do_not_change_the_score() -> None:
    events = [
        ev("kickoff"),
        ev("goal", 20, team="home"),
        ev("second_half", 46),
        ev("goal", 80, team="away"),
        ev("extra_time", 91),
        ev("penalty_shootout", 120),
        ev("goal", 120, team="home", detail="penalty"),
        ev("goal", 120, team="away", detail="penalty"),
        ev("goal", 120, team="home", detail="penalty"),
    ]
    state = fold(events)
    assert state["phase"] == "penalties"
    assert state["score"] == {"home": 1, "away": 1}
    assert fold([*events, ev("full_time", 120)])["score"] == {"home": 1, "away": 1}


@pytest.mark.parametrize(
    ("kind", "phase"),
    [
        ("kickoff", "first_half"),
        ("half_time", "half_time"),
        ("second_half", "second_half"),
        ("extra_time", "extra_time"),
        ("penalty_shootout", "penalties"),
        ("full_time", "full_time"),
    ],
)
def test_phase_events_set_the_phase(kind: str, phase: str) -> None:
    assert fold([ev("kickoff"), ev(kind, 50)])["phase"] == phase


@pytest.mark.parametrize(
    "kind",
    sorted(
        EVENT_TYPES
        - {"kickoff", "half_time", "second_half", "extra_time", "penalty_shootout", "full_time"}
    ),
)
def test_other_events_leave_the_phase_alone(kind: str) -> None:
    extra = {"team": "home"} if kind in TEAM_REQUIRED else {}
    before = fold([ev("kickoff"), ev("half_time", 45, 2)])
    after = fold([ev("kickoff"), ev("half_time", 45, 2), ev(kind, 45, 3, **extra)])
    assert after["phase"] == before["phase"] == "half_time"


def test_minute_and_added_follow_the_latest_event_in_log_order() -> None:
    state = fold([ev("kickoff"), ev("goal", 47, team="home"), ev("comment", 45, 2)])
    assert (state["minute"], state["added"]) == (45, 2)


def test_removing_the_kickoff_returns_to_pre_match() -> None:
    mlog = new_log()
    kickoff = post(mlog, T0, type="kickoff")
    post(mlog, T0 + 60, type="comment", text="Det regner i Parken.")
    op = mlog.build_remove(kickoff.seq, now=T0 + 120)
    assert op.data["state"]["phase"] == "pre_match"


# v1.1: stats, sent_off, scorers, penalties


def counts(**given: int) -> dict[str, int]:
    return {**NO_STATS, **given}


def test_shots_corners_fouls_offsides_substitutions() -> None:
    state = fold(
        [
            ev("kickoff"),
            ev("goal", 9, team="home", player="Elyounoussi"),
            ev("miss", 12, team="home"),
            ev("save", 20, team="home"),  # the home keeper saved: an away shot on target
            ev("miss", 21, team="away"),
            ev("corner", 22, team="away"),
            ev("foul", 23, team="home"),
            ev("offside", 24, team="away"),
            ev("substitution", 60, team="home", player_in="A", player_out="B"),
            ev("var", 61, team="home"),
            ev("injury", 62, team="away"),
        ]
    )
    assert state["stats"] == {
        "home": counts(shots=2, shots_on_target=1, fouls=1, substitutions=1),
        "away": counts(shots=2, shots_on_target=1, corners=1, offsides=1),
    }


def test_own_goal_is_nobodys_shot_and_a_scorer_of_the_side_credited() -> None:
    state = fold(
        [
            ev("kickoff"),
            ev("goal", 30, 0, team="away", detail="own_goal", player="Kristensen"),
            ev("goal", 45, 2, team="home", detail="penalty"),
        ]
    )
    assert state["score"] == {"home": 1, "away": 1}
    assert state["stats"]["away"] == NO_STATS
    assert state["stats"]["home"] == counts(shots=1, shots_on_target=1)
    assert state["scorers"] == [
        {"team": "away", "player": "Kristensen", "minute": 30, "added": 0, "own_goal": True},
        {"team": "home", "player": None, "minute": 45, "added": 2, "own_goal": False},
    ]


def test_the_shootout_counts_in_penalties_only() -> None:
    play = [ev("kickoff"), ev("goal", 20, team="home", player="Achouri"), ev("extra_time", 91)]
    before = fold(play)
    assert before["penalties"] is None
    shootout = [
        ev("penalty_shootout", 120),
        ev("goal", 120, team="home", detail="penalty", player="Larsson"),
        ev("save", 120, team="home"),
        ev("miss", 120, team="home"),
        ev("yellow_card", 120, team="away", player="Kaba"),
        ev("goal", 120, team="away", detail="penalty"),
        ev("goal", 120, team="away", detail="penalty"),
        ev("full_time", 120),
        ev("goal", 120, team="home"),  # logged after full time: still after the shootout
    ]
    state = fold([*play, *shootout])
    assert state["penalties"] == {"home": 2, "away": 2}
    assert state["score"] == before["score"] == {"home": 1, "away": 0}
    assert state["scorers"] == before["scorers"]
    assert state["stats"] == before["stats"]
    assert fold([*play, shootout[0]])["penalties"] == {"home": 0, "away": 0}


def test_a_goal_logged_after_the_shootout_and_full_time_is_not_in_the_score() -> None:
    # The rule is "logged after a penalty_shootout event", not "while the phase is penalties".
    events = [ev("kickoff"), ev("penalty_shootout", 120), ev("full_time", 120)]
    assert fold([*events, ev("goal", 120, team="home")])["score"] == {"home": 0, "away": 0}


def test_a_second_yellow_for_the_same_player_sends_off() -> None:
    state = fold(
        [
            ev("kickoff"),
            ev("yellow_card", 10, team="away", player="Alexander Scholz"),
            ev("yellow_card", 20, team="home", player="Alexander Scholz"),  # the other side
            ev("yellow_card", 30, team="away", player="Sory Kaba"),
            ev("yellow_card", 70, team="away", player="  alexander SCHOLZ "),
        ]
    )
    assert state["sent_off"] == [{"team": "away", "player": "  alexander SCHOLZ "}]
    assert state["stats"]["away"] == counts(yellow_cards=3, red_cards=1)
    assert state["stats"]["home"] == counts(yellow_cards=1)


def test_a_red_card_after_the_second_yellow_is_the_same_sending_off() -> None:
    state = fold(
        [
            ev("yellow_card", 10, team="home", player="Kaba"),
            ev("yellow_card", 60, team="home", player="Kaba"),
            ev("red_card", 60, team="home", player="KABA"),
            ev("yellow_card", 61, team="home", player="Kaba"),  # a third: he is off already
        ]
    )
    assert state["sent_off"] == [{"team": "home", "player": "Kaba"}]
    assert state["stats"]["home"] == counts(yellow_cards=3, red_cards=1)


def test_a_yellow_after_a_straight_red_sends_off_nobody_more() -> None:
    state = fold(
        [
            ev("yellow_card", 10, team="home", player="Kaba"),
            ev("red_card", 30, team="home", player="Kaba"),
            ev("yellow_card", 31, team="home", player="Kaba"),
        ]
    )
    assert state["sent_off"] == [{"team": "home", "player": "Kaba"}]
    assert state["stats"]["home"] == counts(yellow_cards=2, red_cards=1)


def test_cards_without_a_player() -> None:
    state = fold(
        [
            ev("yellow_card", 10, team="home"),
            ev("yellow_card", 20, team="home", player=" "),
            ev("red_card", 30, team="away"),
            ev("red_card", 40, team="away", player=""),
        ]
    )
    # Two yellows for nobody named are nobody's second; each red without a name is one more off.
    assert state["sent_off"] == [{"team": "away", "player": None}] * 2
    assert state["stats"]["home"] == counts(yellow_cards=2)
    assert state["stats"]["away"] == counts(red_cards=2)


def test_cards_in_the_shootout_send_off_but_count_in_no_stats() -> None:
    state = fold(
        [
            ev("yellow_card", 50, team="home", player="Kaba"),
            ev("penalty_shootout", 120),
            ev("yellow_card", 120, team="home", player="Kaba"),
            ev("red_card", 120, team="away", player="Scholz"),
        ]
    )
    assert state["sent_off"] == [
        {"team": "home", "player": "Kaba"},
        {"team": "away", "player": "Scholz"},
    ]
    assert state["stats"] == {"home": counts(yellow_cards=1), "away": NO_STATS}


def test_events_without_a_team_count_for_nobody() -> None:
    # The API refuses them; a hand-made log may still hold them.
    kinds = ["goal", "save", "miss", "corner", "foul", "offside", "substitution", "red_card"]
    state = fold([ev("kickoff"), *(ev(kind, 5, player="X") for kind in kinds)])
    assert state == {**fold([ev("kickoff")]), "minute": 5}


def test_retracting_a_second_yellow_brings_the_player_back() -> None:
    mlog = new_log()
    post(mlog, T0, type="kickoff")
    post(mlog, T0 + 60, type="yellow_card", team="away", player="Scholz")
    second = post(mlog, T0 + 120, type="yellow_card", team="away", player="scholz")
    assert second.data["state"]["sent_off"] == [{"team": "away", "player": "scholz"}]
    removal = mlog.build_remove(second.seq, now=T0 + 180)
    assert removal.data["state"]["sent_off"] == []
    assert removal.data["state"]["stats"]["away"] == counts(yellow_cards=1)
    mlog.apply(removal)
    assert mlog.state == removal.data["state"]


def test_correcting_a_name_makes_or_unmakes_a_second_yellow() -> None:
    mlog = new_log()
    first = post(mlog, T0, type="yellow_card", team="home", player="Kaba")
    post(mlog, T0 + 60, type="yellow_card", team="home", player="Scholz")
    fixed = mlog.build_update(first.seq, {"player": "SCHOLZ"}, now=T0 + 120)
    assert fixed.data["state"]["sent_off"] == [{"team": "home", "player": "Scholz"}]
    mlog.apply(fixed)
    undone = mlog.build_update(first.seq, {"team": "away"}, now=T0 + 180)
    assert undone.data["state"]["sent_off"] == []


def v1(op: Op) -> Op:
    """The op as a v1 server stored it: `state` without the v1.1 keys."""
    data = op.data
    if "state" in data:
        data = {
            **data,
            "state": {k: data["state"][k] for k in ("score", "phase", "minute", "added")},
        }
    return Op.from_json(Op(op.seq, data).json)


def test_a_v1_log_gets_the_full_state() -> None:
    mlog = new_log()
    post(mlog, T0, type="kickoff")
    post(mlog, T0 + 60, type="yellow_card", team="away", player="Scholz")
    post(mlog, T0 + 120, type="goal", team="home", player="Kaba")
    post(mlog, T0 + 180, type="yellow_card", team="away", player="Scholz")
    old = MatchLog(mlog.id)
    for op in mlog.ops:
        assert old.apply(v1(op))
    assert view(old) == view(mlog)
    assert [op.data for op in old.ops] == [op.data for op in mlog.ops]
    assert [op.json for op in old.ops] == [op.json for op in mlog.ops]


# The clock


def clock_after(start_kind: str, elapsed: float, *before: dict[str, Any]) -> tuple[int, int]:
    at = iso_ms(T0)
    events = [*before, {**ev(start_kind), "at": at}]
    return clock(events, fold(events), T0 + elapsed)


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (0.0, (1, 0)),
        (0.001, (1, 0)),
        (59.999, (1, 0)),
        (60.0, (2, 0)),
        (13 * 60 + 5, (14, 0)),
        (44 * 60 + 59, (45, 0)),
        (45 * 60, (45, 1)),
        (46 * 60 + 5, (45, 2)),  # "45+2"
        (47 * 60 + 59, (45, 3)),
        (500 * 60, (45, 30)),  # added time never passes the 30 a reporter may send
    ],
)
def test_first_half_clock(elapsed: float, expected: tuple[int, int]) -> None:
    assert clock_after("kickoff", elapsed) == expected


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(0.5, (46, 0)), (44 * 60, (90, 0)), (45 * 60 + 1, (90, 1)), (49 * 60 + 30, (90, 5))],
)
def test_second_half_counts_from_45(elapsed: float, expected: tuple[int, int]) -> None:
    first = [{**ev("kickoff"), "at": iso_ms(T0 - 3600)}, ev("half_time", 45, 3)]
    assert clock_after("second_half", elapsed, *first) == expected


@pytest.mark.parametrize(
    ("elapsed", "expected"), [(1.0, (91, 0)), (29 * 60 + 59, (120, 0)), (31 * 60, (120, 2))]
)
def test_extra_time_counts_from_90(elapsed: float, expected: tuple[int, int]) -> None:
    assert clock_after("extra_time", elapsed, ev("kickoff"), ev("second_half", 46)) == expected


def test_a_reporter_minute_ahead_of_the_clock_moves_it() -> None:
    """The kick-off was entered two minutes late: the next events' minutes set the clock."""
    kickoff = {**ev("kickoff"), "at": iso_ms(T0)}
    goal = {**ev("goal", 30), "team": "home", "at": iso_ms(T0 + 60)}
    events = [kickoff, goal]
    assert clock(events, fold(events), T0 + 60) == (30, 0)
    assert clock(events, fold(events), T0 + 60 + 5 * 60) == (35, 0)
    late = {**ev("comment", 45, 2), "at": iso_ms(T0 + 120)}
    assert clock([*events, late], fold([*events, late]), T0 + 120) == (45, 2)
    # An event logged late, with an earlier minute, does not move the clock back.
    old = {**ev("yellow_card", 3), "team": "away", "at": iso_ms(T0 + 90)}
    assert clock([*events, old], fold([*events, old]), T0 + 90) == (30, 0)


def test_clock_never_runs_backwards_past_the_period_start() -> None:
    # The server's wall clock may be behind the `at` of the kick-off (another process).
    assert clock_after("kickoff", -90.0) == (1, 0)


@pytest.mark.parametrize(
    "events",
    [
        [],
        [ev("comment", 0)],
        [ev("kickoff"), ev("half_time", 45, 4)],
        [ev("kickoff"), ev("full_time", 90, 5)],
        [ev("kickoff"), ev("penalty_shootout", 120, 2)],
    ],
)
def test_outside_a_running_period_the_clock_stands(events: list[dict[str, Any]]) -> None:
    state = fold(events)
    assert clock(events, state, T0 + 10_000) == (state["minute"], state["added"])


def test_event_without_minute_takes_the_clock() -> None:
    mlog = new_log()
    post(mlog, T0, type="kickoff")
    op = post(mlog, T0 + 13 * 60 + 5, type="goal", team="away", player="Scholz")
    assert (op.data["event"]["minute"], op.data["event"]["added"]) == (14, 0)
    assert (op.data["state"]["minute"], op.data["state"]["added"]) == (14, 0)
    late = post(mlog, T0 + 46 * 60 + 1, type="corner", team="home")
    assert (late.data["event"]["minute"], late.data["event"]["added"]) == (45, 2)


@pytest.mark.parametrize(("kind", "minute"), [("kickoff", 0), ("second_half", 46)])
def test_period_start_without_minute(kind: str, minute: int) -> None:
    mlog = new_log()
    if kind == "second_half":
        post(mlog, T0, type="kickoff")
        post(mlog, T0 + 47 * 60, type="half_time")
    op = post(mlog, T0 + 3600, type=kind)
    assert (op.data["event"]["minute"], op.data["event"]["added"]) == (minute, 0)


def test_extra_time_without_minute_is_91() -> None:
    mlog = new_log()
    for kind in ("kickoff", "half_time", "second_half", "full_time"):
        post(mlog, T0, type=kind, minute=90 if kind == "full_time" else 0)
    op = post(mlog, T0 + 60, type="extra_time")
    assert (op.data["event"]["minute"], op.data["event"]["added"]) == (91, 0)


def test_reporter_minute_wins_over_the_clock() -> None:
    mlog = new_log()
    post(mlog, T0, type="kickoff")
    op = post(mlog, T0 + 30 * 60, type="comment", minute=12)
    assert (op.data["event"]["minute"], op.data["event"]["added"]) == (12, 0)
    op = post(mlog, T0 + 30 * 60, type="comment", added=3)
    assert (op.data["event"]["minute"], op.data["event"]["added"]) == (31, 3)


# Seqs


def test_seq_is_wall_clock_milliseconds() -> None:
    mlog = MatchLog("m")
    assert mlog.next_seq(T0 + 0.1234) == "1764100000123-0"


def test_seq_strictly_increases_when_the_wall_clock_goes_backwards() -> None:
    mlog = new_log(now=T0)
    seqs = [mlog.head]
    for now in (T0, T0, T0 - 3600, T0 + 0.0005, T0 + 0.002, T0 - 1):
        seqs.append(post(mlog, now, type="comment").seq)
    assert seqs == [
        "1764100000000-0",
        "1764100000000-1",
        "1764100000000-2",
        "1764100000000-3",
        "1764100000000-4",
        "1764100000002-0",
        "1764100000002-1",
    ]


@PROPS
@given(st.lists(st.integers(-(10**7), 10**7), min_size=1, max_size=40))
def test_seqs_strictly_increase_whatever_the_clock_does(steps: list[int]) -> None:
    mlog = new_log()
    now = T0
    for step_ms in steps:
        now += step_ms / 1000
        op = post(mlog, now, type="comment")
        assert op.data["event"]["id"] == op.seq
    keys = [op.key for op in mlog.ops]
    assert keys == sorted(set(keys))
    assert all(op.key == seq_key(op.seq) for op in mlog.ops)


# Building ops


def test_add_sets_the_server_fields() -> None:
    mlog = new_log()
    op = mlog.build_add({"type": "goal", "team": "away", "minute": 13}, "jens", now=T0 + 0.12)
    event = op.data["event"]
    assert op.data["op"] == "add" and op.data["seq"] == op.seq == event["id"]
    assert event["rev"] == 1 and event["author"] == "jens"
    assert event["at"] == "2025-11-25T19:46:40.120Z"
    assert datetime.fromisoformat(event["at"]).timestamp() == pytest.approx(T0 + 0.12)
    assert event["added"] == 0


def test_update_increments_rev_and_keeps_id_at_author() -> None:
    mlog = new_log()
    post(mlog, T0, type="kickoff")
    goal = post(mlog, T0 + 600, type="goal", team="away", player="Scholz", detail="header")
    post(mlog, T0 + 700, type="comment", text="Stort pres nu.")
    first = mlog.build_update(goal.seq, {"player": "Kaba", "detail": None}, now=T0 + 800)
    mlog.apply(first)
    second = mlog.build_update(goal.seq, {"team": "home"}, now=T0 + 900)
    assert first.data["op"] == "update" and first.seq != goal.seq
    old, new = goal.data["event"], second.data["event"]
    assert (new["id"], new["at"], new["author"]) == (old["id"], old["at"], old["author"])
    assert (first.data["event"]["rev"], new["rev"]) == (2, 3)
    assert new["player"] == "Kaba" and "detail" not in new
    assert second.data["state"]["score"] == {"home": 1, "away": 0}
    mlog.apply(second)
    # A correction keeps the event's place in the log (oldest first).
    assert [e["id"] for e in mlog.events.values()] == sorted(mlog.events, key=seq_key)


def test_add_then_remove_restores_the_score() -> None:
    mlog = new_log()
    post(mlog, T0, type="kickoff")
    post(mlog, T0 + 300, type="goal", team="home")
    before = dict(mlog.state)
    goal = post(mlog, T0 + 600, type="goal", team="away", detail="penalty")
    assert goal.data["state"]["score"] == {"home": 1, "away": 1}
    removed = mlog.build_remove(goal.seq, now=T0 + 700)
    assert removed.data == {"op": "remove", "seq": removed.seq, "id": goal.seq, "state": before}


@pytest.mark.parametrize("action", ["update", "remove"])
def test_unknown_or_removed_event_is_not_found(action: str) -> None:
    mlog = new_log()
    goal = post(mlog, T0, type="goal", team="home")
    mlog.apply(mlog.build_remove(goal.seq, now=T0 + 1))
    for event_id in ("1-0", goal.seq, mlog.ops[0].seq):  # unknown, removed, a match op
        with pytest.raises(NotFound) as info:
            if action == "update":
                mlog.build_update(event_id, {"minute": 3}, now=T0 + 2)
            else:
                mlog.build_remove(event_id, now=T0 + 2)
        assert info.value.status == 404 and info.value.field == "event_id"


def test_correction_must_change_something() -> None:
    mlog = new_log()
    goal = post(mlog, T0, type="goal", team="home")
    with pytest.raises(Invalid):
        mlog.build_update(goal.seq, {}, now=T0 + 1)


def test_correction_cannot_leave_a_goal_without_a_team() -> None:
    mlog = new_log()
    goal = post(mlog, T0, type="goal", team="home")
    comment = post(mlog, T0, type="comment")
    with pytest.raises(Invalid) as info:
        mlog.build_update(goal.seq, {"team": None}, now=T0 + 1)
    assert info.value.field == "team"
    with pytest.raises(Invalid) as info:
        mlog.build_update(comment.seq, {"type": "red_card"}, now=T0 + 1)
    assert info.value.field == "team"
    with pytest.raises(Invalid):
        mlog.build_add({"type": "goal"}, "jens", now=T0 + 1)


def test_builders_change_nothing() -> None:
    mlog = new_log()
    post(mlog, T0, type="kickoff")
    goal = post(mlog, T0 + 60, type="goal", team="home")
    before = view(mlog)
    mlog.build_add({"type": "goal", "team": "away"}, "jens", now=T0 + 120)
    mlog.build_update(goal.seq, {"team": "away"}, now=T0 + 120)
    mlog.build_remove(goal.seq, now=T0 + 120)
    mlog.build_match({"venue": "Parken"}, now=T0 + 120)
    with pytest.raises(Invalid):
        mlog.build_update(goal.seq, {"team": None}, now=T0 + 120)
    assert view(mlog) == before


def test_match_op_merges_and_null_deletes() -> None:
    mlog = new_log()
    mlog.apply(mlog.build_match({"venue": "Parken", "status": "live"}, now=T0 + 1))
    op = mlog.build_match({"venue": None}, now=T0 + 2)
    assert op.data["op"] == "match" and "state" not in op.data
    assert op.data["match"] == {**MATCH, "status": "live"}


# The log itself


def test_apply_ignores_ops_at_or_before_the_head() -> None:
    mlog = new_log()
    first = post(mlog, T0, type="kickoff")
    second = post(mlog, T0 + 60, type="goal", team="home")
    before = view(mlog)
    assert not mlog.apply(first)
    assert not mlog.apply(second)
    assert not mlog.apply(Op.from_json(second.json))
    assert view(mlog) == before


def test_since() -> None:
    mlog = new_log()
    ops = [mlog.ops[0], *(post(mlog, T0 + i, type="comment") for i in range(3))]
    assert [op.seq for op in mlog.since(ops[0].seq) or []] == [op.seq for op in ops[1:]]
    assert mlog.since(mlog.head) == []
    assert mlog.since("1-0") is None
    assert mlog.since("") is None


def test_snapshot_is_encoded_once_per_head() -> None:
    mlog = new_log()
    post(mlog, T0, type="kickoff")
    snap = mlog.snapshot()
    assert mlog.snapshot() is snap
    assert mlog.snapshot(reset=True) is not snap
    from ticker.wire import loads

    body = loads(snap.json)
    assert body == {
        "op": "snapshot",
        "seq": mlog.head,
        "match": MATCH,
        "state": mlog.state,
        "events": list(mlog.events.values()),
        "lineups": {"home": None, "away": None},  # v1.1: each side null until set
    }
    assert loads(mlog.snapshot(reset=True).json)["reset"] is True
    post(mlog, T0 + 60, type="comment")
    assert loads(mlog.snapshot().json)["seq"] == mlog.head != snap.seq


# Property tests over random reporter sessions

PHASE_STARTS = {
    "kickoff": "first_half",
    "half_time": "half_time",
    "second_half": "second_half",
    "extra_time": "extra_time",
    "penalty_shootout": "penalties",
    "full_time": "full_time",
}


def expected_state(events: list[dict[str, Any]]) -> dict[str, Any]:
    """PROTOCOL's state, computed from our own list of live events (docs/protocol-notes.md)."""
    phase = "pre_match"
    for event in events:
        phase = PHASE_STARTS.get(event["type"], phase)
    cut = next((i for i, e in enumerate(events) if e["type"] == "penalty_shootout"), len(events))
    play, shootout = events[:cut], events[cut + 1 :]

    def of(kind: str, team: str, among: list[dict[str, Any]] = play) -> list[dict[str, Any]]:
        return [e for e in among if e["type"] == kind and e.get("team") == team]

    def own(event: dict[str, Any]) -> bool:
        return event.get("detail") == "own_goal"

    def name(event: dict[str, Any]) -> str | None:
        return (event.get("player") or "").strip().casefold() or None

    sent_off: list[dict[str, Any]] = []
    reds = {"home": 0, "away": 0}
    yellows: dict[tuple[str, str], int] = {}
    for i, event in enumerate(events):
        team, key = event.get("team"), (event.get("team"), name(event))
        if event["type"] not in ("yellow_card", "red_card") or team is None:
            continue
        if key in [(s["team"], (s["player"] or "").strip().casefold()) for s in sent_off]:
            continue
        if event["type"] == "yellow_card":
            if key[1] is None:
                continue
            yellows[key] = yellows.get(key, 0) + 1
            if yellows[key] != 2:
                continue
        sent_off.append({"team": team, "player": event.get("player") if key[1] else None})
        reds[team] += i < cut
    stats = {}
    for team, other in (("home", "away"), ("away", "home")):
        on_target = len([e for e in of("goal", team) if not own(e)]) + len(of("save", other))
        stats[team] = {
            "shots": on_target + len(of("miss", team)),
            "shots_on_target": on_target,
            "corners": len(of("corner", team)),
            "fouls": len(of("foul", team)),
            "offsides": len(of("offside", team)),
            "yellow_cards": len(of("yellow_card", team)),
            "red_cards": reds[team],
            "substitutions": len(of("substitution", team)),
        }
    goals = [e for e in play if e["type"] == "goal"]
    last = events[-1] if events else {"minute": 0, "added": 0}
    return {
        "score": {team: len(of("goal", team)) for team in ("home", "away")},
        "phase": phase,
        "minute": last["minute"],
        "added": last["added"],
        "stats": stats,
        "sent_off": sent_off,
        "scorers": [
            {
                "team": e["team"],
                "player": e.get("player") if name(e) else None,
                "minute": e["minute"],
                "added": e["added"],
                "own_goal": own(e),
            }
            for e in goals
        ],
        "penalties": None
        if cut == len(events)
        else {team: len(of("goal", team, shootout)) for team in ("home", "away")},
    }


teams = st.sampled_from(["home", "away"])
# Few names, spelt apart by case and spaces, so second yellows and repeat reds happen.
players = st.sampled_from(["Scholz", " scholz", "SCHOLZ ", "Kaba", "kaba", "", "  "])
# Cards and shots often, so the v1.1 rules meet each other.
kinds = st.one_of(
    st.sampled_from(sorted(EVENT_TYPES)),
    st.sampled_from(["yellow_card", "yellow_card", "red_card", "goal", "save", "miss"]),
)
event_fields = st.fixed_dictionaries(
    {"type": kinds},
    optional={
        "team": teams,
        "player": players,
        "minute": st.integers(0, 150),
        "added": st.integers(0, 30),
        "detail": st.sampled_from(["own_goal", "penalty", "header"]),
        "text": st.text(max_size=20),
    },
)
correction_fields = st.fixed_dictionaries(
    {},
    optional={
        "type": kinds,
        "team": st.one_of(st.none(), teams),
        "player": st.one_of(st.none(), players),
        "minute": st.integers(0, 150),
        "added": st.integers(0, 30),
        "detail": st.one_of(st.none(), st.just("own_goal")),
    },
)
clock_step = st.integers(-5_000, 400_000).map(lambda ms: ms / 1000)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("add"), event_fields, clock_step),
        st.tuples(st.just("update"), st.integers(0, 50), correction_fields, clock_step),
        st.tuples(st.just("remove"), st.integers(0, 50), clock_step),
        st.tuples(
            st.just("match"), st.sampled_from([{"status": "live"}, {"venue": None}]), clock_step
        ),
    ),
    max_size=30,
)


# Sessions dense in what v1.1 counts: every event has a team, shoot-outs and cards are common.
v11_fields = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["yellow_card"] * 4 + ["red_card", "goal", "save", "miss", "corner", "penalty_shootout"]
        ),
        "team": teams,
    },
    optional={"player": players, "detail": st.just("own_goal"), "minute": st.integers(0, 150)},
)
v11_actions = st.lists(
    st.one_of(
        st.tuples(st.just("add"), v11_fields, clock_step),
        st.tuples(st.just("update"), st.integers(0, 50), correction_fields, clock_step),
        st.tuples(st.just("remove"), st.integers(0, 50), clock_step),
    ),
    min_size=5,
    max_size=40,
)
any_actions = st.one_of(actions, v11_actions)


def play(steps: list[tuple[Any, ...]]) -> tuple[MatchLog, list[Op]]:
    """Run the actions on a MatchLog, checking each op against our own bookkeeping."""
    mlog = new_log()
    live: dict[str, dict[str, Any]] = {}
    now = T0
    for kind, *args, step in steps:
        now += step
        before = view(mlog)
        try:
            if kind == "add":
                op = mlog.build_add(args[0], "jens", now=now)
            elif kind == "match":
                op = mlog.build_match(args[0], now=now)
            elif not live:
                continue
            else:
                target = list(live)[args[0] % len(live)]
                if kind == "update":
                    op = mlog.build_update(target, args[1], now=now)
                else:
                    op = mlog.build_remove(target, now=now)
        except Invalid:
            assert view(mlog) == before  # a refused write changes nothing
            continue
        assert view(mlog) == before  # building is pure
        assert op.key > mlog.ops[-1].key
        if op.data["op"] in ("add", "update"):
            live[op.data["event"]["id"]] = op.data["event"]
        elif op.data["op"] == "remove":
            del live[op.data["id"]]
        assert mlog.apply(op)
        if op.data["op"] != "match":
            assert op.data["state"] == expected_state(list(live.values()))
            assert op.data["state"] == fold(mlog.events.values()) == mlog.state
        assert mlog.events == live and list(mlog.events) == list(live)
    return mlog, mlog.ops


@PROPS
@given(any_actions)
def test_every_op_carries_the_state_of_the_live_events(steps: list[tuple[Any, ...]]) -> None:
    _, ops = play(steps)
    for op in ops:
        if op.data["op"] == "add":
            assert op.data["event"]["id"] == op.seq and op.data["event"]["rev"] == 1
        if op.data["op"] == "update":
            assert op.data["event"]["id"] != op.seq and op.data["event"]["rev"] >= 2


@PROPS
@given(any_actions)
def test_replaying_the_log_gives_the_same_view(steps: list[tuple[Any, ...]]) -> None:
    mlog, ops = play(steps)
    replay = MatchLog(mlog.id)
    for op in ops:
        assert replay.apply(Op.from_json(op.json))  # as read back from storage
    assert view(replay) == view(mlog)


@PROPS
@given(actions, st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=8))
def test_redelivered_ops_change_nothing(
    steps: list[tuple[Any, ...]], batches: list[tuple[int, int]]
) -> None:
    # A reader may see an op more than once (a retried XREAD, a refresh racing the
    # reader): batches that overlap what was already applied leave the same log.
    mlog, ops = play(steps)
    replay = MatchLog(mlog.id)
    done = 0
    for back, size in [*batches, (len(ops), len(ops))]:
        start = max(0, done - back)
        for op in ops[start : start + size]:
            replay.apply(op)
        done = max(done, min(len(ops), start + size))
    assert view(replay) == view(mlog)


@PROPS
@given(actions)
def test_since_returns_exactly_the_ops_after(steps: list[tuple[Any, ...]]) -> None:
    mlog, ops = play(steps)
    for i, op in enumerate(ops):
        assert [o.seq for o in mlog.since(op.seq) or []] == [o.seq for o in ops[i + 1 :]]


@PROPS
@given(actions, teams, st.sampled_from([None, "own_goal", "penalty"]), clock_step)
def test_goal_then_var_retraction_restores_the_state(
    steps: list[tuple[Any, ...]], team: str, detail: str | None, step: float
) -> None:
    mlog, _ = play(steps)
    before = dict(mlog.state)
    now = T0 + 10_000 + step
    fields = {"type": "goal", "team": team, **({"detail": detail} if detail else {})}
    goal = post(mlog, now, **fields)
    if mlog.state["penalties"] is None:
        scored = before["score"][team] + 1
        assert goal.data["state"]["score"][team] == scored
    removal = mlog.build_remove(goal.seq, now=now)
    assert removal.data["state"] == before


@PROPS
@given(any_actions, st.one_of(event_fields, v11_fields), clock_step)
def test_any_event_added_then_removed_restores_the_state(
    steps: list[tuple[Any, ...]], fields: dict[str, Any], step: float
) -> None:
    mlog, _ = play(steps)
    before = mlog.state
    try:
        added = post(mlog, T0 + 10_000 + step, **fields)
    except Invalid:
        return
    assert mlog.build_remove(added.seq, now=T0 + 10_000).data["state"] == before


@PROPS
@given(any_actions)
def test_a_v1_log_replays_to_the_same_view(steps: list[tuple[Any, ...]]) -> None:
    mlog, ops = play(steps)
    old = MatchLog(mlog.id)
    for op in ops:
        assert old.apply(v1(op))
    assert view(old) == view(mlog)
    assert [op.json for op in old.ops] == [op.json for op in ops]


@PROPS
@given(any_actions)
def test_card_and_shot_invariants(steps: list[tuple[Any, ...]]) -> None:
    mlog, _ = play(steps)
    state, events = mlog.state, list(mlog.events.values())
    kinds = [e["type"] for e in events]
    cut = kinds.index("penalty_shootout") if "penalty_shootout" in kinds else len(kinds)
    cards = [e for e in events if e["type"] in ("yellow_card", "red_card")]
    late_cards = [e for e in events[cut:] if e["type"] in ("yellow_card", "red_card")]
    stats = state["stats"]
    reds = stats["home"]["red_cards"] + stats["away"]["red_cards"]
    # Every sending-off before the shootout is one red card in the stats, and back.
    assert reds <= len(state["sent_off"]) <= reds + len(late_cards)
    if not late_cards:
        assert reds == len(state["sent_off"])
    # A named player is sent off at most once; reds and second yellows are the only way.
    named = [(s["team"], s["player"].strip().casefold()) for s in state["sent_off"] if s["player"]]
    assert len(named) == len(set(named))
    assert len(state["sent_off"]) <= len(cards)
    for side in ("home", "away"):
        side_stats = stats[side]
        assert side_stats["yellow_cards"] == len(
            [e for e in events[:cut] if e["type"] == "yellow_card" and e["team"] == side]
        )
        assert side_stats["red_cards"] <= side_stats["yellow_cards"] // 2 + len(
            [e for e in events[:cut] if e["type"] == "red_card" and e["team"] == side]
        )
        assert 0 <= side_stats["shots_on_target"] <= side_stats["shots"]
    goals = sum(state["score"].values())
    assert len(state["scorers"]) == goals
    assert (state["penalties"] is None) == (cut == len(events))
    if state["penalties"] is not None:
        assert sum(state["penalties"].values()) == kinds[cut:].count("goal")


def test_an_event_op_stored_without_state_gets_the_folded_one() -> None:
    mlog = new_log()
    goal = post(mlog, T0, type="goal", team="home")
    bare = MatchLog(mlog.id)
    bare.apply(mlog.ops[0])
    assert bare.apply(Op(goal.seq, {k: v for k, v in goal.data.items() if k != "state"}))
    assert bare.ops[-1].data == goal.data and bare.state == mlog.state


# Pinned events (v1.1): a flag for pages; the state does not see it.


def test_pinning_leaves_the_state_alone() -> None:
    plain, pinned = new_log(), new_log()
    for mlog, pin in ((plain, False), (pinned, True)):
        post(mlog, T0, type="kickoff")
        goal = post(mlog, T0 + 60, type="goal", team="home", player="Kaba", pinned=pin)
        post(mlog, T0 + 90, type="yellow_card", team="away", player="Lobotka", pinned=pin)
        assert goal.data["event"]["pinned"] is pin
    assert pinned.state == plain.state
    event_id = next(iter(pinned.events))
    op = pinned.build_update(event_id, {"pinned": True}, by="ann", now=T0 + 120)
    assert op.data["state"] == pinned.state
    pinned.apply(op)
    assert pinned.state == plain.state
