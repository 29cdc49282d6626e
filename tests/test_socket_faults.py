"""Misbehaving fans over real sockets: they never read, they flood, they resume from far back.

One client must not hurt the others, and none may pin memory or kernel buffers for good:
each test checks the server-side socket is really gone (`ss`), not just unsubscribed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import struct
import subprocess
import threading
import time
from contextlib import closing

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import TickerServer, new_match
from tests.test_streams import _raw_ws, post, recv, sse_messages

BUFFER = 32768  # TICKER_CLIENT_BUFFER here: the queued paths allow max(64, BUFFER // 300) ops


def subscribers(server: TickerServer) -> int:
    return int(httpx.get(server.url + "/healthz", timeout=5).json()["subscribers"])


def server_socket_states(server: TickerServer, client: socket.socket) -> list[str]:
    """States of the server's end of `client`'s connection, TIME-WAIT left out (it holds
    no buffers)."""
    cport = client.getsockname()[1]
    out = subprocess.run(
        ["ss", "-Htn", "state", "all", f"( sport = :{server.port} and dport = :{cport} )"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line.split()[0] for line in out.splitlines() if not line.startswith("TIME-WAIT")]


def wait_for(what: str, check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def flood(server: TickerServer, match_id: str, until, most: int = 1200) -> None:  # type: ignore[no-untyped-def]
    """Post big ops from a few threads (the kernel alone takes ~3 MiB for a fan that never
    reads) until `until()`, or `most` of them."""
    done = threading.Event()
    count = itertools.count()

    def worker() -> None:
        with server.admin() as admin:
            while not done.is_set() and next(count) < most:
                r = admin.post(
                    f"/api/matches/{match_id}/events", json={"type": "comment", "text": "😀" * 2000}
                )
                assert r.status_code == 201, r.text

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads) and not until():
        time.sleep(0.2)
    done.set()
    for t in threads:
        t.join(30)


def with_backlog(server: TickerServer, match_id: str, n: int = 150) -> tuple[str, str]:
    """A match whose ops after its first event outgrow BUFFER (and the queued limit) while
    its snapshot stays small: one event corrected `n` times. Returns (first seq, head)."""
    with server.admin() as admin:
        new_match(admin, match_id)
        first = post(server, match_id, {"type": "comment", "text": "0"})
        eid = first["event"]["id"]
        for i in range(n):
            r = admin.patch(
                f"/api/matches/{match_id}/events/{eid}", json={"text": f"{i} " + "x" * 300}
            )
            assert r.status_code == 200, r.text
        head = r.json()["op"]["seq"]
    return first["seq"], head


@pytest.mark.parametrize("path", ["fast", "plain", "sse"])
def test_resume_with_a_backlog_over_the_buffer_gets_a_reset_snapshot(
    make_server, match_id: str, path: str
) -> None:  # type: ignore[no-untyped-def]
    env = {"TICKER_CLIENT_BUFFER": str(BUFFER), "TICKER_FSYNC": "false"}
    server = make_server(env={**env, "TICKER_WS": "plain" if path == "plain" else "fast"})
    first, head = with_backlog(server, match_id)

    def check(snap: dict) -> None:
        assert snap["op"] == "snapshot" and snap["reset"] is True and snap["seq"] == head
        assert len(snap["events"]) == 1

    if path == "sse":
        url = f"{server.url}/sse/matches/{match_id}?since={first}"
        with httpx.stream("GET", url, timeout=10) as r:
            messages = sse_messages(r.iter_lines())
            got = next(messages, None)
            assert got is not None, "the stream ended before it sent anything"
            assert got["event"] == "snapshot" and got["id"] == head
            check(json.loads(got["data"]))
            live = post(server, match_id, {"type": "comment", "text": "live"})
            assert json.loads(next(messages)["data"]) == live
    else:
        with connect(f"{server.ws_url}/ws/matches/{match_id}?since={first}") as ws:
            check(recv(ws))
            live = post(server, match_id, {"type": "comment", "text": "live"})
            assert recv(ws) == live, "after the reset snapshot the fan is live"


def test_a_resumer_that_never_reads_is_closed_and_its_socket_gone(
    make_server, match_id: str
) -> None:  # type: ignore[no-untyped-def]
    env = {"TICKER_CLIENT_BUFFER": str(BUFFER), "TICKER_FSYNC": "false"}
    # A slow fan's buffer is kept for one ping interval (here 5 s), then it is aborted.
    server = make_server(env={**env, "TICKER_PING_INTERVAL": "4"})
    first, _ = with_backlog(server, match_id)
    stuck = _raw_ws(server.port, f"/ws/matches/{match_id}?since={first}")
    with closing(stuck), connect(f"{server.ws_url}/ws/matches/{match_id}") as fan:
        recv(fan)
        wait_for("both fans subscribed", lambda: subscribers(server) == 2)
        stop = threading.Event()
        got: list[dict] = []

        def read() -> None:  # a good fan reads all along
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    got.append(recv(fan, timeout=0.2))

        reader = threading.Thread(target=read)
        reader.start()
        try:
            flood(server, match_id, until=lambda: subscribers(server) < 2)
        finally:
            stop.set()
            reader.join(10)
        assert subscribers(server) == 1, "the fan that never reads was never dropped"
        wait_for("its socket gone from the server", lambda: not server_socket_states(server, stuck))
        op = post(server, match_id, {"type": "comment", "text": "still live"})
        while (got := recv(fan))["seq"] != op["seq"]:  # it kept up with every op
            assert got["op"] == "add"


def test_keepalive_aborts_a_fan_whose_window_is_full(make_server, match_id: str) -> None:  # type: ignore[no-untyped-def]
    server = make_server(env={"TICKER_PING_INTERVAL": "1", "TICKER_FSYNC": "false"})
    with server.admin() as admin:
        new_match(admin, match_id)
    stuck = _raw_ws(server.port, f"/ws/matches/{match_id}")  # 4 KiB receive buffer, never read
    # The good fan's client keeps reading (and answering pings) however much is unread.
    fan = connect(f"{server.ws_url}/ws/matches/{match_id}", max_queue=None)
    with closing(stuck), fan:
        recv(fan)
        wait_for("both fans subscribed", lambda: subscribers(server) == 2)
        for _ in range(12):  # ~50 KiB: far under the client buffer, far over its window
            post(server, match_id, {"type": "comment", "text": "ø" * 2000})
        wait_for("the silent fan dropped", lambda: subscribers(server) == 1)
        wait_for("its socket gone from the server", lambda: not server_socket_states(server, stuck))
        for _ in range(12):
            assert recv(fan)["op"] == "add"
        op = post(server, match_id, {"type": "comment", "text": "still live"})
        assert recv(fan) == op


def _vmrss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_a_flood_after_a_bad_frame_is_not_read(make_server, match_id: str) -> None:  # type: ignore[no-untyped-def]
    """A fan sends a frame the server fails it for, then 50 MiB: the server stops reading
    at once (its memory stays flat) and the other fans keep their pings and ops."""
    server = make_server(env={"TICKER_PING_INTERVAL": "1"})
    with server.admin() as admin:
        new_match(admin, match_id)
    assert server.proc is not None
    with contextlib.ExitStack() as stack, connect(f"{server.ws_url}/ws/matches/{match_id}") as fan:
        recv(fan)
        before = _vmrss_kib(server.proc.pid)
        bad = socket.create_connection(("127.0.0.1", server.port))
        stack.enter_context(closing(bad))
        bad.sendall(
            f"GET /ws/matches/{match_id} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        bad.settimeout(10)
        assert bad.recv(4096).startswith(b"HTTP/1.1 101")
        wait_for("the bad fan adopted", lambda: subscribers(server) == 2)
        bad.sendall(b"\x81\x05hello")  # unmasked: the server must fail the connection
        bad.settimeout(3)  # a send blocked this long means the server stopped reading
        chunk = struct.pack("!BBQ", 0x82, 0xFF, 1 << 40) + b"\x00" * (1 << 20)
        sent = 0
        try:
            while sent < 50 << 20:
                bad.sendall(chunk)
                sent += len(chunk)
        except OSError:  # timed out, reset or broken pipe: the server is not reading
            pass
        after = _vmrss_kib(server.proc.pid)
        assert after - before < 20 * 1024, f"RSS grew {after - before} KiB ({sent} bytes sent)"
        wait_for("the bad fan dropped", lambda: subscribers(server) == 1)
        wait_for("its socket gone from the server", lambda: not server_socket_states(server, bad))
        time.sleep(2.5)  # pings every second: a fan that missed one would be dropped
        op = post(server, match_id, {"type": "comment", "text": "still live"})
        assert recv(fan) == op
        assert fan.ping().wait(5)
