"""GET /metrics over real servers: the numbers after known traffic, one process or several."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.conftest import RedisServer, TickerServer, new_match

EVENTS_ROUTE = "/api/matches/{match_id}/events"
WS_FANS = 3
SSE_FANS = 2
POSTS = 5


def scrape(
    server: TickerServer, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by (name, sorted labels); a fresh connection each time."""
    r = httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return float(samples.get((name, tuple(sorted(labels.items()))), 0.0))


class SSEFan:
    """An SSE stream read in a thread: its ops as they come."""

    def __init__(self, url: str) -> None:
        self.ops: list[dict] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url: str) -> None:
        try:
            with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=None)) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        self.ops.append(json.loads(line[6:]))
                        self.ready.set()
                    if self.stop.is_set():
                        return
        except httpx.HTTPError:
            pass  # the server went first (the test is over)


@contextmanager
def traffic(server: TickerServer, match_id: str) -> Iterator[list[SSEFan]]:
    """WS_FANS WebSocket and SSE_FANS SSE fans on one match, then POSTS events, all seen."""
    with server.admin() as admin:
        new_match(admin, match_id)
    with ExitStack() as stack:
        ws_fans = [
            stack.enter_context(connect(f"{server.ws_url}/ws/matches/{match_id}"))
            for _ in range(WS_FANS)
        ]
        for ws in ws_fans:
            assert json.loads(ws.recv(timeout=10))["op"] == "snapshot"
        sse_fans = [SSEFan(f"{server.url}/sse/matches/{match_id}") for _ in range(SSE_FANS)]
        for fan in sse_fans:
            assert fan.ready.wait(10)
        seqs = []
        with server.admin() as admin:
            for i in range(POSTS):
                r = admin.post(
                    f"/api/matches/{match_id}/events", json={"type": "comment", "text": str(i)}
                )
                assert r.status_code == 201, r.text
                seqs.append(r.json()["op"]["seq"])
        for ws in ws_fans:
            assert [json.loads(ws.recv(timeout=10))["seq"] for _ in range(POSTS)] == seqs
        wait_sse_seen(sse_fans)
        yield sse_fans
        for fan in sse_fans:
            fan.stop.set()


def check(samples: dict, processes: int = 1) -> None:
    assert value(samples, "ticker_ops_appended_total", kind="add") == POSTS
    assert value(samples, "ticker_ops_appended_total", kind="match") == 1
    assert value(samples, "ticker_deliveries_total") == POSTS * (WS_FANS + SSE_FANS)
    assert value(samples, "ticker_subscribers", transport="ws") == WS_FANS
    assert value(samples, "ticker_subscribers", transport="sse") == SSE_FANS
    assert value(samples, "ticker_http_requests_total", route=EVENTS_ROUTE, status="201") == POSTS
    assert value(samples, "ticker_http_requests_total", route="/api/matches", status="201") == 1
    # Every raw path stays out of the labels: the route template only.
    routes = {
        dict(labels).get("route")
        for name, labels in samples
        if name == "ticker_http_requests_total"
    }
    assert not any(r and "match-" in r for r in routes), routes
    # Observed once per op by each process that has fans of the match.
    published = value(samples, "ticker_publish_to_send_seconds_count")
    assert published in [POSTS * n for n in range(1, processes + 1)], published
    assert value(samples, "ticker_slow_closes_total") == 0
    assert value(samples, "ticker_engine_errors_total") == 0


def wait_sse_seen(sse_fans: list[SSEFan]) -> None:
    end = time.monotonic() + 10
    while any(len(f.ops) < 1 + POSTS for f in sse_fans) and time.monotonic() < end:
        time.sleep(0.05)
    for fan in sse_fans:
        assert [op["op"] for op in fan.ops] == ["snapshot"] + ["add"] * POSTS


