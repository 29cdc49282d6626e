"""A lean uvicorn WebSocket protocol whose connections the hub can adopt.

uvicorn's own WebSocket protocols (built on `websockets` or `wsproto`) parse the
handshake a second time, build request/response objects, a receive queue and a
keepalive timer per connection, and keep all of it for the connection's life. A fan
needs none of that once it has its catch-up: it only has to receive frames. This
protocol does the RFC 6455 handshake itself, speaks ASGI to the app as usual, and
offers one extension, `ticker.raw`, in the scope. After `websocket.accept` the app may
call `scope["extensions"]["ticker.raw"].adopt(...)` and return: the transport gets a
small protocol of its own (`AdoptedFan`), owned by the hub, with no task, no queue and
no copy of the request. Per fan the hub keeps one bound `transport.write`; an idle fan
costs a few KiB; a delivery is one write of bytes made once for all fans.

An adopted fan answers pings and the closing handshake, tracks pongs for the hub's
keepalive loop, and skips data frames unbuffered (a fan sends nothing the server acts
on). Its write buffer passing the high-water mark calls `on_slow` (the hub closes it
with 4408); the mark is set before the first byte of its catch-up is written. uvicorn's
graceful shutdown closes it with 1012.

A peer that breaks the protocol is failed at once: the close frame goes out, nothing
more is read, and the server closes the TCP connection. Every close is bounded: a peer
that does not finish the closing handshake within CLOSE_TIMEOUT, or does not answer a
keepalive ping, is aborted, reset when bytes for it are stuck in the kernel, never left
waiting for a drain that will not come.

A connect is lean too, since a reconnect storm is thousands of them. The head is parsed
once: `httpproto.FrontProtocol` hands one that arrives whole straight here as bytes, and
`httpproto.DeadlineHttpProtocol` hands one it parsed over as parsed (`take_over`). The
app's direct route (`app.state.direct_websocket`: the fans' `/ws/matches/{id}`) is called
without its middleware and router. During the app's first step the 101 response is held,
so that it goes out in one write with the catch-up, and reading stays paused until the hub
adopts the socket (no stop and restart of it around `set_protocol`).

For other ASGI servers (or `TICKER_WS=plain`) `streams.py` serves the same hub through
plain ASGI sends. Select this one with `uvicorn --ws ticker.fastws:TickerWebSocketProtocol`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import logging
import socket
import struct
import termios
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, MutableMapping
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from uvicorn.protocols.utils import ClientDisconnected, is_ssl

from ticker.frames import BINARY, CLOSE, PING, PONG, TEXT, FrameReader, ProtocolError, parse_close
from ticker.wire import ws_close_frame, ws_frame

EXTENSION = "ticker.raw"
CLOSE_TIMEOUT = 5.0
MAX_HEAD = 16384
PING_FRAME = ws_frame(PING, b"")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CONNECTING, _OPEN, _CLOSING, _CLOSED, _ADOPTED = range(5)
_INBOX_LIMIT = 16  # messages queued for an app that is not reading: then stop reading
_LINGER_RESET = struct.pack("ii", 1, 0)
_TIOCOUTQ: int | None = getattr(termios, "TIOCOUTQ", None)  # Linux: unsent bytes of a socket

log = logging.getLogger("uvicorn.error")


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


def _address(info: Any) -> tuple[str, int] | None:
    """A peer or socket name as uvicorn puts it in a scope (asking the transport for its
    `socket`, as uvicorn does, builds an object per call)."""
    if isinstance(info, tuple | list) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


def _abort(transport: asyncio.Transport) -> None:
    """Drop a connection now. If bytes for the peer are still queued (it stopped reading),
    reset it: a plain close would leave the kernel retrying a zero window for minutes,
    holding its buffers."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            queued = transport.get_write_buffer_size() or _TIOCOUTQ is None
            if not queued and _TIOCOUTQ is not None:  # what the kernel still holds for it
                unsent = fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0")
                queued = struct.unpack("i", unsent)[0]
            if queued:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class _Endpoint(asyncio.Protocol):
    """The WebSocket end both protocols share: control frames, closing, failing, pings."""

    __slots__ = ("awaiting_pong", "close_timer", "reader", "state", "transport", "write")
    transport: asyncio.Transport
    write: Callable[[bytes], None]
    state: int
    reader: FrameReader
    awaiting_pong: bool
    close_timer: asyncio.TimerHandle | None
    connections: set[Any]

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake; the socket goes when the client answers, or is
        aborted after CLOSE_TIMEOUT."""
        if self.state != _OPEN:
            return
        self.state = _CLOSING
        self.write(ws_close_frame(code, reason))
        self._deadline()

    def abort(self) -> None:
        _abort(self.transport)

    def keepalive(self) -> None:
        """Ping; a connection that did not answer the previous ping is aborted (it may not
        be reading at all, so a closing handshake could wait forever)."""
        if self.awaiting_pong:
            self.close(1011, "keepalive ping timeout")
            self.abort()
        elif self.state == _OPEN:
            self.awaiting_pong = True
            self.write(PING_FRAME)

    def eof_received(self) -> bool | None:
        return None  # keep the transport: the closing handshake decides when it goes

    def _gone(self) -> None:
        """The connection is closed: forget it and its close timer."""
        self.connections.discard(self)
        self.state = _CLOSED
        if self.close_timer is not None:
            self.close_timer.cancel()

    def _deadline(self) -> None:
        if self.close_timer is None:
            loop = asyncio.get_running_loop()
            self.close_timer = loop.call_later(CLOSE_TIMEOUT, self.abort)

    def _finish(self) -> None:
        """The closing handshake is over, or failed: the server closes TCP first (RFC 6455
        §7.1.1). `transport.close` stops reading at once and flushes what is queued."""
        self.state = _CLOSED
        self.transport.close()
        self._deadline()

    def _fail(self, exc: ProtocolError) -> None:
        if self.state == _OPEN:
            self.write(ws_close_frame(exc.code, exc.reason))
        self._finish()

    def _control(self, opcode: int, payload: bytes) -> int | None:
        """Act on a control frame; returns the peer's close code when it closed."""
        if opcode == PING:
            if self.state == _OPEN:
                self.write(ws_frame(PONG, payload))
        elif opcode == PONG:
            self.awaiting_pong = False
        elif opcode == CLOSE:
            code = parse_close(payload)[0]
            if self.state == _OPEN:
                self.write(ws_frame(CLOSE, payload[:2]))  # echo the code (none for none)
            self._finish()
            return code
        return None


