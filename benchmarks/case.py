"""One measurement: one target, N fans on one match, every phase, every check.

Phases, in order, on one fresh server process:
  1. connect  N fans (bounded handshakes in flight); conn/s = N / time until the last snapshot
  2. idle     RSS of the server tree after minus before, per connection
  3. latency  events at a fixed rate (5/s); publish->receive latency of every delivery
  4. max rate events as fast as the server takes them, at most W events not yet delivered to
              every fan (a closed loop, so no server is pushed into unbounded queueing);
              deliveries/s in steady state and server CPU per delivery
  5. check    every fan got every event exactly once, in order, with the seq the API returned
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import time
import traceback
from array import array
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks import procs
from benchmarks.clients import Workers
from benchmarks.targets import Context, Target, Ticker


@dataclass
class Settings:
    clients: int = 4  # load-generator processes
    loadgen: tuple[str, ...] = ()  # its command (see clients.loadgen_argv)
    concurrency: int = 256  # handshakes in flight, over all load generators
    latency_rate: float = 5.0  # events/s in the latency phase
    latency_events: int = 50
    max_deliveries: int = 600_000  # max-rate phase size, in deliveries (events x N)
    min_events: int = 20
    max_events: int = 2000
    # Window of the max-rate phase: events published but not yet at every fan. Enough
    # deliveries to keep the server busy while the driver reacts, but few events per fan:
    # a dozen small messages unread on one socket fill its 16 KiB send buffer (every skb
    # counts ~1 KiB of overhead) and the server's writes start to block.
    inflight_deliveries: int = 30_000
    min_window: int = 3
    max_window: int = 8
    window: int | None = None  # fixed, overriding the above
    settle: float = 1.0  # seconds before an RSS reading
    stall: float = 30.0  # seconds without progress before a phase fails


@dataclass
class Result:
    target: str
    n: int
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    conn_per_s: float | None = None
    # Server CPU (utime + stime of its process tree) over the connect phase only, per
    # 1,000 fans: what a handshake, catch-up and adoption cost, whatever the clients do.
    setup_cpu_ms_per_1k: float | None = None
    client_busy_connect: float | None = None
    load_avg: float | None = None  # 1-minute load average as the connect phase began
    rss_before_kib: int | None = None
    rss_after_kib: int | None = None
    rss_per_conn_kib: float | None = None
    latency_events: int = 0
    latency_samples: int = 0
    latency_rate: float | None = None  # events/s actually achieved
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    max_rate_events: int = 0
    window: int = 0
    deliveries_per_s: float | None = None
    events_per_s: float | None = None
    cpu_us_per_delivery: float | None = None
    server_busy: float | None = None  # server CPU s / wall s in the max-rate phase
    client_busy: float | None = None  # load generators' CPU s / wall s, same phase
    client_us_per_delivery: float | None = None
    # Softirq time on the server's core (not in any process's utime+stime): on loopback
    # mostly the fans' TCP receive work, which the server's sends run there.
    server_core_softirq_us_per_delivery: float | None = None
    other_load: float | None = None  # CPU s / wall s of every other process on the machine
    message_bytes: float | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: array[int], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


def seq_key(seq: str) -> tuple[int, ...]:
    return tuple(int(part) for part in seq.split("-"))


async def run(target: Target, n: int, s: Settings, ctx: Context, label: str) -> Result:
    result = Result(target.name, n)
    began = time.monotonic()
    port = procs.free_port()
    all_cores = ctx.server_cpus
    if isinstance(target, Ticker) and target.workers > 1:
        all_cores = None  # several workers need several cores: no pinning for the server
    run_ctx = Context(ctx.out, all_cores, ctx.redis_url, ctx.tmp, ctx.own_pids, ctx.ticker_env)
    server = target.start(run_ctx, port, label)
    workers: Workers | None = None
    try:
        await target.wait_ready(port, server, limit=60)
        admin = target.publisher(port)
        path = await target.setup(admin)
        await admin.close()
        await asyncio.sleep(s.settle)
        result.rss_before_kib = procs.rss_kib(procs.descendants(server.pid))
        workers = await Workers.spawn(
            list(s.loadgen), s.clients, _client_cpus(ctx), ctx.out / f"{label}.clients.log"
        )

        ours = [os.getpid(), *procs.descendants(server.pid), *workers.pids, *ctx.own_pids]
        machine0, ours0, t_others = procs.machine_ticks(), procs.pids_ticks(ours), time.monotonic()
        result.load_avg = os.getloadavg()[0]
        await _connect(result, workers, port, path, n, s, procs.descendants(server.pid))
        await asyncio.sleep(s.settle)
        result.rss_after_kib = procs.rss_kib(procs.descendants(server.pid))
        result.rss_per_conn_kib = (result.rss_after_kib - result.rss_before_kib) / n

        publisher = target.publisher(port)
        seqs: list[str] = []
        await _latency_phase(result, workers, target, publisher, seqs, n, s)
        core = next(iter(all_cores)) if all_cores and len(all_cores) == 1 else None
        await _max_rate_phase(result, workers, target, publisher, seqs, server.pid, core, n, s)
        await publisher.close()
        # Everything the machine ran meanwhile that was not ours (including processes that
        # came and went, and time the hypervisor stole), as a fraction of one core.
        other = procs.machine_ticks() - machine0 - (procs.pids_ticks(ours) - ours0)
        result.other_load = max(0, other) / procs.CLK_TCK / (time.monotonic() - t_others)
        _check(result, await workers.reports(), seqs, n)
    except Exception as exc:  # a failed phase is a result too: report it, run the rest
        result.problems.append(f"{type(exc).__name__}: {exc}")
        (ctx.out / f"{label}.error.txt").write_text(traceback.format_exc())
        if workers is not None:  # what the fans saw, to say which event went missing where
            with contextlib.suppress(Exception):
                for r in await workers.reports():
                    result.problems.extend(r["errors"][:5])
    finally:
        if workers is not None:
            await workers.close()
        if server.poll() is not None:
            result.problems.append(f"server exited with {server.returncode} during the run")
        procs.stop(server)
    result.ok = not result.problems
    result.seconds = time.monotonic() - began
    return result


def _client_cpus(ctx: Context) -> set[int] | None:
    if ctx.server_cpus is None:
        return None
    _, clients = procs.cpu_split()
    return clients


async def _connect(
    result: Result,
    workers: Workers,
    port: int,
    path: str,
    n: int,
    s: Settings,
    server_tree: list[int],
) -> None:
    server0 = procs.cpu_seconds(server_tree)
    cpu0, t0 = workers.cpu_seconds(), time.monotonic_ns()
    replies = await workers.connect(port, path, n, s.concurrency, limit=60 + n / 200)
    cpu1 = workers.cpu_seconds()
    result.setup_cpu_ms_per_1k = (procs.cpu_seconds(server_tree) - server0) / n * 1e6
    failed = sum(r["failed"] for r in replies)
    if failed:
        raise RuntimeError(f"{failed} of {n} fans could not connect (see the clients log)")
    t1 = max(r["t1"] for r in replies)
    seconds = (t1 - min(t0, *(r["t0"] for r in replies))) / 1e9
    result.conn_per_s = n / seconds
    result.client_busy_connect = (cpu1 - cpu0) / seconds


async def _latency_phase(
    result: Result,
    workers: Workers,
    target: Target,
    publisher: Any,
    seqs: list[str],
    n: int,
    s: Settings,
) -> None:
    count = s.latency_events
    workers.expect(total=count, latency_until=count)
    interval = 1 / s.latency_rate
    start = time.monotonic() + 0.05
    for i in range(count):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        seqs.append(await target.publish(publisher, i, time.monotonic_ns()))
    result.latency_rate = (count - 1) / (time.monotonic() - start) if count > 1 else None
    await workers.wait_complete(count, s.stall)
    samples = await workers.latencies()
    result.latency_events = count
    result.latency_samples = len(samples)
    if samples:
        ordered = array("q", sorted(samples))
        result.p50_ms = percentile(ordered, 0.50) / 1000
        result.p99_ms = percentile(ordered, 0.99) / 1000
        result.max_ms = ordered[-1] / 1000


async def _max_rate_phase(
    result: Result,
    workers: Workers,
    target: Target,
    publisher: Any,
    seqs: list[str],
    server_pid: int,
    server_core: int | None,
    n: int,
    s: Settings,
) -> None:
    first = len(seqs)
    count = max(s.min_events, min(s.max_events, s.max_deliveries // n))
    window = s.window or max(s.min_window, min(s.max_window, math.ceil(s.inflight_deliveries / n)))
    result.max_rate_events, result.window = count, window
    total = first + count
    workers.expect(total=total, latency_until=first)
    tree = procs.descendants(server_pid)
    cpu_server0, cpu_clients0 = procs.cpu_seconds(tree), workers.cpu_seconds()
    softirq0 = procs.softirq_ticks(server_core) if server_core is not None else 0
    t0 = time.monotonic()
    answered = asyncio.Event()

    async def read_answers() -> None:
        try:
            for i in range(first, total):
                status, body = await publisher.read()
                seqs.append(target.published(status, body, i))
                answered.set()
        finally:
            answered.set()  # wake the sender, to notice a failure

    reader = asyncio.create_task(read_answers())
    try:
        for i in range(first, total):
            if i - window >= first:
                await workers.wait_complete(i - window + 1, s.stall)
            # POSTs are pipelined on one connection: the server always has the next one
            # queued, and handles them in order, so seqs follow the event indexes.
            while i - len(seqs) >= window and not reader.done():
                answered.clear()
                await asyncio.wait_for(answered.wait(), s.stall)
            if reader.done():
                break
            path, body = target.publish_request(i, time.monotonic_ns())
            await publisher.write("POST", path, body)
        await asyncio.wait_for(asyncio.shield(reader), s.stall)
    finally:
        reader.cancel()
    await workers.wait_complete(total, s.stall)
    wall = time.monotonic() - t0
    if server_core is not None:
        softirq = (procs.softirq_ticks(server_core) - softirq0) / procs.CLK_TCK
        result.server_core_softirq_us_per_delivery = softirq / (n * count) * 1e6
    cpu_server = procs.cpu_seconds(tree) - cpu_server0
    cpu_clients = workers.cpu_seconds() - cpu_clients0
    # Steady state: from the first event reaching every fan to the last one doing so.
    steady = (workers.done_at(total - 1) - workers.done_at(first)) / 1e9
    result.deliveries_per_s = n * (count - 1) / steady
    result.events_per_s = (count - 1) / steady
    result.cpu_us_per_delivery = cpu_server / (n * count) * 1e6
    result.server_busy = cpu_server / wall
    result.client_busy = cpu_clients / wall
    result.client_us_per_delivery = cpu_clients / (n * count) * 1e6


def _check(result: Result, reports: list[dict[str, Any]], seqs: list[str], n: int) -> None:
    """Every fan got every published event exactly once, in order, with the API's seq."""
    problems = result.problems
    total = len(seqs)
    conns = sum(r["conns"] for r in reports)
    if conns != n:
        problems.append(f"{conns} fans connected, {n} wanted")
    sums: dict[str, int] = {}
    for r in reports:
        for key in ("incomplete", "out_of_order", "seq_mismatch", "unexpected", "lost"):
            sums[key] = sums.get(key, 0) + r[key]
    labels = {
        "incomplete": "fans missing events",
        "out_of_order": "events out of order, duplicated or skipped",
        "seq_mismatch": "events whose seq differed between fans",
        "unexpected": "messages that were not benchmark events",
        "lost": "connections lost",
    }
    problems.extend(f"{v} {labels[k]}" for k, v in sums.items() if v)
    codes: dict[str, int] = {}
    for r in reports:
        for code, count in r["close_codes"].items():
            codes[code] = codes.get(code, 0) + count
    if codes:
        problems.append(f"server closed fans with codes {codes}")
    wrong = [
        i
        for r in reports
        for i, seq in enumerate(r["seqs"][:total])
        if seq is not None and seq != seqs[i]
    ]
    if wrong:
        problems.append(f"{len(wrong)} events delivered with a seq other than the API returned")
    try:
        keys = [seq_key(seq) for seq in seqs]
        if any(a >= b for a, b in itertools.pairwise(keys)):
            problems.append("the API returned seqs that are not strictly increasing")
    except ValueError:
        problems.append(f"unexpected seq format: {seqs[:3]}")
    if problems:
        for r in reports:
            problems.extend(r["errors"][:5])
    frames = sum(r["frames"] for r in reports)
    if frames:
        result.message_bytes = sum(r["payload_bytes"] for r in reports) / frames
