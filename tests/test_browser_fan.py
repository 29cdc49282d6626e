"""The sports-desk views of the fan page and the embed (protocol v1.1 state): scorers, red
cards, the shoot-out tally, the stats panel and the full-time summary, live and in the
server's first paint; axe-core finds no serious or critical violation on any of them.

Real app, real Redis, real Chromium; every wait is on a DOM condition, never a sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser_util import DESKTOP, PHONE, axe_violations, partner_site, post_event, shoot
from tests.conftest import TickerServer, new_match
from tests.test_browser import api, browser, new_page, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 640}


def side_lines(page: Any, side: str, kind: str) -> list[str]:
    """The scoreboard's lines for a side: kind `scorers` or `off`."""
    return list(page.locator(f"[data-tk={side}-facts] .sb-{kind} li").all_inner_texts())


def finished_match(client: httpx.Client, match_id: str) -> None:
    """A whole match: goals (a penalty, an own goal), cards, a second yellow, a shoot-out."""
    new_match(client, match_id)
    for fields in (
        {"type": "kickoff"},
        {"type": "goal", "team": "away", "player": "Sory Kaba", "minute": 13},
        {"type": "yellow_card", "team": "home", "player": "Lukas Lerager", "minute": 20},
        {"type": "goal", "team": "home", "player": "Rrahmani", "detail": "own_goal", "minute": 30},
        {"type": "goal", "team": "away", "player": "Sory Kaba", "detail": "penalty",
         "minute": 45, "added": 2},
        {"type": "half_time"},
        {"type": "second_half"},
        {"type": "corner", "team": "home", "minute": 50},
        {"type": "miss", "team": "home", "player": "Elyounoussi", "minute": 55},
        {"type": "yellow_card", "team": "home", "player": "Lukas Lerager", "minute": 61},
        {"type": "goal", "team": "home", "player": "Diogo Gonçalves", "minute": 88},
        {"type": "extra_time"},
        {"type": "penalty_shootout"},
        {"type": "goal", "team": "home", "player": "Achouri"},
        {"type": "miss", "team": "away", "player": "Politano"},
        {"type": "goal", "team": "away", "player": "Anguissa"},
        {"type": "goal", "team": "home", "player": "Cornelius"},
        {"type": "full_time"},
    ):  # fmt: skip
        post_event(client, match_id, **fields)


def test_scorers_and_red_cards_follow_every_op_live(
    server: TickerServer,
    api: httpx.Client,
    match_id: str,
    new_page: Callable[..., Page],
) -> None:
    new_match(api, match_id)
    post_event(api, match_id, type="kickoff")
    page = new_page()
    page.goto(f"{server.url}/matches/{match_id}")
    expect(page.locator(".conn")).to_have_attribute("data-status", "live")
    assert side_lines(page, "away", "scorers") == []

    post_event(api, match_id, type="goal", team="away", player="Kaba", minute=13)
    expect(page.locator("[data-tk=away-facts] .sb-scorers li")).to_have_text(["Kaba 13'"])
    post_event(api, match_id, type="goal", team="away", player="Kaba", detail="penalty",
               minute=45, added=2)  # fmt: skip
    expect(page.locator("[data-tk=away-facts] .sb-scorers li")).to_have_text(
        ["Kaba 13', 45+2' (str.)"]
    )
    post_event(api, match_id, type="goal", team="home", player="Rrahmani", detail="own_goal",
               minute=50)  # fmt: skip
    expect(page.locator("[data-tk=home-facts] .sb-scorers li")).to_have_text(
        ["Rrahmani 50' (selvmål)"]
    )

    # A second yellow sends off: a red marker by the name and an entry under the board.
    post_event(api, match_id, type="yellow_card", team="home", player="Lerager", minute=20)
    reds = page.locator("[data-tk=home-reds] .sb-redcard")
    second = post_event(api, match_id, type="yellow_card", team="home", player="Lerager",
                        minute=61)  # fmt: skip
    expect(reds).to_have_count(1)
    expect(reds).to_have_attribute("role", "img")
    expect(reds).to_have_accessible_name("Rødt kort: Lerager")
    expect(page.locator("[data-tk=home-facts] .sb-off li")).to_have_text(["Lerager 61'"])
    expect(page.locator("[data-tk=away-reds] .sb-redcard")).to_have_count(0)

    # VAR: the second yellow is retracted, and the player is back.
    r = api.delete(f"/api/matches/{match_id}/events/{second['seq']}")
    assert r.status_code == 200, r.text
    expect(reds).to_have_count(0)
    expect(page.locator("[data-tk=home-facts] .sb-off li")).to_have_count(0)
    assert page.locator("[data-tk=pens]").is_hidden()

    # English from the first paint.
    page.goto(f"{server.url}/matches/{match_id}?lang=en")
    expect(page.locator("[data-tk=away-facts] .sb-scorers li")).to_have_text(
        ["Kaba 13', 45+2' (pen.)"]
    )
    expect(page.locator("[data-tk=home-facts] .sb-scorers li")).to_have_text(
        ["Rrahmani 50' (o.g.)"]
    )
    post_event(api, match_id, type="red_card", team="away", player="Anguissa", minute=70)
    expect(page.locator("[data-tk=away-reds] .sb-redcard")).to_have_accessible_name(
        "Red card: Anguissa"
    )

    # A shoot-out logged by mistake, then retracted: its kick becomes a goal of the match.
    shootout = post_event(api, match_id, type="penalty_shootout")
    kick = post_event(api, match_id, type="goal", team="home", player="Achouri", minute=90)
    item = page.locator(f"li[data-id='{kick['seq']}']")
    expect(item.locator(".ev-label")).to_have_text("Penalty scored")
    expect(page.locator("[data-tk=pens]")).to_have_text("Penalties 1–0")
    r = api.delete(f"/api/matches/{match_id}/events/{shootout['seq']}")
    assert r.status_code == 200, r.text
    expect(item.locator(".ev-label")).to_have_text("Goal")
    expect(page.locator("[data-tk=pens]")).to_be_hidden()
    expect(page.locator("[data-tk=home-facts] .sb-scorers li")).to_have_text(
        ["Rrahmani 50' (o.g.)", "Achouri 90'"]
    )


