"""docker-compose.yml, Dockerfile and deploy/nginx.conf.

Docker is not available here, so the compose file is parsed and checked against what the
code expects (ports, settings, health endpoint), and the nginx config is parsed and, when
an `nginx` binary is installed, run for real in front of two ticker servers on one Redis:
WebSocket upgrades, unbuffered SSE, fail-over and nginx's own errors, through the proxy.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from websockets.sync.client import connect

from tests.conftest import ADMIN_TOKEN, TickerServer, free_port, new_match, wait_port
from ticker import settings as settings_mod
from ticker.streams import SSE_HEARTBEAT

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
DOCKERFILE = (ROOT / "Dockerfile").read_text()
REPLICAS = ["ticker-1", "ticker-2"]
SERVE = ["ticker", "serve", "--host", "0.0.0.0", "--port", "8000"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`, enough for this file."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", sub, value)


def container_port(service: dict[str, Any]) -> int:
    command = service["command"]
    return int(command[command.index("--port") + 1])


# The compose file


def test_services() -> None:
    assert set(SERVICES) == {"redis", *REPLICAS, "proxy"}


def test_redis_is_durable_and_health_checked() -> None:
    redis = SERVICES["redis"]
    assert redis["image"].startswith("redis:")
    command = redis["command"]
    assert command[0] == "redis-server"
    pairs = dict(zip(command[1::2], command[2::2], strict=True))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "always"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    volume, target = redis["volumes"][0].split(":")[:2]
    assert target == "/data" and volume in COMPOSE["volumes"]
    assert "ports" not in redis  # only the proxy is public


@pytest.mark.parametrize("name", REPLICAS)
def test_replica(name: str) -> None:
    replica = SERVICES[name]
    assert replica["build"] == "." and (ROOT / "Dockerfile").is_file()
    assert replica["command"] == SERVE
    assert replica["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert "ports" not in replica
    env = replica["environment"]
    assert env["TICKER_REDIS_URL"] == "redis://redis:6379/0"
    assert env["TICKER_ADMIN_TOKEN"] == "${TICKER_ADMIN_TOKEN:?set it}"
    check = replica["healthcheck"]["test"]
    assert check[0] == "CMD" and "/healthz" in " ".join(check)
    assert f":{container_port(replica)}/healthz" in " ".join(check)


def test_replicas_are_the_same() -> None:
    assert SERVICES["ticker-1"] == SERVICES["ticker-2"]


def test_replica_environment_is_valid_for_the_server() -> None:
    env = SERVICES["ticker-1"]["environment"]
    with pytest.raises(KeyError, match="TICKER_ADMIN_TOKEN"):
        {k: interpolate(str(v), {}) for k, v in env.items()}
    given = {"TICKER_ADMIN_TOKEN": "x" * 32}
    resolved = {k: interpolate(str(v), given) for k, v in env.items()}
    settings = settings_mod.load({k: v for k, v in resolved.items() if k.startswith("TICKER_")})
    assert settings.engine_name == "redis" and settings.admin_token == "x" * 32
    host = re.match(r"redis://([^:/]+)", settings.redis_url)
    assert host is not None and host.group(1) in SERVICES


def test_proxy() -> None:
    proxy = SERVICES["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert proxy["ports"] == ["8080:80"]
    mounts = [v.split(":") for v in proxy["volumes"]]
    assert ["./deploy/nginx.conf", "/etc/nginx/nginx.conf", "ro"] in mounts
    assert proxy["depends_on"] == {name: {"condition": "service_healthy"} for name in REPLICAS}


def test_only_the_proxy_publishes_a_port() -> None:
    assert [name for name, s in SERVICES.items() if "ports" in s] == ["proxy"]


def test_replica_health_check_runs(make_server: Any) -> None:
    """The health check's command, pointed at a real server, passes; with none, fails."""
    check = SERVICES["ticker-1"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    server: TickerServer = make_server()
    up = check[3].replace(":8000/", f":{server.port}/")
    down = check[3].replace(":8000/", f":{free_port()}/")
    assert subprocess.run([sys.executable, "-c", up], timeout=20).returncode == 0
    failed = subprocess.run([sys.executable, "-c", down], capture_output=True, timeout=20)
    assert failed.returncode != 0


# docker-compose.sentinel.yml, deploy/redis.conf and deploy/sentinel.conf

SENTINEL_COMPOSE = yaml.safe_load((ROOT / "docker-compose.sentinel.yml").read_text())
HA: dict[str, dict[str, Any]] = SENTINEL_COMPOSE["services"]
NODES = ["redis-1", "redis-2"]
SENTINELS = ["sentinel-1", "sentinel-2", "sentinel-3"]
REDIS_CONF = ROOT / "deploy" / "redis.conf"
SENTINEL_CONF = ROOT / "deploy" / "sentinel.conf"


def conf_lines(path: Path) -> list[list[str]]:
    lines = [line.split() for line in path.read_text().splitlines()]
    return [words for words in lines if words and not words[0].startswith("#")]


def monitor() -> list[str]:
    (found,) = [w[2:] for w in conf_lines(SENTINEL_CONF) if w[:2] == ["sentinel", "monitor"]]
    return found  # name, host, port, quorum


def test_sentinel_services() -> None:
    assert set(HA) == {*NODES, *SENTINELS, *REPLICAS, "proxy"}
    assert [name for name, s in HA.items() if "ports" in s] == ["proxy"]
    assert HA["proxy"] == SERVICES["proxy"]
    assert SENTINEL_COMPOSE["networks"] == COMPOSE["networks"]


@pytest.mark.parametrize("name", REPLICAS)
def test_sentinel_ticker_replicas_are_those_of_the_base_file_on_sentinel(name: str) -> None:
    ticker, base = dict(HA[name]), dict(SERVICES[name])
    env, base_env = ticker.pop("environment"), base.pop("environment")
    assert ticker.pop("depends_on") == {s: {"condition": "service_healthy"} for s in SENTINELS}
    base.pop("depends_on")
    assert ticker == base
    assert {k: v for k, v in env.items() if "REDIS" not in k} == {
        k: v for k, v in base_env.items() if "REDIS" not in k
    }
    resolved = {k: interpolate(str(v), {"TICKER_ADMIN_TOKEN": "x" * 32}) for k, v in env.items()}
    settings = settings_mod.load(resolved)
    assert settings.engine_name == "redis" and settings.redis_url == ""
    assert settings.sentinel_addresses == [(s, 26379) for s in SENTINELS]
    assert settings.redis_master == monitor()[0]
    assert settings.redis_min_replicas == 1  # a 2xx means the replica has it


def test_redis_nodes_and_sentinels() -> None:
    name, host, port, quorum = monitor()
    assert (host, port, quorum) == ("redis-1", "6379", "2")  # two of three sentinels agree
    assert "REPLICA_OF" not in HA["redis-1"]["environment"]
    assert HA["redis-2"]["environment"]["REPLICA_OF"] == "redis-1"
    for node in NODES:
        service = HA[node]
        assert service["environment"]["NODE_NAME"] == node
        assert service["volumes"] == [
            f"{node}-data:/data",
            "./deploy/redis.conf:/etc/ticker/redis.conf:ro",
        ]
        assert service["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for sentinel in SENTINELS:
        service = HA[sentinel]
        assert service["environment"]["SENTINEL_NAME"] == sentinel
        assert f"{sentinel}-data:/data" in service["volumes"]
        assert service["healthcheck"]["test"][-2:] == ["get-master-addr-by-name", name]
    assert set(SENTINEL_COMPOSE["volumes"]) == {f"{n}-data" for n in NODES + SENTINELS}
    words = {w[0]: w[1:] for w in conf_lines(REDIS_CONF)}
    assert words["appendonly"] == ["yes"] and words["appendfsync"] == ["always"]


def run_setup(service: dict[str, Any], tmp: Path) -> None:
    """The service's start-up shell, with /data and /etc/ticker in tmp and no exec."""
    script = service["command"][2].replace("$$", "$")  # compose's escape for a literal $
    script = script.replace("/data/", f"{tmp}/data/").replace("/etc/ticker/", f"{ROOT}/deploy/")
    script = script.split("; exec ")[0]
    (tmp / "data").mkdir(exist_ok=True)
    subprocess.run(["sh", "-c", script], env=service["environment"], check=True, timeout=10)


@pytest.mark.parametrize("name", NODES + SENTINELS)
def test_startup_makes_the_config_once(name: str, tmp_path: Path) -> None:
    run_setup(HA[name], tmp_path)
    (made,) = (tmp_path / "data").iterdir()
    lines = conf_lines(made)
    announce = ["replica-announce-ip", name] if name in NODES else ["sentinel", "announce-ip", name]
    assert announce in lines
    assert (["replicaof", "redis-1", "6379"] in lines) == (name == "redis-2")
    made.write_text("# rewritten by a sentinel\n")
    run_setup(HA[name], tmp_path)  # a restart keeps what the sentinels wrote
    assert made.read_text() == "# rewritten by a sentinel\n"


def test_the_deploy_configs_run(tmp_path: Path) -> None:
    """deploy/redis.conf and deploy/sentinel.conf, host names and ports made local, run:
    the sentinels find the master, its replica and each other."""
    from tests.test_sentinel import RedisProc, wait_until

    nodes = {n: RedisProc(tmp_path / n, []) for n in NODES}
    sentinels = [RedisProc(tmp_path / s, []) for s in SENTINELS]
    master = f"127.0.0.1 {nodes['redis-1'].port}"
    # Compose host names and paths made local (RedisProc gives each its own port).
    local = {"NODE_NAME": "127.0.0.1", "SENTINEL_NAME": "127.0.0.1", "redis-1 6379": master,
             "bind * -::*": "bind 127.0.0.1"}  # fmt: skip

    def render(path: Path, proc: RedisProc, extra: str = "") -> list[str]:
        text = path.read_text()
        for old, new in {**local, "dir /data": f"dir {proc.dir}"}.items():
            text = text.replace(old, new)
        proc.dir.mkdir(parents=True, exist_ok=True)
        (proc.dir / "conf").write_text(text + extra)
        return [str(proc.dir / "conf")]

    try:
        for name, node in nodes.items():
            node.args = render(
                REDIS_CONF, node, f"\nreplicaof {master}\n" if name == "redis-2" else ""
            )
            node.start()
        for sentinel in sentinels:
            sentinel.args = [*render(SENTINEL_CONF, sentinel), "--sentinel"]
            sentinel.start()

        def ready() -> bool:
            try:
                states = [s.client().sentinel_master(monitor()[0]) for s in sentinels]
            except Exception:
                return False
            return all(st["num-other-sentinels"] == 2 and st["num-slaves"] == 1 for st in states)

        wait_until("the sentinels see the replica and each other", ready, 20)
        addr = sentinels[0].client().sentinel_get_master_addr_by_name(monitor()[0])
        assert int(addr[1]) == nodes["redis-1"].port
    finally:
        for proc in [*sentinels, *nodes.values()]:
            proc.kill()


# The Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile() -> None:
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert any(k == "RUN" and re.search(r"\bpip install \.(\s|$)", v) for k, v in steps)
    cmd = [json.loads(v) for k, v in steps if k == "CMD"]
    assert cmd == [SERVE]


def test_dockerfile_copies_what_the_wheel_is_built_from() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {
        "pyproject.toml",
        project["project"]["readme"],
        *wheel["packages"],
        *wheel.get("force-include", {}),
    }
    copied = set()
    for kind, args in dockerfile_instructions():
        if kind == "COPY":
            copied.update(p.rstrip("/") for p in shlex.split(args)[:-1])
    assert needed <= copied


# deploy/nginx.conf


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def one(self, name: str) -> Directive:
        (found,) = self.all(name)
        return found

    def value(self, name: str) -> list[str]:
        return self.one(name).args

    def walk(self) -> Iterator[Directive]:
        for d in self.block or []:
            yield d
            yield from d.walk()


def parse_nginx(text: str) -> Directive:
    tokens = re.findall(r"#[^\n]*|'[^']*'|\"[^\"]*\"|[{};]|[^\s{};'\"]+", text)
    root = Directive("main", [], [])
    stack = [root]
    words: list[str] = []
    for token in tokens:
        if token.startswith("#"):
            continue
        if token in (";", "{"):
            d = Directive(words[0], words[1:], [] if token == "{" else None)
            assert stack[-1].block is not None
            stack[-1].block.append(d)
            if token == "{":
                stack.append(d)
            words = []
        elif token == "}":
            assert not words, f"missing ';' after {words}"
            stack.pop()
        else:
            words.append(token[1:-1] if token[0] in "'\"" else token)
    assert len(stack) == 1 and not words, "unbalanced braces in nginx.conf"
    return root


CONF = parse_nginx(NGINX_CONF.read_text())
HTTP = CONF.one("http")
SERVER = HTTP.one("server")


def location(path: str) -> Directive:
    (found,) = [d for d in SERVER.all("location") if d.args == [path]]
    return found


def seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value)
    assert m is not None, value
    return int(m.group(1)) * units[m.group(2) or "s"]


def test_upstream_has_both_replicas() -> None:
    (upstream,) = HTTP.all("upstream")
    servers = {d.args[0] for d in upstream.all("server")}
    assert servers == {f"{name}:{container_port(SERVICES[name])}" for name in REPLICAS}
    assert upstream.args == ["ticker"]


def test_listens_on_the_published_port() -> None:
    published = SERVICES["proxy"]["ports"][0].split(":")[-1]
    assert SERVER.value("listen") == [published]


def test_every_location_proxies_to_the_upstream() -> None:
    targets = {tuple(d.args) for d in SERVER.walk() if d.name == "proxy_pass"}
    assert targets == {("http://ticker",)}
    for path in ("/", "/ws/", "/sse/"):
        assert location(path).value("proxy_pass") == ["http://ticker"]


def test_websocket_upgrade_headers() -> None:
    (upgrade_map,) = HTTP.all("map")
    assert upgrade_map.args == ["$http_upgrade", "$connection_upgrade"]
    assert {tuple(d.args) for d in upgrade_map.all("default")} == {("upgrade",)}
    assert SERVER.value("proxy_http_version") == ["1.1"]
    headers = {d.args[0].lower(): d.args[1] for d in SERVER.all("proxy_set_header")}
    assert headers["upgrade"] == "$http_upgrade"
    assert headers["connection"] == "$connection_upgrade"
    assert headers["host"] == "$host"
    assert headers["x-forwarded-for"] == "$proxy_add_x_forwarded_for"


def test_no_location_drops_the_inherited_headers() -> None:
    # nginx inherits proxy_set_header only into blocks that set none of their own.
    for loc in SERVER.all("location"):
        assert not loc.all("proxy_set_header"), loc.args
        assert not loc.all("proxy_http_version"), loc.args


@pytest.mark.parametrize("path", ["/ws/", "/sse/"])
def test_long_lived_streams(path: str) -> None:
    loc = location(path)
    assert loc.value("proxy_buffering") == ["off"]
    read = seconds(loc.value("proxy_read_timeout")[0])
    # Idle fans must outlast quiet spells: at least the SSE heartbeat, and then some.
    assert read >= max(10 * SSE_HEARTBEAT, 600)


def test_nginx_errors_are_json() -> None:
    pages = {tuple(d.args) for d in SERVER.all("error_page")}
    assert ("413", "=", "@too_large") in pages
    assert ("502", "503", "504", "=", "@unavailable") in pages
    for name, status in (("@too_large", "413"), ("@unavailable", "503")):
        loc = location(name)
        assert loc.value("default_type") == ["application/json"]
        code, body = loc.value("return")
        assert code == status
        error = json.loads(body)["error"]
        assert set(error) == {"code", "message"}


# The proxy for real, when nginx is installed

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install nginx-light)"
)


