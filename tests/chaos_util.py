"""Parts of the seeded fault test (tests/test_chaos.py): a proxy that loses replies,
reporters that retry, fans that resume, the fault schedule, and the checks.

Every choice (what to write, which server, which reply to lose, which fault when) comes
from a `random.Random` derived from the seed, one per actor, so a run's choices repeat
for a seed; only the interleaving with real time does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from tests.conftest import ADMIN_TOKEN, RedisServer, TickerServer
from ticker.settings import Settings

CLIENT_BUFFER = Settings().client_buffer  # TICKER_CLIENT_BUFFER, as the hubs run with it

DROP = 0.1  # probability that the reply to one attempt is lost
HTTP_TIMEOUT = 3.0
_KEY_IN_TEXT = re.compile(r"\[([^\]]+)\]")
_DROP_HEADER = b"x-chaos-drop"


# The reply-losing proxy


class DropProxy:
    """Forwards one HTTP request per connection to a server; when the request carries
    `X-Chaos-Drop: 1` it closes the client side right after forwarding the request, so
    the server does the write but the client never learns the answer.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(30):  # a paused server holds a request; bound it
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head[:-4].split(b"\r\n")
                drop, length, kept = False, 0, [lines[0]]
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == _DROP_HEADER:
                        drop = value.strip() == b"1"
                    elif name != b"connection":
                        kept.append(line)
                        if name == b"content-length":
                            length = int(value)
                body = await reader.readexactly(length)
                # One request per upstream connection: the server closes after answering.
                kept.append(b"Connection: close")
                up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                upstream.write(b"\r\n".join(kept) + b"\r\n\r\n" + body)
                await upstream.drain()
                if drop:
                    writer.close()
                    await up_reader.read()  # the server finishes; its answer goes nowhere
                    return
                while chunk := await up_reader.read(65536):
                    writer.write(chunk)
                    await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # the client sees a dropped connection: the same as a dead server
        finally:
            for w in (writer, upstream):
                if w is not None:
                    w.close()
            self._tasks.discard(task)


# Reporters


@dataclass
class Write:
    """One logical write and every attempt at it (all with one Idempotency-Key)."""

    key: str
    method: str
    path: str
    body: dict[str, Any] | None
    event_id: str | None = None  # the event a PATCH or DELETE targets
    attempts: list[str] = field(default_factory=list)
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # 2xx only
    refused: str | None = None  # a 4xx/5xx that is not an outage: always a finding

    @property
    def op(self) -> dict[str, Any] | None:
        return self.answers[0][1] if self.answers else None

    def describe(self) -> str:
        body = "" if self.body is None else " " + json.dumps(self.body)
        return (
            f"{self.method} {self.path} Idempotency-Key: {self.key}{body}\n"
            f"    attempts: {'; '.join(self.attempts[-8:])}"
        )


_TEAM_TYPES = ("goal", "yellow_card", "corner", "save", "miss", "foul")
_PLAYERS = ("Scholz", "Kaba", "Højlund", "Lukaku", "Elanga", "Osimhen")


