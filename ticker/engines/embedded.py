"""The embedded engine: one process, each match an append-only JSON-lines file on local disk.

A line is written whole and fsynced before the op is applied or acknowledged, so an
accepted event survives `kill -9` (and a power cut, with `fsync` on). A write that fails
part-way (a full disk, the file size limit, an fsync error) is cut back off the file, which
ends at its last acknowledged line again, and answered 503. Start-up cuts only a torn last
line (a crash mid-write); any other bad line stops it, since cutting there would drop
acknowledged events.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
from pathlib import Path
from typing import Any

import orjson

from ticker.engines.base import (
    Builder,
    Idempotency,
    OpsHandler,
    ResetHandler,
    StartupError,
    replayed,
)
from ticker.errors import Conflict, EngineUnavailable, MatchNotFound, TickerError
from ticker.log import MatchLog
from ticker.model import MATCH_ID_RE, Op

log = logging.getLogger("ticker.engine")


class CorruptLog(StartupError):
    """A match file holds a bad line that is not a torn last write."""


def _fsync_dir(path: Path) -> None:
    """Make the directory's entries (a new file's name) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EmbeddedEngine:
    name = "embedded"

    def __init__(self, data_dir: str | Path, fsync: bool = True) -> None:
        self.dir = Path(data_dir)
        self.fsync = fsync
        self._logs: dict[str, MatchLog] = {}
        self._idem: dict[str, dict[str, tuple[str, str]]] = {}
        self._fds: dict[str, int] = {}
        # Each open file's length up to its last acknowledged line: a failed write is cut
        # back to it. A match whose cut failed is in `_unwritable` until a restart.
        self._sizes: dict[str, int] = {}
        self._unwritable: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._watched: set[str] = set()
        self._on_ops: OpsHandler = lambda match_id, ops: None
        self.closed = False
        self._reporters_path = self.dir / "reporters.json"
        self._reporters: dict[str, str] = {}
        self._reporters_mtime = -1.0

    async def start(self, on_ops: OpsHandler, on_reset: ResetHandler | None = None) -> None:
        # The files are the truth and only this process writes them: no reset ever comes.
        self._on_ops = on_ops
        matches = self.dir / "matches"
        matches.mkdir(parents=True, exist_ok=True)
        if self.fsync:
            _fsync_dir(self.dir)
            _fsync_dir(matches)
        for path in sorted(matches.glob("*.log")):
            if MATCH_ID_RE.match(path.stem):
                self._load(path)

    def _load(self, path: Path) -> None:
        match_id = path.stem
        mlog = MatchLog(match_id)
        idem: dict[str, tuple[str, str]] = {}
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1  # bytes after the last newline: a torn last write
        pos = 0
        for number, line in enumerate(data[:end].split(b"\n")[:-1], 1):
            try:
                record = orjson.loads(line)
                op = Op(record["o"]["seq"], record["o"])
                applied = mlog.apply(op)
            except (ValueError, KeyError, TypeError, AttributeError, TickerError) as exc:
                raise CorruptLog(
                    f"{path}: byte {pos}: line {number} is not a log record ({exc!r}); "
                    "not starting, as cutting it could drop acknowledged events: "
                    "repair the line or move the file away"
                ) from None
            if not applied:
                raise CorruptLog(
                    f"{path}: byte {pos}: line {number} has seq {op.seq}, not after the "
                    "line before; not starting: repair the line or move the file away"
                )
            if record.get("k"):
                idem[record["k"]] = (op.seq, record.get("h", ""))
            pos += len(line) + 1
        if end < len(data):
            log.warning("%s: cutting off %d bytes of a torn write", path, len(data) - end)
            with open(path, "r+b") as f:
                f.truncate(end)
                if self.fsync:
                    os.fsync(f.fileno())
        if mlog.ops:
            self._logs[match_id] = mlog
            self._idem[match_id] = idem

    async def close(self) -> None:
        self.closed = True
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._sizes.clear()

    async def ping(self) -> dict[str, Any]:
        if not os.access(self.dir / "matches", os.W_OK):
            raise EngineUnavailable("the data directory is not writable")
        # A match whose failed write could not be cut back refuses writes until a restart.
        return {"unwritable_matches": sorted(self._unwritable)} if self._unwritable else {}

    def _lock(self, match_id: str) -> asyncio.Lock:
        lock = self._locks.get(match_id)
        if lock is None:
            lock = self._locks[match_id] = asyncio.Lock()
        return lock

    def _path(self, match_id: str) -> Path:
        return self.dir / "matches" / f"{match_id}.log"

    def _open(self, match_id: str) -> int:
        path = self._path(match_id)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size == 0 and self.fsync:
                # A new file (or one whose creation failed): its name must be durable
                # before its first line is acknowledged.
                _fsync_dir(path.parent)
        except OSError:
            os.close(fd)
            raise
        self._fds[match_id] = fd
        self._sizes[match_id] = size
        return fd

    def _write(self, match_id: str, line: bytes) -> None:
        """Append `line` durably, or leave the file as it was and raise OSError."""
        fd = self._fds.get(match_id)
        if fd is None:
            fd = self._open(match_id)
        size = self._sizes[match_id]
        try:
            done = os.write(fd, line)
            while done < len(line):
                # Short: out of room or past the size limit; the next write says why.
                more = os.write(fd, line[done:])
                if more == 0:
                    raise OSError(errno.EIO, "the disk took no more bytes")
                done += more
            if self.fsync:
                os.fsync(fd)
        except OSError:
            # After a failed fsync the page cache may claim what the disk never got
            # ("fsyncgate"): do not trust it, cut the line off and make that durable.
            self._rollback(match_id, fd, size)
            raise
        self._sizes[match_id] = size + len(line)

    def _rollback(self, match_id: str, fd: int, size: int) -> None:
        try:
            os.ftruncate(fd, size)
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:
            # The file may end in a fragment: appending after it would hide every later
            # line from the next start-up. Stop writing here; start-up cuts a torn tail.
            self._unwritable[match_id] = (
                f"match {match_id} cannot be written: a failed write could not be cut back "
                "off its file; writes resume once the server is restarted and recovers it"
            )
            log.error(
                "%s: could not cut a failed write back to byte %d (%s); refusing writes "
                "to match %s until a restart",
                self._path(match_id),
                size,
                exc.strerror,
                match_id,
            )

    async def _store(self, match_id: str, op: Op, idem: Idempotency | None) -> None:
        unwritable = self._unwritable.get(match_id)
        if unwritable is not None:
            raise EngineUnavailable(unwritable)
        record = b'{"o":' + op.json
        if idem is not None:
            record += b',"k":' + orjson.dumps(idem.key) + b',"h":' + orjson.dumps(idem.digest)
        try:
            await asyncio.to_thread(self._write, match_id, record + b"}\n")
        except OSError as exc:
            log.warning("%s: write failed (%s)", self._path(match_id), exc)
            outcome = (
                "it may be on disk: retry with its Idempotency-Key once the server is restarted"
                if match_id in self._unwritable
                else "nothing was written"
            )
            raise EngineUnavailable(
                f"could not write the match log: {exc.strerror}; {outcome}"
            ) from exc

    async def create_match(self, op: Op) -> Op:
        return await asyncio.shield(self._create(op))  # see append

    async def _create(self, op: Op) -> Op:
        match_id = op.data["match"]["id"]
        async with self._lock(match_id):
            if match_id in self._logs:
                raise Conflict(f"match {match_id} exists", "id")
            await self._store(match_id, op, None)
            mlog = self._logs[match_id] = MatchLog(match_id)
            self._idem[match_id] = {}
            mlog.apply(op)
        return op

    async def log(self, match_id: str) -> MatchLog:
        try:
            return self._logs[match_id]
        except KeyError:
            raise MatchNotFound(f"no match {match_id}", "match_id") from None

    async def logs(self) -> list[MatchLog]:
        return list(self._logs.values())

    async def append(
        self, match_id: str, build: Builder, idempotency: Idempotency | None = None
    ) -> tuple[Op, bool]:
        mlog = await self.log(match_id)
        # Once the line may be on disk, the op must be applied too, or the next op would
        # be built on a stale head: a cancelled request (shutdown) must not cut in between.
        return await asyncio.shield(self._append(mlog, build, idempotency))

    async def _append(
        self, mlog: MatchLog, build: Builder, idempotency: Idempotency | None
    ) -> tuple[Op, bool]:
        match_id = mlog.id
        async with self._lock(match_id):
            if idempotency is not None:
                seen = self._idem[match_id].get(idempotency.key)
                if seen is not None:
                    return replayed(mlog, idempotency, *seen), False
            op = build(mlog)
            await self._store(match_id, op, idempotency)
            mlog.apply(op)
            if idempotency is not None:
                self._idem[match_id][idempotency.key] = (op.seq, idempotency.digest)
        if match_id in self._watched:
            self._on_ops(match_id, [op])
        return op, True

    async def watch(self, match_id: str) -> MatchLog:
        mlog = await self.log(match_id)
        self._watched.add(match_id)
        return mlog

    def unwatch(self, match_id: str) -> None:
        self._watched.discard(match_id)

    # Reporters: one small JSON file, re-read when another process (the CLI) changed it.

    def _read_reporters(self) -> dict[str, str]:
        try:
            mtime = self._reporters_path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if mtime != self._reporters_mtime:
            self._reporters = orjson.loads(self._reporters_path.read_bytes())
            self._reporters_mtime = mtime
        return self._reporters

    @contextlib.contextmanager
    def _reporters_locked(self):  # type: ignore[no-untyped-def]
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "reporters.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._reporters_mtime = -1.0
            reporters = dict(self._read_reporters())
            yield reporters
            tmp = self._reporters_path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(reporters))
            os.replace(tmp, self._reporters_path)

    async def add_reporter(self, name: str, token_hash: str) -> None:
        with self._reporters_locked() as reporters:
            if name in reporters:
                raise Conflict(f"reporter {name} exists", "name")
            reporters[name] = token_hash

    async def reporters(self) -> list[str]:
        return sorted(self._read_reporters())

    async def revoke_reporter(self, name: str) -> bool:
        with self._reporters_locked() as reporters:
            return reporters.pop(name, None) is not None

    async def reporter_for(self, token_hash: str) -> str | None:
        for name, stored in self._read_reporters().items():
            if stored == token_hash:
                return name
        return None
