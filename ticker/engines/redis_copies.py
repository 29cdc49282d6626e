"""This process's copies of match streams, kept true to Redis.

Each process keeps a copy of a match's stream (`Stream`: the MatchLog, the last entry id
read, the number of entries read and the match's epoch). Logs are never trimmed, so while
the copy is true the stream has exactly that many entries, ending at that id, under that
epoch. The append script checks all three; every read checks them too. When Redis lost
data (FLUSHALL, a lagging replica promoted, an older AOF restored) or the match was made
again, they differ: the copy is reloaded from Redis and the hub told (a reset), or, when
the stream is gone, dropped (the match is not found).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ticker.engines.base import OpsHandler, ResetHandler
from ticker.engines.redis_connect import call
from ticker.errors import BadRequest, MatchNotFound
from ticker.log import MatchLog
from ticker.model import Op, seq_key

log = logging.getLogger("ticker.engine")

BATCH = 100  # matches per pipelined read
_BAD_ENTRY = (KeyError, TypeError, ValueError, AttributeError, BadRequest)


@dataclass(eq=False, slots=True)
class Stream:
    """This process's copy of one match stream, and what identifies the stream it copies."""

    log: MatchLog
    epoch: str
    cursor: str = ""  # id of the last entry read, good or bad
    cursor_key: tuple[int, int] = (-1, -1)
    entries: int = 0  # entries read, good or bad: the stream's length while the copy is true


class Copies:
    """The copies, which matches are watched, and the handlers new ops and resets go to."""

    def __init__(self, client: Any, key: Callable[[str, str], str]) -> None:
        self.client = client
        self._key = key
        self.streams: dict[str, Stream] = {}
        self.watched: set[str] = set()
        self.on_ops: OpsHandler = lambda match_id, ops: None
        self.on_reset: ResetHandler = lambda match_id, mlog: None
        self._loading: dict[str, asyncio.Future[Stream | None]] = {}
        self.bad_entries = 0
        self._bad_seen: set[str] = set()

    def ingest(self, stream: Stream, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Apply entries read from Redis; new ops go to the hub, once, in order."""
        fresh: list[Op] = []
        for raw_id, fields in entries:
            entry_id = raw_id.decode()
            if self.advance(stream, entry_id):
                op = self._decode(stream, entry_id, fields)
                if op is not None:
                    fresh.append(op)
        self.deliver(stream, fresh)

    def advance(self, stream: Stream, entry_id: str) -> bool:
        """Move the copy's cursor to an entry; False if it was read already."""
        key = seq_key(entry_id)
        if key <= stream.cursor_key:
            return False
        stream.cursor, stream.cursor_key = entry_id, key
        stream.entries += 1
        return True

    def _decode(self, stream: Stream, entry_id: str, fields: dict[bytes, bytes]) -> Op | None:
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

    def deliver(self, stream: Stream, ops: list[Op]) -> None:
        match_id = stream.log.id
        if ops and match_id in self.watched and self.streams.get(match_id) is stream:
            self.on_ops(match_id, ops)

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
            got = await call(pipe.execute(), "nothing was read")
        return [
            (
                (got[i] or b"").decode(),
                int(got[i + 1]),
                got[i + 2][0][0].decode() if got[i + 2] else "",
                got[i + 3],
            )
            for i in range(0, len(got), 4)
        ]

    def new(self, match_id: str, epoch: str, entries: list[Any]) -> Stream:
        stream = Stream(MatchLog(match_id), epoch)
        self.ingest(stream, entries)
        return stream

    def _gone(self, match_id: str, stream: Stream | None) -> None:
        """The match's stream is gone from Redis: drop the copy, tell the hub."""
        if stream is None or self.streams.get(match_id) is not stream:
            return
        del self.streams[match_id]
        log.warning("match %s is gone from Redis; dropping this process's copy", match_id)
        if match_id in self.watched:
            self.watched.discard(match_id)
            self.on_reset(match_id, None)

    def replace(self, match_id: str, old: Stream | None, new: Stream) -> Stream:
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
                self.on_reset(match_id, new.log)
        return new

    async def sync(self, ids: list[str]) -> dict[str, Stream]:
        """Bring the copies of these matches up to Redis, in pipelines of BATCH matches.

        A copy the stream no longer continues (other epoch, entries lost) is reloaded and
        replaces it; a match whose stream is gone is dropped. Returns the matches found.
        """
        found: dict[str, Stream] = {}
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
                    found[match_id] = self.replace(
                        match_id, None, self.new(match_id, epoch, entries)
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
                        new = self.new(match_id, epoch, entries)
                        found[match_id] = self.replace(match_id, before[match_id], new)
        return found

    async def stream(self, match_id: str) -> Stream:
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

    async def _load_once(self, match_id: str) -> Stream | None:
        # One load per match however many requests ask at once (a reconnect storm).
        loading = self._loading.get(match_id)
        if loading is not None:
            return await asyncio.shield(loading)
        fut: asyncio.Future[Stream | None] = asyncio.get_running_loop().create_future()
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

    def current(self, match_id: str) -> Stream:
        stream = self.streams.get(match_id)
        if stream is None:
            raise MatchNotFound(f"no match {match_id}", "match_id")
        return stream
