"""The web side in real headless Chromium, against the real app on a real Redis.

Every wait is on a DOM condition (Playwright's auto-waiting `expect`), never a sleep.
Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from tests.browser_util import (
    DESKTOP,
    LAUNCH_ARGS,
    PHONE,
    chromium_path,
    live_events,
    partner_site,
    post_event,
    shoot,
)
from tests.conftest import ADMIN_TOKEN, TickerServer, new_match

pytestmark = pytest.mark.browser

expect.set_options(timeout=10_000)
XSS_TEXT = '<img src=x onerror="window.__xss=1;alert(1)"> <script>window.__xss=2</script>'


# Module scope, not session: sync Playwright keeps an asyncio loop marked as running on
# this thread while it is open, and the anyio tests of later modules could not start theirs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    exe = chromium_path()
    if exe is None:
        pytest.fail("Chromium is not installed: scripts/test installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Factory: a page in a fresh context; uncaught page errors and any dialog fail the test."""
    contexts = []
    problems: list[str] = []

    def make(viewport: dict[str, int] | None = None, **options: Any) -> Page:
        context = browser.new_context(viewport=viewport or DESKTOP, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console: {msg.text}")
                if "Content Security Policy" in msg.text and "frame-ancestors" not in msg.text
                else None
            ),
        )

        def on_dialog(dialog: Any) -> None:
            problems.append(f"dialog: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not problems, problems


@pytest.fixture
def server(make_server: Any, redis_url: str) -> TickerServer:
    """The real app on the suite's real Redis."""
    return make_server(redis_url=redis_url)  # type: ignore[no-any-return]


@pytest.fixture
def api(server: TickerServer) -> Iterator[httpx.Client]:
    with server.admin() as client:
        yield client


def feed_ids(page: Page, scope: str = "") -> list[str]:
    selector = f"{scope} [data-tk=feed] > li".strip()
    return list(page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.id)"))


def sign_in(page: Page, server: TickerServer, token: str = ADMIN_TOKEN) -> None:
    """A console session for the page's context, the way the console makes one."""
    r = page.context.request.post(server.url + "/api/session", data={"token": token})
    assert r.ok, r.text()


# ---------------------------------------------------------------- fan page


def test_fan_page_shows_api_events_live_with_score_clock_and_announcement(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    post_event(api, match_id, type="kickoff")
    page = new_page()
    page.goto(f"{server.url}/matches/{match_id}")

    expect(page.locator("h1")).to_have_text("LIVE: FC København – SSC Napoli")
    expect(page.locator("[data-tk=home-goals]")).to_have_text("0")
    expect(page.locator("[data-tk=phase]")).to_have_text("1. halvleg")
    expect(page.locator(".conn")).to_have_attribute("data-status", "live")
    expect(page.locator("[data-tk=clock]")).to_have_text(re.compile(r"^\d+'$"))
    expect(page.locator("li[data-type=kickoff] .ev-label")).to_have_text("Afspark")

    post_event(api, match_id, type="goal", team="away", player="Alexander Scholz",
               assist="Sory Kaba", detail="header",
               text="Scholz smadrer bolden op i krydset.")  # fmt: skip
    goal = page.locator("li[data-type=goal]")
    expect(goal).to_contain_text("Alexander Scholz")
    expect(goal.locator(".ev-label")).to_have_text("Mål")
    expect(goal.locator(".ev-team")).to_have_text("SSC Napoli")
    expect(goal).to_contain_text("Scholz smadrer bolden op i krydset.")
    expect(page.locator("[data-tk=away-goals]")).to_have_text("1")
    expect(page.locator("[data-tk=announce]")).to_contain_text("Mål")
    # Newest first.
    assert (
        page.eval_on_selector("[data-tk=feed]", "ol => ol.firstElementChild.dataset.type") == "goal"
    )

    post_event(api, match_id, type="goal", team="home", detail="own_goal", player="Rrahmani")
    expect(page.locator("li.ev--own-goal .ev-label")).to_have_text("Selvmål")
    expect(page.locator("[data-tk=home-goals]")).to_have_text("1")
    post_event(api, match_id, type="yellow_card", team="home", player="Lerager")
    post_event(api, match_id, type="substitution", team="away", player_in="Kvaratskhelia",
               player_out="Politano", minute=45, added=2)  # fmt: skip
    expect(page.locator("li[data-type=yellow_card] .ev-label")).to_have_text("Gult kort")
    sub = page.locator("li[data-type=substitution]")
    expect(sub.locator(".ev-min")).to_have_text("45+2'")
    expect(sub.locator(".ev-in")).to_have_text("Ind: Kvaratskhelia")
    expect(sub.locator(".ev-out")).to_have_text("Ud: Politano")
    # The reporter's 45+2 runs ahead of the kick-off's wall clock: the match clock follows it.
    expect(page.locator("[data-tk=clock]")).to_have_text(re.compile(r"^45\+[23]'$"))

    # English on request, from the first paint.
    page.goto(f"{server.url}/matches/{match_id}?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("[data-tk=phase]")).to_have_text("First half")
    expect(page.locator("li.ev--own-goal .ev-label")).to_have_text("Own goal")
    expect(page.locator("li[data-type=yellow_card] .ev-label")).to_have_text("Yellow card")
    expect(page.locator("li[data-type=substitution] .ev-in")).to_have_text("On: Kvaratskhelia")

    # Keyboard: the first Tab reaches the skip link, which moves to the feed.
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#feed"


def test_first_paint_has_score_and_feed_before_any_socket(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    post_event(api, match_id, type="kickoff")
    post_event(api, match_id, type="goal", team="home", player="Elyounoussi", text="1-0!")

    # Without JavaScript the server's HTML alone has heading, score and phase.
    page = new_page(java_script_enabled=False)
    page.goto(f"{server.url}/matches/{match_id}")
    expect(page.locator("h1")).to_have_text("LIVE: FC København – SSC Napoli")
    expect(page.locator("[data-tk=home-goals]")).to_have_text("1")
    expect(page.locator("[data-tk=phase]")).to_have_text("1. halvleg")

    # With no way to open a socket, the feed still comes from the served snapshot.
    page = new_page()
    page.add_init_script("window.WebSocket = undefined; window.EventSource = undefined;")
    page.goto(f"{server.url}/matches/{match_id}")
    expect(page.locator("li[data-type=goal]")).to_contain_text("Elyounoussi")
    expect(page.locator("li[data-type=kickoff]")).to_have_count(1)
    expect(page.locator("[data-tk=home-goals]")).to_have_text("1")
    expect(page.locator(".conn")).not_to_have_attribute("data-status", "live")


def test_correction_changes_the_event_in_place_and_retraction_restores_the_score(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    post_event(api, match_id, type="kickoff")
    goal = post_event(api, match_id, type="goal", team="away", player="Scholz", minute=13)
    page = new_page()
    page.goto(f"{server.url}/matches/{match_id}")
    expect(page.locator(".conn")).to_have_attribute("data-status", "live")
    item = page.locator(f"li[data-id='{goal['seq']}']")
    expect(item).to_contain_text("Scholz")
    expect(page.locator("[data-tk=away-goals]")).to_have_text("1")
    item.evaluate("li => { li.__marked = true; }")

    r = api.patch(f"/api/matches/{match_id}/events/{goal['seq']}",
                  json={"player": "Sory Kaba", "minute": 14})  # fmt: skip
    assert r.status_code == 200, r.text
    expect(item.locator(".ev-player")).to_have_text("Sory Kaba")
    expect(item.locator(".ev-min")).to_have_text("14'")
    expect(item.locator(".ev-rev")).to_have_text("rettet")
    assert item.evaluate("li => li.__marked === true"), (
        "the corrected event was not changed in place"
    )
    expect(page.locator("[data-tk=feed] > li")).to_have_count(2)

    # VAR: the goal is disallowed, it disappears and the score goes back.
    r = api.delete(f"/api/matches/{match_id}/events/{goal['seq']}")
    assert r.status_code == 200, r.text
    expect(item).to_have_count(0)
    expect(page.locator("[data-tk=away-goals]")).to_have_text("0")
    expect(page.locator("[data-tk=announce]")).to_contain_text("0–0")
    expect(page.locator("[data-tk=feed] > li")).to_have_count(1)


def test_new_events_do_not_move_a_reader_who_scrolled_down(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    post_event(api, match_id, type="kickoff")
    for i in range(14):
        post_event(api, match_id, type="comment", text=f"Kommentar nummer {i}. " * 3)
    page = new_page(viewport=PHONE)
    page.goto(f"{server.url}/matches/{match_id}")
    expect(page.locator(".conn")).to_have_attribute("data-status", "live")
    # A handle, not a locator: nth(6) would be another item once one is added on top.
    reading = page.locator("[data-tk=feed] > li").nth(6).element_handle()
    reading.evaluate("li => window.scrollTo(0, li.getBoundingClientRect().top + scrollY - 120)")
    before = reading.evaluate("li => li.getBoundingClientRect().top")

    post_event(api, match_id, type="goal", team="home", player="Achouri")
    pill = page.locator("[data-tk=pill]")
    expect(pill).to_be_visible()
    expect(pill).to_have_text(re.compile("1 ny hændelse"))
    expect(page.locator("li[data-type=goal]")).to_have_count(1)
    after = reading.evaluate("li => li.getBoundingClientRect().top")
    assert abs(after - before) <= 1, (before, after)
    shoot(page, "fan-phone-new-events-pill", full_page=False)

    pill.click()
    expect(pill).to_be_hidden()
    expect(page.locator("li[data-type=goal]")).to_be_in_viewport()


def test_page_resumes_after_server_restart_without_duplicate_or_gap(
    make_server: Any, redis_url: str, match_id: str, new_page: Callable[..., Page]
) -> None:
    front = make_server(redis_url=redis_url)  # serves the fan page; restarted below
    writer = make_server(redis_url=redis_url)  # keeps taking events while `front` is down
    with writer.admin() as api:
        new_match(api, match_id)
        post_event(api, match_id, type="kickoff")
        page = new_page()
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(f"{front.url}/matches/{match_id}")
        expect(page.locator(".conn")).to_have_attribute("data-status", "live")
        seen = post_event(api, match_id, type="comment", text="før genstart")
        expect(page.locator(f"li[data-id='{seen['seq']}']")).to_have_count(1)

        front.stop()
        expect(page.locator(".conn")).to_have_attribute(
            "data-status", re.compile("reconnecting|offline")
        )
        missed = [post_event(api, match_id, type="comment", text=f"mens serveren var nede {i}")
                  for i in range(3)]  # fmt: skip
        missed.append(post_event(api, match_id, type="goal", team="home", player="Cornelius"))
        front.start()
        expect(page.locator(".conn")).to_have_attribute("data-status", "live", timeout=20_000)
        after = post_event(api, match_id, type="comment", text="efter genstart")
        expect(page.locator(f"li[data-id='{after['seq']}']")).to_have_count(1)

        truth = [e["id"] for e in live_events(api, match_id)]
        assert feed_ids(page) == list(reversed(truth))
        for op in missed:
            expect(page.locator(f"li[data-id='{op['seq']}']")).to_have_count(1)
        expect(page.locator("[data-tk=home-goals]")).to_have_text("1")
        # The reconnect resumed from the last op seen, not from a fresh snapshot.
        assert len(sockets) >= 2 and "since=" in sockets[0]
        url = urlsplit(sockets[-1])  # the fan page also asks for viewer counts
        assert url.path == f"/ws/matches/{match_id}"
        assert parse_qs(url.query)["since"] == [seen["seq"]]


def test_falls_back_to_sse_when_websocket_cannot_open(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    post_event(api, match_id, type="kickoff")
    page = new_page()
    page.add_init_script(
        "window.WebSocket = function () { throw new DOMException('blocked by proxy'); };"
    )
    sse: list[str] = []
    page.on("request", lambda req: sse.append(req.url) if "/sse/" in req.url else None)
    page.goto(f"{server.url}/matches/{match_id}")
    expect(page.locator(".conn")).to_have_attribute("data-status", "live")
    post_event(api, match_id, type="save", team="home", player="Grabara")
    expect(page.locator("li[data-type=save] .ev-label")).to_have_text("Redning")
    assert sse and "since=" in sse[0]


def test_client_logic_in_the_browser(server: TickerServer, new_page: Callable[..., Page]) -> None:
    """Seq order, backoff, clock and the connection state machine, with fake sockets."""
    page = new_page()
    page.goto(f"{server.url}/matches/no-such-match")
    result = page.evaluate(
        """async () => {
      const c = await import('/static/connection.js');
      const k = await import('/static/clock.js');
      const out = {};
      out.seq = [c.seqNewer('1764100000000-10', '1764100000000-9'),
                 c.seqNewer('1764100000001-0', '1764100000000-99'),
                 c.seqNewer('1764100000000-9', '1764100000000-9'),
                 c.seqNewer('1764100000000-8', '1764100000000-9'),
                 c.seqNewer('1764100000000-0', ''), c.seqNewer('junk', '')];
      const high = {random: () => 0.999};
      out.backoff = [c.backoffDelay(0, high), c.backoffDelay(3, high),
                     c.backoffDelay(40, high), c.backoffDelay(5, {random: () => 0})];
      const t0 = Date.parse('2026-11-25T20:00:00Z');
      const at = (m, s = 0) => t0 + m * 60000 + s * 1000;
      const f = (phase, now, state = {}) => {
        const clock = k.matchClock({phase, minute: 0, added: 0, ...state}, t0, now);
        return k.formatMinute(clock.minute, clock.added);
      };
      out.clock = [f('first_half', at(0, 30)), f('first_half', at(44, 59)),
                   f('first_half', at(46, 10)),
                   f('second_half', at(0)), f('second_half', at(66, 5)), f('extra_time', at(31)),
                   f('half_time', at(50), {minute: 45, added: 3}), f('first_half', at(90))];

      // A scripted WebSocket: each instance records its URL; tests drive it by hand.
      const made = [];
      class FakeWS { constructor(url) { this.url = url; made.push(this); } close() {} }
      const got = []; const statuses = [];
      const conn = new c.TickerConnection({origin: 'http://x', matchId: 'm', since: '1-5',
        WebSocket: FakeWS, EventSource: null, base: 1, cap: 2,
        onMessage: (m) => got.push(m.seq), onStatus: (s) => statuses.push(s)});
      conn.start();
      const ws = made[0];
      ws.onopen();
      const send = (msg) => ws.onmessage({data: JSON.stringify(msg)});
      for (const seq of ['1-6', '1-6', '1-4', '1-10', '1-9', '2-0']) send({op: 'add', seq});
      send({op: 'future_op', seq: '2-1'});
      ws.onmessage({data: 'not json'});
      ws.onclose({code: 1012});
      await new Promise((r) => setTimeout(r, 20));
      out.got = got;
      out.resumeUrl = made[1] && made[1].url;
      made[1].onclose({code: 4404});
      await new Promise((r) => setTimeout(r, 20));
      out.afterGone = made.length;
      out.statuses = statuses;
      conn.stop();

      // Two WebSocket attempts that never open, then SSE.
      const es = [];
      class FakeES {
        constructor(url) { this.url = url; es.push(this); }
        addEventListener() {}
        close() {}
      }
      const failing = [];
      class DeadWS { constructor(url) { failing.push(url); throw new Error('blocked'); } }
      const conn2 = new c.TickerConnection({origin: 'https://x', matchId: 'm', since: '3-0',
        WebSocket: DeadWS, EventSource: FakeES, base: 1, cap: 2, onMessage() {}});
      conn2.start();
      await new Promise((r) => setTimeout(r, 30));
      out.fallback = {ws: failing, sse: es.map((e) => e.url)};
      conn2.stop();

      // Coming back to the tab reconnects at once, however long the backoff was.
      const made3 = [];
      class WS3 { constructor(url) { this.url = url; made3.push(this); } close() {} }
      const conn3 = new c.TickerConnection({origin: 'http://x', matchId: 'm', WebSocket: WS3,
        EventSource: null, base: 60000, cap: 60000, random: () => 0.99, onMessage() {}});
      conn3.start();
      made3[0].onclose({code: 1006});
      const before = made3.length;
      document.dispatchEvent(new Event('visibilitychange'));
      out.visibility = [before, made3.length];
      conn3.stop();
      return out;
    }"""
    )
    assert result["seq"] == [True, True, False, False, True, False]
    assert result["backoff"] == [499, 3996, 29970, 0]
    assert result["clock"] == ["1'", "45'", "45+2'", "46'", "90+22'", "120+2'", "45+3'", "45+30'"]
    assert result["got"] == ["1-6", "1-10", "2-0"]  # duplicates and stale seqs dropped
    assert result["resumeUrl"] == "ws://x/ws/matches/m?since=2-1"  # unknown op's seq kept
    assert result["afterGone"] == 2  # 4404: no more attempts
    assert result["statuses"] == ["connecting", "live", "reconnecting", "gone"]
    assert result["fallback"]["ws"] == ["wss://x/ws/matches/m?since=3-0"] * 2
    assert result["fallback"]["sse"][0] == "https://x/sse/matches/m?since=3-0"
    assert result["visibility"] == [1, 2]


# ---------------------------------------------------------------- console


def test_console_posts_corrects_and_retracts_and_the_fan_page_follows(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    r = api.post("/api/reporters", json={"name": f"jens-{match_id[-12:]}"})
    assert r.status_code == 201, r.text
    reporter = r.json()

    fan = new_page()
    fan.goto(f"{server.url}/matches/{match_id}")
    expect(fan.locator(".conn")).to_have_attribute("data-status", "live")

    page = new_page()
    page.goto(f"{server.url}/console?match={match_id}")
    token = page.locator("#token")
    expect(token).to_be_focused()
    token.fill("not-a-token")
    token.press("Enter")
    expect(page.locator("[data-error-for=token]")).to_be_visible()
    token.fill(reporter["token"])
    token.press("Enter")
    expect(page.locator("[data-c=who]")).to_contain_text(reporter["name"])
    cookie = next(c for c in page.context.cookies() if c["name"] == "ticker_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    expect(page.locator("[data-c=conn]")).to_have_attribute("data-status", "live")
    expect(page.locator("[data-c=team-home]")).to_have_text("FC København")

    # Kick-off: one key, then Enter.
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    expect(fan.locator("li[data-type=kickoff]")).to_have_count(1)
    expect(fan.locator("[data-tk=phase]")).to_have_text("1. halvleg")
    expect(page.locator("#f-minute")).to_have_value(re.compile(r"^\d+$"))

    # Goal for the away side: 2, G, the player, Enter.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("2")
    page.keyboard.press("g")
    expect(page.locator("#f-player")).to_be_focused()
    page.keyboard.type("Alexander Scholz")
    page.locator("#f-text").fill("Hovedstød i krydset.")
    page.locator("#f-text").press("Enter")
    goal = fan.locator("li[data-type=goal]")
    expect(goal).to_contain_text("Alexander Scholz")
    expect(goal.locator(".ev-team")).to_have_text("SSC Napoli")
    expect(fan.locator("[data-tk=away-goals]")).to_have_text("1")
    expect(page.locator("[data-c=outbox-count]")).to_have_text("0")
    events = live_events(api, match_id)
    assert [e["type"] for e in events] == ["kickoff", "goal"]
    assert events[1]["author"] == reporter["name"]
    # The player is remembered for that team.
    expect(page.locator("#players option[value='Alexander Scholz']")).to_have_count(1)

    # An error from the API is shown next to the field it names; the form keeps the event.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("c")
    expect(page.locator("#f-text")).to_be_focused()
    page.locator("#f-minute").fill("151")
    page.locator("#f-text").fill("Forkert minut")
    page.locator("#f-text").press("Enter")
    error = page.locator("[data-error-for=minute]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("minute")
    expect(page.locator("#f-minute")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-text")).to_have_value("Forkert minut")
    page.keyboard.press("Escape")

    # A cookie-authenticated write without the CSRF header is refused.
    status = page.evaluate(
        """async (id) => (await fetch(`/api/matches/${id}/events`, {method: 'POST',
             headers: {'Content-Type': 'application/json'},
             body: JSON.stringify({type: 'comment', text: 'csrf'})})).status""",
        match_id,
    )
    assert status == 403

    # Correct the goal from the console.
    console_goal = page.locator("[data-c=feed] li[data-type=goal]")
    console_goal.get_by_role("button", name=re.compile("^Ret")).click()
    expect(page.locator("#f-player")).to_have_value("Alexander Scholz")
    page.locator("#f-player").fill("Sory Kaba")
    page.locator("#f-player").press("Enter")
    expect(goal.locator(".ev-player")).to_have_text("Sory Kaba")
    expect(goal.locator(".ev-rev")).to_have_text("rettet")

    # Retract it (two clicks: ask, then confirm).
    retract = console_goal.get_by_role("button", name=re.compile("^Træk tilbage"))
    retract.click()
    expect(retract).to_have_text("Bekræft tilbagetrækning")
    retract.click()
    expect(goal).to_have_count(0)
    expect(fan.locator("[data-tk=away-goals]")).to_have_text("0")
    assert [e["type"] for e in live_events(api, match_id)] == ["kickoff"]


def test_outbox_holds_an_event_while_the_server_is_down_and_sends_it_once(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    post_event(api, match_id, type="kickoff")
    page = new_page()
    sign_in(page, server)
    page.goto(f"{server.url}/console?match={match_id}")
    expect(page.locator("[data-c=conn]")).to_have_attribute("data-status", "live")

    server.stop()
    expect(page.locator("[data-c=conn]")).to_have_attribute(
        "data-status", re.compile("reconnecting|offline")
    )
    page.keyboard.press("c")
    page.locator("#f-text").fill("Sendt mens serveren var nede")
    page.locator("#f-text").press("Enter")
    expect(page.locator("[data-c=outbox-count]")).to_have_text("1")
    expect(page.locator("[data-c=outbox-list] li")).to_contain_text("Venter")
    stored = page.evaluate("JSON.parse(localStorage.getItem('ticker-outbox-v1'))")
    assert len(stored) == 1 and stored[0]["body"]["text"] == "Sendt mens serveren var nede"
    shoot(page, "console-desktop-outbox", full_page=False)

    server.start()
    expect(page.locator("[data-c=outbox-count]")).to_have_text("0", timeout=30_000)
    expect(page.locator("[data-c=feed] li[data-type=comment]")).to_have_count(1)
    texts = [e.get("text") for e in live_events(api, match_id)]
    assert texts.count("Sendt mens serveren var nede") == 1


def test_outbox_survives_a_reload_and_a_lost_answer_posts_once(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    post_event(api, match_id, type="kickoff")
    page = new_page()
    sign_in(page, server)
    events_url = re.compile(rf"/api/matches/{match_id}/events$")
    # One route for the whole test, so no request slips past while the mode changes.
    mode = {"now": "offline"}
    keys: list[str] = []

    def network(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
        elif mode["now"] == "offline":
            route.abort("internetdisconnected")
        else:
            keys.append(route.request.headers["idempotency-key"])
            if len(keys) == 1:
                # The server writes the event, but its answer is lost on the way back.
                response = route.fetch()
                assert response.status == 201
                route.abort("connectionreset")
            else:
                route.continue_()

    page.route(events_url, network)
    page.goto(f"{server.url}/console?match={match_id}")
    expect(page.locator("[data-c=conn]")).to_have_attribute("data-status", "live")
    page.keyboard.press("c")
    page.locator("#f-text").fill("Overlever en genindlæsning")
    page.locator("#f-text").press("Enter")
    expect(page.locator("[data-c=outbox-count]")).to_have_text("1")

    page.reload()
    expect(page.locator("[data-c=outbox-list] li")).to_contain_text("Venter")
    expect(page.locator("[data-c=outbox-count]")).to_have_text("1")

    # Back online. The console never hears of the first write; its retry carries the
    # same Idempotency-Key, so the server answers with the original and appends nothing.
    mode["now"] = "lossy"
    page.evaluate("dispatchEvent(new Event('online'))")
    expect(page.locator("[data-c=outbox-count]")).to_have_text("0", timeout=20_000)
    assert len(keys) >= 2 and len(set(keys)) == 1, keys
    texts = [e.get("text") for e in live_events(api, match_id)]
    assert texts.count("Overlever en genindlæsning") == 1


# ---------------------------------------------------------------- embed and partners


def test_embed_element_and_iframe_work_on_another_origin(
    make_server: Any, redis_url: str, match_id: str, new_page: Callable[..., Page]
) -> None:
    pages: dict[str, str] = {}
    with partner_site(pages) as partner:
        server = make_server(redis_url=redis_url, env={"TICKER_FRAME_ANCESTORS": partner})
        with server.admin() as api:
            new_match(api, match_id)
            post_event(api, match_id, type="kickoff")
            post_event(api, match_id, type="goal", team="home", player="Cornelius")
            # Headers the partner's browser relies on.
            r = httpx.get(server.url + "/embed.js", headers={"Origin": partner})
            assert r.headers["content-type"].startswith("text/javascript")
            assert r.headers.get_list("access-control-allow-origin") == ["*"]
            r = httpx.get(server.url + "/static/live.js", headers={"Origin": partner})
            assert r.headers.get_list("access-control-allow-origin") == ["*"]
            r = httpx.get(f"{server.url}/embed/{match_id}")
            assert f"frame-ancestors {partner}" in r.headers["content-security-policy"]

            pages["/"] = f"""<!doctype html><html lang="da"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Partner</title>
<style>body {{ font-family: Georgia, serif; background: #faf7f0; margin: 0; padding: 16px; }}
 .layout {{ display: grid; gap: 16px;
   grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); }}
 ol, li, p, h2 {{ color: red !important; font-size: 40px !important; }}</style></head>
<body><h1>Partneravisen</h1><div class="layout">
<section><script type="module" src="{server.url}/embed.js"></script>
<ticker-feed match="{match_id}" lang="en" theme="dark" limit="3"></ticker-feed></section>
<section><iframe src="{server.url}/embed/{match_id}?lang=en&theme=light&compact=1"
 title="Live ticker" style="width:100%;height:560px;border:0"></iframe></section>
</div></body></html>"""
            _check_partner_page(new_page(), api, match_id, partner)


def _check_partner_page(page: Page, api: httpx.Client, match_id: str, url: str) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "/")
    element = page.locator("ticker-feed")
    expect(element.locator("h2.sb-title")).to_have_text("LIVE: FC København – SSC Napoli")
    expect(element.locator("[data-tk=home-goals]")).to_have_text("1")
    expect(element.locator("li[data-type=goal] .ev-label")).to_have_text("Goal")
    expect(element.locator(".conn")).to_have_attribute("data-status", "live")
    # The partner's own CSS does not leak into the shadow root.
    size = element.locator("li[data-type=goal] .ev-label").evaluate(
        "e => getComputedStyle(e).fontSize"
    )
    assert size != "40px"

    post_event(api, match_id, type="red_card", team="away", player="Anguissa")
    expect(element.locator("li[data-type=red_card] .ev-label")).to_have_text("Red card")
    for i in range(3):
        post_event(api, match_id, type="comment", text=f"comment {i}")
    expect(element.locator("li[data-type=comment]:visible")).to_have_count(3)
    expect(element.locator("[data-tk=feed] > li:visible")).to_have_count(3)  # limit="3"

    # The iframe shows: this page's origin is the one configured in frame-ancestors.
    frame = page.frame_locator("iframe")
    expect(frame.locator("h1")).to_have_text("LIVE: FC København – SSC Napoli")
    expect(frame.locator("li[data-type=red_card] .ev-label")).to_have_text("Red card")
    expect(frame.locator("html")).to_have_class(re.compile("tk--compact"))

    # Attributes are the API: switching the language re-renders.
    element.evaluate("e => e.setAttribute('lang', 'da')")
    expect(element.locator("li[data-type=red_card] .ev-label")).to_have_text("Rødt kort")
    assert not [e for e in errors if "CORS" in e or "blocked" in e.lower()], errors
    shoot(page, "embed-partner-desktop")
    page.set_viewport_size(PHONE)
    expect(element.locator("h2.sb-title")).to_be_visible()
    shoot(page, "embed-partner-phone")


def test_iframe_refused_by_a_site_not_in_frame_ancestors(
    make_server: Any, redis_url: str, match_id: str, new_page: Callable[..., Page]
) -> None:
    server = make_server(
        redis_url=redis_url, env={"TICKER_FRAME_ANCESTORS": "https://partner.example"}
    )
    with server.admin() as api:
        new_match(api, match_id)
    pages = {"/": f'<!doctype html><iframe src="{server.url}/embed/{match_id}"></iframe>'}
    with partner_site(pages) as origin:
        page = new_page()
        # Chromium says why it refused; "load" waits for the iframe too, refused or not.
        with page.expect_console_message(lambda m: "frame-ancestors" in m.text) as refusal:
            page.goto(origin + "/", wait_until="load")
        assert "frame-ancestors https://partner.example" in refusal.value.text
        assert len(page.frames) == 2
        child = page.frames[1]
        assert child.locator("[data-tk=scoreboard]").count() == 0
        assert not child.url.startswith(server.url)


def test_partners_page_shows_both_snippets_and_a_live_preview(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id)
    page = new_page()
    page.goto(f"{server.url}/partners")
    element_snippet = page.locator("#snippet-element")
    expect(element_snippet).to_contain_text(f'<script type="module" src="{server.url}/embed.js">')
    expect(element_snippet).to_contain_text("<ticker-feed match=")
    expect(page.locator("#snippet-iframe")).to_contain_text(f"{server.url}/embed/")
    expect(page.locator("ticker-feed").first.locator(".sb-title")).to_contain_text("LIVE:")
    expect(page.locator("ticker-feed").first.locator(".conn")).to_have_attribute(
        "data-status", "live"
    )
    shoot(page, "partners-desktop")


# ---------------------------------------------------------------- safety and looks


def test_markup_in_text_is_shown_as_text_everywhere(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    new_match(api, match_id, home="<b>Bold</b> FC", away="</script><i>Away</i>")
    post_event(api, match_id, type="kickoff")
    post_event(api, match_id, type="goal", team="home", player="<img src=x onerror=alert(2)>",
               text=XSS_TEXT, detail="<u>x</u>")  # fmt: skip
    page = new_page()
    sign_in(page, server)
    for path in (f"/matches/{match_id}", f"/embed/{match_id}", f"/console?match={match_id}"):
        page.goto(server.url + path)
        goal = page.locator("li[data-type=goal]").first
        expect(goal.locator(".ev-text")).to_have_text(XSS_TEXT)
        expect(goal.locator(".ev-player")).to_have_text("<img src=x onerror=alert(2)>")
        expect(page.locator(".sb-title").first).to_have_text(
            "LIVE: <b>Bold</b> FC – </script><i>Away</i>"
        )
        assert page.locator("li img, li script, .sb b, .sb i, li u").count() == 0
        assert page.evaluate("window.__xss") is None
    # And live, through the socket.
    page.goto(f"{server.url}/matches/{match_id}")
    expect(page.locator(".conn")).to_have_attribute("data-status", "live")
    post_event(api, match_id, type="comment", text="<svg onload=alert(3)>live</svg>")
    expect(page.locator("li[data-type=comment] .ev-text")).to_have_text(
        "<svg onload=alert(3)>live</svg>"
    )
    assert page.locator("li svg:not(.tk-icon)").count() == 0
    assert page.evaluate("window.__xss") is None


def test_unknown_match_pages_are_404_pages(
    server: TickerServer, new_page: Callable[..., Page]
) -> None:
    page = new_page()
    for path in ("/matches/no-such-match", "/embed/no-such-match", "/matches/BAD%20ID"):
        response = page.goto(server.url + path)
        assert response is not None and response.status == 404
        expect(page.locator("h1")).to_have_text("Kampen findes ikke")


def test_match_list_puts_live_matches_first_and_updates_them(
    make_server: Any, match_id: str, new_page: Callable[..., Page]
) -> None:
    # Its own (embedded) server: the list shows every match, and the shared Redis has many.
    server = make_server()
    with server.admin() as api:
        _check_match_list(server, api, match_id, new_page())


def _check_match_list(server: TickerServer, api: httpx.Client, match_id: str, page: Page) -> None:
    later, live = f"{match_id}-a", f"{match_id}-b"
    new_match(api, later, home="Brøndby IF", away="AGF")
    new_match(api, live, home="FC Midtjylland", away="Randers FC")
    post_event(api, live, type="kickoff")
    page.goto(server.url + "/")
    live_card = page.locator(f"a[href='/matches/{live}']")
    later_card = page.locator(f"a[href='/matches/{later}']")
    expect(page.locator("#group-live")).to_have_text("Live nu")
    expect(page.locator("section[aria-labelledby=group-live]").locator(live_card)).to_have_count(1)
    expect(
        page.locator("section[aria-labelledby=group-upcoming]").locator(later_card)
    ).to_have_count(1)
    expect(live_card.locator(".card-phase")).to_have_text("1. halvleg")

    post_event(api, live, type="goal", team="away", player="Kallesøe")
    expect(live_card.locator(".card-score span").nth(1)).to_have_text("1")
    post_event(api, later, type="kickoff")
    expect(
        page.locator("section[aria-labelledby=group-live]").locator(f"a[href='/matches/{later}']")
    ).to_have_count(1)


def test_screenshots_and_narrow_screens(
    server: TickerServer, api: httpx.Client, match_id: str, new_page: Callable[..., Page]
) -> None:
    """The pages as people see them, saved for review; and nothing overflows at 320 px."""
    new_match(api, match_id)
    for fields in (
        {"type": "kickoff", "text": "Så er vi i gang i Parken!"},
        {"type": "save", "team": "home", "player": "Kamil Grabara", "minute": 4,
         "text": "Flot redning med fingerspidserne."},
        {"type": "yellow_card", "team": "home", "player": "Lukas Lerager", "minute": 9},
        {"type": "goal", "team": "away", "player": "Alexander Scholz", "assist": "Sory Kaba",
         "detail": "header", "minute": 13, "text": "Scholz smadrer bolden op i krydset."},
        {"type": "var", "minute": 15, "text": "VAR kigger på en mulig hånd – intet straffespark."},
        {"type": "substitution", "team": "home", "player_in": "Mohamed Elyounoussi",
         "player_out": "Viktor Claesson", "minute": 31},
        {"type": "goal", "team": "home", "player": "Diogo Gonçalves", "detail": "penalty",
         "minute": 45, "added": 2, "text": "Sikkert placeret i venstre hjørne."},
        {"type": "comment", "minute": 45, "added": 3,
         "text": "Et intenst første kvarter, hvor begge hold har haft deres chancer."},
    ):  # fmt: skip
        post_event(api, match_id, **fields)

    for viewport, size in ((DESKTOP, "desktop"), (PHONE, "phone")):
        for scheme in ("light", "dark"):
            page = new_page(viewport=viewport, color_scheme=scheme)
            page.goto(f"{server.url}/matches/{match_id}")
            expect(page.locator(".conn")).to_have_attribute("data-status", "live")
            expect(page.locator("[data-tk=feed] > li")).to_have_count(8)
            shoot(page, f"fan-{size}-{scheme}")
        page = new_page(viewport=viewport)
        page.goto(f"{server.url}/embed/{match_id}?limit=5")
        expect(page.locator(".conn")).to_have_attribute("data-status", "live")
        shoot(page, f"embed-iframe-{size}")
        page = new_page(viewport=viewport, color_scheme="dark")
        sign_in(page, server)
        page.goto(f"{server.url}/console?match={match_id}")
        expect(page.locator("[data-c=conn]")).to_have_attribute("data-status", "live")
        expect(page.locator("[data-c=feed] > li")).to_have_count(8)
        page.keyboard.press("g")
        shoot(page, f"console-{size}-dark")
    page = new_page()
    page.goto(server.url + "/")
    expect(page.locator(f"a[href='/matches/{match_id}']")).to_have_count(1)
    shoot(page, "index-desktop", full_page=False)

    narrow = new_page(viewport={"width": 320, "height": 640})
    sign_in(narrow, server)
    for path in (f"/matches/{match_id}", f"/embed/{match_id}", f"/console?match={match_id}", "/",
                 "/partners"):  # fmt: skip
        narrow.goto(server.url + path)
        narrow.wait_for_load_state("load")
        width = narrow.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, f"{path} is {width}px wide at 320px"