def test_shootout_tally_live_and_full_time_summary_on_top_of_the_feed(
    server: TickerServer,
    api: httpx.Client,
    match_id: str,
    new_page: Callable[..., Page],
) -> None:
    new_match(api, match_id)
    post_event(api, match_id, type="kickoff")
    post_event(api, match_id, type="goal", team="home", player="Cornelius", minute=10)
    post_event(api, match_id, type="yellow_card", team="away", player="Lobotka", minute=30)
    post_event(api, match_id, type="goal", team="away", player="Osimhen", minute=80)
    page = new_page()
    page.goto(f"{server.url}/matches/{match_id}")
    expect(page.locator(".conn")).to_have_attribute("data-status", "live")
    pens = page.locator("[data-tk=pens]")
    summary = page.locator("[data-tk=summary]")
    expect(pens).to_be_hidden()
    expect(summary).to_be_hidden()

    post_event(api, match_id, type="penalty_shootout")
    expect(pens).to_have_text("Straffespark 0–0")
    kick = post_event(api, match_id, type="goal", team="home", player="Achouri")
    expect(pens).to_have_text("Straffespark 1–0")
    # A kick is told as one, not as a goal of the match.
    kick_item = page.locator(f"li[data-id='{kick['seq']}']")
    expect(kick_item.locator(".ev-label")).to_have_text("Straffe scoret")
    expect(page.locator("[data-tk=announce]")).to_contain_text("Straffespark 1–0")
    expect(page.locator("li.ev--goal:not(.ev--kick) .ev-label")).to_have_text(["Mål", "Mål"])
    post_event(api, match_id, type="goal", team="away", player="Politano")
    post_event(api, match_id, type="goal", team="home", player="Elyounoussi")
    expect(pens).to_have_text("Straffespark 2–1")
    # Shoot-out goals are no scorers and leave the score alone.
    expect(page.locator("[data-tk=home-facts] .sb-scorers li")).to_have_text(["Cornelius 10'"])
    expect(page.locator("[data-tk=home-goals]")).to_have_text("1")

    post_event(api, match_id, type="full_time")
    expect(summary).to_be_visible()
    expect(summary.locator("h2")).to_have_text("Slutresultat")
    expect(summary.locator(".sum-result")).to_have_text(
        "FC København 1–1 SSC Napoli · Straffespark 2–1"
    )
    expect(summary.locator(".sum-goals li")).to_have_text(
        [
            "10' Cornelius (FC København) 1–0",
            "80' Osimhen (SSC Napoli) 1–1",
        ]
    )
    expect(summary.locator(".sum-cards li")).to_have_text(["30' Gult kort Lobotka (SSC Napoli)"])
    feed_top = page.locator("[data-tk=feed]").bounding_box()
    summary_box = summary.bounding_box()
    assert feed_top and summary_box and summary_box["y"] + summary_box["height"] <= feed_top["y"]
    expect(pens).to_have_text("Straffespark 2–1")
    expect(page.locator("[data-tk=phase]")).to_have_text("Slut")
    shoot(page, "fan-fulltime-desktop")

    page.goto(f"{server.url}/matches/{match_id}?lang=en")
    expect(summary.locator("h2")).to_have_text("Full-time")
    expect(pens).to_have_text("Penalties 2–1")
    expect(summary.locator(".sum-cards li")).to_have_text(["30' Yellow card Lobotka (SSC Napoli)"])


