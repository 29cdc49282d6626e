"""One contract, two engines: every test here runs against embedded and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.conftest import RedisServer, free_port
from ticker.engines.base import Engine, Idempotency
from ticker.engines.embedded import EmbeddedEngine
from ticker.engines.redis import RedisEngine
from ticker.errors import Conflict, EngineUnavailable, MatchNotFound, NotFound
from ticker.log import MatchLog
from ticker.model import Op, seq_key, validate_event_input, validate_match
from ticker.state import fold, initial_state

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    """The handler an engine is started with: records what it delivers."""

    def __init__(self) -> None:
        self.ops: dict[str, list[Op]] = {}
        self.changed = asyncio.Event()

    def __call__(self, match_id: str, ops: list[Op]) -> None:
        self.ops.setdefault(match_id, []).extend(ops)
        self.changed.set()

    async def wait_for(self, match_id: str, count: int) -> list[Op]:
        async with asyncio.timeout(10):
            while len(self.ops.get(match_id, [])) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.ops[match_id]


EngineFactory = Callable[[], Awaitable[tuple[Engine, Recorder]]]


@pytest.fixture(params=["embedded", "redis"])
async def make_engine(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[EngineFactory]:
    """Factory of started engines over one store.

    With Redis each call is like another process. The embedded engine is one process
    by design: while one is open, a call returns that same engine.
    """
    engines: list[tuple[Engine, Recorder]] = []
    prefix = f"t{uuid.uuid4().hex[:8]}"

    async def make() -> tuple[Engine, Recorder]:
        if request.param == "redis":
            if redis_server.proc is None:
                redis_server.start()
            engine: Engine = RedisEngine(redis_server.url, prefix=prefix)
        elif engines and not engines[-1][0].closed:  # type: ignore[attr-defined]
            return engines[-1]
        else:
            engine = EmbeddedEngine(tmp_path / "data", fsync=False)
        recorder = Recorder()
        await engine.start(recorder)
        engines.append((engine, recorder))
        return engine, recorder

    yield make
    for engine, _ in engines:
        await engine.close()


def match_op(match_id: str) -> Op:
    fields = validate_match({"id": match_id, "home": {"name": "FCK"}, "away": {"name": "SSC"}})
    return MatchLog(match_id).build_match(fields)


def adder(body: dict[str, object], author: str = "jens") -> Callable[[MatchLog], Op]:
    fields = validate_event_input(body)
    return lambda mlog: mlog.build_add(fields, author)


async def test_create_and_read(make_engine: EngineFactory) -> None:
    engine, _ = await make_engine()
    op = await engine.create_match(match_op("m1"))
    mlog = await engine.log("m1")
    assert mlog.head == op.seq
    assert mlog.match is not None and mlog.match["home"]["name"] == "FCK"
    assert [m.id for m in await engine.logs()] == ["m1"]
    with pytest.raises(Conflict):
        await engine.create_match(match_op("m1"))
    with pytest.raises(MatchNotFound):
        await engine.log("nope")
    with pytest.raises(MatchNotFound):
        await engine.append("nope", adder({"type": "comment"}))


async def test_append_orders_and_folds(make_engine: EngineFactory) -> None:
    engine, _ = await make_engine()
    await engine.create_match(match_op("m2"))
    await engine.append("m2", adder({"type": "kickoff"}))
    goal, created = await engine.append("m2", adder({"type": "goal", "team": "away"}))
    assert created and goal.data["event"]["id"] == goal.seq
    assert goal.data["state"]["score"] == {"home": 0, "away": 1}
    fix, _ = await engine.append("m2", lambda m: m.build_update(goal.seq, {"team": "home"}))
    assert fix.data["event"]["rev"] == 2 and fix.data["state"]["score"] == {"home": 1, "away": 0}
    gone, _ = await engine.append("m2", lambda m: m.build_remove(goal.seq))
    assert gone.data == {
        "op": "remove",
        "seq": gone.seq,
        "id": goal.seq,
        "state": {**initial_state(), "phase": "first_half"},  # v1.1: no stats yet
    }
    with pytest.raises(NotFound):
        await engine.append("m2", lambda m: m.build_remove(goal.seq))
    mlog = await engine.log("m2")
    keys = [op.key for op in mlog.ops]
    assert keys == sorted(keys) and len(set(keys)) == len(keys) == 5
    assert mlog.state == fold(mlog.events.values())


async def test_idempotency_key_appends_once(make_engine: EngineFactory) -> None:
    engine, _ = await make_engine()
    await engine.create_match(match_op("m3"))
    idem = Idempotency("key-1", "digest-a")
    first, created = await engine.append("m3", adder({"type": "comment", "text": "a"}), idem)
    again, created_again = await engine.append("m3", adder({"type": "comment"}), idem)
    assert created and not created_again and again.data == first.data
    with pytest.raises(Conflict):
        await engine.append("m3", adder({"type": "comment"}), Idempotency("key-1", "digest-b"))
    assert len((await engine.log("m3")).ops) == 2


async def test_any_client_key_is_the_clients_own(make_engine: EngineFactory) -> None:
    """Keys the engine uses itself (creating a match, retrying) never meet a client's."""
    engine, _ = await make_engine()
    await engine.create_match(match_op("m9"))
    for key in ("create", "auto:0", "demo-0"):
        _, created = await engine.append("m9", adder({"type": "comment"}), Idempotency(key, "d"))
        assert created, key


