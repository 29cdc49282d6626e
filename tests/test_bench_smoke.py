"""The benchmark's smoke mode, so the benchmark suite cannot rot (no timings asserted)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_benchmark_quick_mode_runs_and_every_fan_gets_every_event() -> None:
    # Exit status 1 means a fan missed, duplicated or reordered an event, or a server failed.
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=570,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "ticker-redis" in run.stdout and "node-ws" in run.stdout
