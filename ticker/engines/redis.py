"""The Redis engine: one stream per match, shared by any number of processes.

Keys are hash-tagged per match (`ticker:{ID}:log`, `ticker:{ID}:idem:KEY`) so each
match's keys live in one Redis Cluster slot. Appends run `lua/append.lua`: idempotency
check, compare-and-append on the stream's last id, idempotency record, in one atomic
step. Each process runs one reader: a single blocking XREAD over every stream its fans
watch, plus a private wake-up stream so a newly watched match joins without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ticker.engines.base import Builder, Idempotency, OpsHandler, replayed
from ticker.errors import Conflict, EngineUnavailable, MatchNotFound
from ticker.log import MatchLog
from ticker.model import Op

log = logging.getLogger("ticker.engine")

BLOCK_MS = 5000
IDEM_TTL = 7 * 24 * 3600
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_APPEND = (Path(__file__).parent / "lua" / "append.lua").read_text()


def _decode(entry_fields: dict[bytes, bytes]) -> Op:
    return Op.from_json(entry_fields[b"o"])


class RedisEngine:
    name = "redis"

    def __init__(self, url: str, prefix: str = "ticker") -> None:
        self.url = url
        self.prefix = prefix
        # Commands fail fast on a dead server instead of hanging a publisher.
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=5,
            socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        )
        # The reader's socket timeout must outlast its XREAD BLOCK, or every quiet
        # period would look like a dead connection.
        self.reader_client = aioredis.Redis.from_url(
            url,
            socket_timeout=BLOCK_MS / 1000 + 5,
            socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1),
        )
        self._append = self.client.register_script(_APPEND)
        self._logs: dict[str, MatchLog] = {}
        self._watched: set[str] = set()
        self._on_ops: OpsHandler = lambda match_id, ops: None
        self.closed = False
        self._wake_key = f"{prefix}:wake:{uuid.uuid4().hex}"
        self._wake_seen = "0-0"
        self._reader: asyncio.Task[None] | None = None
        self._loading: dict[str, asyncio.Future[MatchLog]] = {}

    def _log_key(self, match_id: str) -> str:
        return f"{self.prefix}:{{{match_id}}}:log"

    def _idem_key(self, match_id: str, key: str, own: bool = False) -> str:
        # The engine's own keys (creating a match, keyless writes) have their own space.
        return f"{self.prefix}:{{{match_id}}}:{'own' if own else 'idem'}:{key}"

    async def start(self, on_ops: OpsHandler) -> None:
        self._on_ops = on_ops
        self._reader = asyncio.create_task(self._read_forever(), name="ticker-redis-reader")

    async def close(self) -> None:
        self.closed = True
        if self._reader is not None:
            # Wake the blocked XREAD so the reader sees `closed`; cancel only as a fallback
            # (redis-py may swallow a cancellation that lands mid-read).
            await self._wake()
            done, _ = await asyncio.wait([self._reader], timeout=1.0)
            if not done:
                self._reader.cancel()
                await asyncio.gather(self._reader, return_exceptions=True)
        for client in (self.client, self.reader_client):
            await client.aclose()

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except _UNREACHABLE as exc:
            raise EngineUnavailable(f"Redis is unreachable: {exc}") from exc

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except _UNREACHABLE as exc:
            raise EngineUnavailable("Redis is unreachable; nothing was written") from exc

    def _ingest(self, mlog: MatchLog, ops: list[Op]) -> None:
        """Apply ops read from the stream; ops new to this process go to the hub, once."""
        fresh = [op for op in ops if mlog.apply(op)]
        if fresh and mlog.id in self._watched:
            self._on_ops(mlog.id, fresh)

    async def _refresh(self, mlog: MatchLog) -> MatchLog:
        start = f"({mlog.head}" if mlog.head else "-"
        entries = await self._call(self.client.xrange(self._log_key(mlog.id), start, "+"))
        self._ingest(mlog, [_decode(fields) for _, fields in entries])
        return mlog

    async def log(self, match_id: str) -> MatchLog:
        mlog = self._logs.get(match_id)
        if mlog is not None:
            return await self._refresh(mlog)
        # One load per match however many requests ask at once (a reconnect storm).
        loading = self._loading.get(match_id)
        if loading is not None:
            return await asyncio.shield(loading)
        fut: asyncio.Future[MatchLog] = asyncio.get_running_loop().create_future()
        self._loading[match_id] = fut
        try:
            mlog = await self._refresh(MatchLog(match_id))
            if not mlog.ops:
                raise MatchNotFound(f"no match {match_id}", "match_id")
            mlog = self._logs.setdefault(match_id, mlog)
            fut.set_result(mlog)
            return mlog
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it, an unawaited one must not warn
            raise
        finally:
            del self._loading[match_id]

    async def logs(self) -> list[MatchLog]:
        ids = await self._call(self.client.smembers(f"{self.prefix}:matches"))
        found = await asyncio.gather(
            *(self.log(raw.decode()) for raw in sorted(ids)), return_exceptions=True
        )
        for result in found:
            if isinstance(result, BaseException) and not isinstance(result, MatchNotFound):
                raise result
        return [mlog for mlog in found if isinstance(mlog, MatchLog)]

    async def _run_append(
        self, mlog: MatchLog, op: Op, idem: Idempotency, own: bool = False
    ) -> tuple[str, str]:
        keys = [self._log_key(mlog.id), self._idem_key(mlog.id, idem.key, own)]
        args: list[Any] = [mlog.head, op.seq, op.json, idem.digest, IDEM_TTL]
        try:
            status, value = await self._append(keys=keys, args=args)
        except ResponseError as exc:
            # XADD refuses an id at or below the last one: our view was behind.
            if "equal or smaller" in str(exc):
                return "stale", ""
            raise
        except _UNREACHABLE as exc:
            raise EngineUnavailable("Redis is unreachable; the event was not stored") from exc
        return status.decode(), value.decode()

    async def create_match(self, op: Op) -> Op:
        match_id = op.data["match"]["id"]
        mlog = MatchLog(match_id)
        status, _ = await self._run_append(mlog, op, Idempotency("create", ""), own=True)
        if status != "ok":
            raise Conflict(f"match {match_id} exists", "id")
        await self._call(self.client.sadd(f"{self.prefix}:matches", match_id))
        return op

    async def append(
        self, match_id: str, build: Builder, idempotency: Idempotency | None = None
    ) -> tuple[Op, bool]:
        mlog = await self.log(match_id)
        # Without a client key, a key of our own still makes redis-py's retry of a
        # lost reply safe: the retry finds the record instead of appending twice.
        idem = idempotency or Idempotency(uuid.uuid4().hex, "")
        for _ in range(50):
            op = build(mlog)
            status, value = await self._run_append(mlog, op, idem, own=idempotency is None)
            if status == "ok":
                self._ingest(mlog, [op])
                return op, True
            await self._refresh(mlog)
            if status == "dup":
                seq, _, digest = value.partition(" ")
                return replayed(mlog, idem, seq, digest), False
        raise EngineUnavailable("too many concurrent writes to this match; try again")

    async def watch(self, match_id: str) -> MatchLog:
        mlog = await self.log(match_id)
        if match_id not in self._watched:
            self._watched.add(match_id)
            await self._wake()
        return mlog

    def unwatch(self, match_id: str) -> None:
        self._watched.discard(match_id)

    async def _wake(self) -> None:
        try:
            await self.client.xadd(self._wake_key, {"w": "1"}, maxlen=1)
            await self.client.expire(self._wake_key, 86400)
        except _UNREACHABLE:
            pass  # the reader is reconnecting and will pick the match up anyway

    async def _read_forever(self) -> None:
        backoff = 0.05
        # redis-py can turn the cancellation of a blocked read into a connection error,
        # which the retry below would swallow: `closed` is what ends the loop.
        while not self.closed:
            streams: dict[Any, Any] = {self._wake_key: self._wake_seen}
            for match_id in self._watched:
                mlog = self._logs.get(match_id)
                if mlog is not None:
                    streams[self._log_key(match_id)] = mlog.head or "0-0"
            try:
                reply: Any = await self.reader_client.xread(streams, block=BLOCK_MS, count=1000)
            except (*_UNREACHABLE, RedisError) as exc:
                # Full-jitter backoff; the next XREAD resumes from each log's head.
                log.warning("redis reader: %s; retrying", exc)
                await asyncio.sleep(random.uniform(0, backoff))
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.05
            for key, entries in reply or []:
                key = key.decode()
                if key == self._wake_key:
                    self._wake_seen = entries[-1][0].decode()
                    continue
                match_id = key[len(self.prefix) + 2 : -len("}:log")]
                mlog = self._logs.get(match_id)
                if mlog is not None:
                    self._ingest(mlog, [_decode(fields) for _, fields in entries])

    # Reporters: name -> token hash, and the reverse index for sign-in.

    async def add_reporter(self, name: str, token_hash: str) -> None:
        key = f"{self.prefix}:reporters"
        added = await self._call(self.client.hsetnx(key, name, token_hash))
        if not added:
            raise Conflict(f"reporter {name} exists", "name")
        await self._call(self.client.hset(f"{self.prefix}:reporter-tokens", token_hash, name))

    async def reporters(self) -> list[str]:
        names = await self._call(self.client.hkeys(f"{self.prefix}:reporters"))
        return sorted(n.decode() for n in names)

    async def revoke_reporter(self, name: str) -> bool:
        token_hash = await self._call(self.client.hget(f"{self.prefix}:reporters", name))
        if token_hash is None:
            return False
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(f"{self.prefix}:reporters", name)
            pipe.hdel(f"{self.prefix}:reporter-tokens", token_hash)
            await self._call(pipe.execute())
        return True

    async def reporter_for(self, token_hash: str) -> str | None:
        name = await self._call(self.client.hget(f"{self.prefix}:reporter-tokens", token_hash))
        return None if name is None else str(name.decode())
