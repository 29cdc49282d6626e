"""Real parts for the tests: a redis-server and ticker servers on free ports, started here."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(
    port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


@dataclass
class RedisServer:
    """A redis-server of the suite's own; `kill()` and `start()` simulate an outage."""

    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not on PATH: run scripts/test, which installs it")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port, proc=self.proc)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart by using their own match ids."""
    with tempfile.TemporaryDirectory(prefix="ticker-redis-") as tmp:
        server = RedisServer(free_port(), Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    if redis_server.proc is None:
        redis_server.start()
    return redis_server.url


@dataclass
class TickerServer:
    """`ticker serve` in a subprocess on a free port."""

    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "ticker", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), *self.args]  # fmt: skip
        if self.log_path is None:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
        else:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log, cwd=ROOT)
        wait_port(self.port, proc=self.proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("server never became healthy")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update(TICKER_ADMIN_TOKEN=ADMIN_TOKEN, TICKER_LOG_LEVEL="warning")
    env.update(extra)
    return env


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[object]:
    """Factory: make_server(redis_url=None, args=[], env={}) -> a started TickerServer."""
    servers: list[TickerServer] = []

    def make(
        redis_url: str | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
    ) -> TickerServer:
        extra = dict(env or {})
        if redis_url:
            extra["TICKER_REDIS_URL"] = redis_url
        else:
            extra.setdefault("TICKER_DATA_DIR", str(data_dir or tmp_path / "data"))
        server = TickerServer(
            _env(**extra), list(args or []), log_path=tmp_path / f"server{len(servers)}.log"
        )
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(params=["embedded", "redis"])
def server(request: pytest.FixtureRequest, make_server, redis_server: RedisServer) -> TickerServer:  # type: ignore[no-untyped-def]
    """A started ticker server, once per engine."""
    if request.param == "redis":
        if redis_server.proc is None:
            redis_server.start()
        return make_server(redis_url=redis_server.url)  # type: ignore[no-any-return]
    return make_server()  # type: ignore[no-any-return]


_ids = iter(range(1_000_000))


@pytest.fixture
def match_id(request: pytest.FixtureRequest) -> str:
    """A match id no other test uses (they share one Redis)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    return f"{base}-{os.getpid()}-{next(_ids)}"


def new_match(client: httpx.Client, match_id: str, home: str = "FC København",
              away: str = "SSC Napoli") -> dict:  # fmt: skip
    r = client.post("/api/matches", json={
        "id": match_id, "home": {"name": home, "short": home[:3].upper()},
        "away": {"name": away, "short": away[:3].upper()},
        "competition": "Champions League", "venue": "Parken",
        "kickoff": "2026-11-25T21:00:00+01:00"})  # fmt: skip
    assert r.status_code == 201, r.text
    return dict(r.json())
