"""One load-generator process: thousands of WebSocket fans on one match, as cheap as possible.

Each fan is a bare `asyncio.Protocol` (uvloop when installed): it writes a fixed upgrade
request, checks the 101 and its `Sec-WebSocket-Accept`, then parses the server's unmasked
frames by hand. Per text frame it pulls the event index, publish timestamp and seq out with
two regex searches (no JSON decoding) and checks the index is exactly the next one expected.

The driver (`run.py`) talks to this process over stdin/stdout, one JSON object per line:

    -> {"cmd": "connect", "host", "port", "path", "count", "concurrency"}
    <- {"ev": "connected", "ok", "failed", "t0", "t1", "errors"}
    -> {"cmd": "expect", "total": T, "latency_until": L}   events [0, T) will come
    <- {"ev": "done", "i": I, "t": NS}   every fan here has event I (sent once per event)
    -> {"cmd": "latencies"}             <- {"ev": "latencies", "path": FILE}  (int64 µs)
    -> {"cmd": "report"}                <- {"ev": "report", ...}
    -> {"cmd": "close"}                 aborts every connection (RST, no TIME_WAIT), exits
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import resource
import socket
import struct
import sys
import tempfile
import time
from array import array
from typing import Any

import orjson

try:
    from benchmarks.workload import EVENT_RE, SEQ_RE
except ModuleNotFoundError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.workload import EVENT_RE, SEQ_RE

_KEY = base64.b64encode(b"ticker-benchmark").decode()
_ACCEPT = base64.b64encode(
    hashlib.sha1((_KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
)
_LINGER_RST = struct.pack("ii", 1, 0)
_BIND_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
_now = time.monotonic_ns

MAX_ERRORS = 20  # first problems kept verbatim for the report


class Fans:
    """Everything the fans of this process share: expectations, counters, results."""

    def __init__(self) -> None:
        self.conns: list[Fan] = []
        self.ready = 0
        self.total = 0  # events [0, total) are expected
        self.latency_until = 0  # latency samples are kept for events below this index
        self.counts: list[int] = []
        self.seqs: list[bytes | None] = []
        self.latencies = array("q")
        self.done: list[int] = []
        self.errors: list[str] = []
        self.out_of_order = 0
        self.seq_mismatch = 0
        self.unexpected = 0
        self.frames = 0
        self.payload_bytes = 0
        self.lost = 0
        self.close_codes: dict[int, int] = {}
        self.closing = False
        self.request = b""

    def error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text)

    def expect(self, total: int, latency_until: int) -> None:
        grow = total - len(self.counts)
        if grow > 0:
            self.counts.extend([0] * grow)
            self.seqs.extend([None] * grow)
        self.total = total
        self.latency_until = latency_until

    def flush_done(self) -> None:
        now = _now()
        emit(*({"ev": "done", "i": i, "t": now} for i in self.done))
        self.done.clear()


class Fan(asyncio.Protocol):
    __slots__ = ("buf", "fans", "frag", "id", "next", "open", "ready", "transport", "upgraded")

    def __init__(self, fans: Fans, ident: int, ready: asyncio.Future[None]) -> None:
        self.fans = fans
        self.id = ident
        self.ready: asyncio.Future[None] | None = ready
        self.transport: Any = None
        self.buf = b""
        self.frag: bytes | None = None
        self.upgraded = False
        self.next = 0
        self.open = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.open = True
        transport.write(self.fans.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.ready is not None:
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(f"closed before the first message: {exc}"))
            return
        if not self.fans.closing:
            self.fans.lost += 1
            self.fans.error(f"fan {self.id}: connection lost after event {self.next - 1}: {exc}")

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            head = data[:end]
            if not head.startswith(b"HTTP/1.1 101") or _ACCEPT not in head:
                self._fail(f"bad upgrade response: {head[:200]!r}")
                return
            self.upgraded = True
            data = data[end + 4 :]
        now = _now()
        fans = self.fans
        pos = 0
        size = len(data)
        while size - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1]
            if length & 0x80:
                self._fail("server sent a masked frame")
                return
            if length < 126:
                start = pos + 2
            elif length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                start = pos + 4
            else:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            payload = data[start:end]
            pos = end
            opcode = b0 & 0x0F
            if opcode == 0:  # continuation of a fragmented message
                self.frag = (self.frag or b"") + payload
                if not b0 & 0x80:
                    continue
                payload, self.frag = self.frag, None
            elif opcode <= 2:  # text (or binary)
                if not b0 & 0x80:
                    self.frag = payload
                    continue
            else:
                self._control(opcode, payload)
                continue
            if self.ready is not None:
                ready, self.ready = self.ready, None
                if b'"snapshot"' not in payload:
                    fans.unexpected += 1
                    fans.error(f"fan {self.id}: first message is not a snapshot: {payload[:120]!r}")
                ready.set_result(None)
                continue
            fans.frames += 1
            fans.payload_bytes += len(payload)
            m = EVENT_RE.search(payload)
            if m is None:
                fans.unexpected += 1
                fans.error(f"fan {self.id}: unexpected message {payload[:160]!r}")
                continue
            index = int(m[1])
            if index != self.next:
                fans.out_of_order += 1
                fans.error(f"fan {self.id}: expected event {self.next}, got {index}")
                if index < self.next:  # a duplicate or a step back: count nothing again
                    continue
            self.next = index + 1
            if index >= fans.total:
                fans.error(f"fan {self.id}: event {index} beyond the {fans.total} published")
                continue
            count = fans.counts[index] + 1
            fans.counts[index] = count
            if count == fans.ready:
                fans.done.append(index)
            if index < fans.latency_until:
                fans.latencies.append((now - int(m[2])) // 1000)
            s = SEQ_RE.search(payload)
            seq = s[1] if s is not None else b""
            known = fans.seqs[index]
            if known is None:
                fans.seqs[index] = seq
            elif known != seq:
                fans.seq_mismatch += 1
                fans.error(f"fan {self.id}: event {index} has seq {seq!r}, others had {known!r}")
        if pos < size:
            self.buf = data[pos:]
        if fans.done:
            fans.flush_done()

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == 9:  # ping -> pong, masked with a zero key as a client must mask
            self.transport.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
        elif opcode == 8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.fans.close_codes[code] = self.fans.close_codes.get(code, 0) + 1
            self.fans.error(f"fan {self.id}: server closed with {code} {payload[2:80]!r}")
            self.transport.write(b"\x88\x82\0\0\0\0" + payload[:2])
            self.transport.close()

    def _fail(self, text: str) -> None:
        self.fans.error(f"fan {self.id}: {text}")
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(ConnectionError(text))
        self.transport.abort()


def emit(*messages: dict[str, Any]) -> None:
    if messages:
        os.write(1, b"".join(orjson.dumps(m) + b"\n" for m in messages))


async def connect(fans: Fans, cmd: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    host, port, count = cmd["host"], cmd["port"], cmd["count"]
    fans.request = (
        f"GET {cmd['path']} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    pending = iter(range(count))
    failed = 0

    async def opener() -> None:
        nonlocal failed
        for ident in pending:
            ready: asyncio.Future[None] = loop.create_future()
            fan = Fan(fans, ident, ready)
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                # An abortive close at the end: no TIME_WAIT pile-up between runs.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                if host.startswith("127."):  # see source() in loadgen.c
                    sock.setsockopt(socket.IPPROTO_IP, _BIND_NO_PORT, 1)
                    sock.bind((f"127.0.0.{1 + ident % 16}", 0))
                sock.setblocking(False)
                await loop.sock_connect(sock, (host, port))
                await loop.create_connection(lambda fan=fan: fan, sock=sock)
                await ready
            except OSError as exc:
                failed += 1
                fans.error(f"fan {ident}: connect failed: {exc!r}")
                if fan.transport is not None:
                    fan.transport.abort()
                else:
                    sock.close()
                continue
            fans.conns.append(fan)
            fans.ready += 1

    t0 = _now()
    await asyncio.gather(*(opener() for _ in range(min(cmd["concurrency"], count))))
    return {"ev": "connected", "ok": fans.ready, "failed": failed, "t0": t0, "t1": _now()}


def report(fans: Fans) -> dict[str, Any]:
    behind = [f for f in fans.conns if f.next != fans.total]
    for f in behind[:MAX_ERRORS]:
        fans.error(f"fan {f.id}: last event was {f.next - 1}, {fans.total} were published")
    return {
        "ev": "report",
        "conns": len(fans.conns),
        "open": sum(1 for f in fans.conns if f.open),
        "incomplete": len(behind),
        "out_of_order": fans.out_of_order,
        "seq_mismatch": fans.seq_mismatch,
        "unexpected": fans.unexpected,
        "lost": fans.lost,
        "close_codes": fans.close_codes,
        "frames": fans.frames,
        "payload_bytes": fans.payload_bytes,
        "seqs": [s.decode(errors="replace") if s is not None else None for s in fans.seqs],
        "errors": fans.errors,
    }


async def main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    fans = Fans()
    emit({"ev": "hello", "pid": os.getpid()})
    while line := await reader.readline():
        cmd = orjson.loads(line)
        name = cmd["cmd"]
        if name == "connect":
            emit(await connect(fans, cmd))
        elif name == "expect":
            fans.expect(cmd["total"], cmd["latency_until"])
        elif name == "latencies":
            fd, path = tempfile.mkstemp(prefix="latencies-", suffix=".bin")
            with os.fdopen(fd, "wb") as f:
                fans.latencies.tofile(f)
            fans.latencies = array("q")
            emit({"ev": "latencies", "path": path})
        elif name == "report":
            emit(report(fans))
        elif name == "close":
            break
    fans.closing = True
    for fan in fans.conns:
        if fan.open:
            fan.transport.abort()
    await asyncio.sleep(0)


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
