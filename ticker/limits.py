"""Limits: who the client is, how fast a token may write, how often an address may fail.

Rates are GCRA token buckets (one "theoretical arrival time" per key): `burst` at once,
then `rate` per second. In one process they live in a dict capped in size, whose entries
drop out once their bucket is full again; across processes one Lua script in Redis keeps
each bucket, with a TTL, so every process counts alike.

The client address is the TCP peer, unless that peer is a trusted proxy: then it is the
right-most X-Forwarded-For entry that is not one (entries left of it are the client's own
say, and anyone can write those).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

from ticker.engines.redis_connect import call
from ticker.errors import RateLimited

if TYPE_CHECKING:
    from starlette.types import Scope

    from ticker.kv import Store
    from ticker.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Failed sign-ins or tokens per address: 10 at once, then one per 6 s (10 a minute).
FAILURE_BURST = 10
FAILURE_RATE = 10 / 60

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new = tat + interval
local over = new - now - tonumber(ARGV[2]) * interval
if over > 0 then return math.ceil(over) end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], string.format('%d', new), 'PX', new - now)
end
return 0
"""


class Limited(RateLimited):
    """429 with the seconds to wait in `Retry-After`."""

    def __init__(self, message: str, wait: float) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, math.ceil(wait)))}


class Limiter(Protocol):
    async def take(self, key: str, rate: float, burst: int, *, peek: bool = False) -> float:
        """Take one from `key`'s bucket: 0 if it was there, else seconds until it is.
        With `peek`, only tell, take nothing."""
        ...


class MemoryLimiter:
    """Buckets of one process, at most `cap` of them (least recently used go first)."""

    def __init__(self, cap: int = 10_000) -> None:
        self.cap = cap
        self._tat: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tat)

    async def take(self, key: str, rate: float, burst: int, *, peek: bool = False) -> float:
        now = time.monotonic()
        interval = 1.0 / rate
        new = max(self._tat.get(key, now), now) + interval
        over = new - now - burst * interval
        if over > 0:
            return over
        if not peek:
            self._tat[key] = new
            self._tat.move_to_end(key)
            # A bucket whose time has passed is full, the same as none: sweep those from the
            # old end as we go, and past the cap drop the least recently used anyway.
            while self._tat:
                oldest, tat = next(iter(self._tat.items()))
                if tat > now and len(self._tat) <= self.cap:
                    break
                del self._tat[oldest]
        return 0.0


class RedisLimiter:
    """Buckets in Redis, shared by every process: milliseconds of Redis's own clock."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.prefix = prefix
        self._script = client.register_script(_GCRA)

    async def take(self, key: str, rate: float, burst: int, *, peek: bool = False) -> float:
        interval = max(1, round(1000 / rate))
        keys, args = [f"{self.prefix}:limit:{key}"], [interval, burst, int(peek)]
        over = await call(self._script(keys=keys, args=args))
        return int(over) / 1000


def create_limiter(store: Store) -> Limiter:
    client = getattr(store, "client", None)
    if client is not None:
        return RedisLimiter(client, store.prefix)  # type: ignore[attr-defined]
    return MemoryLimiter()


def parse_networks(text: str) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    )


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(scope: Scope, trusted: tuple[Network, ...]) -> str:
    """The client's address, for every limit alike (see the module's docstring)."""
    client = scope.get("client")
    address = str(client[0]) if client else "unknown"
    if not trusted or not _trusted(address, trusted):  # (no parse when none is trusted)
        return address
    hops = [
        hop.strip()
        for name, value in scope["headers"]
        if name == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
    ]
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            # Our proxy writes only addresses: past garbage, nothing is its word.
            return address
        address = str(ip)
        if not any(ip in net for net in trusted):
            return address
    return address


def _bucket(address: str) -> str:
    """IPv6 clients get a /64 each, so one host cannot take a fresh address per guess."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return address


class Limits:
    """The server's limits, over one limiter: failed auth per address, writes per token."""

    def __init__(self, limiter: Limiter, settings: Settings) -> None:
        self.limiter = limiter
        self.trusted = parse_networks(settings.trusted_proxies)
        self.write_rate = settings.write_rate
        self.write_burst = settings.write_burst

    def address(self, scope: Scope) -> str:
        return client_address(scope, self.trusted)

    async def check_failures(self, address: str) -> None:
        """Before a token is looked at: an address over its failures learns nothing more."""
        key = "fail:" + _bucket(address)
        wait = await self.limiter.take(key, FAILURE_RATE, FAILURE_BURST, peek=True)
        if wait:
            raise Limited("too many failed sign-ins or tokens from your address; wait", wait)

    async def failed(self, address: str) -> None:
        await self.limiter.take("fail:" + _bucket(address), FAILURE_RATE, FAILURE_BURST)

    async def write(self, token_key: str) -> None:
        """Count one write of a token, before it is done."""
        if self.write_rate <= 0:
            return
        wait = await self.limiter.take("write:" + token_key, self.write_rate, self.write_burst)
        if wait:
            raise Limited("this token writes too fast; wait", wait)


class StreamSlots:
    """Open streams per client address in this process; an address holds an entry only
    while it has streams open, so memory follows connections, not history."""

    def __init__(self, per_address: int) -> None:
        self.per_address = per_address
        self._open: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._open)

    def acquire(self, address: str) -> bool:
        count = self._open.get(address, 0)
        if count >= self.per_address:
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)
