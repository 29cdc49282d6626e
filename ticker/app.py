"""create_app(settings): the ASGI app, its lifespan, CORS for reads and the error shape."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker import api, discovery, logs, metrics, pages, presence
from ticker import settings as settings_mod
from ticker.api import JSONResponse
from ticker.auth import Auth
from ticker.engines import create_engine
from ticker.engines.base import StartupError
from ticker.errors import EngineUnavailable, TickerError
from ticker.fastws import CLOSE_TIMEOUT
from ticker.hub import Hub
from ticker.kv import create_store
from ticker.limits import Limits, StreamSlots, create_limiter
from ticker.presence import Reporters, Viewers
from ticker.settings import Settings
from ticker.streams import (
    list_sse_endpoint,
    list_websocket_endpoint,
    sse_endpoint,
    websocket_direct,
    websocket_endpoint,
)

log = logging.getLogger("ticker")

_READ_METHODS = {"GET", "HEAD"}
# Reads partner pages make: the API and its document, streams, the embed with the modules it
# imports, oEmbed.
_PUBLIC_PREFIXES = (
    "/api/matches",
    "/api/openapi.json",
    "/sse/",
    "/healthz",
    "/embed.js",
    "/static/",
    "/oembed",
)


class ReadOnlyCORS:
    """CORS for the public reads (fans' embeds on partner sites); writes never get it."""

    def __init__(self, app: ASGIApp, origins: str) -> None:
        self.app = app
        self.any = origins.strip() == "*"
        self.origins = {o.strip() for o in origins.split(",") if o.strip()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)
        allowed = origin is not None and (self.any or origin in self.origins)
        method = scope["method"]
        if method == "OPTIONS" and allowed:
            wanted = next(
                (v for k, v in scope["headers"] if k == b"access-control-request-method"), b""
            )
            if wanted.decode("latin-1").upper() in _READ_METHODS:
                headers = {
                    "Access-Control-Allow-Origin": "*" if self.any else origin or "",
                    "Access-Control-Allow-Methods": "GET, HEAD",
                    "Access-Control-Allow-Headers": "Last-Event-ID, Cache-Control",
                    "Access-Control-Max-Age": "86400",
                    "Vary": "Origin",
                }
                await Response(status_code=204, headers=headers)(scope, receive, send)
                return
        if not allowed or method not in _READ_METHODS:
            await self.app(scope, receive, send)
            return
        value = b"*" if self.any else (origin or "").encode("latin-1")

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", value),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)


class DrainingHealth:
    """While draining, /healthz answers 503 at once, so proxies and orchestrators stop
    sending this server new fans (the route itself would still find storage healthy)."""

    def __init__(self, app: ASGIApp, hub: Hub) -> None:
        self.app = app
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hub.closing and scope["type"] == "http" and scope["path"] == "/healthz":
            exc = EngineUnavailable("draining: this server is shutting down")
            await JSONResponse(exc.body(), status_code=503)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class TickerApp(Starlette):
    """Starlette with the request counter outside everything, error pages included."""

    def build_middleware_stack(self) -> ASGIApp:
        return metrics.RequestCounter(super().build_middleware_stack())


async def metrics_endpoint(request: Request) -> Response:
    token: str = request.app.state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            body = {
                "error": {
                    "code": "unauthorized",
                    "message": "metrics need the metrics token: Authorization: Bearer TOKEN",
                    "field": "Authorization",
                }
            }
            return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    metrics.sample(request.app.state.hub)
    return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


def _drain_on_sigterm(hub: Hub, seconds: float) -> Callable[[], None]:
    """Take SIGTERM from the server (uvicorn) and drain before handing it back.

    uvicorn's own shutdown closes every connection at once and cuts what has not ended
    within its timeout. So on SIGTERM the hub starts draining first (/healthz 503, new
    streams refused, fans closed with 1012 spread over `seconds`, SSE streams ended
    cleanly) while HTTP requests go on; then the server's handler gets the signal and its
    shutdown finds only plain HTTP left. SIGINT, or a second SIGTERM, closes every fan at
    once and hands over straight away. Returns the undo, for the lifespan's end.
    """
    loop = asyncio.get_running_loop()
    wrapped: dict[int, Callable[[int, FrameType | None], Any]] = {}
    if threading.current_thread() is threading.main_thread():  # where signals can be set
        for signum in (signal.SIGTERM, signal.SIGINT):
            handler = signal.getsignal(signum)
            # Only over a server's handler (uvicorn's): a default one would kill the
            # process before anything drained.
            if callable(handler):
                wrapped[signum] = handler
    draining: list[asyncio.Task[None]] = []

    def forward(sig: int) -> None:
        wrapped[sig](sig, None)

    async def drain() -> None:
        log.info("SIGTERM: draining %d fans over %g s", hub.subscribers, seconds)
        try:
            await hub.drain(seconds)
            # Let the last closing handshakes finish (a fan that never answers is aborted
            # after CLOSE_TIMEOUT) and the SSE streams end.
            deadline = loop.time() + CLOSE_TIMEOUT + 1
            while hub.subscribers and loop.time() < deadline:  # noqa: ASYNC110 (a count)
                await asyncio.sleep(0.05)
        except Exception:  # the process must stop all the same
            log.exception("drain failed; shutting down now")
        forward(signal.SIGTERM)

    def act(sig: int) -> None:
        if sig == signal.SIGTERM and not draining:
            draining.append(loop.create_task(drain()))
            return
        for task in draining:
            task.cancel()
        hub.close_all()
        forward(sig)

    def on_signal(sig: int, frame: FrameType | None) -> None:
        # A Python signal handler runs between two bytecodes of the loop's thread:
        # hand the work to the loop rather than do it here.
        loop.call_soon_threadsafe(act, sig)

    for wrapped_sig in wrapped:
        signal.signal(wrapped_sig, on_signal)

    def undo() -> None:
        for signum, handler in wrapped.items():
            if signal.getsignal(signum) is on_signal:
                signal.signal(signum, handler)
        for task in draining:
            task.cancel()

    return undo


async def _ticker_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TickerError)
    if isinstance(exc, EngineUnavailable):  # the engine's, or the shared store's (kv)
        metrics.engine_error(exc)
    return JSONResponse(exc.body(), status_code=exc.status, headers=getattr(exc, "headers", None))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    body = {
        "error": {
            "code": codes.get(exc.status_code, "http_error"),
            "message": exc.detail,
            "field": None,
        }
    }
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client left mid-body (or the server closed on it, e.g. a 408): nobody to answer,
    # and nothing to log as an error. uvicorn drops this response.
    return Response(status_code=400)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {
        "error": {
            "code": "internal",
            "message": "internal error; it has been logged",
            "field": None,
        }
    }
    return JSONResponse(body, status_code=500)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or settings_mod.load()
    engine = create_engine(settings)
    metrics.meter(engine)
    hub = Hub(engine)
    store = create_store(settings, engine)
    limits = Limits(create_limiter(store), settings)
    # Presence shares the engine's Redis client; the embedded engine is one process: memory.
    redis_client = getattr(engine, "client", None) if settings.redis_url else None
    viewers = Viewers(hub, redis_client, settings.redis_prefix, settings.viewers_interval)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("%s", logs.describe(settings))  # once per process, workers included
        try:
            await engine.start(hub.on_ops, hub.on_reset)
        except StartupError as exc:
            # Nothing serves yet and nothing must: exit with one clear line, not the
            # lifespan's traceback (uvicorn has no quieter way to be told to stop).
            print(f"ticker: {exc}", file=sys.stderr, flush=True)
            os._exit(2)
        keepalive = asyncio.create_task(hub.keepalive(settings.ping_interval))
        counts = asyncio.create_task(viewers.run())
        sampler = asyncio.create_task(metrics.sampler(hub)) if metrics.multiprocess_dir() else None
        # A drain spreads fans over the other processes; the embedded engine is the only
        # one, so its fans are told at once and come back (with jitter) when it is up again.
        spread = settings.drain_seconds if settings.engine_name != "embedded" else 0.0
        undo_signals = _drain_on_sigterm(hub, spread)
        demo: asyncio.Task[Any] | None = None
        if settings.demo:
            from ticker import demo as demo_mod

            demo = asyncio.create_task(demo_mod.run(engine, settings.demo_speed))
        try:
            yield
        finally:
            undo_signals()
            keepalive.cancel()
            counts.cancel()
            if sampler is not None:
                sampler.cancel()
            metrics.leave()
            if demo is not None:
                demo.cancel()
            hub.close_all()
            await viewers.close()
            await store.close()
            await engine.close()

    routes: list[BaseRoute] = [
        *api.routes,
        *presence.routes,
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        WebSocketRoute("/ws/matches", list_websocket_endpoint),
        Route("/sse/matches", list_sse_endpoint),
        WebSocketRoute("/ws/matches/{match_id}", websocket_endpoint),
        Route("/sse/matches/{match_id}", sse_endpoint),
        *discovery.routes,
        *pages.routes,
    ]
    app = TickerApp(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(ReadOnlyCORS, origins=settings.cors_origins),
            Middleware(DrainingHealth, hub=hub),
        ],
        exception_handlers={
            TickerError: _ticker_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _internal_error,
        },
    )
    # Unknown paths: the trailing-slash redirect of pages.py, never built from the Host header.
    app.router.redirect_slashes = False
    app.router.default = pages.SlashRedirect(app.router)
    app.state.settings = settings
    app.state.engine = engine
    app.state.hub = hub
    app.state.viewers = viewers
    app.state.reporters = Reporters(redis_client, settings.redis_prefix)
    app.state.limits = limits
    # Open streams per client address (limits.address(scope)), for the stream endpoints.
    app.state.stream_slots = StreamSlots(settings.max_streams_per_address)
    # ticker.fastws serves the fans' route itself, past the middleware and the router (none
    # of them acts on a WebSocket): a connect costs no more than the endpoint's own work.
    app.state.direct_websocket = ("/ws/matches/", "match_id", websocket_direct)
    app.state.auth = Auth(engine, store, limits, settings)
    return app


def factory() -> Starlette:
    """For `uvicorn --factory ticker.app:factory` and worker processes: settings from env."""
    return create_app(settings_mod.load())