def test_stats_panel_opens_by_keyboard_and_follows_the_state(
    server: TickerServer,
    api: httpx.Client,
    match_id: str,
    new_page: Callable[..., Page],
) -> None:
    new_match(api, match_id)
    for fields in (
        {"type": "kickoff"},
        {"type": "goal", "team": "home", "player": "Cornelius"},
        {"type": "save", "team": "home", "player": "Grabara"},  # an away shot on target
        {"type": "miss", "team": "away", "player": "Osimhen"},
        {"type": "miss", "team": "home", "player": "Achouri"},
        {"type": "corner", "team": "home"},
        {"type": "corner", "team": "home"},
        {"type": "foul", "team": "away", "player": "Lobotka"},
        {"type": "foul", "team": "away", "player": "Lobotka"},
        {"type": "offside", "team": "away", "player": "Osimhen"},
        {"type": "yellow_card", "team": "home", "player": "Lerager"},
        {"type": "red_card", "team": "away", "player": "Anguissa"},
    ):  # fmt: skip
        post_event(api, match_id, **fields)
    page = new_page()
    page.goto(f"{server.url}/matches/{match_id}")
    expect(page.locator(".conn")).to_have_attribute("data-status", "live")
    stats = page.locator("details[data-tk=stats]")
    table = stats.locator("table")
    expect(table).to_be_hidden()

    # Keyboard: Tab reaches the panel's summary, Enter opens it.
    stats.locator("summary").focus()
    expect(stats.locator("summary")).to_be_focused()
    page.keyboard.press("Enter")
    expect(table).to_be_visible()
    expect(stats).to_have_attribute("open", "")
    expect(table.locator("thead th")).to_have_count(3)
    expect(table.locator("tbody th[scope=row]")).to_have_text(
        ["Skud", "Skud på mål", "Hjørnespark", "Begåede frispark", "Offside", "Gule kort",
         "Røde kort"]
    )  # fmt: skip
    want = {
        "shots": ["2", "2"],
        "shots_on_target": ["1", "1"],
        "corners": ["2", "0"],
        "fouls": ["0", "2"],
        "offsides": ["0", "1"],
        "yellow_cards": ["1", "0"],
        "red_cards": ["0", "1"],
    }
    for key, values in want.items():
        expect(table.locator(f"tr[data-stat={key}] td")).to_have_text(values)

    # Live: a corner changes the number, and the panel stays open.
    post_event(api, match_id, type="corner", team="away")
    expect(table.locator("tr[data-stat=corners] td")).to_have_text(["2", "1"])
    expect(table).to_be_visible()
    shoot(page, "fan-stats-desktop")
    page.set_viewport_size(PHONE)
    shoot(page, "fan-stats-phone")


