"""Helpers for the browser tests: Debian's Chromium, posting events, screenshots, axe-core."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-artifacts" / "screenshots"
# From tests/package.json: `npm ci --prefix tests` (scripts/test runs it when missing).
AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def post_event(client: httpx.Client, match_id: str, **fields: Any) -> dict[str, Any]:
    """POST an event through the API; returns the op."""
    r = client.post(f"/api/matches/{match_id}/events", json=fields)
    assert r.status_code == 201, r.text
    return dict(r.json()["op"])


def live_events(client: httpx.Client, match_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/matches/{match_id}")
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


def shoot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot under test-artifacts/screenshots/ (gitignored)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core in the page and in each of its frames; its violations of `impacts`, one
    line per rule and element (open shadow roots included, as axe walks them itself).

    The script goes in through the DevTools protocol (`evaluate`), which a page's CSP does
    not govern, so pages are checked with the very headers they are served with.
    """
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run `npm ci --prefix tests`")
    source = AXE.read_text(encoding="utf-8")
    found: list[str] = []
    for frame in page.frames:
        if not frame.url.startswith("http"):
            continue
        # Colours are measured as painted: let finite animations (a new item fading in) end.
        frame.evaluate(
            """() => {
              const roots = [document, ...[...document.querySelectorAll('*')]
                .map((e) => e.shadowRoot).filter(Boolean)];
              return Promise.all(roots.flatMap((r) => r.getAnimations())
                .filter((a) => a.effect?.getComputedTiming().iterations !== Infinity)
                .map((a) => a.finished.catch(() => null)));
            }"""
        )
        frame.evaluate(f"{source}\n;undefined")
        result = frame.evaluate(
            """() => axe.run(document, {resultTypes: ['violations'], iframes: false})
                 .then((r) => r.violations.map((v) => ({id: v.id, impact: v.impact,
                   help: v.help, nodes: v.nodes.map((n) => [JSON.stringify(n.target),
                     n.failureSummary].join(': '))})))"""
        )
        for rule in result:
            if rule["impact"] in impacts:
                where = f"{frame.url} {rule['impact']} {rule['id']}: {rule['help']}"
                found += [f"{where}: {node}" for node in rule["nodes"]]
    return found


class _PartnerHandler(http.server.BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def partner_site(pages: dict[str, str]) -> Iterator[str]:
    """A plain web server on another origin (http://localhost:PORT) serving `pages` by path."""
    handler = type("Handler", (_PartnerHandler,), {"pages": pages})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
