"""WebSocket and SSE endpoints: one subscription each, catch-up then live ops."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ticker import metrics
from ticker.api import JSONResponse
from ticker.errors import BadRequest, EngineUnavailable, MatchNotFound
from ticker.fastws import CLOSE_TIMEOUT, Fan, TickerWebSocketProtocol, raw_channel
from ticker.hub import CLOSE_RESTART, CLOSE_TOO_SLOW, Group, Hub
from ticker.limits import Limited
from ticker.model import MATCH_ID_RE, is_seq
from ticker.presence import Viewers
from ticker.wire import Message

CLOSE_UNKNOWN_MATCH = 4404
CLOSE_TRY_AGAIN = 1013
SSE_HEARTBEAT = 15.0
SLOT_RETRY_AFTER = 10  # seconds a client over its address's stream limit is told to wait
DRAIN_RETRY_AFTER = 1  # seconds a client of a draining server is told to wait (any other will do)


class QueuedSink:
    """A bounded buffer of messages for one subscriber whose sends are awaited.

    It is its own `attach` for `Hub.join`, and remembers the group to `leave`.
    """

    __slots__ = ("closed", "group", "hub", "limit", "queue", "ready", "transport")

    def __init__(self, hub: Hub, limit: int, transport: str = "sse") -> None:
        self.hub = hub
        self.group: Group | None = None
        self.queue: deque[Message] = deque()
        self.ready = asyncio.Event()
        self.limit = limit
        self.closed: tuple[int, str] | None = None
        self.transport = transport  # for the subscriber gauge: "ws" or "sse"

    def __call__(self, group: Group, backlog: list[Message]) -> None:
        if len(backlog) > self.limit:  # it would be closed before it got anything
            backlog = [group.log.snapshot(reset=True)]
        for msg in backlog:
            self.push(msg)
        self.group = group
        self.hub.add_sink(group, self)

    def leave(self) -> None:
        if self.group is not None:
            self.hub.remove(self.group, self)

    def push(self, msg: Message) -> None:
        if len(self.queue) >= self.limit:
            if self.closed is None:
                metrics.SLOW_CLOSES.inc()
            self.close(CLOSE_TOO_SLOW, "too slow; reconnect with since")
            return
        self.queue.append(msg)
        self.ready.set()

    def close(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = (code, reason)
            self.queue.clear()
        self.ready.set()

    async def batches(self, heartbeat: float | None = None) -> AsyncIterator[list[Message]]:
        """Yield what is queued as it comes; an empty batch after `heartbeat` idle seconds."""
        while self.closed is None:
            if not self.queue:
                try:
                    await asyncio.wait_for(self.ready.wait(), heartbeat)
                except TimeoutError:
                    yield []
                    continue
                self.ready.clear()
            if self.closed is not None:
                return
            batch = list(self.queue)
            self.queue.clear()
            yield batch


def _queued(hub: Hub, conn: WebSocket | Request) -> QueuedSink:
    # About the bytes of the raw path's socket buffer, at ~300 bytes a message.
    limit = max(64, int(conn.app.state.settings.client_buffer) // 300)
    return QueuedSink(hub, limit, "ws" if isinstance(conn, WebSocket) else "sse")


def _since(value: str | None) -> str | None:
    # A cursor that is not of our form cannot be in any log: it gets a reset snapshot.
    if value is None:
        return None
    return value if is_seq(value) else "0-0"


def _viewers(conn: HTTPConnection) -> Viewers | None:
    """The process's viewer counts when the client opted in with `?viewers=1`."""
    return conn.app.state.viewers if conn.query_params.get("viewers") == "1" else None


def _counted(attach: QueuedSink, viewers: Viewers | None) -> Callable[[Group, list[Message]], None]:
    """`attach`, then (opted in) the first count right after the catch-up."""
    if viewers is None:
        return attach

    def attach_counted(group: Group, backlog: list[Message]) -> None:
        attach(group, backlog)
        viewers.opt_in(group, attach)

    return attach_counted


def _slot(conn: HTTPConnection) -> Callable[[], None] | None:
    """Take one of the client address's stream slots: its release, or None when the
    address has none left (a 429 before the upgrade or the stream's headers)."""
    slots = conn.app.state.stream_slots
    address = conn.app.state.limits.address(conn.scope)
    return partial(slots.release, address) if slots.acquire(address) else None


