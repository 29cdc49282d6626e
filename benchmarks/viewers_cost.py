"""What viewer counts cost Redis: one ticker process, N idle WebSocket fans over M matches.

    python -m benchmarks.viewers_cost [--fans 10000] [--matches 50] [--seconds 30]

Starts its own redis-server and `ticker serve` (Redis engine) on free ports, opens the fans
(a tenth of them with `?viewers=1`), waits until the server counts them all, then reads
Redis `INFO commandstats` before and after `--seconds` and prints the calls per second of
each command: all of the process's Redis traffic while idle, the counts' part marked.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

from tests.conftest import free_port, wait_port

ADMIN = "bench-admin-token-0123456789abcdef"
# Commands the viewer counts send (the rest is the engine's reader and its checks).
KICKOFF = "2026-11-25T21:00:00+01:00"
VIEWERS = {"set", "sadd", "srem", "smembers", "mget"}


async def fan(port: int, path: str, opened: list[int], stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head[:80]
    opened[0] += 1
    read = asyncio.ensure_future(reader.read(1 << 20))  # frames are not parsed: idle fans
    while not stop.is_set():
        done, _ = await asyncio.wait({read}, timeout=1)
        if done:
            if not read.result():
                return
            read = asyncio.ensure_future(reader.read(1 << 20))
    read.cancel()
    writer.close()


async def open_fans(port: int, fans: int, matches: int, stop: asyncio.Event) -> list[int]:
    opened = [0]
    tasks = []
    for i in range(fans):
        query = "?viewers=1" if i % 10 == 0 else ""
        tasks.append(
            asyncio.ensure_future(fan(port, f"/ws/matches/m{i % matches}{query}", opened, stop))
        )
        if i % 200 == 199:
            await asyncio.sleep(0.05)  # do not storm the accept queue
    while opened[0] < fans:
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} fans failed: {failed[0].exception()!r}")
        await asyncio.sleep(0.2)
    return opened


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fans", type=int, default=10_000)
    ap.add_argument("--matches", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="viewers-cost-"))
    rport, tport = free_port(), free_port()
    procs = [subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(rport), "--bind",
         "127.0.0.1", "--save", "", "--dir", str(tmp)], stdout=subprocess.DEVNULL)]  # fmt: skip
    try:
        wait_port(rport, proc=procs[0])
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
        env.update(TICKER_REDIS_URL=f"redis://127.0.0.1:{rport}/0", TICKER_ADMIN_TOKEN=ADMIN,
                   TICKER_MAX_STREAMS_PER_ADDRESS="100000", TICKER_LOG_LEVEL="warning")  # fmt: skip
        serve = [sys.executable, "-m", "ticker", "serve", "--port", str(tport)]
        procs.append(subprocess.Popen(serve, env=env))
        wait_port(tport, proc=procs[1])
        base = f"http://127.0.0.1:{tport}"
        auth = {"Authorization": f"Bearer {ADMIN}"}
        for m in range(args.matches):
            body = {"id": f"m{m}", "home": {"name": "A", "short": "AAA"},
                    "away": {"name": "B", "short": "BBB"}, "kickoff": KICKOFF}  # fmt: skip
            assert httpx.post(base + "/api/matches", json=body, headers=auth).status_code == 201
        r = redis.Redis(port=rport)

        async def run() -> dict[str, int]:
            stop = asyncio.Event()
            started = time.monotonic()
            await open_fans(tport, args.fans, args.matches, stop)
            print(f"{args.fans} fans open in {time.monotonic() - started:.1f} s", flush=True)
            async with httpx.AsyncClient(base_url=base) as client:
                while (await client.get("/healthz")).json()["subscribers"] < args.fans:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
                await asyncio.sleep(6)  # a tick has published them
                viewers = (await client.get("/api/matches")).json()["matches"]
            print("viewers per match:", sorted({m["viewers"] for m in viewers}), flush=True)
            r.config_resetstat()
            await asyncio.sleep(args.seconds)
            stats = r.info("commandstats")
            stop.set()
            return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}

        calls = asyncio.run(run())
        print(f"\nRedis calls/s, one process, {args.fans} idle fans on {args.matches} matches")
        print(f"{'command':<12}{'calls/s':>10}  part")
        for name, n in sorted(calls.items(), key=lambda kv: -kv[1]):
            if name.startswith(("config", "info")):
                continue
            part = "viewers" if name in VIEWERS else "engine"
            print(f"{name:<12}{n / args.seconds:>10.2f}  {part}")
        ours = sum(n for k, n in calls.items() if k in VIEWERS)
        total = sum(n for k, n in calls.items() if not k.startswith(("config", "info")))
        print(f"{'viewers':<12}{ours / args.seconds:>10.2f}")
        print(f"{'all':<12}{total / args.seconds:>10.2f}")
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
