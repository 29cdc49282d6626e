"""A uvicorn WebSocket protocol that lets the app hand a fan's socket to the hub.

uvicorn's sans-I/O websockets protocol, plus one ASGI extension, `ticker.raw`, in the
scope. Through it the app may, after `websocket.accept`:
- `write(frame)`: put pre-framed bytes on the socket (one frame encoded for all fans);
- `adopt(on_lost, on_slow)`: return from the ASGI app and leave the connection open,
  owned by the hub. No task, no receive queue: incoming data messages are dropped (the
  protocol says a fan sends nothing the server acts on); pings, pongs, close and
  keepalive are still answered here. `on_lost` runs when the socket goes, `on_slow`
  when its write buffer passes the high-water mark (the hub closes it with 4408).
- `close(code, reason)`: the closing handshake, as `websocket.close` would.

Servers without this extension get the plain ASGI path in `streams.py`.
Select it with `uvicorn --ws ticker.fastws:TickerWebSocketProtocol` (`ticker serve` does).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

EXTENSION = "ticker.raw"


class RawChannel:
    """The app's handle on one fan socket; see the module docstring."""

    __slots__ = ("_proto", "adopted", "on_lost", "on_slow")

    def __init__(self, proto: TickerWebSocketProtocol) -> None:
        self._proto = proto
        self.adopted = False
        self.on_lost: Callable[[], None] | None = None
        self.on_slow: Callable[[], None] | None = None

    def write(self, frame: bytes) -> None:
        self._proto.transport.write(frame)

    def adopt(
        self, on_lost: Callable[[], None], on_slow: Callable[[], None], high_water: int
    ) -> None:
        proto = self._proto
        self.on_lost, self.on_slow = on_lost, on_slow
        self.adopted = True
        if proto.disconnected:
            on_lost()
            return
        proto.transport.set_write_buffer_limits(high=high_water)
        if proto.read_paused:
            proto.read_paused = False
            proto.transport.resume_reading()

    def close(self, code: int, reason: str = "") -> None:
        proto = self._proto
        if proto.close_sent or proto.transport.is_closing():
            return
        proto.conn.send_close(code, reason)
        proto.transport.write(b"".join(proto.conn.data_to_send()))
        proto.close_sent = True
        proto.close_timer = proto.loop.call_later(proto.close_timeout, proto.transport.close)


class TickerWebSocketProtocol(WebSocketsSansIOProtocol):
    raw: RawChannel | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.close_sent:
            # The ASGI task is created but has not run yet: the extension is in time.
            self.raw = RawChannel(self)
            scope["extensions"][EXTENSION] = self.raw

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        raw = self.raw
        if raw is not None and raw.on_lost is not None:
            on_lost, raw.on_lost = raw.on_lost, None
            on_lost()

    def pause_writing(self) -> None:
        super().pause_writing()
        raw = self.raw
        if raw is not None and raw.on_slow is not None:
            # Called from inside transport.write, maybe mid fan-out loop: act later.
            self.loop.call_soon(raw.on_slow)

    def send_receive_event_to_app(self) -> None:
        if self.raw is not None and self.raw.adopted:
            self.frames = []
            return
        super().send_receive_event_to_app()

    def handle_cont(self, event: Frame) -> None:
        if self.raw is not None and self.raw.adopted:
            return
        super().handle_cont(event)

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
        adopted = self.raw is not None and self.raw.adopted and not self.close_sent
        if self.close_timer is None and not adopted:
            self.transport.close()


def raw_channel(scope: MutableMapping[str, Any]) -> RawChannel | None:
    ext = scope.get("extensions") or {}
    channel = ext.get(EXTENSION)
    return channel if isinstance(channel, RawChannel) else None
