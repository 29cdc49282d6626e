"""The JSON Schemas of what clients send and get: one source for validation and the document.

Request bodies and path parts are checked by `check()` against the dicts below (a small
subset of JSON Schema 2020-12: type, enum, minimum, maximum, minLength, maxLength, pattern,
properties, required, additionalProperties: false, items, maxItems, anyOf for "or null");
`ticker/openapi.py` puts the
very same dicts into `/api/openapi.json`. So a limit changed here changes both. Rules that
span fields (the team some event types need) stay in code and are told in descriptions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ticker.errors import Invalid
from ticker.state import STAT_KEYS

Schema = dict[str, Any]

EVENT_TYPES = (
    "kickoff", "goal", "miss", "save", "offside", "yellow_card", "red_card", "substitution",
    "corner", "foul", "var", "injury", "half_time", "second_half", "extra_time",
    "penalty_shootout", "full_time", "comment",
)  # fmt: skip
TEAM_REQUIRED = (
    "goal", "miss", "save", "offside", "yellow_card", "red_card", "substitution", "corner",
    "foul",
)  # fmt: skip
PHASES = (
    "pre_match", "first_half", "half_time", "second_half", "extra_time", "penalties",
    "full_time",
)  # fmt: skip
MATCH_STATUSES = ("scheduled", "live", "finished", "postponed", "abandoned")

# Patterns, and what a value breaking one is told. They are ECMA-262 regexes (OpenAPI's
# dialect) that mean the same in Python; see pattern_test for the one difference, `$`.
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
MATCH_ID = r"^[a-z0-9-]{1,64}$"
SEQ = r"^[0-9]{1,20}-[0-9]{1,20}$"
REPORTER_NAME = r"^[a-z0-9._-]{1,40}$"
# 2-5 lines of 1-9 outfield players, e.g. 4-4-2 or 4-2-3-1 (their sum, 10, is checked in code).
FORMATION = r"^[1-9](-[1-9]){1,4}$"
_BROKEN = {
    NO_NUL: "must not contain NUL characters",
    NOT_BLANK: "must not be empty or contain NUL characters",
    MATCH_ID: "must be 1-64 lowercase letters, digits or '-'",
    SEQ: "must look like '1764100000000-0'",
    REPORTER_NAME: "must be 1-40 of a-z, 0-9, '-', '_', '.'",
    FORMATION: "must be 2-5 digits 1-9 joined by '-', like '4-4-2'",
}


def text(max_length: int, description: str, *, blank: bool = True) -> Schema:
    return {
        "type": "string",
        "maxLength": max_length,
        "pattern": NO_NUL if blank else NOT_BLANK,
        "description": description,
    }


def or_null(schema: Schema) -> Schema:
    """`schema` or null; the same dict inside, so its limits stay those of `schema`."""
    return {"anyOf": [schema, {"type": "null"}]}


def refused(reason: str) -> Schema:
    """A key a client may not send; the error says `<key> <reason>`."""
    return {"not": {}, "description": reason}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


# Requests: event fields (POST) and a correction (PATCH)

_SERVER_SETS = "is set by the server and cannot be sent"
EVENT_TYPE: Schema = {
    "type": "string",
    "enum": list(EVENT_TYPES),
    "description": "The kind of event. A "
    + ", ".join(TEAM_REQUIRED)
    + " event needs a `team` (422 `team` without one, also after a correction).",
}
SIDES = ("home", "away")
SIDE: Schema = {"type": "string", "enum": list(SIDES)}
EVENT_TEAM: Schema = {
    **SIDE,
    "description": "The side the event belongs to; for a goal the side credited.",
}
MINUTE: Schema = {
    "type": "integer",
    "minimum": 0,
    "maximum": 150,
    "description": "Match minute; when left out, the match clock's minute.",
}
ADDED: Schema = {"type": "integer", "minimum": 0, "maximum": 30, "description": "Stoppage time."}
PLAYER = text(80, "A player's name, plain text.")
DETAIL = text(40, "A short qualifier: penalty, own_goal, header, ...")
TEXT = text(2000, "Commentary, plain text (never HTML).")
_EVENT_TEXTS = {
    "player": PLAYER,
    "assist": PLAYER,
    "player_in": PLAYER,
    "player_out": PLAYER,
    "detail": DETAIL,
    "text": TEXT,
}
PINNED: Schema = {
    "type": "boolean",
    "description": "Shown above the feed. Default false; a correction may set or clear it.",
}
_EVENT_REFUSED = {
    name: refused(_SERVER_SETS) for name in ("id", "rev", "at", "author", "edited_by", "edited_at")
}
EVENT_INPUT: Schema = {
    "type": "object",
    "description": "A new event. Unknown fields are refused (422 naming the field).",
    "properties": {
        "type": EVENT_TYPE,
        "minute": MINUTE,
        "added": ADDED,
        "team": EVENT_TEAM,
        **_EVENT_TEXTS,
        "pinned": PINNED,
        **_EVENT_REFUSED,
    },
    "required": ["type"],
    "additionalProperties": False,
}
EVENT_PATCH: Schema = {
    "type": "object",
    "description": "A correction: only the fields to change; null removes the team or a "
    "text field. At least one field (422 otherwise).",
    "properties": {
        "type": EVENT_TYPE,
        "minute": MINUTE,
        "added": ADDED,
        "team": or_null(EVENT_TEAM),
        **{name: or_null(schema) for name, schema in _EVENT_TEXTS.items()},
        "pinned": PINNED,
        **_EVENT_REFUSED,
    },
    "additionalProperties": False,
}

# Requests: a match (POST) and a change to one (PATCH)

MATCH_ID_SCHEMA: Schema = {
    "type": "string",
    "pattern": MATCH_ID,
    "description": "1-64 lowercase letters, digits or '-'.",
}
SEQ_SCHEMA: Schema = {
    "type": "string",
    "pattern": SEQ,
    "description": "An opaque, strictly increasing cursor (`ms-n`).",
}
TEAM_INPUT: Schema = {
    "type": "object",
    "properties": {
        "name": text(80, "The team's name.", blank=False),
        "short": text(8, "Short name (default: the name's first 3 letters).", blank=False),
    },
    "required": ["name"],
    "additionalProperties": False,
}
_MATCH_TEXTS = {
    "competition": or_null(text(120, "The competition.")),
    "kickoff": or_null(text(40, "Kick-off time, ISO 8601 with offset.")),
    "venue": or_null(text(120, "The ground.")),
}
MATCH_STATUS: Schema = {"type": "string", "enum": list(MATCH_STATUSES)}
MATCH_INPUT: Schema = {
    "type": "object",
    "properties": {
        "id": MATCH_ID_SCHEMA,
        "home": TEAM_INPUT,
        "away": TEAM_INPUT,
        **_MATCH_TEXTS,
        "status": MATCH_STATUS,
    },
    "required": ["id", "home", "away"],
    "additionalProperties": False,
}
MATCH_PATCH: Schema = {
    "type": "object",
    "description": "Only the fields to change; null removes competition, kickoff or venue. "
    "At least one field (422 otherwise).",
    "properties": {
        "id": refused("cannot be changed"),
        "home": TEAM_INPUT,
        "away": TEAM_INPUT,
        **_MATCH_TEXTS,
        "status": MATCH_STATUS,
    },
    "additionalProperties": False,
}

# Requests: the console and reporters (checked in ticker/api.py)

SESSION_INPUT: Schema = {
    "type": "object",
    "properties": {
        "token": {
            "type": "string",
            "minLength": 1,
            "description": "A reporter token or the admin token.",
        }
    },
    "required": ["token"],
}
REPORTER_INPUT: Schema = {
    "type": "object",
    "properties": {
        "name": {
            "type": "string",
            "maxLength": 40,
            "pattern": REPORTER_NAME,
            "description": "1-40 of a-z, 0-9, '-', '_', '.'.",
        }
    },
    "required": ["name"],
}
PRESENCE_INPUT: Schema = {
    "type": "object",
    "properties": {
        "typing": or_null({"type": "string", "enum": list(EVENT_TYPES)}),
    },
    "description": "The event type the console has open, or null.",
}

# Requests: lineups (PUT .../lineups). Rules across players (at most 11 starters, shirt
# numbers unique per side) and a formation's sum are kept in ticker/model.py.

MAX_PLAYERS, MAX_STARTERS = 30, 11
POSITIONS = ("GK", "DF", "MF", "FW")
LINEUP_PLAYER_INPUT: Schema = {
    "type": "object",
    "properties": {
        "number": {"type": "integer", "minimum": 1, "maximum": 99, "description": "Shirt."},
        "name": text(80, "The player's name.", blank=False),
        "position": or_null({"type": "string", "enum": list(POSITIONS)}),
        "starter": {"type": "boolean", "description": "In the starting XI (default false)."},
        "captain": {"type": "boolean", "description": "Default false."},
    },
    "required": ["number", "name"],
    "additionalProperties": False,
}
LINEUP_INPUT: Schema = {
    "type": "object",
    "description": f"One side. At most {MAX_PLAYERS} players and {MAX_STARTERS} starters; "
    "shirt numbers unique (422 naming the later player, e.g. `home.players[3].number`, or "
    "the 12th starter's `starter`).",
    "properties": {
        "formation": or_null(
            {
                "type": "string",
                "maxLength": 9,
                "pattern": FORMATION,
                "description": "Outfield lines from the back, summing to 10: 4-4-2, 4-2-3-1.",
            }
        ),
        "coach": or_null(text(80, "The head coach.")),
        "players": {"type": "array", "maxItems": MAX_PLAYERS, "items": LINEUP_PLAYER_INPUT},
    },
    "required": ["players"],
    "additionalProperties": False,
}
LINEUPS_INPUT: Schema = {
    "type": "object",
    "description": "The sides to set; a side left out stays as it was, null clears it. At "
    "least one side (422 otherwise).",
    "properties": {"home": or_null(LINEUP_INPUT), "away": or_null(LINEUP_INPUT)},
    "additionalProperties": False,
}

# Responses. Objects stay open: v1.1 clients ignore fields they do not know, and later
# versions add some.

ERROR: Schema = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable, e.g. `invalid`."},
                "message": {"type": "string", "description": "For people."},
                "field": {
                    "type": ["string", "null"],
                    "description": "The body field (`home.name`), header, path part or "
                    "query parameter at fault; null when no single field is.",
                },
            },
            "required": ["code", "message", "field"],
        }
    },
    "required": ["error"],
}
STALE: Schema = {
    "type": "object",
    "description": "An Error; for a stale `If-Match` it also carries the event as it is now.",
    "properties": {
        "error": {
            **ERROR["properties"]["error"],
            "properties": {**ERROR["properties"]["error"]["properties"], "current": ref("Event")},
        }
    },
    "required": ["error"],
}
TEAM: Schema = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "short": {"type": "string"}},
    "required": ["name", "short"],
}
MATCH: Schema = {
    "type": "object",
    "properties": {
        "id": MATCH_ID_SCHEMA,
        "home": ref("Team"),
        "away": ref("Team"),
        "competition": {"type": "string"},
        "kickoff": {"type": "string"},
        "venue": {"type": "string"},
        "status": MATCH_STATUS,
    },
    "required": ["id", "home", "away"],
}
EVENT: Schema = {
    "type": "object",
    "properties": {
        "id": SEQ_SCHEMA,
        "rev": {"type": "integer", "minimum": 1},
        "type": EVENT_TYPE,
        "minute": MINUTE,
        "added": ADDED,
        "team": EVENT_TEAM,
        **_EVENT_TEXTS,
        "pinned": {"type": "boolean", "description": "False unless set (also on v1 events)."},
        "at": {"type": "string", "format": "date-time"},
        "author": {"type": "string", "description": "Who posted it (stays on corrections)."},
        "edited_by": {"type": "string", "description": "Who made this rev (after a correction)."},
        "edited_at": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "rev", "type", "minute", "added", "pinned", "at", "author"],
}
_COUNT: Schema = {"type": "integer", "minimum": 0}


def _sides_of(item: Schema) -> Schema:
    return {"type": "object", "properties": {"home": item, "away": item}, "required": list(SIDES)}


_NAMED: Schema = {"type": ["string", "null"], "description": "As written; null when unnamed."}
STATE: Schema = {
    "type": "object",
    "properties": {
        "score": _sides_of(_COUNT),
        "phase": {"type": "string", "enum": list(PHASES)},
        "minute": {"type": "integer"},
        "added": {"type": "integer"},
        "stats": _sides_of(
            {
                "type": "object",
                "properties": {key: _COUNT for key in STAT_KEYS},
                "required": list(STAT_KEYS),
            }
        ),
        "sent_off": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"team": SIDE, "player": _NAMED},
                "required": ["team", "player"],
            },
            "description": "Players sent off, in log order.",
        },
        "scorers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "team": SIDE,
                    "player": _NAMED,
                    "minute": {"type": "integer"},
                    "added": {"type": "integer"},
                    "own_goal": {"type": "boolean"},
                },
                "required": ["team", "player", "minute", "added", "own_goal"],
            },
            "description": "Live goals in log order, shoot-out goals left out.",
        },
        "penalties": {
            "anyOf": [_sides_of(_COUNT), {"type": "null"}],
            "description": "Shoot-out goals; null until a penalty_shootout event.",
        },
    },
    "required": ["score", "phase", "minute", "added", "stats", "sent_off", "scorers", "penalties"],
}
LINEUP: Schema = {
    "type": "object",
    "properties": {
        "formation": {"type": ["string", "null"]},
        "coach": {"type": ["string", "null"]},
        "players": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "number": {"type": "integer", "minimum": 1, "maximum": 99},
                    "name": {"type": "string"},
                    "position": {"enum": [*POSITIONS, None]},
                    "starter": {"type": "boolean"},
                    "captain": {"type": "boolean"},
                },
                "required": ["number", "name", "position", "starter", "captain"],
            },
        },
    },
    "required": ["formation", "coach", "players"],
}
LINEUPS: Schema = {
    "type": "object",
    "description": "Both sides; each null until set.",
    "properties": {"home": or_null(ref("Lineup")), "away": or_null(ref("Lineup"))},
    "required": ["home", "away"],
}


def _op(kind: str | list[str], **properties: Schema) -> Schema:
    kinds = [kind] if isinstance(kind, str) else kind
    return {
        "type": "object",
        "properties": {"op": {"enum": kinds}, "seq": SEQ_SCHEMA, **properties},
        "required": ["op", "seq", *properties],
    }


def _by(op: Schema, description: str, **more: Schema) -> Schema:
    """`op` with optional keys saying who made it (ops written before v1.1 have none)."""
    properties = {"by": {"type": "string", "description": description}, **more}
    return {**op, "properties": {**op["properties"], **properties}}


OP: Schema = {
    "description": "One entry of a match log. Clients ignore `op` kinds they do not know.",
    "oneOf": [
        _op(["add", "update"], event=ref("Event"), state=ref("State")),
        _by(
            _op("remove", id=SEQ_SCHEMA, state=ref("State")),
            "Who retracted it.",
            at={"type": "string", "format": "date-time"},
        ),
        _by(_op("match", match=ref("Match")), 'Who (the admin: "admin").'),
        _by(_op("lineups", lineups=ref("Lineups")), "Who set them."),
    ],
}
SNAPSHOT: Schema = {
    "type": "object",
    "properties": {
        "op": {"const": "snapshot"},
        "seq": SEQ_SCHEMA,
        "match": ref("Match"),
        "state": ref("State"),
        "events": {"type": "array", "items": ref("Event"), "description": "Live, oldest first."},
        "lineups": ref("Lineups"),
    },
    "required": ["op", "seq", "match", "state", "events", "lineups"],
}
_VIEWERS: Schema = {**_COUNT, "description": "Fans streaming the match now (all processes)."}
MATCH_SNAPSHOT: Schema = {
    "allOf": [ref("Snapshot")],
    "type": "object",
    "properties": {"viewers": _VIEWERS},
    "required": ["viewers"],
}
MATCH_LIST: Schema = {
    "type": "object",
    "properties": {
        "matches": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "match": ref("Match"),
                    "state": ref("State"),
                    "seq": SEQ_SCHEMA,
                    "viewers": _VIEWERS,
                },
                "required": ["match", "state", "seq", "viewers"],
            },
        }
    },
    "required": ["matches"],
}
OPS_PAGE: Schema = {
    "type": "object",
    "properties": {
        "ops": {"type": "array", "items": ref("Op")},
        "seq": {"type": "string", "description": "The last op returned (or `since`)."},
        "more": {"type": "boolean", "description": "Another page follows: ask from `seq`."},
        "reset": {"type": "boolean", "description": "`since` is unknown: fetch the snapshot."},
    },
    "required": ["ops", "seq"],
}
OP_RESPONSE: Schema = {"type": "object", "properties": {"op": ref("Op")}, "required": ["op"]}
SESSION: Schema = {
    "type": "object",
    "properties": {
        "reporter": {"type": "string"},
        "admin": {"type": "boolean"},
        "csrf": {"type": "string", "description": "Send as `X-CSRF-Token` on cookie writes."},
    },
    "required": ["reporter", "admin", "csrf"],
}
REPORTER_CREATED: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "token": {"type": "string", "description": "Shown once; only its hash is kept."},
    },
    "required": ["name", "token"],
}
REPORTERS: Schema = {
    "type": "object",
    "properties": {"reporters": {"type": "array", "items": {"type": "string"}}},
    "required": ["reporters"],
}
PRESENCE: Schema = {
    "type": "object",
    "properties": {
        "you": {"type": "string"},
        "reporters": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "typing": {"anyOf": [EVENT_TYPE, {"type": "null"}]},
                },
                "required": ["name", "typing"],
            },
            "description": "Everyone present, sorted by name, you included.",
        },
        "ttl": {"type": "number", "description": "Seconds an entry lives unrefreshed."},
    },
    "required": ["you", "reporters", "ttl"],
}
HEALTH: Schema = {
    "type": "object",
    "properties": {
        "ok": {"const": True},
        "engine": {"type": "string"},
        "subscribers": {"type": "integer"},
    },
    "required": ["ok"],
}

# Every named schema, as `#/components/schemas/NAME` of the document.
COMPONENTS: dict[str, Schema] = {
    "EventInput": EVENT_INPUT,
    "EventPatch": EVENT_PATCH,
    "MatchInput": MATCH_INPUT,
    "MatchPatch": MATCH_PATCH,
    "SessionInput": SESSION_INPUT,
    "ReporterInput": REPORTER_INPUT,
    "PresenceInput": PRESENCE_INPUT,
    "LineupsInput": LINEUPS_INPUT,
    "Error": ERROR,
    "ConflictError": STALE,
    "Team": TEAM,
    "Match": MATCH,
    "Event": EVENT,
    "State": STATE,
    "Op": OP,
    "Lineup": LINEUP,
    "Lineups": LINEUPS,
    "Snapshot": SNAPSHOT,
    "MatchSnapshot": MATCH_SNAPSHOT,
    "MatchList": MATCH_LIST,
    "OpsPage": OPS_PAGE,
    "OpResponse": OP_RESPONSE,
    "Session": SESSION,
    "ReporterCreated": REPORTER_CREATED,
    "Reporters": REPORTERS,
    "Presence": PRESENCE,
    "Health": HEALTH,
}


# The checker. It runs on every write: few lookups per field.

_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "object": dict,
    "boolean": bool,
    "array": list,
}
_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "object": "an object",
    "boolean": "true or false",
    "array": "an array",
}


def _no_nul(value: str) -> bool:
    return "\x00" not in value


def _not_blank(value: str) -> bool:
    return "\x00" not in value and value != "" and not value.isspace()


# Pattern -> a test, truthy when the value matches. The two text patterns, on every string
# of every write, are tested without a regex at several times its speed (the same meaning:
# Python's `\s` is str.isspace(); tests/test_openapi.py checks they agree).
_tests: dict[str, Callable[[str], object]] = {NO_NUL: _no_nul, NOT_BLANK: _not_blank}


def pattern_test(pattern: str) -> Callable[[str], object]:
    test = _tests.get(pattern)
    if test is None:
        # ECMA's `$` is the very end; Python's also matches before a final newline.
        source = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
        test = _tests[pattern] = re.compile(source).search
    return test


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def check(schema: Schema, value: Any, field: str) -> Any:
    """`value` if it conforms to `schema`, else Invalid naming `field` (e.g. `home.name`).

    Objects come back with the known keys given. The first fault in the body's order is
    reported, then a missing required key.
    """
    kind = schema.get("type")
    if kind is None:  # an or_null()
        if value is None:
            return None
        schema = schema["anyOf"][0]
        kind = schema["type"]
    if type(value) is not _TYPES[kind]:  # exact: a bool is no integer, 13.0 neither
        if "enum" in schema:
            raise _not_one_of(schema["enum"], value, field)
        raise Invalid(f"{field} must be {_NAMES[kind]}, got {type_name(value)}", field)
    if kind == "string":
        enum = schema.get("enum")
        if enum is not None:
            if value not in enum:
                raise _not_one_of(enum, value, field)
            return value
        limit = schema.get("maxLength")
        if limit is not None and len(value) > limit:
            raise Invalid(f"{field} must be at most {limit} characters, got {len(value)}", field)
        if len(value) < schema.get("minLength", 0):
            raise Invalid(f"{field} must not be empty", field)
        pattern = schema.get("pattern")
        if pattern is not None:
            test = _tests.get(pattern) or pattern_test(pattern)
            if not test(value):
                raise Invalid(f"{field} {_BROKEN[pattern]}", field)
    elif kind == "integer":
        low, high = schema["minimum"], schema["maximum"]
        if not low <= value <= high:
            raise Invalid(f"{field} must be between {low} and {high}, got {value}", field)
    elif kind == "object":
        return _object(schema, value, field)
    elif kind == "array":
        limit = schema["maxItems"]
        if len(value) > limit:
            raise Invalid(f"{field} must have at most {limit} items, got {len(value)}", field)
        items = schema["items"]
        return [check(items, item, f"{field}[{i}]") for i, item in enumerate(value)]
    return value


def _not_one_of(enum: list[str], value: Any, field: str) -> Invalid:
    return Invalid(f"{field} must be one of {', '.join(enum)}, got {value!r:.40}", field)


def _object(schema: Schema, value: dict[str, Any], field: str) -> dict[str, Any]:
    properties: dict[str, Schema] = schema["properties"]
    closed = schema.get("additionalProperties") is False
    clean = {}
    for key, item in value.items():
        sub = properties.get(key)
        if sub is None:
            if not closed:
                continue
            # Within an object the object is named; at the top the key itself is the field.
            if field:
                raise Invalid(f"unknown field {key[:40]!r} in {field}", field)
            raise Invalid(f"unknown field {key[:40]!r}", key[:40])
        if "not" in sub:
            raise Invalid(f"{key} {sub['description']}", key)
        clean[key] = check(sub, item, f"{field}.{key}" if field else key)
    for key in schema.get("required", ()):
        if key not in value:
            name = f"{field}.{key}" if field else key
            raise Invalid(f"{name} is required", name)
    return clean
