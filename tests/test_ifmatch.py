"""Concurrent reporters (PROTOCOL.md): If-Match on corrections and retractions, and every op
saying who made it. Real servers over real sockets, on both engines."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx

from tests.conftest import TickerServer, new_match


def reporter(admin: httpx.Client, server: TickerServer, name: str) -> httpx.Client:
    r = admin.post("/api/reporters", json={"name": name})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def ops(client: httpx.Client, match_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/matches/{match_id}/ops")
    assert r.status_code == 200, r.text
    return list(r.json()["ops"])


def event_url(match_id: str, event_id: str) -> str:
    return f"/api/matches/{match_id}/events/{event_id}"


def add_goal(client: httpx.Client, match_id: str) -> dict[str, Any]:
    r = client.post(
        f"/api/matches/{match_id}/events",
        json={"type": "goal", "team": "home", "minute": 12, "player": "Elyounoussi"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json()["op"]["event"])


def conflict(r: httpx.Response) -> dict[str, Any]:
    """A 409 for If-Match: the usual error keys, plus the event as it is now."""
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert set(error) == {"code", "message", "field", "current"}
    assert error["code"] == "conflict" and error["field"] == "If-Match"
    return dict(error)


def test_stale_if_match_is_refused_and_appends_nothing(server: TickerServer, match_id: str) -> None:
    with server.admin() as admin:
        new_match(admin, match_id)
        tag = match_id[-10:]
        ann, bo = reporter(admin, server, f"ann-{tag}"), reporter(admin, server, f"bo-{tag}")
        with ann, bo:
            goal = add_goal(ann, match_id)
            url = event_url(match_id, goal["id"])
            # A fresh rev works, unquoted and quoted.
            r = bo.patch(url, json={"player": "Zeca"}, headers={"If-Match": "1"})
            assert r.status_code == 200, r.text
            assert r.json()["op"]["event"]["rev"] == 2
            r = ann.patch(url, json={"minute": 13}, headers={"If-Match": '"2"'})
            assert r.status_code == 200, r.text
            before = len(ops(admin, match_id))

            # Bo still shows rev 2: refused, nothing appended, the message names who and rev.
            r = bo.patch(url, json={"player": "Kaba"}, headers={"If-Match": "2"})
            error = conflict(r)
            assert "rev 3" in error["message"] and f"ann-{tag}" in error["message"]
            assert error["current"]["rev"] == 3 and error["current"]["player"] == "Zeca"
            assert error["current"]["edited_by"] == f"ann-{tag}"
            r = bo.delete(url, headers={"If-Match": '"1"'})
            conflict(r)
            assert len(ops(admin, match_id)) == before

            # Malformed: 400 naming the header, before anything is looked at.
            for bad in ("", "abc", 'W/"3"', "3, 4", '"3', "-1", "1e3", "9" * 12):
                r = bo.patch(url, json={"player": "X"}, headers={"If-Match": bad})
                assert r.status_code == 400, (bad, r.text)
                assert r.json()["error"]["field"] == "If-Match"
            # `*` asks for nothing but a live event; no header is the v1 behaviour.
            r = bo.delete(url, headers={"If-Match": "*"})
            assert r.status_code == 200, r.text
            assert len(ops(admin, match_id)) == before + 1


def test_concurrent_corrections_with_one_rev_exactly_one_wins(
    server: TickerServer, match_id: str
) -> None:
    with server.admin() as admin:
        new_match(admin, match_id)
        goal = add_goal(admin, match_id)
        url = event_url(match_id, goal["id"])
        before = len(ops(admin, match_id))

        def correct(n: int) -> httpx.Response:
            with server.admin() as c:
                return c.patch(url, json={"player": f"P{n}"}, headers={"If-Match": '"1"'})

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(correct, range(8)))
        assert sorted(r.status_code for r in results) == [200] + [409] * 7, [
            r.text for r in results
        ]
        winner = next(r for r in results if r.status_code == 200).json()["op"]["event"]
        for r in results:
            if r.status_code == 409:
                assert conflict(r)["current"] == winner
        assert len(ops(admin, match_id)) == before + 1


def test_a_retry_after_success_gets_the_original_op_though_the_rev_moved(
    server: TickerServer, match_id: str
) -> None:
    with server.admin() as admin:
        new_match(admin, match_id)
        goal = add_goal(admin, match_id)
        url = event_url(match_id, goal["id"])
        headers = {"If-Match": "1", "Idempotency-Key": "fix-1"}
        first = admin.patch(url, json={"player": "Zeca"}, headers=headers)
        assert first.status_code == 200, first.text
        # The rev is 2 now, so If-Match 1 is stale; but the key was used: the original op.
        again = admin.patch(url, json={"player": "Zeca"}, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        # The same for a retraction: the event is gone, its rev stale; the key answers.
        gone = admin.delete(url, headers={"If-Match": "2", "Idempotency-Key": "del-1"})
        assert gone.status_code == 200, gone.text
        again = admin.delete(url, headers={"If-Match": "2", "Idempotency-Key": "del-1"})
        assert again.status_code == 200 and again.json() == gone.json()
        assert [op["op"] for op in ops(admin, match_id)] == ["match", "add", "update", "remove"]


def test_every_op_says_who_made_it(server: TickerServer, match_id: str) -> None:
    with server.admin() as admin:
        new_match(admin, match_id)
        tag = match_id[-10:]
        cy, di = reporter(admin, server, f"cy-{tag}"), reporter(admin, server, f"di-{tag}")
        with cy, di:
            goal = add_goal(cy, match_id)
            url = event_url(match_id, goal["id"])
            assert di.patch(url, json={"player": "Zeca"}).status_code == 200
            assert cy.delete(url).status_code == 200
        assert admin.patch(f"/api/matches/{match_id}", json={"venue": "Brøndby"}).is_success
        log = ops(admin, match_id)
        assert [op["op"] for op in log] == ["match", "add", "update", "remove", "match"]
        _, add, update, remove, match = log
        assert add["event"]["author"] == f"cy-{tag}"
        assert update["event"]["author"] == f"cy-{tag}"  # the original poster stays
        assert update["event"]["edited_by"] == f"di-{tag}"
        assert update["event"]["edited_at"] >= add["event"]["at"]
        assert remove["by"] == f"cy-{tag}" and remove["at"] >= update["event"]["edited_at"]
        assert log[0]["by"] == "admin" and match["by"] == "admin"


def test_concurrent_repeats_of_one_keyed_correction_all_get_the_one_op(
    server: TickerServer, match_id: str
) -> None:
    # A repeat that missed the key before building sees the rev its twin moved: it must still
    # get the original op (200), not a 409 for the twin's own change.
    with server.admin() as admin:
        new_match(admin, match_id)
        goal = add_goal(admin, match_id)
        url = event_url(match_id, goal["id"])
        before = len(ops(admin, match_id))
        headers = {"If-Match": "1", "Idempotency-Key": "same-fix"}

        def repeat(_: int) -> httpx.Response:
            with server.admin() as c:
                return c.patch(url, json={"player": "Zeca"}, headers=headers)

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            results = list(pool.map(repeat, range(10)))
        assert [r.status_code for r in results] == [200] * 10, [r.text for r in results]
        assert len({r.json()["op"]["seq"] for r in results}) == 1
        assert len(ops(admin, match_id)) == before + 1
        # A retracted event is not found, whatever If-Match says.
        assert admin.delete(url).status_code == 200
        r = admin.patch(url, json={"player": "X"}, headers={"If-Match": "2"})
        assert r.status_code == 404 and r.json()["error"]["field"] == "event_id"