def _draining() -> Response:
    """A draining server takes no new streams: 503 before the upgrade or the stream, so a
    proxy may pass the request to another server (nginx: proxy_next_upstream http_503)."""
    exc = EngineUnavailable("draining: this server is shutting down; connect again", None)
    headers = {"Retry-After": str(DRAIN_RETRY_AFTER)}
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _too_many_streams() -> Response:
    exc = Limited("too many streams from your address; retry later", SLOT_RETRY_AFTER)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def websocket_endpoint(websocket: WebSocket) -> None:
    if websocket.app.state.hub.closing:
        await websocket.send_denial_response(_draining())
        return
    release = _slot(websocket)
    if release is None:
        await websocket.send_denial_response(_too_many_streams())
        return
    raw = raw_channel(websocket.scope)
    try:
        await _websocket(websocket, raw, release)
    finally:
        if raw is None or not raw.adopted:  # an adopted fan releases when it is lost
            release()


async def websocket_direct(scope: Scope, receive: Receive, send: Send) -> None:
    """The same endpoint, as `ticker.fastws` calls it without the middleware and router
    (its `direct_websocket` route: the scope has `app` and `path_params` set)."""
    await websocket_endpoint(WebSocket(scope, receive, send))


async def _websocket(
    websocket: WebSocket, raw: TickerWebSocketProtocol | None, release: Callable[[], None]
) -> None:
    hub: Hub = websocket.app.state.hub
    match_id = websocket.path_params["match_id"]
    # No QueryParams for an empty query (it was ~7% of a connect's CPU in a profile).
    since = _since(websocket.query_params.get("since")) if websocket.scope["query_string"] else None
    await websocket.accept()
    if hub.closing:
        await websocket.close(CLOSE_RESTART, "server restarting")
        return
    if not MATCH_ID_RE.match(match_id):
        await websocket.close(CLOSE_UNKNOWN_MATCH, "unknown match")
        return
    sink: QueuedSink | None = None
    attach: Callable[[Group, list[Message]], None]
    if raw is not None:
        attach = _adopt(hub, websocket, raw, release, _viewers(websocket))
    else:
        sink = _queued(hub, websocket)
        attach = _counted(sink, _viewers(websocket))
    try:
        await hub.join(match_id, since, attach)
    except MatchNotFound:
        await websocket.close(CLOSE_UNKNOWN_MATCH, "unknown match")
        return
    except EngineUnavailable:
        await websocket.close(CLOSE_TRY_AGAIN, "storage unavailable; retry")
        return
    if sink is not None:
        await _serve_queued(websocket, sink)


def _adopt(
    hub: Hub,
    websocket: WebSocket,
    raw: TickerWebSocketProtocol,
    release: Callable[[], None],
    viewers: Viewers | None,
) -> Callable[[Group, list[Message]], None]:
    """The raw path: the hub takes the socket over; catch-up frames, then live ones."""
    settings = websocket.app.state.settings
    limit = int(settings.client_buffer)
    # A slow fan gets as long to read what it was sent as a silent one gets to answer a ping.
    deadline = max(CLOSE_TIMEOUT, settings.ping_interval)

    def attach(group: Group, backlog: list[Message]) -> None:
        if _bytes_over(backlog, limit):  # it could never be sent before the guard trips
            backlog = [group.log.snapshot(reset=True)]
        catch_up = backlog[0].frame if len(backlog) == 1 else b"".join(m.frame for m in backlog)
        # The slow-fan guard is set by `adopt`, before the first byte of the catch-up.
        too_slow = partial(_too_slow, hub, group, deadline)
        fan = raw.adopt(limit, partial(_lost, hub, group, release), too_slow, catch_up)
        if fan is not None:
            hub.add_raw(group, fan)
            if viewers is not None:
                viewers.opt_in(group, fan)

    return attach


def _lost(hub: Hub, group: Group, release: Callable[[], None], fan: Fan) -> None:
    hub.remove(group, fan)
    release()


def _bytes_over(backlog: list[Message], limit: int) -> bool:
    size = 0
    for msg in backlog:
        size += len(msg.json)
        if size > limit:
            return True
    return False


def _too_slow(hub: Hub, group: Group, deadline: float, fan: Fan) -> None:
    metrics.SLOW_CLOSES.inc()
    hub.remove(group, fan)
    fan.drop(CLOSE_TOO_SLOW, "too slow; reconnect with since", deadline)


async def _serve_queued(websocket: WebSocket, sink: QueuedSink) -> None:
    """The plain ASGI path: a bounded queue and a task that drains it."""

    async def drain_incoming() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive()  # fans send nothing we act on
                if websocket.client_state.name == "DISCONNECTED":
                    break
        sink.close(1000, "")

    reader = asyncio.create_task(drain_incoming())
    try:
        async for batch in sink.batches():
            for msg in batch:
                await websocket.send_text(msg.text)
        if sink.closed is not None and sink.closed[0] != 1000:
            await websocket.close(*sink.closed)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        sink.leave()
        reader.cancel()


