"""Match, Event and Op shapes, their validation, and seq ordering.

Everything here is pure: plain dicts in, plain dicts out, errors that name the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ticker import schema
from ticker.errors import BadRequest, Invalid
from ticker.wire import Message, dumps, loads

EVENT_TYPES = frozenset(schema.EVENT_TYPES)
TEAM_REQUIRED = frozenset(schema.TEAM_REQUIRED)
PHASES = schema.PHASES
MATCH_STATUSES = frozenset(schema.MATCH_STATUSES)
# The match id pattern of ticker/schema.py, for code that matches ids outside requests.
MATCH_ID_RE = re.compile(r"[a-z0-9-]{1,64}\Z")
SEQ_RE = re.compile(r"([0-9]{1,20})-([0-9]{1,20})\Z")


def seq_key(seq: str) -> tuple[int, int]:
    """Order key of a seq; raises BadRequest when it is not of the `ms-n` form."""
    m = SEQ_RE.match(seq)
    if m is None:
        raise BadRequest(f"seq must look like '1764100000000-0', got {seq[:40]!r}", "since")
    return int(m.group(1)), int(m.group(2))


def is_seq(value: str) -> bool:
    return SEQ_RE.match(value) is not None


def _require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"{what} must be a JSON object, got {schema.type_name(body)}")
    return body


def validate_event_input(body: Any, *, partial: bool = False) -> dict[str, Any]:
    """Check reporter-supplied event fields; returns a clean dict of the fields given.

    With `partial` (a correction), every field is optional and `null` deletes an optional
    text field or the team.
    """
    body = _require_object(body, "event")
    return schema.check(schema.EVENT_PATCH if partial else schema.EVENT_INPUT, body, "")  # type: ignore[no-any-return]


def check_event(event: dict[str, Any]) -> None:
    """Rules that hold for a whole event, after a correction is merged in."""
    if event["type"] in TEAM_REQUIRED and event.get("team") is None:
        raise Invalid(f"team is required for a {event['type']} event", "team")


def validate_match(body: Any, *, partial: bool = False) -> dict[str, Any]:
    """Check a Match object (or, with `partial`, the fields of a PATCH)."""
    body = _require_object(body, "match")
    clean: dict[str, Any] = schema.check(
        schema.MATCH_PATCH if partial else schema.MATCH_INPUT, body, ""
    )
    for side in ("home", "away"):
        if side in clean and "short" not in clean[side]:
            clean[side] = {**clean[side], "short": clean[side]["name"][:3].upper()}
    return clean


def validate_lineups(body: Any) -> dict[str, Any]:
    """Check a lineups PUT: the sides given, each whole, in the order clients see them.

    Beyond the schema: at most 11 starters (the 12th starter's `starter` is at fault),
    shirt numbers unique per side (the later player's `number`), a formation summing to 10.
    """
    body = _require_object(body, "lineups")
    clean: dict[str, Any] = schema.check(schema.LINEUPS_INPUT, body, "")
    if not clean:
        raise Invalid("name at least one side, home or away")
    for side, lineup in clean.items():
        if lineup is not None:
            clean[side] = _lineup(lineup, side)
    return clean


def _lineup(lineup: dict[str, Any], side: str) -> dict[str, Any]:
    formation = lineup.get("formation")
    if formation is not None and sum(map(int, formation.split("-"))) != 10:
        raise Invalid(f"{side}.formation must sum to 10 outfield players", f"{side}.formation")
    players, numbers, starters = [], set(), 0
    for i, given in enumerate(lineup["players"]):
        where = f"{side}.players[{i}]"
        if given["number"] in numbers:
            message = f"{where}.number {given['number']} is taken earlier in this side"
            raise Invalid(message, f"{where}.number")
        numbers.add(given["number"])
        player = {
            "number": given["number"],
            "name": given["name"],
            "position": given.get("position"),
            "starter": given.get("starter", False),
            "captain": given.get("captain", False),
        }
        starters += player["starter"]
        if starters > schema.MAX_STARTERS:
            message = f"{where}.starter: at most {schema.MAX_STARTERS} starters per side"
            raise Invalid(message, f"{where}.starter")
        players.append(player)
    return {"formation": formation, "coach": lineup.get("coach"), "players": players}


def validate_match_id(match_id: str) -> str:
    return schema.check(schema.MATCH_ID_SCHEMA, match_id, "match_id")  # type: ignore[no-any-return]


def validate_event_id(event_id: str) -> str:
    return schema.check(schema.SEQ_SCHEMA, event_id, "event_id")  # type: ignore[no-any-return]


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