def test_first_paint_without_javascript_has_scorers_cards_and_summary(
    server: TickerServer,
    api: httpx.Client,
    match_id: str,
    new_page: Callable[..., Page],
) -> None:
    finished_match(api, match_id)
    page = new_page(java_script_enabled=False)
    for lang, og, pen, red, pens, title in (
        ("da", "(selvmål)", "(str.)", "Rødt kort: Lukas Lerager", "Straffespark 2–1",
         "Slutresultat"),
        ("en", "(o.g.)", "(pen.)", "Red card: Lukas Lerager", "Penalties 2–1", "Full-time"),
    ):  # fmt: skip
        page.goto(f"{server.url}/matches/{match_id}?lang={lang}")
        expect(page.locator("[data-tk=home-goals]")).to_have_text("2")
        expect(page.locator(".conn")).to_be_hidden()  # no "Connecting…" that never connects
        assert side_lines(page, "away", "scorers") == [f"Sory Kaba 13', 45+2' {pen}"]
        assert side_lines(page, "home", "scorers") == [
            f"Rrahmani 30' {og}",
            "Diogo Gonçalves 88'",
        ]
        assert side_lines(page, "home", "off") == ["Lukas Lerager 61'"]
        expect(page.locator("[data-tk=home-reds] .sb-redcard")).to_have_accessible_name(red)
        expect(page.locator("[data-tk=pens]")).to_have_text(pens)
        summary = page.locator("[data-tk=summary]")
        expect(summary).to_be_visible()
        expect(summary.locator("h2")).to_have_text(title)
        expect(summary.locator(".sum-goals li")).to_have_count(4)
        expect(summary.locator(".sum-cards li")).to_have_count(2)
        expect(summary.locator(".sum-cards li").nth(1)).to_contain_text("Lukas Lerager")
        expect(page.locator("details[data-tk=stats] tr[data-stat=corners] td")).to_have_text(
            ["1", "0"]
        )
    # The server's markup and the script's say the same (facts.py and facts.js agree).
    texts = (
        "() => ['[data-tk=scoreboard]', '[data-tk=summary]', '[data-tk=stats]'].map((s) =>"
        " document.querySelector(s).textContent.replace(/\\s+/g, ' ').trim())"
    )
    served = page.evaluate(texts)
    served_feed = page.locator("[data-tk=feed]").inner_html()
    expect(page.locator("[data-tk=feed] > li")).to_have_count(18)
    expect(page.locator("[data-tk=empty]")).to_be_hidden()
    live = new_page()
    live.goto(f"{server.url}/matches/{match_id}?lang=en")
    expect(live.locator(".conn")).to_have_attribute("data-status", "live")
    assert live.evaluate(texts) == served
    # The feed too, to the markup: feedpaint.py and render.js agree.
    assert live.locator("[data-tk=feed]").inner_html() == served_feed
    shoot(page, "fan-nojs-fulltime-desktop")
    page.set_viewport_size(PHONE)
    shoot(page, "fan-nojs-fulltime-phone")

    # The iframe embed too.
    page.goto(f"{server.url}/embed/{match_id}?lang=en")
    assert side_lines(page, "away", "scorers") == ["Sory Kaba 13', 45+2' (pen.)"]
    expect(page.locator("[data-tk=summary]")).to_be_visible()


def test_embed_on_another_origin_shows_scorers_and_cards_and_passes_axe(
    make_server: Any,
    redis_url: str,
    match_id: str,
    new_page: Callable[..., Page],
) -> None:
    pages: dict[str, str] = {}
    with partner_site(pages) as partner:
        server = make_server(redis_url=redis_url, env={"TICKER_FRAME_ANCESTORS": partner})
        with server.admin() as api:
            new_match(api, match_id)
            post_event(api, match_id, type="kickoff")
            post_event(api, match_id, type="goal", team="home", player="Cornelius", minute=9)
            pages["/"] = f"""<!doctype html><html lang="da"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Partneravisen</title>
<style>body {{ font-family: Georgia, serif; background: #faf7f0; margin: 0; padding: 16px; }}
 .layout {{ display: grid; gap: 16px;
   grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); }}
 iframe {{ width: 100%; height: 640px; border: 0; }}</style></head>
<body><main><h1>Partneravisen</h1><div class="layout">
<section aria-label="Element"><script type="module" src="{server.url}/embed.js"></script>
<ticker-feed match="{match_id}" lang="en"></ticker-feed></section>
<section aria-label="Compact">
<ticker-feed match="{match_id}" compact theme="dark"></ticker-feed></section>
<section aria-label="Iframe"><iframe src="{server.url}/embed/{match_id}?lang=en&amp;compact=1"
 title="Live ticker"></iframe></section>
</div></main></body></html>"""  # fmt: skip
            page = new_page()
            page.goto(partner + "/")
            full, compact = page.locator("ticker-feed").nth(0), page.locator("ticker-feed").nth(1)
            frame = page.frame_locator("iframe")
            for where in (full, compact, frame):
                expect(where.locator("[data-tk=home-facts] .sb-scorers li")).to_have_text(
                    ["Cornelius 9'"]
                )
                expect(where.locator(".conn")).to_have_attribute("data-status", "live")

            post_event(api, match_id, type="red_card", team="away", player="Anguissa", minute=33)
            post_event(api, match_id, type="goal", team="away", player="Kaba", detail="penalty",
                       minute=40)  # fmt: skip
            for where, name, pen in ((full, "Red card", "pen."), (compact, "Rødt kort", "str."),
                                     (frame, "Red card", "pen.")):  # fmt: skip
                expect(where.locator("[data-tk=away-reds] .sb-redcard")).to_have_accessible_name(
                    f"{name}: Anguissa"
                )
                expect(where.locator("[data-tk=away-facts] .sb-scorers li")).to_have_text(
                    [f"Kaba 40' ({pen})"]
                )
            # The full element has the stats panel; the compact one keeps small.
            expect(full.locator("details[data-tk=stats]")).to_be_visible()
            expect(compact.locator("details[data-tk=stats]")).to_have_count(0)
            full.locator("details[data-tk=stats] summary").click()
            expect(full.locator("tr[data-stat=red_cards] td")).to_have_text(["0", "1"])

            problems = axe_violations(page)
            assert not problems, "\n".join(problems)
            shoot(page, "embed-partner-facts-desktop")
            page.set_viewport_size(NARROW)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 320, f"the partner page is {width}px wide at 320px"
            page.set_viewport_size(PHONE)
            shoot(page, "embed-partner-facts-phone")
            # A full-page shot leaves an off-screen cross-origin frame unpainted: shoot it in view.
            page.locator("iframe").scroll_into_view_if_needed()
            expect(frame.locator("[data-tk=away-facts] .sb-off li")).to_be_visible()
            shoot(page, "embed-partner-facts-phone-iframe", full_page=False)


