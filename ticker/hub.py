"""Per-process fan-out: the local subscribers of each match, and the hot path to them.

Per op, work happens once: the engine hands over each new op once, its JSON and its
WebSocket frame are made once (`Message`). Per subscriber, a raw WebSocket fan costs one
`transport.write` of the shared frame bytes; a queued subscriber (SSE, or WebSocket on
a server without the raw extension) costs one bounded deque append.

Joining (`Hub.join`) is gap-free by construction: the catch-up (snapshot or ops after
`since`) is computed and handed to the subscriber in the same synchronous step that
registers it for live ops, in a group that is still live, and engines apply and
deliver ops in the event loop, so no op can fall between history and live, and none
can come twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ticker import metrics
from ticker.engines.base import Engine
from ticker.errors import MatchNotFound
from ticker.log import MatchLog, live_first
from ticker.model import Op
from ticker.state import PERIOD_START, PERIODS, parse_at
from ticker.wire import Message, dumps

if TYPE_CHECKING:
    from ticker.presence import ViewerSet

log = logging.getLogger("ticker.hub")

CLOSE_TOO_SLOW = 4408
CLOSE_RESTART = 1012
_DRAIN_TICK = 0.02  # seconds between batches of closes while draining


class Sink(Protocol):
    """A subscriber that buffers: `push` must not block and must not raise."""

    def push(self, msg: Message) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class RawSink(Protocol):
    """A subscriber whose messages are WebSocket frame bytes written straight to a socket."""

    def write(self, frame: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def keepalive(self) -> None:
        """Ping; close if the previous ping went unanswered."""


class Group:
    """One match's local subscribers."""

    __slots__ = ("log", "match_id", "raw", "sinks", "viewers")

    def __init__(self, match_id: str, mlog: MatchLog) -> None:
        self.match_id = match_id
        self.log = mlog
        # Bound `write` methods, kept apart so the hot loop is a plain call per fan.
        self.raw: dict[RawSink, Callable[[bytes], None]] = {}
        self.sinks: set[Sink] = set()
        # Those of them that asked for viewer counts (ticker.presence), made on the first.
        self.viewers: ViewerSet | None = None

    def __len__(self) -> int:
        return len(self.raw) + len(self.sinks)

    def publish(self, msg: Message) -> None:
        if self.raw:
            frame = msg.frame
            for write in self.raw.values():
                try:
                    write(frame)
                except Exception:  # a socket torn down mid-loop; its own callback removes it
                    log.debug("write to a closing fan", exc_info=True)
        for sink in self.sinks:
            sink.push(msg)


