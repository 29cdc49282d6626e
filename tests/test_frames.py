"""The sans-I/O frame reader, without sockets: every split, mask and fragment."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticker.frames import BINARY, CLOSE, PING, PONG, TEXT, FrameReader, ProtocolError, unmask


def frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = b"abcd") -> bytes:
    """A client frame as RFC 6455 §5.2 lays it out."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    masked = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes((b0, masked | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, masked | 126, n)
    else:
        head = struct.pack("!BBQ", b0, masked | 127, n)
    if mask is None:
        return head + payload
    return head + mask + unmask(payload, mask)


def read(data: bytes, max_size: int = 1 << 20, drop: bool = False) -> list[tuple[int, object]]:
    return list(FrameReader(max_size).feed(data, drop_data=drop))


def test_unmask_is_its_own_inverse() -> None:
    data = os.urandom(1001)
    assert unmask(unmask(data, b"\x01\x02\x03\x04"), b"\x01\x02\x03\x04") == data
    assert unmask(b"", b"abcd") == b""


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_every_length_encoding(size: int) -> None:
    payload = os.urandom(size)
    assert read(frame(BINARY, payload)) == [(BINARY, payload)]


def test_text_control_and_fragments() -> None:
    data = (
        frame(TEXT, "Mål ".encode(), fin=False)
        + frame(PING, b"p1")  # control frames may come between fragments
        + frame(0, b"til FCM")
        + frame(PONG, b"")
        + frame(CLOSE, struct.pack("!H", 1000))
    )
    assert read(data) == [(PING, b"p1"), (TEXT, "Mål til FCM"), (PONG, b""), (CLOSE, b"\x03\xe8")]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 40), max_size=12))
def test_any_split_of_the_bytes_gives_the_same_messages(cuts: list[int]) -> None:
    data = (
        frame(TEXT, b"x" * 300)
        + frame(PING, b"hi")
        + frame(BINARY, b"\x00" * 70, fin=False)
        + frame(0, b"\x01" * 5)
    )
    reader = FrameReader(1 << 20)
    got: list[tuple[int, object]] = []
    pos = 0
    for cut in cuts:
        got += reader.feed(data[pos : pos + cut])
        pos += cut
    got += reader.feed(data[pos:])
    assert got == [(TEXT, "x" * 300), (PING, b"hi"), (BINARY, b"\x00" * 70 + b"\x01" * 5)]


def test_dropped_data_is_skipped_unkept_across_reads() -> None:
    big = frame(TEXT, b"y" * 100_000)
    reader = FrameReader(max_size=10)  # far below the frame: dropping ignores the limit
    got = list(reader.feed(big[:5000], drop_data=True))
    assert got == [] and reader._buf == b"" and reader._skip > 0
    got += reader.feed(big[5000:] + frame(PING, b"!"), drop_data=True)
    assert got == [(PING, b"!")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(TEXT, b"hi", mask=None), 1002),  # a client must mask
        (frame(PING, b"x" * 126), 1002),  # control frames are short
        (frame(PING, b"x", fin=False), 1002),  # and never fragmented
        (frame(0, b"x"), 1002),  # a continuation with nothing to continue
        (frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), 1002),
        (frame(3, b""), 1002),  # reserved opcode
        (frame(TEXT, b"\xff\xfe"), 1007),  # not UTF-8
        (frame(BINARY, b"z" * 101), 1009),  # over max_size in one frame
        (frame(BINARY, b"z" * 60, fin=False) + frame(0, b"z" * 60), 1009),  # or in fragments
    ],
)
def test_protocol_errors_name_their_close_code(data: bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        read(data, max_size=100)
    assert info.value.code == code and info.value.reason
