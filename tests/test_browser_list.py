"""The match list page in real headless Chromium: one stream connection for the whole page
keeps every card's score, phase, clock and viewer count live."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.sync.client import connect

from tests.browser_util import DESKTOP, axe_violations, post_event
from tests.conftest import new_match
from tests.test_browser import browser  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

expect.set_options(timeout=15_000)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    problems: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    yield page
    context.close()
    assert not problems, problems


def test_the_match_list_keeps_every_card_live_over_one_connection(
    make_server: Any, match_id: str, page: Page
) -> None:
    # Its own server (the list shows every match); counts and re-lists every 0.5 s.
    server = make_server(env={"TICKER_VIEWERS_INTERVAL": "0.5"})
    one, two, later = f"{match_id}-a", f"{match_id}-b", f"{match_id}-c"
    streams: list[str] = []
    page.on("websocket", lambda ws: streams.append(ws.url))
    page.on("request", lambda r: streams.append(r.url) if "/sse/" in r.url else None)
    with server.admin() as api:
        new_match(api, one, home="FC Midtjylland", away="Randers FC")
        new_match(api, two, home="Brøndby IF", away="AGF")
        post_event(api, one, type="kickoff")
        page.goto(server.url + "/")
        card_one = page.locator(f"a[href='/matches/{one}']")
        card_two = page.locator(f"a[href='/matches/{two}']")
        live = page.locator("section[aria-labelledby=group-live]")
        expect(live.locator(card_one)).to_have_count(1)
        expect(card_one.locator(".card-phase")).to_have_text("1. halvleg")
        # The clock runs from the summary alone (no events on the list).
        expect(card_one.locator(".card-clock")).to_have_text(re.compile(r"^\d+'$"))

        post_event(api, one, type="goal", team="away", player="Kallesøe")
        expect(card_one.locator(".card-score span").nth(1)).to_have_text("1")
        post_event(api, two, type="kickoff")
        expect(live.locator(card_two)).to_have_count(1)  # moved to the live group
        post_event(api, two, type="goal", team="home", player="Vallys")
        expect(card_two.locator(".card-score span").nth(0)).to_have_text("1")

        # A fan of a match shows in its card's count; the list's own connection does not.
        expect(card_one.locator(".card-viewers")).to_have_attribute("data-count", "0")
        with connect(f"{server.ws_url}/ws/matches/{one}", open_timeout=5) as fan:
            fan.recv(timeout=5)
            expect(card_one.locator(".card-viewers")).to_have_attribute("data-count", "1")
        expect(card_two.locator(".card-viewers")).to_have_attribute("data-count", "0")

        # A match made after the page loaded appears.
        new_match(api, later, home="Viborg FF", away="AaB")
        expect(page.locator(f"a[href='/matches/{later}']")).to_have_count(1)

    assert len(streams) == 1, streams
    assert streams[0].endswith("/ws/matches")
    assert axe_violations(page) == []


def test_without_websockets_the_list_runs_over_one_sse_stream(
    make_server: Any, match_id: str, page: Page
) -> None:
    server = make_server(env={"TICKER_VIEWERS_INTERVAL": "0.5"})
    page.add_init_script("delete window.WebSocket")  # a proxy or browser without WebSocket
    streams: list[str] = []
    page.on("websocket", lambda ws: streams.append(ws.url))
    page.on("request", lambda r: streams.append(r.url) if "/sse/" in r.url else None)
    one, later = f"{match_id}-a", f"{match_id}-c"
    with server.admin() as api:
        new_match(api, one)
        page.goto(server.url + "/")
        card = page.locator(f"a[href='/matches/{one}']")
        expect(card).to_have_count(1)
        post_event(api, one, type="kickoff")
        expect(card.locator(".card-phase")).to_have_text("1. halvleg")
        post_event(api, one, type="goal", team="home", player="Lerager")
        expect(card.locator(".card-score span").nth(0)).to_have_text("1")
        new_match(api, later)
        expect(page.locator(f"a[href='/matches/{later}']")).to_have_count(1)
    assert len(streams) == 1, streams
    assert streams[0].endswith("/sse/matches")