class Reporter:
    """Posts, corrects and retracts its own events, and now and then re-sends an old
    acknowledged write; every write is retried with its key until a 2xx (or a refusal)."""

    def __init__(self, name: str, seed: int, match_id: str, proxies: list[DropProxy]) -> None:
        self.name = name
        self.match_id = match_id
        self.proxies = proxies
        self.plan = random.Random(f"{seed}/{name}/plan")  # what to write
        self.net = random.Random(f"{seed}/{name}/net")  # where, and which replies get lost
        self.writes: list[Write] = []
        self.live: dict[str, str] = {}  # own events believed live: id -> type
        self.sent = self.lost = self.unavailable = self.transport_errors = self.replays = 0

    def _next(self, n: int) -> Write:
        base = f"/api/matches/{self.match_id}/events"
        key = f"{self.name}-{n}"
        r = self.plan.random()
        acked = [w for w in self.writes if w.op is not None]
        if r < 0.12 and acked:
            self.replays += 1
            return self.plan.choice(acked)  # a console outbox sending an old item again
        if r < 0.32 and self.live:
            event_id = self.plan.choice(sorted(self.live))
            body: dict[str, Any] = {"text": f"[{key}] corrected"}
            if self.plan.random() < 0.5:
                body["minute"] = self.plan.randint(1, 90)
            if self.live[event_id] in _TEAM_TYPES and self.plan.random() < 0.4:
                body["team"] = self.plan.choice(("home", "away"))
            return Write(key, "PATCH", f"{base}/{event_id}", body, event_id)
        if r < 0.47 and self.live:
            event_id = self.plan.choice(sorted(self.live))
            return Write(key, "DELETE", f"{base}/{event_id}", None, event_id)
        kind = self.plan.choice(("goal", "comment", "comment", *_TEAM_TYPES))
        body = {"type": kind, "minute": self.plan.randint(1, 90), "text": f"[{key}] {kind}"}
        if kind in _TEAM_TYPES:
            body["team"] = self.plan.choice(("home", "away"))
            body["player"] = self.plan.choice(_PLAYERS)
        return Write(key, "POST", base, body)

    async def run(self, stop: asyncio.Event, deadline: list[float]) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        # A fresh connection per attempt: the proxy serves one request per connection.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(headers=headers, timeout=HTTP_TIMEOUT, limits=limits) as c:
            n = 0
            while not stop.is_set():
                write = self._next(n)
                n += 1
                if write not in self.writes:
                    self.writes.append(write)
                await self._send(c, write, deadline)
                await asyncio.sleep(self.plan.uniform(0, 0.02))

    async def _send(self, client: httpx.AsyncClient, write: Write, deadline: list[float]) -> None:
        delay = 0.05
        while time.monotonic() < deadline[0]:
            i = self.net.randrange(len(self.proxies))
            drop = self.net.random() < DROP
            headers = {"Idempotency-Key": write.key, "X-Chaos-Drop": "1" if drop else "0"}
            url = f"http://127.0.0.1:{self.proxies[i].port}{write.path}"
            self.sent += 1
            self.lost += drop
            try:
                r = await client.request(write.method, url, json=write.body, headers=headers)
            except httpx.TransportError as exc:
                self.transport_errors += 1
                write.attempts.append(f"hub{i}{' (reply dropped)' if drop else ''}: {exc!r}")
            else:
                write.attempts.append(f"hub{i}: {r.status_code} {r.text[:300]}")
                if r.status_code in (200, 201):
                    self._acknowledged(write, r.status_code, r.json()["op"])
                    return
                if r.status_code != 503:
                    write.refused = f"{r.status_code} {r.text[:500]}"
                    self.live.pop(write.event_id or "", None)  # do not build on it again
                    return
                self.unavailable += 1
            await asyncio.sleep(self.net.uniform(0, delay))
            delay = min(delay * 2, 0.5)
        write.attempts.append("gave up: never acknowledged before the deadline")

    def _acknowledged(self, write: Write, status: int, op: dict[str, Any]) -> None:
        first = not write.answers
        write.answers.append((status, op))
        if not first:
            return
        if op["op"] == "add":
            self.live[op["event"]["id"]] = op["event"]["type"]
        elif op["op"] == "remove":
            self.live.pop(op["id"], None)


# Fans


@dataclass
class Segment:
    """A snapshot and every op a fan received after it, across resumes, until the next."""

    snapshot: dict[str, Any]
    ops: list[dict[str, Any]] = field(default_factory=list)
    # The seq the fan resumed from when the server answered with a reset snapshot instead.
    resumed_from: str | None = None


