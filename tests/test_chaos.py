"""Seeded faults under load: hubs and Redis killed, stopped and restarted while reporters
retry with their Idempotency-Keys through a proxy that loses replies, and fans resume with
`since`; then every acknowledged write, every fan's messages and every state are checked
against the final log.

`TICKER_CHAOS_SEED` picks the run (default 1), `TICKER_CHAOS_SECONDS` its length under
faults (default 20); `pytest -s` prints the summary, and a failure carries it too.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from tests.chaos_util import Run, check_run, check_server_logs, resume_all, run_chaos
from tests.conftest import RedisServer, TickerServer, _env, free_port, new_match

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("TICKER_CHAOS_SEED", "1"))
SECONDS = float(os.environ.get("TICKER_CHAOS_SECONDS", "20"))
MATCHES = ["chaos-a", "chaos-b"]


def _chaos(engine: str, hubs: list[TickerServer], redis: RedisServer | None) -> None:
    run = Run(SEED, engine)
    try:
        for hub in hubs:
            hub.start()
        with httpx.Client(base_url=hubs[0].url, headers=hubs[0].admin().headers) as admin:
            for match_id in MATCHES:
                new_match(admin, match_id)
        logs = asyncio.run(run_chaos(run, hubs, redis, MATCHES, SECONDS))
        check_run(run, hubs, logs)
    finally:
        resume_all(hubs, redis)
        for hub in hubs:
            hub.stop()
        if redis is not None:
            redis.kill()
    check_server_logs(run, hubs)
    print("\n" + run.report(limit=1000))
    assert not run.failures, run.report()


def test_chaos_redis_two_hubs(tmp_path: Path) -> None:
    """Two hubs (one per WebSocket path) on a Redis of the test's own, all three faulted."""
    (tmp_path / "redis").mkdir()
    redis = RedisServer(free_port(), tmp_path / "redis")
    redis.start()
    hubs = [
        TickerServer(
            _env(TICKER_REDIS_URL=redis.url, TICKER_WS=ws), log_path=tmp_path / f"hub{i}.log"
        )
        for i, ws in enumerate(("fast", "plain"))
    ]
    _chaos("redis", hubs, redis)


def test_chaos_embedded(tmp_path: Path) -> None:
    """One embedded server, killed, stopped and restarted on the same data directory."""
    hub = TickerServer(_env(TICKER_DATA_DIR=str(tmp_path / "data")), log_path=tmp_path / "hub0.log")
    _chaos("embedded", [hub], None)
