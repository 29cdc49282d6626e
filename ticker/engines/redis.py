"""The Redis engine: one stream per match, shared by any number of processes.

Keys are hash-tagged per match (`ticker:{ID}:log`, `:epoch`, `:idem:KEY`) so each match's
keys live in one Redis Cluster slot; only creation also adds the id to `ticker:matches`.
Creating runs `lua/create.lua` (first op, epoch, the set of matches, a creation record);
appends run `lua/append.lua`: idempotency check, compare-and-append, idempotency record,
in one atomic step.

Each process keeps a copy of a match's stream (`_Stream`: the MatchLog, the last entry id
read, the number of entries read and the match's epoch). Logs are never trimmed, so while
the copy is true the stream has exactly that many entries, ending at that id, under that
epoch. The append script checks all three; every read checks them too. When Redis lost
data (FLUSHALL, a lagging replica promoted, an older AOF restored) or the match was made
again, they differ: the copy is reloaded from Redis and the hub told (a reset), or, when
the stream is gone, dropped (the match is not found).

Each process runs one reader (redis_reader.py). Redis is one URL or, with Sentinel, the
master the sentinels name (redis_connect.py); with `min_replicas`, a write is answered only
once that many replicas have it (WAIT on the connection that wrote it), else 503: the op
is stored, and a retry with the same Idempotency-Key waits for the replicas again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import (
    MaxConnectionsError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from ticker.engines.base import Builder, Idempotency, OpsHandler, ResetHandler, replayed
from ticker.engines.redis_connect import Connector, Target
from ticker.engines.redis_reader import BLOCK_MS, UNREACHABLE, Reader
from ticker.errors import BadRequest, Conflict, EngineUnavailable, Invalid, MatchNotFound, NotFound
from ticker.log import MatchLog
from ticker.model import Op, seq_key

log = logging.getLogger("ticker.engine")

READER_GRACE_S = 10.0  # a reader down longer than this makes /healthz 503
BATCH = 100  # matches per pipelined read
MAX_CONNECTIONS = 100
IDEM_TTL = 7 * 24 * 3600
_UNREACHABLE = UNREACHABLE
_LUA = Path(__file__).parent / "lua"
_BAD_ENTRY = (KeyError, TypeError, ValueError, AttributeError, BadRequest)


def _unavailable(exc: BaseException, outcome: str) -> EngineUnavailable:
    """What went wrong, in words a client may see: never an address (the cause has it)."""
    if isinstance(exc, MaxConnectionsError) or "No connection available" in str(exc):
        what = "Redis is busy: no free connection in this process"
    elif isinstance(exc, ReadOnlyError):
        what = "Redis is read-only (a replica)"
    elif isinstance(exc, RedisTimeoutError | TimeoutError):
        what = "Redis did not answer in time"
    else:
        what = "Redis is unreachable"
    return EngineUnavailable(f"{what}; {outcome}")


@dataclass(eq=False, slots=True)
class _Stream:
    """This process's copy of one match stream, and what identifies the stream it copies."""

    log: MatchLog
    epoch: str
    cursor: str = ""  # id of the last entry read, good or bad
    cursor_key: tuple[int, int] = (-1, -1)
    entries: int = 0  # entries read, good or bad: the stream's length while the copy is true


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
        self.streams: dict[str, _Stream] = {}
        self.watched: set[str] = set()
        self._on_ops: OpsHandler = lambda match_id, ops: None
        self._on_reset: ResetHandler = lambda match_id, mlog: None
        self.closed = False
        self._loading: dict[str, asyncio.Future[_Stream | None]] = {}
        self.bad_entries = 0
        self._bad_seen: set[str] = set()

    def _key(self, match_id: str, what: str) -> str:
        return f"{self.prefix}:{{{match_id}}}:{what}"

    def _idem_key(self, match_id: str, key: str, own: bool = False) -> str:
        # The engine's own keys (creating a match, keyless writes) have their own space.
        return self._key(match_id, f"{'own' if own else 'idem'}:{key}")

    def log_key(self, match_id: str) -> str:
        return self._key(match_id, "log")

    async def start(self, on_ops: OpsHandler, on_reset: ResetHandler | None = None) -> None:
        self._on_ops = on_ops
        if on_reset is not None:
            self._on_reset = on_reset
        self.reader.start()

    async def close(self) -> None:
        self.closed = True
        await self.reader.close()
        await self.client.aclose()
        await self._connector.close()

    async def ping(self) -> dict[str, Any]:
        try:
            role = await self.client.role()
        except (*_UNREACHABLE, RedisError) as exc:
            raise _unavailable(exc, "this process cannot serve") from exc
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
        return {"reader": "ok" if down is None else "down", "bad_entries": self.bad_entries}

    async def _call(self, coro: Any, outcome: str = "nothing was written") -> Any:
        try:
            return await coro
        except (*_UNREACHABLE, ReadOnlyError) as exc:
            raise _unavailable(exc, outcome) from exc

    # Reading: entries into copies, copies checked against Redis.

    def ingest(self, stream: _Stream, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Apply entries read from Redis; new ops go to the hub, once, in order."""
        fresh: list[Op] = []
        for raw_id, fields in entries:
            entry_id = raw_id.decode()
            if self._advance(stream, entry_id):
                op = self._decode(stream, entry_id, fields)
                if op is not None:
                    fresh.append(op)
        self._deliver(stream, fresh)

    def _advance(self, stream: _Stream, entry_id: str) -> bool:
        """Move the copy's cursor to an entry; False if it was read already."""
        key = seq_key(entry_id)
        if key <= stream.cursor_key:
            return False
        stream.cursor, stream.cursor_key = entry_id, key
        stream.entries += 1
        return True

    def _decode(self, stream: _Stream, entry_id: str, fields: dict[bytes, bytes]) -> Op | None:
        """The entry's op applied to the copy, or None for an entry that is not an op of ours.

        One bad entry (written by hand, by another program) must not stop a match: it is
        skipped, counted and logged once.
        """
        try:
            op = Op.from_json(fields[b"o"])
            if op.seq != entry_id:
                raise ValueError(f"its op has seq {op.seq!r}")
            return op if stream.log.apply(op) else None
        except _BAD_ENTRY as exc:
            where = f"{self._key(stream.log.id, 'log')} {entry_id}"
            if where not in self._bad_seen:
                self._bad_seen.add(where)
                self.bad_entries += 1
                log.warning("skipping bad entry %s: %s: %s", where, type(exc).__name__, exc)
            return None

    def _deliver(self, stream: _Stream, ops: list[Op]) -> None:
        match_id = stream.log.id
        if ops and match_id in self.watched and self.streams.get(match_id) is stream:
            self._on_ops(match_id, ops)

    async def _read(self, wanted: list[tuple[str, str]]) -> list[tuple[str, int, str, list[Any]]]:
        """(epoch, length, last id, entries after the cursor) of each (match, cursor),
        atomically."""
        async with self.client.pipeline(transaction=True) as pipe:
            for match_id, cursor in wanted:
                key = self._key(match_id, "log")
                pipe.get(self._key(match_id, "epoch"))
                pipe.xlen(key)
                pipe.xrevrange(key, "+", "-", count=1)
                pipe.xrange(key, f"({cursor}" if cursor else "-", "+")
            got = await self._call(pipe.execute(), "nothing was read")
        return [
            (
                (got[i] or b"").decode(),
                int(got[i + 1]),
                got[i + 2][0][0].decode() if got[i + 2] else "",
                got[i + 3],
            )
            for i in range(0, len(got), 4)
        ]

    def _new(self, match_id: str, epoch: str, entries: list[Any]) -> _Stream:
        stream = _Stream(MatchLog(match_id), epoch)
        self.ingest(stream, entries)
        return stream

    def _gone(self, match_id: str, stream: _Stream | None) -> None:
        """The match's stream is gone from Redis: drop the copy, tell the hub."""
        if stream is None or self.streams.get(match_id) is not stream:
            return
        del self.streams[match_id]
        log.warning("match %s is gone from Redis; dropping this process's copy", match_id)
        if match_id in self.watched:
            self.watched.discard(match_id)
            self._on_reset(match_id, None)

    def _replace(self, match_id: str, old: _Stream | None, new: _Stream) -> _Stream:
        """Put a reloaded copy in place of `old`; fans of the match get a reset snapshot."""
        current = self.streams.get(match_id)
        if current is not old and current is not None:
            return current  # another task reloaded it meanwhile: that copy is as good
        self.streams[match_id] = new
        if old is not None:
            log.warning(
                "match %s: Redis no longer has this process's copy (%d entries to %s, "
                "epoch %s; now %d to %s, epoch %s): reloaded",
                match_id, old.entries, old.cursor, old.epoch or "-",
                new.entries, new.cursor, new.epoch or "-",
            )  # fmt: skip
            if match_id in self.watched:
                self._on_reset(match_id, new.log)
        return new

    async def sync(self, ids: list[str]) -> dict[str, _Stream]:
        """Bring the copies of these matches up to Redis, in pipelines of BATCH matches.

        A copy the stream no longer continues (other epoch, entries lost) is reloaded and
        replaces it; a match whose stream is gone is dropped. Returns the matches found.
        """
        found: dict[str, _Stream] = {}
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            # What each copy was when the read went out: the reply continues exactly that.
            before = {i: self.streams.get(i) for i in batch}
            seen = {i: (s.cursor, s.entries) if s else ("", 0) for i, s in before.items()}
            replies = await self._read([(i, seen[i][0]) for i in batch])
            reload: list[str] = []
            for match_id, (epoch, length, top, entries) in zip(batch, replies, strict=True):
                old, current = before[match_id], self.streams.get(match_id)
                cursor, count = seen[match_id]
                # While the copy is true the stream is it plus the entries after it.
                continues = (
                    old is not None
                    and epoch == old.epoch
                    and count + len(entries) == length
                    and top == (entries[-1][0].decode() if entries else cursor)
                )
                if length == 0:
                    self._gone(match_id, old)
                elif current is not old:
                    if current is not None:  # reloaded or created meanwhile
                        found[match_id] = current
                elif old is None:
                    found[match_id] = self._replace(
                        match_id, None, self._new(match_id, epoch, entries)
                    )
                elif not continues:
                    reload.append(match_id)
                else:
                    self.ingest(old, entries)
                    found[match_id] = old
            if reload:
                for match_id, (epoch, length, _, entries) in zip(
                    reload, await self._read([(i, "") for i in reload]), strict=True
                ):
                    if length == 0:
                        self._gone(match_id, before[match_id])
                    else:
                        new = self._new(match_id, epoch, entries)
                        found[match_id] = self._replace(match_id, before[match_id], new)
        return found

    async def _stream(self, match_id: str) -> _Stream:
        """The match's copy, brought up to Redis; MatchNotFound if Redis has no such match."""
        if match_id in self.streams:
            found = await self.sync([match_id])
        else:
            found = {}
            stream = await self._load_once(match_id)
            if stream is not None:
                found[match_id] = stream
        stream = found.get(match_id)
        if stream is None:
            raise MatchNotFound(f"no match {match_id}", "match_id")
        return stream

    async def _load_once(self, match_id: str) -> _Stream | None:
        # One load per match however many requests ask at once (a reconnect storm).
        loading = self._loading.get(match_id)
        if loading is not None:
            return await asyncio.shield(loading)
        fut: asyncio.Future[_Stream | None] = asyncio.get_running_loop().create_future()
        self._loading[match_id] = fut
        try:
            stream = (await self.sync([match_id])).get(match_id)
            fut.set_result(stream)
            return stream
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it, an unawaited one must not warn
            raise
        finally:
            del self._loading[match_id]

    def _current(self, match_id: str) -> _Stream:
        stream = self.streams.get(match_id)
        if stream is None:
            raise MatchNotFound(f"no match {match_id}", "match_id")
        return stream

    async def log(self, match_id: str) -> MatchLog:
        return (await self._stream(match_id)).log

    async def logs(self) -> list[MatchLog]:
        raw = await self._call(self.client.smembers(f"{self.prefix}:matches"), "nothing was read")
        ids = sorted(i.decode() for i in raw)
        found = await self.sync(ids)
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
            replies = await self._call(pipe.execute(raise_on_error=False), outcome)
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
                await self._call(self.client.script_load(script.script), outcome)
                continue
            if isinstance(reply, ReadOnlyError):  # a URL naming a replica
                raise _unavailable(reply, outcome) from reply
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
        self, stream: _Stream, op: Op, idem: Idempotency, own: bool
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
        new = self._new(match_id, epoch, [(op.seq.encode(), {b"o": op.json})])
        self._replace(match_id, self.streams.get(match_id), new)
        self._require(acked)
        return op

    async def _replay(self, match_id: str, idem: Idempotency) -> Op | None:
        """The op an earlier request with this key made, or None if the key is new.

        The earlier request may have been answered 503 because replicas did not confirm
        it: this one too is answered only once they have it.
        """
        key = self._idem_key(match_id, idem.key)
        seen = await self._call(self.client.get(key), "nothing was written")
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
        mlog = self._current(match_id).log
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
        await self._stream(match_id)
        # A repeat must get the original op even when building again would fail (the event
        # it removed is gone): the key is looked up first. The script checks it again, for
        # repeats that race.
        if idempotency is not None and (earlier := await self._replay(match_id, idempotency)):
            return earlier, False
        # Without a client key, a key of our own still makes redis-py's retry of a
        # lost reply safe: the retry finds the record instead of appending twice.
        idem = idempotency or Idempotency(uuid.uuid4().hex, "")
        for _ in range(50):
            stream = self._current(match_id)
            try:
                op = build(stream.log)
            except (NotFound, Invalid):
                if idempotency is not None and (earlier := await self._replay(match_id, idem)):
                    return earlier, False
                raise
            if op.key <= stream.cursor_key:
                # A bad entry stamped by a clock ahead of ours tops the stream: let ours pass it.
                await asyncio.sleep(0.002)
                continue
            status, value, acked = await self._run_append(stream, op, idem, own=idempotency is None)
            if status == "ok":
                if self._advance(stream, op.seq) and stream.log.apply(op):
                    self._deliver(stream, [op])
                self._require(acked)
                return op, True
            if status == "dup":
                seq, _, digest = value.partition(" ")
                earlier = await self._replayed(match_id, idem, seq, digest)
                self._require(acked)
                return earlier, False
            # Stale or gone: bring the copy up to Redis (reloading it if Redis lost entries),
            # then build again on what Redis really has.
            await self._stream(match_id)
        raise EngineUnavailable("too many concurrent writes to this match; try again")

    async def watch(self, match_id: str) -> MatchLog:
        await self._stream(match_id)
        if match_id not in self.watched:
            self.watched.add(match_id)
            await self.reader.wake()
        # The copy may have been reloaded while waking the reader: hand out the current one.
        return self._current(match_id).log

    def unwatch(self, match_id: str) -> None:
        self.watched.discard(match_id)

    # Reporters: name -> token hash, and the reverse index for sign-in.

    async def add_reporter(self, name: str, token_hash: str) -> None:
        key = f"{self.prefix}:reporters"
        added = await self._call(self.client.hsetnx(key, name, token_hash))
        if not added:
            raise Conflict(f"reporter {name} exists", "name")
        await self._call(self.client.hset(f"{self.prefix}:reporter-tokens", token_hash, name))

    async def reporters(self) -> list[str]:
        names = await self._call(self.client.hkeys(f"{self.prefix}:reporters"), "nothing was read")
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
        name = await self._call(
            self.client.hget(f"{self.prefix}:reporter-tokens", token_hash), "nothing was read"
        )
        return None if name is None else str(name.decode())
