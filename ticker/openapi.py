"""`GET /api/openapi.json`: the OpenAPI 3.1 document of the HTTP API.

Its schemas are the dicts of ticker/schema.py that validate requests, so the document and
the checks cannot drift apart. A new route is one entry in `_paths()` (tests/test_openapi.py
checks that every /api route of the app has one); a new error status one line in `_ERRORS`.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ticker import schema
from ticker.auth import SESSION_COOKIE
from ticker.schema import Schema, ref

# What each error status means on this API; an operation may say more about its own.
_ERRORS = {
    400: "The body is not JSON or not an object, or a header or query parameter is malformed.",
    401: "No token, an unknown or revoked one, or an ended session (`unauthorized`).",
    403: "Needs the admin token, or a cookie write without its `X-CSRF-Token` (`forbidden`).",
    404: "No such match (`match_not_found`).",
    408: "The body came too slowly.",
    409: "Conflicts with what exists (`conflict`).",
    413: "The body is over `TICKER_MAX_BODY` bytes (`too_large`).",
    415: "The body is not `application/json`.",
    422: "A field breaks a rule; `field` names it (`invalid`). Nothing was written.",
    429: "Too many requests from this token or address (`rate_limited`); see `Retry-After`.",
    503: "Storage is unreachable (`unavailable`); nothing was written.",
}
# Statuses of a write that carries a JSON body, and of one without a body.
_BODY_WRITE = (400, 401, 403, 408, 413, 415, 422, 429, 503)
_WRITE = (400, 401, 403, 429, 503)


def _json(body: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": body}}


def _param(name: str, where: str, body: Schema, description: str, **extra: Any) -> Schema:
    return {"name": name, "in": where, "schema": body, "description": description, **extra}


_MATCH_ID = _param("match_id", "path", schema.MATCH_ID_SCHEMA, "The match.", required=True)
_EVENT_ID = _param("event_id", "path", schema.SEQ_SCHEMA, "The event's `id`.", required=True)
_IDEMPOTENCY_KEY = _param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[\\x20-\\x7e]+$"},
    "A repeat with the same key (and body) answers 200 with the original op and appends "
    "nothing; the same key with another body answers 409 (`field`: `Idempotency-Key`). "
    "Kept 7 days per match.",
)
_IF_MATCH = _param(
    "If-Match",
    "header",
    {"type": "string", "maxLength": 40},
    'The `rev` the client last saw: `3` or `"3"` (`*`: any rev). A stale rev answers 409 '
    "with the event as it is now in `error.current`; nothing is appended.",
)
_REPORTER = _param("name", "path", {"type": "string"}, "The reporter.", required=True)
_CSRF = _param(
    "X-CSRF-Token", "header", {"type": "string"}, "The session's `csrf`, on cookie writes."
)
_WRITERS: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": []}]


def _operation(
    summary: str,
    ok: dict[int, tuple[str, Schema | None]],
    errors: tuple[int, ...] = (),
    *,
    tag: str,
    body: str | None = None,
    params: tuple[Schema, ...] = (),
    auth: bool = False,
    notes: dict[int, str] | None = None,
    bodies: dict[int, Schema] | None = None,
) -> Schema:
    """One operation; `ok` maps each success status to its description and body schema."""
    responses: Schema = {}
    for status, (description, content) in ok.items():
        responses[str(status)] = {"description": description}
        if content is not None:
            responses[str(status)]["content"] = _json(content)
    for status in errors:
        responses[str(status)] = {
            "description": (notes or {}).get(status, _ERRORS[status]),
            "content": _json((bodies or {}).get(status, ref("Error"))),
        }
        if status == 429:
            responses["429"]["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            }
    op: Schema = {"summary": summary, "tags": [tag], "responses": responses}
    if auth:
        params = (*params, _CSRF)
        op["security"] = _WRITERS
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = {"required": True, "content": _json(ref(body))}
    return op


def _paths(max_ops_page: int) -> dict[str, Schema]:
    not_found_event = {404: "No such match, or no live event with this id (`not_found`)."}
    idem_conflict = {409: "The `Idempotency-Key` was used with another body."}
    if_match = {
        400: _ERRORS[400] + " `If-Match` that is not one rev (`field`: `If-Match`).",
        409: "A stale `If-Match` (`field`: `If-Match`; `error.current` is the event as it "
        "is now), or the `Idempotency-Key` was used with another body.",
    }
    stale = {409: ref("ConflictError")}
    presence = {
        401: _ERRORS[401],
        404: _ERRORS[404],
        422: "`typing` is not null or an event type (`field`: `typing`), or a bad `match_id`.",
    }
    repeat = ("A repeat of an `Idempotency-Key`: the original op.", ref("OpResponse"))
    return {
        "/api/matches": {
            "get": _operation(
                "Every match, in-play first, then upcoming by kick-off, then finished",
                {200: ("The matches.", ref("MatchList"))},
                (503,),
                tag="matches",
            ),
            "post": _operation(
                "Create a match (admin); appends its first op, a `match` op",
                {201: ("The match as stored.", ref("Match"))},
                (*_BODY_WRITE, 409),
                tag="matches",
                body="MatchInput",
                auth=True,
                notes={409: "A match with this id exists (`field`: `id`)."},
            ),
        },
        "/api/matches/{match_id}": {
            "get": _operation(
                "The match's snapshot: match, state, live events",
                {200: ("The snapshot, with the viewer count.", ref("MatchSnapshot"))},
                (404, 422, 503),
                tag="matches",
                params=(_MATCH_ID,),
            ),
            "patch": _operation(
                "Change a match's metadata (admin); appends a `match` op",
                {200: ("The match as it now stands.", ref("Match"))},
                (*_BODY_WRITE, 404),
                tag="matches",
                body="MatchPatch",
                params=(_MATCH_ID,),
                auth=True,
            ),
        },
        "/api/matches/{match_id}/ops": {
            "get": _operation(
                "The match's ops after `since`, oldest first, in pages",
                {200: ("A page of ops.", ref("OpsPage"))},
                (400, 404, 422, 503),
                tag="matches",
                params=(
                    _MATCH_ID,
                    _param("since", "query", schema.SEQ_SCHEMA, "The last seq the client has."),
                    _param(
                        "limit",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": max_ops_page},
                        f"Ops per page (default {max_ops_page}).",
                    ),
                ),
            ),
        },
        "/api/matches/{match_id}/events": {
            "post": _operation(
                "Post an event (reporter); appends an `add` op",
                {201: ("The `add` op.", ref("OpResponse")), 200: repeat},
                (*_BODY_WRITE, 404, 409),
                tag="events",
                body="EventInput",
                params=(_MATCH_ID, _IDEMPOTENCY_KEY),
                auth=True,
                notes=idem_conflict,
            ),
        },
        "/api/matches/{match_id}/events/{event_id}": {
            "patch": _operation(
                "Correct a live event (reporter); appends an `update` op",
                {200: ("The `update` op.", ref("OpResponse"))},
                (*_BODY_WRITE, 404, 409),
                tag="events",
                body="EventPatch",
                params=(_MATCH_ID, _EVENT_ID, _IF_MATCH, _IDEMPOTENCY_KEY),
                auth=True,
                notes={**not_found_event, **if_match},
                bodies=stale,
            ),
            "delete": _operation(
                "Retract a live event (reporter); appends a `remove` op",
                {200: ("The `remove` op.", ref("OpResponse"))},
                (*_WRITE, 404, 409, 422),
                tag="events",
                params=(_MATCH_ID, _EVENT_ID, _IF_MATCH, _IDEMPOTENCY_KEY),
                auth=True,
                notes={**not_found_event, **if_match},
                bodies=stale,
            ),
        },
        "/api/matches/{match_id}/lineups": {
            "put": _operation(
                "Set one or both sides' lineups (reporter); appends a `lineups` op",
                {200: ("The `lineups` op, both sides as they now stand.", ref("OpResponse"))},
                (*_BODY_WRITE, 404, 409),
                tag="matches",
                body="LineupsInput",
                params=(_MATCH_ID, _IDEMPOTENCY_KEY),
                auth=True,
                notes=idem_conflict,
            ),
        },
        "/api/matches/{match_id}/presence": {
            "put": _operation(
                "A console's heartbeat: here, with this event type open (reporter)",
                {200: ("Everyone present.", ref("Presence"))},
                (400, 401, 403, 404, 408, 413, 415, 422, 429, 503),
                tag="console",
                body="PresenceInput",
                params=(_MATCH_ID,),
                auth=True,
                notes=presence,
            ),
            "get": _operation(
                "Who is present (reporter); no heartbeat",
                {200: ("Everyone present.", ref("Presence"))},
                (401, 403, 404, 422, 429, 503),
                tag="console",
                params=(_MATCH_ID,),
                auth=True,
                notes=presence,
            ),
            "delete": _operation(
                "Gone from the match (reporter)",
                {204: ("Gone.", None)},
                (401, 403, 404, 422, 429, 503),
                tag="console",
                params=(_MATCH_ID,),
                auth=True,
                notes=presence,
            ),
        },
        "/api/session": {
            "post": _operation(
                "Sign in to the console with a token; sets an HttpOnly session cookie",
                {200: ("Signed in.", ref("Session"))},
                (400, 408, 413, 415, 422, 429, 503),
                tag="console",
                body="SessionInput",
                notes={
                    422: "No token, or an unknown or revoked one (`field`: `token`).",
                    429: "Too many failed sign-ins from this address; wait a minute.",
                },
            ),
            "get": _operation(
                "Who is signed in (by the session cookie)",
                {200: ("Signed in.", ref("Session"))},
                (401, 503),
                tag="console",
            ),
            "delete": _operation("Sign out", {204: ("Signed out.", None)}, (429,), tag="console"),
        },
        "/api/reporters": {
            "post": _operation(
                "Add a reporter (admin); its token is shown once",
                {201: ("The reporter and its token.", ref("ReporterCreated"))},
                (*_BODY_WRITE, 409),
                tag="reporters",
                body="ReporterInput",
                auth=True,
                notes={409: "A reporter with this name exists (`field`: `name`)."},
            ),
            "get": _operation(
                "The reporters' names (admin)",
                {200: ("The names.", ref("Reporters"))},
                (401, 403, 429, 503),
                tag="reporters",
                auth=True,
            ),
        },
        "/api/reporters/{name}": {
            "delete": _operation(
                "Revoke a reporter (admin); its console sessions end with it",
                {204: ("Revoked.", None)},
                (401, 403, 422, 429, 503),
                tag="reporters",
                params=(_REPORTER,),
                auth=True,
                notes={422: "No reporter of this name (`field`: `name`)."},
            ),
        },
        "/api/openapi.json": {
            "get": _operation(
                "This document", {200: ("OpenAPI 3.1.", {"type": "object"})}, tag="discovery"
            ),
        },
        "/healthz": {
            "get": _operation(
                "Whether this process can serve",
                {200: ("It can.", ref("Health"))},
                (503,),
                tag="discovery",
                notes={503: "Its storage is unreachable (`unavailable`)."},
            ),
        },
    }


def build_document() -> Schema:
    """The document, from the schemas as they are now."""
    from ticker.api import MAX_OPS_PAGE  # here: ticker.api imports this module

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ticker",
            "version": "1.1",
            "description": "Live football match ticker, protocol v1.1: the HTTP API. Reads are "
            "public; writes need `Authorization: Bearer TOKEN` or a console session cookie "
            'with `X-CSRF-Token`. Every error body is `{"error": {"code", "message", '
            '"field"}}`.',
        },
        "paths": _paths(MAX_OPS_PAGE),
        "components": {
            "schemas": schema.COMPONENTS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A reporter token, or the admin token (`TICKER_ADMIN_TOKEN`).",
                },
                "cookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "The console's session (`POST /api/session`); writes "
                    "with it also send `X-CSRF-Token`.",
                },
            },
        },
    }


@functools.cache
def _encoded() -> bytes:
    return orjson.dumps(build_document())


async def openapi_json(request: Request) -> Response:
    return Response(_encoded(), media_type="application/json")
