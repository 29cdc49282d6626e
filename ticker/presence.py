"""Who is here: fans per match on every process (viewer counts), reporters at work on a match.

Viewer counts cost nothing per fan: a fan joining or leaving only changes the size of its
match's group. One task per process, every `interval` seconds, publishes the process's
own counts (`PREFIX:viewers:{process}`, one JSON object, expiring) and reads the other
processes' (their ids in the set `PREFIX:viewers`), in one pipelined round trip; then, per
match whose total changed, it builds one `viewers` message and writes it to the fans that
asked for counts. A process that dies stops refreshing its key; the key expires so that no
count is older than `WINDOW` seconds when a fan sees it.

Reporters' presence is a heartbeat: each console says every few seconds which event type it
has open; an entry unrefreshed for `REPORTER_TTL` seconds is gone (Redis: one hash per match
with a TTL; embedded: in memory, the one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ticker import schema
from ticker.api import JSONResponse, read_json
from ticker.engines.redis_connect import call
from ticker.errors import Invalid
from ticker.hub import Group, Hub, RawSink, Sink
from ticker.model import validate_match_id
from ticker.wire import Message, dumps, loads

log = logging.getLogger("ticker.presence")

WINDOW = 15.0  # a count a fan is shown is at most this many seconds old
REPORTER_TTL = 15.0

Subscriber = RawSink | Sink


def viewers_message(count: int) -> Message:
    # No seq: never in the log, never replayed, moves no cursor (no SSE `id:` either).
    return Message(None, "viewers", dumps({"op": "viewers", "count": count}))


def _send(group: Group, sink: Subscriber, msg: Message) -> None:
    write = group.raw.get(sink)  # type: ignore[arg-type]
    if write is None:
        sink.push(msg)  # type: ignore[union-attr]
        return
    try:
        write(msg.frame)
    except Exception:  # a socket torn down mid-loop; its own callback removes it
        log.debug("write to a closing fan", exc_info=True)


class ViewerSet:
    """One group's subscribers that asked for counts, and what they were sent.

    `fans` have all seen `sent`. A fan gets its first count at its join; so that no fan
    gets two within one interval, fans that joined since the last tick wait in `joined`,
    then a tick in `young`, with the count they were given, before they join `fans`.
    """

    __slots__ = ("fans", "joined", "msg", "sent", "young")

    def __init__(self) -> None:
        self.fans: set[Subscriber] = set()
        self.joined: dict[Subscriber, int] = {}
        self.young: dict[Subscriber, int] = {}
        self.sent: int | None = None
        self.msg: tuple[int, Message] | None = None

    def discard(self, sink: Subscriber) -> None:
        self.fans.discard(sink)
        self.joined.pop(sink, None)
        self.young.pop(sink, None)

    def message(self, count: int) -> Message:
        """The message for `count`, made once while the count stays the same."""
        if self.msg is None or self.msg[0] != count:
            self.msg = (count, viewers_message(count))
        return self.msg[1]

    def tick(self, group: Group, count: int) -> None:
        due, self.young, self.joined = self.young, self.joined, {}
        if count != self.sent:
            for sink in list(self.fans):
                _send(group, sink, self.message(count))
            self.sent = count
        for sink, seen in due.items():  # joined over one interval ago
            if seen != count:
                _send(group, sink, self.message(count))
            self.fans.add(sink)


class Viewers:
    """This process's part of the viewer counts, and the other processes' latest."""

    def __init__(self, hub: Hub, client: Any, prefix: str, interval: float) -> None:
        self.hub = hub
        self.client = client  # redis.asyncio.Redis, or None: the embedded engine, one process
        self.interval = interval
        self.id = uuid.uuid4().hex
        self._ids_key = f"{prefix}:viewers"
        self._prefix = prefix
        # A process's key outlives its last refresh by less than the window, by one interval:
        # the tick that notices it gone comes at most one interval after it expires.
        self.ttl = WINDOW - interval
        self.others: dict[str, int] = {}
        self._known: list[str] = []  # the other processes' ids, as of the last tick
        self._gone: list[str] = []
        self._ok_at = time.monotonic()

    def _key(self, process: str) -> str:
        return f"{self._prefix}:viewers:{process}"

    def local(self) -> dict[str, int]:
        return {mid: len(g) for mid, g in self.hub.groups.items() if g}

    def count(self, match_id: str) -> int:
        group = self.hub.groups.get(match_id)
        return (len(group) if group is not None else 0) + self.others.get(match_id, 0)

    def opt_in(self, group: Group, sink: Subscriber) -> None:
        """A fan (already registered) asked for counts: its first one now, after its catch-up."""
        if group.viewers is None:
            group.viewers = ViewerSet()
        count = self.count(group.match_id)
        group.viewers.joined[sink] = count
        _send(group, sink, group.viewers.message(count))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._exchange()
                for match_id, group in list(self.hub.groups.items()):
                    if group.viewers is not None:
                        group.viewers.tick(group, self.count(match_id))
            except Exception:  # never let one bad tick end the counts
                log.exception("viewer counts: tick failed")

    async def _exchange(self) -> None:
        """Publish this process's counts and read the others', in one round trip."""
        if self.client is None:
            return
        known, gone = self._known, self._gone
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.set(self._key(self.id), dumps(self.local()), px=int(self.ttl * 1000))
                pipe.sadd(self._ids_key, self.id)
                if gone:
                    pipe.srem(self._ids_key, *gone)
                pipe.smembers(self._ids_key)
                if known:
                    pipe.mget([self._key(p) for p in known])
                replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            if time.monotonic() - self._ok_at > self.ttl:
                self.others = {}  # too old to show: only this process's own fans
            log.warning("viewer counts: Redis unreachable (%s)", exc)
            return
        self._ok_at = time.monotonic()
        members = replies[3 if gone else 2]
        others: dict[str, int] = {}
        self._gone = []
        for process, raw in zip(known, replies[-1] if known else [], strict=True):
            if raw is None:  # expired: the process is gone (or was cut off a whole window)
                self._gone.append(process)
                continue
            for match_id, n in loads(raw).items():
                others[match_id] = others.get(match_id, 0) + n
        self.others = others
        self._known = sorted(
            p for p in (m.decode() for m in members) if p != self.id and p not in self._gone
        )

    async def close(self) -> None:
        """Leave the counts at once on a graceful shutdown."""
        if self.client is not None:
            with contextlib.suppress(RedisError, OSError):
                async with self.client.pipeline(transaction=False) as pipe:
                    pipe.delete(self._key(self.id))
                    pipe.srem(self._ids_key, self.id)
                    await pipe.execute()


class Reporters:
    """Who is working on a match now, and which event type each has open."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._memory: dict[str, dict[str, tuple[str | None, float]]] = {}

    async def beat(self, match_id: str, name: str, typing: str | None) -> list[dict[str, Any]]:
        """Record `name` as present (until REPORTER_TTL from now); everyone present."""
        until = time.time() + REPORTER_TTL
        if self.client is None:
            self._memory.setdefault(match_id, {})[name] = (typing, until)
            return await self.present(match_id)
        key = f"{self.prefix}:presence:{{{match_id}}}"
        value = dumps({"typing": typing, "until": until})
        replies = await call(self._beat(key, name, value))
        return await self._entries(key, replies[-1])

    async def _beat(self, key: str, name: str, value: bytes) -> Any:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, name, value)
            pipe.expire(key, int(REPORTER_TTL))
            pipe.hgetall(key)
            return await pipe.execute()

    async def leave(self, match_id: str, name: str) -> None:
        if self.client is None:
            self._memory.get(match_id, {}).pop(name, None)
            return
        await call(self.client.hdel(f"{self.prefix}:presence:{{{match_id}}}", name))

    async def present(self, match_id: str) -> list[dict[str, Any]]:
        if self.client is None:
            now = time.time()
            here = self._memory.get(match_id, {})
            for name in [n for n, (_, until) in here.items() if until <= now]:
                del here[name]
            return [{"name": n, "typing": t} for n, (t, _) in sorted(here.items())]
        key = f"{self.prefix}:presence:{{{match_id}}}"
        return await self._entries(key, await call(self.client.hgetall(key)))

    async def _entries(self, key: str, raw: dict[bytes, bytes]) -> list[dict[str, Any]]:
        now = time.time()
        out, stale = [], []
        for name, value in sorted(raw.items()):
            entry = loads(value)
            if entry["until"] <= now:
                stale.append(name)
            else:
                out.append({"name": name.decode(), "typing": entry["typing"]})
        if stale:  # the hash's TTL goes only when nobody beats: drop the quiet ones
            await call(self.client.hdel(key, *stale))
        return out


