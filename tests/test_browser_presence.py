"""Who is here, in real headless Chromium: reporters' consoles on two server processes see
each other, and a fan page's module shows the live viewer count."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser_util import shoot
from tests.conftest import TickerServer, new_match
from tests.test_browser import browser, new_page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

expect.set_options(timeout=15_000)


def _reporter(server: TickerServer, name: str) -> str:
    with server.admin() as admin:
        r = admin.post("/api/reporters", json={"name": name})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _console(page: Page, server: TickerServer, token: str, match_id: str) -> None:
    r = page.context.request.post(server.url + "/api/session", data={"token": token})
    assert r.ok, r.text()
    page.goto(f"{server.url}/console?match={match_id}&lang=en")
    expect(page.locator("[data-c=conn]")).to_have_attribute("data-status", "live")


def test_two_consoles_see_each_other_and_the_type_open(
    make_server: Any, redis_url: str, match_id: str, new_page: Callable[..., Page]
) -> None:
    a, b = make_server(redis_url=redis_url), make_server(redis_url=redis_url)
    with a.admin() as admin:
        new_match(admin, match_id)
    suffix = match_id[-10:].replace("-", "")
    jens, mette = f"jens{suffix}", f"mette{suffix}"
    on_a, on_b = new_page(), new_page()
    _console(on_a, a, _reporter(a, jens), match_id)  # two processes, one Redis
    _console(on_b, b, _reporter(b, mette), match_id)

    # Each sees the other (never itself), with the event type the other has open.
    other_on_a = on_a.locator(f"[data-c=presence] li[data-reporter={mette}]")
    other_on_b = on_b.locator(f"[data-c=presence] li[data-reporter={jens}]")
    expect(other_on_a).to_contain_text("has comment open")
    expect(other_on_b).to_contain_text("has comment open")
    expect(on_a.locator(f"[data-c=presence] li[data-reporter={jens}]")).to_have_count(0)

    on_a.keyboard.press("g")  # jens opens a goal
    expect(other_on_b.locator("[data-typing=goal]")).to_have_text("has goal open")
    on_b.keyboard.press("y")  # mette a yellow card
    expect(other_on_a.locator("[data-typing=yellow_card]")).to_have_text("has yellow card open")
    shoot(on_b, "console-presence", full_page=False)

    on_b.close()  # leaving says so at once (pagehide), not only after 15 s
    expect(other_on_a).to_have_count(0)
    expect(on_a.locator("[data-c=presence]")).to_have_text("No other reporters on this match.")


def test_viewer_count_module_counts_live(
    make_server: Any, redis_url: str, match_id: str, new_page: Callable[..., Page]
) -> None:
    server = make_server(redis_url=redis_url, env={"TICKER_VIEWERS_INTERVAL": "1"})
    with server.admin() as admin:
        new_match(admin, match_id)
    page = new_page()
    page.goto(f"{server.url}/matches/{match_id}")
    expect(page.locator(".conn")).to_have_attribute("data-status", "live")  # one fan
    # How a page mounts it: an element, and `update` as the connection's onViewers.
    page.evaluate(
        """async (matchId) => {
            const { mountViewers } = await import("/static/viewers.js");
            const { TickerConnection } = await import("/static/connection.js");
            for (const lang of ["da", "en"]) {
                const el = document.createElement("p");
                el.id = `viewers-${lang}`;
                document.body.append(el);
                const v = mountViewers(el, lang);
                new TickerConnection({
                    origin: location.origin, matchId, onMessage() {}, onViewers: v.update,
                }).start();
            }
        }""",
        match_id,
    )
    expect(page.locator("#viewers-da")).to_have_text("3 følger kampen")
    expect(page.locator("#viewers-en")).to_have_text("3 following")
    with (
        httpx.Client(base_url=server.url) as client,
        client.stream("GET", f"/sse/matches/{match_id}"),
    ):
        expect(page.locator("#viewers-en")).to_have_text("4 following")
    expect(page.locator("#viewers-da")).to_have_text("3 følger kampen")


def test_fan_pages_and_embed_show_the_count_as_a_second_fan_arrives(
    make_server: Any, redis_url: str, match_id: str, new_page: Callable[..., Page]
) -> None:
    from tests.browser_util import axe_violations

    server = make_server(redis_url=redis_url, env={"TICKER_VIEWERS_INTERVAL": "1"})
    with server.admin() as admin:
        new_match(admin, match_id)
    first = new_page()
    first.goto(f"{server.url}/matches/{match_id}")
    viewers = first.locator('[data-tk="viewers"]')
    expect(viewers).to_have_text("1 følger kampen")
    second = new_page()
    second.goto(f"{server.url}/matches/{match_id}?lang=en")
    expect(viewers).to_have_text("2 følger kampen")
    expect(second.locator('[data-tk="viewers"]')).to_have_text("2 following")
    embed = new_page()
    embed.goto(f"{server.url}/embed/{match_id}?lang=en")
    expect(embed.locator('[data-tk="viewers"]')).to_have_text("3 following")
    expect(viewers).to_have_text("3 følger kampen")
    shoot(first, "fan-viewers")
    assert not axe_violations(first), axe_violations(first)
    assert not axe_violations(embed), axe_violations(embed)
    second.close()
    expect(viewers).to_have_text("2 følger kampen")
    first.set_viewport_size({"width": 320, "height": 640})  # the count fits a small phone
    assert first.evaluate("document.documentElement.scrollWidth") <= 320
    shoot(first, "fan-viewers-320")
