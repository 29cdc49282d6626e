"""The HTTP API over real sockets, on both engines: the contract, and bad input of every kind."""

from __future__ import annotations

import concurrent.futures
import socket

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, TickerServer, new_match
from ticker.state import STAT_KEYS


def post(client: httpx.Client, match_id: str, body: object, **headers: str) -> httpx.Response:
    return client.post(f"/api/matches/{match_id}/events", json=body, headers=headers)


def assert_error(r: httpx.Response, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) <= {"code", "message", "field"} and error["message"]
    assert "Traceback" not in r.text
    if field is not None:
        assert error.get("field") == field, error
    return dict(error)


def test_match_lifecycle(server: TickerServer, match_id: str) -> None:
    with server.admin() as admin:
        created = new_match(admin, match_id)
        assert created["id"] == match_id and created["home"]["name"] == "FC København"
        assert_error(admin.post("/api/matches", json=created), 409, "id")
        snap = admin.get(f"/api/matches/{match_id}").json()
        assert snap["op"] == "snapshot" and snap["events"] == [] and snap["match"] == created
        no_stats = dict.fromkeys(STAT_KEYS, 0)
        assert snap["state"] == {
            "score": {"home": 0, "away": 0},
            "phase": "pre_match",
            "minute": 0,
            "added": 0,
            "stats": {"home": no_stats, "away": no_stats},
            "sent_off": [],
            "scorers": [],
            "penalties": None,
        }
        kick = post(admin, match_id, {"type": "kickoff"})
        assert kick.status_code == 201
        goal = post(
            admin,
            match_id,
            {
                "type": "goal",
                "team": "away",
                "minute": 13,
                "player": "Alexander Scholz",
                "assist": "Sory Kaba",
                "detail": "header",
                "text": "Scholz!",
            },
        )
        assert goal.status_code == 201
        op = goal.json()["op"]
        assert op["op"] == "add" and op["event"]["id"] == op["seq"]
        assert op["event"]["rev"] == 1 and op["event"]["author"] == "admin"
        assert op["event"]["at"].endswith("Z")
        assert op["state"] == {
            "score": {"home": 0, "away": 1},
            "phase": "first_half",
            "minute": 13,
            "added": 0,
            "stats": {"home": no_stats, "away": {**no_stats, "shots": 1, "shots_on_target": 1}},
            "sent_off": [],
            "scorers": [
                {
                    "team": "away",
                    "player": "Alexander Scholz",
                    "minute": 13,
                    "added": 0,
                    "own_goal": False,
                }
            ],
            "penalties": None,
        }
        listing = admin.get("/api/matches").json()["matches"]
        mine = next(m for m in listing if m["match"]["id"] == match_id)
        assert mine["seq"] == op["seq"] and mine["state"]["score"]["away"] == 1

        eid = op["event"]["id"]
        fixed = admin.patch(f"/api/matches/{match_id}/events/{eid}", json={"minute": 14})
        assert fixed.status_code == 200
        upd = fixed.json()["op"]
        assert upd["op"] == "update" and upd["event"]["id"] == eid and upd["event"]["rev"] == 2
        assert upd["event"]["minute"] == 14 and upd["event"]["player"] == "Alexander Scholz"
        gone = admin.delete(f"/api/matches/{match_id}/events/{eid}")
        assert gone.status_code == 200
        rem = gone.json()["op"]
        assert rem["op"] == "remove" and rem["id"] == eid
        assert rem["state"]["score"] == {"home": 0, "away": 0}
        assert_error(admin.delete(f"/api/matches/{match_id}/events/{eid}"), 404, "event_id")

        meta = admin.patch(f"/api/matches/{match_id}", json={"venue": "Telia Parken"})
        assert meta.status_code == 200 and meta.json()["venue"] == "Telia Parken"
        ops = admin.get(f"/api/matches/{match_id}/ops").json()
        kinds = [o["op"] for o in ops["ops"]]
        assert kinds == ["match", "add", "add", "update", "remove", "match"]
        assert ops["seq"] == ops["ops"][-1]["seq"]
        page = admin.get(
            f"/api/matches/{match_id}/ops", params={"since": ops["ops"][1]["seq"], "limit": 2}
        ).json()
        assert [o["seq"] for o in page["ops"]] == [o["seq"] for o in ops["ops"][2:4]]
        assert page["seq"] == ops["ops"][3]["seq"]
        unknown = admin.get(f"/api/matches/{match_id}/ops", params={"since": "1-0"}).json()
        assert unknown["reset"] is True
        snap = admin.get(f"/api/matches/{match_id}").json()
        assert [e["type"] for e in snap["events"]] == ["kickoff"]
        assert snap["match"]["venue"] == "Telia Parken" and snap["seq"] == ops["seq"]


