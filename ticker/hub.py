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
from typing import TYPE_CHECKING, Protocol

from ticker import metrics
from ticker.engines.base import Engine
from ticker.log import MatchLog
from ticker.model import Op
from ticker.wire import Message

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

    def on_ops(self, match_id: str, ops: list[Op]) -> None:
        """Engine callback: new ops of a watched match, in order, once each."""
        group = self.groups.get(match_id)
        if group is not None:
            started = time.perf_counter()
            for op in ops:
                group.publish(op.message)
                metrics.sent(len(group), started)  # per op, not per fan

    def on_reset(self, match_id: str, mlog: MatchLog | None) -> None:
        """Engine callback: storage no longer holds the log this process had (it lost ops,
        was restored from an older copy, or the match was made again).

        Fans get a snapshot with `"reset": true` of the log as storage has it, and live
        ops from it; when the match is gone they are closed with 4404 (unknown match).
        """
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
            self.engine.unwatch(group.match_id)

    def close_all(self, code: int = CLOSE_RESTART, reason: str = "server restarting") -> None:
        """Tell every subscriber to go (graceful shutdown): they reconnect with `since`."""
        self.closing = True
        for group in list(self.groups.values()):
            sinks: list[RawSink | Sink] = [*group.raw, *group.sinks]
            for sink in sinks:
                sink.close(code, reason)

    async def drain(
        self, seconds: float, code: int = CLOSE_RESTART, reason: str = "server restarting"
    ) -> None:
        """Refuse new subscribers and close the present ones spread evenly over `seconds`, so
        they come back to the other servers in a trickle rather than all at once."""
        self.closing = True
        sinks: list[RawSink | Sink] = []
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

    @property
    def subscribers(self) -> int:
        return sum(len(g) for g in self.groups.values())
