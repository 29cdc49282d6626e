"""Redis Sentinel: settings, writes confirmed by replicas (WAIT), and a real failover.

The failover tests start a master, a replica and three sentinels (real `redis-server`
processes on free ports) and a `ticker serve` that knows only the sentinels.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import TickerServer, free_port, new_match, wait_port
from tests.test_resilience import all_ops, post_until_acknowledged
from ticker import logs
from ticker import settings as settings_mod
from ticker.settings import SettingsError

SENTINEL_ENV = {
    "TICKER_REDIS_SENTINELS": "127.0.0.2:26379,sentinel-2:26380,[::1]:26381",
    "TICKER_REDIS_MASTER": "ticker",
}


# Settings


def test_sentinel_settings() -> None:
    s = settings_mod.load(SENTINEL_ENV)
    assert s.engine_name == "redis" and s.redis_url == ""
    assert s.sentinel_addresses == [("127.0.0.2", 26379), ("sentinel-2", 26380), ("::1", 26381)]
    assert (s.redis_master, s.redis_min_replicas, s.redis_wait_ms) == ("ticker", 1, 1000)


def test_min_replicas_defaults_to_none_without_sentinel() -> None:
    assert settings_mod.load({"TICKER_REDIS_URL": "redis://r:6379/0"}).redis_min_replicas == 0
    assert settings_mod.load({}).redis_min_replicas == 0
    env = {**SENTINEL_ENV, "TICKER_REDIS_MIN_REPLICAS": "0", "TICKER_REDIS_WAIT_MS": "250"}
    s = settings_mod.load(env)
    assert (s.redis_min_replicas, s.redis_wait_ms) == (0, 250)
    url = {"TICKER_REDIS_URL": "redis://r:6379/0", "TICKER_REDIS_MIN_REPLICAS": "2"}
    assert settings_mod.load(url).redis_min_replicas == 2


def test_url_and_sentinels_together_are_refused() -> None:
    env = {**SENTINEL_ENV, "TICKER_REDIS_URL": "redis://r:6379/0"}
    with pytest.raises(SettingsError, match="TICKER_REDIS_URL and TICKER_REDIS_SENTINELS"):
        settings_mod.load(env)
    with pytest.raises(SettingsError, match="TICKER_REDIS_URL and TICKER_REDIS_SENTINELS"):
        settings_mod.load(SENTINEL_ENV, redis_url="redis://r:6379/0")  # the --redis-url flag


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TICKER_REDIS_SENTINELS": "s1:26379"}, "TICKER_REDIS_MASTER"),
        ({"TICKER_REDIS_MASTER": "ticker"}, "TICKER_REDIS_SENTINELS"),
        ({**SENTINEL_ENV, "TICKER_REDIS_SENTINELS": "s1"}, "host:port"),
        ({**SENTINEL_ENV, "TICKER_REDIS_SENTINELS": "s1:x"}, "host:port"),
        ({**SENTINEL_ENV, "TICKER_REDIS_SENTINELS": ":26379"}, "host:port"),
        ({**SENTINEL_ENV, "TICKER_REDIS_MIN_REPLICAS": "-1"}, "TICKER_REDIS_MIN_REPLICAS"),
        ({**SENTINEL_ENV, "TICKER_REDIS_WAIT_MS": "0"}, "TICKER_REDIS_WAIT_MS"),
    ],
)
def test_bad_sentinel_settings_are_one_clear_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        settings_mod.load(env)
    assert "\n" not in str(info.value)


def test_the_startup_line_names_the_sentinels() -> None:
    line = logs.describe(settings_mod.load(SENTINEL_ENV))
    assert line.startswith(
        "engine=redis sentinels=127.0.0.2:26379,sentinel-2:26380,[::1]:26381 master=ticker "
        "min_replicas=1 prefix=ticker "
    )


# Real processes: a master, a replica, three sentinels


@dataclass
class RedisProc:
    """One redis-server (or sentinel) process of the test's own, on a free port."""

    dir: Path
    args: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not on PATH: run scripts/test, which installs it")
        log = open(self.dir / "log", "ab")  # noqa: SIM115 - the process holds it
        self.proc = subprocess.Popen(
            [exe, *self.args, "--port", str(self.port), *extra],
            cwd=self.dir, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        wait_port(self.port, proc=self.proc)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process must die too
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)


def redis_node(tmp: Path, name: str) -> RedisProc:
    # No persistence (the data lives in the replicas), and a replica syncs at once.
    return RedisProc(tmp / name, ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                  "--repl-diskless-sync-delay", "0"])  # fmt: skip


