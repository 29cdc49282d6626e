"""Connecting to Redis: one URL, or a master found through Redis Sentinel.

With Sentinel, each new connection asks the sentinels where the master is
(redis-py's SentinelConnectionPool). A connection that finds its server demoted (READONLY)
drops itself and raises ConnectionError, which the client's Retry turns into a reconnect
to the new master; a dead master's connections fail and reconnect the same way. Idle
connections are dropped when a lookup finds the master moved (`follow_master`). Errors
reaching Redis become EngineUnavailable here (`call`), in words that name no address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ticker.errors import EngineUnavailable

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def unavailable(exc: BaseException, outcome: str) -> EngineUnavailable:
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


async def call(coro: Any, outcome: str = "nothing was written") -> Any:
    """Await a Redis command; unreachable or read-only Redis raises EngineUnavailable."""
    try:
        return await coro
    except (*UNREACHABLE, ReadOnlyError) as exc:
        raise unavailable(exc, outcome) from exc


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's master lookup with BlockingConnectionPool's wait for a free connection."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where Redis is: a URL, or sentinels and the name of the master they watch."""

    url: str = ""
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""

    def describe(self) -> str:
        where = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        return f"sentinels={where} master={self.master}" if self.sentinels else self.url


class Connector:
    """Makes the engine's clients for one Target; owns the Sentinel manager, if any."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sentinel: Sentinel | None = None
        if target.sentinels:
            # Sentinels answer at once or not at all: a dead one must not stall a lookup.
            self.sentinel = Sentinel(
                list(target.sentinels),
                sentinel_kwargs={"socket_timeout": 1, "socket_connect_timeout": 1},
            )

    def client(
        self, *, socket_timeout: float, retries: int, max_connections: int | None = None
    ) -> aioredis.Redis:
        """A client; with `max_connections`, a burst waits up to 5 s for a free one."""
        kwargs: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": 2,
            "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        }
        if max_connections is not None:
            kwargs.update(max_connections=max_connections, timeout=5)
        if self.sentinel is not None:
            pool = BlockingSentinelPool if max_connections is not None else SentinelConnectionPool
            return self.sentinel.master_for(
                self.target.master, connection_pool_class=pool, **kwargs
            )
        if max_connections is not None:
            pooled = BlockingConnectionPool.from_url(self.target.url, **kwargs)
            return aioredis.Redis.from_pool(pooled)
        return aioredis.Redis.from_url(self.target.url, **kwargs)

    async def close(self) -> None:
        if self.sentinel is not None:
            await self.sentinel.aclose()


async def follow_master(client: aioredis.Redis) -> None:
    """Ask the sentinels where the master is now; idle connections to an old one close.

    A demoted master still answers reads, so a connection that only reads (the XREAD
    reader) would otherwise stay on it. No-op without Sentinel.
    """
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        await pool.get_master_address()
