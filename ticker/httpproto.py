"""uvicorn's httptools HTTP protocol with deadlines for a request's head and body.

uvicorn times out only an idle keep-alive connection, and only after a first response: a
fresh connection that sends nothing, a head that never ends (the WebSocket upgrade head
too: this protocol parses it before handing over) or a body that trickles in holds a
socket forever (slowloris). Here a head must be complete `head_timeout` seconds after the
connection opened (or, on a keep-alive connection, after the previous response ended) and
a body `body_timeout` seconds after its head. Past that the client gets `408` with the
JSON error when part of a request came, and the connection is closed.

One timer per connection at most, and only while a request is incomplete after a read: a
request that arrives whole in one read (nearly all of them) costs no timer.

`FrontProtocol` is every connection's first protocol (it holds the head's deadline until
the first read): a fan's WebSocket upgrade that arrives whole goes from it straight to
`ticker.fastws`; everything else to `DeadlineHttpProtocol`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ticker import wire

_IDLE, _HEAD, _BODY = range(3)  # what the connection is waiting for from the client


def _timeout_response(default_headers: list[tuple[bytes, bytes]], what: str) -> bytes:
    body = wire.dumps({"error": {"code": "timeout", "message": what, "field": None}})
    head = [STATUS_LINE[408]]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers]
    head += [
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


class DeadlineHttpProtocol(HttpToolsProtocol):
    """For uvicorn: `http=functools.partial(DeadlineHttpProtocol, head_timeout=…, …)`."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        head_timeout: float = 10.0,
        body_timeout: float = 10.0,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self._phase = _IDLE
        self._deadline: asyncio.TimerHandle | None = None

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = self.loop.call_later(self.head_timeout, self._expired)

    def took_over(self, transport: asyncio.Transport, opened: asyncio.TimerHandle) -> None:
        """Start on a connection that `FrontProtocol` had until now: the head's deadline
        still runs from when the connection opened."""
        super().connection_made(transport)
        self._deadline = self.loop.call_at(opened.when(), self._expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        keep_alive = self.timeout_keep_alive_task  # uvicorn cancels it on any data
        super().data_received(data)
        if self._phase and self._deadline is None and not self.transport.is_closing():
            if self._phase == _BODY:
                self._deadline = self.loop.call_later(self.body_timeout, self._expired)
            elif keep_alive is not None:
                # uvicorn armed it when the previous response ended: the head's clock
                # runs from then.
                at = keep_alive.when() - self.timeout_keep_alive + self.head_timeout
                self._deadline = self.loop.call_at(at, self._expired)
            else:  # pipelined behind a response still being sent: from now
                self._deadline = self.loop.call_later(self.head_timeout, self._expired)

    # httptools parser callbacks (a request arriving whole in one read arms no timer)

    def on_message_begin(self) -> None:
        self._phase = _HEAD
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        if self._deadline is not None:
            self._cancel_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        if self._deadline is not None:
            self._cancel_deadline()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        # The head is complete and the connection leaves this protocol: no body to wait for.
        self._phase = _IDLE
        self._cancel_deadline()
        # This protocol is done, but its parser holds its callbacks: a cycle of ~20 objects
        # per WebSocket for the garbage collector (whose passes over every fan's objects
        # would cost a connect more than all the rest of the handshake) unless broken here.
        self.parser = None  # type: ignore[assignment]
        if not hasattr(self.ws_protocol_class, "take_over"):
            super().handle_websocket_upgrade()
            return
        # ticker.fastws: hand over the head as parsed, not as bytes to parse again.
        self.connections.discard(self)
        protocol = self.ws_protocol_class(  # type: ignore[call-arg, misc]
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )
        self.transport.set_protocol(protocol)
        protocol.take_over(  # type: ignore[union-attr]
            self.transport,
            self.scope["method"],
            self.url,
            self.headers,
            self.client,
            self.server,
            self.scheme == "https",
        )

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._phase == _BODY:
            what = f"the request body did not arrive within {self.body_timeout:g} s"
            answer = not cycle.response_started
        else:
            what = f"the request head did not arrive within {self.head_timeout:g} s"
            # Nothing to answer when nothing came, nor in the middle of an earlier response.
            answer = self._phase == _HEAD and (cycle is None or cycle.response_complete)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() ends; its sends are dropped
            cycle.message_event.set()
        if answer:
            self.transport.write(_timeout_response(self.server_state.default_headers, what))
        self.transport.close()


class FrontProtocol(asyncio.Protocol):
    """Every connection's first protocol, until its first bytes say what it is.

    A WebSocket upgrade to the app's direct route (`app.state.direct_websocket`, a fan
    connecting) that arrives whole in the first read goes straight to the WebSocket
    protocol (`ticker.fastws`, which parses it once); anything else to
    `DeadlineHttpProtocol`, with its head's deadline from when the connection opened. So
    a fan's connect builds no HTTP protocol, parser or flow control to drop at once.

    For uvicorn: `http=functools.partial(FrontProtocol, head_timeout=…, body_timeout=…)`.
    """

    __slots__ = (
        "app_state",
        "body_timeout",
        "config",
        "head_timeout",
        "opened",
        "prefix",
        "server_state",
        "transport",
    )

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        head_timeout: float = 10.0,
        body_timeout: float = 10.0,
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self.prefix = _direct_prefix(config)
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server_state.connections.add(self)
        loop = asyncio.get_running_loop()
        self.opened = loop.call_later(self.head_timeout, transport.close)  # nothing came

    def data_received(self, data: bytes) -> None:
        transport, opened = self.transport, self.opened
        assert transport is not None and opened is not None
        self.server_state.connections.discard(self)
        opened.cancel()
        config = self.config
        if self.prefix is not None and data.startswith(self.prefix) and _whole_upgrade(data):
            ws = config.ws_protocol_class(
                config=config, server_state=self.server_state, app_state=self.app_state
            )
            transport.set_protocol(ws)
            ws.connection_made(transport)
            ws.data_received(data)
            return
        http = DeadlineHttpProtocol(
            config,
            self.server_state,
            self.app_state,
            head_timeout=self.head_timeout,
            body_timeout=self.body_timeout,
        )
        transport.set_protocol(http)
        http.took_over(transport, opened)
        http.data_received(data)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.opened is not None:
            self.opened.cancel()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: nothing is under way here."""
        if self.transport is not None:
            self.transport.close()


_PREFIXES: dict[int, bytes | None] = {}


def _direct_prefix(config: Any) -> bytes | None:
    """`GET <prefix>` of the app's direct WebSocket route, when the WebSocket protocol
    serves one (once per config: uvicorn makes a protocol per connection)."""
    key = id(config)
    if key not in _PREFIXES:
        if not config.loaded:
            config.load()
        route = getattr(getattr(config.loaded_app, "state", None), "direct_websocket", None)
        served = hasattr(config.ws_protocol_class, "take_over")
        _PREFIXES[key] = b"GET " + route[0].encode("ascii") if route and served else None
    return _PREFIXES[key]


def _whole_upgrade(data: bytes) -> bool:
    """One whole head, as nearly every client sends it; anything unusual (other spellings,
    a head cut over several reads) takes the general path, which handles it all."""
    if not data.endswith(b"\r\n\r\n") or data.count(b"\r\n\r\n") != 1:
        return False
    head = data.lower()
    return b"\r\nupgrade: websocket\r\n" in head and b"\r\nconnection: upgrade\r\n" in head