class Hub:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.groups: dict[str, Group] = {}
        self._joining: dict[str, asyncio.Future[Group]] = {}
        self.closing = False
        self.matchlist = MatchList(self)

    def on_ops(self, match_id: str, ops: list[Op]) -> None:
        """Engine callback: new ops of a watched match, in order, once each."""
        group = self.groups.get(match_id)
        if group is not None:
            started = time.perf_counter()
            for op in ops:
                group.publish(op.message)
                metrics.sent(len(group), started)  # per op, not per fan
        self.matchlist.on_ops(match_id)

    def on_reset(self, match_id: str, mlog: MatchLog | None) -> None:
        """Engine callback: storage no longer holds the log this process had (it lost ops,
        was restored from an older copy, or the match was made again).

        Fans get a snapshot with `"reset": true` of the log as storage has it, and live
        ops from it; when the match is gone they are closed with 4404 (unknown match).
        """
        self.matchlist.on_reset(match_id, mlog)
        group = self.groups.get(match_id)
        if group is None:
            return
        if mlog is None:
            del self.groups[match_id]
            self.engine.unwatch(match_id)
            sinks: list[RawSink | Sink] = [*group.raw, *group.sinks]
            for sink in sinks:
                sink.close(4404, "unknown match")
            return
        group.log = mlog
        group.publish(mlog.snapshot(reset=True))

    async def _group(self, match_id: str) -> Group:
        group = self.groups.get(match_id)
        if group is not None:
            return group
        joining = self._joining.get(match_id)
        if joining is not None:
            return await asyncio.shield(joining)
        fut: asyncio.Future[Group] = asyncio.get_running_loop().create_future()
        self._joining[match_id] = fut
        try:
            mlog = await self.engine.watch(match_id)
            group = self.groups[match_id] = Group(match_id, mlog)
            fut.set_result(group)
            return group
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()
            raise
        finally:
            del self._joining[match_id]

    async def join(
        self, match_id: str, since: str | None, attach: Callable[[Group, list[Message]], None]
    ) -> None:
        """Join a match: `attach(group, backlog)` registers the subscriber and takes its
        catch-up (snapshot, ops after `since`, or a reset snapshot).

        `attach` runs in one synchronous step with the backlog's computation, so nothing
        falls between history and live ops. The awaits before it (watching the match,
        reading the log once more for a `since` another process may be ahead on) can
        see the match's last fan leave and its group dropped: then it joins again.
        """
        while True:
            group = await self._group(match_id)
            if since is not None and since not in group.log.index:
                await self.engine.log(match_id)
            if self.groups.get(match_id) is group:
                attach(group, self._backlog(group, since))
                return

    @staticmethod
    def _backlog(group: Group, since: str | None) -> list[Message]:
        if since is None:
            return [group.log.snapshot()]
        ops = group.log.since(since)
        if ops is None:
            return [group.log.snapshot(reset=True)]
        return [op.message for op in ops]

    def add_raw(self, group: Group, sink: RawSink) -> None:
        group.raw[sink] = sink.write

    def add_sink(self, group: Group, sink: Sink) -> None:
        group.sinks.add(sink)

    def remove(self, group: Group, sink: RawSink | Sink) -> None:
        if sink in group.raw:
            del group.raw[sink]  # type: ignore[arg-type]
        else:
            group.sinks.discard(sink)  # type: ignore[arg-type]
        if group.viewers is not None:
            group.viewers.discard(sink)
        if not group and self.groups.get(group.match_id) is group:
            del self.groups[group.match_id]
            if not self.matchlist.needs(group.match_id):
                self.engine.unwatch(group.match_id)

    def close_all(self, code: int = CLOSE_RESTART, reason: str = "server restarting") -> None:
        """Tell every subscriber to go (graceful shutdown): they reconnect with `since`."""
        self.closing = True
        for group in list(self.groups.values()):
            sinks: list[RawSink | Sink] = [*group.raw, *group.sinks]
            for sink in sinks:
                sink.close(code, reason)
        self.matchlist.close_all(code, reason)

    async def drain(
        self, seconds: float, code: int = CLOSE_RESTART, reason: str = "server restarting"
    ) -> None:
        """Refuse new subscribers and close the present ones spread evenly over `seconds`, so
        they come back to the other servers in a trickle rather than all at once."""
        self.closing = True
        sinks: list[RawSink | Sink] = [*self.matchlist.sinks]
        for group in list(self.groups.values()):
            sinks += [*group.raw, *group.sinks]
        loop = asyncio.get_running_loop()
        start, done = loop.time(), 0
        while done < len(sinks):
            elapsed = loop.time() - start
            # The i-th of n goes at seconds * i / n: the first at once, the last just
            # before `seconds`. Closing a sink that already left does nothing.
            due = len(sinks) if elapsed >= seconds else int(len(sinks) * elapsed / seconds) + 1
            for sink in sinks[done:due]:
                sink.close(code, reason)
            done = max(done, due)
            if done < len(sinks):
                await asyncio.sleep(_DRAIN_TICK)
        self.close_all(code, reason)  # any that joined while the first ones went

    async def keepalive(self, interval: float) -> None:
        """Ping every raw fan each `interval`; one silent for a whole interval is aborted.

        One loop for the process instead of a timer per connection.
        """
        while True:
            await asyncio.sleep(interval)
            for group in list(self.groups.values()):
                for sink in list(group.raw):
                    sink.keepalive()
            for conn in list(self.matchlist.pinged):
                conn.keepalive()

    @property
    def subscribers(self) -> int:
        return sum(len(g) for g in self.groups.values()) + len(self.matchlist.sinks)


LIST_INTERVAL = 5.0  # seconds between the match list's re-lists (TICKER_VIEWERS_INTERVAL)


def clock_start(mlog: MatchLog) -> float | None:
    """When the running period's clock started (epoch seconds), or None: the start that
    `ticker.state.clock` counts from, so a list client can run a card's clock without events."""
    phase = mlog.state["phase"]
    if phase not in PERIODS:
        return None
    base = PERIODS[phase][0]
    start: float | None = None
    for event in mlog.events.values():
        if PERIOD_START.get(event["type"]) == phase:
            start = parse_at(event["at"])
        elif start is not None:
            played = event["minute"] + event["added"] - base - 1
            start = min(start, parse_at(event["at"]) - max(0, played) * 60)
    return start


