"""A small shared key-value store with expiry: console sessions and the session secret.

Chosen like the engine: with Redis, keys under the prefix with Redis TTLs, shared by every
process (reusing the Redis engine's client when there is one); else one JSON file under
TICKER_DATA_DIR, kept in memory and rewritten atomically on each change, so a restart
keeps reporters signed in.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ticker.engines.redis_connect import UNREACHABLE, call

if TYPE_CHECKING:
    from ticker.engines.base import Engine
    from ticker.settings import Settings


class Store(Protocol):
    async def get(self, key: str) -> Any:
        """The value stored under `key`, or None when there is none or it expired."""
        ...

    async def put(self, key: str, value: Any, ttl: float | None = None) -> None: ...

    async def put_new(self, key: str, value: Any) -> Any:
        """Store `value` unless `key` has one; return the value that is stored now."""
        ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class FileStore:
    """In memory, and in one JSON file: `{key: [value, expires-at or null]}`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, list[Any]] | None = None

    def _entries(self) -> dict[str, list[Any]]:
        if self._data is None:
            try:
                loaded = orjson.loads(self.path.read_bytes())
            except (FileNotFoundError, orjson.JSONDecodeError):
                loaded = {}  # never written (or not by us): start empty
            self._data = loaded if isinstance(loaded, dict) else {}
        return self._data

    def _save(self) -> None:
        data = self._entries()
        now = time.time()
        for key in [k for k, (_, exp) in data.items() if exp is not None and exp <= now]:
            del data[key]  # expired entries go with each save: the file stays small
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        # 0600: the file holds the session secret.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, orjson.dumps(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    async def get(self, key: str) -> Any:
        entry = self._entries().get(key)
        if entry is None or (entry[1] is not None and entry[1] <= time.time()):
            return None
        return entry[0]

    async def put(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._entries()[key] = [value, None if ttl is None else time.time() + ttl]
        self._save()

    async def put_new(self, key: str, value: Any) -> Any:
        current = await self.get(key)
        if current is not None:
            return current
        await self.put(key, value)
        return value

    async def delete(self, key: str) -> None:
        if self._entries().pop(key, None) is not None:
            self._save()

    async def close(self) -> None:
        pass


class RedisStore:
    """Keys `PREFIX:kv:KEY` holding JSON, with Redis's own expiry."""

    def __init__(self, client: Any, prefix: str, owned: bool) -> None:
        self.client = client
        self.prefix = prefix
        self.owned = owned

    def _key(self, key: str) -> str:
        return f"{self.prefix}:kv:{key}"

    async def get(self, key: str) -> Any:
        raw = await call(self.client.get(self._key(key)))
        return None if raw is None else orjson.loads(raw)

    async def put(self, key: str, value: Any, ttl: float | None = None) -> None:
        px = None if ttl is None else max(1, int(ttl * 1000))
        await call(self.client.set(self._key(key), orjson.dumps(value), px=px))

    async def put_new(self, key: str, value: Any) -> Any:
        # SET NX then GET: of processes racing at first start, every one gets the winner's.
        await call(self.client.set(self._key(key), orjson.dumps(value), nx=True))
        return await self.get(key)

    async def delete(self, key: str) -> None:
        await call(self.client.delete(self._key(key)))

    async def close(self) -> None:
        if self.owned:
            with contextlib.suppress(*UNREACHABLE):
                await self.client.aclose()


def create_store(settings: Settings, engine: Engine) -> Store:
    if settings.engine_name != "redis":
        return FileStore(Path(settings.data_dir) / "kv.json")
    client = getattr(engine, "client", None)
    if client is not None:
        return RedisStore(client, settings.redis_prefix, owned=False)
    from ticker.engines.redis_connect import Connector, Target

    target = Target(settings.redis_url, tuple(settings.sentinel_addresses), settings.redis_master)
    own = Connector(target).client(socket_timeout=5, retries=0)
    return RedisStore(own, settings.redis_prefix, owned=True)
