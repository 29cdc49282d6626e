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
