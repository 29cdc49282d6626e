"""Lineups and pinned events, the way a sports desk covers a match: squads pasted into the
console before kick-off, player suggestions from them during play (on the pitch for "off",
the bench for "on"), a second yellow flagged before it is sent, pin and unpin from the
console; the fan page and an embed on another origin show it all live.

Real app, real Redis, real Chromium; every wait is on a DOM condition, never a sleep.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser_util import DESKTOP, PHONE, axe_violations, partner_site, post_event, shoot
from tests.conftest import TickerServer, new_match
from tests.test_browser import api, browser, new_page, server, sign_in  # noqa: F401  (fixtures)
from ticker import facts

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 640}

# The way team sheets arrive: tabs, dots, "(c)", a position marker here and there.
HOME_SQUAD = """1\tKamil Grabara GK
2. Kevin Diks
5 Gabriel Pereira
6 Denis Vavro
22 Kristoffer Olsson (c)
8 Magnus Mattsson
33 Rasmus Falk
10 Mohamed Elyounoussi FW
11 Roony Bardghji
14 Orri Óskarsson
9 Andreas Cornelius
30 Nathan Trott (GK)
19 Elias Achouri
"""
AWAY_SQUAD = "\n".join(f"{n} Napoli Player {n}" for n in range(1, 14)).replace(
    "10 Napoli Player 10", "10. Sory Kaba (C)"
)


def lineup(
    names: list[tuple[int, str]], starters: int = 11, formation: str | None = "4-3-3"
) -> dict[str, Any]:
    players = [
        {"number": n, "name": name, "position": "GK" if i == 0 else None,
         "starter": i < starters, "captain": i == 1}
        for i, (n, name) in enumerate(names)
    ]  # fmt: skip
    return {"formation": formation, "coach": "Jacob Neestrup", "players": players}


def put_lineups(client: httpx.Client, match_id: str, **sides: Any) -> None:
    r = client.put(f"/api/matches/{match_id}/lineups", json=sides)
    assert r.status_code == 200, r.text


def open_console(make_page: Callable[..., Page], app: TickerServer, match_id: str) -> Page:
    page = make_page()
    sign_in(page, app)
    page.goto(f"{app.url}/console?match={match_id}")
    expect(page.locator("[data-c=conn]")).to_have_attribute("data-status", "live")
    return page


def options(page: Page, field: str) -> list[str]:
    listbox = page.locator(f"#f-{field} + [role=listbox]")
    expect(listbox).to_be_visible()
    return [t.strip() for t in listbox.locator("[role=option]").all_inner_texts()]


def lineup_side(where: Page | Locator, side: str) -> Locator:
    return where.locator(f"details[data-tk=lineups] .lu-side--{side}")


def test_lineups_pasted_in_the_console_show_on_the_fan_page_and_an_embed(
    make_server: Any,
    redis_url: str,
    match_id: str,
    new_page: Callable[..., Page],
) -> None:
    pages: dict[str, str] = {}
    with partner_site(pages) as partner:
        server = make_server(redis_url=redis_url, env={"TICKER_FRAME_ANCESTORS": partner})
        with server.admin() as client:
            new_match(client, match_id)
            pages["/"] = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Partner</title>
</head><body><main><h1>Partner</h1><script type="module" src="{server.url}/embed.js"></script>
<ticker-feed match="{match_id}" lang="en"></ticker-feed></main></body></html>"""
            fan = new_page()
            fan.goto(f"{server.url}/matches/{match_id}")
            expect(fan.locator(".conn")).to_have_attribute("data-status", "live")
            expect(fan.locator("details[data-tk=lineups]")).to_be_hidden()
            partner_page = new_page()
            partner_page.goto(partner + "/")
            element = partner_page.locator("ticker-feed")
            expect(element.locator(".conn")).to_have_attribute("data-status", "live")

            page = open_console(new_page, server, match_id)
            page.keyboard.press("Alt+a")
            squad = page.locator("#lu-squad-home")
            expect(squad).to_be_focused()
            squad.fill(HOME_SQUAD)
            rows = page.locator("[data-side=home] tbody tr")
            expect(rows).to_have_count(13)
            expect(page.locator("#lu-count-home")).to_have_text("11 af 11 i startopstillingen")
            # Parsed: tabs, dots, the captain, the position markers.
            expect(rows.nth(0).locator("td").nth(1)).to_have_text("Kamil Grabara")
            expect(rows.nth(0).locator("td").nth(2)).to_have_text("GK")
            expect(rows.nth(1).locator("td").nth(0)).to_have_text("2")
            expect(rows.nth(4).locator("input[type=radio]")).to_be_checked()
            expect(rows.nth(11).locator("td").nth(2)).to_have_text("GK")
            # Starters by keyboard: Achouri in, Óskarsson out.
            rows.nth(12).locator("input[type=checkbox]").focus()
            page.keyboard.press("Space")
            expect(page.locator("#lu-count-home")).to_have_text("12 af 11 i startopstillingen")
            rows.nth(9).locator("input[type=checkbox]").focus()
            page.keyboard.press("Space")
            expect(page.locator("#lu-count-home")).to_have_text("11 af 11 i startopstillingen")
            page.locator("#lu-formation-home").fill("4-3-3")
            page.locator("#lu-coach-home").fill("Jacob Neestrup")
            page.locator("#lu-squad-away").fill(AWAY_SQUAD)
            page.locator("#lu-formation-away").fill("4-3-3")

            problems = axe_violations(page)
            assert not problems, "\n".join(problems)
            shoot(page, "lineups-console-editor-desktop")
            page.set_viewport_size(NARROW)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 320, f"the console with the editor is {width}px wide at 320px"
            page.set_viewport_size(PHONE)
            shoot(page, "lineups-console-editor-phone")
            page.locator("[data-side=home] tbody tr").nth(7).scroll_into_view_if_needed()
            shoot(page, "lineups-console-editor-phone-rows", full_page=False)
            page.set_viewport_size(DESKTOP)

            # A 422 names a row: the message stands by that player, nothing is appended.
            page.locator("#lu-squad-away").fill(AWAY_SQUAD.replace("4 Napoli", "3 Napoli"))
            page.locator("[data-c=lu-save]").click()
            error = page.locator("[data-side=away] tbody tr").nth(3).locator(".lu-row-error")
            expect(error).to_be_visible()
            expect(page.locator("[data-c=lu-editor]")).to_be_visible()
            expect(page.locator("[data-c=outbox-count]")).to_have_text("0")
            expect(fan.locator("details[data-tk=lineups]")).to_be_hidden()

            page.locator("#lu-squad-away").fill(AWAY_SQUAD)
            page.locator("[data-c=lu-save]").click()
            expect(page.locator("[data-c=lu-editor]")).to_be_hidden()
            expect(page.locator("[data-c=outbox-count]")).to_have_text("0")
            expect(page.locator("[data-c=lu-status]")).to_contain_text("13 spillere")

            # The fan page, live: GK first, then the formation's lines; the bench; the coach.
            details = fan.locator("details[data-tk=lineups]")
            expect(details).to_be_visible()
            details.locator("summary").click()
            home = lineup_side(fan, "home")
            lines = home.locator(".lu-line")
            expect(lines).to_have_count(4)
            expect(lines.nth(0).locator(".lu-name")).to_have_text(["Kamil Grabara"])
            expect(lines.nth(1).locator(".lu-name")).to_have_count(4)
            expect(lines.nth(3).locator(".lu-name")).to_have_text(
                ["Roony Bardghji", "Andreas Cornelius", "Elias Achouri"]
            )
            expect(home.locator(".lu-bench .lu-name")).to_have_text(
                ["Orri Óskarsson", "Nathan Trott"]
            )
            expect(home.locator(".lu-coach")).to_have_text("Træner: Jacob Neestrup")
            expect(home.locator(".lu-cap")).to_have_count(1)
            expect(lineup_side(fan, "away").locator(".lu-player", has_text="Sory Kaba")
                   .locator(".lu-cap")).to_have_count(1)  # fmt: skip

            # Edit later: the editor loads what the match has now.
            page.keyboard.press("Alt+a")
            expect(page.locator("#lu-squad-home")).to_have_value(
                re.compile(r"^1 Kamil Grabara GK\n2 Kevin Diks")
            )
            expect(page.locator("[data-side=home] tbody tr").nth(9)
                   .locator("input[type=checkbox]")).not_to_be_checked()  # fmt: skip
            page.keyboard.press("Escape")
            expect(page.locator("[data-c=lu-editor]")).to_be_hidden()

            # The embed on another origin, in English.
            embed_details = element.locator("details[data-tk=lineups]")
            expect(embed_details).to_be_visible()
            expect(embed_details.locator("summary")).to_have_text("Lineups")
            embed_details.locator("summary").click()
            expect(lineup_side(element, "away").locator(".lu-name").first).to_be_visible()
            expect(element.locator(".lu-side--home .lu-coach")).to_have_text(
                "Manager: Jacob Neestrup"
            )

            # Pinned when posted: above the embed's feed too, live.
            post_event(client, match_id, type="comment", text="Team news", pinned=True)
            expect(element.locator("[data-tk=pinned] .ev-text")).to_have_text(["Team news"])
            expect(element.locator("[data-tk=pinned] h2")).to_have_text("Pinned")

            problems = axe_violations(fan) + axe_violations(partner_page)
            assert not problems, "\n".join(problems)
            shoot(fan, "lineups-fan-desktop")
            shoot(partner_page, "lineups-embed-desktop")
            for p, name in ((fan, "fan"), (partner_page, "embed")):
                p.set_viewport_size(NARROW)
                width = p.evaluate("document.documentElement.scrollWidth")
                assert width <= 320, f"the {name} page is {width}px wide at 320px"
                p.set_viewport_size(PHONE)
                shoot(p, f"lineups-{name}-phone")


