"""HTTP JSON routes of the public API (see PROTOCOL.md), reporter sessions and reporters."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ticker import schema
from ticker.auth import SESSION_COOKIE, Auth, new_token, token_hash
from ticker.engines.base import Engine, Idempotency
from ticker.errors import (
    BadRequest,
    EngineUnavailable,
    Invalid,
    TickerError,
    TooLarge,
    Unauthorized,
)
from ticker.limits import Limits
from ticker.log import MatchLog, live_first
from ticker.model import (
    Op,
    is_seq,
    validate_event_id,
    validate_event_input,
    validate_lineups,
    validate_match,
    validate_match_id,
)
from ticker.openapi import openapi_json

MAX_OPS_PAGE = 1000


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _auth(request: Request) -> Auth:
    return request.app.state.auth  # type: ignore[no-any-return]


def _limits(request: Request) -> Limits:
    return request.app.state.limits  # type: ignore[no-any-return]


class UnsupportedMediaType(TickerError):
    status, code = 415, "unsupported_media_type"


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    kind, _, sub = media.partition("/")
    return kind == "application" and (sub == "json" or sub.endswith("+json"))


def _decimal(value: str, most: int = 9) -> int | None:
    """A small ASCII decimal, else None (`isdigit` alone takes '²' and 5,000 digits)."""
    if value.isascii() and value.isdigit() and len(value) <= most:
        return int(value)
    return None


async def read_json(request: Request) -> Any:
    """The request body as JSON, refusing bodies over the configured limit early.

    Only with a JSON content type: a cross-site form can send text/plain or form data
    without a preflight, never application/json.
    """
    limit = request.app.state.settings.max_body
    declared = request.headers.get("content-length")
    size = None if declared is None else _decimal(declared, 18)
    if size is not None and size > limit:
        raise TooLarge(f"request body is over {limit} bytes")
    # No body at all is the 400 below, whatever its type.
    if declared != "0" and not _is_json(request.headers.get("content-type", "")):
        raise UnsupportedMediaType(
            "the body must be JSON, sent as Content-Type: application/json", "Content-Type"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"request body is over {limit} bytes")
    if not body.strip():
        raise BadRequest("request body must be JSON, got an empty body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def _idempotency(request: Request, body: Any) -> Idempotency | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isprintable() or not key.isascii():
        raise BadRequest(
            "Idempotency-Key must be 1-200 printable ASCII characters", "Idempotency-Key"
        )
    canon = request.url.path.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return Idempotency(key, hashlib.sha256(canon).hexdigest()[:32])


# Matches


async def list_matches(request: Request) -> Response:
    logs = sorted(await _engine(request).logs(), key=live_first)
    count = request.app.state.viewers.count
    return JSONResponse({"matches": [{**m.summary(), "viewers": count(m.id)} for m in logs]})


async def create_match(request: Request) -> Response:
    who = await _auth(request).writer(request, admin=True)
    fields = validate_match(await read_json(request))
    op = MatchLog(fields["id"]).build_match(fields, by=who.name)
    await _engine(request).create_match(op)
    return JSONResponse(op.data["match"], status_code=201)


def _match_id(request: Request) -> str:
    return validate_match_id(request.path_params["match_id"])


async def get_match(request: Request) -> Response:
    mlog = await _engine(request).log(_match_id(request))
    # The snapshot's bytes as fans get them, and the viewer count spliced in before the `}`.
    viewers = request.app.state.viewers.count(mlog.id)
    return JSONResponse(mlog.snapshot().json[:-1] + b',"viewers":%d}' % viewers)


async def patch_match(request: Request) -> Response:
    who = await _auth(request).writer(request, admin=True)
    match_id = _match_id(request)
    fields = validate_match(await read_json(request), partial=True)
    if not fields:
        raise Invalid("a change must name at least one field")
    op, _ = await _engine(request).append(
        match_id, lambda mlog: mlog.build_match(fields, by=who.name)
    )
    return JSONResponse(op.data["match"])


async def list_ops(request: Request) -> Response:
    mlog = await _engine(request).log(_match_id(request))
    since = request.query_params.get("since")
    limit = _decimal(request.query_params.get("limit", str(MAX_OPS_PAGE)))
    if limit is None or not 1 <= limit <= MAX_OPS_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_OPS_PAGE}", "limit")
    if since is None:
        ops = mlog.ops
    elif not is_seq(since):
        raise BadRequest("since must be a seq like '1764100000000-0'", "since")
    else:
        found = mlog.since(since)
        if found is None:
            return JSONResponse({"ops": [], "seq": mlog.head, "reset": True})
        ops = found
    page = ops[:limit]
    last = page[-1].seq if page else (since or mlog.head)
    body = b'{"ops":[' + b",".join(op.json for op in page) + b'],"seq":' + orjson.dumps(last)
    if len(ops) > limit:
        body += b',"more":true'
    return JSONResponse(body + b"}")


# Events


def _op_response(op: Op, status: int = 200) -> Response:
    """`{"op": ...}` around the op's bytes as stored: nothing is encoded again."""
    return JSONResponse(b'{"op":' + op.json + b"}", status_code=status)


async def post_event(request: Request) -> Response:
    who = await _auth(request).writer(request)
    match_id = _match_id(request)
    body = await read_json(request)
    fields = validate_event_input(body)
    idem = _idempotency(request, body)
    op, created = await _engine(request).append(
        match_id, lambda mlog: mlog.build_add(fields, who.name), idem
    )
    return _op_response(op, 201 if created else 200)


