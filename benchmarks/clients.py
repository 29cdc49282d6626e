"""The driver's side of the load generators: spawn them, command them, follow their progress."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import orjson

from benchmarks import procs
from benchmarks.targets import HERE, ROOT


def loadgen_argv(kind: str, build_dir: Path) -> list[str]:
    """The load generator to run: the C one (built here once) unless `kind` is "python"."""
    if kind != "python":
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is not None:
            source = HERE / "loadgen.c"
            digest = hashlib.sha1(source.read_bytes()).hexdigest()[:12]
            exe = build_dir / f"loadgen-{digest}"
            if not exe.exists():
                build_dir.mkdir(parents=True, exist_ok=True)
                partial = exe.with_suffix(".tmp")
                subprocess.run([cc, "-O2", "-Wall", "-o", str(partial), str(source)], check=True)
                partial.rename(exe)
            return [str(exe)]
        if kind == "c":
            raise RuntimeError("no C compiler (cc) for the C load generator")
    return [sys.executable, "-m", "benchmarks.loadgen"]


class Stalled(Exception):
    """No fan made progress for too long: an event is missing somewhere (or a process died)."""


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.complete = 0  # events [0, complete) have reached every fan of this worker
        self.done_at: dict[int, int] = {}  # event -> monotonic ns when its last fan here got it
        self.reader: asyncio.Task[None] | None = None

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(cmd) + b"\n")


class Workers:
    """`count` load-generator processes sharing N fans, pinned to the client cores."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self.progress = asyncio.Event()

    @classmethod
    async def spawn(cls, argv: list[str], count: int, cpus: set[int] | None, log: Path) -> Workers:
        def setup() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)
            procs.raise_nofile()

        workers = []
        with open(log, "ab") as err:  # noqa: ASYNC230 (once per run, before measuring)
            for _ in range(count):
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=ROOT,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=err,
                    preexec_fn=setup,
                    limit=1 << 24,
                )
                workers.append(Worker(proc))
        self = cls(workers)
        for w in workers:
            w.reader = asyncio.create_task(self._read(w))
        for w in workers:
            hello = await asyncio.wait_for(w.replies.get(), 30)
            assert hello["ev"] == "hello", hello
        return self

    async def _read(self, w: Worker) -> None:
        assert w.proc.stdout is not None
        while line := await w.proc.stdout.readline():
            msg = orjson.loads(line)
            if msg["ev"] == "done":
                w.done_at[msg["i"]] = msg["t"]
                while w.complete in w.done_at:
                    w.complete += 1
                self.progress.set()
            else:
                await w.replies.put(msg)
        self.progress.set()  # the process died: wake waiters so they notice

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def cpu_seconds(self) -> float:
        return procs.cpu_seconds(self.pids)

    async def _ask(self, limit: float, **cmd: Any) -> list[dict[str, Any]]:
        for w in self.workers:
            w.send(**cmd)
        replies = asyncio.gather(*(w.replies.get() for w in self.workers))
        return list(await asyncio.wait_for(replies, limit))

    async def connect(
        self, port: int, path: str, n: int, concurrency: int, limit: float
    ) -> list[dict[str, Any]]:
        k = len(self.workers)
        cmds = [
            {"host": "127.0.0.1", "port": port, "path": path, "count": n // k + (i < n % k)}
            for i in range(k)
        ]
        for w, cmd in zip(self.workers, cmds, strict=True):
            w.send(cmd="connect", concurrency=max(1, concurrency // k), **cmd)
        gathered = asyncio.gather(*(w.replies.get() for w in self.workers))
        return list(await asyncio.wait_for(gathered, limit))

    def expect(self, total: int, latency_until: int) -> None:
        for w in self.workers:
            w.send(cmd="expect", total=total, latency_until=latency_until)

    @property
    def complete(self) -> int:
        """Events [0, complete) have reached every fan."""
        return min(w.complete for w in self.workers)

    async def wait_complete(self, count: int, stall: float) -> None:
        """Wait until events [0, count) reached every fan; Stalled after `stall` s idle."""
        last, since = self.complete, time.monotonic()
        while self.complete < count:
            dead = [w.pid for w in self.workers if w.reader is not None and w.reader.done()]
            if dead:
                raise Stalled(f"load generator(s) {dead} exited")
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), 0.5)
            if self.complete != last:
                last, since = self.complete, time.monotonic()
            elif time.monotonic() - since > stall:
                behind = {w.pid: w.complete for w in self.workers}
                raise Stalled(
                    f"no progress for {stall:.0f}s waiting for {count} events; "
                    f"events complete per load generator: {behind}"
                )

    def done_at(self, index: int) -> int:
        """When the last fan anywhere got event `index` (monotonic ns)."""
        return max(w.done_at[index] for w in self.workers)

    async def latencies(self) -> array[int]:
        """Every latency sample (µs) since the last call, from every fan."""
        merged = array("q")
        for reply in await self._ask(60, cmd="latencies"):
            with open(reply["path"], "rb") as f:  # noqa: ASYNC230 (between phases)
                merged.frombytes(f.read())
            os.unlink(reply["path"])
        return merged

    async def reports(self) -> list[dict[str, Any]]:
        return await self._ask(120, cmd="report")

    async def close(self) -> None:
        for w in self.workers:
            if w.proc.returncode is None and w.proc.stdin is not None:
                try:
                    w.send(cmd="close")
                    w.proc.stdin.close()
                except (ConnectionError, RuntimeError):
                    pass
        for w in self.workers:
            try:
                await asyncio.wait_for(w.proc.wait(), 15)
            except TimeoutError:
                w.proc.kill()
                await w.proc.wait()
            if w.reader is not None:
                w.reader.cancel()
