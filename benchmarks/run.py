"""Run the fan-out benchmark: start Redis and every server, measure, check, print, write.

    python -m benchmarks                       # full run: N = 1k, 5k, 10k, 20k, every target
    python -m benchmarks --quick               # smoke run for CI: N = 200, a few events
    python -m benchmarks --targets raw-uvloop node-ws --n 1000 10000

Exit status 1 if any fan missed, duplicated or reordered an event, or a run failed.
Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import case, clients, procs, report
from benchmarks.targets import ALL, HERE, Context, Target, Ticker

FULL_N = (1000, 5000, 10000, 20000)
QUICK_N = (200,)
SERVER_FD_MARGIN = 64  # descriptors a server needs besides its fans


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    p.add_argument("--quick", action="store_true", help="N=200, few events: the CI smoke run")
    p.add_argument(
        "--targets",
        nargs="+",
        metavar="T",
        help=f"targets to run (default: every one available): {', '.join(ALL)}",
    )
    p.add_argument(
        "--n", nargs="+", type=int, metavar="N", help="fan counts (default 1k 5k 10k 20k)"
    )
    p.add_argument("--clients", type=int, help="load-generator processes (default 4)")
    p.add_argument("--latency-events", type=int, help="events at 5/s in the latency phase")
    p.add_argument("--max-deliveries", type=int, help="size of the max-rate phase in deliveries")
    p.add_argument(
        "--window",
        type=int,
        help="max-rate phase: events in flight (default: 30,000 deliveries' worth, 3..8)",
    )
    p.add_argument(
        "--output",
        type=Path,
        help="markdown file to write (default benchmarks/"
        "RESULTS.md; with --quick, benchmarks/out/quick-results.md)",
    )
    p.add_argument(
        "--loadgen",
        choices=("auto", "c", "python"),
        default="auto",
        help="load generator: C (built with cc) when a compiler exists, else Python",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="R",
        help="run each case R times, keep the one other processes disturbed least",
    )
    p.add_argument(
        "--ticker-env",
        action="append",
        default=[],
        metavar="TICKER_X=V",
        help="a setting for the ticker targets (repeatable), e.g. TICKER_WS=plain",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin servers and clients to cores")
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> case.Settings:
    s = case.Settings()
    if args.quick:
        s = case.Settings(
            latency_events=5, max_deliveries=10_000, min_events=20, settle=0.3, stall=20
        )
    if args.clients:
        s.clients = args.clients
    if args.latency_events:
        s.latency_events = args.latency_events
    if args.window:
        s.window = args.window
    if args.max_deliveries:
        s.max_deliveries = args.max_deliveries
    return s


def select_targets(args: argparse.Namespace) -> tuple[list[Target], list[str], list[str]]:
    """(targets to run, notes, errors): unavailable defaults are skipped, asked-for ones fail."""
    names = [t for item in args.targets or [] for t in item.split(",") if t] or list(ALL)
    unknown = [t for t in names if t not in ALL]
    if unknown:
        raise SystemExit(f"unknown target(s) {unknown}; known: {', '.join(ALL)}")
    chosen, notes, errors = [], [], []
    for name in names:
        why = ALL[name].unavailable()
        if why is None:
            chosen.append(ALL[name])
        elif args.targets:
            errors.append(f"{name} cannot run: {why}")
        else:
            notes.append(f"{name} skipped: {why}")
    return chosen, notes, errors


def start_redis(ctx: Context, tmp: Path) -> subprocess.Popen[bytes]:
    port = procs.free_port()
    folder = tmp / "redis"
    folder.mkdir()
    argv = [
        shutil.which("redis-server") or "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(folder),
        "--daemonize",
        "no",
    ]
    proc = procs.start(argv, cpus=ctx.server_cpus, log=ctx.out / "redis.log")
    procs.wait_listening(port, proc, 20, ctx.out / "redis.log")
    ctx.redis_url = f"redis://127.0.0.1:{port}/0"
    return proc


async def run_all(args: argparse.Namespace) -> int:
    s = settings(args)
    targets, notes, errors = select_targets(args)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if not targets:
        print("error: nothing to run", file=sys.stderr)
        return 1
    server_cpus, client_cpus = procs.cpu_split()
    if args.no_pin:
        server_cpus = client_cpus = set()
    else:
        os.sched_setaffinity(0, client_cpus)  # the driver publishes from the client side
    procs.raise_nofile()
    limit = procs.nofile_hard_limit() - SERVER_FD_MARGIN
    ns = args.n or (QUICK_N if args.quick else FULL_N)
    runs = []
    for n in ns:
        if n > limit:
            notes.append(
                f"N={n:,} asked for, {limit:,} run: a server process may hold only "
                f"{limit + SERVER_FD_MARGIN:,} open files here (RLIMIT_NOFILE hard limit; "
                "raising it needs CAP_SYS_RESOURCE)"
            )
            n = limit
        runs.append(n)
    if any(isinstance(t, Ticker) and t.workers > 1 for t in targets) and server_cpus:
        notes.append(
            "ticker-redis-2w runs unpinned on all cores, so it shares them with the "
            "load generators: with 2 cores its figures understate a real 2-core server"
        )

    out = HERE / "out" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ticker-bench-"))
    ctx = Context(out=out, server_cpus=server_cpus or None, tmp=tmp)
    ctx.ticker_env = dict(item.split("=", 1) for item in args.ticker_env)
    if ctx.ticker_env:
        notes.append(f"ticker settings: {ctx.ticker_env}")
    s.loadgen = tuple(clients.loadgen_argv(args.loadgen, HERE / "out" / "build"))
    redis = None
    results: list[case.Result] = []
    try:
        if any(getattr(t, "engine", None) == "redis" for t in targets):
            redis = start_redis(ctx, tmp)
            ctx.own_pids.add(redis.pid)
        for t in list(targets):
            try:
                t.prepare(ctx)
            except Exception as exc:
                targets.remove(t)
                if args.targets:  # asked for by name: its absence is a failure
                    errors.append(f"{t.name} could not be prepared: {exc}")
                    print(f"error: {errors[-1]}", file=sys.stderr)
                else:
                    notes.append(f"{t.name} skipped: could not be prepared: {exc}")
                    print(f"warning: {notes[-1]}", file=sys.stderr)
        print(f"logs in {out}", flush=True)
        for n in runs:
            for t in targets:
                tries = []
                for k in range(args.repeat):
                    label = f"{t.name}-{n}" + (f"-{k + 1}" if args.repeat > 1 else "")
                    print(f"running {label} ...", end=" ", flush=True)
                    tries.append(await case.run(t, n, s, ctx, label))
                    print(_summary(tries[-1]), flush=True)
                results.append(_least_disturbed(tries))
    finally:
        if redis is not None:
            procs.stop(redis)
        shutil.rmtree(tmp, ignore_errors=True)

    info = report.machine(server_cpus, client_cpus)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:])
    descriptions = {t.name: t.description for t in targets}
    text = report.markdown(results, info, command.strip(), notes + errors, descriptions)
    output = args.output or (
        HERE / "out" / "quick-results.md" if args.quick else HERE / "RESULTS.md"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text + "\n")
    (out / "results.json").write_text(
        json.dumps({"machine": info, "results": [r.as_dict() for r in results]}, indent=1)
    )
    print()
    print(report.table(results))
    for n in sorted({r.n for r in results}):
        group = [r for r in results if r.n == n]
        if comp := report.comparisons(group):
            print(f"\nN = {n:,}: ratios (row ÷ other)\n{comp}")
        if g := report.goals(group):
            print(f"issue #4 goals (informational):\n{g}")
    for note in notes:
        print(f"note: {note}")
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"\nFAILED {r.target} N={r.n:,}:", *(f"\n  - {p}" for p in r.problems[:15]))
    print(f"\nwrote {output}")
    return 1 if failed or errors else 0


def _least_disturbed(tries: list[case.Result]) -> case.Result:
    """A failure if any try failed (failures must show); else the try others disturbed least."""
    failed = [r for r in tries if not r.ok]
    if failed:
        return failed[0]
    return min(tries, key=lambda r: r.other_load if r.other_load is not None else 0.0)


def _summary(r: case.Result) -> str:
    if not r.ok:
        return f"FAILED ({r.problems[0] if r.problems else '?'})"
    return (
        f"ok in {r.seconds:.0f}s: {report._f(r.deliveries_per_s, ',.0f')} deliveries/s, "
        f"other load {report._pct(r.other_load)}, "
        f"p99 {report._f(r.p99_ms, '.1f')} ms, {report._f(r.rss_per_conn_kib, '.1f')} KiB/conn, "
        f"{report._f(r.conn_per_s, ',.0f')} conn/s, "
        f"setup {report._f(r.setup_cpu_ms_per_1k, '.0f')} ms CPU/1k conn, "
        f"load avg {report._f(r.load_avg, '.2f')}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_all(args))
    return uvloop.run(run_all(args))


if __name__ == "__main__":
    raise SystemExit(main())
