"""Crashes and outages: kill -9 of Redis and of the server, two processes on one Redis."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import ADMIN_TOKEN, RedisServer, new_match

pytestmark = pytest.mark.slow


def post_until_acknowledged(url: str, body: dict, key: str, deadline: float) -> dict:
    """What a reporter's console does: retry the same Idempotency-Key until it lands."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Idempotency-Key": key}
    delay = 0.05
    while time.monotonic() < deadline:
        try:
            r = httpx.post(url, json=body, headers=headers, timeout=3)
            if r.status_code in (200, 201):
                return dict(r.json()["op"])
            assert r.status_code == 503, r.text  # anything else is a bug, not an outage
            assert r.json()["error"]["code"] == "unavailable"
        except httpx.TransportError:
            pass  # the server itself is down: same retry
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise TimeoutError(f"{key} never acknowledged")


def all_ops(base_url: str, match_id: str) -> list[dict]:
    """The whole log, page by page."""
    ops: list[dict] = []
    params: dict[str, str] = {}
    while True:
        page = httpx.get(f"{base_url}/api/matches/{match_id}/ops", params=params).json()
        ops += page["ops"]
        if not page.get("more"):
            return ops
        params = {"since": page["seq"]}


def test_two_processes_share_one_redis(make_server, redis_url: str, match_id: str) -> None:  # type: ignore[no-untyped-def]
    a = make_server(redis_url=redis_url)
    b = make_server(redis_url=redis_url)
    with a.admin() as admin:
        new_match(admin, match_id)
    with (
        connect(f"{a.ws_url}/ws/matches/{match_id}") as on_a,
        connect(f"{b.ws_url}/ws/matches/{match_id}") as on_b,
    ):
        assert json.loads(on_a.recv(timeout=5))["op"] == "snapshot"
        assert json.loads(on_b.recv(timeout=5))["op"] == "snapshot"
        with a.admin() as admin:
            via_a = admin.post(
                f"/api/matches/{match_id}/events",
                json={"type": "goal", "team": "home", "minute": 5},
            ).json()["op"]
        with b.admin() as admin:
            via_b = admin.post(
                f"/api/matches/{match_id}/events",
                json={"type": "goal", "team": "away", "minute": 7},
            ).json()["op"]
        for ws in (on_a, on_b):
            assert json.loads(ws.recv(timeout=5)) == via_a
            assert json.loads(ws.recv(timeout=5)) == via_b
        assert via_b["state"]["score"] == {"home": 1, "away": 1}
    # A fan that moves from one process to the other resumes exactly.
    with connect(f"{b.ws_url}/ws/matches/{match_id}?since={via_a['seq']}") as moved:
        assert json.loads(moved.recv(timeout=5)) == via_b


def test_redis_kill_9_loses_nothing_and_duplicates_nothing(
    make_server,
    redis_server: RedisServer,
    match_id: str,  # type: ignore[no-untyped-def]
) -> None:
    if redis_server.proc is None:
        redis_server.start()
    server = make_server(redis_url=redis_server.url)
    with server.admin() as admin:
        new_match(admin, match_id)
    url = f"{server.url}/api/matches/{match_id}/events"
    fan_seqs: list[str] = []
    fan_done = threading.Event()

    def fan() -> None:
        # A fan connected through the whole outage: stays connected, misses nothing.
        with connect(f"{server.ws_url}/ws/matches/{match_id}") as ws:
            json.loads(ws.recv(timeout=5))
            while len(fan_seqs) < total:
                fan_seqs.append(json.loads(ws.recv(timeout=30))["seq"])
        fan_done.set()

    total = 120
    watcher = threading.Thread(target=fan)
    watcher.start()
    time.sleep(0.3)
    acked: dict[str, dict] = {}
    outage: list[int] = []
    deadline = time.monotonic() + 60
    for i in range(total):
        if i == 40:
            redis_server.kill()
            # While Redis is down: healthz and writes say 503, with the one error shape.
            assert httpx.get(server.url + "/healthz").status_code == 503
            r = httpx.post(
                url,
                json={"type": "comment"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                timeout=10,
            )
            outage.append(r.status_code)
            assert r.json()["error"]["code"] == "unavailable"
            threading.Timer(1.0, redis_server.start).start()
        key = f"evt-{i}-{uuid.uuid4().hex[:6]}"
        acked[key] = post_until_acknowledged(url, {"type": "comment", "text": key}, key, deadline)
    watcher.join(40)
    assert outage == [503]
    log = all_ops(server.url, match_id)
    texts = [op["event"]["text"] for op in log if op["op"] == "add"]
    assert sorted(texts) == sorted(acked), "every acknowledged event is in the log, once"
    assert len(texts) == len(set(texts)) == total
    assert {op["seq"] for op in acked.values()} == {op["seq"] for op in log if op["op"] == "add"}
    assert fan_done.is_set() and fan_seqs == [op["seq"] for op in log[1:]]
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_embedded_server_kill_9_keeps_acknowledged_events(
    make_server, match_id: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(data_dir=tmp_path / "kill9")
    with server.admin() as admin:
        new_match(admin, match_id)
    url = f"{server.url}/api/matches/{match_id}/events"
    acked: dict[str, str] = {}
    stop = threading.Event()

    def reporter() -> None:
        i = 0
        with httpx.Client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            while not stop.is_set():
                key = f"k{i}"
                try:
                    r = client.post(
                        url,
                        json={"type": "comment", "text": key},
                        headers={"Idempotency-Key": key},
                        timeout=2,
                    )
                except httpx.TransportError:
                    return
                if r.status_code == 201:
                    acked[key] = r.json()["op"]["seq"]
                i += 1

    t = threading.Thread(target=reporter)
    t.start()
    time.sleep(1.5)
    server.kill()
    stop.set()
    t.join(10)
    assert len(acked) > 10
    server.start()
    log = all_ops(server.url, match_id)
    stored = {op["event"]["text"]: op["seq"] for op in log if op["op"] == "add"}
    for key, seq in acked.items():
        assert stored.get(key) == seq, f"acknowledged {key} lost after kill -9"
    # A retry of the request that was in flight when the server died lands exactly once.
    retry_key = f"k{len(acked)}"
    op = post_until_acknowledged(
        url, {"type": "comment", "text": retry_key}, retry_key, time.monotonic() + 10
    )
    again = post_until_acknowledged(
        url, {"type": "comment", "text": retry_key}, retry_key, time.monotonic() + 10
    )
    assert op == again
    texts = [o["event"]["text"] for o in all_ops(server.url, match_id) if o["op"] == "add"]
    assert len(texts) == len(set(texts))
