"""The hub in process, over the real Redis engine: joins that race with leaves."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ticker.engines.redis import RedisEngine
from ticker.hub import Hub
from ticker.log import MatchLog
from ticker.model import validate_event_input, validate_match
from ticker.streams import QueuedSink

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_join_survives_the_last_fan_leaving_meanwhile(redis_url: str) -> None:
    """B's join awaits Redis while A, the match's only fan, leaves and the group is dropped.

    B must end up in a group that still gets live ops, not in the dropped one.
    """
    engine = RedisEngine(redis_url, prefix=f"h{uuid.uuid4().hex[:8]}")
    hub = Hub(engine)
    await engine.start(hub.on_ops)
    try:
        fields = validate_match({"id": "m", "home": {"name": "A"}, "away": {"name": "B"}})
        await engine.create_match(MatchLog("m").build_match(fields))
        a, b = QueuedSink(hub, 100), QueuedSink(hub, 100)
        await hub.join("m", None, a)
        # An unknown `since` makes B's join read Redis once more: it is suspended there...
        joining = asyncio.create_task(hub.join("m", "1-0", b))
        await asyncio.sleep(0)
        assert not joining.done()
        a.leave()  # ...when A leaves: the group is dropped, the match unwatched
        await joining
        assert hub.groups["m"] is b.group
        comment = validate_event_input({"type": "comment", "text": "live"})
        op, _ = await engine.append("m", lambda mlog: mlog.build_add(comment, "jens"))
        async with asyncio.timeout(5):
            async for batch in b.batches():
                if op.seq in {m.seq for m in batch}:
                    break
    finally:
        await engine.close()