# Routes (beyond the protocol; docs/protocol-notes.md): a console's heartbeat and its reply.


def _typing(body: Any) -> str | None:
    if not isinstance(body, dict):
        raise Invalid('the body must be an object like {"typing": "goal"}')
    # Through the schema of the document (a list as `typing` is a 422 there, not a 500).
    return schema.check(schema.PRESENCE_INPUT, body, "").get("typing")  # type: ignore[no-any-return]


async def _here(request: Request) -> tuple[str, str, Reporters]:
    """(match id, reporter name, presence) for a reporter's request on a match that exists."""
    who = await request.app.state.auth.writer(request, counted=False)
    match_id = validate_match_id(request.path_params["match_id"])
    await request.app.state.engine.log(match_id)  # unknown match: 404
    return match_id, who.name, request.app.state.reporters


def _reply(present: list[dict[str, Any]], you: str) -> Response:
    return JSONResponse({"you": you, "reporters": present, "ttl": REPORTER_TTL})


async def put_presence(request: Request) -> Response:
    match_id, name, reporters = await _here(request)
    typing = _typing(await read_json(request))
    return _reply(await reporters.beat(match_id, name, typing), name)


async def get_presence(request: Request) -> Response:
    match_id, name, reporters = await _here(request)
    return _reply(await reporters.present(match_id), name)


async def delete_presence(request: Request) -> Response:
    match_id, name, reporters = await _here(request)
    await reporters.leave(match_id, name)
    return Response(status_code=204)


routes: list[BaseRoute] = [
    Route("/api/matches/{match_id}/presence", put_presence, methods=["PUT"]),
    Route("/api/matches/{match_id}/presence", get_presence, methods=["GET"]),
    Route("/api/matches/{match_id}/presence", delete_presence, methods=["DELETE"]),
]