def test_player_fields_suggest_from_the_lineup_and_a_second_yellow_is_flagged(
    server: TickerServer,
    api: httpx.Client,
    match_id: str,
    new_page: Callable[..., Page],
) -> None:
    new_match(api, match_id)
    away = [(1, "Alex Meret"), (22, "Giovanni Di Lorenzo"), (4, "Alessandro Buongiorno"),
            (13, "Amir Rrahmani"), (17, "Mathías Olivera"), (68, "Stanislav Lobotka"),
            (99, "André-Frank Zambo Anguissa"), (8, "Scott McTominay"), (21, "Matteo Politano"),
            (10, "Sory Kaba"), (7, "David Neres"), (11, "Giacomo Raspadori"),
            (16, "Noa Lang")]  # fmt: skip
    put_lineups(api, match_id, away=lineup(away))
    post_event(api, match_id, type="kickoff")
    post_event(api, match_id, type="yellow_card", team="away", player="Stanislav Lobotka",
               minute=20)  # fmt: skip
    fan = new_page()
    fan.goto(f"{server.url}/matches/{match_id}?lang=en")
    expect(fan.locator(".conn")).to_have_attribute("data-status", "live")
    page = open_console(new_page, server, match_id)

    # By shirt number and by name.
    page.keyboard.press("2")
    page.keyboard.press("g")  # the focus moves on to the player
    player = page.locator("#f-player")
    expect(player).to_be_focused()
    page.keyboard.type("10")
    assert options(page, "player") == ["10 Sory Kaba"]
    expect(player).to_have_attribute("aria-expanded", "true")
    expect(player).to_have_attribute("aria-activedescendant", re.compile(".+"))
    player.press("Enter")
    expect(player).to_have_value("Sory Kaba")
    expect(page.locator("[data-c=outbox-count]")).to_have_text("0")  # Enter picked, not sent
    player.fill("")
    player.press_sequentially("kab")
    assert options(page, "player")[0] == "10 Sory Kaba"
    player.press("ArrowDown")
    player.press("Enter")
    expect(player).to_have_value("Sory Kaba")
    page.keyboard.press("Escape")

    # A substitution: the pitch for "off", the bench for "on".
    page.keyboard.press("Alt+2")  # in a text field: Alt+key
    page.keyboard.press("Alt+u")
    out = page.locator("#f-player_out")
    out.focus()
    out.press("ArrowDown")
    offered = options(page, "player_out")
    assert len(offered) == 11 and "10 Sory Kaba" in offered and "16 Noa Lang" not in offered
    problems = axe_violations(page)  # the listbox open
    assert not problems, "\n".join(problems)
    out.scroll_into_view_if_needed()
    shoot(page, "lineups-console-suggest-open-desktop", full_page=False)
    out.fill("")
    out.press_sequentially("Kaba")
    out.press("ArrowDown")
    out.press("Enter")
    on = page.locator("#f-player_in")
    on.focus()
    on.press("ArrowDown")
    assert options(page, "player_in") == ["11 Giacomo Raspadori", "16 Noa Lang"]
    on.press_sequentially("16")
    on.press("Enter")
    expect(on).to_have_value("Noa Lang")
    page.locator("#f-minute").fill("60")
    page.locator("#f-added").fill("0")
    page.locator("[data-c=submit]").click()
    expect(page.locator("li[data-type=substitution]")).to_have_count(1)
    # The next substitution knows: Kaba is off, Lang on.
    page.keyboard.press("Alt+2")  # in a text field: Alt+key
    page.keyboard.press("Alt+u")
    out.focus()
    out.press("ArrowDown")
    offered = options(page, "player_out")
    assert "16 Noa Lang" in offered and "10 Sory Kaba" not in offered
    on.focus()
    on.press("ArrowDown")
    assert options(page, "player_in") == ["11 Giacomo Raspadori"]
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")

    # A second yellow is flagged as a sending-off, and goes out only when confirmed.
    page.keyboard.press("Alt+2")
    page.keyboard.press("Alt+y")
    player.fill("Stanislav Lobotka")
    expect(page.locator("#f-player + [role=listbox]")).to_be_hidden()  # the one offer is typed
    page.locator("#f-minute").fill("70")
    page.locator("#f-added").fill("0")
    page.locator("[data-c=submit]").click()
    second = page.locator("[data-c=second]")
    expect(second).to_be_visible()
    expect(second).to_contain_text("Andet gule kort: udvisning")
    expect(page.locator("[data-c=second-post]")).to_be_focused()
    expect(page.locator("li[data-type=yellow_card]")).to_have_count(1)
    page.locator("[data-c=second-post]").click()
    expect(page.locator("li[data-type=yellow_card]")).to_have_count(2)

    # The fan page's lineups: the substitution with its minute, the sending-off marked.
    fan.locator("details[data-tk=lineups] summary").click()
    side = lineup_side(fan, "away")
    expect(side.locator(".lu-player", has_text="Sory Kaba").locator(".lu-off")).to_have_text(
        "↓ off 60'"
    )
    expect(side.locator(".lu-player", has_text="Noa Lang").locator(".lu-on")).to_have_text(
        "↑ on 60'"
    )
    expect(side.locator(".lu-player", has_text="Lobotka").locator(".lu-red")).to_have_attribute(
        "aria-label", "sent off 70'"
    )
    shoot(page, "lineups-console-suggest-desktop")
    shoot(fan, "lineups-fan-subs-desktop")

    # ticker/facts.py paints the same lineups as lineups.js (for the server's first paint).
    snap = api.get(f"/api/matches/{match_id}").json()
    served = facts.lineups_html("en", snap["match"], snap["lineups"], snap["events"])
    blank = new_page()
    blank.set_content(f"<!doctype html><html><body>{served}</body></html>")
    grid = ".lu-grid"
    assert blank.locator(grid).inner_html() == fan.locator(grid).inner_html()