def test_axe_narrow_screens_and_screenshots(
    server: TickerServer,
    api: httpx.Client,
    match_id: str,
    new_page: Callable[..., Page],
) -> None:
    finished_match(api, match_id)
    problems: list[str] = []
    for viewport, size in ((DESKTOP, "desktop"), (PHONE, "phone")):
        for scheme in ("light", "dark"):
            for lang in ("da", "en"):
                page = new_page(viewport=viewport, color_scheme=scheme)
                page.goto(f"{server.url}/matches/{match_id}?lang={lang}")
                expect(page.locator(".conn")).to_have_attribute("data-status", "live")
                page.locator("details[data-tk=stats] summary").click()
                expect(page.locator("details[data-tk=stats] table")).to_be_visible()
                if size == "desktop":
                    problems += axe_violations(page)
                shoot(page, f"fan-facts-{size}-{scheme}-{lang}")
        for scheme in ("light", "dark"):
            page = new_page(viewport=viewport, color_scheme=scheme)
            page.goto(f"{server.url}/embed/{match_id}?theme={scheme}")
            expect(page.locator(".conn")).to_have_attribute("data-status", "live")
            if size == "desktop":
                problems += axe_violations(page)
            shoot(page, f"embed-facts-{size}-{scheme}")
    assert not problems, "\n".join(problems)

    narrow = new_page(viewport=NARROW)
    for path in (f"/matches/{match_id}", f"/matches/{match_id}?lang=en", f"/embed/{match_id}",
                 f"/embed/{match_id}?compact=1"):  # fmt: skip
        narrow.goto(server.url + path)
        expect(narrow.locator(".conn")).to_have_attribute("data-status", "live")
        details = narrow.locator("details[data-tk=stats] summary")
        if details.count():
            details.click()
        width = narrow.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, f"{path} is {width}px wide at 320px"
    shoot(narrow, "fan-facts-320")


def test_markup_in_names_is_text_in_every_new_view(
    server: TickerServer,
    api: httpx.Client,
    match_id: str,
    new_page: Callable[..., Page],
) -> None:
    evil = '<img src=x onerror="window.__xss=1">'
    new_match(api, match_id, home="<b>Bold</b> FC", away="</script><i>Away</i>")
    post_event(api, match_id, type="kickoff")
    post_event(api, match_id, type="goal", team="home", player=evil, detail="penalty", minute=5)
    post_event(api, match_id, type="red_card", team="away", player="<b>Red</b>", minute=7)
    post_event(api, match_id, type="full_time")
    views = ".sb, [data-tk=summary], [data-tk=stats]"
    for scripts in (False, True):
        page = new_page(java_script_enabled=scripts)
        page.goto(f"{server.url}/matches/{match_id}")
        expect(page.locator("[data-tk=home-facts] .sb-scorers li")).to_have_text(
            [f"{evil} 5' (str.)"]
        )
        expect(page.locator("[data-tk=away-reds] .sb-redcard")).to_have_accessible_name(
            "Rødt kort: <b>Red</b>"
        )
        expect(page.locator("[data-tk=summary] .sum-result")).to_have_text(
            "<b>Bold</b> FC 1–0 </script><i>Away</i>"
        )
        expect(page.locator("[data-tk=stats] thead th").first).to_contain_text("<b>Bold</b> FC")
        assert page.locator(views).locator("img, b, i, script").count() == 0
        if scripts:
            assert page.evaluate("window.__xss") is None
