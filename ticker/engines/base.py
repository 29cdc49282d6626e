"""The Engine protocol: where match logs live, and how new ops reach the hub.

Two implementations: `embedded` (one process, files on local disk) and `redis` (one
stream per match, any number of processes). `tests/test_engine_contract.py` runs the
same suite against both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ticker.errors import Conflict
from ticker.log import MatchLog
from ticker.model import Op

OpsHandler = Callable[[str, list[Op]], None]
"""Called in the event loop with new ops of a watched match, in order, each exactly once."""

ResetHandler = Callable[[str, MatchLog | None], None]
"""Called in the event loop when a watched match's stored log is no longer the one this
process holds (storage lost ops, was restored from an older copy, or the match was made
again): with the log as storage now has it, which replaces the old one, or with None when
the match is gone from storage (it is no longer watched)."""

Builder = Callable[[MatchLog], Op]
"""Makes the op to append from the log as it is at the head (may be called again)."""


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A client's Idempotency-Key and a digest of the request it came with."""

    key: str
    digest: str


class Engine(Protocol):
    """Storage for match logs and reporters.

    Contract:
    - `append` is atomic: the op is built against the current head and stored only if
      the head has not moved (otherwise it is built again), so seqs strictly increase
      and state always follows from the log. With an `Idempotency`, the first append of
      a key on a match stores the op; every later append with that key returns the
      original op and `created=False`, storing nothing, even when racing; a reused key
      with a different digest raises `Conflict`.
    - A `MatchLog` handed out is current as of the call and is kept current for
      watched matches: each op, from any process, is applied to it and then passed to
      the handler given to `start`, exactly once and in order. Nothing is passed for
      matches that are not watched.
    - `watch` returns only once live delivery is set up: every op after the returned
      log's head will reach the handler. So a subscriber may read the log's history
      right after `watch` without a gap.
    - Storage is the truth, a process's copy only a cache: when storage lost ops or the
      match was made again, the copy is reloaded from storage (checked on every read and
      append, and for watched matches every few seconds) and handed to the reset handler;
      later ops build on, and are delivered from, the reloaded log. A match gone from
      storage raises `MatchNotFound` from then on (reset handler called with None).
    - With an `Idempotency` whose key was used before, `append` returns the original op
      without building a new one (so a repeated DELETE of a removed event still gets 200).
    - Unreachable or read-only storage raises `EngineUnavailable`, whose message names no
      address; an unknown match `MatchNotFound`.
    """

    name: str

    async def start(self, on_ops: OpsHandler, on_reset: ResetHandler | None = None) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> dict[str, Any]:
        """Facts for /healthz; raise EngineUnavailable when this process cannot serve
        (storage unreachable or read-only, or its reader of new ops down)."""

    async def create_match(self, op: Op) -> Op:
        """Start a new log with its first `match` op; Conflict if the id is taken."""

    async def log(self, match_id: str) -> MatchLog: ...

    async def logs(self) -> list[MatchLog]:
        """Every match's log, current."""

    async def append(
        self, match_id: str, build: Builder, idempotency: Idempotency | None = None
    ) -> tuple[Op, bool]: ...

    async def watch(self, match_id: str) -> MatchLog: ...

    def unwatch(self, match_id: str) -> None: ...

    async def add_reporter(self, name: str, token_hash: str) -> None:
        """Conflict if a reporter of that name exists."""

    async def reporters(self) -> list[str]: ...

    async def revoke_reporter(self, name: str) -> bool: ...

    async def reporter_for(self, token_hash: str) -> str | None: ...


def replayed(mlog: MatchLog, idempotency: Idempotency, seq: str, digest: str) -> Op:
    """The original op a repeated Idempotency-Key gets back."""
    if digest != idempotency.digest:
        raise Conflict(
            "this Idempotency-Key was already used with a different request", "Idempotency-Key"
        )
    return mlog.ops[mlog.index[seq]]


class StartupError(Exception):
    """The engine must not start: its storage needs a person (the message says where)."""
