"""Validation of what clients send (ticker/model.py), seq ordering, and the one error shape."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticker import errors
from ticker.errors import BadRequest, Invalid, TickerError
from ticker.log import MatchLog
from ticker.model import (
    EVENT_TYPES,
    TEAM_REQUIRED,
    Op,
    check_event,
    is_seq,
    seq_key,
    validate_event_id,
    validate_event_input,
    validate_lineups,
    validate_match,
    validate_match_id,
)
from ticker.wire import loads

PROTOCOL_TYPES = {
    "kickoff", "goal", "miss", "save", "offside", "yellow_card", "red_card",
    "substitution", "corner", "foul", "var", "injury", "half_time", "second_half",
    "extra_time", "penalty_shootout", "full_time", "comment",
}  # fmt: skip
PROTOCOL_TEAM_REQUIRED = {
    "goal", "miss", "save", "offside", "yellow_card", "red_card", "substitution",
    "corner", "foul",
}  # fmt: skip
FULL_EVENT = {
    "type": "goal",
    "minute": 13,
    "added": 0,
    "team": "away",
    "player": "Alexander Scholz",
    "assist": "Sory Kaba",
    "detail": "header",
    "text": "Scholz smadrer bolden op i krydset.",
}


def invalid(body: Any, field: str | None, *, partial: bool = False) -> Invalid:
    """The Invalid that `body` gets; checks it names `field` and has status 422."""
    with pytest.raises(Invalid) as info:
        validate_event_input(body, partial=partial)
    assert info.value.status == 422
    assert info.value.field == field
    return info.value


def whole_event(fields: dict[str, Any]) -> dict[str, Any]:
    """What the server would store, for the whole-event rules."""
    return {"id": "1-0", "rev": 1, "minute": 0, "added": 0, **fields}


# Event: types and teams


def test_event_types_are_the_protocols() -> None:
    assert set(EVENT_TYPES) == PROTOCOL_TYPES
    assert set(TEAM_REQUIRED) == PROTOCOL_TEAM_REQUIRED


def test_the_protocols_example_event_is_valid() -> None:
    assert validate_event_input(FULL_EVENT) == FULL_EVENT
    check_event(whole_event(FULL_EVENT))


@pytest.mark.parametrize("kind", sorted(PROTOCOL_TYPES))
def test_every_type_is_accepted(kind: str) -> None:
    fields = {"type": kind, "team": "home"}
    assert validate_event_input(fields) == fields
    check_event(whole_event(fields))


@pytest.mark.parametrize("kind", sorted(PROTOCOL_TEAM_REQUIRED))
def test_team_is_required_for(kind: str) -> None:
    with pytest.raises(Invalid) as info:
        check_event(whole_event(validate_event_input({"type": kind})))
    assert info.value.field == "team" and kind in info.value.message


@pytest.mark.parametrize("kind", sorted(PROTOCOL_TYPES - PROTOCOL_TEAM_REQUIRED))
def test_team_is_optional_for(kind: str) -> None:
    check_event(whole_event(validate_event_input({"type": kind})))


@pytest.mark.parametrize("kind", ["", "Goal", "GOAL", "own_goal", "penalty", "goal ", None, 3, []])
def test_unknown_type(kind: Any) -> None:
    invalid({"type": kind}, "type")


def test_type_is_required() -> None:
    invalid({"minute": 3}, "type")
    invalid({}, "type")


@pytest.mark.parametrize("team", ["Home", "AWAY", "", "fck", None, 0, True, ["home"], {"x": 1}])
def test_team_is_home_or_away(team: Any) -> None:
    invalid({"type": "goal", "team": team}, "team")


# Event: numbers


@pytest.mark.parametrize(("name", "high"), [("minute", 150), ("added", 30)])
def test_number_bounds(name: str, high: int) -> None:
    for ok in (0, 1, high):
        assert validate_event_input({"type": "comment", name: ok})[name] == ok
    for bad in (-1, high + 1, 10**30, -(10**30)):
        error = invalid({"type": "comment", name: bad}, name)
        assert str(high) in error.message


@pytest.mark.parametrize("name", ["minute", "added"])
@pytest.mark.parametrize("value", [True, False, 13.0, 13.5, "13", None, [13], {"m": 13}])
def test_numbers_must_be_integers(name: str, value: Any) -> None:
    error = invalid({"type": "comment", name: value}, name)
    assert "integer" in error.message


# Event: strings


@pytest.mark.parametrize(
    ("name", "limit"),
    [("player", 80), ("assist", 80), ("player_in", 80), ("player_out", 80),
     ("detail", 40), ("text", 2000)],
)  # fmt: skip
def test_string_limits(name: str, limit: int) -> None:
    exact = "ø" * limit  # characters, not bytes
    assert validate_event_input({"type": "comment", name: exact})[name] == exact
    error = invalid({"type": "comment", name: exact + "x"}, name)
    assert str(limit) in error.message


@pytest.mark.parametrize("name", ["player", "assist", "player_in", "player_out", "detail", "text"])
@pytest.mark.parametrize("value", [5, 1.5, True, ["x"], {"x": "y"}])
def test_strings_must_be_strings(name: str, value: Any) -> None:
    invalid({"type": "comment", name: value}, name)


def test_text_is_kept_as_plain_text() -> None:
    text = '<script>alert("x")</script> & <b>Scholz</b>\nlinje 2'
    assert validate_event_input({"type": "comment", "text": text})["text"] == text


def test_nul_characters_are_refused() -> None:
    invalid({"type": "comment", "text": "a\x00b"}, "text")


def test_substitution_fields() -> None:
    sub = {"type": "substitution", "team": "home", "player_in": "Kaba", "player_out": "Scholz"}
    assert validate_event_input(sub) == sub


# Event: fields the client may not send


@pytest.mark.parametrize("name", ["id", "rev", "at", "author", "edited_by", "edited_at"])
@pytest.mark.parametrize("partial", [False, True])
def test_server_fields_are_refused(name: str, partial: bool) -> None:
    value = {"id": "1-0", "rev": 7, "at": "2026-01-01T00:00:00Z", "author": "admin",
             "edited_by": "admin", "edited_at": "2026-01-01T00:00:00Z"}[name]  # fmt: skip
    error = invalid({"type": "comment", name: value}, name, partial=partial)
    assert "server" in error.message
    assert error.body() == {"error": {"code": "invalid", "message": error.message, "field": name}}


@pytest.mark.parametrize("name", ["seq", "state", "score", "op", "Type", "minutes", "html", ""])
def test_unknown_fields_are_refused(name: str) -> None:
    invalid({"type": "comment", name: 1}, name)


def test_an_unknown_field_name_is_cut_in_the_error() -> None:
    error = invalid({"type": "comment", "x" * 5000: 1}, "x" * 40)
    assert len(error.message) < 100


@pytest.mark.parametrize("body", [None, [], [FULL_EVENT], "goal", 13, 1.5, True])
@pytest.mark.parametrize("partial", [False, True])
def test_body_must_be_an_object(body: Any, partial: bool) -> None:
    with pytest.raises(BadRequest) as info:
        validate_event_input(body, partial=partial)
    assert info.value.status == 400
    assert "object" in info.value.message
    assert info.value.body()["error"]["code"] == "bad_request"


# Event: corrections (PATCH)


def test_correction_fields_are_all_optional() -> None:
    assert validate_event_input({}, partial=True) == {}
    assert validate_event_input({"minute": 90, "added": 4}, partial=True) == {
        "minute": 90,
        "added": 4,
    }


def test_correction_null_deletes_team_and_texts() -> None:
    fields = {"team": None, "player": None, "detail": None, "text": None}
    assert validate_event_input(fields, partial=True) == fields


@pytest.mark.parametrize("name", ["type", "minute", "added"])
def test_correction_cannot_null_required_fields(name: str) -> None:
    invalid({name: None}, name, partial=True)


def test_correction_checks_values_too() -> None:
    invalid({"minute": 151}, "minute", partial=True)
    invalid({"team": "both"}, "team", partial=True)
    invalid({"text": "x" * 2001}, "text", partial=True)


# Match


MATCH = {
    "id": "fck-ssc-2026-11-25",
    "home": {"name": "FC København", "short": "FCK"},
    "away": {"name": "SSC Napoli", "short": "NAP"},
    "competition": "Champions League",
    "kickoff": "2026-11-25T21:00:00+01:00",
    "venue": "Parken",
}


def match_invalid(body: Any, field: str | None, *, partial: bool = False) -> Invalid:
    with pytest.raises(Invalid) as info:
        validate_match(body, partial=partial)
    assert info.value.status == 422
    assert info.value.field == field
    return info.value


def test_the_protocols_example_match_is_valid() -> None:
    assert validate_match(MATCH) == MATCH


@pytest.mark.parametrize("match_id", ["a", "0", "-", "fck-ssc-2026-11-25", "a" * 64, "9-9-9"])
def test_good_match_ids(match_id: str) -> None:
    assert validate_match({**MATCH, "id": match_id})["id"] == match_id
    assert validate_match_id(match_id) == match_id


BAD_MATCH_IDS = ["", "a" * 65, "FCK", "fck_ssc", "fck ssc", "fck.ssc", "fck/ssc", "købh", "a\tb",
                 "../etc", "%2e"]  # fmt: skip


@pytest.mark.parametrize("match_id", BAD_MATCH_IDS)
def test_bad_match_ids(match_id: str) -> None:
    match_invalid({**MATCH, "id": match_id}, "id")
    with pytest.raises(Invalid):
        validate_match_id(match_id)


@pytest.mark.parametrize("match_id", ["abc\n", "1764100000000-0\n"])
def test_match_id_with_trailing_newline_is_refused(match_id: str) -> None:
    with pytest.raises(Invalid):
        validate_match({**MATCH, "id": match_id})


@pytest.mark.parametrize("match_id", [None, 5, ["a"], {"a": 1}, True])
def test_match_id_must_be_a_string(match_id: Any) -> None:
    match_invalid({**MATCH, "id": match_id}, "id")


@pytest.mark.parametrize("side", ["id", "home", "away"])
def test_match_required_fields(side: str) -> None:
    match_invalid({k: v for k, v in MATCH.items() if k != side}, side)


@pytest.mark.parametrize("team", [None, "FCK", ["FCK"], 5])
def test_team_must_be_an_object(team: Any) -> None:
    match_invalid({**MATCH, "home": team}, "home")


def test_team_fields() -> None:
    match_invalid({**MATCH, "away": {"short": "NAP"}}, "away.name")
    match_invalid({**MATCH, "away": {"name": "SSC Napoli", "logo": "x.png"}}, "away")
    clean = validate_match({**MATCH, "home": {"name": "Brøndby IF"}})
    assert clean["home"] == {"name": "Brøndby IF", "short": "BRØ"}


@pytest.mark.parametrize("name", ["", "   ", "x" * 81, 5, None])
def test_team_name_is_checked(name: Any) -> None:
    with pytest.raises(Invalid):
        validate_match({**MATCH, "home": {"name": name}})


def test_bad_team_name_names_the_side() -> None:
    match_invalid({**MATCH, "away": {"name": 5}}, "away.name")


def test_match_short_name_limit() -> None:
    assert validate_match({**MATCH, "home": {"name": "A", "short": "x" * 8}})["home"]["short"]
    with pytest.raises(Invalid):
        validate_match({**MATCH, "home": {"name": "A", "short": "x" * 9}})


@pytest.mark.parametrize(("name", "limit"), [("competition", 120), ("venue", 120), ("kickoff", 40)])
def test_match_string_limits(name: str, limit: int) -> None:
    assert validate_match({**MATCH, name: "x" * limit})[name] == "x" * limit
    match_invalid({**MATCH, name: "x" * (limit + 1)}, name)
    match_invalid({**MATCH, name: 5}, name)


@pytest.mark.parametrize("name", ["events", "state", "seq", "score", "Home"])
def test_match_unknown_fields(name: str) -> None:
    match_invalid({**MATCH, name: 1}, name)


@pytest.mark.parametrize("body", [None, [], "fck", 1])
def test_match_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(BadRequest):
        validate_match(body)


def test_match_patch() -> None:
    assert validate_match({"venue": "Parken", "status": "live"}, partial=True) == {
        "venue": "Parken",
        "status": "live",
    }
    assert validate_match({"venue": None}, partial=True) == {"venue": None}
    match_invalid({"id": "other"}, "id", partial=True)
    match_invalid({"status": "paused"}, "status", partial=True)


@pytest.mark.parametrize("status", [[], {}, ["live"]])
def test_match_status_of_the_wrong_type(status: Any) -> None:
    match_invalid({"status": status}, "status", partial=True)


# Seqs and ids


def test_seq_order_is_numeric_not_textual() -> None:
    seqs = ["10-0", "9-0", "9-10", "9-2", "1764100000000-0", "1764099999999-99"]
    assert sorted(seqs, key=seq_key) == [
        "9-0", "9-2", "9-10", "10-0", "1764099999999-99", "1764100000000-0",
    ]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.tuples(st.integers(0, 10**15), st.integers(0, 10**6)),
       st.tuples(st.integers(0, 10**15), st.integers(0, 10**6)))  # fmt: skip
def test_seq_key_orders_like_the_pair(a: tuple[int, int], b: tuple[int, int]) -> None:
    sa, sb = f"{a[0]}-{a[1]}", f"{b[0]}-{b[1]}"
    assert is_seq(sa) and seq_key(sa) == a
    assert (seq_key(sa) < seq_key(sb)) == (a < b)


BAD_SEQS = ["", "1", "1-", "-1", "a-b", "1-0-0", " 1-0", "1-0 ", "1_0", "1.0-0", "+1-0",
            "1" * 21 + "-0", "$", "0x1-0"]  # fmt: skip


@pytest.mark.parametrize("seq", BAD_SEQS)
def test_bad_seqs(seq: str) -> None:
    assert not is_seq(seq)
    with pytest.raises(BadRequest) as info:
        seq_key(seq)
    assert info.value.field == "since"
    with pytest.raises(Invalid) as invalid_info:
        validate_event_id(seq)
    assert invalid_info.value.field == "event_id"


@pytest.mark.parametrize("seq", ["1-0\n", "\u0661-0", "1764100000000-\u0660"])
def test_seq_is_ascii_digits_only(seq: str) -> None:
    assert not is_seq(seq)


def test_op_refuses_a_malformed_seq() -> None:
    with pytest.raises(BadRequest):
        Op("not-a-seq", {"op": "add"})


def test_op_json_is_encoded_once_and_reused_from_storage() -> None:
    op = Op("5-0", {"op": "remove", "seq": "5-0", "id": "4-0"})
    assert op.json is op.json
    assert loads(op.json) == op.data
    raw = b'{"op":"remove","seq":"5-0","id":"4-0"}'
    stored = Op.from_json(raw)
    assert stored.json is raw and stored.key == (5, 0)
    assert stored.message.kind == "remove" and stored.message.seq == "5-0"


# The one error shape


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.BadRequest, 400),
        (errors.Unauthorized, 401),
        (errors.Forbidden, 403),
        (errors.NotFound, 404),
        (errors.MatchNotFound, 404),
        (errors.Conflict, 409),
        (errors.TooLarge, 413),
        (errors.Invalid, 422),
        (errors.RateLimited, 429),
        (errors.EngineUnavailable, 503),
    ],
)
def test_error_shape(cls: type[TickerError], status: int) -> None:
    with_field = cls("minute must be between 0 and 150, got 151", "minute").body()
    assert cls.status == status
    assert with_field == {
        "error": {
            "code": cls.code,
            "message": "minute must be between 0 and 150, got 151",
            "field": "minute",
        }
    }
    assert isinstance(cls.code, str) and cls.code.isidentifier()
    # The three keys of PROTOCOL.md are always there; `field` is null when no field is at fault.
    assert cls("nope").body() == {"error": {"code": cls.code, "message": "nope", "field": None}}


def test_error_codes_are_distinct_per_status() -> None:
    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, TickerError)
    ]
    codes = {c.code for c in classes if c is not TickerError}
    assert len(codes) == len(classes) - 1


# Pinned events


@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize("value", [1, 0, "true", None, []])
def test_pinned_is_a_boolean(partial: bool, value: Any) -> None:
    invalid({"type": "comment", "pinned": value}, "pinned", partial=partial)


def test_pinned_is_stored_false_by_default_and_kept_by_corrections() -> None:
    mlog = MatchLog("m")
    mlog.apply(mlog.build_match({"id": "m"}, now=1.0))
    add = mlog.build_add({"type": "comment", "text": "x"}, "ann", now=2.0)
    assert add.data["event"]["pinned"] is False
    mlog.apply(add)
    pin = mlog.build_update(add.seq, {"pinned": True}, by="bo", now=3.0)
    assert pin.data["event"]["pinned"] is True
    mlog.apply(pin)
    text = mlog.build_update(add.seq, {"text": "y"}, by="bo", now=4.0)
    assert text.data["event"]["pinned"] is True


def test_events_of_v1_logs_read_as_not_pinned() -> None:
    mlog = MatchLog("m")
    mlog.apply(Op("1-0", {"op": "match", "seq": "1-0", "match": {"id": "m"}}))
    old = {"id": "2-0", "rev": 1, "type": "comment", "minute": 0, "added": 0,
           "at": "2026-01-01T00:00:00.000Z", "author": "ann"}  # fmt: skip
    state = {"score": {"home": 0, "away": 0}, "phase": "pre_match", "minute": 0, "added": 0}
    mlog.apply(Op("2-0", {"op": "add", "seq": "2-0", "event": old, "state": state}))
    assert loads(mlog.ops[-1].json)["event"]["pinned"] is False
    assert loads(mlog.snapshot().json)["events"][0]["pinned"] is False


# Lineups


def lineup_invalid(body: Any, field: str | None) -> Invalid:
    with pytest.raises(Invalid) as info:
        validate_lineups(body)
    assert info.value.field == field, info.value.message
    return info.value


def players(n: int, starters: int = 0) -> list[dict[str, Any]]:
    return [{"number": i + 1, "name": f"P{i}", "starter": i < starters} for i in range(n)]


def test_lineups_are_stored_whole() -> None:
    given = {"away": {"players": [{"number": 9, "name": "Kaba"}]}}
    assert validate_lineups(given) == {
        "away": {
            "formation": None,
            "coach": None,
            "players": [
                {"number": 9, "name": "Kaba", "position": None, "starter": False, "captain": False}
            ],
        }
    }
    assert validate_lineups({"home": None}) == {"home": None}
    full = {"formation": "4-2-3-1", "coach": "C", "players": players(30, 11)}
    assert validate_lineups({"home": full})["home"]["players"][10]["starter"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, None),
        ({"home": {"players": players(12, 12)}}, "home.players[11].starter"),
        ({"away": {"players": players(31)}}, "away.players"),
        ({"home": {"players": [*players(3), {"number": 2, "name": "X"}]}},
         "home.players[3].number"),
        ({"home": {"players": [{"number": 1, "name": " "}]}}, "home.players[0].name"),
        ({"home": {"players": [{"number": 1, "name": "A", "captain": "y"}]}},
         "home.players[0].captain"),
        ({"home": {"players": [{"number": 1, "name": "A", "age": 3}]}}, "home.players[0]"),
        ({"home": {"players": {}}}, "home.players"),
        ({"home": {"formation": "5-5-1", "players": []}}, "home.formation"),
        ({"home": {"formation": "4-4-2\n", "players": []}}, "home.formation"),
        ({"home": {"formation": "4-0-6", "players": []}}, "home.formation"),
        ({"home": {"coach": "x" * 81, "players": []}}, "home.coach"),
        ({"home": {}}, "home.players"),
        ({"home": []}, "home"),
        ({"both": None}, "both"),
    ],
)  # fmt: skip
def test_lineup_faults_name_the_field(body: Any, field: str | None) -> None:
    lineup_invalid(body, field)


def test_a_side_left_out_stays_and_the_op_says_who() -> None:
    mlog = MatchLog("m")
    mlog.apply(mlog.build_match({"id": "m"}, now=1.0))
    home = validate_lineups({"home": {"players": players(2)}})
    op = mlog.build_lineups(home, by="ann", now=2.0)
    assert op.data == {"op": "lineups", "seq": op.seq, "by": "ann",
                       "lineups": {"home": home["home"], "away": None}}  # fmt: skip
    mlog.apply(op)
    away = validate_lineups({"away": {"players": players(1)}})
    mlog.apply(mlog.build_lineups(away, now=3.0))
    snap = loads(mlog.snapshot().json)
    assert snap["lineups"] == {"home": home["home"], "away": away["away"]}
    assert mlog.state == MatchLog("x").state  # lineups leave the state alone
