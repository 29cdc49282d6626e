"""The Redis engine's reader: one blocking XREAD per process over every watched stream.

Plus a private wake-up stream, so a newly watched match joins without waiting out the
BLOCK, and every few seconds one pipelined check of the watched copies against Redis
(Redis may have lost entries with nothing new to read) and, with Sentinel, of where the
master is (a demoted master still serves reads; the reader must not stay on it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ticker.engines.redis_connect import UNREACHABLE, follow_master
from ticker.errors import EngineUnavailable

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from ticker.engines.redis import RedisEngine

log = logging.getLogger("ticker.engine")

BLOCK_MS = 5000
CHECK_S = 5.0  # how often the reader checks the watched copies against Redis


class Reader:
    """Reads new entries of the engine's watched matches into its copies; supervised."""

    def __init__(self, engine: RedisEngine, client: aioredis.Redis) -> None:
        self.engine = engine
        # Its socket timeout outlasts BLOCK_MS (see RedisEngine), or every quiet period
        # would look like a dead connection.
        self.client = client
        self.wake_key = f"{engine.prefix}:wake:{uuid.uuid4().hex}"
        self._wake_seen = "0-0"
        self._task: asyncio.Task[None] | None = None
        self.down_since: float | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read_forever(), name="ticker-redis-reader")

    async def close(self) -> None:
        """Stop reading; the engine has set `closed` already."""
        if self._task is not None:
            # Wake the blocked XREAD so the reader sees `closed`; cancel only as a fallback
            # (redis-py may swallow a cancellation that lands mid-read).
            await self.wake()
            done, _ = await asyncio.wait([self._task], timeout=1.0)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        await self.client.aclose()

    async def wake(self) -> None:
        try:
            await self.engine.client.xadd(self.wake_key, {"w": "1"}, maxlen=1)
            await self.engine.client.expire(self.wake_key, 86400)
        except (*UNREACHABLE, RedisError):
            pass  # the reader is reconnecting (or Redis refuses writes) and will catch up

    def _down(self) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()

    async def _read_forever(self) -> None:
        """Supervise the reader: an unexpected error is logged with its traceback, and the
        reader starts again after a backoff, resuming from each copy's cursor."""
        backoff = 0.05
        while not self.engine.closed:
            started = time.monotonic()
            try:
                await self._read_loop()
            except Exception:
                if self.engine.closed:
                    return
                log.exception("redis reader failed; restarting it")
                self._down()
                if time.monotonic() - started > 60:
                    backoff = 0.05
                await asyncio.sleep(random.uniform(0, backoff))
                backoff = min(backoff * 2, 5.0)

    async def _follow_master(self) -> None:
        for client in (self.client, self.engine.client):
            try:
                await follow_master(client)
            except (*UNREACHABLE, RedisError) as exc:
                # No sentinel answers, or none names a master (a failover is under way):
                # keep the connections we have; Redis itself may be fine.
                log.warning("redis reader: asking the sentinels for the master: %s", exc)

    async def _read_loop(self) -> None:
        engine = self.engine
        backoff = 0.05
        next_check = 0.0  # check the copies at once: this may follow an outage or a crash
        # redis-py can turn the cancellation of a blocked read into a connection error,
        # which the retry below would swallow: `closed` is what ends the loop.
        while not engine.closed:
            streams: dict[Any, Any] = {self.wake_key: self._wake_seen}
            for match_id in engine.copies.watched:
                stream = engine.copies.streams.get(match_id)
                if stream is not None:
                    streams[engine.log_key(match_id)] = stream.cursor or "0-0"
            try:
                if time.monotonic() >= next_check:
                    await self._follow_master()
                    # Redis may have lost entries (a failover, a restore) with nothing to
                    # read: XREAD would wait quietly on a head Redis no longer has.
                    await engine.copies.sync(sorted(engine.copies.watched))
                    next_check = time.monotonic() + CHECK_S
                    self.down_since = None
                    continue  # the copies may have moved: XREAD from their new cursors
                reply: Any = await self.client.xread(streams, block=BLOCK_MS, count=1000)
            except (*UNREACHABLE, RedisError, EngineUnavailable) as exc:
                # Full-jitter backoff; then the copies are checked and XREAD resumes.
                self._down()
                log.warning("redis reader: %s; retrying", exc)
                await asyncio.sleep(random.uniform(0, backoff))
                backoff = min(backoff * 2, 5.0)
                next_check = 0.0
                continue
            backoff = 0.05
            self.down_since = None
            for key, entries in reply or []:
                key = key.decode()
                if key == self.wake_key:
                    self._wake_seen = entries[-1][0].decode()
                    continue
                stream = engine.copies.streams.get(key[len(engine.prefix) + 2 : -len("}:log")])
                if stream is not None:
                    engine.copies.ingest(stream, entries)
