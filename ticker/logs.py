"""Logging: one configuration for every process, and the start-up line naming engine and data.

The configuration is uvicorn's own (`log_config`), extended with the `ticker` logger, so
uvicorn applies it in the server process and again in each `--workers` process. With
`TICKER_LOG_FORMAT=json` every line is one JSON object; access lines carry their parts
(client, method, path, status) as fields, for log pipelines to index.
"""

from __future__ import annotations

import copy
import importlib.metadata
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

from ticker.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, and the message, or
    for uvicorn's access lines their fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, http_version, status = args
            out.update(
                client=client, method=method, path=path, http_version=http_version, status=status
            )
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def config(level: str, fmt: str = "text") -> dict[str, Any]:
    """uvicorn's logging config plus `ticker.*` at `level`, with timestamps, to stderr;
    `fmt` "json": one JSON object per line for every logger."""
    cfg = copy.deepcopy(LOGGING_CONFIG)
    for formatter in cfg["formatters"].values():
        formatter["fmt"] = "%(asctime)s " + formatter["fmt"]  # uvicorn's lines get a time too
    cfg["formatters"]["ticker"] = {"format": FORMAT}
    if fmt == "json":
        for name in cfg["formatters"]:
            cfg["formatters"][name] = {"()": JSONFormatter}
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
