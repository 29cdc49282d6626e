"""Viewer counts (opt-in `?viewers=1`) across server processes on one Redis, and reporters'
presence on a match: real servers, real sockets, a real `kill -9`."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import RedisServer, TickerServer, new_match

FAST = {"TICKER_VIEWERS_INTERVAL": "1"}  # counts every second: the test waits less


class Fan(threading.Thread):
    """A WebSocket or SSE fan in a thread: every message it gets, in order.

    SSE speaks HTTP/1.0 over a plain socket, so the body is the bare event stream.
    """

    def __init__(self, server: TickerServer, match_id: str, kind: str, query: str = "") -> None:
        super().__init__(daemon=True)
        self.url = f"/{kind}/matches/{match_id}" + (f"?{query}" if query else "")
        self.server, self.kind = server, kind
        self.messages: list[dict[str, Any]] = []  # SSE: {"event", "id", "data"} per record
        self.ready = threading.Event()
        self._sock: socket.socket | None = None
        self._ws: Any = None
        self.start()
        assert self.ready.wait(10), f"{self.url} never opened"

    def run(self) -> None:
        try:
            if self.kind == "ws":
                with connect(self.server.ws_url + self.url) as ws:
                    self._ws = ws
                    self.ready.set()
                    for text in ws:
                        self.messages.append(json.loads(text))
            else:
                self._sse()
        except (ConnectionClosed, OSError):
            pass

    def _sse(self) -> None:
        sock = self._sock = socket.create_connection(("127.0.0.1", self.server.port))
        sock.sendall(f"GET {self.url} HTTP/1.0\r\nHost: test\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, buf = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head
        self.ready.set()
        while True:
            while b"\n\n" in buf:
                record, buf = buf.split(b"\n\n", 1)
                fields: dict[str, Any] = {}
                for line in record.decode().split("\n"):
                    name, _, value = line.partition(": ")
                    if name in ("id", "event", "data"):
                        fields[name] = value
                if "data" in fields:
                    fields["msg"] = json.loads(fields["data"])
                    self.messages.append(fields)
            chunk = sock.recv(65536)
            if not chunk:
                return
            buf += chunk

    def ops(self) -> list[dict[str, Any]]:
        return [m["msg"] if self.kind == "sse" else m for m in list(self.messages)]

    def counts(self) -> list[int]:
        return [m["count"] for m in self.ops() if m.get("op") == "viewers"]

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
        if self._sock is not None:
            self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        self.join(5)


def wait_for(what: str, check: Callable[[], bool], deadline: float) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {deadline} s: {what}")


def api_counts(server: TickerServer, match_id: str) -> tuple[int, int]:
    one = httpx.get(f"{server.url}/api/matches/{match_id}").json()["viewers"]
    listed = httpx.get(f"{server.url}/api/matches").json()["matches"]
    return one, next(m["viewers"] for m in listed if m["match"]["id"] == match_id)


def test_counts_converge_across_processes_and_drop_a_killed_one(
    make_server, redis_server: RedisServer, match_id: str
) -> None:  # type: ignore[no-untyped-def]
    if redis_server.proc is None:
        redis_server.start()
    a = make_server(redis_url=redis_server.url, env=FAST)
    b = make_server(redis_url=redis_server.url, env={**FAST, "TICKER_WS": "plain"})
    with a.admin() as admin:
        new_match(admin, match_id)
    fans = [
        *(Fan(a, match_id, "ws") for _ in range(3)),
        Fan(a, match_id, "sse"),
        counted_a := Fan(a, match_id, "ws", "viewers=1"),
        counted_a_sse := Fan(a, match_id, "sse", "viewers=1"),
        *(Fan(b, match_id, "ws") for _ in range(2)),
        Fan(b, match_id, "sse"),
        counted_b := Fan(b, match_id, "ws", "viewers=1"),
        counted_b_sse := Fan(b, match_id, "sse", "viewers=1"),
    ]
    counted = [counted_a, counted_a_sse, counted_b, counted_b_sse]
    on_a = [f for f in fans if f.server is a]
    try:
        total = len(fans)
        wait_for(
            f"every opted-in fan's latest count is {total}",
            lambda: all(f.counts()[-1:] == [total] for f in counted),
            15,
        )
        both = lambda: {*api_counts(a, match_id), *api_counts(b, match_id)}  # noqa: E731
        wait_for(f"both APIs say {total}", lambda: both() == {total}, 15)
        for f in counted:
            assert f.ops()[0]["op"] == "snapshot" and f.ops()[1]["op"] == "viewers"
        for f in counted_a_sse, counted_b_sse:
            records = [m for m in f.messages if m["event"] == "viewers"]
            assert records and all("id" not in m for m in records)
        uncounted = [f for f in fans if f not in counted]
        assert all(f.ops() and not f.counts() for f in uncounted)  # none without viewers=1

        b.kill()  # kill -9: no goodbye, its key must expire
        killed_at = time.monotonic()
        alive = len(on_a)
        wait_for(
            f"A's opted-in fans see {alive} after B's kill -9",
            lambda: all(f.counts()[-1:] == [alive] for f in (counted_a, counted_a_sse)),
            15 - (time.monotonic() - killed_at),
        )
        assert api_counts(a, match_id) == (alive, alive)
    finally:
        for f in fans:
            f.close()


@pytest.mark.parametrize("ws", ["fast", "plain"])
def test_viewers_messages_move_no_cursor(make_server, match_id: str, ws: str) -> None:  # type: ignore[no-untyped-def]
    server = make_server(env={**FAST, "TICKER_WS": ws})
    with server.admin() as admin:
        new_match(admin, match_id)
        post = lambda text: admin.post(  # noqa: E731
            f"/api/matches/{match_id}/events", json={"type": "comment", "text": text}
        ).json()["op"]
        first = [post(str(i)) for i in range(3)]
        fan = Fan(server, match_id, "ws", "viewers=1")
        sse = Fan(server, match_id, "sse", "viewers=1")
        wait_for("the first counts", lambda: fan.counts() == [1, 2] and sse.counts() == [2], 10)
        others = [Fan(server, match_id, "ws") for _ in range(3)]  # the count changes
        wait_for("a changed count", lambda: fan.counts()[-1:] == [5] == sse.counts()[-1:], 10)
        later = [post(f"later {i}") for i in range(2)]
        wait_for(
            "the later ops",
            lambda: (
                fan.ops()[-1:] == later[-1:]
                and [m for m in sse.ops() if m["op"] != "viewers"][-1:] == later[-1:]
            ),
            10,
        )
        # The client's cursor is the last seq it got: viewers messages have none.
        seqs = [m["seq"] for m in fan.ops() if "seq" in m]
        assert all("seq" not in m for m in fan.ops() if m["op"] == "viewers")
        assert seqs[-1] == later[-1]["seq"]
        ids = [m["id"] for m in sse.messages if "id" in m]
        assert ids[-1] == later[-1]["seq"] and ids[0] == first[-1]["seq"]
        resumed = Fan(server, match_id, "ws", f"since={first[-1]['seq']}&viewers=1")
        wait_for("the resume", lambda: len(resumed.ops()) >= 3, 10)
        assert resumed.ops()[:2] == later  # exactly the ops after the cursor, then a count
        assert resumed.ops()[2] == {"op": "viewers", "count": 6}
        plain = Fan(server, match_id, "sse", f"since={later[0]['seq']}")
        wait_for("the SSE resume", lambda: len(plain.ops()) >= 1, 10)
        time.sleep(2.5)  # two ticks of a changing count: still nothing for it
        assert plain.ops() == later[1:]
        for f in [fan, sse, resumed, plain, *others]:
            f.close()


def _reporter(server: TickerServer, name: str) -> httpx.Client:
    with server.admin() as admin:
        token = admin.post("/api/reporters", json={"name": name}).json()["token"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def test_reporters_presence_across_processes(
    make_server, redis_server: RedisServer, match_id: str
) -> None:  # type: ignore[no-untyped-def]
    if redis_server.proc is None:
        redis_server.start()
    # One write a minute: heartbeats must not use it up.
    env = {"TICKER_WRITE_RATE": "0.016", "TICKER_WRITE_BURST": "1"}
    a = make_server(redis_url=redis_server.url, env=env)
    b = make_server(redis_url=redis_server.url, env=env)
    with a.admin() as admin:
        new_match(admin, match_id)
    suffix = match_id[-12:].replace("-", "")
    jens, mette = f"jens{suffix}", f"mette{suffix}"
    with _reporter(a, jens) as on_a, _reporter(b, mette) as on_b:
        path = f"/api/matches/{match_id}/presence"
        for _ in range(5):
            r = on_a.put(path, json={"typing": "goal"})
            assert r.status_code == 200, r.text
        r = on_b.put(path, json={"typing": None})
        assert r.status_code == 200 and r.json()["you"] == mette
        assert r.json()["reporters"] == [
            {"name": jens, "typing": "goal"},
            {"name": mette, "typing": None},
        ]
        assert on_a.get(path).json()["reporters"] == r.json()["reporters"]
        bad = on_a.put(path, json={"typing": "dance"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "typing"
        assert on_a.put(f"/api/matches/{match_id}x/presence", json={}).status_code == 404
        assert httpx.get(a.url + path).status_code == 401
        assert on_b.delete(path).status_code == 204
        assert on_a.get(path).json()["reporters"] == [{"name": jens, "typing": "goal"}]


def test_reporters_presence_embedded_and_expiry(make_server, match_id: str) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    with server.admin() as admin:
        new_match(admin, match_id)
    path = f"/api/matches/{match_id}/presence"
    with _reporter(server, "ane") as ane, _reporter(server, "bo") as bo:
        assert ane.put(path, json={"typing": "corner"}).status_code == 200
        r = bo.put(path, json={"typing": "save"})
        assert r.json()["reporters"] == [
            {"name": "ane", "typing": "corner"},
            {"name": "bo", "typing": "save"},
        ]

        # Ane's console stops beating (closed without a goodbye): gone within 15 s, while
        # Bo's goes on (one beat a second here; the console's is every 5 s).
        def only_bo() -> bool:
            time.sleep(0.9)
            reply = bo.put(path, json={"typing": "save"}).json()["reporters"]
            return bool(reply == [{"name": "bo", "typing": "save"}])

        wait_for("ane gone", only_bo, 17)
