"""The servers under test. Each one starts from a command, gets ready, and publishes events.

A target is only three verbs to the driver: `start` (a process on the server cores),
`setup` (returns the WebSocket path fans connect to) and `publish` (one event, returns its
seq). The ticker is one more target, reached through its real API.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from benchmarks import procs
from benchmarks.httpclient import Client
from benchmarks.workload import baseline_message, ticker_event

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADMIN_TOKEN = "bench-admin-token-" + uuid.uuid4().hex


@dataclass
class Context:
    """What every target may need: where to log, which cores, the shared Redis."""

    out: Path
    server_cpus: set[int] | None
    redis_url: str | None = None
    tmp: Path = field(default_factory=lambda: Path("/tmp"))
    own_pids: set[int] = field(default_factory=set)  # e.g. redis-server: not "other load"
    ticker_env: dict[str, str] = field(default_factory=dict)  # extra TICKER_* settings


class Target:
    name = ""
    description = ""

    def unavailable(self) -> str | None:
        """Why this target cannot run here, or None."""
        return None

    def prepare(self, ctx: Context) -> None:
        """One-off work before the first run (e.g. installing dependencies)."""

    def argv(self, port: int) -> list[str]:
        raise NotImplementedError

    def env(self, ctx: Context) -> dict[str, str]:
        return dict(os.environ)

    def start(self, ctx: Context, port: int, label: str) -> subprocess.Popen[bytes]:
        log = ctx.out / f"{label}.log"
        return procs.start(
            self.argv(port), cpus=ctx.server_cpus, log=log, env=self.env(ctx), cwd=ROOT
        )

    async def wait_ready(self, port: int, proc: subprocess.Popen[bytes], limit: float) -> None:
        client = Client("127.0.0.1", port)
        deadline = time.monotonic() + limit
        last = "no answer"
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode} ({last})")
                try:
                    status, body = await client.request("GET", "/healthz")
                    if status == 200:
                        return
                    last = f"/healthz answered {status} {body[:200]!r}"
                except OSError as exc:
                    last = repr(exc)
                await client.close()
                await asyncio.sleep(0.1)
        finally:
            await client.close()
        raise TimeoutError(f"not ready after {limit}s: {last}")

    def publisher(self, port: int) -> Client:
        return Client("127.0.0.1", port)

    async def setup(self, client: Client) -> str:
        return "/ws/matches/bench"

    def publish_request(self, index: int, ts_ns: int) -> tuple[str, bytes]:
        """(path, body) of the POST that publishes event `index`."""
        raise NotImplementedError

    def published(self, status: int, body: bytes, index: int) -> str:
        """The seq of the published event, from the POST's response."""
        raise NotImplementedError

    async def publish(self, client: Client, index: int, ts_ns: int) -> str:
        path, body = self.publish_request(index, ts_ns)
        status, answer = await client.request("POST", path, body)
        return self.published(status, answer, index)


class Baseline(Target):
    """A baseline server: broadcasts the body of `POST /publish` verbatim."""

    script: tuple[str, ...] = ()

    def argv(self, port: int) -> list[str]:
        return [*self.script, "--host", "127.0.0.1", "--port", str(port)]

    def publish_request(self, index: int, ts_ns: int) -> tuple[str, bytes]:
        return "/publish", baseline_message(index, ts_ns)

    def published(self, status: int, body: bytes, index: int) -> str:
        if status != 200:
            raise RuntimeError(f"POST /publish answered {status}: {body[:300]!r}")
        return str(index)


class RawUvloop(Baseline):
    name = "raw-uvloop"
    description = "bare uvloop Protocol, hand-made handshake, one pre-framed write per socket"
    script = (sys.executable, str(HERE / "raw_uvloop.py"))


class NaiveStarlette(Baseline):
    name = "naive-starlette"
    description = "Starlette + uvicorn, `await send_text()` per fan, per-message deflate off"
    script = (sys.executable, str(HERE / "naive_starlette.py"))


