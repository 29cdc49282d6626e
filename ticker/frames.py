"""Sans-I/O reading of client WebSocket frames (RFC 6455 §5): bytes in, messages out.

No sockets and no event loop here, so every edge (a header split over reads, masks,
fragments, oversize messages) is tested directly in tests/test_frames.py; the
protocol in fastws.py only moves bytes in and acts on what comes out.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

MAX_CONTROL = 125
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class ProtocolError(Exception):
    """The client broke the protocol; close the connection with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def unmask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return data
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


class FrameReader:
    """Turns the bytes a client sends into whole messages and control frames.

    `feed` yields `(opcode, payload)`: TEXT (payload decoded to str), BINARY, PING, PONG
    and CLOSE (bytes). With `drop_data`, data frames are skipped as they arrive without
    being kept, whatever their size: a fan's messages are never read.
    """

    __slots__ = ("_buf", "_fragments", "_kind", "_size", "_skip", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = b""
        self._skip = 0
        self._fragments: list[bytes] | None = None
        self._size = 0
        self._kind = 0

    def feed(self, data: bytes, drop_data: bool = False) -> Iterator[tuple[int, bytes | str]]:
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return
            data = data[self._skip :]
            self._skip = 0
        self._buf = self._buf + data if self._buf else data
        while len(self._buf) >= 2:
            buf = self._buf
            b0, b1 = buf[0], buf[1]
            opcode, n, pos = b0 & 0x0F, b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, pos = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, pos = struct.unpack_from("!Q", buf, 2)[0], 10
            if not b1 & 0x80:
                raise ProtocolError(1002, "client frames must be masked")
            if opcode >= 8 and (n > MAX_CONTROL or not b0 & 0x80):
                raise ProtocolError(1002, "control frames must be whole and short")
            if opcode in (3, 4, 5, 6, 7) or opcode > PONG:
                raise ProtocolError(1002, f"unknown opcode {opcode}")
            mask, pos = buf[pos : pos + 4], pos + 4
            if opcode < 8 and (drop_data or n > self.max_size):
                if not drop_data:
                    raise ProtocolError(1009, "message too big")
                if len(buf) - pos < n:  # skip the rest as it arrives
                    self._skip = n - (len(buf) - pos)
                    self._buf = b""
                    return
                self._buf = buf[pos + n :]
                continue
            if len(buf) - pos < n:
                return
            payload = unmask(buf[pos : pos + n], mask)
            self._buf = buf[pos + n :]
            if opcode >= 8:
                yield opcode, payload
            else:
                message = self._assemble(opcode, bool(b0 & 0x80), payload)
                if message is not None:
                    yield message

    def _assemble(self, opcode: int, fin: bool, payload: bytes) -> tuple[int, bytes | str] | None:
        if opcode != 0:
            if self._fragments is not None:
                raise ProtocolError(1002, "a new message before the last one ended")
            self._kind, self._fragments, self._size = opcode, [payload], len(payload)
        elif self._fragments is None:
            raise ProtocolError(1002, "continuation without a start")
        else:
            self._fragments.append(payload)
            self._size += len(payload)
        if self._size > self.max_size:
            raise ProtocolError(1009, "message too big")
        if not fin:
            return None
        data, self._fragments = b"".join(self._fragments), None
        if self._kind == TEXT:
            try:
                return TEXT, data.decode()
            except UnicodeDecodeError:
                raise ProtocolError(1007, "invalid UTF-8") from None
        return BINARY, data
