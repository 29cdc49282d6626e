"""Operations faults over real sockets: slow request heads and bodies, logs, unknown settings."""

from __future__ import annotations

import json
import re
import selectors
import socket
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import ADMIN_TOKEN, RedisServer, TickerServer, free_port, new_match
from tests.test_settings import clean_env, ticker
from ticker.settings import Settings

INFO = ["--log-level", "info"]  # the suite's servers log at warning
TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
WS_HEAD = (
    b"GET /ws/matches/x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
)  # no Sec-WebSocket-Key yet, and no blank line: the head never ends


def read_until_closed(socks: list[socket.socket], deadline: float) -> dict[socket.socket, bytes]:
    """What each socket received before the server closed it; those still open are missing."""
    got: dict[socket.socket, bytes] = {}
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, bytearray())
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            s, buf = key.fileobj, key.data
            assert isinstance(s, socket.socket)
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                buf += chunk
            else:
                got[s] = bytes(buf)
                sel.unregister(s)
    sel.close()
    return got


def error_code(response: bytes) -> str:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), response
    assert b"content-type: application/json" in head.lower(), response
    return str(json.loads(body)["error"]["code"])


# Deadlines for request heads and bodies


def test_slowloris_sockets_are_closed_while_others_are_served(make_server, match_id: str) -> None:  # type: ignore[no-untyped-def]
    server = make_server(env={"TICKER_HEAD_TIMEOUT": "2"})
    with server.admin() as admin:
        new_match(admin, match_id)
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(400)]
    partial = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(400)]
    upgrades = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
    for s in partial:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    for s in upgrades:
        s.sendall(WS_HEAD)
    opened = time.monotonic()
    try:
        # Meanwhile a fan joins and a page loads as usual.
        with connect(f"{server.ws_url}/ws/matches/{match_id}", open_timeout=5) as ws:
            snap = json.loads(ws.recv(timeout=1))
            assert snap["op"] == "snapshot"
        assert httpx.get(f"{server.url}/api/matches/{match_id}", timeout=5).status_code == 200
        got = read_until_closed(idle + partial + upgrades, deadline=opened + 2 + 8)
        assert len(got) == 1000, f"{1000 - len(got)} slow sockets still open"
        assert all(got[s] == b"" for s in idle)
        assert {error_code(got[s]) for s in partial + upgrades} == {"timeout"}
    finally:
        for s in idle + partial + upgrades:
            s.close()


def test_a_partial_head_after_a_keep_alive_request_gets_408(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(env={"TICKER_HEAD_TIMEOUT": "1"})
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        while b"\r\n\r\n" not in first or not first.endswith(b"}"):  # the whole JSON reply
            first += s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 "), first
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        got = read_until_closed([s], deadline=time.monotonic() + 10)
        assert s in got, "a partial second head kept the connection open"
        assert error_code(got[s]) == "timeout"


def test_a_trickling_body_gets_408_and_nothing_is_appended(make_server, match_id: str) -> None:  # type: ignore[no-untyped-def]
    server = make_server(env={"TICKER_BODY_TIMEOUT": "1"})
    with server.admin() as admin:
        new_match(admin, match_id)
        before = admin.get(f"/api/matches/{match_id}/ops").json()["ops"]
    body = json.dumps({"type": "comment", "text": "x" * 60}).encode().ljust(100)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(
            f"POST /api/matches/{match_id}/events HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        got = read_until_closed([s], deadline=time.monotonic() + 10)
        assert s in got, "a trickling body kept the connection open"
        assert error_code(got[s]) == "timeout"
    with server.admin() as admin:
        assert admin.get(f"/api/matches/{match_id}/ops").json()["ops"] == before
    assert server.log_path is not None
    assert "Traceback" not in server.log_path.read_text()


def test_workers_close_slow_heads_too(make_server, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    server = make_server(
        redis_url=redis_url, args=["--workers", "2"], env={"TICKER_HEAD_TIMEOUT": "1"}
    )
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    for s in socks:
        s.sendall(b"GET / HTTP/1.1\r\n")
    try:
        got = read_until_closed(socks, deadline=time.monotonic() + 10)
        assert len(got) == 20
        assert {error_code(b) for b in got.values()} == {"timeout"}
    finally:
        for s in socks:
            s.close()


# Logs


def log_text(server: TickerServer, pattern: str, timeout: float = 10) -> str:
    """The server's log once `pattern` is in it (a log line may lag the request it follows)."""
    assert server.log_path is not None
    deadline = time.monotonic() + timeout
    while True:
        text = server.log_path.read_text()
        if re.search(pattern, text, re.M) or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def test_startup_line_names_the_embedded_engine_and_its_data(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server(args=INFO)
    data = re.escape(str((tmp_path / "data").resolve()))
    line = rf"^{TIMESTAMP}\S* INFO ticker: engine=embedded data={data} ws=fast version=\S+$"
    text = log_text(server, line)
    assert re.search(line, text, re.M), text


def test_startup_line_names_the_redis_engine(make_server, redis_server: RedisServer) -> None:  # type: ignore[no-untyped-def]
    if redis_server.proc is None:
        redis_server.start()
    server = make_server(redis_url=redis_server.url, args=INFO, env={"TICKER_WS": "plain"})
    url = re.escape(redis_server.url)
    line = (
        rf"^{TIMESTAMP}\S* INFO ticker: engine=redis url={url} prefix=ticker ws=plain version=\S+$"
    )
    text = log_text(server, line)
    assert re.search(line, text, re.M), text


def test_each_worker_logs_its_startup_line(make_server, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    server = make_server(redis_url=redis_url, args=["--workers", "2", *INFO])
    line = rf"^{TIMESTAMP}\S* INFO ticker: engine=redis url="
    deadline = time.monotonic() + 10
    while len(re.findall(line, log_text(server, line), re.M)) < 2:
        assert time.monotonic() < deadline, log_text(server, line)
        time.sleep(0.1)


def test_a_ticker_warning_has_a_timestamp(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    (data / "matches").mkdir(parents=True)
    (data / "matches" / "torn-1.log").write_bytes(b'{"o":{"seq":')  # a crash mid-write
    server = make_server(data_dir=data)  # at the suite's level, warning
    line = rf"^{TIMESTAMP}\S* WARNING ticker\.engine: .*torn-1\.log: cutting off 12 bytes"
    text = log_text(server, line)
    assert re.search(line, text, re.M), text
    assert "INFO" not in text  # the level holds


def test_the_log_never_shows_a_redis_password() -> None:
    from ticker import logs

    s = Settings(redis_url="redis://user:s3cret@redis:6380/2", ws="fast")
    line = logs.describe(s)
    assert "s3cret" not in line
    assert line.startswith("engine=redis url=redis://user:***@redis:6380/2 prefix=ticker ws=fast")
    s = Settings(redis_url="unix:///run/redis.sock?db=1&password=s3cret")
    assert "s3cret" not in logs.describe(s)


# Unknown settings


@pytest.mark.parametrize("args", [("serve", "--port", str(free_port())), ("reporter", "list")])
def test_an_unknown_setting_stops_the_command(args: tuple[str, ...], tmp_path: Path) -> None:
    env = clean_env(TICKER_REDIS_ULR="redis://127.0.0.1:1/0", TICKER_DATA_DIR=str(tmp_path / "d"))
    result = ticker(*args, env=env, timeout=15)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr == (
        "ticker: unknown setting TICKER_REDIS_ULR; did you mean TICKER_REDIS_URL?\n"
    )
    assert not (tmp_path / "d").exists()  # refused before anything started
