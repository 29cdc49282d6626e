"""Protocol v1.1 `state` (stats, sent_off, scorers, penalties) over real sockets, both engines.

Every write is checked everywhere a client sees state: the op the API answers, the op a
WebSocket fan receives, the GET snapshot, the match list, and a new fan's snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from websockets.sync.client import ClientConnection, connect

from tests.conftest import RedisServer, TickerServer, new_match
from ticker.log import MatchLog
from ticker.state import STAT_KEYS, fold

NO_STATS = dict.fromkeys(STAT_KEYS, 0)
V1_KEYS = ("score", "phase", "minute", "added")
T0 = 1_764_100_000.0


def stats(**given: int) -> dict[str, int]:
    return {**NO_STATS, **given}


def recv(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=10)))


class Desk:
    """A reporter writing to one match while a fan watches it over WebSocket."""

    def __init__(self, server: TickerServer, match_id: str, fan: ClientConnection) -> None:
        self.server, self.match_id, self.fan = server, match_id, fan
        self.admin = server.admin()

    def post(self, **event: Any) -> dict[str, Any]:
        return self._write("POST", "/events", event)

    def patch(self, event_id: str, **fields: Any) -> dict[str, Any]:
        return self._write("PATCH", f"/events/{event_id}", fields)

    def delete(self, event_id: str) -> dict[str, Any]:
        return self._write("DELETE", f"/events/{event_id}", None)

    def _write(self, method: str, path: str, body: Any) -> dict[str, Any]:
        url = f"/api/matches/{self.match_id}{path}"
        r = self.admin.request(method, url, json=body)
        assert r.status_code in (200, 201), r.text
        op = dict(r.json()["op"])
        assert recv(self.fan) == op
        assert_state_everywhere(self.server, self.match_id, op["seq"], op["state"])
        return op


def assert_state_everywhere(
    server: TickerServer, match_id: str, seq: str, state: dict[str, Any]
) -> None:
    """The snapshot, the match list and a new fan's snapshot all hold `state` at `seq`."""
    snap = httpx.get(f"{server.url}/api/matches/{match_id}").json()
    assert (snap["seq"], snap["state"]) == (seq, state)
    assert snap["state"] == fold(snap["events"])  # derived only from the live events
    listing = httpx.get(f"{server.url}/api/matches").json()["matches"]
    mine = next(m for m in listing if m["match"]["id"] == match_id)
    assert (mine["seq"], mine["state"]) == (seq, state)
    with connect(f"{server.ws_url}/ws/matches/{match_id}") as ws:
        fresh = recv(ws)
        assert (fresh["op"], fresh["seq"], fresh["state"]) == ("snapshot", seq, state)


@contextmanager
def desk(server: TickerServer, match_id: str) -> Iterator[Desk]:
    with server.admin() as admin:
        new_match(admin, match_id)
    with connect(f"{server.ws_url}/ws/matches/{match_id}") as fan:
        assert recv(fan)["op"] == "snapshot"
        d = Desk(server, match_id, fan)
        try:
            yield d
        finally:
            d.admin.close()


def test_stats_scorers_and_own_goals(server: TickerServer, match_id: str) -> None:
    with desk(server, match_id) as d:
        d.post(type="kickoff")
        goal = d.post(type="goal", team="home", minute=9, player="Mohamed Achouri")
        assert goal["state"]["stats"]["home"] == stats(shots=1, shots_on_target=1)
        save = d.post(type="save", team="home", minute=12, player="Nathan Trott")
        assert save["state"]["stats"]["away"] == stats(shots=1, shots_on_target=1)
        d.post(type="miss", team="away", minute=15)
        d.post(type="corner", team="home", minute=16)
        d.post(type="foul", team="away", minute=17)
        d.post(type="offside", team="home", minute=18)
        d.post(type="substitution", team="away", minute=30, player_in="A", player_out="B")
        own = d.post(
            type="goal", team="away", minute=45, added=2, detail="own_goal", player="Kristensen"
        )
        last = d.post(type="goal", team="home", minute=60)
    assert own["state"]["score"] == {"home": 1, "away": 1}
    assert last["state"] == {
        "score": {"home": 2, "away": 1},
        "phase": "first_half",
        "minute": 60,
        "added": 0,
        "stats": {
            "home": stats(shots=2, shots_on_target=2, corners=1, offsides=1),
            "away": stats(shots=2, shots_on_target=1, fouls=1, substitutions=1),
        },
        "sent_off": [],
        "scorers": [
            {"team": "home", "player": "Mohamed Achouri", "minute": 9, "added": 0,
             "own_goal": False},
            {"team": "away", "player": "Kristensen", "minute": 45, "added": 2, "own_goal": True},
            {"team": "home", "player": None, "minute": 60, "added": 0, "own_goal": False},
        ],
        "penalties": None,
    }  # fmt: skip


