"""Redis misbehaving under a running server: data loss, rollback, read-only, poison entries.

Destructive cases run on a redis-server of their own (`own_redis`), so the session's
Redis that other tests share is never flushed, rolled back or made a replica.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import ADMIN_TOKEN, RedisServer, TickerServer, free_port, new_match
from ticker.engines.redis import RedisEngine
from ticker.log import MatchLog
from ticker.model import Op, validate_event_input, validate_match
from ticker.state import fold

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path / "redis")
    server.dir.mkdir()
    server.start()
    yield server
    server.kill()


def post(
    server: TickerServer, match_id: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/matches/{match_id}/events",
        json=body,
        headers={**AUTH, **headers},
        timeout=15,
    )


def all_ops(server: TickerServer, match_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{server.url}/api/matches/{match_id}/ops", timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json()["ops"])


def assert_state_follows_from_log(ops: list[dict[str, Any]]) -> None:
    """Every op's `state` is the fold of the live events before and at it."""
    events: dict[str, dict[str, Any]] = {}
    for op in ops:
        if op["op"] in ("add", "update"):
            events[op["event"]["id"]] = op["event"]
        elif op["op"] == "remove":
            events.pop(op["id"])
        if "state" in op:
            assert op["state"] == fold(events.values()), op


def recv_until(ws: ClientConnection, wanted: Any, deadline: float) -> dict[str, Any]:
    """The first message for which `wanted(msg)` holds, read before `deadline`."""
    while True:
        msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if wanted(msg):
            return dict(msg)


