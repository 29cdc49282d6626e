"""Sessions, limits, content types and the public URL, on real server processes.

Servers on the Redis engine get a key prefix of their own here: failed-auth counts are
per client address, and every test client is 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ROOT, RedisServer, TickerServer, _env, free_port, new_match

ENGINES = ["embedded", "redis"]


def start(make_server: Any, redis_server: RedisServer, engine: str, **env: str) -> TickerServer:
    if engine == "redis":
        if redis_server.proc is None:
            redis_server.start()
        env.setdefault("TICKER_REDIS_PREFIX", f"sec-{uuid.uuid4().hex[:10]}")
        return make_server(redis_url=redis_server.url, env=env)  # type: ignore[no-any-return]
    return make_server(env=env)  # type: ignore[no-any-return]


def add_reporter(server: TickerServer, match_id: str | None = None) -> str:
    with server.admin() as admin:
        if match_id is not None:
            new_match(admin, match_id)
        made = admin.post("/api/reporters", json={"name": f"r{uuid.uuid4().hex[:10]}"})
        assert made.status_code == 201, made.text
        return str(made.json()["token"])


def sign_in(server: TickerServer, token: str) -> tuple[httpx.Client, str]:
    browser = httpx.Client(base_url=server.url)
    r = browser.post("/api/session", json={"token": token})
    assert r.status_code == 200, r.text
    return browser, str(r.json()["csrf"])


def event_count(server: TickerServer, match_id: str) -> int:
    ops = httpx.get(f"{server.url}/api/matches/{match_id}/ops").json()["ops"]
    return sum(1 for op in ops if op["op"] == "add")


def comment(client: httpx.Client, match_id: str, **headers: str) -> httpx.Response:
    return client.post(f"/api/matches/{match_id}/events", json={"type": "comment"}, headers=headers)


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1


# Sessions


@pytest.mark.parametrize("engine", ENGINES)
def test_the_cookie_is_a_random_id_not_derived_from_the_admin_token(
    make_server: Any, redis_server: RedisServer, engine: str
) -> None:
    server = start(make_server, redis_server, engine)
    token = add_reporter(server)
    browser, _ = sign_in(server, token)
    with contextlib.closing(browser):
        cookie = browser.cookies["ticker_session"]
    old_secret = hashlib.sha256(b"ticker-session:" + ADMIN_TOKEN.encode()).digest()
    payload, _, sig = cookie.strip('"').partition(".")
    forged = hmac.new(old_secret, payload.encode(), hashlib.sha256).hexdigest()[:32]
    assert sig != forged, "the cookie verifies under a key derived from the admin token"
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert digest not in cookie and base64.urlsafe_b64encode(digest.encode()).decode() not in cookie


@pytest.mark.parametrize("engine", ENGINES)
def test_sign_out_ends_the_session_on_the_server(
    make_server: Any, redis_server: RedisServer, engine: str, match_id: str
) -> None:
    server = start(make_server, redis_server, engine)
    token = add_reporter(server, match_id)
    browser, csrf = sign_in(server, token)
    with contextlib.closing(browser):
        cookie = browser.cookies["ticker_session"]
        assert browser.delete("/api/session").status_code == 204
    with httpx.Client(base_url=server.url, cookies={"ticker_session": cookie}) as stolen:
        assert stolen.get("/api/session").status_code == 401
        r = comment(stolen, match_id, **{"X-CSRF-Token": csrf})
        assert r.status_code == 401, r.text
    assert event_count(server, match_id) == 0


def test_an_idle_session_expires(make_server: Any, redis_server: RedisServer) -> None:
    for engine in ENGINES:
        server = start(make_server, redis_server, engine, TICKER_SESSION_IDLE="1")
        browser, _ = sign_in(server, add_reporter(server))
        with contextlib.closing(browser):
            assert browser.get("/api/session").status_code == 200
            time.sleep(2.5)
            assert browser.get("/api/session").status_code == 401, engine


@pytest.mark.parametrize("engine", ENGINES)
def test_revoking_a_reporter_ends_its_sessions_and_a_new_sign_in_replaces_the_old(
    make_server: Any, redis_server: RedisServer, engine: str
) -> None:
    server = start(make_server, redis_server, engine)
    with server.admin() as admin:
        name = f"r{uuid.uuid4().hex[:10]}"
        token = admin.post("/api/reporters", json={"name": name}).json()["token"]
        browser, _ = sign_in(server, token)
        with contextlib.closing(browser):
            first = browser.cookies["ticker_session"]
            assert browser.post("/api/session", json={"token": token}).status_code == 200
            assert browser.cookies["ticker_session"] != first
            with httpx.Client(base_url=server.url, cookies={"ticker_session": first}) as old:
                assert old.get("/api/session").status_code == 401
            assert browser.get("/api/session").json()["reporter"] == name
            assert admin.delete(f"/api/reporters/{name}").status_code == 204
            assert browser.get("/api/session").status_code == 401


@pytest.mark.parametrize("engine", ENGINES)
def test_a_session_survives_a_restart(
    make_server: Any, redis_server: RedisServer, engine: str, match_id: str
) -> None:
    server = start(make_server, redis_server, engine)
    browser, csrf = sign_in(server, add_reporter(server, match_id))
    server.restart()
    with contextlib.closing(browser):
        assert browser.get("/api/session").status_code == 200
        assert comment(browser, match_id, **{"X-CSRF-Token": csrf}).status_code == 201


def test_the_store_keeps_no_usable_cookie_and_the_secret_signs_the_ids(
    make_server: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    server = start(make_server, redis_server, "embedded")
    browser, _ = sign_in(server, add_reporter(server))
    with contextlib.closing(browser):
        cookie = browser.cookies["ticker_session"]
        stored = tmp_path / "data" / "kv.json"
        assert stored.stat().st_mode & 0o777 == 0o600
        assert cookie not in stored.read_text()
        # Another secret: the same id names no session.
        server.stop()
        server.env["TICKER_SESSION_SECRET"] = "s" * 32
        server.start()
        assert browser.get("/api/session").status_code == 401


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TICKER_SESSION_SECRET", "s" * 31), ("TICKER_ADMIN_TOKEN", "a" * 23)],
)
def test_short_secrets_are_refused_without_being_shown(variable: str, value: str) -> None:
    from ticker import settings as settings_mod

    with pytest.raises(settings_mod.SettingsError, match=variable) as raised:
        settings_mod.load({variable: value})
    assert value not in str(raised.value)
    assert settings_mod.load({variable: value + "x"})


def test_a_session_works_on_every_process_of_one_redis(
    make_server: Any, redis_server: RedisServer, match_id: str
) -> None:
    prefix = f"sec-{uuid.uuid4().hex[:10]}"
    first = start(make_server, redis_server, "redis", TICKER_REDIS_PREFIX=prefix)
    second = start(make_server, redis_server, "redis", TICKER_REDIS_PREFIX=prefix)
    browser, csrf = sign_in(first, add_reporter(first, match_id))
    with (
        contextlib.closing(browser),
        httpx.Client(base_url=second.url, cookies=browser.cookies) as other,
    ):
        assert other.get("/api/session").status_code == 200
        assert comment(other, match_id, **{"X-CSRF-Token": csrf}).status_code == 201
        assert browser.delete("/api/session").status_code == 204
        assert other.get("/api/session").status_code == 401


# Failed authentication, per client address


@pytest.mark.parametrize("engine", ENGINES)
def test_wrong_bearer_tokens_are_limited_per_address(
    make_server: Any, redis_server: RedisServer, engine: str, match_id: str
) -> None:
    server = start(make_server, redis_server, engine)
    with server.admin() as admin:
        new_match(admin, match_id)
    with httpx.Client(base_url=server.url) as guesser:
        for i in range(10):
            r = comment(guesser, match_id, Authorization=f"Bearer guess-{i}")
            assert r.status_code == 401, r.text
        assert_limited(comment(guesser, match_id, Authorization="Bearer guess-10"))
        # Cut off before the token is checked: a right guess is not told apart.
        assert_limited(comment(guesser, match_id, Authorization=f"Bearer {ADMIN_TOKEN}"))
        assert_limited(guesser.post("/api/session", json={"token": ADMIN_TOKEN}))
    assert event_count(server, match_id) == 0


def test_a_forged_forwarded_for_does_not_help(
    make_server: Any, redis_server: RedisServer, match_id: str
) -> None:
    server = start(make_server, redis_server, "embedded")
    with server.admin() as admin:
        new_match(admin, match_id)
    with httpx.Client(base_url=server.url) as guesser:
        for i in range(10):
            forged = {"X-Forwarded-For": f"198.51.100.{i}"}
            r = guesser.post("/api/session", json={"token": f"guess-{i}"}, headers=forged)
            assert r.status_code == 422, r.text
        forged = {"X-Forwarded-For": "198.51.100.99"}
        assert_limited(guesser.post("/api/session", json={"token": "guess"}, headers=forged))
        assert_limited(comment(guesser, match_id, Authorization="Bearer x", **forged))


def test_behind_a_trusted_proxy_the_forwarded_address_is_limited(
    make_server: Any, redis_server: RedisServer, match_id: str
) -> None:
    server = start(make_server, redis_server, "embedded", TICKER_TRUSTED_PROXIES="127.0.0.1")
    with server.admin() as admin:
        new_match(admin, match_id)
    with httpx.Client(base_url=server.url) as proxy:

        def guess(forwarded: str) -> httpx.Response:
            headers = {"Authorization": "Bearer wrong", "X-Forwarded-For": forwarded}
            return comment(proxy, match_id, **headers)

        for _ in range(10):
            assert guess("203.0.113.7").status_code == 401
        assert_limited(guess("203.0.113.7"))
        # The right-most untrusted address counts: a client cannot prepend its way out.
        assert_limited(guess("192.0.2.1, 203.0.113.7"))
        assert_limited(guess("203.0.113.7, 127.0.0.1"))
        assert guess("203.0.113.8").status_code == 401
        # The proxy's own address was never counted.
        assert comment(proxy, match_id, Authorization="Bearer wrong").status_code == 401


def test_two_processes_on_one_redis_share_the_count(
    make_server: Any, redis_server: RedisServer, match_id: str
) -> None:
    prefix = f"sec-{uuid.uuid4().hex[:10]}"
    first = start(make_server, redis_server, "redis", TICKER_REDIS_PREFIX=prefix)
    second = start(make_server, redis_server, "redis", TICKER_REDIS_PREFIX=prefix)
    with first.admin() as admin:
        new_match(admin, match_id)
    for i in range(10):
        server = first if i % 2 else second
        r = httpx.post(
            f"{server.url}/api/matches/{match_id}/events",
            json={"type": "comment"},
            headers={"Authorization": "Bearer wrong"},
        )
        assert r.status_code == 401, r.text
    for server in (first, second):
        with httpx.Client(base_url=server.url) as client:
            assert_limited(comment(client, match_id, Authorization="Bearer wrong"))


# Write rate per token


@pytest.mark.parametrize("engine", ENGINES)
def test_writes_over_the_rate_are_refused_and_append_nothing(
    make_server: Any, redis_server: RedisServer, engine: str, match_id: str
) -> None:
    # One token per 5 s after a burst of 3: the 4th quick write is over, however slow
    # this machine is.
    server = start(
        make_server, redis_server, engine, TICKER_WRITE_RATE="0.2", TICKER_WRITE_BURST="3"
    )
    token = add_reporter(server, match_id)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert [comment(c, match_id).status_code for _ in range(3)] == [201, 201, 201]
        assert_limited(comment(c, match_id))
    assert event_count(server, match_id) == 3
    # The session of the same token shares its budget.
    browser, csrf = sign_in(server, token)
    with contextlib.closing(browser):
        assert_limited(comment(browser, match_id, **{"X-CSRF-Token": csrf}))
    assert event_count(server, match_id) == 3


def test_a_write_rate_of_zero_is_no_limit(
    make_server: Any, redis_server: RedisServer, match_id: str
) -> None:
    server = start(
        make_server, redis_server, "embedded", TICKER_WRITE_RATE="0", TICKER_WRITE_BURST="1"
    )
    token = add_reporter(server, match_id)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert {comment(c, match_id).status_code for _ in range(20)} == {201}
    assert event_count(server, match_id) == 20


# Content types


@pytest.mark.parametrize("engine", ENGINES)
def test_json_routes_take_only_json(
    make_server: Any, redis_server: RedisServer, engine: str, match_id: str
) -> None:
    server = start(make_server, redis_server, engine)
    with server.admin() as admin:
        new_match(admin, match_id)
        url = f"/api/matches/{match_id}/events"
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": content_type} if content_type else {}
            r = admin.post(url, content=b'{"type": "comment"}', headers=headers)
            assert r.status_code == 415, r.text
            assert r.json()["error"] == {
                "code": "unsupported_media_type",
                "message": r.json()["error"]["message"],
                "field": "Content-Type",
            }
        for content_type in ("application/json; charset=utf-8", "application/ld+json"):
            r = admin.post(
                url, content=b'{"type": "comment"}', headers={"Content-Type": content_type}
            )
            assert r.status_code == 201, r.text
    assert event_count(server, match_id) == 2
    # Login CSRF: a cross-site form can send text/plain, never application/json.
    with httpx.Client(base_url=server.url) as browser:
        form = browser.post(
            "/api/session",
            content=f'{{"token": "{ADMIN_TOKEN}"}}'.encode(),
            headers={"Content-Type": "text/plain"},
        )
        assert form.status_code == 415, form.text
        assert "set-cookie" not in form.headers


# The public URL


def test_the_host_header_is_not_reflected(make_server: Any, redis_server: RedisServer) -> None:
    server = start(make_server, redis_server, "embedded")
    evil = {"Host": "evil.example"}
    partners = httpx.get(f"{server.url}/partners", headers=evil)
    assert partners.status_code == 200 and "evil.example" not in partners.text
    assert f"127.0.0.1:{server.port}/embed.js" in httpx.get(f"{server.url}/partners").text
    for path in ("/console/", "/partners/", "/matches/x/"):
        r = httpx.get(f"{server.url}{path}", headers=evil)
        assert "evil.example" not in r.headers.get("location", ""), (path, r.headers)
        assert "evil.example" not in r.text
    moved = httpx.get(f"{server.url}/console/?lang=en", headers=evil)
    assert moved.status_code in (301, 307, 308)
    assert moved.headers["location"] == "/console?lang=en"
    assert (
        httpx.get(f"{server.url}//evil.example/", headers=evil)
        .headers.get("location", "/")
        .startswith("/")
    )
    assert (
        not httpx.get(f"{server.url}//evil.example/").headers.get("location", "/").startswith("//")
    )


def test_the_configured_public_url_is_used(make_server: Any, redis_server: RedisServer) -> None:
    public = "https://ticker.example.com"
    server = start(make_server, redis_server, "embedded", TICKER_PUBLIC_URL=public)
    partners = httpx.get(f"{server.url}/partners", headers={"Host": "evil.example"}).text
    assert f"{public}/embed.js" in partners and "evil.example" not in partners
    moved = httpx.get(f"{server.url}/console/", headers={"Host": "evil.example"})
    assert moved.headers["location"] == f"{public}/console"


# Start-up


def test_a_short_admin_token_refuses_to_start(tmp_path: Path) -> None:
    env = {**_env(TICKER_DATA_DIR=str(tmp_path / "data")), "TICKER_ADMIN_TOKEN": "short-token"}
    cmd = [sys.executable, "-m", "ticker", "serve", "--port", str(free_port())]
    try:
        result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("the server started with an 11-character admin token")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TICKER_ADMIN_TOKEN" in lines[0] and "24" in lines[0]
    assert "short-token" not in result.stderr


# The limiter's parts, in process


def test_the_in_process_limiter_stays_bounded() -> None:
    from ticker.limits import MemoryLimiter

    limiter = MemoryLimiter(cap=10_000)

    async def fail_from_everywhere() -> None:
        for i in range(100_000):
            address = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            await limiter.take(f"fail:{address}", 10 / 60, 10)
            assert len(limiter) <= 10_000

    asyncio.run(fail_from_everywhere())
    assert len(limiter) <= 10_000


def test_the_in_process_limiter_counts_and_refills() -> None:
    from ticker.limits import MemoryLimiter

    limiter = MemoryLimiter(cap=10)

    async def run() -> list[float]:
        # 2 a second: the quick takes below cannot see a refill even on a stalled machine.
        got = [await limiter.take("k", 2.0, 3) for _ in range(4)]
        got.append(await limiter.take("k", 2.0, 3, peek=True))
        await asyncio.sleep(0.6)  # one token's worth (and a bit) at 2/s
        got.append(await limiter.take("k", 2.0, 3))
        return got

    got = asyncio.run(run())
    assert got[:3] == [0.0, 0.0, 0.0] and got[3] > 0 and got[4] > 0 and got[5] == 0.0


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "address"),
    [
        ("10.0.0.5", "1.2.3.4", "", "10.0.0.5"),
        ("127.0.0.1", "1.2.3.4", "", "127.0.0.1"),
        ("10.0.0.5", "1.2.3.4", "10.0.0.0/8", "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4", "10.0.0.0/8", "1.2.3.4"),
        ("10.0.0.5", "1.2.3.4, 10.0.0.9", "10.0.0.0/8", "1.2.3.4"),
        ("10.0.0.5", "10.0.0.7, 10.0.0.9", "10.0.0.0/8", "10.0.0.7"),
        ("10.0.0.5", "", "10.0.0.0/8", "10.0.0.5"),
        ("10.0.0.5", "not-an-ip, 1.2.3.4", "10.0.0.0/8", "1.2.3.4"),
        ("10.0.0.5", "1.2.3.4, garbage", "10.0.0.0/8", "10.0.0.5"),
        ("::1", "2001:db8::1", "::1", "2001:db8::1"),
    ],
)
def test_the_client_address(peer: str, forwarded: str, trusted: str, address: str) -> None:
    from ticker.limits import client_address, parse_networks

    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    scope = {"type": "http", "client": (peer, 5000), "headers": headers}
    assert client_address(scope, parse_networks(trusted)) == address


def test_stream_slots_per_address() -> None:
    from ticker.limits import StreamSlots

    slots = StreamSlots(2)
    assert slots.acquire("1.2.3.4") and slots.acquire("1.2.3.4")
    assert not slots.acquire("1.2.3.4")
    assert slots.acquire("5.6.7.8")
    slots.release("1.2.3.4")
    assert slots.acquire("1.2.3.4")
    for address in ("1.2.3.4", "1.2.3.4", "5.6.7.8"):
        slots.release(address)
    assert len(slots) == 0, "an address without connections keeps no entry"
    for i in range(100_000):
        assert slots.acquire(f"a{i}")
        slots.release(f"a{i}")
    assert len(slots) == 0


def test_compose_trusts_only_its_proxy() -> None:
    import ipaddress

    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"]["ticker-1"]["environment"]
    assert "FORWARDED_ALLOW_IPS" not in env
    proxy = compose["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    assert env["TICKER_TRUSTED_PROXIES"] == proxy
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(proxy) in ipaddress.ip_network(subnet)
