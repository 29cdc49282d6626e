"""The match list's one stream (`/ws/matches`, `/sse/matches`): every match's summary first,
then one per change, over one connection; real servers on both engines, and two processes
on one Redis."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.browser_util import post_event
from tests.conftest import RedisServer, TickerServer, new_match
from tests.test_socket_faults import subscribers, wait_for
from tests.test_streams import _raw_ws

Msg = dict[str, Any]
# A new match shows up at the next re-list (every 5 s): a generous bound to wait for it.
RELIST_WAIT = 20.0


@pytest.fixture(params=["embedded", "redis"])
def pair(request: pytest.FixtureRequest, make_server, redis_server: RedisServer):  # type: ignore[no-untyped-def]
    """(the server the list connects to, the server events are posted through): one
    embedded server twice, or two processes on one Redis."""
    if request.param == "embedded":
        one = make_server()
        return one, one
    if redis_server.proc is None:
        redis_server.start()
    return make_server(redis_url=redis_server.url), make_server(redis_url=redis_server.url)


@contextlib.contextmanager
def list_ws(server: TickerServer, query: str = "") -> Iterator[ClientConnection]:
    with connect(f"{server.ws_url}/ws/matches{query}", open_timeout=5) as ws:
        yield ws


def recv_until(ws: ClientConnection, check: Callable[[Msg], bool], timeout: float = 10) -> Msg:
    """The first message `check` accepts (others are skipped), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no such message in time"
        msg: Msg = json.loads(ws.recv(timeout=left))
        if check(msg):
            return msg


def summary_of(match_id: str, **want: Any) -> Callable[[Msg], bool]:
    def check(msg: Msg) -> bool:
        if msg["op"] != "summary" or msg["match"]["id"] != match_id:
            return False
        return all(msg["state"].get(k) == v for k, v in want.items())

    return check


def api_matches(server: TickerServer) -> list[Msg]:
    return httpx.get(server.url + "/api/matches", timeout=5).json()["matches"]  # type: ignore[no-any-return]


def test_one_connection_gets_summaries_then_a_summary_per_change(
    pair: tuple[TickerServer, TickerServer], match_id: str
) -> None:
    listed, poster = pair
    a, b, c = f"{match_id}-a", f"{match_id}-b", f"{match_id}-c"
    with poster.admin() as api, listed.admin() as local:
        new_match(api, a)
        new_match(api, b)
        post_event(api, b, type="kickoff")
        with list_ws(listed) as ws:
            first: Msg = json.loads(ws.recv(timeout=10))
            assert first["op"] == "summaries"
            # The entries of GET /api/matches, in its order (live first).
            ids = [m["match"]["id"] for m in first["matches"]]
            assert ids == [m["match"]["id"] for m in api_matches(listed)]
            entries = {m["match"]["id"]: m for m in first["matches"]}
            assert entries[b]["state"]["phase"] == "first_half"
            assert entries[b]["clock_start"] is not None  # a running period: the card's clock
            assert entries[a]["clock_start"] is None
            assert entries[a]["viewers"] == entries[b]["viewers"] == 0
            assert set(entries[a]) >= {"match", "state", "seq", "viewers"}

            goal = post_event(api, b, type="goal", team="home", player="Elyounoussi")
            msg = recv_until(ws, summary_of(b, score={"home": 1, "away": 0}))
            assert msg["seq"] == goal["seq"]
            post_event(local, a, type="kickoff")  # through either process
            recv_until(ws, summary_of(a, phase="first_half"))
            api.patch(f"/api/matches/{a}", json={"venue": "Parken"}).raise_for_status()
            assert recv_until(ws, summary_of(a))["match"]["venue"] == "Parken"

            # A match made after connecting appears (on the other process too).
            new_match(api, c)
            recv_until(ws, summary_of(c, phase="pre_match"), timeout=RELIST_WAIT)
            post_event(api, c, type="kickoff")
            recv_until(ws, summary_of(c, phase="first_half"))

            # Only list connections open: they are nobody's viewers.
            for server in (listed, poster):
                counts = {m["match"]["id"]: m["viewers"] for m in api_matches(server)}
                assert counts[a] == counts[b] == counts[c] == 0

        # A reconnect starts over with fresh summaries of the current state.
        with list_ws(listed) as ws:
            again: Msg = json.loads(ws.recv(timeout=10))
            assert again["op"] == "summaries"
            fresh = {m["match"]["id"]: m for m in again["matches"]}
            assert fresh[c]["state"]["phase"] == "first_half"
            assert fresh[b]["state"]["score"] == {"home": 1, "away": 0}
            assert fresh[a]["match"]["venue"] == "Parken"


