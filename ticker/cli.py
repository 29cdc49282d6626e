"""`ticker serve` and the admin commands (`ticker reporter add|list|revoke`)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import logging.config
import os
import shutil
import sys
from collections.abc import Sequence

from ticker import logs
from ticker import settings as settings_mod
from ticker.settings import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticker", description="Live football match ticker.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (settings from TICKER_* env vars)")
    serve.add_argument("--host", help="address to bind (TICKER_HOST, default 127.0.0.1)")
    serve.add_argument("--port", help="port to bind (TICKER_PORT, default 8000)")
    serve.add_argument("--workers", help="processes; more than 1 needs TICKER_REDIS_URL")
    serve.add_argument("--redis-url", help="use Redis streams (TICKER_REDIS_URL)")
    serve.add_argument("--data-dir", help="embedded engine's directory (TICKER_DATA_DIR)")
    serve.add_argument(
        "--demo", action="store_const", const="true", help="create a demo match and replay it live"
    )
    serve.add_argument("--demo-speed", help="demo match minutes per wall minute (default 60)")
    serve.add_argument("--log-level", help="critical|error|warning|info|debug")

    reporter = sub.add_parser("reporter", help="manage reporters (their tokens are shown once)")
    rsub = reporter.add_subparsers(dest="action", required=True)
    add = rsub.add_parser("add", help="create a reporter and print its token")
    add.add_argument("name")
    rsub.add_parser("list", help="list reporters")
    revoke = rsub.add_parser("revoke", help="revoke a reporter's token")
    revoke.add_argument("name")
    return parser


def serve(settings: Settings) -> None:
    import uvicorn

    from ticker.httpproto import FrontProtocol

    if settings.workers > 1 and settings.engine_name != "redis":
        raise SettingsError(
            "--workers above 1 needs TICKER_REDIS_URL (or TICKER_REDIS_SENTINELS): "
            "the embedded engine is one process"
        )
    config: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        # A partial, not a class made here: worker processes get it pickled by reference.
        "http": functools.partial(
            FrontProtocol,
            head_timeout=settings.head_timeout,
            body_timeout=settings.body_timeout,
        ),
        "log_level": settings.log_level,
        # Applied by uvicorn in this process and again in every worker process.
        "log_config": logs.config(settings.log_level, settings.log_format),
        "ws": "ticker.fastws:TickerWebSocketProtocol"
        if settings.ws == "fast"
        else "websockets-sansio",
        "ws_per_message_deflate": False,
        "ws_max_size": 65536,
        "proxy_headers": False,  # X-Forwarded-For: ticker.limits, trusted proxies only
        "server_header": False,
        # On SIGTERM the app drains first (fans closed over TICKER_DRAIN_SECONDS, SSE
        # ended) and only then lets uvicorn shut down: what is left by then is plain HTTP
        # requests finishing, and closing handshakes (bounded by fastws.CLOSE_TIMEOUT).
        "timeout_graceful_shutdown": 5,
    }
    if settings.workers > 1:
        # Workers are fresh processes: they read the same settings from the environment.
        for field in dataclasses.fields(settings):
            value = getattr(settings, field.name)
            text = str(value).lower() if isinstance(value, bool) else str(value)
            os.environ[f"TICKER_{field.name.upper()}"] = text
        from ticker import metrics

        # Their metrics meet in files there, so any worker's /metrics tells the whole.
        made = metrics.prepare_multiprocess_dir()
        try:
            uvicorn.run("ticker.app:factory", factory=True, workers=settings.workers, **config)  # type: ignore[arg-type]
        finally:
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
    else:
        from ticker.app import create_app

        uvicorn.run(create_app(settings), **config)  # type: ignore[arg-type]


async def _reporter(settings: Settings, action: str, name: str | None) -> int:
    from ticker.auth import new_token, token_hash
    from ticker.engines import create_engine
    from ticker.errors import TickerError

    engine = create_engine(settings)
    try:
        if action == "add":
            assert name is not None
            token = new_token()
            await engine.add_reporter(name, token_hash(token))
            print(f"reporter {name} created; token (shown once):\n{token}")
        elif action == "list":
            for reporter in await engine.reporters():
                print(reporter)
        elif action == "revoke":
            assert name is not None
            if not await engine.revoke_reporter(name):
                print(f"ticker: no reporter named {name!r}", file=sys.stderr)
                return 1
            print(f"reporter {name} revoked")
    except TickerError as exc:
        print(f"ticker: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await engine.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            settings = settings_mod.load(
                host=args.host,
                port=args.port,
                workers=args.workers,
                redis_url=args.redis_url,
                data_dir=args.data_dir,
                demo=args.demo,
                demo_speed=args.demo_speed,
                log_level=args.log_level,
            )
            serve(settings)
            return 0
        settings = settings_mod.load()
        logging.config.dictConfig(logs.config(settings.log_level, settings.log_format))
        if args.action == "add" and not _valid_name(args.name):
            print("ticker: a reporter name is 1-40 of a-z, 0-9, '-', '_', '.'", file=sys.stderr)
            return 2
        return asyncio.run(_reporter(settings, args.action, getattr(args, "name", None)))
    except SettingsError as exc:
        print(f"ticker: {exc}", file=sys.stderr)
        return 2


def _valid_name(name: str) -> bool:
    return 1 <= len(name) <= 40 and set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
