"""Tables, ratios and the machine description, for the terminal and for RESULTS.md."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Sequence

from benchmarks import procs
from benchmarks.case import Result
from benchmarks.targets import ROOT, NodeWs

TICKERS = ("ticker-redis", "ticker-embedded", "ticker-redis-2w")
BASELINES = ("node-ws", "raw-uvloop", "naive-starlette")

# (label, field, higher is better, format)
METRICS: tuple[tuple[str, str, bool], ...] = (
    ("deliveries/s", "deliveries_per_s", True),
    ("p99 latency", "p99_ms", False),
    ("RSS/conn", "rss_per_conn_kib", False),
    ("conn/s", "conn_per_s", True),
    ("setup CPU/1k conn", "setup_cpu_ms_per_1k", False),
    ("CPU/delivery", "cpu_us_per_delivery", False),
)


def _run(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    if done.returncode != 0:
        return "n/a"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def machine(server_cpus: set[int] | None, client_cpus: set[int] | None) -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for dist in ("starlette", "uvicorn", "websockets", "uvloop", "httptools", "orjson", "redis"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
    ws = NodeWs.ws_version()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": str(os.cpu_count()),
        "pinning": f"servers on cores {_cores(server_cpus)}, load generators + driver on "
        f"cores {_cores(client_cpus)}",
        "memory": _meminfo(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0] + " (" + ", ".join(versions) + ")",
        "node": _run(["node", "--version"]) + (f" (ws {ws})" if ws else ""),
        "redis": _run(["redis-server", "--version"]),
        "open files limit": str(procs.nofile_hard_limit()),
        "load average at the end (1, 5, 15 min)": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
        "commit": _run(["git", "rev-parse", "--short", "HEAD"])
        + (" + uncommitted changes" if _dirty() else ""),
    }


def _dirty() -> bool:
    changes = _run(["git", "status", "--porcelain", "--", "ticker", "benchmarks"])
    return changes not in ("", "n/a")


def _cores(cpus: set[int] | None) -> str:
    return "any" if not cpus else ",".join(map(str, sorted(cpus)))


def _meminfo() -> str:
    with open("/proc/meminfo") as f:
        kib = int(f.readline().split()[1])
    return f"{kib / 1048576:.1f} GiB"


def _f(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def table(results: Sequence[Result]) -> str:
    head = (
        "| target | N | deliveries/s | p50 ms | p99 ms | max ms | server CPU µs/delivery "
        "| server core softirq µs/delivery | client CPU µs/delivery | server busy | clients busy "
        "| other load | RSS KiB/conn | conn/s | conn/s ÷ node-ws | setup CPU ms/1k conn "
        "| load avg | msg bytes | check |"
    )
    rows = [head, "|" + "---|" * 19]
    node = {r.n: r.conn_per_s for r in results if r.target == "node-ws"}
    for r in results:
        rows.append(
            f"| {r.target} | {r.n:,} | {_f(r.deliveries_per_s, ',.0f')} | {_f(r.p50_ms, '.1f')} "
            f"| {_f(r.p99_ms, '.1f')} | {_f(r.max_ms, '.1f')} | {_f(r.cpu_us_per_delivery, '.2f')} "
            f"| {_f(r.server_core_softirq_us_per_delivery, '.2f')} "
            f"| {_f(r.client_us_per_delivery, '.2f')} | {_pct(r.server_busy)} "
            f"| {_pct(r.client_busy)} | {_pct(r.other_load)} | {_f(r.rss_per_conn_kib, '.1f')} "
            f"| {_f(r.conn_per_s, ',.0f')} | {_ratio(r.conn_per_s, node.get(r.n))} "
            f"| {_f(r.setup_cpu_ms_per_1k, '.0f')} | {_f(r.load_avg, '.2f')} "
            f"| {_f(r.message_bytes, '.0f')} "
            f"| {'ok' if r.ok else 'FAILED'} |"
        )
    return "\n".join(rows)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def ratio_matrix(results: Sequence[Result], metric: str) -> str:
    names = [r.target for r in results]
    rows = ["| row ÷ column | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for a in results:
        cells = [_ratio(getattr(a, metric), getattr(b, metric)) for b in results]
        rows.append(f"| {a.target} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def key_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """The comparisons that matter: each ticker against each baseline, then the baselines."""
    tickers = [t for t in TICKERS if t in names]
    bases = [b for b in BASELINES if b in names]
    pairs = [(t, b) for t in tickers for b in bases]
    if "ticker-redis" in names:
        pairs += [(t, "ticker-redis") for t in tickers if t != "ticker-redis"]
    pairs += [(a, b) for i, a in enumerate(bases) for b in bases[i + 1 :]]
    return pairs


def comparisons(results: Sequence[Result]) -> str:
    by = {r.target: r for r in results}
    lines = []
    for a, b in key_pairs(list(by)):
        parts = [
            f"{label} {_ratio(getattr(by[a], attr), getattr(by[b], attr))}"
            for label, attr, _ in METRICS
        ]
        lines.append(f"- {a} ÷ {b}: " + " · ".join(parts))
    return "\n".join(lines)


def goals(results: Sequence[Result]) -> str:
    """Issue #4's targets, read off this run. Informational: nothing here fails the run."""
    by = {r.target: r for r in results}
    t = by.get("ticker-redis")
    if t is None:
        return ""

    def check(label: str, value: float | None, ok: Callable[[float], bool], want: str) -> str:
        if value is None:
            return f"- {label}: — (want {want})"
        return f"- {label}: {value:.2f} (want {want}) {'met' if ok(value) else 'NOT met'}"

    def rel(a: Result | None, b: Result | None, attr: str) -> float | None:
        if a is None or b is None:
            return None
        x, y = getattr(a, attr), getattr(b, attr)
        return None if x is None or not y else x / y

    node, raw = by.get("node-ws"), by.get("raw-uvloop")
    emb, two = by.get("ticker-embedded"), by.get("ticker-redis-2w")
    lines = [
        check(
            "deliveries/s ÷ node-ws",
            rel(t, node, "deliveries_per_s"),
            lambda v: v >= 1.15,
            "≥ 1.15",
        ),
        check(
            "deliveries/s ÷ raw-uvloop",
            rel(t, raw, "deliveries_per_s"),
            lambda v: v >= 0.9,
            "≥ 0.90",
        ),
        check("p99 latency ÷ node-ws", rel(t, node, "p99_ms"), lambda v: v <= 0.8, "≤ 0.80"),
        check("RSS KiB per idle connection", t.rss_per_conn_kib, lambda v: v <= 12, "≤ 12"),
        check("conn/s ÷ node-ws", rel(t, node, "conn_per_s"), lambda v: v >= 1.0, "≥ 1.00"),
        check(
            "setup CPU per 1k conn ÷ node-ws",
            rel(t, node, "setup_cpu_ms_per_1k"),
            lambda v: v <= 1.0,
            "≤ 1.00",
        ),
        check(
            "--workers 2 deliveries/s ÷ 1 worker",
            rel(two, t, "deliveries_per_s"),
            lambda v: v >= 1.7,
            "≥ 1.70",
        ),
        check(
            "embedded deliveries/s ÷ redis",
            rel(emb, t, "deliveries_per_s"),
            lambda v: abs(v - 1) <= 0.1,
            "0.90–1.10",
        ),
    ]
    return "\n".join(lines)


