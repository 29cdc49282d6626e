"""A lean uvicorn WebSocket protocol whose connections the hub can adopt.

uvicorn's own WebSocket protocols (built on `websockets` or `wsproto`) parse the
handshake a second time, build request/response objects, a receive queue and a
keepalive timer per connection, and keep all of it for the connection's life. A fan
needs none of that once it has its catch-up: it only has to receive frames. This
protocol does the RFC 6455 handshake itself, speaks ASGI to the app as usual, and
offers one extension, `ticker.raw`, in the scope. After `websocket.accept` the app may
call `scope["extensions"]["ticker.raw"].adopt()` and return: the connection stays open,
owned by the hub, with no task, no queue and no copy of the request. Per fan the hub
keeps one bound `transport.write`; an idle fan costs a few KiB; a delivery is one write
of bytes made once for all fans.

An adopted connection answers pings and the closing handshake, tracks pongs for the
hub's keepalive loop, and skips data frames unbuffered (a fan sends nothing the server
acts on). Its write buffer passing the high-water mark calls `on_slow` (the hub closes
it with 4408). uvicorn's graceful shutdown closes it with 1012.

For other ASGI servers (or `TICKER_WS=plain`) `streams.py` serves the same hub through
plain ASGI sends. Select this one with `uvicorn --ws ticker.fastws:TickerWebSocketProtocol`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import struct
from collections import deque
from collections.abc import Callable, MutableMapping
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from uvicorn.protocols.utils import ClientDisconnected, get_local_addr, get_remote_addr, is_ssl

from ticker.frames import BINARY, CLOSE, PING, PONG, TEXT, FrameReader, ProtocolError
from ticker.wire import ws_close_frame, ws_frame

EXTENSION = "ticker.raw"
CLOSE_TIMEOUT = 5.0
MAX_HEAD = 16384
PING_FRAME = ws_frame(PING, b"")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CONNECTING, _OPEN, _CLOSING, _CLOSED = range(4)
_INBOX_LIMIT = 16  # messages queued for an app that is not reading: then stop reading

log = logging.getLogger("uvicorn.error")


def _nothing() -> None:
    pass


def _http_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    lines = [f"HTTP/1.1 {status} {phrase}".encode()]
    names = {name.lower() for name, _ in headers}
    lines += [name + b": " + value for name, value in headers]
    if b"content-length" not in names:
        lines.append(b"content-length: " + str(len(body)).encode())
    if b"content-type" not in names and body:
        lines.append(b"content-type: text/plain; charset=utf-8")
    lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class TickerWebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection: handshake, ASGI bridge, and (once adopted) a fan."""

    __slots__ = (
        "_buf",
        "_close_timer",
        "_connect_sent",
        "_denial",
        "_inbox",
        "_inbox_waiter",
        "_key",
        "_reader",
        "_writable",
        "adopted",
        "app",
        "app_state",
        "awaiting_pong",
        "close_code",
        "config",
        "connections",
        "default_headers",
        "on_lost",
        "on_slow",
        "read_paused",
        "scope",
        "state",
        "tasks",
        "transport",
        "write",
    )

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.app_state = app_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.write: Callable[[bytes], None] = _nothing  # type: ignore[assignment]
        self.state = _CONNECTING
        self.scope: dict[str, Any] | None = None
        self._key = b""
        self._connect_sent = False
        self._denial: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None
        self._buf = b""
        self._reader = FrameReader(config.ws_max_size)
        self._inbox: deque[dict[str, Any]] | None = None
        self._inbox_waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self.read_paused = False
        self.adopted = False
        self.awaiting_pong = False
        self.close_code = 1006
        self.on_lost: Callable[[], None] = _nothing
        self.on_slow: Callable[[], None] = _nothing

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.write = self.transport.write
        self.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.state == _CONNECTING:
            if self.scope is not None:
                self._buf += data  # early frames wait for the handshake to finish
                return
            buf = self._buf + data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._reject(431, b"request head too large")
                self._buf = buf
                return
            self._buf = buf[end + 4 :]
            self._handshake(buf[:end])
            return
        self._frames(data)

    def pause_writing(self) -> None:
        loop = asyncio.get_running_loop()
        if self._writable is None or self._writable.done():
            self._writable = loop.create_future()
        if self.adopted:
            # Called from inside transport.write, maybe mid fan-out loop: act after it.
            loop.call_soon(self.on_slow)

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.state = _CLOSED
        if self._close_timer is not None:
            self._close_timer.cancel()
        self.resume_writing()
        self._deliver({"type": "websocket.disconnect", "code": self.close_code})
        on_lost, self.on_lost = self.on_lost, _nothing
        on_lost()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: tell the client to come back (with `since`)."""
        if self.state == _OPEN:
            self.close(1012, "server restarting")
            self._deliver({"type": "websocket.disconnect", "code": 1012})
        elif self.state == _CONNECTING:
            self.transport.close()

    # Handshake

    def _reject(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.state = _CLOSED
        self.transport.write(
            _http_response(status, [*self.default_headers, *(headers or [])], body)
        )
        self.transport.close()

    def _handshake(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        headers: list[tuple[bytes, bytes]] = []
        key = b""
        upgrade = version = False
        subprotocols: list[str] = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                self._reject(400, b"malformed header line")
                return
            name, value = name.strip().lower(), value.strip()
            headers.append((name, value))
            if name == b"sec-websocket-key":
                key = value
            elif name == b"upgrade":
                upgrade = b"websocket" in value.lower()
            elif name == b"sec-websocket-version":
                version = value == b"13"
            elif name == b"sec-websocket-protocol":
                subprotocols += [p.strip() for p in value.decode("latin-1").split(",")]
        if len(parts) != 3 or parts[0] != b"GET" or not upgrade or not version or not key:
            self._reject(400, b"not a valid WebSocket upgrade request")
            return
        try:
            target = parts[1].decode("ascii")
        except UnicodeDecodeError:
            self._reject(400, b"request target must be ASCII")
            return
        raw_path, _, query = target.partition("?")
        root = self.config.root_path
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if is_ssl(self.transport) else "ws",
            "server": get_local_addr(self.transport),
            "client": get_remote_addr(self.transport),
            "root_path": root,
            "path": root + unquote(raw_path),
            "raw_path": (root + raw_path).encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}, EXTENSION: self},
        }
        self._key = key
        task = asyncio.get_running_loop().create_task(self._run_asgi(self.scope))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_asgi(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except ClientDisconnected:
            pass
        except BaseException:
            log.exception("Exception in ASGI application")
            if self.state == _CONNECTING:
                self._reject(500, b"Internal Server Error")
                return
            self.close(1011, "internal error")
        if self.state == _CONNECTING:
            log.error("ASGI callable returned without completing the handshake.")
            self._reject(500, b"Internal Server Error")
        elif self.state == _OPEN and not self.adopted:
            self.close(1000)

    # The ASGI side

    async def _receive(self) -> dict[str, Any]:
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        while not self._inbox:
            if self.state == _CLOSED:
                return {"type": "websocket.disconnect", "code": self.close_code}
            self._inbox_waiter = asyncio.get_running_loop().create_future()
            await self._inbox_waiter
        assert self._inbox is not None
        message = self._inbox.popleft()
        if self.read_paused and len(self._inbox) < _INBOX_LIMIT // 2:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def _deliver(self, message: dict[str, Any]) -> None:
        if self.adopted:
            return
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(message)
        if self._inbox_waiter is not None and not self._inbox_waiter.done():
            self._inbox_waiter.set_result(None)
        if len(self._inbox) >= _INBOX_LIMIT and not self.read_paused and self.state != _CLOSED:
            self.read_paused = True
            self.transport.pause_reading()

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        kind = message["type"]
        if self._writable is not None and not self._writable.done():
            await self._writable
        if self.state == _CONNECTING:
            if self._denial is not None and kind == "websocket.http.response.body":
                self._deny(message)
            elif self._denial is not None:
                raise RuntimeError(f"Expected 'websocket.http.response.body', got {kind!r}")
            elif kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._reject(403, b"")
            elif kind == "websocket.http.response.start":
                self._denial = (message["status"], list(message.get("headers", [])), b"")
            else:
                raise RuntimeError(
                    f"Expected 'websocket.accept' or 'websocket.close', got {kind!r}"
                )
        elif self.state == _OPEN:
            if kind == "websocket.send":
                if message.get("bytes") is not None:
                    self.write(ws_frame(BINARY, message["bytes"]))
                else:
                    self.write(ws_frame(TEXT, message.get("text", "").encode()))
            elif kind == "websocket.close":
                self.close(message.get("code", 1000), message.get("reason") or "")
                self._deliver({"type": "websocket.disconnect", "code": message.get("code", 1000)})
            else:
                raise RuntimeError(f"Expected 'websocket.send' or 'websocket.close', got {kind!r}")
        else:
            raise ClientDisconnected()

    def _deny(self, message: MutableMapping[str, Any]) -> None:
        """The body of a `websocket.http.response` (a denial in plain HTTP)."""
        assert self._denial is not None
        status, headers, body = self._denial
        body += message.get("body", b"")
        self._denial = (status, headers, body)
        if not message.get("more_body", False):
            self._reject(status, body, headers)
            raise ClientDisconnected()

    def _accept(self, message: MutableMapping[str, Any]) -> None:
        accept = base64.b64encode(hashlib.sha1(self._key + _GUID).digest())
        head = [b"HTTP/1.1 101 Switching Protocols", b"upgrade: websocket",
                b"connection: Upgrade", b"sec-websocket-accept: " + accept]  # fmt: skip
        if message.get("subprotocol"):
            head.append(b"sec-websocket-protocol: " + message["subprotocol"].encode())
        head += [n + b": " + v for n, v in (*self.default_headers, *message.get("headers", []))]
        self.write(b"\r\n".join(head) + b"\r\n\r\n")
        self.state = _OPEN
        if self._buf:  # frames that came with the handshake
            early, self._buf = self._buf, b""
            self._frames(early)

    # Frames from the client

    def _frames(self, data: bytes) -> None:
        try:
            for opcode, payload in self._reader.feed(data, drop_data=self.adopted):
                if opcode == TEXT:
                    self._deliver({"type": "websocket.receive", "text": payload})
                elif opcode == BINARY:
                    self._deliver({"type": "websocket.receive", "bytes": payload})
                else:
                    self._control(opcode, payload)  # type: ignore[arg-type]
                if self.state == _CLOSED:
                    return
        except ProtocolError as exc:
            self.close(exc.code, exc.reason)

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == PING:
            self.write(ws_frame(PONG, payload))
        elif opcode == PONG:
            self.awaiting_pong = False
        elif opcode == CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self.close_code = code
            if self.state == _OPEN:
                self.write(ws_frame(CLOSE, payload[:2]))
                self._deliver({"type": "websocket.disconnect", "code": code})
            self.state = _CLOSED
            self.transport.close()

    # The hub's side

    def adopt(self, high_water: int) -> TickerWebSocketProtocol | None:
        """Keep the connection open after the app returns; the hub owns it from now on."""
        if self.state != _OPEN:
            return None
        self.adopted = True
        self.scope = None
        self._inbox = None
        self.transport.set_write_buffer_limits(high=high_water)
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        return self

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake; the socket goes when the client answers, or soon after."""
        if self.state != _OPEN:
            return
        self.state = _CLOSING
        self.write(ws_close_frame(code, reason))
        loop = asyncio.get_running_loop()
        self._close_timer = loop.call_later(CLOSE_TIMEOUT, self.transport.close)

    def keepalive(self) -> None:
        """Ping; a connection that did not answer the previous ping is dropped."""
        if self.awaiting_pong:
            self.close(1011, "keepalive ping timeout")
            self.transport.close()
        elif self.state == _OPEN:
            self.awaiting_pong = True
            self.write(PING_FRAME)


def raw_channel(scope: MutableMapping[str, Any]) -> TickerWebSocketProtocol | None:
    """The `ticker.raw` extension of a WebSocket scope, if the server offers it."""
    channel = (scope.get("extensions") or {}).get(EXTENSION)
    return channel if isinstance(channel, TickerWebSocketProtocol) else None


Fan = TickerWebSocketProtocol