class MatchList:
    """The match list's subscribers (`/ws/matches`, `/sse/matches`): one stream of every
    match's summary, not a fan of any match (they are not in any `Group`, so they count in
    no viewer count).

    While it has a subscriber the process watches every match (one XREAD over all of them
    with Redis) and re-lists them every `interval` seconds: that is how a match created on
    another process shows up, and when changed viewer counts go out. Per op, per re-list,
    each summary is encoded once and shared by every list subscriber.
    """

    def __init__(self, hub: Hub, interval: float = LIST_INTERVAL) -> None:
        self.hub = hub
        self.interval = interval
        self.sinks: dict[Sink, frozenset[str] | None] = {}  # subscriber -> its ids, or all
        # Their WebSockets on the raw-capable server: pinged with the fans (`Hub.keepalive`),
        # so one whose client vanished (a phone off the network) is aborted, not kept.
        self.pinged: set[RawSink] = set()
        self.logs: dict[str, MatchLog] = {}  # watched for the list
        self._watching: set[str] = set()  # being watched for it (engine.watch under way)
        self.viewers: dict[str, int] = {}  # the count each match's last summary carried
        self.count: Callable[[str], int] = lambda match_id: 0
        self._task: asyncio.Task[None] | None = None

    def summary(self, mlog: MatchLog) -> dict[str, Any]:
        start = clock_start(mlog)
        viewers = self.viewers[mlog.id] = self.count(mlog.id)
        return {
            **mlog.summary(),
            "viewers": viewers,
            "clock_start": None if start is None else int(start * 1000),
        }

    async def join(self, sink: Sink, ids: frozenset[str] | None) -> None:
        """Register `sink` and hand it the `summaries` of its matches (live first), in one
        synchronous step after every match is watched: no change falls in between."""
        try:
            await self._sync()
        except BaseException:
            self._release()
            raise
        logs = sorted((m for m in self.logs.values() if ids is None or m.id in ids), key=live_first)
        entries = [self.summary(m) for m in logs]
        sink.push(Message(None, "summaries", dumps({"op": "summaries", "matches": entries})))
        self.sinks[sink] = ids
        if self._task is None:
            self._task = asyncio.create_task(self._relist())

    def needs(self, match_id: str) -> bool:
        """Whether the list watches the match (or is starting to): a fan's group leaving
        must not unwatch it."""
        return match_id in self.logs or match_id in self._watching

    def leave(self, sink: Sink) -> None:
        self.sinks.pop(sink, None)
        self._release()

    def _release(self) -> None:
        """No subscriber left: stop watching the matches no fan watches. The re-list task
        is not cancelled (that could cut an engine's `watch` in half); it sees it is no
        longer the current one and ends."""
        if self.sinks:
            return
        self._task = None
        for match_id in self.logs:
            # Nor a match a fan watches, or is starting to (its group not made yet).
            if match_id not in self.hub.groups and match_id not in self.hub._joining:
                self.hub.engine.unwatch(match_id)
        self.logs.clear()
        self.viewers.clear()

    async def _sync(self) -> None:
        """Watch every match storage has; the new ones' summaries go out."""
        for mlog in await self.hub.engine.logs():
            if mlog.id not in self.logs and mlog.id not in self._watching:
                self._watching.add(mlog.id)
                try:
                    self.logs[mlog.id] = await self.hub.engine.watch(mlog.id)
                except MatchNotFound:  # gone meanwhile
                    continue
                finally:
                    self._watching.discard(mlog.id)
                if self.sinks:
                    self.publish(self.logs[mlog.id])

    async def _relist(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self._task is not asyncio.current_task():
                return
            try:
                await self._sync()
                for match_id, mlog in list(self.logs.items()):
                    if self.count(match_id) != self.viewers.get(match_id):
                        self.publish(mlog)
            except Exception:  # storage away: the next re-list tries again
                log.warning("match list: re-list failed", exc_info=True)
            self._release()  # the last subscriber may have left while it listed

    def publish(self, mlog: MatchLog) -> None:
        msg = Message(None, "summary", dumps({"op": "summary", **self.summary(mlog)}))
        for sink, ids in list(self.sinks.items()):
            if ids is None or mlog.id in ids:
                sink.push(msg)

    def on_ops(self, match_id: str) -> None:
        mlog = self.logs.get(match_id)
        if mlog is not None and self.sinks:
            self.publish(mlog)

    def on_reset(self, match_id: str, mlog: MatchLog | None) -> None:
        if match_id not in self.logs:
            return
        if mlog is not None:
            self.logs[match_id] = mlog
            self.on_ops(match_id)
            return
        del self.logs[match_id]
        msg = Message(None, "gone", dumps({"op": "gone", "id": match_id}))
        for sink, ids in list(self.sinks.items()):
            if ids is None or match_id in ids:
                sink.push(msg)

    def close_all(self, code: int, reason: str) -> None:
        for sink in list(self.sinks):
            sink.close(code, reason)
