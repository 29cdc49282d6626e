"""Settings from TICKER_* environment variables; command-line flags override them."""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


class SettingsError(ValueError):
    """A setting has a value it cannot take; the message names the variable."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("expected a port number 0-65535")
    return value


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def _float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("expected a number above 0")
    return value


def _rate(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a number of at least 0 (0 turns the limit off)")
    return value


def _viewers_interval(raw: str) -> float:
    value = _float(raw)
    if value > 5:
        # Counts must be at most 15 s old: a process's key lives 15 s less one interval.
        raise ValueError("expected a number of seconds above 0, at most 5")
    return value


def _admin_token(raw: str) -> str:
    if raw and len(raw) < 24:
        raise ValueError("must be at least 24 characters (try: openssl rand -hex 32)")
    return raw


def _session_secret(raw: str) -> str:
    if raw and len(raw) < 32:
        raise ValueError("must be at least 32 characters (try: openssl rand -hex 32)")
    return raw


def _networks(raw: str) -> str:
    for part in raw.split(","):
        if part.strip():
            ipaddress.ip_network(part.strip(), strict=False)
    return raw


def _public_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    scheme, sep, rest = value.partition("://")
    if value and (scheme not in ("http", "https") or not sep or not rest or "/" in rest):
        raise ValueError("expected an origin like https://ticker.example.com")
    return value


def _logo_url(raw: str) -> str:
    value = raw.strip()
    scheme, _, rest = value.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0]
    if value and (
        scheme not in ("http", "https")
        or not host
        or len(value) > 2048
        or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        raise ValueError("expected an absolute http(s) URL like https://cdn.example.com/logo.png")
    return value


def _redis_url(raw: str) -> str:
    if raw and not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected a redis://, rediss:// or unix:// URL")
    return raw


def parse_sentinels(raw: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (an IPv6 host in brackets) as (host, port) pairs."""
    found = []
    for part in raw.split(","):
        host, sep, port = part.strip().rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise ValueError(f"expected host:port,host:port (got {part.strip()!r})")
        found.append((host, int(port)))
    return found


def _sentinels(raw: str) -> str:
    if raw.strip():
        parse_sentinels(raw)
    return raw.strip()


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected a whole number of at least 0")
    return value


def _ws(raw: str) -> str:
    if raw not in ("fast", "plain"):
        raise ValueError("expected fast or plain")
    return raw