def test_second_yellow_its_retraction_and_red_cards(server: TickerServer, match_id: str) -> None:
    with desk(server, match_id) as d:
        d.post(type="kickoff")
        d.post(type="yellow_card", team="away", minute=10, player="Alexander Scholz")
        d.post(type="yellow_card", team="home", minute=11, player="Alexander Scholz")
        second = d.post(type="yellow_card", team="away", minute=50, player=" alexander SCHOLZ ")
        assert second["state"]["sent_off"] == [{"team": "away", "player": " alexander SCHOLZ "}]
        assert second["state"]["stats"]["away"] == stats(yellow_cards=2, red_cards=1)
        gone = d.delete(second["event"]["id"])
        assert gone["state"]["sent_off"] == []
        assert gone["state"]["stats"]["away"] == stats(yellow_cards=1)
        again = d.post(type="yellow_card", team="away", minute=60, player="Alexander Scholz")
        red = d.post(type="red_card", team="away", minute=60, player="Alexander Scholz")
        assert red["state"]["sent_off"] == again["state"]["sent_off"]  # one sending-off
        assert red["state"]["stats"]["away"] == stats(yellow_cards=2, red_cards=1)
        nobody = d.post(type="red_card", team="home", minute=70)
        assert nobody["state"]["sent_off"] == [
            {"team": "away", "player": "Alexander Scholz"},
            {"team": "home", "player": None},
        ]
        # The yellow was someone else's after all: the red card alone sends Scholz off.
        fixed = d.patch(again["event"]["id"], player="Sory Kaba")
        assert fixed["state"]["sent_off"] == nobody["state"]["sent_off"]
        assert fixed["state"]["stats"] == {
            "home": stats(yellow_cards=1, red_cards=1),
            "away": stats(yellow_cards=2, red_cards=1),
        }


def test_goals_in_the_shootout_count_in_penalties_only(server: TickerServer, match_id: str) -> None:
    with desk(server, match_id) as d:
        d.post(type="kickoff")
        d.post(type="goal", team="home", minute=20, player="Achouri")
        before = d.post(type="extra_time")["state"]
        shootout = d.post(type="penalty_shootout", minute=120)
        assert shootout["state"]["penalties"] == {"home": 0, "away": 0}
        d.post(type="goal", team="home", minute=120, detail="penalty", player="Larsson")
        d.post(type="save", team="home", minute=120)
        d.post(type="yellow_card", team="away", minute=120, player="Kaba")
        d.post(type="goal", team="away", minute=120, detail="penalty", player="Scholz")
        end = d.post(type="full_time", minute=120)
        assert end["state"]["penalties"] == {"home": 1, "away": 1}
        assert end["state"]["phase"] == "full_time"
        for key in ("score", "scorers", "stats", "sent_off"):
            assert end["state"][key] == before[key]
        # Logged in error: without the shootout event, those goals are goals of play.
        undone = d.delete(shootout["event"]["id"])
        assert undone["state"]["penalties"] is None
        assert undone["state"]["score"] == {"home": 2, "away": 1}
        assert [s["player"] for s in undone["state"]["scorers"]] == ["Achouri", "Larsson", "Scholz"]
        assert undone["state"]["stats"]["away"] == stats(shots=2, shots_on_target=2, yellow_cards=1)


@pytest.mark.parametrize("engine", ["embedded", "redis"])
def test_a_v1_log_is_served_with_the_full_state(  # type: ignore[no-untyped-def]
    engine: str, make_server, redis_server: RedisServer, tmp_path: Path, match_id: str
) -> None:
    """A log written by a v1 server (state without the v1.1 keys) reads as v1.1 everywhere."""
    mlog = MatchLog(match_id)
    teams = {"home": {"name": "FC København", "short": "FCK"}, "away": {"name": "B", "short": "B"}}
    writes = [
        {"type": "kickoff"},
        {"type": "yellow_card", "team": "away", "player": "Scholz", "minute": 10},
        {"type": "goal", "team": "home", "player": "Achouri", "minute": 20},
        {"type": "yellow_card", "team": "away", "player": "scholz", "minute": 30},
    ]
    mlog.apply(mlog.build_match({"id": match_id, **teams}, now=T0))
    for i, fields in enumerate(writes):
        mlog.apply(mlog.build_add(fields, "jens", now=T0 + 60 * (i + 1)))
    v1_ops = []
    for op in mlog.ops:
        data = op.data
        if "state" in data:
            data = {**data, "state": {k: data["state"][k] for k in V1_KEYS}}
        v1_ops.append(orjson.dumps(data))
    if engine == "embedded":
        data_dir = tmp_path / "v1-data"
        (data_dir / "matches").mkdir(parents=True)
        lines = b"".join(b'{"o":' + raw + b"}\n" for raw in v1_ops)
        (data_dir / "matches" / f"{match_id}.log").write_bytes(lines)
        server = make_server(data_dir=data_dir)
    else:
        if redis_server.proc is None:
            redis_server.start()
        with redis.Redis.from_url(redis_server.url) as r:
            for op in mlog.ops:
                r.xadd(f"ticker:{{{match_id}}}:log", {"o": v1_ops[mlog.index[op.seq]]}, id=op.seq)
            r.sadd("ticker:matches", match_id)
        server = make_server(redis_url=redis_server.url)
    full = mlog.state
    assert full["sent_off"] == [{"team": "away", "player": "scholz"}]
    assert_state_everywhere(server, match_id, mlog.head, full)
    ops = httpx.get(f"{server.url}/api/matches/{match_id}/ops").json()["ops"]
    assert [op for op in ops if "state" in op] == [op.data for op in mlog.ops if "state" in op.data]
    first = mlog.ops[0].seq
    with connect(f"{server.ws_url}/ws/matches/{match_id}?since={first}") as ws:
        assert [recv(ws) for _ in writes] == [op.data for op in mlog.ops[1:]]
        d = Desk(server, match_id, ws)
        try:
            red = d.post(type="red_card", team="away", player="SCHOLZ", minute=40)
        finally:
            d.admin.close()
    assert red["state"] == {**full, "minute": 40}  # already off: the same sending-off
