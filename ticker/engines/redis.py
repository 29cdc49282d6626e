"""The Redis engine: one stream per match, shared by any number of processes.

Keys are hash-tagged per match (`ticker:{ID}:log`, `:epoch`, `:idem:KEY`) so each match's
keys live in one Redis Cluster slot; only creation also adds the id to `ticker:matches`.
Creating runs `lua/create.lua` (first op, epoch, the set of matches, a creation record);
appends run `lua/append.lua`: idempotency check, compare-and-append, idempotency record,
in one atomic step.

Each process keeps a copy of each match's stream, checked against Redis by every append
and read (redis_copies.py), and runs one reader of new entries (redis_reader.py). Redis is
one URL or, with Sentinel, the master the sentinels name (redis_connect.py). With
`min_replicas`, a write is answered 2xx only once that many replicas have it (WAIT, in one
pipeline with the write), else 503: the op is stored, and a retry with the same
Idempotency-Key waits for the replicas again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ReadOnlyError, RedisError, ResponseError

from ticker.engines.base import Builder, Idempotency, OpsHandler, ResetHandler, replayed
from ticker.engines.redis_connect import UNREACHABLE, Connector, Target, call, unavailable
from ticker.engines.redis_copies import Copies, Stream
from ticker.engines.redis_reader import BLOCK_MS, Reader
from ticker.errors import Conflict, EngineUnavailable, Invalid, NotFound
from ticker.log import MatchLog
from ticker.model import Op

log = logging.getLogger("ticker.engine")

READER_GRACE_S = 10.0  # a reader down longer than this makes /healthz 503
MAX_CONNECTIONS = 100
IDEM_TTL = 7 * 24 * 3600
_LUA = Path(__file__).parent / "lua"


class RedisEngine:
    name = "redis"

    def __init__(
        self,
        url: str = "",
        prefix: str = "ticker",
        *,
        sentinels: list[tuple[str, int]] | None = None,
        master: str = "",
        min_replicas: int = 0,
        wait_ms: int = 1000,
    ) -> None:
        self.target = Target(url, tuple(sentinels or ()), master)
        self.prefix = prefix
        self.min_replicas = min_replicas
        self.wait_ms = wait_ms
        self._connector = Connector(self.target)
        # Commands fail fast on a dead server instead of hanging a publisher; a burst of
        # requests waits for a free connection rather than failing at once.
        self.client = self._connector.client(
            socket_timeout=max(5.0, wait_ms / 1000 + 2), retries=2, max_connections=MAX_CONNECTIONS
        )
        # The reader's socket timeout must outlast its XREAD BLOCK, or every quiet
        # period would look like a dead connection.
        self.reader = Reader(
            self, self._connector.client(socket_timeout=BLOCK_MS / 1000 + 5, retries=1)
        )
        self._append = self.client.register_script((_LUA / "append.lua").read_text())
        self._create = self.client.register_script((_LUA / "create.lua").read_text())
        self.copies = Copies(self.client, self._key)
        self.closed = False

    def _key(self, match_id: str, what: str) -> str:
        return f"{self.prefix}:{{{match_id}}}:{what}"

    def _idem_key(self, match_id: str, key: str, own: bool = False) -> str:
        # The engine's own keys (creating a match, keyless writes) have their own space.
        return self._key(match_id, f"{'own' if own else 'idem'}:{key}")

    def log_key(self, match_id: str) -> str:
        return self._key(match_id, "log")

    async def start(self, on_ops: OpsHandler, on_reset: ResetHandler | None = None) -> None:
        self.copies.on_ops = on_ops
        if on_reset is not None:
            self.copies.on_reset = on_reset
        self.reader.start()

    async def close(self) -> None:
        self.closed = True
        await self.reader.close()
        await self.client.aclose()
        await self._connector.close()

    async def ping(self) -> dict[str, Any]:
        try:
            role = await self.client.role()
        except (*UNREACHABLE, RedisError) as exc:
            raise unavailable(exc, "this process cannot serve") from exc
        if role[0] != b"master":
            raise EngineUnavailable("Redis is read-only (a replica); writes cannot be stored")
        if len(role[2]) < self.min_replicas:
            raise EngineUnavailable(
                f"Redis has {len(role[2])} of the {self.min_replicas} replica(s) that must "
                "confirm each write; writes cannot be confirmed"
            )
        down = self.reader.down_since
        if down is not None and time.monotonic() - down > READER_GRACE_S:
            raise EngineUnavailable("this process's Redis reader is down; fans get no new ops")
        return {"reader": "ok" if down is None else "down", "bad_entries": self.copies.bad_entries}

    async def log(self, match_id: str) -> MatchLog:
        return (await self.copies.stream(match_id)).log

    async def logs(self) -> list[MatchLog]:
        raw = await call(self.client.smembers(f"{self.prefix}:matches"), "nothing was read")
        ids = sorted(i.decode() for i in raw)
        found = await self.copies.sync(ids)
        return [found[i].log for i in ids if i in found]

    # Writing

    async def _confirmed(self, queue: Callable[[Pipeline], Any], outcome: str) -> tuple[Any, bool]:
        """Run one write, then WAIT for `min_replicas`, in one pipeline: (its reply, whether
        they confirmed it in `wait_ms`).

        WAIT counts the replicas that have every write of its own connection, so the two
        go together: redis-py resends a pipeline whole on a new connection (a failover), and
        a WAIT resent alone there would count nothing of ours. A reply that is an error is
        returned as the exception.
        """
        async with self.client.pipeline(transaction=False) as pipe:
            queue(pipe)
            if self.min_replicas:
                pipe.wait(self.min_replicas, self.wait_ms)
            replies = await call(pipe.execute(raise_on_error=False), outcome)
        if not self.min_replicas:
            return replies[0], True
        acks = replies[1]
        return replies[0], not isinstance(acks, Exception) and int(acks) >= self.min_replicas

    async def _script(
        self, script: AsyncScript, keys: list[str], args: list[Any], outcome: str
    ) -> tuple[list[bytes], bool]:
        """A write script's reply, and whether replicas confirmed it (see `_confirmed`)."""
        for _ in range(2):
            reply, acked = await self._confirmed(
                lambda pipe: pipe.evalsha(script.sha, len(keys), *keys, *args), outcome
            )
            if isinstance(reply, NoScriptError):  # a new master, or SCRIPT FLUSH
                await call(self.client.script_load(script.script), outcome)
                continue
            if isinstance(reply, ReadOnlyError):  # a URL naming a replica
                raise unavailable(reply, outcome) from reply
            if isinstance(reply, Exception):
                raise reply
            return reply, acked
        raise EngineUnavailable(f"Redis lost the script twice; {outcome}")

    def _require(self, acked: bool) -> None:
        if not acked:
            raise EngineUnavailable(
                f"fewer than {self.min_replicas} Redis replica(s) confirmed the write in "
                f"{self.wait_ms} ms; it is stored but could be lost in a failover: retry "
                "with the same Idempotency-Key"
            )

    async def _run_append(
        self, stream: Stream, op: Op, idem: Idempotency, own: bool
    ) -> tuple[str, str, bool]:
        """(status, value, whether replicas confirmed it) of the append script."""
        match_id = stream.log.id
        keys = [
            self._key(match_id, "log"),
            self._idem_key(match_id, idem.key, own),
            self._key(match_id, "epoch"),
        ]
        args: list[Any] = [
            stream.cursor, stream.entries, stream.epoch,
            op.seq, op.json, idem.digest, IDEM_TTL,
        ]  # fmt: skip
        try:
            # Both "ok" and "dup" write (a dup rewrites its record as it is), so the WAIT
            # after them covers the op.
            (status, value), acked = await self._script(
                self._append, keys, args, "the event was not stored"
            )
        except ResponseError as exc:
            # XADD refuses an id at or below the stream's top: our view was behind.
            if "equal or smaller" in str(exc):
                return "stale", "", True
            raise
        return status.decode(), value.decode(), acked

    async def create_match(self, op: Op) -> Op:
        match_id = op.data["match"]["id"]
        epoch, token = uuid.uuid4().hex, uuid.uuid4().hex
        keys = [
            self._key(match_id, "log"),
            self._idem_key(match_id, "create", own=True),
            self._key(match_id, "epoch"),
            f"{self.prefix}:matches",
        ]
        args = [op.seq, op.json, token, IDEM_TTL, epoch, match_id]
        (status, value), acked = await self._script(self._create, keys, args, "nothing was written")
        # A lost reply that redis-py retried finds its own record: created all the same.
        if status != b"ok" and value.decode() != f"{op.seq} {token}":
            raise Conflict(f"match {match_id} exists", "id")
        new = self.copies.new(match_id, epoch, [(op.seq.encode(), {b"o": op.json})])
        self.copies.replace(match_id, self.copies.streams.get(match_id), new)
        self._require(acked)
        return op

    async def _replay(self, match_id: str, idem: Idempotency) -> Op | None:
        """The op an earlier request with this key made, or None if the key is new.

        The earlier request may have been answered 503 because replicas did not confirm
        it: this one too is answered only once they have it.
        """
        key = self._idem_key(match_id, idem.key)
        seen = await call(self.client.get(key), "nothing was written")
        if seen is None:
            return None
        acked = True
        if self.min_replicas:
            # Rewritten as it is: a write, so the WAIT after it covers the op.
            _, acked = await self._confirmed(
                lambda pipe: pipe.set(key, seen, xx=True, keepttl=True), "nothing was written"
            )
        seq, _, digest = seen.decode().partition(" ")
        earlier = await self._replayed(match_id, idem, seq, digest)
        self._require(acked)
        return earlier

    async def _replayed(self, match_id: str, idem: Idempotency, seq: str, digest: str) -> Op:
        mlog = self.copies.current(match_id).log
        if seq not in mlog.index:  # appended by another process a moment ago
            mlog = await self.log(match_id)
        if seq not in mlog.index and digest == idem.digest:
            raise Conflict(
                "this Idempotency-Key's op is no longer in the match log", "Idempotency-Key"
            )
        return replayed(mlog, idem, seq, digest)

    async def append(
        self, match_id: str, build: Builder, idempotency: Idempotency | None = None
    ) -> tuple[Op, bool]:
        await self.copies.stream(match_id)
        # A repeat must get the original op even when building again would fail (the event
        # it removed is gone): the key is looked up first. The script checks it again, for
        # repeats that race.
        if idempotency is not None and (earlier := await self._replay(match_id, idempotency)):
            return earlier, False
        # Without a client key, a key of our own still makes redis-py's retry of a
        # lost reply safe: the retry finds the record instead of appending twice.
        idem = idempotency or Idempotency(uuid.uuid4().hex, "")
        for _ in range(50):
            stream = self.copies.current(match_id)
            try:
                op = build(stream.log)
            except (NotFound, Invalid, Conflict):  # Conflict: a stale If-Match
                if idempotency is not None and (earlier := await self._replay(match_id, idem)):
                    return earlier, False
                raise
            if op.key <= stream.cursor_key:
                # A bad entry stamped by a clock ahead of ours tops the stream: let ours pass it.
                await asyncio.sleep(0.002)
                continue
            status, value, acked = await self._run_append(stream, op, idem, own=idempotency is None)
            if status == "ok":
                if self.copies.advance(stream, op.seq) and stream.log.apply(op):
                    self.copies.deliver(stream, [op])
                self._require(acked)
                return op, True
            if status == "dup":
                seq, _, digest = value.partition(" ")
                earlier = await self._replayed(match_id, idem, seq, digest)
                self._require(acked)
                return earlier, False
            # Stale or gone: bring the copy up to Redis (reloading it if Redis lost entries),
            # then build again on what Redis really has.
            await self.copies.stream(match_id)
        raise EngineUnavailable("too many concurrent writes to this match; try again")

    async def watch(self, match_id: str) -> MatchLog:
        await self.copies.stream(match_id)
        if match_id not in self.copies.watched:
            self.copies.watched.add(match_id)
            await self.reader.wake()
        # The copy may have been reloaded while waking the reader: hand out the current one.
        return self.copies.current(match_id).log

    def unwatch(self, match_id: str) -> None:
        self.copies.watched.discard(match_id)

    # Reporters: name -> token hash, and the reverse index for sign-in.

    async def add_reporter(self, name: str, token_hash: str) -> None:
        key = f"{self.prefix}:reporters"
        added = await call(self.client.hsetnx(key, name, token_hash))
        if not added:
            raise Conflict(f"reporter {name} exists", "name")
        await call(self.client.hset(f"{self.prefix}:reporter-tokens", token_hash, name))

    async def reporters(self) -> list[str]:
        names = await call(self.client.hkeys(f"{self.prefix}:reporters"), "nothing was read")
        return sorted(n.decode() for n in names)

    async def revoke_reporter(self, name: str) -> bool:
        token_hash = await call(self.client.hget(f"{self.prefix}:reporters", name))
        if token_hash is None:
            return False
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(f"{self.prefix}:reporters", name)
            pipe.hdel(f"{self.prefix}:reporter-tokens", token_hash)
            await call(pipe.execute())
        return True

    async def reporter_for(self, token_hash: str) -> str | None:
        name = await call(
            self.client.hget(f"{self.prefix}:reporter-tokens", token_hash), "nothing was read"
        )
        return None if name is None else str(name.decode())