def _if_match(request: Request) -> int | None:
    """The rev in `If-Match` (`3` or `"3"`), None without one or for `*` (any rev).

    A weak tag (`W/"3"`) is refused: If-Match compares strongly, and a rev is exact.
    """
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip()
    if value == "*":
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    rev = _decimal(value)
    if rev is None:
        raise BadRequest(
            'If-Match must be one event rev, a decimal like 3 or "3" (no W/ weak tags, no lists)',
            "If-Match",
        )
    return rev


async def patch_event(request: Request) -> Response:
    who = await _auth(request).writer(request)
    match_id = _match_id(request)
    event_id = validate_event_id(request.path_params["event_id"])
    if_match = _if_match(request)
    body = await read_json(request)
    fields = validate_event_input(body, partial=True)
    # The rev is checked inside the builder: against the head the op is appended to.
    op, _ = await _engine(request).append(
        match_id,
        lambda mlog: mlog.build_update(event_id, fields, by=who.name, if_match=if_match),
        _idempotency(request, body),
    )
    return _op_response(op)


async def delete_event(request: Request) -> Response:
    who = await _auth(request).writer(request)
    match_id = _match_id(request)
    event_id = validate_event_id(request.path_params["event_id"])
    if_match = _if_match(request)
    op, _ = await _engine(request).append(
        match_id,
        lambda mlog: mlog.build_remove(event_id, by=who.name, if_match=if_match),
        _idempotency(request, None),
    )
    return _op_response(op)


async def put_lineups(request: Request) -> Response:
    who = await _auth(request).writer(request)
    match_id = _match_id(request)
    body = await read_json(request)
    sides = validate_lineups(body)
    op, _ = await _engine(request).append(
        match_id, lambda mlog: mlog.build_lineups(sides, by=who.name), _idempotency(request, body)
    )
    return _op_response(op)


# Reporter sessions (the console) and reporters (admin)


def _fields(body: Any, checked: schema.Schema) -> dict[str, Any]:
    """A small body checked against its schema (a 422 names the field, as for events)."""
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {schema.type_name(body)}")
    return schema.check(checked, body, "")  # type: ignore[no-any-return]


async def create_session(request: Request) -> Response:
    limits, auth = _limits(request), _auth(request)
    address = limits.address(request.scope)
    await limits.check_failures(address)
    token = _fields(await read_json(request), schema.SESSION_INPUT)["token"]
    who = await auth.check_token(token.strip())
    if who is None:
        await limits.failed(address)
        raise Invalid("unknown or revoked token", "token")
    if old := request.cookies.get(SESSION_COOKIE):
        await auth.sign_out(old)  # a sign-in always starts a new session, never reuses one
    session_id, csrf = await auth.sign_in(who)
    response = JSONResponse({"reporter": who.name, "admin": who.admin, "csrf": csrf})
    # The cookie lives as long as a session can; the server ends it sooner when idle.
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(auth.max_age),
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.secure_cookies,
    )
    return response


async def get_session(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    who = await _auth(request).session(cookie) if cookie else None
    if who is None:
        return JSONResponse(Unauthorized("not signed in").body(), status_code=401)
    return JSONResponse({"reporter": who.name, "admin": who.admin, "csrf": who.csrf})


async def delete_session(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await _auth(request).sign_out(cookie)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.secure_cookies,
    )
    return response


async def create_reporter(request: Request) -> Response:
    await _auth(request).writer(request, admin=True)
    name = _fields(await read_json(request), schema.REPORTER_INPUT)["name"]
    token = new_token()
    await _engine(request).add_reporter(name, token_hash(token))
    return JSONResponse({"name": name, "token": token}, status_code=201)


async def list_reporters(request: Request) -> Response:
    await _auth(request).writer(request, admin=True)
    return JSONResponse({"reporters": await _engine(request).reporters()})


async def revoke_reporter(request: Request) -> Response:
    await _auth(request).writer(request, admin=True)
    name = request.path_params["name"]
    if not await _engine(request).revoke_reporter(name):
        raise Invalid(f"no reporter {name[:40]!r}", "name")
    return Response(status_code=204)


async def healthz(request: Request) -> Response:
    engine = _engine(request)
    try:
        facts = await engine.ping()
    except EngineUnavailable as exc:
        # The cause names hosts and ports: it goes to the log, not to whoever asks.
        logging.getLogger("ticker").warning("healthz: %s (%s)", exc.message, exc.__cause__)
        return JSONResponse(exc.body(), status_code=503)
    hub = request.app.state.hub
    return JSONResponse(
        {"ok": True, "engine": engine.name, "subscribers": hub.subscribers, **facts}
    )


routes: list[BaseRoute] = [
    Route("/healthz", healthz),
    Route("/api/matches", list_matches, methods=["GET"]),
    Route("/api/matches", create_match, methods=["POST"]),
    Route("/api/matches/{match_id}", get_match, methods=["GET"]),
    Route("/api/matches/{match_id}", patch_match, methods=["PATCH"]),
    Route("/api/matches/{match_id}/ops", list_ops, methods=["GET"]),
    Route("/api/matches/{match_id}/events", post_event, methods=["POST"]),
    Route("/api/matches/{match_id}/events/{event_id}", patch_event, methods=["PATCH"]),
    Route("/api/matches/{match_id}/events/{event_id}", delete_event, methods=["DELETE"]),
    Route("/api/matches/{match_id}/lineups", put_lineups, methods=["PUT"]),
    Route("/api/session", create_session, methods=["POST"]),
    Route("/api/session", get_session, methods=["GET"]),
    Route("/api/session", delete_session, methods=["DELETE"]),
    Route("/api/reporters", create_reporter, methods=["POST"]),
    Route("/api/reporters", list_reporters, methods=["GET"]),
    Route("/api/reporters/{name}", revoke_reporter, methods=["DELETE"]),
    Route("/api/openapi.json", openapi_json, methods=["GET"]),
]