def wait_until(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not after {timeout}s: {what}")
        time.sleep(0.1)


def replicas_online(master: RedisProc, n: int) -> bool:
    """Whether `n` replicas confirm a write (a replica reported "online" may not yet)."""
    try:
        with redis.Redis(port=master.port, single_connection_client=True) as c:
            c.set("test:ready", 1)
            return int(c.wait(n, 100)) >= n
    except redis.RedisError:
        return False


@dataclass
class SentinelSet:
    master: RedisProc
    replica: RedisProc
    sentinels: list[RedisProc]

    @property
    def env(self) -> dict[str, str]:
        where = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return {"TICKER_REDIS_SENTINELS": where, "TICKER_REDIS_MASTER": MASTER}

    def master_port(self) -> int:
        _, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def ready(self) -> bool:
        try:
            states = [s.client().sentinel_master(MASTER) for s in self.sentinels]
        except redis.RedisError:
            return False
        return all(
            st["num-other-sentinels"] == 2
            and st["num-slaves"] >= 1
            and st["port"] == self.master.port
            for st in states
        )


MASTER = "ticker"


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    master, replica = redis_node(tmp_path, "master"), redis_node(tmp_path, "replica")
    sentinels = [RedisProc(tmp_path / f"sentinel{i}", []) for i in range(3)]
    started = [master, replica, *sentinels]
    try:
        master.start()
        replica.start("--replicaof", "127.0.0.1", str(master.port))
        for s in sentinels:
            s.dir.mkdir(parents=True)
            conf = s.dir / "sentinel.conf"  # sentinels rewrite their own conf file
            conf.write_text(
                f"bind 127.0.0.1\nport {s.port}\ndir {s.dir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 3000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            s.args = [str(conf), "--sentinel"]
            s.start()
        sset = SentinelSet(master, replica, sentinels)
        wait_until("the replica is in sync", lambda: replicas_online(master, 1))
        wait_until("the sentinels know each other and the replica", sset.ready)
        yield sset
    finally:
        for proc in started:
            proc.kill()


class Fan:
    """A WebSocket fan in a thread that reconnects with `since` whenever it is closed.

    `view` is the feed as the fan shows it (a reset snapshot replaces it); `received`
    every event text in the order it arrived, across connections.
    """

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        self.view: list[str] = []
        self.received: list[str] = []
        self.resets = 0
        self.connections = 0
        self.seq: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            url = self.ws_url + (f"?since={self.seq}" if self.seq else "")
            try:
                with connect(url, open_timeout=5) as ws:
                    self.connections += 1
                    while not self._stop.is_set():
                        try:
                            self._apply(json.loads(ws.recv(timeout=0.5)))
                        except TimeoutError:
                            continue
            except (ConnectionClosed, InvalidStatus, OSError):
                time.sleep(0.2)

    def _apply(self, msg: dict[str, Any]) -> None:
        if msg["op"] == "snapshot":
            if self.seq is not None:
                assert msg.get("reset") is True, msg
                self.resets += 1
            self.view = [e["text"] for e in msg["events"]]
        elif msg["op"] == "add":
            self.view.append(msg["event"]["text"])
            self.received.append(msg["event"]["text"])
        self.seq = msg["seq"]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.mark.slow
def test_a_failover_loses_no_acknowledged_event(
    make_server: Any, sentinel_set: SentinelSet, match_id: str
) -> None:
    server: TickerServer = make_server(env=sentinel_set.env)
    with server.admin() as admin:
        new_match(admin, match_id)
    url = f"{server.url}/api/matches/{match_id}/events"
    fan = Fan(f"{server.ws_url}/ws/matches/{match_id}")
    wait_until("the fan is connected", lambda: fan.seq is not None, 10)
    old = sentinel_set.master

    def rejoin() -> None:
        # What an operator (or a container restart) does: the old master comes back,
        # as a replica of the new one, once the sentinels have promoted it.
        wait_until("the sentinels promote the replica",
                   lambda: sentinel_set.master_port() == sentinel_set.replica.port)  # fmt: skip
        old.start("--replicaof", "127.0.0.1", str(sentinel_set.replica.port))

    total, acked = 200, {}
    rejoined = threading.Thread(target=rejoin, daemon=True)
    deadline = time.monotonic() + 45
    for i in range(total):
        if i == 80:
            old.kill()
            rejoined.start()
        key = f"evt-{i}-{uuid.uuid4().hex[:6]}"
        acked[key] = post_until_acknowledged(url, {"type": "comment", "text": key}, key, deadline)
    rejoined.join(10)
    assert sentinel_set.master_port() == sentinel_set.replica.port

    log = all_ops(server.url, match_id)
    texts = [op["event"]["text"] for op in log if op["op"] == "add"]
    assert texts == list(acked), "every acknowledged event is in the log, once, in order"
    assert [op["seq"] for op in log if op["op"] == "add"] == [op["seq"] for op in acked.values()]
    wait_until("the fan is up to date", lambda: fan.seq == log[-1]["seq"], 15)
    fan.stop()
    print(f"fan: {fan.connections} connection(s), {fan.resets} reset(s)")
    assert fan.view == texts
    if fan.resets == 0:  # no reset: every event came exactly once, in order
        assert fan.received == texts
    assert httpx.get(server.url + "/healthz").status_code == 200


@pytest.mark.slow
def test_an_unconfirmed_write_answers_503_and_its_retry_waits_for_the_replica(
    make_server: Any, tmp_path: Path, match_id: str
) -> None:
    master, replica = redis_node(tmp_path, "master"), redis_node(tmp_path, "replica")
    try:
        master.start()
        replica.start("--replicaof", "127.0.0.1", str(master.port))
        wait_until("the replica is in sync", lambda: replicas_online(master, 1))
        server: TickerServer = make_server(
            redis_url=f"redis://127.0.0.1:{master.port}/0",
            env={"TICKER_REDIS_MIN_REPLICAS": "1", "TICKER_REDIS_WAIT_MS": "500"},
        )
        with server.admin() as admin:
            new_match(admin, match_id)
            url = f"/api/matches/{match_id}/events"
            body = {"type": "goal", "team": "home", "minute": 9}
            key = {"Idempotency-Key": f"goal-{uuid.uuid4().hex}"}
            replica.signal(signal.SIGSTOP)
            r = admin.post(url, json=body, headers=key)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "unavailable"
            assert "Idempotency-Key" in r.json()["error"]["message"]
            stored = [op for op in all_ops(server.url, match_id) if op["op"] == "add"]
            assert len(stored) == 1  # on the master, not yet on the replica
            # The retry finds the op, but answers 2xx only once the replica has it.
            assert admin.post(url, json=body, headers=key).status_code == 503
            replica.signal(signal.SIGCONT)
            r = admin.post(url, json=body, headers=key)
            assert r.status_code == 200, r.text
            assert r.json()["op"] == stored[0]
            assert [op for op in all_ops(server.url, match_id) if op["op"] == "add"] == stored
            assert replica.client().xlen(f"ticker:{{{match_id}}}:log") == 2
            # With no replica at all, the server says it cannot confirm writes.
            replica.kill()
            wait_until(
                "/healthz says so",
                lambda: httpx.get(server.url + "/healthz").status_code == 503,
                10,
            )
            error = httpx.get(server.url + "/healthz").json()["error"]
            assert error["code"] == "unavailable" and "0 of the 1 replica" in error["message"]
    finally:
        replica.kill()
        master.kill()


@pytest.mark.slow
def test_a_demoted_master_is_left_for_the_new_one(
    make_server: Any, sentinel_set: SentinelSet, match_id: str
) -> None:
    """SENTINEL FAILOVER demotes a live master: writes there get READONLY, and its reads
    would go on quietly, so both the writer and the reader must move by themselves."""
    server: TickerServer = make_server(env=sentinel_set.env)
    with server.admin() as admin:
        new_match(admin, match_id)
    url = f"{server.url}/api/matches/{match_id}/events"
    fan = Fan(f"{server.ws_url}/ws/matches/{match_id}")
    wait_until("the fan is connected", lambda: fan.seq is not None, 10)
    acked: dict[str, dict] = {}
    deadline = time.monotonic() + 40

    def post(i: int) -> None:
        key = f"evt-{i}-{uuid.uuid4().hex[:6]}"
        acked[key] = post_until_acknowledged(url, {"type": "comment", "text": key}, key, deadline)

    for i in range(40):
        if i == 20:
            # Until the sentinels turn the old master into a replica (some seconds), it
            # still takes writes: WAIT finds no replica there, so none is acknowledged.
            assert sentinel_set.sentinels[0].client().sentinel_failover(MASTER)
        post(i)
    assert sentinel_set.master_port() == sentinel_set.replica.port
    texts = [op["event"]["text"] for op in all_ops(server.url, match_id) if op["op"] == "add"]
    assert texts == list(acked)
    new_master = sentinel_set.replica.client()
    assert new_master.xlen(f"ticker:{{{match_id}}}:log") == 41  # the match op and 40 events
    wait_until("the fan has every event", lambda: fan.view == texts, 15)
    fan.stop()
    print(f"fan: {fan.connections} connection(s), {fan.resets} reset(s)")
    if fan.resets == 0:
        assert fan.received == texts
    # Both of the server's clients left the demoted master.
    clients = sentinel_set.master.client().client_list()
    assert not [c for c in clients if c["cmd"] in ("xread", "evalsha", "wait")], clients