def test_pin_in_the_console_puts_the_event_on_top_of_the_fan_page(
    server: TickerServer,
    api: httpx.Client,
    match_id: str,
    new_page: Callable[..., Page],
) -> None:
    new_match(api, match_id)
    post_event(api, match_id, type="kickoff")
    note = post_event(api, match_id, type="comment", text="Stadium evacuated: match paused")
    for i in range(3):
        post_event(api, match_id, type="comment", text=f"comment {i}")
    fan = new_page()
    fan.goto(f"{server.url}/matches/{match_id}")
    expect(fan.locator(".conn")).to_have_attribute("data-status", "live")
    pinned = fan.locator("[data-tk=pinned]")
    expect(pinned).to_be_hidden()
    page = open_console(new_page, server, match_id)
    item = page.locator(f"[data-c=feed] li[data-id='{note['seq']}']")
    item.locator("[data-c=pin]").click()
    expect(pinned).to_be_visible()
    expect(pinned.locator("h2")).to_have_text("Fastgjort")
    expect(pinned.locator(".ev-text")).to_have_text(["Stadium evacuated: match paused"])
    # Above the feed, and still in it.
    above = fan.evaluate(
        "() => document.querySelector('[data-tk=pinned]').compareDocumentPosition("
        "document.querySelector('[data-tk=feed]')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    assert above
    expect(fan.locator(f"[data-tk=feed] li[data-id='{note['seq']}']")).to_have_count(1)
    expect(item.locator("[data-c=pin]")).to_have_text("Frigør")
    problems = axe_violations(fan)
    assert not problems, "\n".join(problems)
    shoot(fan, "pinned-fan-desktop")
    shoot(page, "pinned-console-desktop")
    fan.set_viewport_size(NARROW)
    width = fan.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"the fan page is {width}px wide at 320px"
    fan.set_viewport_size(PHONE)
    shoot(fan, "pinned-fan-phone")

    item.locator("[data-c=pin]").click()
    expect(pinned).to_be_hidden()
    expect(fan.locator(f"[data-tk=feed] li[data-id='{note['seq']}']")).to_have_count(1)

    # Pinned again by a correction: in the server's first paint, the same as the script's.
    r = api.patch(f"/api/matches/{match_id}/events/{note['seq']}", json={"pinned": True})
    assert r.status_code == 200, r.text
    expect(pinned.locator(".ev-text")).to_have_text(["Stadium evacuated: match paused"])
    live_markup = pinned.inner_html()
    nojs = new_page(java_script_enabled=False)
    for path in (f"/matches/{match_id}", f"/embed/{match_id}"):
        nojs.goto(server.url + path)
        section = nojs.locator("[data-tk=pinned]")
        expect(section).to_be_visible()
        expect(section.locator(".ev-text")).to_have_text(["Stadium evacuated: match paused"])
    nojs.goto(f"{server.url}/matches/{match_id}")
    assert nojs.locator("[data-tk=pinned]").inner_html() == live_markup
    # The iframe embed follows live too.
    embed = new_page()
    embed.goto(f"{server.url}/embed/{match_id}")
    expect(embed.locator(".conn")).to_have_attribute("data-status", "live")
    item.locator("[data-c=pin]").click()
    expect(embed.locator("[data-tk=pinned]")).to_be_hidden()
    expect(pinned).to_be_hidden()
