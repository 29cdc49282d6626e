"""Graceful drain on SIGTERM, over real processes on one Redis: /healthz 503 at once, new
streams refused, fans closed with 1012 spread over TICKER_DRAIN_SECONDS and resumed on the
other server without a loss or a repeat, SSE ended cleanly, and the process gone by itself."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import ADMIN_TOKEN, TickerServer, free_port, new_match, wait_port
from tests.test_compose import REPLICAS, local_conf, needs_nginx, nginx_command

DRAIN = 4.0
POST_EVERY = 0.03


@dataclass
class Fan:
    """A fan that starts on server A and, when A closes it, resumes on B with `since`."""

    snapshot: str = ""
    ops: list[dict] = field(default_factory=list)
    close_code: int | None = None
    closed_at: float = 0.0
    resumed: bool = False

    @property
    def last(self) -> str:
        return self.ops[-1]["seq"] if self.ops else self.snapshot

    async def run(
        self, a: TickerServer, b: TickerServer, match_id: str, ready: asyncio.Queue
    ) -> None:
        async with connect(f"{a.ws_url}/ws/matches/{match_id}", open_timeout=30) as ws:
            snap = json.loads(await ws.recv())
            assert snap["op"] == "snapshot"
            self.snapshot = snap["seq"]
            ready.put_nowait(self)
            try:
                async for raw in ws:
                    self.ops.append(json.loads(raw))
            except ConnectionClosed:
                pass
            self.closed_at = time.monotonic()
            self.close_code = ws.close_code
        async with connect(f"{b.ws_url}/ws/matches/{match_id}?since={self.last}") as ws:
            self.resumed = True
            async for raw in ws:
                self.ops.append(json.loads(raw))


async def poster(b: TickerServer, match_id: str, stop: asyncio.Event, seqs: list[str]) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=b.url, headers=headers, timeout=10) as client:
        i = 0
        while not stop.is_set():
            r = await client.post(
                f"/api/matches/{match_id}/events", json={"type": "comment", "text": str(i)}
            )
            assert r.status_code == 201, r.text
            seqs.append(r.json()["op"]["seq"])
            i += 1
            await asyncio.sleep(POST_EVERY)


async def sse_fan(a: TickerServer, match_id: str, opened: asyncio.Event) -> tuple[float, int]:
    """Reads A's SSE stream to its end: (when it ended, data lines read). An unclean end
    (the connection cut mid-stream) raises here."""
    count = 0
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=30)) as client,
        client.stream("GET", f"{a.url}/sse/matches/{match_id}") as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                count += 1
                opened.set()
    return time.monotonic(), count


def histogram(times: list[float], start: float) -> dict[int, int]:
    return dict(sorted(Counter(int(t - start) for t in times).items()))


async def drain_scenario(a: TickerServer, b: TickerServer, match_id: str, fans_n: int) -> None:
    ready: asyncio.Queue[Fan] = asyncio.Queue()
    fans = [Fan() for _ in range(fans_n)]
    tasks = []
    for i, fan in enumerate(fans):
        tasks.append(asyncio.create_task(fan.run(a, b, match_id, ready)))
        if i % 50 == 49:
            await asyncio.sleep(0.1)  # connect in waves, not one burst
    for _ in fans:
        await asyncio.wait_for(ready.get(), 30)
    sse_opened = asyncio.Event()
    sse = asyncio.create_task(sse_fan(a, match_id, sse_opened))
    await asyncio.wait_for(sse_opened.wait(), 10)

    stop, seqs = asyncio.Event(), []
    posting = asyncio.create_task(poster(b, match_id, stop, seqs))
    await asyncio.sleep(0.5)

    assert a.proc is not None
    term_at = time.monotonic()
    a.proc.send_signal(signal.SIGTERM)

    async with httpx.AsyncClient(timeout=2) as client:
        # /healthz answers 503 within a second of the signal.
        while True:
            r = await client.get(f"{a.url}/healthz")
            if r.status_code == 503:
                break
            assert time.monotonic() - term_at < 1.0, "A still healthy 1 s after SIGTERM"
            await asyncio.sleep(0.02)
        health_after = time.monotonic() - term_at
        assert "draining" in r.json()["error"]["message"]
        # New streams are refused before the upgrade or the stream.
        r = await client.get(f"{a.url}/sse/matches/{match_id}")
        assert r.status_code == 503 and "draining" in r.json()["error"]["message"]
        # Writes are not: a reporter on A still gets its events in while A drains.
        r = await client.post(
            f"{a.url}/api/matches/{match_id}/events",
            json={"type": "comment", "text": "through A, draining"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert r.status_code == 201, r.text
        through_a = r.json()["op"]["seq"]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{a.ws_url}/ws/matches/{match_id}"):
            pass
    assert refused.value.response.status_code == 503

    # Every fan is closed within the window and resumes on B.
    deadline = time.monotonic() + DRAIN + 10
    while not all(f.resumed for f in fans) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert all(f.resumed for f in fans), sum(f.resumed for f in fans)
    sse_end, sse_lines = await asyncio.wait_for(sse, DRAIN + 5)  # ended without an error
    await asyncio.sleep(0.3)
    stop.set()
    await posting

    exited = await asyncio.to_thread(a.proc.wait, DRAIN + 8)
    exit_after = time.monotonic() - term_at
    a.proc = None

    # Every fan got exactly the log's ops after its snapshot, across the reconnect.
    deadline = time.monotonic() + 15
    while any(f.last != seqs[-1] for f in fans) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    async with httpx.AsyncClient(base_url=b.url) as client:  # B: A is gone
        log_ops = (await client.get(f"/api/matches/{match_id}/ops")).json()["ops"]
    seq_index = {op["seq"]: i for i, op in enumerate(log_ops)}
    for fan in fans:
        assert fan.ops == log_ops[seq_index[fan.snapshot] + 1 :]
    added = [op["seq"] for op in log_ops if op["op"] == "add"]
    assert sorted(added) == sorted([*seqs, through_a]) and len(set(added)) == len(added)

    codes = Counter(f.close_code for f in fans)
    assert codes == {1012: fans_n}, codes
    closes = sorted(f.closed_at for f in fans)
    spread = closes[-1] - closes[0]
    buckets = histogram(closes, closes[0])
    print(
        f"\nA: {a.args or ['1 worker']} ws={a.env['TICKER_WS']}: fans={fans_n} drain={DRAIN}s"
        f" posts={len(seqs)} healthz 503 after {health_after:.3f}s"
        f"\n1012 closes: first {closes[0] - term_at:.2f}s last {closes[-1] - term_at:.2f}s"
        f" after SIGTERM, spread {spread:.2f}s; per 1 s from the first: {buckets}"
        f"\nSSE ended cleanly {sse_end - term_at:.2f}s after SIGTERM ({sse_lines} data lines)"
        f"\nA exited with {exited} {exit_after:.2f}s after SIGTERM"
    )
    assert spread > 2.5
    assert max(buckets.values()) <= fans_n * 0.37
    assert sse_end - term_at < DRAIN + 2
    assert exit_after < DRAIN + 8


@pytest.mark.slow
@pytest.mark.parametrize(
    ("workers", "ws", "fans_n"), [(1, "fast", 300), (2, "fast", 100), (1, "plain", 100)]
)
def test_sigterm_drains_fans_to_the_other_server(
    workers: int, ws: str, fans_n: int, make_server, redis_url: str, match_id: str
) -> None:  # type: ignore[no-untyped-def]
    env = {"TICKER_DRAIN_SECONDS": str(DRAIN), "TICKER_WS": ws}
    args = ["--workers", str(workers)] if workers > 1 else []
    a = make_server(redis_url=redis_url, env=env, args=args)
    b = make_server(redis_url=redis_url, env=env)
    with b.admin() as admin:
        new_match(admin, match_id)
    asyncio.run(drain_scenario(a, b, match_id, fans_n))


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_web_client_resumes_after_1012_with_jitter() -> None:
    """connection.js: after a 1012 the fan resumes with `since` after a random 0-5 s delay
    (not at once, and not a backoff step); other closes keep the full-jitter backoff."""
    script = """
      const c = await import(process.argv[1]);
      const delays = [];
      globalThis.setTimeout = (fn, ms) => { delays.push(ms ?? 0); return 0; };
      globalThis.clearTimeout = () => {};
      const made = [];
      class FakeWS { constructor(url) { this.url = url; made.push(this); } close() {} }
      const out = {};
      for (const r of [0, 0.5, 0.999]) {
        const conn = new c.TickerConnection({origin: 'http://x', matchId: 'm', since: '1-5',
          WebSocket: FakeWS, EventSource: null, random: () => r, onMessage() {}});
        conn.start();
        const ws = made[made.length - 1];
        ws.onopen();
        ws.onmessage({data: JSON.stringify({op: 'add', seq: '1-6'})});
        delays.length = 0;
        ws.onclose({code: 1012});
        out[r] = {delay: delays.at(-1), attempt: conn.attempt};
        conn.stop();
      }
      const conn = new c.TickerConnection({origin: 'http://x', matchId: 'm', WebSocket: FakeWS,
        EventSource: null, random: () => 0.999, onMessage() {}});
      conn.start();
      made.at(-1).onopen();
      delays.length = 0;
      made.at(-1).onclose({code: 1006});
      out.dropped = delays.at(-1);
      conn.stop();
      console.log(JSON.stringify(out));
    """
    module = (Path(__file__).parent.parent / "web" / "static" / "connection.js").as_uri()
    done = subprocess.run(
        [str(NODE), "--input-type=module", "-e", script, module],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    out = json.loads(done.stdout)
    assert out["0"] == {"delay": 0, "attempt": 0}
    assert out["0.5"] == {"delay": 2500, "attempt": 0}
    assert out["0.999"] == {"delay": 4995, "attempt": 0}
    assert out["dropped"] == 499  # a plain drop: the first backoff step, 0-500 ms


@needs_nginx
@pytest.mark.slow
def test_drain_behind_nginx_loses_no_fan_and_refuses_none(
    make_server, redis_url: str, match_id: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """deploy/nginx.conf in front of two servers: while one drains, every new stream through
    the proxy still opens (its 503 is retried on the other server), and its fans, closed
    with 1012, resume through the proxy with exactly the log's ops."""
    env = {"TICKER_DRAIN_SECONDS": str(DRAIN)}
    replicas = [make_server(redis_url=redis_url, env=env) for _ in REPLICAS]
    port = free_port()
    conf = local_conf(tmp_path, port, {n: r.port for n, r in zip(REPLICAS, replicas, strict=True)})
    nginx = subprocess.Popen(
        nginx_command(tmp_path, conf, daemon=False),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc=nginx)
        front = TickerServer(env={}, port=port)  # the proxy, addressed like a server
        with replicas[1].admin() as admin:
            new_match(admin, match_id)
        asyncio.run(through_proxy(front, replicas, match_id))
    finally:
        nginx.terminate()
        nginx.wait(10)