class NodeWs(Baseline):
    name = "node-ws"
    description = "Node `ws`, broadcast of one string to `wss.clients`"
    script = ("node", str(HERE / "node_ws" / "server.js"))

    def unavailable(self) -> str | None:
        if shutil.which("node") is None or shutil.which("npm") is None:
            return "node and npm are not on PATH"
        return None

    def prepare(self, ctx: Context) -> None:
        folder = HERE / "node_ws"
        if (folder / "node_modules" / "ws" / "package.json").exists():
            return
        verb = "ci" if (folder / "package-lock.json").exists() else "install"
        done = subprocess.run(
            ["npm", verb, "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            capture_output=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm {verb} failed: {done.stderr.decode()[-2000:]}")

    @staticmethod
    def ws_version() -> str | None:
        package = HERE / "node_ws" / "node_modules" / "ws" / "package.json"
        if not package.exists():
            return None
        return str(json.loads(package.read_text())["version"])


class Ticker(Target):
    """The product: events POSTed to the API, through the engine, to the hub, to the fans."""

    def __init__(self, name: str, engine: str, workers: int = 1) -> None:
        self.name = name
        self.engine = engine
        self.workers = workers
        more = f", --workers {workers}" if workers > 1 else ""
        self.description = f"`ticker serve`, {engine} engine{more}, full API -> hub path"
        self.match_id = ""

    def unavailable(self) -> str | None:
        if not (ROOT / "ticker" / "cli.py").exists() or not (ROOT / "ticker" / "app.py").exists():
            return "ticker/cli.py and ticker/app.py do not exist yet"
        if self.engine == "redis" and shutil.which("redis-server") is None:
            return "redis-server is not on PATH"
        return None

    def argv(self, port: int) -> list[str]:
        argv = [sys.executable, "-m", "ticker", "serve", "--host", "127.0.0.1", "--port", str(port)]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        return argv

    def env(self, ctx: Context) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
        env.update(ctx.ticker_env)
        env["TICKER_ADMIN_TOKEN"] = ADMIN_TOKEN
        # Every benchmark fan comes from 127.0.0.1: lift the per-address stream limit.
        env.setdefault("TICKER_MAX_STREAMS_PER_ADDRESS", "1000000")
        if self.engine == "redis":
            if ctx.redis_url is None:
                raise RuntimeError("the Redis engine needs the benchmark's redis-server")
            env["TICKER_REDIS_URL"] = ctx.redis_url
        else:
            data = ctx.tmp / f"embedded-{uuid.uuid4().hex[:8]}"
            data.mkdir(parents=True)
            env["TICKER_DATA_DIR"] = str(data)
        return env

    def publisher(self, port: int) -> Client:
        return Client("127.0.0.1", port, {"Authorization": f"Bearer {ADMIN_TOKEN}"})

    async def setup(self, client: Client) -> str:
        self.match_id = f"bench-{uuid.uuid4().hex[:12]}"
        match = {
            "id": self.match_id,
            "home": {"name": "Bench Home", "short": "BHO"},
            "away": {"name": "Bench Away", "short": "BAW"},
        }
        status, body = await client.request("POST", "/api/matches", orjson.dumps(match))
        if status != 201:
            raise RuntimeError(f"POST /api/matches answered {status}: {body[:300]!r}")
        return f"/ws/matches/{self.match_id}"

    def publish_request(self, index: int, ts_ns: int) -> tuple[str, bytes]:
        return f"/api/matches/{self.match_id}/events", ticker_event(index, ts_ns)

    def published(self, status: int, body: bytes, index: int) -> str:
        if status != 201:
            raise RuntimeError(f"POST event {index} answered {status}: {body[:300]!r}")
        return str(orjson.loads(body)["op"]["seq"])


ALL: dict[str, Target] = {
    t.name: t
    for t in (
        RawUvloop(),
        NodeWs(),
        NaiveStarlette(),
        Ticker("ticker-redis", "redis"),
        Ticker("ticker-embedded", "embedded"),
        Ticker("ticker-redis-2w", "redis", workers=2),
    )
}
