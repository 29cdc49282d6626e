"""What one Redis carries: M ticker processes, fans on N matches on each, W writes/s.

    python -m benchmarks.redis_load                   # M = 1, 2, 4; N = 50; W = 0, 10, 30
    python -m benchmarks.redis_load --m 2 4 --n 50 --writes 0 50 --seconds 10

Starts a redis-server (AOF, `appendfsync always`, as in docker-compose.yml) and M
`ticker serve` processes on it, creates N matches, connects one WebSocket fan per match to
every process (Redis's load does not depend on how many fans a process has: one XREAD
per process covers all its matches), then posts W events/s spread over the matches and
processes. Over `--seconds` it reads Redis's own CPU time (INFO cpu: used_cpu_sys +
used_cpu_user) and its commands (INFO commandstats deltas, commands run by scripts
included) and prints a table; "cmds per write over idle" subtracts the row with W = 0 of
the same M (the readers' periodic checks). Every process and file is its own and stopped
or removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
from websockets.asyncio.client import connect

from benchmarks.procs import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Row:
    m: int
    n: int
    writes: float  # posted per second, the target
    appended: float  # ops Redis appended per second (XADDs, in the append script)
    cpu: float  # Redis CPU, % of one core
    cmds: float  # Redis commands per second
    top: str  # the commands that make most of them
    deliveries: float  # ops all fans received per second


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[redis.Redis]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes", "--appendfsync", "always", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield client
    finally:
        client.close()
        stop(proc)


@contextlib.contextmanager
def tickers(m: int, redis_url: str, tmp: Path) -> Iterator[list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update(TICKER_REDIS_URL=redis_url, TICKER_ADMIN_TOKEN=TOKEN, TICKER_LOG_LEVEL="warning")
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for i in range(m):
            port = free_port()
            with open(tmp / f"ticker{i}.log", "ab") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "ticker", "serve", "--port", str(port)],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=log,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            deadline = time.monotonic() + 20
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ticker did not start; see {tmp}")
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            stop(proc)


@contextlib.asynccontextmanager
async def fans(urls: list[str], matches: list[str], received: list[int]) -> AsyncIterator[None]:
    async def fan(url: str) -> None:
        async with connect(url) as ws:
            async for _ in ws:
                received[0] += 1

    tasks = [
        asyncio.create_task(fan(u.replace("http", "ws") + f"/ws/matches/{m}"))
        for u in urls
        for m in matches
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def redis_counters(client: redis.Redis) -> tuple[float, dict[str, int]]:
    cpu = client.info("cpu")
    stats = client.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), calls


async def measure(
    client: redis.Redis, urls: list[str], n: int, writes: float, seconds: float, tag: str
) -> Row:
    matches = [f"load-{tag}-{i}" for i in range(n)]
    limits = httpx.Limits(max_connections=1000)
    async with httpx.AsyncClient(headers=AUTH, timeout=60, limits=limits) as http:
        for i, match_id in enumerate(matches):
            r = await http.post(f"{urls[0]}/api/matches", json={
                "id": match_id, "home": {"name": f"Home {i}", "short": "HOM"},
                "away": {"name": f"Away {i}", "short": "AWY"},
                "kickoff": "2026-11-25T21:00:00+01:00"})  # fmt: skip
            r.raise_for_status()
        received = [0]
        async with fans(urls, matches, received):
            # Every fan has its snapshot (so joining is over), then the readers settle.
            deadline = time.monotonic() + 60
            while received[0] < len(urls) * n:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{received[0]} of {len(urls) * n} fans joined")
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)

            async def post(k: int) -> None:
                match_id, url = matches[k % n], urls[k % len(urls)]
                body = {"type": "comment", "text": f"load {k}"}
                # A keep-alive connection the server closes as a post goes out is a
                # transport error: retry it, with a key so it lands once.
                headers = {"Idempotency-Key": f"load-{tag}-{k}"}
                for attempt in range(5):
                    try:
                        r = await http.post(
                            f"{url}/api/matches/{match_id}/events", json=body, headers=headers
                        )
                    except httpx.TransportError:
                        if attempt == 4:
                            raise
                        continue
                    r.raise_for_status()
                    return

            cpu0, calls0 = redis_counters(client)
            got0, start = received[0], time.monotonic()
            pending: set[asyncio.Task[None]] = set()
            k = 0
            while (now := time.monotonic()) < start + seconds:
                due = int((now - start) * writes)
                while k < due:
                    pending.add(asyncio.create_task(post(k)))
                    k += 1
                pending = {t for t in pending if not t.done()}
                await asyncio.sleep(0.005)
            elapsed = time.monotonic() - start
            cpu1, calls1 = redis_counters(client)
            got = received[0] - got0
            await asyncio.gather(*pending)
    delta = {c: calls1.get(c, 0) - calls0.get(c, 0) for c in calls1}
    delta = {c: d for c, d in delta.items() if d > 0 and c not in ("info",)}
    total = sum(delta.values())
    top = sorted(delta.items(), key=lambda cd: -cd[1])[:4]
    return Row(
        m=len(urls),
        n=n,
        writes=writes,
        appended=delta.get("xadd", 0) / elapsed,
        cpu=100 * (cpu1 - cpu0) / elapsed,
        cmds=total / elapsed,
        top=" ".join(f"{c}:{d / elapsed:.0f}" for c, d in top),
        deliveries=got / elapsed,
    )


def table(rows: list[Row]) -> str:
    heads = ["M processes", "N matches", "posted/s", "appended/s", "Redis CPU", "Redis cmds/s",
             "cmds per write over idle", "fan deliveries/s", "top commands/s"]  # fmt: skip
    lines = ["| " + " | ".join(heads) + " |", "|---" * len(heads) + "|"]
    idle = {r.m: r.cmds for r in rows if r.writes == 0}
    for r in rows:
        per = f"{(r.cmds - idle[r.m]) / r.appended:.1f}" if r.appended and r.m in idle else "–"
        lines.append(
            f"| {r.m} | {r.n} | {r.writes:g} | {r.appended:.1f} | {r.cpu:.1f}% | {r.cmds:.0f} "
            f"| {per} | {r.deliveries:.0f} | {r.top} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_load", description=__doc__)
    parser.add_argument("--m", type=int, nargs="+", default=[1, 2, 4], help="ticker processes")
    parser.add_argument("--n", type=int, default=50, help="matches, each watched on every process")
    parser.add_argument("--writes", type=float, nargs="+", default=[0, 10, 30], help="events/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per row")
    args = parser.parse_args(argv)
    if shutil.which("redis-server") is None:
        print("redis-server is not on PATH", file=sys.stderr)
        return 2
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ticker-redis-load-") as tmp:
        for m in args.m:
            with redis_server(Path(tmp)) as client:
                url = f"redis://127.0.0.1:{client.connection_pool.connection_kwargs['port']}/0"
                with tickers(m, url, Path(tmp)) as urls:
                    for w in args.writes:
                        tag = f"m{m}-w{int(w)}"
                        rows.append(
                            asyncio.run(measure(client, urls, args.n, w, args.seconds, tag))
                        )
                        print(table(rows).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
