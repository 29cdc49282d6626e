"""create_app(settings): the ASGI app, its lifespan, CORS for reads and the error shape."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker import api, logs, pages
from ticker import settings as settings_mod
from ticker.api import JSONResponse
from ticker.auth import Auth
from ticker.engines import create_engine
from ticker.engines.base import StartupError
from ticker.errors import TickerError
from ticker.hub import Hub
from ticker.kv import create_store
from ticker.limits import Limits, StreamSlots, create_limiter
from ticker.settings import Settings
from ticker.streams import sse_endpoint, websocket_direct, websocket_endpoint

log = logging.getLogger("ticker")

_READ_METHODS = {"GET", "HEAD"}
# Reads partner pages make: the API, streams, and the embed with the modules it imports.
_PUBLIC_PREFIXES = ("/api/matches", "/sse/", "/healthz", "/embed.js", "/static/")


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


async def _ticker_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TickerError)
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
    hub = Hub(engine)
    store = create_store(settings, engine)
    limits = Limits(create_limiter(store), settings)

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
        demo: asyncio.Task[Any] | None = None
        if settings.demo:
            from ticker import demo as demo_mod

            demo = asyncio.create_task(demo_mod.run(engine, settings.demo_speed))
        try:
            yield
        finally:
            keepalive.cancel()
            if demo is not None:
                demo.cancel()
            hub.close_all()
            await store.close()
            await engine.close()

    routes: list[BaseRoute] = [
        *api.routes,
        WebSocketRoute("/ws/matches/{match_id}", websocket_endpoint),
        Route("/sse/matches/{match_id}", sse_endpoint),
        *pages.routes,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(ReadOnlyCORS, origins=settings.cors_origins)],
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