def local_conf(tmp: Path, listen: int, upstreams: dict[str, int]) -> Path:
    """deploy/nginx.conf with the compose host names and ports swapped for local ones."""
    text = NGINX_CONF.read_text()
    swaps = {
        "listen 80;": f"listen 127.0.0.1:{listen};",
        "access_log /var/log/nginx/access.log;": (
            f"access_log {tmp}/access.log;\n"
            f"    client_body_temp_path {tmp}/body;\n"
            f"    proxy_temp_path {tmp}/proxy;"
        ),
        **{f"server {name}:8000 ": f"server 127.0.0.1:{port} " for name, port in upstreams.items()},
    }
    for old, new in swaps.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


def nginx_command(tmp: Path, conf: Path, *extra: str, daemon: bool = True) -> list[str]:
    assert NGINX is not None
    # Run as root, workers would switch to `nobody`, who cannot write request bodies
    # under tmp_path; the image's own user has its cache directory instead.
    user = "user root;" if os.geteuid() == 0 else ""
    return [NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log"),
            "-g", f"pid {tmp}/nginx.pid; {user} daemon {'on' if daemon else 'off'};",
            *extra]  # fmt: skip


@needs_nginx
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    conf = local_conf(tmp_path, free_port(), {"ticker-1": free_port(), "ticker-2": free_port()})
    result = subprocess.run(nginx_command(tmp_path, conf, "-t"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + (tmp_path / "error.log").read_text()


@dataclass
class Proxy:
    url: str
    replicas: list[TickerServer]
    log: Path
    admin: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.admin = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        )


@pytest.fixture
def proxy(make_server: Any, redis_url: str, tmp_path: Path) -> Iterator[Proxy]:
    replicas = [make_server(redis_url=redis_url) for _ in REPLICAS]
    port = free_port()
    conf = local_conf(tmp_path, port, {n: r.port for n, r in zip(REPLICAS, replicas, strict=True)})
    proc = subprocess.Popen(
        nginx_command(tmp_path, conf, daemon=False),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc=proc)
        p = Proxy(f"http://127.0.0.1:{port}", replicas, tmp_path / "error.log")
        with p.admin:
            yield p
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sse_messages(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


@needs_nginx
def test_websocket_and_sse_through_the_proxy(proxy: Proxy, match_id: str) -> None:
    new_match(proxy.admin, match_id)
    ws_url = proxy.url.replace("http://", "ws://") + f"/ws/matches/{match_id}"
    with (
        connect(ws_url, open_timeout=10) as ws,
        httpx.stream("GET", f"{proxy.url}/sse/matches/{match_id}", timeout=10) as sse,
    ):
        assert sse.status_code == 200
        assert sse.headers["content-type"].startswith("text/event-stream")
        events = sse_messages(sse.iter_lines())
        assert json.loads(ws.recv(timeout=10))["op"] == "snapshot"
        assert next(events)["op"] == "snapshot"
        # least_conn put the two fans on different replicas.
        subscribers = [httpx.get(f"{r.url}/healthz").json()["subscribers"] for r in proxy.replicas]
        assert subscribers == [1, 1]
        r = proxy.admin.post(
            f"/api/matches/{match_id}/events", json={"type": "goal", "team": "away", "minute": 13}
        )
        assert r.status_code == 201, r.text
        op = r.json()["op"]
        # Posted through either replica, the op reaches both fans, unbuffered.
        assert json.loads(ws.recv(timeout=10)) == op
        assert next(events) == op


@needs_nginx
def test_proxy_fails_over_and_answers_json_when_all_are_down(proxy: Proxy, match_id: str) -> None:
    new_match(proxy.admin, match_id)
    proxy.replicas[0].stop()
    for _ in range(6):
        r = httpx.get(f"{proxy.url}/api/matches/{match_id}", timeout=10)
        assert r.status_code == 200 and r.json()["op"] == "snapshot"
    proxy.replicas[1].stop()
    deadline = time.monotonic() + 10
    while True:
        r = httpx.get(f"{proxy.url}/api/matches", timeout=10)
        if r.status_code != 200 or time.monotonic() > deadline:
            break
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "unavailable"
    assert r.headers["retry-after"] == "2"


@needs_nginx
def test_large_bodies_get_json_errors_through_the_proxy(proxy: Proxy, match_id: str) -> None:
    new_match(proxy.admin, match_id)
    url = f"/api/matches/{match_id}/events"
    text = "x" * (4 * 1024 * 1024)
    for body in (text[: 100 * 1024], text):  # refused by the app; by nginx
        r = proxy.admin.post(url, content=json.dumps({"type": "comment", "text": body}))
        assert r.status_code == 413, r.text[:200]
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"]["code"] == "too_large"
    assert proxy.admin.get(f"/api/matches/{match_id}/ops").json()["ops"][-1]["op"] == "match"
