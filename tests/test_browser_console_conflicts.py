"""Two reporters on one match in real headless Chromium: a correction made meanwhile is a
conflict shown by the event (never a silent overwrite), each event's history names who did
what, and a goal the other reporter just posted is asked about before it is posted again.

Every wait is on a DOM condition (Playwright's `expect`), never a sleep.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser_util import (
    ROOT,
    live_events,
    post_event,
    shoot,
)
from tests.conftest import TickerServer, new_match
from tests.test_browser import browser, new_page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

expect.set_options(timeout=10_000)
AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def server(make_server: Any, redis_url: str) -> TickerServer:
    return make_server(redis_url=redis_url)  # type: ignore[no-any-return]


@pytest.fixture
def api(server: TickerServer) -> Iterator[httpx.Client]:
    with server.admin() as client:
        yield client


def console(page: Page, server: TickerServer, token: str, match_id: str, lang: str) -> Page:
    """A signed-in console (its own session cookie) on the match, live."""
    r = page.context.request.post(server.url + "/api/session", data={"token": token})
    assert r.ok, r.text()
    page.goto(f"{server.url}/console?match={match_id}&lang={lang}")
    expect(page.locator("[data-c=conn]")).to_have_attribute("data-status", "live")
    return page


def new_reporter(api: httpx.Client, name: str) -> str:
    r = api.post("/api/reporters", json={"name": name})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def type_goal(page: Page, player: str) -> None:
    """Home goal by keyboard: 1, G, the player, Enter."""
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("1")
    page.keyboard.press("g")
    expect(page.locator("#f-player")).to_be_focused()
    page.keyboard.type(player)
    page.keyboard.press("Enter")


def test_two_reporters_conflict_history_and_duplicate_goal(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    tag = match_id[-8:].strip("-")
    ann, bo = f"ann-{tag}", f"bo-{tag}"
    a = console(new_page(), server, new_reporter(api, ann), match_id, "en")
    b = console(new_page(), server, new_reporter(api, bo), match_id, "da")

    # Ann posts a home goal; Bo, seconds later, types the same goal: asked first (Danish).
    type_goal(a, "Elyounoussi")
    expect(b.locator("[data-c=feed] li[data-type=goal]")).to_have_count(1)
    type_goal(b, "Elyounoussi")
    dup = b.locator("[data-c=dup]")
    expect(dup).to_be_visible()
    expect(dup).to_contain_text(f"Allerede sendt af {ann}")
    expect(dup).to_contain_text("send alligevel?")
    expect(b.locator("[data-c=dup-post]")).to_be_focused()
    b.locator("[data-c=dup-cancel]").click()
    expect(dup).to_be_hidden()
    assert [e["type"] for e in live_events(api, match_id)] == ["goal"]
    # Asked again, and this time posted anyway.
    b.locator("#f-player").press("Enter")
    expect(dup).to_be_visible()
    b.locator("[data-c=dup-post]").click()
    expect(b.locator("[data-c=feed] li[data-type=goal]")).to_have_count(2)
    goals = live_events(api, match_id)
    assert [e["author"] for e in goals] == [ann, bo]
    goal_id = goals[0]["id"]

    # Both open the correction of Ann's goal at rev 1; Ann saves first.
    a_goal = a.locator(f"[data-c=feed] li[data-id='{goal_id}']")
    b_goal = b.locator(f"[data-c=feed] li[data-id='{goal_id}']")
    a_goal.get_by_role("button", name=re.compile("^Correct")).click()
    b_goal.get_by_role("button", name=re.compile("^Ret:")).click()
    expect(b.locator("#f-player")).to_have_value("Elyounoussi")
    a.locator("#f-player").fill("Zeca")
    a.locator("#f-player").press("Enter")
    expect(b_goal.locator(".ev-player")).to_have_text("Zeca")  # Bo's feed is live
    ops_before = len(api.get(f"/api/matches/{match_id}/ops").json()["ops"])

    # Bo's save carries If-Match 1: refused, shown by the event with what it is now.
    b.locator("#f-player").fill("Kaba")
    b.locator("#f-player").press("Enter")
    clash = b_goal.locator(".ev-conflict")
    expect(clash).to_be_visible()
    expect(clash).to_have_attribute("role", "alert")
    expect(clash).to_contain_text(f"Ændret af {ann} i mellemtiden (nu version 2)")
    expect(clash).to_contain_text("gennemse og prøv igen")
    expect(clash.locator(".ev-conflict-now")).to_contain_text("Zeca")
    expect(clash.locator(".ev-conflict-mine")).to_contain_text("Zeca → Kaba")
    expect(b.locator("[data-c=outbox-count]")).to_have_text("0")
    shoot(b, "console-conflict", full_page=False)
    assert len(api.get(f"/api/matches/{match_id}/ops").json()["ops"]) == ops_before
    now = live_events(api, match_id)[0]
    assert now["player"] == "Zeca" and now["rev"] == 2 and now["edited_by"] == ann

    # Review: the current version with Bo's change on top; saving it now works (If-Match 2).
    clash.get_by_role("button", name="Gennemse").click()
    expect(clash).to_have_count(0)
    expect(b.locator("#f-player")).to_have_value("Kaba")
    b.locator("#f-player").press("Enter")
    expect(a_goal.locator(".ev-player")).to_have_text("Kaba")
    now = live_events(api, match_id)[0]
    assert now["rev"] == 3 and now["edited_by"] == bo and now["author"] == ann

    # The history, opened by keyboard, names both reporters and what each changed.
    toggle = a_goal.locator("[data-c=history-toggle]")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.focus()
    a.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    rows = a_goal.locator(".ev-history-list > li")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text(f"Posted by {ann}")
    expect(rows.nth(1)).to_contain_text(f"Changed by {ann} (rev 2): Player: Elyounoussi → Zeca")
    expect(rows.nth(2)).to_contain_text(f"Changed by {bo} (rev 3): Player: Zeca → Kaba")
    a.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(a_goal.locator(".ev-history")).to_be_hidden()

    # Bo retracts his own goal after Ann corrected it: the rev he sees then goes out (2).
    bo_id = goals[1]["id"]
    a.locator(f"[data-c=feed] li[data-id='{bo_id}']").get_by_role(
        "button", name=re.compile("^Correct")
    ).click()
    a.locator("#f-player").fill("Diallo")
    a.locator("#f-player").press("Enter")
    b_own = b.locator(f"[data-c=feed] li[data-id='{bo_id}']")
    expect(b_own.locator(".ev-player")).to_have_text("Diallo")
    retract = b_own.get_by_role("button", name=re.compile("^Træk tilbage"))
    retract.click()
    expect(retract).to_have_text("Bekræft tilbagetrækning")
    retract.click()
    expect(b_own).to_have_count(0)
    log = api.get(f"/api/matches/{match_id}/ops").json()["ops"]
    assert log[-1]["op"] == "remove" and log[-1]["by"] == bo


def test_own_corrections_queued_offline_do_not_conflict_with_each_other(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    tag = match_id[-8:].strip("-")
    goal = post_event(api, match_id, type="goal", team="home", player="Elyounoussi")["event"]
    page = new_page()
    sent: list[str | None] = []
    offline = {"now": True}

    def network(route: Route) -> None:
        if offline["now"]:
            route.abort("internetdisconnected")
        else:
            sent.append(route.request.headers.get("if-match"))
            route.continue_()

    page.route(re.compile(rf"/api/matches/{match_id}/events/"), network)
    a = console(page, server, new_reporter(api, f"ann-{tag}"), match_id, "en")
    item = a.locator(f"[data-c=feed] li[data-id='{goal['id']}']")
    for player in ("Zeca", "Kaba"):  # two corrections while both wait in the outbox
        item.get_by_role("button", name=re.compile("^Correct")).click()
        a.locator("#f-player").fill(player)
        a.locator("#f-player").press("Enter")
    expect(a.locator("[data-c=outbox-count]")).to_have_text("2")
    offline["now"] = False
    a.evaluate("dispatchEvent(new Event('online'))")
    expect(a.locator("[data-c=outbox-count]")).to_have_text("0", timeout=20_000)
    assert sent == ['"1"', '"2"'], sent
    expect(item.locator(".ev-player")).to_have_text("Kaba")
    expect(item.locator(".ev-conflict")).to_have_count(0)
    assert live_events(api, match_id)[0]["rev"] == 3


def test_console_with_history_and_conflict_passes_axe(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    if not AXE.exists():
        pytest.skip(f"axe-core is not installed here ({AXE.relative_to(ROOT)} is missing)")
    new_match(api, match_id)
    tag = match_id[-8:].strip("-")
    # Reduced motion: a new item fades in, and axe must not measure it half-transparent.
    page = new_page(reduced_motion="reduce")
    a = console(page, server, new_reporter(api, f"ann-{tag}"), match_id, "en")
    type_goal(a, "Elyounoussi")
    goal = a.locator("[data-c=feed] li[data-type=goal]")
    goal.locator("[data-c=history-toggle]").click()
    expect(goal.locator(".ev-history-list > li")).to_have_count(1)
    # A conflict: the admin corrects the goal while Ann has its correction open.
    goal.get_by_role("button", name=re.compile("^Correct")).click()
    event_id = goal.get_attribute("data-id")
    r = api.patch(f"/api/matches/{match_id}/events/{event_id}", json={"player": "Zeca"})
    assert r.status_code == 200, r.text
    expect(goal.locator(".ev-player")).to_have_text("Zeca")
    a.locator("#f-player").fill("Kaba")
    a.locator("#f-player").press("Enter")
    expect(goal.locator(".ev-conflict")).to_contain_text("Changed by admin meanwhile (now rev 2)")
    # The duplicate-goal question: the admin's goal a moment ago.
    r = api.post(f"/api/matches/{match_id}/events", json={"type": "goal", "team": "away"})
    assert r.status_code == 201, r.text
    a.evaluate("document.activeElement.blur()")
    a.keyboard.press("2")
    a.keyboard.press("g")
    a.keyboard.press("Enter")
    expect(a.locator("[data-c=dup]")).to_contain_text("Already posted by admin")
    a.evaluate(AXE.read_text())  # evaluated by the devtools protocol: the page's CSP allows it
    result = a.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: "tag",
             values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}})).violations"""
    )
    assert result == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in result]