def _ignore(fan: AdoptedFan) -> None:
    pass


class AdoptedFan(_Endpoint):
    """A fan's connection once the hub owns it: only what receiving frames needs."""

    __slots__ = ("connections", "on_lost", "on_slow")

    def __init__(
        self,
        bridge: TickerWebSocketProtocol,
        on_lost: Callable[[AdoptedFan], None],
        on_slow: Callable[[AdoptedFan], None],
    ) -> None:
        self.transport = bridge.transport
        self.write = bridge.transport.write
        self.reader = bridge.reader
        self.connections = bridge.connections
        self.state = _OPEN
        self.awaiting_pong = False
        self.close_timer: asyncio.TimerHandle | None = None
        self.on_lost = on_lost
        self.on_slow = on_slow

    def data_received(self, data: bytes) -> None:
        try:
            for opcode, payload in self.reader.feed(data, drop_data=True):
                self._control(opcode, payload)  # type: ignore[arg-type]
        except ProtocolError as exc:
            self._fail(exc)

    def pause_writing(self) -> None:
        # Called from inside transport.write, maybe mid fan-out loop: act after it.
        asyncio.get_running_loop().call_soon(self.on_slow, self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        on_lost, self.on_lost = self.on_lost, _ignore
        on_lost(self)

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: tell the fan to come back (with `since`)."""
        self.close(1012, "server restarting")

    def drop(self, code: int, reason: str, deadline: float) -> None:
        """Close a fan that cannot keep up: the close frame goes after what it was sent, and
        TCP closes once all of it is flushed, without waiting for a reply (a fan too slow
        to read its buffer is slower still to answer). Not flushed within `deadline`
        seconds: aborted."""
        if self.state != _OPEN:
            return
        self.write(ws_close_frame(code, reason))
        self.state = _CLOSED
        self.transport.close()
        self.close_timer = asyncio.get_running_loop().call_later(deadline, self.abort)


# A route served without the app's middleware and router: (path prefix, name of the path
# parameter that is the rest of the path, its ASGI app). An app offers one in
# `app.state.direct_websocket`, for a route that no middleware of it acts on.
DirectRoute = tuple[str, str, Callable[..., Awaitable[None]]]


class _FirstStep:
    """Awaited by a connection's task: runs the app's coroutine, holding the 101 response
    during its first step (until it first waits, or ends) so that the response goes out
    in one write with what follows it: for a fan, its catch-up (or a close frame)."""

    __slots__ = ("conn", "coro")

    def __init__(self, conn: TickerWebSocketProtocol, coro: Coroutine[Any, Any, None]) -> None:
        self.conn = conn
        self.coro = coro

    def __await__(self) -> Generator[Any, Any, None]:
        conn, coro = self.conn, self.coro
        conn._holding = True
        try:
            message = coro.send(None)
        except StopIteration:
            return
        finally:
            conn._end_hold()
        while True:  # the rest as `await coro` would run it
            try:
                value = yield message
            except BaseException as exc:  # e.g. the task's cancellation
                try:
                    message = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    message = coro.send(value)
                except StopIteration:
                    return


async def _run_first_step(step: _FirstStep) -> None:
    await step


class TickerWebSocketProtocol(_Endpoint):
    """One WebSocket connection: handshake and ASGI bridge, until the hub adopts it."""

    __slots__ = (
        "_buf",
        "_connect_sent",
        "_denial",
        "_held",
        "_holding",
        "_inbox",
        "_inbox_waiter",
        "_key",
        "_unread",
        "_writable",
        "app",
        "app_state",
        "close_code",
        "config",
        "connections",
        "default_headers",
        "direct",
        "read_paused",
        "scope",
        "tasks",
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
        self.direct: DirectRoute | None = getattr(
            getattr(self.app, "state", None), "direct_websocket", None
        )
        self.app_state = app_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.write: Callable[[bytes], None] = None  # type: ignore[assignment]
        self.state = _CONNECTING
        self.scope: dict[str, Any] | None = None
        self._key = b""
        self._connect_sent = False
        self._denial: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None
        self._buf = b""
        # The 101 response, held while the app's first step runs (see `_FirstStep`).
        self._held = b""
        self._holding = False
        # Reading is paused from the head until the app accepts; while the 101 is held,
        # until the step ends or the hub adopts the socket (so that `set_protocol` finds
        # it paused and need not stop and restart it: two syscalls each).
        self._unread = False
        self.reader = FrameReader(config.ws_max_size)
        # ASGI messages for the app, in order; a ProtocolError in it fails the connection
        # once the app has read what came before it.
        self._inbox: deque[dict[str, Any] | ProtocolError] | None = None
        self._inbox_waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self.close_timer: asyncio.TimerHandle | None = None
        self.read_paused = False
        self.awaiting_pong = False
        self.close_code = 1006

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.write = self.transport.write
        self.connections.add(self)

    def take_over(
        self,
        transport: asyncio.Transport,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        tls: bool,
    ) -> None:
        """Take a connection whose upgrade request an HTTP protocol has parsed already
        (`ticker.httpproto`): no second parse of the head, no second look-up of the
        addresses."""
        self.connection_made(transport)
        self._upgrade(method == "GET", target, headers, client, server, tls)

    def data_received(self, data: bytes) -> None:
        if self.state == _CONNECTING:
            if self.scope is not None:  # reading is paused; bytes already read wait too
                self._buf += data
                return
            buf = self._buf + data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._reject(431, b"request head too large")
                self._buf = buf
                return
            self._buf = buf[end + 4 :]  # frames that came with the head wait for `accept`
            self._handshake(buf[:end])
        elif self.state in (_OPEN, _CLOSING):
            self._frames(data)

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        self.resume_writing()
        self._deliver({"type": "websocket.disconnect", "code": self.close_code})

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: tell the client to come back (with `since`)."""
        if self.state == _OPEN:
            self.close(1012, "server restarting")
            self._deliver({"type": "websocket.disconnect", "code": 1012})
        elif self.state == _CONNECTING:
            self._finish()

    # Handshake

    def _reject(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.write(_http_response(status, [*self.default_headers, *(headers or [])], body))
        self._finish()

    def _handshake(self, head: bytes) -> None:
        """The head as bytes (uvicorn's own HTTP protocols hand it over so)."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                self._reject(400, b"malformed header line")
                return
            headers.append((name.strip().lower(), value.strip()))
        transport = self.transport
        get = len(parts) == 3 and parts[0] == b"GET"
        self._upgrade(
            get,
            parts[1] if get else b"",
            headers,
            _address(transport.get_extra_info("peername")),
            _address(transport.get_extra_info("sockname")),
            is_ssl(transport),
        )

    def _upgrade(
        self,
        get: bool,
        target_bytes: bytes,
        headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        tls: bool,
    ) -> None:
        key = b""
        upgrade = version = False
        subprotocols: list[str] = []
        for name, value in headers:  # names are lower case
            if name == b"sec-websocket-key":
                key = value.strip()
            elif name == b"upgrade":
                upgrade = b"websocket" in value.lower()
            elif name == b"sec-websocket-version":
                version = value.strip() == b"13"
            elif name == b"sec-websocket-protocol":
                subprotocols += [p.strip() for p in value.decode("latin-1").split(",")]
        if not get or not upgrade or not version or not key:
            self._reject(400, b"not a valid WebSocket upgrade request")
            return
        try:
            target = target_bytes.decode("ascii")
        except UnicodeDecodeError:
            self._reject(400, b"request target must be ASCII")
            return
        raw_path, _, query = target.partition("?")
        root = self.config.root_path
        route_path = unquote(raw_path)
        self.scope = scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if tls else "ws",
            "server": server,
            "client": client,
            "root_path": root,
            "path": root + route_path,
            "raw_path": (root + raw_path).encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}, EXTENSION: self},
        }
        self._key = key
        app = self.app
        direct = self.direct
        if direct is not None and route_path.startswith(direct[0]):
            param = route_path[len(direct[0]) :]
            if param and "/" not in param:  # what the router's `{param}` would match
                scope["app"] = app
                scope["path_params"] = {direct[1]: param}
                app = direct[2]
        # Nothing more is read until the app accepts: a client cannot queue bytes here.
        self.transport.pause_reading()
        self._unread = True
        step = _FirstStep(self, self._run_asgi(scope, app))
        task = asyncio.get_running_loop().create_task(_run_first_step(step))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _end_hold(self) -> None:
        self._holding = False
        if self._held:
            self._write_held(b"")
        if self._unread and self.state in (_OPEN, _CLOSING):
            self._unread = False
            if not self.read_paused:  # (paused for the app's inbox: it resumes then)
                self.transport.resume_reading()

    def _write_held(self, data: bytes) -> None:
        held, self._held = self._held, b""
        self.write = self.transport.write
        self.write(held + data)

    async def _run_asgi(self, scope: dict[str, Any], app: Callable[..., Awaitable[None]]) -> None:
        try:
            await app(scope, self._receive, self._send)
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
        elif self.state == _OPEN:
            pending = [m for m in self._inbox or () if isinstance(m, ProtocolError)]
            if pending:  # the app never read up to the client's protocol error
                self._fail(pending[0])
            else:
                self.close(1000)

    # The ASGI side

    async def _receive(self) -> dict[str, Any]:
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        while not self._inbox:
            if self.state in (_CLOSED, _ADOPTED):
                return {"type": "websocket.disconnect", "code": self.close_code}
            self._inbox_waiter = asyncio.get_running_loop().create_future()
            await self._inbox_waiter
        message = self._inbox.popleft()
        if isinstance(message, ProtocolError):
            self._fail(message)
            return {"type": "websocket.disconnect", "code": message.code}
        if self.read_paused and len(self._inbox) < _INBOX_LIMIT // 2 and not self.reader.done:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def _deliver(self, message: dict[str, Any] | ProtocolError) -> None:
        if self.state == _ADOPTED:
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
        head.append(b"\r\n")
        if self._holding:  # sent with the next write, at the latest when the step ends
            self._held = b"\r\n".join(head)
            self.write = self._write_held
        else:
            self.write(b"\r\n".join(head))
            self._unread = False
            self.transport.resume_reading()
        self.state = _OPEN
        if self._buf:  # frames that came with the handshake
            early, self._buf = self._buf, b""
            self._frames(early)

    # Frames from the client

    def _frames(self, data: bytes) -> None:
        try:
            for opcode, payload in self.reader.feed(data, drop_data=self.state != _OPEN):
                if opcode == TEXT:
                    self._deliver({"type": "websocket.receive", "text": payload})
                elif opcode == BINARY:
                    self._deliver({"type": "websocket.receive", "bytes": payload})
                else:
                    code = self._control(opcode, payload)  # type: ignore[arg-type]
                    if code is not None:
                        self.close_code = code
                        self._deliver({"type": "websocket.disconnect", "code": code})
        except ProtocolError as exc:
            self.close_code = exc.code
            self._deadline()
            if self._inbox and self.state == _OPEN:
                # Messages before the bad frame are the app's to read first (it may answer
                # them); it fails when the app reaches this point. Until then, read nothing.
                self.read_paused = True
                self.transport.pause_reading()
                self._deliver(exc)
            else:
                self._fail(exc)
                self._deliver({"type": "websocket.disconnect", "code": exc.code})

    # The hub's side

    @property
    def adopted(self) -> bool:
        return self.state == _ADOPTED

    def adopt(
        self,
        high_water: int,
        on_lost: Callable[[AdoptedFan], None],
        on_slow: Callable[[AdoptedFan], None],
        catch_up: bytes = b"",
    ) -> AdoptedFan | None:
        """Hand the connection to the hub: the app returns and the transport gets a small
        protocol of its own. The slow-fan guard (`high_water`, `on_slow`) is in place
        before `catch_up` (frames) is written, in one write with a held 101 response."""
        if self.state != _OPEN or self.reader.done:
            return None
        fan = AdoptedFan(self, on_lost, on_slow)
        self.state = _ADOPTED
        self.scope = None
        self._inbox = None
        self.connections.discard(self)
        self.connections.add(fan)
        self.transport.set_protocol(fan)
        self.transport.set_write_buffer_limits(high=high_water)
        if self.read_paused or self._unread:
            self.read_paused = self._unread = False
            self.transport.resume_reading()
        held, self._held = self._held, b""
        self.write = fan.write
        if held or catch_up:
            fan.write(held + catch_up)
        return fan


def raw_channel(scope: MutableMapping[str, Any]) -> TickerWebSocketProtocol | None:
    """The `ticker.raw` extension of a WebSocket scope, if the server offers it."""
    channel = (scope.get("extensions") or {}).get(EXTENSION)
    return channel if isinstance(channel, TickerWebSocketProtocol) else None


Fan = AdoptedFan