def _ignore(group: Group, backlog: list[Message]) -> None:
    pass


async def sse_endpoint(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    if hub.closing:
        return _draining()
    match_id = request.path_params["match_id"]
    since = _since(request.headers.get("last-event-id") or request.query_params.get("since"))
    if not MATCH_ID_RE.match(match_id):
        raise MatchNotFound(f"no match {match_id[:64]}", "match_id")
    await hub.join(match_id, None, _ignore)  # an unknown match is a 404, before the headers
    release = _slot(request)
    if release is None:
        return _too_many_streams()
    sink = _queued(hub, request)
    viewers = _viewers(request)

    async def stream() -> AsyncIterator[bytes]:
        # Joined only once the response streams, so an abandoned request leaves nothing.
        await hub.join(match_id, since, _counted(sink, viewers))
        try:
            yield b"retry: 2000\n\n"
            async for batch in sink.batches(heartbeat=SSE_HEARTBEAT):
                yield b"".join(msg.sse for msg in batch) if batch else b": keepalive\n\n"
        finally:
            sink.leave()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return _SlotStream(release, stream(), media_type="text/event-stream", headers=headers)


class _SlotStream(StreamingResponse):
    """A stream that gives its address's slot back however it ends (even unstarted)."""

    def __init__(self, release: Callable[[], None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()


# The match list: one stream of every match's summary (ticker.hub.MatchList).

MAX_LIST_IDS = 50


def _list_ids(conn: HTTPConnection) -> frozenset[str] | None:
    """`?ids=a,b,c` (at most 50 match ids): only those matches; none given: every match."""
    raw = conn.query_params.get("ids")
    if raw is None:
        return None
    ids = frozenset(i for i in raw.split(",") if i)
    if not ids or len(ids) > MAX_LIST_IDS or not all(MATCH_ID_RE.match(i) for i in ids):
        raise BadRequest(f"ids: 1-{MAX_LIST_IDS} match ids, comma-separated", "ids")
    return ids


async def _list_join(
    hub: Hub, conn: WebSocket | Request, sink: QueuedSink, ids: frozenset[str] | None
) -> None:
    # Counts as GET /api/matches has them (ticker.presence): the list's subscribers are in none.
    hub.matchlist.count = conn.app.state.viewers.count
    hub.matchlist.interval = conn.app.state.settings.viewers_interval  # counts go out as often
    await hub.matchlist.join(sink, ids)


def _refusal(conn: HTTPConnection) -> tuple[Response | None, frozenset[str] | None]:
    """Why a list stream may not start (a response before the upgrade or the stream)."""
    try:
        ids = _list_ids(conn)
    except BadRequest as exc:
        return JSONResponse(exc.body(), status_code=exc.status), None
    if conn.app.state.hub.closing:
        return _draining(), None
    return None, ids


async def list_websocket_endpoint(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    refused, ids = _refusal(websocket)
    release = _slot(websocket) if refused is None else None
    if release is None:
        await websocket.send_denial_response(refused or _too_many_streams())
        return
    try:
        await websocket.accept()
        if hub.closing:
            await websocket.close(CLOSE_RESTART, "server restarting")
            return
        sink = _queued(hub, websocket)
        try:
            await _list_join(hub, websocket, sink, ids)
        except EngineUnavailable:
            await websocket.close(CLOSE_TRY_AGAIN, "storage unavailable; retry")
            return
        raw = raw_channel(websocket.scope)
        if raw is not None:
            hub.matchlist.pinged.add(raw)
        try:
            await _serve_queued(websocket, sink)
        finally:
            hub.matchlist.leave(sink)
            if raw is not None:
                hub.matchlist.pinged.discard(raw)
    finally:
        release()


async def list_sse_endpoint(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    refused, ids = _refusal(request)
    if refused is not None:
        return refused
    release = _slot(request)
    if release is None:
        return _too_many_streams()
    sink = _queued(hub, request)

    async def stream() -> AsyncIterator[bytes]:
        await _list_join(hub, request, sink, ids)
        try:
            yield b"retry: 2000\n\n"
            async for batch in sink.batches(heartbeat=SSE_HEARTBEAT):
                yield b"".join(msg.sse for msg in batch) if batch else b": keepalive\n\n"
        finally:
            hub.matchlist.leave(sink)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return _SlotStream(release, stream(), media_type="text/event-stream", headers=headers)
