"""`ticker serve --demo`: replay a real match (Atalanta - FC Midtjylland, 1-1) in fast time.

Each scripted event is appended with the Idempotency-Key `demo-N`, so a restarted
server resumes the replay where it stopped instead of posting anything twice. A
finished demo match is left as it is and the replay starts again under a new id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ticker.engines.base import Engine, Idempotency
from ticker.errors import Conflict, EngineUnavailable, MatchNotFound
from ticker.log import MatchLog
from ticker.model import Op, validate_event_input, validate_match

log = logging.getLogger("ticker.demo")
SCRIPT = Path(__file__).parent / "demo_data" / "fcm-atalanta.json"
HALF_TIME_PAUSE = 5.0  # wall seconds between the halves


def load_script() -> dict[str, Any]:
    return dict(orjson.loads(SCRIPT.read_bytes()))


async def _ensure(engine: Engine, fields: dict[str, Any]) -> MatchLog:
    try:
        return await engine.log(fields["id"])
    except MatchNotFound:
        pass
    with contextlib.suppress(Conflict):  # another process made it first
        await engine.create_match(MatchLog(fields["id"]).build_match(fields))
    return await engine.log(fields["id"])


async def _demo_match(engine: Engine, base: dict[str, Any]) -> str:
    """The id to replay under: the demo's own, or a fresh one when that one is over."""
    n = 1
    while True:
        match_id = base["id"] if n == 1 else f"{base['id']}-{n}"
        kickoff = datetime.now(UTC).isoformat(timespec="seconds")
        mlog = await _ensure(engine, validate_match({**base, "id": match_id, "kickoff": kickoff}))
        if mlog.state["phase"] != "full_time":
            return match_id
        n += 1


def _adder(fields: dict[str, Any]) -> Callable[[MatchLog], Op]:
    return lambda mlog: mlog.build_add(fields, "demo")


async def run(engine: Engine, speed: float = 60.0) -> None:
    """Replay the script: one match minute takes 60/speed wall seconds."""
    script = load_script()
    try:
        for upcoming in script.get("upcoming", []):
            fields = {k: v for k, v in upcoming.items() if k != "kickoff_in_minutes"}
            start = datetime.now(UTC) + timedelta(minutes=upcoming.get("kickoff_in_minutes", 30))
            fields["kickoff"] = start.isoformat(timespec="seconds")
            await _ensure(engine, validate_match(fields))
        match_id = await _demo_match(engine, script["match"])
        log.info("demo: replaying %s at %gx", match_id, speed)
        began = time.monotonic()
        offset = 0.0
        for n, raw in enumerate(script["events"]):
            fields = validate_event_input(raw)
            if raw["type"] == "second_half":
                offset += HALF_TIME_PAUSE
            due = began + offset + raw["minute"] * 60 / speed
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            idem = Idempotency(f"demo-{n}", "demo")
            await engine.append(match_id, _adder(fields), idem)
        log.info("demo: %s finished", match_id)
    except EngineUnavailable as exc:
        log.error("demo stopped: %s", exc.message)
