"""WebSocket and SSE streams over real sockets: snapshot, exact resume, the race, slow fans."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import RedisServer, TickerServer, new_match


@pytest.fixture(params=["embedded-fast", "redis-fast", "redis-plain"])
def stream_server(
    request: pytest.FixtureRequest, make_server, redis_server: RedisServer
) -> TickerServer:  # type: ignore[no-untyped-def]
    """A server per engine, and per WebSocket path (raw frames, or plain ASGI sends)."""
    engine, ws = request.param.split("-")
    env = {"TICKER_WS": ws}
    if engine == "redis":
        if redis_server.proc is None:
            redis_server.start()
        return make_server(redis_url=redis_server.url, env=env)  # type: ignore[no-any-return]
    return make_server(env=env)  # type: ignore[no-any-return]


def recv(ws: ClientConnection, timeout: float = 10) -> dict:
    return dict(json.loads(ws.recv(timeout=timeout)))


def post(server: TickerServer, match_id: str, body: dict, **headers: str) -> dict:
    with server.admin() as admin:
        r = admin.post(f"/api/matches/{match_id}/events", json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    return dict(r.json()["op"])


def all_ops(server: TickerServer, match_id: str) -> list[dict]:
    return list(httpx.get(f"{server.url}/api/matches/{match_id}/ops").json()["ops"])


def test_snapshot_then_live_ops(stream_server: TickerServer, match_id: str) -> None:
    with stream_server.admin() as admin:
        new_match(admin, match_id)
    kickoff = post(stream_server, match_id, {"type": "kickoff"})
    with connect(f"{stream_server.ws_url}/ws/matches/{match_id}") as ws:
        snap = recv(ws)
        assert snap["op"] == "snapshot" and snap["seq"] == kickoff["seq"]
        assert snap["match"]["home"]["name"] == "FC København"
        assert [e["id"] for e in snap["events"]] == [kickoff["seq"]]
        assert snap["state"]["phase"] == "first_half" and "reset" not in snap
        goal = post(stream_server, match_id, {"type": "goal", "team": "home", "minute": 9})
        assert recv(ws) == goal
        with stream_server.admin() as admin:
            eid = goal["event"]["id"]
            upd = admin.patch(f"/api/matches/{match_id}/events/{eid}", json={"minute": 10})
            rem = admin.delete(f"/api/matches/{match_id}/events/{eid}")
            meta = admin.patch(f"/api/matches/{match_id}", json={"status": "live"})
        assert recv(ws) == upd.json()["op"]
        assert recv(ws) == rem.json()["op"]
        m = recv(ws)
        assert m["op"] == "match" and m["match"]["status"] == "live" == meta.json()["status"]
        assert m["seq"] > rem.json()["op"]["seq"]


def test_resume_is_exact(stream_server: TickerServer, match_id: str) -> None:
    with stream_server.admin() as admin:
        new_match(admin, match_id)
    ops = [post(stream_server, match_id, {"type": "comment", "text": str(i)}) for i in range(6)]
    since = ops[2]["seq"]
    with connect(f"{stream_server.ws_url}/ws/matches/{match_id}?since={since}") as ws:
        got = [recv(ws) for _ in range(3)]
        assert got == ops[3:]
        live = post(stream_server, match_id, {"type": "comment", "text": "live"})
        assert recv(ws) == live
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)
    head = live["seq"]
    url = f"{stream_server.ws_url}/ws/matches/{match_id}?since={head}"
    with connect(url) as ws, pytest.raises(TimeoutError):
        ws.recv(timeout=0.3)
    for unknown in ("1-0", "99999999999999-0", "garbage"):
        with connect(f"{stream_server.ws_url}/ws/matches/{match_id}?since={unknown}") as ws:
            snap = recv(ws)
            assert snap["op"] == "snapshot" and snap["reset"] is True and snap["seq"] == head
            assert len(snap["events"]) == 7


def test_unknown_match_closes_4404(stream_server: TickerServer) -> None:
    for path in ("no-such-match", "BAD_ID"):
        with connect(f"{stream_server.ws_url}/ws/matches/{path}") as ws:
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 4404


def sse_messages(lines: Iterator[str]) -> Iterator[dict]:
    record: dict = {}
    for line in lines:
        if not line:
            if "data" in record:
                yield record
            record = {}
        elif not line.startswith((":", "retry:")):
            key, _, value = line.partition(": ")
            record[key] = value


def test_sse_snapshot_and_resume(stream_server: TickerServer, match_id: str) -> None:
    with stream_server.admin() as admin:
        new_match(admin, match_id)
    ops = [post(stream_server, match_id, {"type": "comment", "text": str(i)}) for i in range(3)]
    url = f"{stream_server.url}/sse/matches/{match_id}"
    with httpx.stream("GET", url, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        messages = sse_messages(r.iter_lines())
        first = next(messages)
        assert first["event"] == "snapshot" and first["id"] == ops[-1]["seq"]
        assert json.loads(first["data"])["seq"] == ops[-1]["seq"]
        live = post(stream_server, match_id, {"type": "comment", "text": "live"})
        nxt = next(messages)
        assert nxt["id"] == live["seq"] and nxt["event"] == "add"
        assert json.loads(nxt["data"]) == live
    for headers, params in (({"Last-Event-ID": ops[0]["seq"]}, {}), ({}, {"since": ops[0]["seq"]})):
        with httpx.stream("GET", url, headers=headers, params=params, timeout=10) as r:
            messages = sse_messages(r.iter_lines())
            got = [json.loads(next(messages)["data"]) for _ in range(3)]
            assert got == [*ops[1:], live]
    r = httpx.get(f"{stream_server.url}/sse/matches/nope-nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "match_not_found"


def test_resume_race_no_gap_no_duplicate(stream_server: TickerServer, match_id: str) -> None:
    """Fans join with `since` while ops are being appended: each sees every later op once."""
    with stream_server.admin() as admin:
        new_match(admin, match_id)
    seeds = [post(stream_server, match_id, {"type": "comment", "text": f"s{i}"}) for i in range(5)]
    total = 60
    done = threading.Event()

    def publish() -> None:
        with stream_server.admin() as admin:
            for i in range(total):
                admin.post(
                    f"/api/matches/{match_id}/events", json={"type": "comment", "text": str(i)}
                )
        done.set()

    received: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def fan(n: int) -> None:
        since = seeds[n % len(seeds)]["seq"]
        try:
            with connect(f"{stream_server.ws_url}/ws/matches/{match_id}?since={since}") as ws:
                seqs: list[str] = []
                while True:
                    msg = recv(ws)
                    seqs.append(msg["seq"])
                    if msg.get("event", {}).get("text") == str(total - 1):
                        break
                received[n] = seqs
        except BaseException as exc:  # reported below
            errors.append(exc)

    publisher = threading.Thread(target=publish)
    publisher.start()
    fans = []
    for n in range(20):
        t = threading.Thread(target=fan, args=(n,))
        t.start()
        fans.append(t)
        time.sleep(0.01)
    publisher.join(60)
    for t in fans:
        t.join(60)
    assert done.is_set() and not errors, errors
    log = [op["seq"] for op in all_ops(stream_server, match_id)]
    for n, seqs in received.items():
        since = seeds[n % len(seeds)]["seq"]
        assert seqs == log[log.index(since) + 1 :], f"fan {n} got a gap or a duplicate"
    assert len(received) == 20


def test_fan_messages_are_ignored_safely(stream_server: TickerServer, match_id: str) -> None:
    with stream_server.admin() as admin:
        new_match(admin, match_id)
    with connect(f"{stream_server.ws_url}/ws/matches/{match_id}", max_size=None) as ws:
        assert recv(ws)["op"] == "snapshot"
        ws.send("hello")
        ws.send(b"\x00\x01binary")
        ws.send("{}" * 20000)
        assert ws.ping().wait(5), "the server answers pings"
        op = post(stream_server, match_id, {"type": "comment", "text": "still here"})
        assert recv(ws) == op
    assert httpx.get(stream_server.url + "/healthz").status_code == 200


def _raw_ws(port: int, path: str) -> socket.socket:
    """A WebSocket that never reads after the handshake: the slowest possible fan."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock


