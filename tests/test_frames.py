"""The sans-I/O frame reader, without sockets: every split, mask and fragment."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticker.frames import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameReader,
    ProtocolError,
    parse_close,
    unmask,
)


def frame(
    opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = b"abcd", rsv: int = 0
) -> bytes:
    """A client frame as RFC 6455 §5.2 lays it out."""
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
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


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 9), max_size=60))
def test_text_split_inside_characters_and_masks_reads_the_same(cuts: list[int]) -> None:
    """Text is decoded as it arrives: a read may end inside a character or a mask cycle."""
    text = "Mål! ø æ 😀 " * 8
    data = frame(TEXT, text[:40].encode(), fin=False) + frame(0, text[40:].encode())
    reader = FrameReader(1 << 20)
    got: list[tuple[int, object]] = []
    pos = 0
    for cut in cuts:
        got += reader.feed(data[pos : pos + cut])
        pos += cut
    got += reader.feed(data[pos:])
    assert got == [(TEXT, text)]


def test_dropped_data_is_skipped_unkept_across_reads() -> None:
    big = frame(TEXT, b"y" * 100_000)
    reader = FrameReader(max_size=10)  # far below the frame: dropping ignores the limit
    got = list(reader.feed(big[:5000], drop_data=True))
    assert got == [] and reader._buf == b"" and reader._left > 0
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


def close(code: int, reason: bytes = b"") -> bytes:
    return frame(CLOSE, struct.pack("!H", code) + reason)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(frame(TEXT, b"hi", rsv=1), 1002, id="rsv1"),  # no extension agreed
        pytest.param(frame(BINARY, b"hi", rsv=5), 1002, id="rsv5"),
        pytest.param(frame(PING, b"", rsv=6), 1002, id="rsv6-ping"),
        pytest.param(frame(CLOSE, b"\x03"), 1002, id="close-1-byte"),
        pytest.param(close(1000, b"\xce\xba\xed\xa0\x80"), 1007, id="close-reason-not-utf8"),
        *[
            pytest.param(close(c), 1002, id=f"close-code-{c}")
            for c in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)
        ],
    ],
)
def test_reserved_bits_and_bad_close_frames_fail(data: bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        read(data)
    assert info.value.code == code


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1014, 3000, 4999])
def test_valid_close_codes_are_read(code: int) -> None:
    assert read(close(code, "død".encode())) == [(CLOSE, struct.pack("!H", code) + "død".encode())]
    assert parse_close(struct.pack("!H", code) + b"ok") == (code, "ok")
    assert parse_close(b"") == (1005, "")


def test_invalid_utf8_fails_before_the_frame_is_whole() -> None:
    """A text frame cut into reads fails at the read with the bad byte, not at its end."""
    data = frame(TEXT, "Mål".encode() + b"\xf4\x90\x80\x80" + b"x" * 1000)
    reader = FrameReader(1 << 20)
    assert list(reader.feed(data[:9])) == []  # header and the valid start
    with pytest.raises(ProtocolError) as info:
        list(reader.feed(data[9:20]))
    assert info.value.code == 1007


def test_invalid_utf8_fails_at_the_fragment_with_it() -> None:
    reader = FrameReader(1 << 20)
    assert list(reader.feed(frame(TEXT, "Må".encode(), fin=False))) == []
    with pytest.raises(ProtocolError) as info:
        list(reader.feed(frame(0, b"\xed\xa0\x80", fin=False)))  # a surrogate: never valid
    assert info.value.code == 1007


def test_utf8_split_between_fragments_is_valid_but_not_cut_off() -> None:
    ae = "æ".encode()
    assert read(frame(TEXT, ae[:1], fin=False) + frame(0, ae[1:])) == [(TEXT, "æ")]
    with pytest.raises(ProtocolError) as info:
        read(frame(TEXT, ae[:1], fin=False) + frame(0, b""))
    assert info.value.code == 1007


def test_nothing_is_read_or_kept_after_an_error_or_a_close() -> None:
    reader = FrameReader(1 << 20)
    with pytest.raises(ProtocolError):
        list(reader.feed(frame(TEXT, b"hi", mask=None)))
    for _ in range(100):
        assert list(reader.feed(frame(PING, b"x") + b"\x00" * 10_000)) == []
    assert reader.done and reader._buf == b""
    reader = FrameReader(1 << 20)
    assert list(reader.feed(close(1000) + frame(PING, b"late"))) == [(CLOSE, b"\x03\xe8")]
    assert list(reader.feed(frame(PING, b"later"))) == [] and reader.done
