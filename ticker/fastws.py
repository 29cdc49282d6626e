"""A uvicorn WebSocket protocol that lets the app hand a fan's socket over to the hub.

uvicorn's sans-I/O websockets protocol, plus one ASGI extension, `ticker.raw`, in the
scope. After `websocket.accept`, the app may call `adopt()` on it and return: the
connection stays open and its transport now talks to a `Fan`, a small protocol object
of our own, instead of uvicorn's. A fan holds no task, no queue, no parser objects and
no copy of the request; per fan the hub keeps one bound `transport.write`. That is
what makes an idle fan cost a few KiB and a delivery one write of shared bytes.

A `Fan` reads only what RFC 6455 makes it answer: ping (pong), close (close), pong
(keepalive). Data frames are skipped unbuffered: the protocol says a fan sends nothing
the server acts on. Its write buffer passing the high-water mark calls `on_slow` (the
hub closes it with 4408); uvicorn's graceful shutdown reaches it through the server's
connection set and closes it with 1012.

Servers without this extension get the plain ASGI path in `streams.py`.
Select it with `uvicorn --ws ticker.fastws:TickerWebSocketProtocol` (`ticker serve` does).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, MutableMapping
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ticker.wire import ws_close_frame

EXTENSION = "ticker.raw"
CLOSE_TIMEOUT = 5.0
MAX_CONTROL = 125
PING = b"\x89\x00"


def _nothing() -> None:
    pass


class Fan(asyncio.Protocol):
    """One adopted fan socket."""

    __slots__ = ("_buf", "_connections", "_skip", "awaiting_pong", "closing", "on_lost",
                 "on_slow", "transport", "write")  # fmt: skip

    def __init__(self, transport: asyncio.Transport, connections: set[Any]) -> None:
        self.transport = transport
        self.write: Callable[[bytes], None] = transport.write
        self.on_lost: Callable[[], None] = _nothing
        self.on_slow: Callable[[], None] = _nothing
        self._connections = connections
        self._buf = b""
        self._skip = 0
        self.closing = False
        self.awaiting_pong = False

    def data_received(self, data: bytes) -> None:
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return
            data = data[self._skip :]
            self._skip = 0
        buf = self._buf + data if self._buf else data
        while len(buf) >= 2:
            opcode, n, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, pos = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, pos = struct.unpack_from("!Q", buf, 2)[0], 10
            mask = buf[pos : pos + 4] if buf[1] & 0x80 else b""
            pos += len(mask)
            if opcode < 8:  # data frame: skip it without keeping it
                if len(buf) - pos < n:
                    self._skip = n - (len(buf) - pos)
                    buf = b""
                    break
                buf = buf[pos + n :]
                continue
            if n > MAX_CONTROL:
                self.close(1002, "control frame too long")
                return
            if len(buf) - pos < n:
                break
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[pos : pos + n])) \
                if mask else buf[pos : pos + n]  # fmt: skip
            buf = buf[pos + n :]
            self._control(opcode, payload)
        self._buf = buf

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x9:
            self.transport.write(bytes((0x8A, len(payload))) + payload)
        elif opcode == 0xA:
            self.awaiting_pong = False
        elif opcode == 0x8:
            if not self.closing:
                self.closing = True
                self.transport.write(bytes((0x88, len(payload[:2]))) + payload[:2])
            self.transport.close()

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake; the socket goes when the fan answers, or soon after."""
        if self.closing or self.transport.is_closing():
            return
        self.closing = True
        self.transport.write(ws_close_frame(code, reason))
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.transport.close)

    def keepalive(self) -> None:
        """Ping; a fan that did not answer the previous ping is closed."""
        if self.awaiting_pong:
            self.close(1011, "keepalive ping timeout")
            self.transport.close()
        elif not self.closing:
            self.awaiting_pong = True
            self.transport.write(PING)

    def pause_writing(self) -> None:
        # Called from inside transport.write, maybe mid fan-out loop: act after it.
        asyncio.get_running_loop().call_soon(self.on_slow)

    def resume_writing(self) -> None:
        pass

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        on_lost, self.on_lost = self.on_lost, _nothing
        on_lost()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: tell the fan to come back with `since`."""
        self.close(1012, "server restarting")


class RawChannel:
    """The app's handle on a fan socket until it adopts it."""

    __slots__ = ("_proto",)

    def __init__(self, proto: TickerWebSocketProtocol) -> None:
        self._proto = proto

    def adopt(self, high_water: int) -> Fan | None:
        """Hand the socket to a new `Fan` (None if it is already gone)."""
        proto, self._proto = self._proto, None  # type: ignore[assignment]
        if proto is None or proto.disconnected or proto.close_sent:
            return None
        transport = proto.transport
        proto.stop_keepalive()
        proto.adopted = True
        connections: set[Any] = proto.connections  # type: ignore[assignment]
        connections.discard(proto)
        fan = Fan(transport, connections)
        connections.add(fan)
        transport.set_protocol(fan)
        transport.set_write_buffer_limits(high=high_water)
        if proto.read_paused:
            transport.resume_reading()
        return fan


class TickerWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's protocol, offering the `ticker.raw` extension to the app."""

    adopted = False

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.close_sent:
            # The ASGI task is created but has not run yet: the extension is in time.
            scope["extensions"][EXTENSION] = RawChannel(self)

    async def run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        # An adopted socket belongs to its Fan now: uvicorn must not close it.
        if self.close_timer is None and not self.adopted:
            self.transport.close()


def raw_channel(scope: MutableMapping[str, Any]) -> RawChannel | None:
    ext = scope.get("extensions") or {}
    channel = ext.get(EXTENSION)
    return channel if isinstance(channel, RawChannel) else None