async def through_proxy(front: TickerServer, replicas: list[TickerServer], match_id: str) -> None:
    ready: asyncio.Queue[Fan] = asyncio.Queue()
    fans = [Fan() for _ in range(40)]
    tasks = [asyncio.create_task(f.run(front, front, match_id, ready)) for f in fans]
    for _ in fans:
        await asyncio.wait_for(ready.get(), 30)
    async with httpx.AsyncClient(timeout=5) as client:
        held = [(await client.get(f"{r.url}/healthz")).json()["subscribers"] for r in replicas]
    assert all(held), held  # least_conn spread the fans over both
    stop, seqs = asyncio.Event(), []
    posting = asyncio.create_task(poster(front, match_id, stop, seqs))
    await asyncio.sleep(0.3)
    draining = replicas[0]
    assert draining.proc is not None
    draining.proc.send_signal(signal.SIGTERM)
    # While it drains, new fans keep arriving through the proxy: none is refused.
    opened = 0
    end = time.monotonic() + DRAIN
    while time.monotonic() < end:
        async with connect(f"{front.ws_url}/ws/matches/{match_id}", open_timeout=10) as ws:
            assert json.loads(await ws.recv())["op"] == "snapshot"
            opened += 1
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(f"{front.url}/api/matches/{match_id}")
            assert r.status_code == 200
        await asyncio.sleep(0.05)
    await asyncio.to_thread(draining.proc.wait, DRAIN + 8)
    draining.proc = None
    stop.set()
    await posting
    deadline = time.monotonic() + 15
    while any(f.last != seqs[-1] for f in fans) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    async with httpx.AsyncClient(base_url=replicas[1].url) as client:
        log_ops = (await client.get(f"/api/matches/{match_id}/ops")).json()["ops"]
    seq_index = {op["seq"]: i for i, op in enumerate(log_ops)}
    for fan in fans:
        assert fan.ops == log_ops[seq_index[fan.snapshot] + 1 :]
    moved = sum(f.close_code == 1012 for f in fans)
    assert moved == held[0], (moved, held)
    print(f"\nbehind nginx: {held} fans per replica, {moved} moved with 1012, "
          f"{opened} new fans opened during the drain, none refused")  # fmt: skip


def test_the_embedded_engine_closes_its_fans_at_once(make_server, match_id: str) -> None:  # type: ignore[no-untyped-def]
    """One process, nowhere to spread fans to: SIGTERM closes every fan with 1012 at once
    and the process exits, however long TICKER_DRAIN_SECONDS is."""
    server = make_server(env={"TICKER_DRAIN_SECONDS": "60"})
    with server.admin() as admin:
        new_match(admin, match_id)

    async def fans() -> list[int]:
        url = f"{server.ws_url}/ws/matches/{match_id}"
        sockets = [await connect(url) for _ in range(20)]
        for ws in sockets:
            await ws.recv()  # the snapshot
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)

        async def closed(ws) -> int | None:  # type: ignore[no-untyped-def]
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

        # All of them within 15 s of the signal (a spread drain would take 60 s).
        return list(await asyncio.wait_for(asyncio.gather(*map(closed, sockets)), 15))

    assert asyncio.run(fans()) == [1012] * 20
    assert server.proc is not None
    server.proc.wait(15)  # well within the 60 s a spread drain would take