def markdown(
    results: Sequence[Result],
    info: dict[str, str],
    command: str,
    notes: Sequence[str],
    descriptions: dict[str, str],
) -> str:
    out = [
        "# Fan-out benchmark results",
        "",
        f"Command: `{command}`. What each column means and how it is measured: "
        "[README.md](README.md).",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
        "## Targets",
        "",
        *(f"- `{name}`: {text}" for name, text in descriptions.items()),
        "",
        "## Results",
        "",
        table(results),
        "",
    ]
    if notes:
        out += ["Notes:", "", *(f"- {n}" for n in notes), ""]
    for n in sorted({r.n for r in results}):
        group = [r for r in results if r.n == n]
        out += [f"## N = {n:,}", ""]
        if comp := comparisons(group):
            out += [
                "Key ratios (row target ÷ other; >1× is better for deliveries/s and conn/s, "
                "<1× for latency, RSS and CPU):",
                "",
                comp,
                "",
            ]
        if g := goals(group):
            out += ["Issue #4 goals read off this run (informational, not asserted):", "", g, ""]
        out += ["Deliveries/s, row ÷ column:", "", ratio_matrix(group, "deliveries_per_s"), ""]
        out += ["p99 latency at 5 events/s, row ÷ column:", "", ratio_matrix(group, "p99_ms"), ""]
        failed = [r for r in group if not r.ok]
        for r in failed:
            out += [
                f"**{r.target} at N={r.n:,} FAILED:**",
                "",
                *(f"- {p}" for p in r.problems[:15]),
                "",
            ]
    return "\n".join(out)