def test_a_thousand_matches_list(own_redis: RedisServer, make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(redis_url=own_redis.url)
    with server.admin() as admin:
        for i in range(1000):
            new_match(admin, f"many-{i:04d}")
    r = httpx.get(f"{server.url}/api/matches", timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["matches"]) == 1000
    assert httpx.get(f"{server.url}/", timeout=30).status_code == 200
    # A second server with an empty cache loads them all at once too.
    other = make_server(redis_url=own_redis.url)
    assert httpx.get(f"{other.url}/", timeout=30).status_code == 200


@pytest.mark.parametrize("ws", ["fast", "plain"])
def test_flushall_resets_fans_and_writes_follow_redis(  # type: ignore[no-untyped-def]
    own_redis: RedisServer, make_server, ws: str
) -> None:
    server = make_server(redis_url=own_redis.url, env={"TICKER_WS": ws})
    with server.admin() as admin:
        new_match(admin, "flushed")
    with connect(f"{server.ws_url}/ws/matches/flushed") as ws:
        assert json.loads(ws.recv(timeout=5))["op"] == "snapshot"
        for minute in (1, 2):
            op = post(server, "flushed", {"type": "comment", "minute": minute}).json()["op"]
            assert json.loads(ws.recv(timeout=5)) == op
        redis.Redis(port=own_redis.port).flushall()
        # The match is gone: its fans are told so (4404), within a quiet period or two.
        with pytest.raises(ConnectionClosed) as closed:
            recv_until(ws, lambda msg: False, time.monotonic() + 15)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    r = post(server, "flushed", {"type": "comment"})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "match_not_found"
    # Created again, it starts from what Redis has: one op, then the new ones.
    with server.admin() as admin:
        new_match(admin, "flushed")
    r = post(server, "flushed", {"type": "goal", "team": "home", "minute": 3})
    assert r.status_code == 201, r.text
    ops = all_ops(server, "flushed")
    assert [op["op"] for op in ops] == ["match", "add"]
    assert ops[1]["state"]["score"] == {"home": 1, "away": 0}
    assert_state_follows_from_log(ops)


def test_aof_rollback_resets_fans_and_next_write_builds_on_redis(  # type: ignore[no-untyped-def]
    own_redis: RedisServer, make_server
) -> None:
    server = make_server(redis_url=own_redis.url)
    with server.admin() as admin:
        new_match(admin, "rolled")
    with connect(f"{server.ws_url}/ws/matches/rolled") as ws:
        assert json.loads(ws.recv(timeout=5))["op"] == "snapshot"
        kept = [
            post(server, "rolled", {"type": "goal", "team": "home", "minute": m}).json()["op"]
            for m in (1, 2)
        ]
        aof = own_redis.dir / "appendonlydir"
        backup = own_redis.dir.parent / "aof-backup"
        shutil.copytree(aof, backup)
        for m in (3, 4):
            assert post(server, "rolled", {"type": "goal", "team": "away", "minute": m}).is_success
        own_redis.kill()
        shutil.rmtree(aof)
        shutil.copytree(backup, aof)
        own_redis.start()
        snap = recv_until(ws, lambda msg: msg.get("reset"), time.monotonic() + 20)
        assert snap["op"] == "snapshot" and snap["seq"] == kept[-1]["seq"]
        assert snap["events"] == [op["event"] for op in kept]
        assert snap["state"]["score"] == {"home": 2, "away": 0}
        r = post(server, "rolled", {"type": "goal", "team": "home", "minute": 5})
        assert r.status_code == 201, r.text
        new = r.json()["op"]
        assert json.loads(ws.recv(timeout=5)) == new
    ops = all_ops(server, "rolled")
    assert [op["seq"] for op in ops[1:]] == [kept[0]["seq"], kept[1]["seq"], new["seq"]]
    assert new["state"]["score"] == {"home": 3, "away": 0}
    assert_state_follows_from_log(ops)
    stored = redis.Redis(port=own_redis.port).xrange("ticker:{rolled}:log")
    assert [json.loads(fields[b"o"]) for _, fields in stored] == ops


def test_read_only_redis_is_unavailable(own_redis: RedisServer, make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(redis_url=own_redis.url)
    with server.admin() as admin:
        new_match(admin, "replica")
    client = redis.Redis(port=own_redis.port)
    client.replicaof("127.0.0.1", free_port())
    try:
        r = post(server, "replica", {"type": "comment"})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert "read-only" in r.json()["error"]["message"]
        assert httpx.get(f"{server.url}/healthz").status_code == 503
        # Reads still work from the replica.
        assert httpx.get(f"{server.url}/api/matches/replica").status_code == 200
    finally:
        client.replicaof("NO", "ONE")
    assert post(server, "replica", {"type": "comment"}).status_code == 201
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_poison_entry_is_skipped_counted_and_logged(  # type: ignore[no-untyped-def]
    own_redis: RedisServer, make_server, tmp_path: Path
) -> None:
    a = make_server(redis_url=own_redis.url)
    b = make_server(redis_url=own_redis.url)
    with a.admin() as admin:
        new_match(admin, "poisoned")
    client = redis.Redis(port=own_redis.port)
    with connect(f"{a.ws_url}/ws/matches/poisoned") as ws:
        assert json.loads(ws.recv(timeout=5))["op"] == "snapshot"
        bad = [
            client.xadd("ticker:{poisoned}:log", {"o": "notjson"}).decode(),
            client.xadd("ticker:{poisoned}:log", {"x": "1"}).decode(),
        ]
        via_b = post(b, "poisoned", {"type": "comment", "text": "after"})
        assert via_b.status_code == 201, via_b.text
        assert json.loads(ws.recv(timeout=10)) == via_b.json()["op"]
        via_a = post(a, "poisoned", {"type": "comment", "text": "again"})
        assert via_a.status_code == 201, via_a.text
        assert json.loads(ws.recv(timeout=10)) == via_a.json()["op"]
    for server in (a, b):
        health = httpx.get(f"{server.url}/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["reader"] == "ok" and health.json()["bad_entries"] == 2
        assert httpx.get(f"{server.url}/api/matches").status_code == 200
        assert [op["op"] for op in all_ops(server, "poisoned")] == ["match", "add", "add"]
    fresh = make_server(redis_url=own_redis.url)
    assert httpx.get(f"{fresh.url}/api/matches").status_code == 200
    # Once per entry, naming key and id. (The server's log lines carry no level name: the
    # `ticker` loggers print through logging's last-resort handler, WARNING and above.)
    text = (tmp_path / "server0.log").read_text()
    for entry_id in bad:
        lines = [line for line in text.splitlines() if entry_id in line]
        assert len(lines) == 1 and "skipping bad entry" in lines[0], lines
        assert "ticker:{poisoned}:log" in lines[0]


def test_healthz_hides_redis_address(own_redis: RedisServer, make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(redis_url=own_redis.url)
    own_redis.kill()
    r = httpx.get(f"{server.url}/healthz", timeout=15)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "unavailable"
    assert str(own_redis.port) not in r.text and "127.0.0.1" not in r.text


def test_repeated_delete_and_patch_answer_the_original_op(  # type: ignore[no-untyped-def]
    server: TickerServer, match_id: str
) -> None:
    with server.admin() as admin:
        new_match(admin, match_id)
        goal = post(server, match_id, {"type": "goal", "team": "home", "minute": 9}).json()["op"]
        url = f"/api/matches/{match_id}/events/{goal['seq']}"
        fix = admin.patch(url, json={"minute": 10}, headers={"Idempotency-Key": "fix-1"})
        assert fix.status_code == 200, fix.text
        gone = admin.delete(url, headers={"Idempotency-Key": "del-1"})
        assert gone.status_code == 200, gone.text
        # Both replies were lost: the reporter's console sends the same requests again.
        again = admin.delete(url, headers={"Idempotency-Key": "del-1"})
        assert again.status_code == 200, again.text
        assert again.json() == gone.json()
        again = admin.patch(url, json={"minute": 10}, headers={"Idempotency-Key": "fix-1"})
        assert again.status_code == 200, again.text
        assert again.json() == fix.json()
        # A new key on a retracted event is still a 404.
        assert admin.delete(url, headers={"Idempotency-Key": "del-2"}).status_code == 404
    assert len(all_ops(server, match_id)) == 4


def test_match_made_again_elsewhere_is_not_built_on_a_stale_copy(  # type: ignore[no-untyped-def]
    own_redis: RedisServer, make_server
) -> None:
    """Another process recreated the match after a FLUSHALL: the epoch tells the copies apart."""
    a = make_server(redis_url=own_redis.url)
    b = make_server(redis_url=own_redis.url)
    with a.admin() as admin:
        new_match(admin, "again")
    for minute in (1, 2):
        assert post(a, "again", {"type": "goal", "team": "home", "minute": minute}).is_success
    assert len(all_ops(b, "again")) == 3  # b holds a copy with two goals
    redis.Redis(port=own_redis.port).flushall()
    with a.admin() as admin:
        new_match(admin, "again")
    r = post(b, "again", {"type": "goal", "team": "away", "minute": 3})
    assert r.status_code == 201, r.text
    assert r.json()["op"]["state"]["score"] == {"home": 0, "away": 1}
    ops = all_ops(b, "again")
    assert [op["op"] for op in ops] == ["match", "add"] and ops == all_ops(a, "again")
    assert_state_follows_from_log(ops)


def test_reader_survives_an_unexpected_error(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An error in the reader (here from the handler it feeds) is logged with its
    traceback; the reader starts again and later ops still arrive."""
    if redis_server.proc is None:
        redis_server.start()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    fields = validate_event_input({"type": "comment"})
    got: list[Op] = []
    arrived = asyncio.Event()

    def on_ops(match_id: str, ops: list[Op]) -> None:
        got.extend(ops)
        arrived.set()
        if len(got) == 1:
            raise RuntimeError("boom in a handler")

    async def main() -> None:
        engine, other = RedisEngine(redis_server.url, prefix), RedisEngine(redis_server.url, prefix)
        await engine.start(on_ops)
        await other.start(lambda match_id, ops: None)
        try:
            match = validate_match({"id": "m", "home": {"name": "A"}, "away": {"name": "B"}})
            await engine.create_match(MatchLog("m").build_match(match))
            await engine.watch("m")
            for _ in range(2):
                await other.append("m", lambda mlog: mlog.build_add(fields, "jens"))
                async with asyncio.timeout(10):
                    await arrived.wait()
                arrived.clear()
            assert (await engine.ping())["reader"] == "ok"
        finally:
            await engine.close()
            await other.close()

    with caplog.at_level(logging.WARNING, logger="ticker.engine"):
        asyncio.run(main())
    assert len(got) == 2
    crashes = [r for r in caplog.records if "redis reader failed" in r.getMessage()]
    assert len(crashes) == 1 and crashes[0].exc_info is not None


def test_stream_of_the_same_length_with_other_entries_is_reloaded(  # type: ignore[no-untyped-def]
    own_redis: RedisServer, make_server
) -> None:
    """Redis restored from another backup: same epoch, same length, other entries below
    our head. The last id tells the copies apart; a read answers what Redis holds."""
    server = make_server(redis_url=own_redis.url)
    with server.admin() as admin:
        new_match(admin, "other-backup")
    for text in ("lost-1", "lost-2"):
        assert post(server, "other-backup", {"type": "comment", "text": text}).is_success
    assert len(all_ops(server, "other-backup")) == 3  # the server holds a copy
    client = redis.Redis(port=own_redis.port)
    key = "ticker:{other-backup}:log"
    first = Op.from_json(client.xrange(key)[0][1][b"o"])
    mlog = MatchLog("other-backup")
    mlog.apply(first)
    for text in ("kept-1", "kept-2"):
        fields = validate_event_input({"type": "comment", "text": text})
        mlog.apply(mlog.build_add(fields, "jens", now=first.key[0] / 1000))
    client.delete(key)
    for op in mlog.ops:
        client.xadd(key, {"o": op.json}, id=op.seq)
    ops = all_ops(server, "other-backup")
    assert ops == [op.data for op in mlog.ops]
    r = post(server, "other-backup", {"type": "comment", "text": "new"})
    assert r.status_code == 201, r.text
    assert [op["event"]["text"] for op in all_ops(server, "other-backup")[1:]] == [
        "kept-1", "kept-2", "new",
    ]  # fmt: skip
