"""Settings from TICKER_* variables and flags (ticker/settings.py), and the `ticker` CLI.

The CLI tests run `python -m ticker` as a user would, in a subprocess, against a data
directory in tmp_path or the suite's own redis-server.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import uuid
from dataclasses import fields, replace
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import ADMIN_TOKEN, RedisServer, TickerServer, free_port, new_match
from ticker import settings as settings_mod
from ticker.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent


# Parsing the environment


def test_defaults() -> None:
    s = settings_mod.load({})
    assert s == Settings()
    assert (s.host, s.port, s.workers, s.redis_url) == ("127.0.0.1", 8000, 1, "")
    assert (s.data_dir, s.fsync, s.log_level) == ("./ticker-data", True, "info")
    assert s.engine_name == "embedded"


def test_each_variable_sets_its_setting() -> None:
    env = {
        "TICKER_HOST": "0.0.0.0",
        "TICKER_PORT": "9001",
        "TICKER_WORKERS": "4",
        "TICKER_REDIS_URL": "redis://redis:6379/0",
        "TICKER_REDIS_PREFIX": "t2",
        "TICKER_DATA_DIR": "/var/lib/ticker",
        "TICKER_FSYNC": "false",
        "TICKER_ADMIN_TOKEN": "s3cret-s3cret-s3cret-s3cret",
        "TICKER_LOG_LEVEL": "WARNING",
        "TICKER_CLIENT_BUFFER": "4096",
        "TICKER_MAX_BODY": "1024",
        "TICKER_FRAME_ANCESTORS": "https://partner.dk",
        "TICKER_CORS_ORIGINS": "https://a.dk,https://b.dk",
        "TICKER_DEMO": "yes",
        "TICKER_DEMO_SPEED": "120.5",
        "TICKER_SECURE_COOKIES": "on",
        "TICKER_WS": "plain",
        "TICKER_HEAD_TIMEOUT": "2.5",
        "TICKER_BODY_TIMEOUT": "30",
    }
    assert set(env) <= {f"TICKER_{f.name.upper()}" for f in fields(Settings)}
    s = settings_mod.load(env)
    assert s == replace(
        Settings(),
        host="0.0.0.0",
        port=9001,
        workers=4,
        redis_url="redis://redis:6379/0",
        redis_prefix="t2",
        data_dir="/var/lib/ticker",
        fsync=False,
        admin_token="s3cret-s3cret-s3cret-s3cret",
        log_level="warning",
        client_buffer=4096,
        max_body=1024,
        frame_ancestors="https://partner.dk",
        cors_origins="https://a.dk,https://b.dk",
        demo=True,
        demo_speed=120.5,
        secure_cookies=True,
        ws="plain",
        head_timeout=2.5,
        body_timeout=30.0,
    )
    assert s.engine_name == "redis"


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", True), ("true", True), ("TRUE", True), ("Yes", True), (" on ", True),
     ("0", False), ("false", False), ("No", False), ("OFF", False)],
)  # fmt: skip
def test_booleans(raw: str, value: bool) -> None:
    assert settings_mod.load({"TICKER_FSYNC": raw}).fsync is value


@pytest.mark.parametrize("url", ["redis://localhost", "rediss://u:p@h:6380/2", "unix:///r.sock"])
def test_redis_urls(url: str) -> None:
    assert settings_mod.load({"TICKER_REDIS_URL": url}).redis_url == url


def test_empty_redis_url_means_embedded() -> None:
    assert settings_mod.load({"TICKER_REDIS_URL": ""}).engine_name == "embedded"


def test_other_variables_are_ignored() -> None:
    assert settings_mod.load({"PORT": "1", "TICKERPORT": "2", "ticker_port": "3"}) == Settings()


def test_every_setting_has_a_known_variable() -> None:
    assert settings_mod.variables() == [f"TICKER_{f.name.upper()}" for f in fields(Settings)]
    assert "TICKER_REDIS_URL" in settings_mod.variables()


@pytest.mark.parametrize(
    ("var", "hint"),
    [("TICKER_REDIS_ULR", "TICKER_REDIS_URL"), ("TICKER_DATADIR", "TICKER_DATA_DIR"),
     ("TICKER_ADMIN_TOKENS", "TICKER_ADMIN_TOKEN"), ("TICKER_HEAD_TIMOUT", "TICKER_HEAD_TIMEOUT")],
)  # fmt: skip
def test_an_unknown_variable_is_refused_with_the_closest_name(var: str, hint: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings_mod.load({var: "x", "TICKER_PORT": "8001"})
    assert str(info.value) == f"unknown setting {var}; did you mean {hint}?"


def test_an_unknown_variable_like_no_setting_has_no_hint() -> None:
    with pytest.raises(SettingsError) as info:
        settings_mod.load({"TICKER_ZEBRA_STRIPES": "7"})
    assert str(info.value) == "unknown setting TICKER_ZEBRA_STRIPES"


def test_an_unknown_variable_is_refused_even_with_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKER_REDIS_ULR", "redis://redis:6379/0")
    with pytest.raises(SettingsError, match="TICKER_REDIS_ULR"):
        settings_mod.load(port="9000")


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKER_PORT", "8123")
    assert settings_mod.load().port == 8123


def test_flags_override_the_environment() -> None:
    env = {"TICKER_PORT": "8001", "TICKER_HOST": "10.0.0.1", "TICKER_DEMO_SPEED": "5"}
    s = settings_mod.load(env, port="9002", host="0.0.0.0", demo="true")
    assert (s.port, s.host, s.demo, s.demo_speed) == (9002, "0.0.0.0", True, 5.0)


def test_unset_flags_leave_the_environment() -> None:
    s = settings_mod.load({"TICKER_PORT": "8001"}, port=None, workers=None)
    assert (s.port, s.workers) == (8001, 1)


def test_a_bad_variable_is_reported_even_when_a_flag_replaces_it() -> None:
    # The environment is parsed whole, so a bad variable is reported even when a
    # flag would have replaced it: the operator learns about it either way.
    with pytest.raises(SettingsError, match="TICKER_PORT"):
        settings_mod.load({"TICKER_PORT": "abc"}, port="9000")


BAD_VALUES = [
    ("TICKER_PORT", "abc"),
    ("TICKER_PORT", ""),
    ("TICKER_PORT", "8000.5"),
    ("TICKER_PORT", "70000"),
    ("TICKER_PORT", "-1"),
    ("TICKER_PORT", "80\n00"),
    ("TICKER_WORKERS", "0"),
    ("TICKER_WORKERS", "-2"),
    ("TICKER_WORKERS", "two"),
    ("TICKER_REDIS_URL", "http://x"),
    ("TICKER_REDIS_URL", "localhost:6379"),
    ("TICKER_FSYNC", "maybe"),
    ("TICKER_FSYNC", ""),
    ("TICKER_DEMO", "2"),
    ("TICKER_SECURE_COOKIES", "yesplease"),
    ("TICKER_LOG_LEVEL", "loud"),
    ("TICKER_DEMO_SPEED", "0"),
    ("TICKER_DEMO_SPEED", "-1"),
    ("TICKER_DEMO_SPEED", "fast"),
    ("TICKER_CLIENT_BUFFER", "0"),
    ("TICKER_MAX_BODY", "64k"),
    ("TICKER_WS", "turbo"),
    ("TICKER_HEAD_TIMEOUT", "0"),
    ("TICKER_HEAD_TIMEOUT", "soon"),
    ("TICKER_BODY_TIMEOUT", "-1"),
    ("TICKER_BODY_TIMEOUT", "inf"),
]


@pytest.mark.parametrize(("var", "raw"), BAD_VALUES)
def test_a_bad_value_is_one_line_naming_the_variable(var: str, raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings_mod.load({var: raw})
    message = str(info.value)
    assert message.startswith(f"{var}=")
    assert "\n" not in message and repr(raw) in message
    assert re.search(r": expected \S", message), message
    assert "Traceback" not in message and "invalid literal" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    ("flag", "raw"), [("port", "abc"), ("workers", "0"), ("redis_url", "http://x")]
)
def test_a_bad_flag_names_the_flag(flag: str, raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings_mod.load({}, **{flag: raw})
    assert str(info.value).startswith(f"--{flag.replace('_', '-')}={raw!r}: ")


@pytest.mark.parametrize("raw", ["nan", "inf", "-nan"])
def test_demo_speed_must_be_finite(raw: str) -> None:
    with pytest.raises(SettingsError, match="TICKER_DEMO_SPEED"):
        settings_mod.load({"TICKER_DEMO_SPEED": raw})


# The command line, as a user runs it


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update(extra)
    return env


def ticker(
    *args: str, env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticker", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("ticker: ")
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in err


def test_serve_with_a_bad_port_variable() -> None:
    result = ticker("serve", env=clean_env(TICKER_PORT="abc"))
    assert_one_line_error(result, "TICKER_PORT", "'abc'")


@pytest.mark.parametrize(
    ("var", "raw"), [("TICKER_WORKERS", "0"), ("TICKER_REDIS_URL", "http://x"),
                     ("TICKER_FSYNC", "maybe")],
)  # fmt: skip
def test_serve_with_other_bad_variables(var: str, raw: str, tmp_path: Path) -> None:
    result = ticker("serve", env=clean_env(**{var: raw, "TICKER_DATA_DIR": str(tmp_path)}))
    assert_one_line_error(result, var)


def test_serve_with_a_bad_port_flag() -> None:
    result = ticker("serve", "--port", "http", env=clean_env())
    assert_one_line_error(result, "--port")


def test_serve_with_workers_needs_redis(tmp_path: Path) -> None:
    port = str(free_port())
    env = clean_env(TICKER_DATA_DIR=str(tmp_path / "data"))
    result = ticker("serve", "--port", port, "--workers", "2", env=env)
    assert_one_line_error(result, "TICKER_REDIS_URL", "workers")
    assert not (tmp_path / "data").exists()  # refused before anything started


def reporter_token(result: subprocess.CompletedProcess[str], name: str) -> str:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert name in lines[0] and "once" in lines[0]
    token = lines[-1]
    assert re.fullmatch(r"tkr_[A-Za-z0-9_-]{40,}", token), token
    assert result.stdout.count(token) == 1
    return token


def assert_token_stored_only_as_hash(data_dir: Path, token: str) -> None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    stored = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert digest.encode() in stored
    assert token.encode() not in stored


def test_reporter_commands_embedded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_env(TICKER_DATA_DIR=str(data))
    assert ticker("reporter", "list", env=env).stdout == ""

    token = reporter_token(ticker("reporter", "add", "jens", env=env), "jens")
    assert_token_stored_only_as_hash(data, token)
    second = reporter_token(ticker("reporter", "add", "mette.k", env=env), "mette.k")
    assert second != token

    listed = ticker("reporter", "list", env=env)
    assert listed.returncode == 0 and listed.stdout.split() == ["jens", "mette.k"]
    assert token not in listed.stdout and second not in listed.stdout

    again = ticker("reporter", "add", "jens", env=env)
    assert again.returncode == 1 and "exists" in again.stderr
    assert "Traceback" not in again.stderr and "tkr_" not in again.stdout

    revoked = ticker("reporter", "revoke", "jens", env=env)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert ticker("reporter", "list", env=env).stdout.split() == ["mette.k"]
    assert hashlib.sha256(token.encode()).hexdigest().encode() not in b"".join(
        p.read_bytes() for p in data.rglob("*") if p.is_file()
    )

    missing = ticker("reporter", "revoke", "jens", env=env)
    assert missing.returncode == 1 and "jens" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize("name", ["Jens", "jens hansen", "x" * 41, "jens/../../x", "æøå"])
def test_reporter_names_are_checked(name: str, tmp_path: Path) -> None:
    env = clean_env(TICKER_DATA_DIR=str(tmp_path / "data"))
    result = ticker("reporter", "add", name, env=env)
    assert_one_line_error(result, "reporter name")
    assert not (tmp_path / "data" / "reporters.json").exists()


def test_reporter_commands_redis(redis_server: RedisServer, redis_url: str) -> None:
    prefix = f"test-cli-{uuid.uuid4().hex[:8]}"
    env = clean_env(TICKER_REDIS_URL=redis_url, TICKER_REDIS_PREFIX=prefix)
    assert ticker("reporter", "list", env=env).stdout == ""

    token = reporter_token(ticker("reporter", "add", "jens", env=env), "jens")
    client = redis.Redis.from_url(redis_url)
    try:
        stored = client.hgetall(f"{prefix}:reporters")
        assert stored == {b"jens": hashlib.sha256(token.encode()).hexdigest().encode()}
        keys = client.keys(f"{prefix}:*")
        assert all(token.encode() not in (client.dump(k) or b"") for k in keys)

        assert ticker("reporter", "list", env=env).stdout.split() == ["jens"]
        again = ticker("reporter", "add", "jens", env=env)
        assert again.returncode == 1 and "exists" in again.stderr

        assert ticker("reporter", "revoke", "jens", env=env).returncode == 0
        assert ticker("reporter", "list", env=env).stdout == ""
        assert client.hlen(f"{prefix}:reporters") == 0
        assert client.hlen(f"{prefix}:reporter-tokens") == 0
        assert ticker("reporter", "revoke", "jens", env=env).returncode == 1
    finally:
        client.close()


def test_reporter_commands_with_redis_down() -> None:
    env = clean_env(TICKER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    result = ticker("reporter", "list", env=env, timeout=20)
    assert result.returncode == 1
    assert result.stderr.startswith("ticker: ") and "Redis" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_cli_token_writes_until_revoked(server: TickerServer, match_id: str) -> None:
    """End to end on each engine: the token `reporter add` prints posts events on a
    running server, and `reporter revoke` shuts it out without a restart."""
    name = f"r{uuid.uuid4().hex[:12]}"
    env = {**server.env, "TICKER_ADMIN_TOKEN": ""}
    token = reporter_token(ticker("reporter", "add", name, env=env), name)
    with server.admin() as admin:
        new_match(admin, match_id)
    url = f"{server.url}/api/matches/{match_id}/events"
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(url, headers=auth, json={"type": "comment", "text": "Hej"})
    assert r.status_code == 201, r.text
    assert r.json()["op"]["event"]["author"] == name

    assert ticker("reporter", "revoke", name, env=env).returncode == 0
    r = httpx.post(url, headers=auth, json={"type": "comment", "text": "Igen"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    assert ADMIN_TOKEN not in r.text
