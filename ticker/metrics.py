"""Prometheus metrics: what the server counts, and the text `GET /metrics` answers.

Under `--workers N`, `ticker serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory
before the workers start: prometheus-client then keeps every worker's values in files
there, and whichever worker answers a scrape adds them all up, so the numbers describe the
whole server. Its limits shape what is here: no custom collectors or `set_function` (they
would show only the answering worker), so the subscriber gauge is a `livesum` gauge each
worker sets from its hub (at a scrape, and every second), and the files of workers that
died are dropped at the next scrape.

The hot path pays per op, never per fan: deliveries grow by the group's size once per op.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client import generate_latest as _generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker.errors import EngineUnavailable

if TYPE_CHECKING:
    from ticker.engines.base import Engine
    from ticker.hub import Hub

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
SAMPLE_INTERVAL = 1.0  # seconds between a worker's subscriber samples (multiprocess mode)

SUBSCRIBERS = Gauge(
    "ticker_subscribers",
    "Fans connected now, by transport.",
    ["transport"],
    multiprocess_mode="livesum",
)
DELIVERIES = Counter("ticker_deliveries", "Live ops handed to fans (one per op per fan).")
OPS_APPENDED = Counter("ticker_ops_appended", "Ops appended to match logs, by op kind.", ["kind"])
PUBLISH_TO_SEND = Histogram(
    "ticker_publish_to_send_seconds",
    "From an op acknowledged (embedded) or read from Redis to its write to every fan's socket.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SLOW_CLOSES = Counter("ticker_slow_closes", "Fans closed for falling behind (4408).")
ENGINE_ERRORS = Counter(
    "ticker_engine_errors",
    "Storage failures (unreachable or read-only) met by requests and stream joins, once each.",
)
HTTP_REQUESTS = Counter(
    "ticker_http_requests", "HTTP responses, by route template and status.", ["route", "status"]
)
_PID_FILE = re.compile(r"gauge_live\w*_(\d+)\.db$")


def sent(fans: int, started: float) -> None:
    """One op written to `fans` fans; `started` is when it reached the hub (perf_counter)."""
    DELIVERIES.inc(fans)
    PUBLISH_TO_SEND.observe(time.perf_counter() - started)


def engine_error(exc: EngineUnavailable) -> None:
    """Count a storage failure once, however many layers it passes (an append failing
    inside its own `log` call, then the HTTP error handler)."""
    if not getattr(exc, "counted", False):
        exc.counted = True  # type: ignore[attr-defined]
        ENGINE_ERRORS.inc()


def sample(hub: Hub) -> None:
    """Set this process's subscriber gauge from the hub's groups."""
    ws = sse = 0
    for group in hub.groups.values():
        ws += len(group.raw)
        for sink in group.sinks:
            if getattr(sink, "transport", "sse") == "ws":
                ws += 1
            else:
                sse += 1
    SUBSCRIBERS.labels("ws").set(ws)
    SUBSCRIBERS.labels("sse").set(sse)


async def sampler(hub: Hub) -> None:
    """Keep this worker's share of the gauge fresh for scrapes other workers answer."""
    while True:
        sample(hub)
        await asyncio.sleep(SAMPLE_INTERVAL)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR) or None


def exposition() -> bytes:
    """The text format of every metric: of all workers when there are several."""
    path = multiprocess_dir()
    if path is None:
        return bytes(_generate_latest(REGISTRY))
    _forget_dead(path)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)
    return bytes(_generate_latest(registry))


def _forget_dead(path: str) -> None:
    # A worker killed outright left its live gauge behind; the supervisor has no hook to
    # tell us, so whoever scrapes checks. Counters stay: what a dead worker did, it did.
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        m = _PID_FILE.search(name)
        if m and not _alive(int(m.group(1))):
            multiprocess.mark_process_dead(int(m.group(1)), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leave() -> None:
    """This worker is stopping: its fans no longer count."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(os.getpid(), path)


def prepare_multiprocess_dir() -> str | None:
    """Before workers start: an empty directory for their metric files, in the environment
    they inherit. Returns the directory to remove at exit when it was made here."""
    given = multiprocess_dir()
    if given is not None:  # the operator's: emptied, not removed
        os.makedirs(given, exist_ok=True)
        for name in glob.glob(os.path.join(given, "*.db")):
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)
        return None
    made = tempfile.mkdtemp(prefix="ticker-metrics-")
    os.environ[MULTIPROC_DIR] = made
    return made


def meter(engine: Engine) -> None:
    """Count appends by kind, and storage failures, at the one door every write and read
    goes through: the engine's methods (wrapped on this instance only)."""

    def failures(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except EngineUnavailable as exc:
                engine_error(exc)
                raise

        return call

    append, create_match = failures(engine.append), failures(engine.create_match)

    async def counted_append(*args: Any, **kwargs: Any) -> Any:
        op, created = await append(*args, **kwargs)
        if created:  # a repeated Idempotency-Key appends nothing
            OPS_APPENDED.labels(op.data["op"]).inc()
        return op, created

    async def counted_create(*args: Any, **kwargs: Any) -> Any:
        op = await create_match(*args, **kwargs)
        OPS_APPENDED.labels(op.data["op"]).inc()
        return op

    setattr(engine, "append", counted_append)  # noqa: B010
    setattr(engine, "create_match", counted_create)  # noqa: B010
    for name in ("log", "watch"):
        setattr(engine, name, failures(getattr(engine, name)))


class RequestCounter:
    """Counts every HTTP response by its route's template (`/api/matches/{match_id}`), never
    the raw path, so the label set stays bounded. Outermost, so 500s count too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The router put the matched route in the scope; none: no route matched.
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                HTTP_REQUESTS.labels(route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)
