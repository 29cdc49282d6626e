"""Match, Event and Op shapes, their validation, and seq ordering.

Everything here is pure: plain dicts in, plain dicts out, errors that name the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ticker.errors import BadRequest, Invalid
from ticker.wire import Message, dumps, loads

EVENT_TYPES = frozenset(
    {
        "kickoff",
        "goal",
        "miss",
        "save",
        "offside",
        "yellow_card",
        "red_card",
        "substitution",
        "corner",
        "foul",
        "var",
        "injury",
        "half_time",
        "second_half",
        "extra_time",
        "penalty_shootout",
        "full_time",
        "comment",
    }
)
TEAM_REQUIRED = frozenset(
    {"goal", "miss", "save", "offside", "yellow_card", "red_card", "substitution", "corner", "foul"}
)
PHASES = (
    "pre_match",
    "first_half",
    "half_time",
    "second_half",
    "extra_time",
    "penalties",
    "full_time",
)
SERVER_FIELDS = frozenset({"id", "rev", "at", "author"})
_STRING_LIMITS = {
    "player": 80,
    "assist": 80,
    "player_in": 80,
    "player_out": 80,
    "detail": 40,
    "text": 2000,
}
EVENT_FIELDS = frozenset({"type", "minute", "added", "team"} | _STRING_LIMITS.keys())
MATCH_ID_RE = re.compile(r"[a-z0-9-]{1,64}\Z")
SEQ_RE = re.compile(r"([0-9]{1,20})-([0-9]{1,20})\Z")
MATCH_STATUSES = frozenset({"scheduled", "live", "finished", "postponed", "abandoned"})


def seq_key(seq: str) -> tuple[int, int]:
    """Order key of a seq; raises BadRequest when it is not of the `ms-n` form."""
    m = SEQ_RE.match(seq)
    if m is None:
        raise BadRequest(f"seq must look like '1764100000000-0', got {seq[:40]!r}", "since")
    return int(m.group(1)), int(m.group(2))


def is_seq(value: str) -> bool:
    return SEQ_RE.match(value) is not None


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"{what} must be a JSON object, got {_type_name(body)}")
    return body


def _int_field(body: dict[str, Any], name: str, low: int, high: int) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name} must be an integer, got {_type_name(value)}", name)
    if not low <= value <= high:
        raise Invalid(f"{name} must be between {low} and {high}, got {value}", name)
    return value


def _str_field(
    body: dict[str, Any], name: str, limit: int, *, empty: bool = True, field: str | None = None
) -> str:
    field = field or name
    value = body[name]
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string, got {_type_name(value)}", field)
    if len(value) > limit:
        raise Invalid(f"{field} must be at most {limit} characters, got {len(value)}", field)
    if not empty and not value.strip():
        raise Invalid(f"{field} must not be empty", field)
    if "\x00" in value:
        raise Invalid(f"{field} must not contain NUL characters", field)
    return value


def validate_event_input(body: Any, *, partial: bool = False) -> dict[str, Any]:
    """Check reporter-supplied event fields; returns a clean dict of the fields given.

    With `partial` (a correction), every field is optional and `null` deletes an optional
    text field or the team.
    """
    body = _require_object(body, "event")
    for key in body:
        if key in SERVER_FIELDS:
            raise Invalid(f"{key} is set by the server and cannot be sent", key)
        if key not in EVENT_FIELDS:
            raise Invalid(f"unknown field {key[:40]!r}", key[:40])
    clean: dict[str, Any] = {}
    if "type" in body:
        kind = body["type"]
        if not isinstance(kind, str) or kind not in EVENT_TYPES:
            raise Invalid(f"type must be one of {', '.join(sorted(EVENT_TYPES))}", "type")
        clean["type"] = kind
    elif not partial:
        raise Invalid("type is required", "type")
    for name, low, high in (("minute", 0, 150), ("added", 0, 30)):
        if name in body:
            clean[name] = _int_field(body, name, low, high)
    if "team" in body:
        team = body["team"]
        if team is None and partial:
            clean["team"] = None
        elif team not in ("home", "away"):
            raise Invalid(f"team must be 'home' or 'away', got {team!r:.40}", "team")
        else:
            clean["team"] = team
    for name, limit in _STRING_LIMITS.items():
        if name in body:
            if body[name] is None:
                clean[name] = None
            else:
                clean[name] = _str_field(body, name, limit)
    return clean


def check_event(event: dict[str, Any]) -> None:
    """Rules that hold for a whole event, after a correction is merged in."""
    if event["type"] in TEAM_REQUIRED and event.get("team") is None:
        raise Invalid(f"team is required for a {event['type']} event", "team")


def validate_match(body: Any, *, partial: bool = False) -> dict[str, Any]:
    """Check a Match object (or, with `partial`, the fields of a PATCH)."""
    body = _require_object(body, "match")
    allowed = {"id", "home", "away", "competition", "kickoff", "venue", "status"}
    for key in body:
        if key not in allowed:
            raise Invalid(f"unknown field {key[:40]!r}", key[:40])
    clean: dict[str, Any] = {}
    if "id" in body:
        if partial:
            raise Invalid("id cannot be changed", "id")
        match_id = body["id"]
        if not isinstance(match_id, str) or not MATCH_ID_RE.match(match_id):
            raise Invalid("id must be 1-64 lowercase letters, digits or '-'", "id")
        clean["id"] = match_id
    elif not partial:
        raise Invalid("id is required", "id")
    for side in ("home", "away"):
        if side not in body:
            if not partial:
                raise Invalid(f"{side} is required", side)
            continue
        team = body[side]
        if not isinstance(team, dict):
            raise Invalid(f"{side} must be an object with name and short", side)
        extra = set(team) - {"name", "short"}
        if extra:
            raise Invalid(f"unknown field {sorted(extra)[0]!r} in {side}", side)
        if "name" not in team:
            raise Invalid(f"{side}.name is required", f"{side}.name")
        name = _str_field(team, "name", 80, empty=False, field=f"{side}.name")
        short = (
            _str_field(team, "short", 8, empty=False, field=f"{side}.short")
            if "short" in team
            else name[:3].upper()
        )
        clean[side] = {"name": name, "short": short}
    for name, limit in (("competition", 120), ("venue", 120), ("kickoff", 40)):
        if name in body and body[name] is not None:
            clean[name] = _str_field(body, name, limit)
        elif name in body:
            clean[name] = None
    if "status" in body:
        if not isinstance(body["status"], str) or body["status"] not in MATCH_STATUSES:
            raise Invalid(f"status must be one of {', '.join(sorted(MATCH_STATUSES))}", "status")
        clean["status"] = body["status"]
    return clean


def validate_match_id(match_id: str) -> str:
    if not MATCH_ID_RE.match(match_id):
        raise Invalid("match id must be 1-64 lowercase letters, digits or '-'", "match_id")
    return match_id


def validate_event_id(event_id: str) -> str:
    if not SEQ_RE.match(event_id):
        raise Invalid("event id must look like '1764100000000-0'", "event_id")
    return event_id


@dataclass(slots=True)
class Op:
    """One entry of a match log. `data` is the op exactly as clients see it."""

    seq: str
    data: dict[str, Any]
    key: tuple[int, int] = field(init=False)
    _message: Message | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.key = seq_key(self.seq)

    @classmethod
    def from_json(cls, raw: bytes) -> Op:
        """An op read back from storage; its stored bytes are reused, not re-encoded."""
        data = loads(raw)
        op = cls(data["seq"], data)
        op._message = Message(op.seq, data["op"], raw)
        return op

    @property
    def message(self) -> Message:
        """The op encoded for the wire, once."""
        if self._message is None:
            self._message = Message(self.seq, self.data["op"], dumps(self.data))
        return self._message

    @property
    def json(self) -> bytes:
        return self.message.json