async def test_concurrent_retries_of_one_key_make_one_op(make_engine: EngineFactory) -> None:
    engines = [(await make_engine())[0] for _ in range(3)]
    await engines[0].create_match(match_op("m4"))
    idem = Idempotency("retry-me", "d")
    results = await asyncio.gather(
        *(engines[i % 3].append("m4", adder({"type": "comment"}), idem) for i in range(30))
    )
    assert sum(created for _, created in results) == 1
    assert len({op.seq for op, _ in results}) == 1
    assert len((await engines[1].log("m4")).ops) == 2


async def test_concurrent_writers_all_land_in_order(make_engine: EngineFactory) -> None:
    engines = [(await make_engine())[0] for _ in range(3)]
    await engines[0].create_match(match_op("m5"))
    await engines[0].append("m5", adder({"type": "kickoff"}))
    results = await asyncio.gather(
        *(engines[i % 3].append("m5", adder({"type": "goal", "team": "home"})) for i in range(30))
    )
    assert all(created for _, created in results)
    mlog = await engines[2].log("m5")
    assert len(mlog.ops) == 32
    assert [op.key for op in mlog.ops] == sorted(op.key for op in mlog.ops)
    assert mlog.state["score"] == {"home": 30, "away": 0}
    assert max(op.data["state"]["score"]["home"] for op, _ in results) == 30


async def test_watch_delivers_every_op_once_in_order(make_engine: EngineFactory) -> None:
    engine, seen = await make_engine()
    other, _ = await make_engine()
    await engine.create_match(match_op("m6"))
    watched = await engine.watch("m6")
    head = watched.head
    for i in range(10):
        writer = engine if i % 2 else other
        await writer.append("m6", adder({"type": "comment", "text": str(i)}))
    ops = await seen.wait_for("m6", 10)
    assert [op.data["event"]["text"] for op in ops] == [str(i) for i in range(10)]
    assert seq_key(ops[0].seq) > seq_key(head)
    await asyncio.sleep(0.2)
    assert len(seen.ops["m6"]) == 10
    engine.unwatch("m6")
    await engine.append("m6", adder({"type": "comment"}))
    await asyncio.sleep(0.2)
    assert len(seen.ops["m6"]) == 10


async def test_log_survives_a_new_engine(make_engine: EngineFactory) -> None:
    engine, _ = await make_engine()
    await engine.create_match(match_op("m7"))
    await engine.append("m7", adder({"type": "kickoff"}), Idempotency("k", "d"))
    await engine.append("m7", adder({"type": "goal", "team": "home"}))
    await engine.close()
    fresh, _ = await make_engine()
    mlog = await fresh.log("m7")
    assert len(mlog.ops) == 3 and mlog.state["score"]["home"] == 1
    again, created = await fresh.append("m7", adder({"type": "kickoff"}), Idempotency("k", "d"))
    assert not created and again.seq == mlog.ops[1].seq


async def test_reporters(make_engine: EngineFactory) -> None:
    engine, _ = await make_engine()
    await engine.add_reporter("jens", "hash-1")
    await engine.add_reporter("mette", "hash-2")
    with pytest.raises(Conflict):
        await engine.add_reporter("jens", "hash-3")
    assert await engine.reporters() == ["jens", "mette"]
    assert await engine.reporter_for("hash-1") == "jens"
    assert await engine.revoke_reporter("jens")
    assert not await engine.revoke_reporter("jens")
    assert await engine.reporter_for("hash-1") is None
    other, _ = await make_engine()
    assert await other.reporters() == ["mette"]


async def test_unreachable_redis_is_engine_unavailable() -> None:
    engine = RedisEngine(f"redis://127.0.0.1:{free_port()}/0", prefix="gone")
    await engine.start(Recorder())
    try:
        with pytest.raises(EngineUnavailable):
            await engine.ping()
        with pytest.raises(EngineUnavailable):
            await engine.create_match(match_op("m8"))
        with pytest.raises(EngineUnavailable):
            await engine.log("m8")
    finally:
        await engine.close()


async def test_repeated_remove_with_its_key_answers_the_original_op(
    make_engine: EngineFactory,
) -> None:
    engine, _ = await make_engine()
    await engine.create_match(match_op("m10"))
    goal, _ = await engine.append("m10", adder({"type": "goal", "team": "home"}))
    idem = Idempotency("del-1", "d")
    gone, created = await engine.append("m10", lambda m: m.build_remove(goal.seq), idem)
    again, created_again = await engine.append("m10", lambda m: m.build_remove(goal.seq), idem)
    assert created and not created_again and again.data == gone.data
    with pytest.raises(NotFound):
        await engine.append("m10", lambda m: m.build_remove(goal.seq), Idempotency("del-2", "d"))
    assert len((await engine.log("m10")).ops) == 3
