"""Sans-I/O reading of client WebSocket frames (RFC 6455 §5): bytes in, messages out.

No sockets and no event loop here, so every edge (a header split over reads, masks,
fragments, oversize messages, bad close frames) is tested directly in
tests/test_frames.py; the protocol in fastws.py only moves bytes in and acts on what
comes out.

Data frames are taken as their bytes arrive rather than once whole: text is checked
for UTF-8 chunk by chunk, so a client sending invalid text is failed at the first bad
byte, not after the rest of a large frame. After a close frame or a protocol error the
reader takes nothing more: later bytes are dropped, never buffered.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Iterator

MAX_CONTROL = 125
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
# Close codes a peer may send (RFC 6455 §7.4, IANA registry); 3000-4999 are for
# libraries and applications. 1005, 1006 and 1015 only ever describe a close locally.
CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))
_utf8 = codecs.getincrementaldecoder("utf-8")


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


def parse_close(payload: bytes) -> tuple[int, str]:
    """The code and reason of a close frame's payload; 1005 when it has none."""
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise ProtocolError(1002, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code not in CLOSE_CODES and not 3000 <= code < 5000:
        raise ProtocolError(1002, f"invalid close code {code}")
    try:
        return code, payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolError(1007, "close reason is not UTF-8") from None


class FrameReader:
    """Turns the bytes a client sends into whole messages and control frames.

    `feed` yields `(opcode, payload)`: TEXT (payload decoded to str), BINARY, PING, PONG
    and CLOSE (bytes, already checked by `parse_close`). With `drop_data`, data frames
    are skipped as they arrive without being kept, whatever their size: a fan's messages
    are never read. After CLOSE, or once `feed` has raised ProtocolError, `done` is set.
    """

    __slots__ = (
        "_buf",
        "_decoder",
        "_fin",
        "_kind",
        "_left",
        "_mask",
        "_parts",
        "_size",
        "done",
        "max_size",
    )

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.done = False
        self._buf = b""
        self._left = 0  # payload bytes of the current data frame still to come
        self._mask = b""  # its mask, turned to line up with the next payload byte
        self._fin = False
        self._kind = 0  # opcode of the message in progress, 0 between messages
        self._size = 0
        self._parts: list[bytes] | list[str] | None = None  # None: dropping its data
        self._decoder: codecs.IncrementalDecoder | None = None

    def feed(self, data: bytes, drop_data: bool = False) -> Iterator[tuple[int, bytes | str]]:
        if self.done:
            return
        try:
            yield from self._feed(data, drop_data)
        except ProtocolError:
            self.done = True
            self._buf, self._parts, self._decoder = b"", None, None
            raise

    def _feed(self, data: bytes, drop_data: bool) -> Iterator[tuple[int, bytes | str]]:
        buf = self._buf + data if self._buf else data
        self._buf = b""
        pos, end = 0, len(buf)
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                self._payload(buf[pos : pos + take])
                pos += take
                if self._left == 0 and self._fin:
                    yield from self._end()
                continue
            if end - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            opcode, n, head = b0 & 0x0F, b1 & 0x7F, 2
            if n == 126:
                if end - pos < 4:
                    break
                n, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif n == 127:
                if end - pos < 10:
                    break
                n, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if b0 & 0x70:
                raise ProtocolError(1002, "reserved bits set; no extension was agreed")
            if opcode in (3, 4, 5, 6, 7) or opcode > PONG:
                raise ProtocolError(1002, f"unknown opcode {opcode}")
            if not b1 & 0x80:
                raise ProtocolError(1002, "client frames must be masked")
            if opcode >= 8:
                if n > MAX_CONTROL or not b0 & 0x80:
                    raise ProtocolError(1002, "control frames must be whole and short")
                if end - pos < head + 4 + n:
                    break
                start = pos + head + 4
                payload = unmask(buf[start : start + n], buf[start - 4 : start])
                pos = start + n
                if opcode == CLOSE:
                    parse_close(payload)
                    self.done = True
                    yield opcode, payload
                    return
                yield opcode, payload
                continue
            if end - pos < head + 4:
                break
            self._start(opcode, bool(b0 & 0x80), n, buf[pos + head : pos + head + 4], drop_data)
            pos += head + 4
            if n == 0 and self._fin:
                yield from self._end()
        if pos < end:
            self._buf = buf[pos:]

    def _start(self, opcode: int, fin: bool, n: int, mask: bytes, drop: bool) -> None:
        """A data frame's header: check it against the message in progress."""
        if opcode != 0:
            if self._kind:
                raise ProtocolError(1002, "a new message before the last one ended")
            self._kind, self._size = opcode, 0
            if drop:
                self._parts = None
            else:
                self._parts = []
                self._decoder = _utf8() if opcode == TEXT else None
        elif not self._kind:
            raise ProtocolError(1002, "continuation without a start")
        self._size += n
        if self._parts is not None and self._size > self.max_size:
            raise ProtocolError(1009, "message too big")
        self._fin, self._left, self._mask = fin, n, mask

    def _payload(self, chunk: bytes) -> None:
        """Payload bytes of the current data frame, as many as have come."""
        self._left -= len(chunk)
        if self._parts is None:
            return
        turn = len(chunk) % 4
        data, self._mask = unmask(chunk, self._mask), self._mask[turn:] + self._mask[:turn]
        if self._decoder is None:
            self._parts.append(data)  # type: ignore[arg-type]
            return
        try:
            self._parts.append(self._decoder.decode(data))  # type: ignore[arg-type]
        except UnicodeDecodeError:
            raise ProtocolError(1007, "invalid UTF-8") from None

    def _end(self) -> Iterator[tuple[int, bytes | str]]:
        """The final frame of a message is in: the message, unless it was dropped."""
        kind, parts, decoder = self._kind, self._parts, self._decoder
        self._kind, self._parts, self._decoder = 0, None, None
        if parts is None:
            return
        if decoder is None:
            yield kind, b"".join(parts)  # type: ignore[arg-type]
            return
        try:
            decoder.decode(b"", True)  # a sequence cut off by the end of the message
        except UnicodeDecodeError:
            raise ProtocolError(1007, "invalid UTF-8") from None
        yield TEXT, "".join(parts)  # type: ignore[arg-type]
