"""Protocol v1.1 lineups and pinned events, on both engines, over real sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
from websockets.sync.client import connect

from tests.conftest import TickerServer, new_match


def reporter(admin: httpx.Client, server: TickerServer, name: str) -> httpx.Client:
    r = admin.post("/api/reporters", json={"name": name})
    assert r.status_code == 201, r.text
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {r.json()['token']}"}
    )


def squad(starters: int = 11, bench: int = 7) -> list[dict[str, Any]]:
    players: list[dict[str, Any]] = [
        {"number": n, "name": f"Player {n}", "position": "MF", "starter": True}
        for n in range(1, starters + 1)
    ]
    players += [{"number": 40 + n, "name": f"Sub {n}"} for n in range(bench)]
    return players


HOME = {"formation": "4-3-3", "coach": "Jacob Neestrup", "players": squad()}


def as_stored(lineup: dict[str, Any]) -> dict[str, Any]:
    """A LINEUP as the server answers it: every key of every player present."""
    players = [
        {"position": None, "starter": False, "captain": False, **p} for p in lineup["players"]
    ]
    return {"formation": None, "coach": None, **lineup, "players": players}


def ops(client: httpx.Client, match_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/matches/{match_id}/ops")
    assert r.status_code == 200, r.text
    return list(r.json()["ops"])


def snapshot(client: httpx.Client, match_id: str) -> dict[str, Any]:
    r = client.get(f"/api/matches/{match_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def assert_invalid(r: httpx.Response, field: str | None) -> None:
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid"
    assert r.json()["error"]["field"] == field, r.text


def test_lineups_set_kept_and_streamed(server: TickerServer, match_id: str) -> None:
    url = f"/api/matches/{match_id}/lineups"
    with server.admin() as admin:
        new_match(admin, match_id)
        with reporter(admin, server, f"rep-{match_id[-12:]}") as rep:
            assert snapshot(admin, match_id)["lineups"] == {"home": None, "away": None}
            with connect(f"{server.ws_url}/ws/matches/{match_id}") as fan:
                first = json.loads(fan.recv(timeout=10))
                assert first["op"] == "snapshot"
                assert first["lineups"] == {"home": None, "away": None}
                r = rep.put(url, json={"home": HOME})
                assert r.status_code == 200, r.text
                op = r.json()["op"]
                assert op["op"] == "lineups" and op["by"] == f"rep-{match_id[-12:]}"
                assert op["lineups"] == {"home": as_stored(HOME), "away": None}
                assert json.loads(fan.recv(timeout=10)) == op
                # A side left out stays as it was.
                away = {"players": [{"number": 1, "name": "Meret", "position": "GK",
                                     "starter": True, "captain": True}]}  # fmt: skip
                r = rep.put(url, json={"away": away})
                assert r.status_code == 200, r.text
                both = {"home": as_stored(HOME), "away": as_stored(away)}
                assert r.json()["op"]["lineups"] == both
                assert json.loads(fan.recv(timeout=10)) == r.json()["op"]
            # A new fan's snapshot, the HTTP snapshot and /ops have them.
            with connect(f"{server.ws_url}/ws/matches/{match_id}") as late:
                assert json.loads(late.recv(timeout=10))["lineups"] == both
            assert snapshot(admin, match_id)["lineups"] == both
            assert [o["op"] for o in ops(admin, match_id)] == ["match", "lineups", "lineups"]
            with httpx.stream("GET", f"{server.url}/sse/matches/{match_id}", timeout=10) as sse:
                data = next(line for line in sse.iter_lines() if line.startswith("data:"))
                assert json.loads(data[5:])["lineups"] == both
        # The admin may too; null clears a side.
        r = admin.put(url, json={"home": None})
        assert r.status_code == 200, r.text
        assert r.json()["op"]["lineups"] == {"home": None, "away": both["away"]}


def test_lineups_faults_append_nothing(server: TickerServer, match_id: str) -> None:
    url = f"/api/matches/{match_id}/lineups"
    with server.admin() as admin:
        new_match(admin, match_id)
        before = ops(admin, match_id)
        assert_invalid(
            admin.put(url, json={"home": {"players": squad(12)}}), "home.players[11].starter"
        )
        dup = squad()
        dup[5]["number"] = dup[2]["number"]
        assert_invalid(admin.put(url, json={"home": {"players": dup}}), "home.players[5].number")
        assert_invalid(admin.put(url, json={"away": {"players": squad(11, 20)}}), "away.players")
        bad = squad()
        bad[3]["position"] = "ST"
        assert_invalid(admin.put(url, json={"home": {"players": bad}}), "home.players[3].position")
        for number in (0, 100, 7.0, "7"):
            bad = squad()
            bad[0]["number"] = number
            assert_invalid(
                admin.put(url, json={"home": {"players": bad}}), "home.players[0].number"
            )
        assert_invalid(
            admin.put(url, json={"home": {"players": [], "formation": "4-4-3"}}), "home.formation"
        )
        assert_invalid(
            admin.put(url, json={"home": {"players": [], "formation": "442"}}), "home.formation"
        )
        assert_invalid(admin.put(url, json={"home": {"players": [{"number": 1}]}}),
                       "home.players[0].name")  # fmt: skip
        assert_invalid(admin.put(url, json={"home": {"players": [], "shirts": 1}}), "home")
        assert_invalid(admin.put(url, json={"bench": {}}), "bench")
        assert_invalid(admin.put(url, json={}), None)
        assert admin.put(url, json=[]).status_code == 400
        assert ops(admin, match_id) == before
        # Not signed in: 401; an unknown match: 404.
        r = httpx.put(server.url + url, json={"home": HOME})
        assert r.status_code == 401, r.text
        assert (
            admin.put(f"/api/matches/no-{match_id}/lineups", json={"home": HOME}).status_code == 404
        )
        assert ops(admin, match_id) == before


def test_lineups_idempotent_retry(server: TickerServer, match_id: str) -> None:
    url = f"/api/matches/{match_id}/lineups"
    with server.admin() as admin:
        new_match(admin, match_id)
        key = {"Idempotency-Key": "lineups-1"}
        first = admin.put(url, json={"home": HOME}, headers=key)
        assert first.status_code == 200, first.text
        again = admin.put(url, json={"home": HOME}, headers=key)
        assert again.status_code == 200 and again.json() == first.json()
        other = admin.put(url, json={"away": HOME}, headers=key)
        assert other.status_code == 409 and other.json()["error"]["field"] == "Idempotency-Key"
        assert [o["op"] for o in ops(admin, match_id)] == ["match", "lineups"]


def test_pinned_events(server: TickerServer, match_id: str) -> None:
    events = f"/api/matches/{match_id}/events"
    with server.admin() as admin:
        new_match(admin, match_id)
        plain = admin.post(events, json={"type": "comment", "text": "Sun over Parken"})
        pinned = admin.post(events, json={"type": "comment", "text": "Pinned", "pinned": True})
        assert plain.status_code == pinned.status_code == 201, (plain.text, pinned.text)
        assert plain.json()["op"]["event"]["pinned"] is False
        event = pinned.json()["op"]["event"]
        assert event["pinned"] is True
        assert_invalid(admin.post(events, json={"type": "comment", "pinned": 1}), "pinned")
        assert_invalid(admin.patch(f"{events}/{event['id']}", json={"pinned": None}), "pinned")
        r = admin.patch(f"{events}/{event['id']}", json={"pinned": False})
        assert r.status_code == 200, r.text
        assert r.json()["op"]["event"]["pinned"] is False and r.json()["op"]["event"]["rev"] == 2
        r = admin.patch(f"{events}/{plain.json()['op']['event']['id']}", json={"pinned": True})
        assert r.status_code == 200, r.text
        shown = snapshot(admin, match_id)["events"]
        assert [e["pinned"] for e in shown] == [True, False]
        with connect(f"{server.ws_url}/ws/matches/{match_id}") as fan:
            assert [e["pinned"] for e in json.loads(fan.recv(timeout=10))["events"]] == [
                True,
                False,
            ]


def test_lineups_and_pinned_survive_a_restart_and_reach_other_processes(
    make_server: Any, redis_url: str, match_id: str
) -> None:
    """The embedded loader and the Redis reader both take a `lineups` op through the log."""
    embedded = make_server()
    first, second = make_server(redis_url=redis_url), make_server(redis_url=redis_url)
    for writer, reader in ((embedded, embedded), (first, second)):
        with writer.admin() as admin:
            new_match(admin, match_id)
            assert admin.put(f"/api/matches/{match_id}/lineups", json={"home": HOME}).is_success
            r = admin.post(f"/api/matches/{match_id}/events", json={"type": "var", "pinned": True})
            assert r.status_code == 201, r.text
        if reader is writer:
            reader.restart()
        with reader.admin() as admin:
            snap = snapshot(admin, match_id)
            assert snap["lineups"] == {"home": as_stored(HOME), "away": None}
            assert [e["pinned"] for e in snap["events"]] == [True]


def test_lineups_are_in_the_first_paint(server: TickerServer, match_id: str) -> None:
    """The fan page and the iframe embed carry the lineups in their HTML, before any script."""
    with server.admin() as admin:
        new_match(admin, match_id)
        page = admin.get(f"/matches/{match_id}").text
        assert 'data-tk="lineups" part="lineups" hidden' in page  # nothing to show yet
        r = admin.put(f"/api/matches/{match_id}/lineups", json={"home": HOME})
        assert r.status_code == 200, r.text
        for path in (f"/matches/{match_id}", f"/embed/{match_id}"):
            html = admin.get(path).text
            assert html.count('data-tk="lineups"') == 1
            assert 'data-tk="lineups" part="lineups">' in html  # shown
            assert "Player 11" in html and "Sub 6" in html and "Jacob Neestrup" in html