@pytest.mark.parametrize("engine", ["embedded", "redis"])
def test_metrics_after_known_traffic(
    engine: str, make_server, redis_server: RedisServer, match_id: str
) -> None:  # type: ignore[no-untyped-def]
    if engine == "redis" and redis_server.proc is None:
        redis_server.start()
    server = make_server(redis_url=redis_server.url if engine == "redis" else None)
    with traffic(server, match_id):
        check(scrape(server))


@pytest.mark.slow
def test_metrics_under_two_workers_describe_the_whole_server(
    make_server, redis_url: str, match_id: str
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(redis_url=redis_url, args=["--workers", "2"])
    with traffic(server, match_id):
        # Each worker samples its own fans each second: wait for both to have done so.
        end = time.monotonic() + 10
        while time.monotonic() < end:
            samples = scrape(server)
            if (
                value(samples, "ticker_subscribers", transport="ws") == WS_FANS
                and value(samples, "ticker_subscribers", transport="sse") == SSE_FANS
            ):
                break
            time.sleep(0.2)
        # /healthz counts this process's fans only: which worker holds how many.
        per_worker = {httpx.get(f"{server.url}/healthz").json()["subscribers"] for _ in range(12)}
        print(f"fans per answering worker (healthz): {sorted(per_worker)}")
        scrapes = [scrape(server) for _ in range(8)]
        for samples in scrapes:
            check(samples, processes=2)
        keys = [
            ("ticker_ops_appended_total", (("kind", "add"),)),
            ("ticker_deliveries_total", ()),
            ("ticker_subscribers", (("transport", "ws"),)),
            ("ticker_subscribers", (("transport", "sse"),)),
        ]
        assert len({tuple(s.get(k) for k in keys) for s in scrapes}) == 1


def test_metrics_token(make_server) -> None:  # type: ignore[no-untyped-def]
    token = "metrics-token-0123456789abcdef"
    server = make_server(env={"TICKER_METRICS_TOKEN": token})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        r = httpx.get(f"{server.url}/metrics", headers=headers)
        assert r.status_code == 401, (headers, r.text)
        error = r.json()["error"]
        assert error["code"] == "unauthorized" and error["field"] == "Authorization"
        assert r.headers["www-authenticate"].startswith("Bearer")
    samples = scrape(server, Authorization=f"Bearer {token}")
    assert ("ticker_deliveries_total", ()) in samples
    # The refused scrapes were counted too, under the route's template.
    assert value(samples, "ticker_http_requests_total", route="/metrics", status="401") == 3


def test_json_access_log(make_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = make_server(env={"TICKER_LOG_FORMAT": "json", "TICKER_LOG_LEVEL": "info"})
    assert httpx.get(f"{server.url}/api/matches?x=1").status_code == 200
    server.stop()
    lines = (tmp_path / "server0.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is JSON, start-up ones too
    access = [r for r in records if r.get("logger") == "uvicorn.access"]
    hit = [r for r in access if r.get("path") == "/api/matches?x=1"]
    assert hit and hit[0]["method"] == "GET" and hit[0]["status"] == 200, access
    assert hit[0]["client"].startswith("127.0.0.1:") and "time" in hit[0]
    assert any(r.get("logger") == "ticker" and "engine=embedded" in r["message"] for r in records)


def test_engine_errors_are_counted_once_each(
    make_server, redis_server: RedisServer, match_id: str
) -> None:  # type: ignore[no-untyped-def]
    if redis_server.proc is None:
        redis_server.start()
    server = make_server(redis_url=redis_server.url)
    with server.admin() as admin:
        new_match(admin, match_id)
        redis_server.kill()
        try:
            for i in range(3):
                r = admin.post(
                    f"/api/matches/{match_id}/events",
                    json={"type": "comment", "text": str(i)},
                    headers={"Idempotency-Key": f"k{i}"},
                )
                assert r.status_code == 503, r.text
        finally:
            redis_server.start()
    samples = scrape(server)
    assert value(samples, "ticker_engine_errors_total") == 3
    assert value(samples, "ticker_ops_appended_total", kind="add") == 0
    assert value(samples, "ticker_http_requests_total", route=EVENTS_ROUTE, status="503") == 3
