"""The ceiling: a bare uvloop `asyncio.Protocol` server, one pre-framed message written per socket.

No framework, no ASGI, no per-client task. HTTP is parsed by hand, just enough for:

    GET /ws/...       WebSocket upgrade; sends a small snapshot message, then every broadcast
    POST /publish     body = one message; framed once, written to every socket, then 200
    GET /healthz      200

Usage: python benchmarks/raw_uvloop.py --port P [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import resource
import signal
import sys
from typing import Any

try:
    from benchmarks.workload import SNAPSHOT
except ModuleNotFoundError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.workload import SNAPSHOT

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 16384

# transport -> its bound `write`: the fan-out loop is then one plain call per fan.
subscribers: dict[Any, Any] = {}


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def response(status: str, body: bytes = b"") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


class Connection(asyncio.Protocol):
    __slots__ = ("buf", "transport", "ws")

    def __init__(self) -> None:
        self.transport: Any = None
        self.buf = b""
        self.ws = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        subscribers.pop(self.transport, None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.ws:
            self._client_frames()
            return
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.transport.close()
                return
            lines = self.buf[:end].split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3:
                self.transport.write(response("400 Bad Request"))
                self.transport.close()
                return
            method, path = parts[0], parts[1]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            body_len = int(headers.get(b"content-length", b"0"))
            if len(self.buf) < end + 4 + body_len:
                return
            body = self.buf[end + 4 : end + 4 + body_len]
            self.buf = self.buf[end + 4 + body_len :]
            if method == b"GET" and path.startswith(b"/ws/"):
                self._upgrade(headers)
                return
            if method == b"POST" and path == b"/publish":
                message = frame(body)
                for write in subscribers.values():
                    write(message)
                self.transport.write(response("200 OK", str(len(subscribers)).encode()))
            elif method == b"GET" and path == b"/healthz":
                self.transport.write(response("200 OK", b"ok"))
            else:
                self.transport.write(response("404 Not Found"))

    def _upgrade(self, headers: dict[bytes, bytes]) -> None:
        key = headers.get(b"sec-websocket-key")
        if key is None or headers.get(b"upgrade", b"").lower() != b"websocket":
            self.transport.write(response("400 Bad Request"))
            self.transport.close()
            return
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + frame(SNAPSHOT)
        )
        self.ws = True
        subscribers[self.transport] = self.transport.write
        if self.buf:
            self._client_frames()

    def _client_frames(self) -> None:
        """Skip what a fan sends (pongs); a close frame closes the socket."""
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 6:
            opcode = buf[pos] & 0x0F
            length = buf[pos + 1] & 0x7F
            start = pos + 2
            if len(buf) < start + {126: 2, 127: 8}.get(length, 0):
                break
            if length == 126:
                length = int.from_bytes(buf[start : start + 2], "big")
                start += 2
            elif length == 127:
                length = int.from_bytes(buf[start : start + 8], "big")
                start += 8
            end = start + 4 + length  # clients always mask: 4 key bytes
            if end > len(buf):
                break
            pos = end
            if opcode == 8:
                self.transport.write(b"\x88\x02\x03\xe8")
                self.transport.close()
                break
        self.buf = buf[pos:]


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Connection, host, port, backlog=4096)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
