"""The shape of the workload, shared by the driver, the load generator and the baselines.

Every published event carries `bench i=<index> t=<publish monotonic ns>` in its text.
The index lets each fan check that it got every event once and in order; the timestamp
gives publish->receive latency (CLOCK_MONOTONIC is one clock for every process on Linux).
"""

from __future__ import annotations

import re

import orjson

#: A WebSocket message from a baseline server on connect, standing in for the ticker's snapshot.
SNAPSHOT = b'{"op":"snapshot","seq":"0","events":[]}'

#: Finds the event index and publish timestamp in a received frame, whatever the server.
EVENT_RE = re.compile(rb"bench i=(\d+) t=(\d+)")
#: The op's seq: a number from the baselines, a quoted "ms-n" string from the ticker.
SEQ_RE = re.compile(rb'"seq":"?([^",}]+)')

#: Bytes of a baseline message; the ticker's op for the same text comes out a similar size.
MESSAGE_SIZE = 300


def event_text(index: int, ts_ns: int, pad: int) -> str:
    return f"bench i={index} t={ts_ns} " + "x" * pad


def ticker_event(index: int, ts_ns: int) -> bytes:
    """The body POSTed to the ticker's `/api/matches/{id}/events`."""
    return orjson.dumps(
        {"type": "comment", "minute": 10, "text": event_text(index, ts_ns, _TICKER_PAD)}
    )


def baseline_message(index: int, ts_ns: int) -> bytes:
    """The message a baseline server broadcasts verbatim: an `add` op shaped like the ticker's."""
    return _baseline(index, ts_ns, _BASELINE_PAD)


def _baseline(index: int, ts_ns: int, pad: int) -> bytes:
    return orjson.dumps(
        {
            "op": "add",
            "seq": index,
            "event": {
                "id": str(index),
                "rev": 1,
                "type": "comment",
                "minute": 10,
                "added": 0,
                "text": event_text(index, ts_ns, pad),
                "at": "2026-11-25T20:13:05.120Z",
                "author": "bench",
            },
            "state": {
                "score": {"home": 0, "away": 0},
                "phase": "first_half",
                "minute": 10,
                "added": 0,
            },
        }
    )


# Sized for a typical index (4 digits) and a monotonic timestamp (~13 digits).
_BASELINE_PAD = max(0, MESSAGE_SIZE - len(_baseline(1000, 10**12, 0)))
# The ticker's op carries a longer seq ("1764100000000-0") and event id; same padding is close.
_TICKER_PAD = max(0, _BASELINE_PAD - 24)
