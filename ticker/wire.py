"""The only place JSON bytes and wire frames are made.

Per op the hub needs up to three encodings (WebSocket frame, SSE record, plain JSON);
`Message` makes each at most once, on first use, and every subscriber shares the bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

loads = orjson.loads


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final WebSocket frame (RFC 6455 §5.2), as a server sends it."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, n))
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


def ws_close_frame(code: int, reason: str = "") -> bytes:
    return ws_frame(0x8, struct.pack("!H", code) + reason.encode()[:120])


def sse_record(seq: str | None, kind: str, payload: bytes) -> bytes:
    """One Server-Sent Events record; orjson never emits a raw newline, so one data line.

    Without a seq there is no `id:` line, so the browser's Last-Event-ID stays where it was.
    """
    head = b"" if seq is None else b"id: " + seq.encode() + b"\n"
    return head + b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"


class Message:
    """One message for subscribers: its JSON once, and each framing at most once.

    `seq` is None for a message outside the log (viewer counts): it moves no cursor.
    """

    __slots__ = ("_frame", "_sse", "json", "kind", "seq")

    def __init__(self, seq: str | None, kind: str, json: bytes) -> None:
        self.seq = seq
        self.kind = kind
        self.json = json
        self._frame: bytes | None = None
        self._sse: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = ws_frame(0x1, self.json)
        return self._frame

    @property
    def sse(self) -> bytes:
        if self._sse is None:
            self._sse = sse_record(self.seq, self.kind, self.json)
        return self._sse

    @property
    def text(self) -> str:
        return self.json.decode()