def _seconds(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a number of seconds, at least 0")
    return value


def _log_format(raw: str) -> str:
    if raw not in ("text", "json"):
        raise ValueError("expected text or json")
    return raw


def _log_level(raw: str) -> str:
    value = raw.lower()
    if value not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise ValueError("expected one of critical, error, warning, info, debug, trace")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    redis_url: str = ""
    redis_prefix: str = "ticker"
    # Redis Sentinel, instead of a URL: sentinels' `host:port,...` and the master's name.
    redis_sentinels: str = ""
    redis_master: str = ""
    # Replicas that must confirm each write (WAIT) before it is answered 2xx, and how long
    # to wait for them (then 503). -1: 1 with Sentinel, else 0.
    redis_min_replicas: int = -1
    redis_wait_ms: int = 1000
    data_dir: str = "./ticker-data"
    fsync: bool = True
    admin_token: str = ""
    log_level: str = "info"
    # Bytes a fan's socket may have queued before it counts as too slow (closed with 4408).
    client_buffer: int = 1_048_576
    max_body: int = 65_536
    frame_ancestors: str = "*"
    cors_origins: str = "*"
    demo: bool = False
    demo_speed: float = 60.0
    secure_cookies: bool = False
    # "fast": the hub writes pre-made frames straight to fan sockets (ticker.fastws);
    # "plain": uvicorn's stock WebSocket protocol, the portable ASGI path.
    ws: str = "fast"
    # Seconds between keepalive pings to fans; a fan silent for one interval is closed.
    ping_interval: float = 20.0
    # Signs console session ids; empty: generated once and kept in the shared store.
    session_secret: str = ""
    # Seconds a console session lives unused, and at most in all.
    session_idle: float = 12 * 3600.0
    session_max_age: float = 14 * 86400.0
    # Proxies whose X-Forwarded-For is believed (IPs/CIDRs, comma-separated); none by default.
    trusted_proxies: str = ""
    # Writes per second per reporter token, sustained, and the burst above it; 0: no limit.
    write_rate: float = 5.0
    write_burst: int = 60
    # The origin absolute URLs are made with (partner snippets, redirects).
    public_url: str = ""
    # Open WebSocket/SSE streams per client address, per process.
    max_streams_per_address: int = 2000
    # Seconds a client has to send a whole request head (from connecting, or from the end
    # of the previous response), then its body (from the head): else 408 and close.
    head_timeout: float = 10.0
    body_timeout: float = 10.0
    # Seconds between viewer-count updates (publish, read the other processes', tell fans).
    viewers_interval: float = 5.0
    # On SIGTERM, fans are closed with 1012 spread evenly over this many seconds.
    drain_seconds: float = 10.0
    # Bearer token GET /metrics requires; empty: open.
    metrics_token: str = ""
    # "text": human lines; "json": one JSON object per line (access logs included).
    log_format: str = "text"
    # The fan page's JSON-LD `publisher` (an Organization): none unless a name is set.
    publisher_name: str = ""
    # Its logo, an absolute http(s) URL; needs publisher_name.
    publisher_logo: str = ""

    def __post_init__(self) -> None:
        if self.redis_url and self.redis_sentinels:
            raise SettingsError(
                "TICKER_REDIS_URL and TICKER_REDIS_SENTINELS are both set: use one "
                "(a URL for one Redis, or the sentinels with TICKER_REDIS_MASTER)"
            )
        if bool(self.redis_sentinels) != bool(self.redis_master):
            given, missing = (
                ("TICKER_REDIS_SENTINELS", "TICKER_REDIS_MASTER")
                if self.redis_sentinels
                else ("TICKER_REDIS_MASTER", "TICKER_REDIS_SENTINELS")
            )
            raise SettingsError(f"{given} is set but {missing} is not: Sentinel needs both")
        if self.redis_min_replicas == -1:
            # Frozen: the one place the resolved default is filled in.
            object.__setattr__(self, "redis_min_replicas", 1 if self.redis_sentinels else 0)

    @property
    def engine_name(self) -> str:
        return "redis" if self.redis_url or self.redis_sentinels else "embedded"

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return parse_sentinels(self.redis_sentinels) if self.redis_sentinels else []


_PARSERS: dict[str, Callable[[str], Any]] = {
    "port": _port,
    "workers": _positive,
    "redis_url": _redis_url,
    "redis_sentinels": _sentinels,
    "redis_min_replicas": _count,
    "redis_wait_ms": _positive,
    "fsync": _bool,
    "log_level": _log_level,
    "client_buffer": _positive,
    "max_body": _positive,
    "demo": _bool,
    "demo_speed": _float,
    "secure_cookies": _bool,
    "ws": _ws,
    "ping_interval": _float,
    "admin_token": _admin_token,
    "session_secret": _session_secret,
    "session_idle": _float,
    "session_max_age": _float,
    "trusted_proxies": _networks,
    "write_rate": _rate,
    "write_burst": _positive,
    "public_url": _public_url,
    "max_streams_per_address": _positive,
    "head_timeout": _float,
    "body_timeout": _float,
    "viewers_interval": _viewers_interval,
    "drain_seconds": _seconds,
    "log_format": _log_format,
    "publisher_name": str.strip,
    "publisher_logo": _logo_url,
}
# Never echoed in an error message.
_SECRETS = frozenset({"admin_token", "session_secret", "metrics_token"})


def variables() -> list[str]:
    """The TICKER_* variable of each setting, from the Settings fields."""
    return [f"TICKER_{f.name.upper()}" for f in fields(Settings)]


def _refuse_unknown(env: Mapping[str, str]) -> None:
    # A typo must not pass silently: TICKER_REDIS_ULR would leave each replica on its own
    # embedded engine.
    known = variables()
    for var in sorted(env):
        if var.startswith("TICKER_") and var not in known:
            # Compare the names after the prefix, which every variable shares.
            names = [k.removeprefix("TICKER_") for k in known]
            close = difflib.get_close_matches(var.removeprefix("TICKER_"), names, n=1)
            hint = f"; did you mean TICKER_{close[0]}?" if close else ""
            raise SettingsError(f"unknown setting {var}{hint}")


def load(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from `env` (default os.environ), then non-None `overrides` on top.

    A TICKER_* variable that is no setting is refused, like a bad value.
    """
    env = os.environ if env is None else env
    _refuse_unknown(env)
    values: dict[str, Any] = {}
    for f in fields(Settings):
        var = f"TICKER_{f.name.upper()}"
        if var in env:
            values[f.name] = _parse(var, f.name, env[var])
    settings = Settings(**values)
    given = {k: v for k, v in overrides.items() if v is not None}
    for name, value in given.items():
        if isinstance(value, str) and name in _PARSERS:
            given[name] = _parse(f"--{name.replace('_', '-')}", name, value)
    settings = replace(settings, **given)
    if settings.publisher_logo and not settings.publisher_name:
        raise SettingsError("TICKER_PUBLISHER_LOGO needs TICKER_PUBLISHER_NAME: whose logo is it?")
    return settings


def _parse(where: str, name: str, raw: str) -> Any:
    parse = _PARSERS.get(name, str)
    try:
        return parse(raw)
    except ValueError as exc:
        reason = str(exc) if parse is not int else "expected a whole number"
        if "invalid literal" in reason or "could not convert" in reason:
            reason = "expected a number"
        shown = "" if name in _SECRETS else f"={raw!r}"
        raise SettingsError(f"{where}{shown}: {reason}") from None
