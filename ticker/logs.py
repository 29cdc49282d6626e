"""Logging: one configuration for every process, and the start-up line naming engine and data.

The configuration is uvicorn's own (`log_config`), extended with the `ticker` logger, so
uvicorn applies it in the server process and again in each `--workers` process.
"""

from __future__ import annotations

import copy
import importlib.metadata
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

from ticker.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def config(level: str) -> dict[str, Any]:
    """uvicorn's logging config plus `ticker.*` at `level`, with timestamps, to stderr."""
    cfg = copy.deepcopy(LOGGING_CONFIG)
    for formatter in cfg["formatters"].values():
        formatter["fmt"] = "%(asctime)s " + formatter["fmt"]  # uvicorn's lines get a time too
    cfg["formatters"]["ticker"] = {"format": FORMAT}
    cfg["handlers"]["ticker"] = {
        "class": "logging.StreamHandler",
        "formatter": "ticker",
        "stream": "ext://sys.stderr",
    }
    cfg["loggers"]["ticker"] = {
        "handlers": ["ticker"],
        "level": LOG_LEVELS[level],
        "propagate": False,
    }
    return cfg


def describe(settings: Settings) -> str:
    """What this process runs on, for its start-up line; a Redis password never shows."""
    if settings.redis_sentinels:
        where = (
            f"engine=redis sentinels={settings.redis_sentinels} master={settings.redis_master}"
            f" min_replicas={settings.redis_min_replicas} prefix={settings.redis_prefix}"
        )
    elif settings.redis_url:
        where = f"engine=redis url={_masked(settings.redis_url)} prefix={settings.redis_prefix}"
    else:
        where = f"engine=embedded data={Path(settings.data_dir).resolve()}"
    return f"{where} ws={settings.ws} version={_version()}"


def _masked(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if colon else netloc
    query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _version() -> str:
    try:
        return importlib.metadata.version("ticker")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