def test_idempotent_retry(server: TickerServer, match_id: str) -> None:
    with server.admin() as admin:
        new_match(admin, match_id)
        body = {"type": "goal", "team": "home", "minute": 3}
        first = post(admin, match_id, body, **{"Idempotency-Key": "abc-1"})
        again = post(admin, match_id, body, **{"Idempotency-Key": "abc-1"})
        assert first.status_code == 201 and again.status_code == 200
        assert again.json() == first.json()
        other = post(admin, match_id, {**body, "minute": 4}, **{"Idempotency-Key": "abc-1"})
        assert_error(other, 409, "Idempotency-Key")

        # Ten concurrent retries of one key: exactly one op.
        def retry(_: int) -> httpx.Response:
            with server.admin() as c:
                return post(
                    c, match_id, {"type": "comment", "text": "x"}, **{"Idempotency-Key": "k2"}
                )

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            results = list(pool.map(retry, range(10)))
        assert sorted(r.status_code for r in results) == [200] * 9 + [201]
        assert len({r.json()["op"]["seq"] for r in results}) == 1
        ops = admin.get(f"/api/matches/{match_id}/ops").json()["ops"]
        assert len(ops) == 3  # match, goal, comment


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"type": "goal", "minute": 10}, 422, "team"),
        ({"type": "penalty"}, 422, "type"),
        ({"team": "home"}, 422, "type"),
        ({"type": "comment", "minute": 151}, 422, "minute"),
        ({"type": "comment", "minute": -1}, 422, "minute"),
        ({"type": "comment", "minute": "12"}, 422, "minute"),
        ({"type": "comment", "minute": True}, 422, "minute"),
        ({"type": "comment", "added": 31}, 422, "added"),
        ({"type": "goal", "team": "both"}, 422, "team"),
        ({"type": "comment", "text": "x" * 2001}, 422, "text"),
        ({"type": "goal", "team": "home", "player": "p" * 81}, 422, "player"),
        ({"type": "goal", "team": "home", "detail": "d" * 41}, 422, "detail"),
        ({"type": "comment", "id": "1-0"}, 422, "id"),
        ({"type": "comment", "rev": 9}, 422, "rev"),
        ({"type": "comment", "at": "2026-01-01T00:00:00Z"}, 422, "at"),
        ({"type": "comment", "author": "someone"}, 422, "author"),
        ({"type": "comment", "colour": "red"}, 422, "colour"),
        ([1, 2], 400, None),
        ("goal", 400, None),
        (None, 400, None),
    ],
)
def test_bad_events_are_refused_and_append_nothing(
    server: TickerServer, match_id: str, body: object, status: int, field: str | None
) -> None:
    with server.admin() as admin:
        new_match(admin, match_id)
        assert_error(post(admin, match_id, body), status, field)
        assert len(admin.get(f"/api/matches/{match_id}/ops").json()["ops"]) == 1


def test_malformed_requests(server: TickerServer, match_id: str) -> None:
    with server.admin() as admin:
        new_match(admin, match_id)
        url = f"/api/matches/{match_id}/events"
        js = {"Content-Type": "application/json"}
        assert_error(admin.post(url, content=b"{not json", headers=js), 400)
        assert_error(admin.post(url, content=b""), 400)
        assert_error(admin.post(url, content=b"\xff\xfe", headers=js), 400)
        assert_error(admin.post(url, content=b"x" * (4 * 1024 * 1024)), 413)
        chunks = (b"[" + b"1," * 1024 for _ in range(4096))  # 8 MiB, no length up front
        assert_error(admin.post(url, content=chunks, headers=js), 413)
        assert_error(post(admin, "no-such-match", {"type": "comment"}), 404)
        assert_error(post(admin, "Bad_Id!", {"type": "comment"}), 422, "match_id")
        assert_error(admin.patch(f"{url}/not-a-seq", json={"minute": 1}), 422, "event_id")
        assert_error(admin.patch(f"{url}/1-0", json={"minute": 1}), 404, "event_id")
        assert_error(admin.get(f"/api/matches/{match_id}/ops", params={"since": "x"}), 400)
        assert_error(admin.get(f"/api/matches/{match_id}/ops", params={"limit": "0"}), 400)
        assert_error(admin.get(f"/api/matches/{match_id}/ops", params={"limit": "ab"}), 400)
        assert_error(admin.get("/api/matches/unknown-match"), 404)
        assert_error(admin.get("/api/nothing-here"), 404)
        assert_error(admin.put(f"/api/matches/{match_id}", json={}), 405)
        long_key = {"Idempotency-Key": "k" * 201}
        assert_error(post(admin, match_id, {"type": "comment"}, **long_key), 400)
        for bad_match in (
            {"id": "UPPER", "home": {"name": "a"}, "away": {"name": "b"}},
            {"id": "x" * 65, "home": {"name": "a"}, "away": {"name": "b"}},
            {"id": "ok-id", "home": "a", "away": {"name": "b"}},
            {"id": "ok-id", "away": {"name": "b"}},
        ):
            assert_error(admin.post("/api/matches", json=bad_match), 422)
        assert len(admin.get(f"/api/matches/{match_id}/ops").json()["ops"]) == 1