def test_sse_and_ids_filter(server: TickerServer, match_id: str) -> None:
    a, b = f"{match_id}-a", f"{match_id}-b"
    with server.admin() as api:
        new_match(api, a)
        new_match(api, b)
        url = f"{server.url}/sse/matches?ids={a},{b},no-such-match"
        with httpx.stream("GET", url, timeout=10) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            events: list[tuple[str, Msg]] = []
            kind = ""

            def next_event() -> tuple[str, Msg]:
                nonlocal kind
                for line in lines:
                    if line.startswith("id:"):
                        raise AssertionError("list events move no Last-Event-ID")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        return kind, json.loads(line[6:])
                raise AssertionError("stream ended")

            kind_, first = next_event()
            assert kind_ == "summaries"
            assert sorted(m["match"]["id"] for m in first["matches"]) == [a, b]
            post_event(api, a, type="kickoff")
            events.append(next_event())
            assert events[-1][0] == "summary"
            assert events[-1][1]["match"]["id"] == a
            assert events[-1][1]["state"]["phase"] == "first_half"


def test_bad_ids_are_refused(server: TickerServer) -> None:
    too_many = ",".join(f"m{i}" for i in range(51))
    for query in ("?ids=BAD%20ID", f"?ids={too_many}", "?ids="):
        r = httpx.get(f"{server.url}/sse/matches{query}", timeout=5)
        assert r.status_code == 400
        assert r.json()["error"]["field"] == "ids"
        with pytest.raises(InvalidStatus) as caught, list_ws(server, query):
            pass
        assert caught.value.response.status_code == 400


def test_a_match_fan_counts_in_the_list_but_a_list_connection_does_not(
    make_server: Any, match_id: str
) -> None:
    server = make_server(env={"TICKER_VIEWERS_INTERVAL": "0.5"})
    with server.admin() as api:
        new_match(api, match_id)
    with list_ws(server) as ws:
        entry = next(m for m in json.loads(ws.recv(timeout=10))["matches"]
                     if m["match"]["id"] == match_id)  # fmt: skip
        assert entry["viewers"] == 0
        with connect(f"{server.ws_url}/ws/matches/{match_id}", open_timeout=5) as fan:
            fan.recv(timeout=5)
            msg = recv_until(ws, lambda m: m["op"] == "summary" and m["viewers"] == 1, RELIST_WAIT)
            assert msg["match"]["id"] == match_id
        recv_until(ws, lambda m: m["op"] == "summary" and m["viewers"] == 0, RELIST_WAIT)


def test_list_streams_count_in_the_address_limit(make_server: Any) -> None:
    server = make_server(env={"TICKER_MAX_STREAMS_PER_ADDRESS": "2"})
    with list_ws(server) as one, list_ws(server) as two:
        one.recv(timeout=5)
        two.recv(timeout=5)
        with pytest.raises(InvalidStatus) as caught, list_ws(server):
            pass
        assert caught.value.response.status_code == 429
        r = httpx.get(f"{server.url}/sse/matches", timeout=5)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert subscribers(server) == 2
    wait_for("the list streams' slots freed", lambda: subscribers(server) == 0)
    with list_ws(server) as three:
        assert json.loads(three.recv(timeout=5))["op"] == "summaries"


def test_list_streams_drain_on_sigterm_and_are_refused_meanwhile(
    make_server: Any, redis_url: str
) -> None:
    # On Redis: a drain spreads streams over the other processes (the embedded engine has
    # none, and closes them at once).
    server = make_server(redis_url=redis_url, env={"TICKER_DRAIN_SECONDS": "4"})
    assert server.proc is not None
    with list_ws(server) as one, list_ws(server) as two:
        one.recv(timeout=5)
        two.recv(timeout=5)
        server.proc.send_signal(signal.SIGTERM)
        # The first goes at once, the second two seconds later: meanwhile no new list stream.
        wait_for("draining", lambda: httpx.get(server.url + "/healthz").status_code == 503)
        with pytest.raises(InvalidStatus) as caught, list_ws(server):
            pass
        assert caught.value.response.status_code == 503
        assert httpx.get(f"{server.url}/sse/matches", timeout=5).status_code == 503
        for ws in (one, two):
            with pytest.raises(ConnectionClosed):
                while True:
                    ws.recv(timeout=10)
            assert ws.close_code == 1012
    server.proc.wait(15)


def test_a_list_client_that_never_answers_pings_is_dropped(make_server: Any) -> None:
    """A phone that lost its network: the list stream is pinged like a fan's, and aborted."""
    server = make_server(env={"TICKER_PING_INTERVAL": "1"})
    silent = _raw_ws(server.port, "/ws/matches")  # never reads, never answers a ping
    with contextlib.closing(silent), list_ws(server) as good:
        good.recv(timeout=5)
        wait_for("both list streams open", lambda: subscribers(server) == 2)
        wait_for("the silent one dropped", lambda: subscribers(server) == 1, timeout=15)
    wait_for("the good one gone too", lambda: subscribers(server) == 0)
