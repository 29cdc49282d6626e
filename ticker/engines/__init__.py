"""Storage engines behind one protocol (see base.py); chosen by settings, imported lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ticker.engines.base import Engine
    from ticker.settings import Settings


def create_engine(settings: Settings) -> Engine:
    if settings.engine_name == "redis":
        from ticker.engines.redis import RedisEngine

        return RedisEngine(
            settings.redis_url,
            prefix=settings.redis_prefix,
            sentinels=settings.sentinel_addresses,
            master=settings.redis_master,
            min_replicas=settings.redis_min_replicas,
            wait_ms=settings.redis_wait_ms,
        )
    from ticker.engines.embedded import EmbeddedEngine

    return EmbeddedEngine(settings.data_dir, fsync=settings.fsync)
