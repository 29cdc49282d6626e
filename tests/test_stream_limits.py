"""Stream connections per client address (protocol v1.1 "Limits"): over the limit, a
WebSocket gets HTTP 429 before the upgrade and SSE before the stream starts; a slot comes
back when its stream ends, however it ends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import TickerServer, new_match
from tests.test_socket_faults import subscribers, wait_for

LIMIT = 3


@pytest.fixture(params=["fast", "plain"])
def limited(request: pytest.FixtureRequest, make_server) -> TickerServer:  # type: ignore[no-untyped-def]
    env = {"TICKER_MAX_STREAMS_PER_ADDRESS": str(LIMIT), "TICKER_WS": request.param}
    return make_server(env=env)  # type: ignore[no-any-return]


@contextlib.contextmanager
def _fan(server: TickerServer, match_id: str) -> Iterator[ClientConnection]:
    with connect(f"{server.ws_url}/ws/matches/{match_id}", open_timeout=5) as ws:
        assert "snapshot" in str(ws.recv(timeout=5))
        yield ws


def _refused(server: TickerServer, match_id: str) -> None:
    with (
        pytest.raises(InvalidStatus) as caught,
        connect(f"{server.ws_url}/ws/matches/{match_id}", open_timeout=5),
    ):
        pass
    response = caught.value.response
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    with httpx.stream("GET", f"{server.url}/sse/matches/{match_id}", timeout=5) as r:
        assert r.status_code == 429
        assert r.headers["retry-after"]
        r.read()
        assert r.json()["error"]["code"] == "rate_limited"


def test_streams_over_the_address_limit_are_refused_before_they_start(
    limited: TickerServer, match_id: str
) -> None:
    with limited.admin() as admin:
        new_match(admin, match_id)
    with contextlib.ExitStack() as stack:
        fans = [stack.enter_context(_fan(limited, match_id)) for _ in range(LIMIT)]
        _refused(limited, match_id)
        # A fan that leaves gives its slot back: the next one gets in.
        fans[0].close()
        wait_for("the closed fan's slot freed", lambda: subscribers(limited) == LIMIT - 1)
        stack.enter_context(_fan(limited, match_id))
        _refused(limited, match_id)
    wait_for("every slot freed", lambda: subscribers(limited) == 0)
    # SSE streams count and give back alike.
    with contextlib.ExitStack() as stack:
        for _ in range(LIMIT):
            r = stack.enter_context(
                httpx.stream("GET", f"{limited.url}/sse/matches/{match_id}", timeout=5)
            )
            assert r.status_code == 200
        wait_for("SSE streams joined", lambda: subscribers(limited) == LIMIT)
        _refused(limited, match_id)
    wait_for("SSE slots freed", lambda: subscribers(limited) == 0)
    with _fan(limited, match_id):
        pass


def test_refused_and_unknown_streams_take_no_slot(limited: TickerServer, match_id: str) -> None:
    for _ in range(LIMIT + 2):  # unknown matches: 4404 and 404, each slot given back
        url = f"{limited.ws_url}/ws/matches/no-such-match"
        with connect(url, open_timeout=5) as ws, contextlib.suppress(Exception):
            ws.recv(timeout=5)
        assert httpx.get(f"{limited.url}/sse/matches/no-such-match", timeout=5).status_code == 404
    with limited.admin() as admin:
        new_match(admin, match_id)
    with contextlib.ExitStack() as stack:
        for _ in range(LIMIT):
            stack.enter_context(_fan(limited, match_id))