class Fan:
    """A WebSocket fan: keeps its last seq, resumes with `since` after any close, sometimes
    on another server, sometimes leaves on its own, sometimes starts fresh."""

    def __init__(self, name: str, seed: int, match_id: str, servers: list[TickerServer]) -> None:
        self.name = name
        self.match_id = match_id
        self.servers = servers
        self.rng = random.Random(f"{seed}/{name}")
        self.segments: list[Segment] = []
        self.last: str | None = None
        self.messages = 0
        self.closes: Counter[str] = Counter()
        self.problems: list[str] = []
        self.moved = asyncio.Event()  # set on every message

    async def run(self) -> None:
        while True:
            i = self.rng.randrange(len(self.servers))
            since = None if self.last is None or self.rng.random() < 0.1 else self.last
            url = f"{self.servers[i].ws_url}/ws/matches/{self.match_id}"
            url += "" if since is None else f"?since={since}"
            leave_after = self.rng.randint(20, 400)
            try:
                async with connect(url, open_timeout=3, close_timeout=1, max_size=None) as ws:
                    n = 0
                    async for raw in ws:
                        self._take(json.loads(raw), since)
                        n += 1
                        if n >= leave_after:
                            break
                    outcome = "left" if n >= leave_after else f"closed {ws.close_code}"
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                outcome = f"closed {code}"
                if code in (1011, 4404):
                    self.problems.append(f"{self.name}: {url} closed with {code}: {exc}")
            except (WebSocketException, OSError, TimeoutError) as exc:
                outcome = type(exc).__name__
            self.closes[outcome] += 1
            await asyncio.sleep(self.rng.uniform(0.02, 0.3))

    def _take(self, msg: dict[str, Any], since: str | None) -> None:
        self.messages += 1
        self.moved.set()
        kind = msg.get("op")
        if kind == "viewers":
            return
        if kind == "snapshot":
            # Judged against the final log in check_fan: a reset is right only when the ops
            # after `since` would not fit the client buffer.
            self.segments.append(Segment(msg, resumed_from=since))
        elif not self.segments:
            self.problems.append(f"{self.name}: an op before any snapshot: {msg}")
            return
        else:
            self.segments[-1].ops.append(msg)
        self.last = msg["seq"]


# Faults


def _signal(target: TickerServer | RedisServer, sig: signal.Signals) -> None:
    if target.proc is not None:
        target.proc.send_signal(sig)


async def run_faults(
    seed: int, hubs: list[TickerServer], redis: RedisServer | None, until: float, log: list[str]
) -> None:
    """One fault at a time, each undone (restarted, resumed) before the next."""
    rng = random.Random(f"{seed}/faults")
    targets: list[tuple[str, TickerServer | RedisServer]] = [
        (f"hub{i}", hub) for i, hub in enumerate(hubs)
    ]
    kinds = [("kill -9", name) for name, _ in targets] + [
        ("SIGTERM", f"hub{i}") for i in range(len(hubs))
    ]
    if redis is not None:
        targets.append(("redis", redis))
        kinds.append(("kill -9", "redis"))
    kinds += [("SIGSTOP", name) for name, _ in targets]
    by_name = dict(targets)
    start = time.monotonic()
    await asyncio.sleep(rng.uniform(0.5, 1.5))
    while time.monotonic() < until:
        kind, name = rng.choice(kinds)
        target = by_name[name]
        at = time.monotonic() - start
        if kind == "kill -9":
            down = rng.uniform(0.0, 1.0)
            await asyncio.to_thread(target.kill)
            await asyncio.sleep(down)
            await asyncio.to_thread(target.start)
            what = f"{kind} {name}, down {down:.1f}s, restarted"
        elif kind == "SIGTERM":
            assert isinstance(target, TickerServer)
            await asyncio.to_thread(target.stop)
            await asyncio.to_thread(target.start)
            what = f"{kind} {name}, restarted"
        else:
            pause = rng.uniform(1.0, 3.0)
            _signal(target, signal.SIGSTOP)
            try:
                await asyncio.sleep(pause)
            finally:
                _signal(target, signal.SIGCONT)
            what = f"{kind} {name} for {pause:.1f}s, SIGCONT"
        log.append(f"{at:5.1f}s {what} (took {time.monotonic() - start - at:.1f}s)")
        await asyncio.sleep(rng.uniform(0.5, 2.0))


def resume_all(hubs: list[TickerServer], redis: RedisServer | None) -> None:
    """After a failure mid-fault: nothing may stay stopped (SIGTERM waits for SIGCONT)."""
    targets: list[TickerServer | RedisServer] = [*hubs, *([redis] if redis else [])]
    for target in targets:
        _signal(target, signal.SIGCONT)


# Checks


def read_log(base_url: str, match_id: str, bad: list[str]) -> list[dict[str, Any]]:
    """The whole log through GET /ops, page by page."""
    ops: list[dict[str, Any]] = []
    params: dict[str, str] = {}
    while True:
        r = httpx.get(f"{base_url}/api/matches/{match_id}/ops", params=params, timeout=10)
        if r.status_code != 200:
            bad.append(f"GET {r.url} -> {r.status_code} {r.text[:300]}")
            return ops
        page = r.json()
        ops += page["ops"]
        if not page.get("more"):
            return ops
        params = {"since": page["seq"]}