def test_slow_fan_is_closed_with_4408(
    make_server, redis_server: RedisServer, match_id: str
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(env={"TICKER_CLIENT_BUFFER": "65536", "TICKER_FSYNC": "false"})
    with server.admin() as admin:
        new_match(admin, match_id)
    slow = _raw_ws(server.port, f"/ws/matches/{match_id}")
    with connect(f"{server.ws_url}/ws/matches/{match_id}") as fast:
        recv(fast)
        text = "x" * 2000
        with server.admin() as admin:
            for i in range(1500):
                admin.post(
                    f"/api/matches/{match_id}/events", json={"type": "comment", "text": text}
                )
                if i % 100 == 0 and httpx.get(server.url + "/healthz").json()["subscribers"] < 2:
                    break
        health = httpx.get(server.url + "/healthz").json()
        assert health["subscribers"] == 1, "the slow fan should have been dropped"
        # The fast fan kept up and is still live.
        for _ in range(3):
            assert recv(fast)["op"] == "add"
    # The slow fan finds a 4408 close frame at the end of what it was sent.
    slow.settimeout(10)
    data = b""
    while True:
        chunk = slow.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    assert b"\x88" in data[-200:] and (4408).to_bytes(2, "big") in data[-200:]
    slow.close()


def test_shutdown_closes_fans_with_1012(stream_server: TickerServer, match_id: str) -> None:
    with stream_server.admin() as admin:
        new_match(admin, match_id)
    with connect(f"{stream_server.ws_url}/ws/matches/{match_id}") as ws:
        recv(ws)
        stream_server.stop()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1012


def test_keepalive_drops_a_silent_fan(make_server, match_id: str) -> None:  # type: ignore[no-untyped-def]
    server = make_server(env={"TICKER_PING_INTERVAL": "0.3"})
    with server.admin() as admin:
        new_match(admin, match_id)
    silent = _raw_ws(server.port, f"/ws/matches/{match_id}")  # never answers a ping
    with connect(f"{server.ws_url}/ws/matches/{match_id}") as alive:  # answers them
        recv(alive)
        deadline = time.monotonic() + 10
        while httpx.get(server.url + "/healthz").json()["subscribers"] > 1:
            assert time.monotonic() < deadline, "the silent fan was never dropped"
            time.sleep(0.1)
        time.sleep(1)  # several more ping rounds: the live fan stays
        op = post(server, match_id, {"type": "comment", "text": "still live"})
        assert recv(alive) == op
    silent.close()


@pytest.mark.parametrize(
    "head",
    [
        b"GET /ws/matches/x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",
        b"GET /ws/matches/x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    ],
)
def test_bad_handshakes_get_400(make_server, head: bytes) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(4096).startswith(b"HTTP/1.1 4")
    assert httpx.get(server.url + "/healthz").status_code == 200


def _xrange_calls(redis_server: RedisServer) -> int:
    import redis

    stats = redis.Redis.from_url(redis_server.url).info("commandstats")
    return int(stats.get("cmdstat_xrange", {}).get("calls", 0))


def test_reconnect_storm_reads_history_once(  # type: ignore[no-untyped-def]
    make_server, redis_server: RedisServer, match_id: str
) -> None:
    """After a deploy every fan comes back at once: one log read per process, not per fan."""
    if redis_server.proc is None:
        redis_server.start()
    first = make_server(redis_url=redis_server.url)
    with first.admin() as admin:
        new_match(admin, match_id)
    ops = [post(first, match_id, {"type": "comment", "text": str(i)}) for i in range(20)]
    fresh = make_server(redis_url=redis_server.url)  # a new process: nothing cached yet
    before = _xrange_calls(redis_server)
    barrier = threading.Barrier(50)
    got: list[list[str]] = []

    def fan(n: int) -> None:
        since = ops[n % 10]["seq"]
        barrier.wait()
        with connect(f"{fresh.ws_url}/ws/matches/{match_id}?since={since}") as ws:
            got.append([recv(ws)["seq"] for _ in range(19 - n % 10)])

    threads = [threading.Thread(target=fan, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 50
    assert _xrange_calls(redis_server) - before <= 2


def _read_frame(sock: socket.socket, got: bytes) -> tuple[int, bytes, bytes]:
    """(opcode, payload, the bytes after it) of the first unmasked frame in `got` + reads."""
    while True:
        if len(got) >= 10:
            size, at = got[1] & 0x7F, 2
            if size == 126:
                size, at = int.from_bytes(got[2:4], "big"), 4
            elif size == 127:
                size, at = int.from_bytes(got[2:10], "big"), 10
            if len(got) >= at + size:
                return got[0] & 0x0F, got[at : at + size], got[at + size :]
        chunk = sock.recv(65536)
        assert chunk, "closed before a whole frame"
        got += chunk


@pytest.mark.parametrize("pieces", [1, 3], ids=["whole", "in-pieces"])
def test_a_fan_connects_whether_its_head_comes_whole_or_in_pieces(  # type: ignore[no-untyped-def]
    make_server, match_id: str, pieces: int
) -> None:
    """A whole head goes from the first protocol straight to fastws; one in pieces through
    the HTTP protocol, which hands it over parsed. Either way: the 101, then the snapshot."""
    server = make_server()
    with server.admin() as admin:
        new_match(admin, match_id)
    head = (
        f"GET /ws/matches/{match_id} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        step = -(-len(head) // pieces)
        for at in range(0, len(head), step):
            sock.sendall(head[at : at + step])
            time.sleep(0.1)  # separate reads on the server
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
        response, _, rest = got.partition(b"\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 101 "), response
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in response  # RFC 6455's example key
        opcode, payload, _ = _read_frame(sock, rest)
        assert opcode == 1
        assert json.loads(payload)["op"] == "snapshot"