def test_auth(server: TickerServer, match_id: str) -> None:
    with server.admin() as admin:
        new_match(admin, match_id)
    with httpx.Client(base_url=server.url) as anon:
        assert_error(post(anon, match_id, {"type": "comment"}), 401)
        wrong = {"Authorization": "Bearer nope"}
        assert_error(post(anon, match_id, {"type": "comment"}, **wrong), 401, "Authorization")
        assert_error(post(anon, match_id, {"type": "comment"}, Authorization="Basic x"), 401)
        assert anon.get(f"/api/matches/{match_id}").status_code == 200

        admin_h = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        # Reporters live in the shared store: a name of this test's own, checked by membership.
        name = f"jens-{match_id[-12:].strip('-')}"
        made = anon.post("/api/reporters", json={"name": name}, headers=admin_h)
        assert made.status_code == 201
        token = made.json()["token"]
        assert name in anon.get("/api/reporters", headers=admin_h).json()["reporters"]
        reporter = {"Authorization": f"Bearer {token}"}
        r = post(anon, match_id, {"type": "comment", "text": "hej"}, **reporter)
        assert r.status_code == 201 and r.json()["op"]["event"]["author"] == name
        assert_error(anon.post("/api/matches", json={}, headers=reporter), 403)
        assert_error(anon.post("/api/reporters", json={"name": "x"}, headers=reporter), 403)
        assert_error(anon.post("/api/reporters", json={"name": name}, headers=admin_h), 409)
        assert anon.delete(f"/api/reporters/{name}", headers=admin_h).status_code == 204
        assert name not in anon.get("/api/reporters", headers=admin_h).json()["reporters"]
        assert_error(post(anon, match_id, {"type": "comment"}, **reporter), 401)


def test_console_session_and_csrf(server: TickerServer, match_id: str) -> None:
    with server.admin() as admin:
        new_match(admin, match_id)
        token = admin.post("/api/reporters", json={"name": "mette"}).json()["token"]
    with httpx.Client(base_url=server.url) as browser:
        assert browser.get("/api/session").status_code == 401
        assert_error(browser.post("/api/session", json={"token": "wrong"}), 422, "token")
        signed = browser.post("/api/session", json={"token": token})
        assert signed.status_code == 200
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        csrf = signed.json()["csrf"]
        assert browser.get("/api/session").json()["reporter"] == "mette"
        url = f"/api/matches/{match_id}/events"
        assert_error(browser.post(url, json={"type": "comment"}), 403, "X-CSRF-Token")
        assert_error(
            browser.post(url, json={"type": "comment"}, headers={"X-CSRF-Token": "forged"}), 403
        )
        ok = browser.post(url, json={"type": "comment"}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 201 and ok.json()["op"]["event"]["author"] == "mette"
        assert browser.delete("/api/session").status_code == 204
        assert browser.get("/api/session").status_code == 401


def test_cors_for_reads_only(server: TickerServer, match_id: str) -> None:
    origin = {"Origin": "https://partner.example"}
    with server.admin() as admin:
        new_match(admin, match_id)
        read = admin.get(f"/api/matches/{match_id}", headers=origin)
        assert read.headers["access-control-allow-origin"] == "*"
        write = post(admin, match_id, {"type": "comment"}, **origin)
        assert write.status_code == 201
        assert "access-control-allow-origin" not in write.headers
        pre = admin.options(
            f"/api/matches/{match_id}/events",
            headers={**origin, "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in pre.headers
        pre_get = admin.options(
            f"/api/matches/{match_id}", headers={**origin, "Access-Control-Request-Method": "GET"}
        )
        assert pre_get.status_code == 204
        assert pre_get.headers["access-control-allow-origin"] == "*"


def test_healthz(server: TickerServer) -> None:
    r = httpx.get(server.url + "/healthz")
    assert r.status_code == 200 and r.json()["ok"] is True


def _raw_request(server: TickerServer, head: bytes) -> bytes:
    """One request sent byte for byte (httpx would refuse or re-encode these heads)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(head)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


def test_odd_digits_and_cookie_bytes_are_4xx_not_500(server: TickerServer, match_id: str) -> None:
    """Found by probing the OpenAPI document's routes: `isdigit` is true for '²', and a
    cookie may hold any byte."""
    with server.admin() as admin:
        new_match(admin, match_id)
        for limit in ("²", "١٢", "9" * 5000):
            r = admin.get(f"/api/matches/{match_id}/ops", params={"limit": limit})
            assert_error(r, 400)
            assert r.json()["error"]["field"] == "limit"
    post = (
        f"POST /api/matches/{match_id}/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
        "Content-Length: \u00b2\r\n\r\n{}"
    ).encode("latin-1", "replace")
    assert _raw_request(server, post.replace(b"?", b"\xb2")).split(b" ")[1][:1] == b"4"
    for path in ("/api/session", f"/api/matches/{match_id}/events"):
        method = b"GET" if path == "/api/session" else b"POST"
        head = (
            method + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Cookie: ticker_session=x.\xe9" + b"a" * 40 + b"\r\n"
            b"X-CSRF-Token: \xe9\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        )
        status = _raw_request(server, head).split(b" ")[1]
        assert status[:1] == b"4", (path, status)
    with server.admin() as admin:
        assert len(admin.get(f"/api/matches/{match_id}/ops").json()["ops"]) == 1