def _fold(ops: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Live events after `ops`, in the order a snapshot lists them."""
    events: dict[str, dict[str, Any]] = {}
    for op in ops:
        if op["op"] in ("add", "update"):
            events[op["event"]["id"]] = op["event"]
        elif op["op"] == "remove":
            events.pop(op["id"], None)
    return events


def _goals(events: dict[str, dict[str, Any]]) -> dict[str, int]:
    teams = [e["team"] for e in events.values() if e["type"] == "goal"]
    return {"home": teams.count("home"), "away": teams.count("away")}


def check_writes(log: list[dict[str, Any]], writes: list[Write]) -> list[str]:
    """(1) every acknowledged write is in the log once, as answered; nothing else is."""
    bad: list[str] = []
    by_key = {w.key: w for w in writes}
    delete_key = {w.event_id: w.key for w in writes if w.method == "DELETE"}
    in_log: dict[str, list[dict[str, Any]]] = {}
    seqs = Counter(op["seq"] for op in log)
    bad += [f"seq {seq} is {n} times in the log" for seq, n in seqs.items() if n > 1]
    for op in log[1:]:
        if op["op"] == "remove":
            key = delete_key.get(op["id"])
        else:
            found = _KEY_IN_TEXT.match(op.get("event", {}).get("text", ""))
            key = found.group(1) if found else None
        if key is None or key not in by_key:
            bad.append(f"an op in the log that no reporter wrote: {op}")
            continue
        in_log.setdefault(key, []).append(op)
    for w in writes:
        ops = in_log.get(w.key, [])
        if w.refused is not None:
            status = w.refused.split()[0]
            repeat = len(w.attempts) > 1 and bool(ops)
            what = "a repeat of its landed Idempotency-Key" if repeat else "it"
            bad.append(
                f"{w.method} answered {status} to {what}: {w.describe()}\n    -> {w.refused}\n"
                f"    the log holds {len(ops)} op(s) for this key: {[o['seq'] for o in ops]}"
            )
            continue
        if w.op is None:
            bad.append(f"never acknowledged: {w.describe()}")
            continue
        answered = {json.dumps(op, sort_keys=True) for _, op in w.answers}
        if len(answered) > 1:
            bad.append(f"one key, different answers: {w.describe()}\n    {sorted(answered)}")
        if w.method == "POST" and [s for s, _ in w.answers].count(201) > 1:
            bad.append(f"201 more than once for one key: {w.describe()}")
        if len(ops) != 1:
            bad.append(f"acknowledged, {len(ops)} ops in the log: {w.describe()} {ops}")
        elif ops[0] != w.op:
            bad.append(f"acknowledged op differs from the log's: {w.op} != {ops[0]}")
    return bad


def _check_reset(
    name: str, n: int, seg: Segment, log: list[dict[str, Any]], pos: dict[str, int]
) -> list[str]:
    """A fan that resumed with a seq it was sent got a snapshot: right only if that seq is
    in the log and the ops after it, up to the snapshot, would not fit the client buffer
    (the server then sends `"reset": true` instead of a backlog it could never deliver)."""
    since, snap = seg.resumed_from, seg.snapshot
    where = f"{name}: snapshot #{n} ({snap['seq']}) after a resume with since={since}"
    start, end = pos.get(since or ""), pos[snap["seq"]]
    if start is None:
        return [f"{where}: that seq is not in the log (an op the fan was sent is lost)"]
    backlog = sum(len(orjson.dumps(op)) for op in log[start + 1 : end + 1])
    if not snap.get("reset") or backlog <= CLIENT_BUFFER:
        return [f"{where}: reset={snap.get('reset')} though the {backlog} bytes after it fit"]
    return []


def check_fan(fan: Fan, log: list[dict[str, Any]]) -> list[str]:
    """(2) after each snapshot, exactly the log's ops after its seq, in order."""
    bad = list(fan.problems)
    pos = {op["seq"]: i for i, op in enumerate(log)}
    for n, seg in enumerate(fan.segments):
        snap = seg.snapshot
        i = pos.get(snap["seq"])
        if i is None:
            bad.append(f"{fan.name}: snapshot #{n} at seq {snap['seq']}, which is not in the log")
            continue
        if seg.resumed_from is not None:
            bad += _check_reset(fan.name, n, seg, log, pos)
        want = log[i + 1 : i + 1 + len(seg.ops)]
        if seg.ops != want:
            pairs = zip(seg.ops, [*want, None], strict=False)
            k = next(k for k, (got, expected) in enumerate(pairs) if got != expected)
            bad.append(
                f"{fan.name}: after snapshot #{n} ({snap['seq']}) message {k} is seq "
                f"{seg.ops[k]['seq']}, the log has {want[k]['seq'] if k < len(want) else 'none'} "
                f"there (got {[o['seq'] for o in seg.ops[max(0, k - 2) : k + 3]]}, log "
                f"{[o['seq'] for o in log[i + 1 + max(0, k - 2) : i + k + 4]]})"
            )
        prefix = log[: i + 1]
        if snap["events"] != list(_fold(prefix).values()):
            bad.append(f"{fan.name}: snapshot #{n} ({snap['seq']}) events differ from the log's")
        states = [op["state"] for op in prefix if "state" in op]
        if states and snap["state"] != states[-1]:
            bad.append(f"{fan.name}: snapshot #{n} state {snap['state']} != log's {states[-1]}")
        matches = [op["match"] for op in prefix if op["op"] == "match"]
        if snap["match"] != matches[-1]:
            bad.append(f"{fan.name}: snapshot #{n} match differs from the log's")
    if fan.last != log[-1]["seq"]:
        bad.append(f"{fan.name}: never caught up: last seq {fan.last}, head {log[-1]['seq']}")
    return bad


def check_scores(log: list[dict[str, Any]]) -> list[str]:
    """(3) each op's score counts the live goals up to and with it."""
    bad: list[str] = []
    for k, op in enumerate(log):
        if "state" in op:
            want = _goals(_fold(log[: k + 1]))
            if op["state"]["score"] != want:
                bad.append(f"op {op['seq']}: score {op['state']['score']}, live goals {want}")
    return bad


def check_snapshot(log: list[dict[str, Any]], snapshot: dict[str, Any], where: str) -> list[str]:
    """(3) GET /api/matches/{id}: the last op's state, the log's live events, its head."""
    bad: list[str] = []
    states = [op["state"] for op in log if "state" in op]
    if states and snapshot["state"] != states[-1]:
        bad.append(f"{where}: state {snapshot['state']} != last op's {states[-1]}")
    if snapshot["events"] != list(_fold(log).values()):
        bad.append(f"{where}: events differ from the fold of the log")
    if snapshot["seq"] != log[-1]["seq"]:
        bad.append(f"{where}: seq {snapshot['seq']} != log head {log[-1]['seq']}")
    return bad


# The run


@dataclass
class Run:
    """What one chaos run did and what the checks found."""

    seed: int
    engine: str
    faults: list[str] = field(default_factory=list)
    reporters: list[Reporter] = field(default_factory=list)
    fans: list[Fan] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        writes = [w for r in self.reporters for w in r.writes]
        acked = sum(w.op is not None for w in writes)

        def total(attr: str) -> int:
            return sum(getattr(r, attr) for r in self.reporters)

        kinds = Counter(f.split(":")[0] for f in self.failures)
        closes: Counter[str] = Counter()
        for fan in self.fans:
            closes.update(fan.closes)
        return "\n".join([
            f"chaos {self.engine} seed={self.seed} (TICKER_CHAOS_SEED={self.seed} to repeat)",
            f"  writes: {acked} acknowledged of {len(writes)} "
            f"({sum(w.method == 'POST' for w in writes)} POST, "
            f"{sum(w.method == 'PATCH' for w in writes)} PATCH, "
            f"{sum(w.method == 'DELETE' for w in writes)} DELETE), {total('replays')} replays "
            f"of old keys, {total('sent')} attempts, {total('lost')} replies dropped, "
            f"{total('unavailable')} x 503, {total('transport_errors')} connection errors",
            f"  fans: {len(self.fans)}, {sum(f.messages for f in self.fans)} messages, "
            f"{sum(len(f.segments) for f in self.fans)} snapshots, "
            f"connections ended: {dict(sorted(closes.items()))}",
            f"  faults ({len(self.faults)}):",
            *(f"    {line}" for line in self.faults),
            f"  failures: {len(self.failures)}",
            *(f"    {n} x {kind}" for kind, n in kinds.most_common()),
        ])  # fmt: skip

    def report(self, limit: int = 15) -> str:
        shown = [f"  - {f}" for f in self.failures[:limit]]
        more = len(self.failures) - limit
        return "\n".join(
            [self.summary(), *shown, *([f"  ... and {more} more"] if more > 0 else [])]
        )


async def run_chaos(
    run: Run,
    hubs: list[TickerServer],
    redis: RedisServer | None,
    match_ids: list[str],
    seconds: float,
) -> dict[str, list[dict[str, Any]]]:
    """Load, faults, then a bounded catch-up; returns each match's final log."""
    proxies = [DropProxy(hub.port) for hub in hubs]
    for proxy in proxies:
        await proxy.start()
    for m, match_id in enumerate(match_ids):
        run.reporters += [Reporter(f"m{m}r{i}", run.seed, match_id, proxies) for i in range(2)]
        run.fans += [Fan(f"m{m}f{i}", run.seed, match_id, hubs) for i in range(4)]
    stop, deadline = asyncio.Event(), [float("inf")]
    fans = [asyncio.create_task(fan.run()) for fan in run.fans]
    writers = [asyncio.create_task(r.run(stop, deadline)) for r in run.reporters]
    try:
        await run_faults(run.seed, hubs, redis, time.monotonic() + seconds, run.faults)
        stop.set()
        # Every write in flight is retried to an answer, within a bound.
        deadline[0] = time.monotonic() + 20
        await asyncio.gather(*writers)
        logs: dict[str, list[dict[str, Any]]] = {}
        for match_id in match_ids:
            logs[match_id] = await asyncio.to_thread(read_log, hubs[0].url, match_id, run.failures)
        heads = {match_id: log[-1]["seq"] for match_id, log in logs.items() if log}
        with contextlib.suppress(TimeoutError):  # check_fan names those that did not make it
            async with asyncio.timeout(15):
                for fan in run.fans:
                    while fan.last != heads.get(fan.match_id):
                        fan.moved.clear()
                        await fan.moved.wait()
        return logs
    finally:
        for task in [*fans, *writers]:
            task.cancel()
        await asyncio.gather(*fans, *writers, return_exceptions=True)
        for proxy in proxies:
            await proxy.close()


def check_run(run: Run, hubs: list[TickerServer], logs: dict[str, list[dict[str, Any]]]) -> None:
    """Checks (1)-(3) for every match; (4), no 500, is part of `refused`."""
    for match_id, log in logs.items():
        if not log:
            run.failures.append(f"{match_id}: empty log")
            continue
        for i, hub in enumerate(hubs[1:], 1):
            other = read_log(hub.url, match_id, run.failures)
            if other != log:
                run.failures.append(f"{match_id}: hub{i}'s log differs from hub0's")
        writes = [w for r in run.reporters if r.match_id == match_id for w in r.writes]
        run.failures += check_writes(log, writes)
        for fan in run.fans:
            if fan.match_id == match_id:
                run.failures += check_fan(fan, log)
        run.failures += check_scores(log)
        for i, hub in enumerate(hubs):
            r = httpx.get(f"{hub.url}/api/matches/{match_id}", timeout=10)
            if r.status_code != 200:
                run.failures.append(f"GET {r.url} -> {r.status_code} {r.text[:300]}")
                continue
            run.failures += check_snapshot(log, r.json(), f"hub{i} GET /api/matches/{match_id}")


def check_server_logs(run: Run, hubs: list[TickerServer]) -> None:
    """(4) no traceback in any server's output: what a client saw as a 500, or worse, not."""
    for i, hub in enumerate(hubs):
        if hub.log_path is None or not hub.log_path.exists():
            continue
        lines = hub.log_path.read_text(errors="replace").splitlines()
        for k, line in enumerate(lines):
            if line.startswith("Traceback") or "Exception in ASGI application" in line:
                run.failures.append(f"hub{i} log: " + " | ".join(lines[k : k + 30])[-3000:])
