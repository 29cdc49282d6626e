"""The HTML pages (fan page, match list, console, embed, partners) and the static files.

Pages are plain files in `web/` with `{{name}}` slots. The match and embed pages are
rendered with the match's snapshot inside them, so score and feed show before any socket
opens; the browser then resumes from that snapshot's seq. Everything put into HTML here
is escaped; the snapshot JSON goes into a JSON script block with `<` escaped.
"""

from __future__ import annotations

import html
import importlib.metadata
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from ticker import discovery, facts, feedpaint
from ticker.errors import EngineUnavailable, MatchNotFound
from ticker.model import MATCH_ID_RE


def _web_dir() -> Path:
    source = Path(__file__).resolve().parent.parent / "web"
    return source if source.is_dir() else Path(__file__).resolve().parent / "_web"


WEB = _web_dir()

# The few words the server itself writes into a page, so the first paint is already in the
# reader's language (web/static/i18n.js has the rest).
TEXT = {
    "da": {
        "skip": "Spring til hændelser",
        "all_matches": "Alle kampe",
        "connecting": "Forbinder…",
        "events": "Hændelser",
        "no_events": "Ingen hændelser endnu.",
        "score": "Stilling",
        "other_lang_label": "English",
        "not_found": "Kampen findes ikke",
        "not_found_text": "Vi kan ikke finde en kamp med det id. Den kan være slettet, "
        "eller adressen er skrevet forkert.",
        "unavailable": "Tickeren er midlertidigt utilgængelig",
        "unavailable_text": "Prøv igen om lidt.",
        "matches": "Kampe",
        "console": "Reporterkonsol",
        "partners": "Til partnere",
        "open_full": "Åbn hele tickeren",
    },
    "en": {
        "skip": "Skip to events",
        "all_matches": "All matches",
        "connecting": "Connecting…",
        "events": "Events",
        "no_events": "No events yet.",
        "score": "Score",
        "other_lang_label": "Dansk",
        "not_found": "Match not found",
        "not_found_text": "There is no match with that id. It may have been removed, or the "
        "address is mistyped.",
        "unavailable": "The ticker is unavailable right now",
        "unavailable_text": "Please try again shortly.",
        "matches": "Matches",
        "console": "Reporter console",
        "partners": "For partners",
        "open_full": "Open the full ticker",
    },
}
PHASES = {
    "da": {
        "pre_match": "Før kampen",
        "first_half": "1. halvleg",
        "half_time": "Pause",
        "second_half": "2. halvleg",
        "extra_time": "Forlænget spilletid",
        "penalties": "Straffespark",
        "full_time": "Slut",
    },
    "en": {
        "pre_match": "Pre-match",
        "first_half": "First half",
        "half_time": "Half-time",
        "second_half": "Second half",
        "extra_time": "Extra time",
        "penalties": "Penalties",
        "full_time": "Full-time",
    },
}

# Pages of our own: no framing, scripts and styles only from here.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# A finished match's page changes only with a correction: shared caches may keep it a
# minute and serve it stale for ten more while they revalidate (ETag: head seq). A live page
# is revalidated every time and has no ETag: a 304 would keep an old data-server-time,
# which the match clock is set by.
FINISHED_CACHE = "public, max-age=60, stale-while-revalidate=600"
try:  # in the ETag, so a new release's markup is not answered with 304
    _RELEASE = importlib.metadata.version("ticker")
except importlib.metadata.PackageNotFoundError:
    _RELEASE = "dev"
_SLOT = re.compile(r"\{\{(\w+)\}\}")
_templates: dict[str, tuple[float, str]] = {}


def _template(name: str) -> str:
    path = WEB / name
    mtime = path.stat().st_mtime
    cached = _templates.get(name)
    if cached is None or cached[0] != mtime:
        cached = (mtime, path.read_text(encoding="utf-8"))
        _templates[name] = cached
    return cached[1]


def render(name: str, raw: Mapping[str, str] | None = None, /, **text: Any) -> str:
    """Fill a page's slots: `text` values are HTML-escaped, `raw` ones go in as they are."""
    values = {k: html.escape(str(v), quote=True) for k, v in text.items()}
    values.update(raw or {})
    return _SLOT.sub(lambda m: values[m.group(1)], _template(name))


def script_json(data: bytes) -> str:
    """JSON for a `<script type="application/json">` block: no `</script>`, no `<!--`."""
    return data.decode().replace("<", "\\u003c")


def public_origin(request: Request) -> str:
    """The origin of absolute URLs: TICKER_PUBLIC_URL, else this server's own address.

    The Host header is a client's say: it is used only when it names this server
    (TICKER_HOST or loopback, on TICKER_PORT), so no page or link can be pointed elsewhere.
    """
    settings = request.app.state.settings
    if settings.public_url:
        return str(settings.public_url)
    port = settings.port
    own = {f"{host}:{port}" for host in (settings.host, "localhost", "127.0.0.1", "[::1]")}
    host = request.headers.get("host", "").lower()
    if host in own:
        return f"http://{host}"
    bound = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{'[' + bound + ']' if ':' in bound else bound}:{port}"


class SlashRedirect:
    """The router's answer for a path it does not know: a redirect to the same path with
    (or without) its trailing slash when that one is known, else the 404.

    Starlette's own redirect is built from the Host header; this one is relative, or on
    TICKER_PUBLIC_URL when set.
    """

    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["type"] == "http" and path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            probe = {**scope, "path": other}
            if any(route.matches(probe)[0] is not Match.NONE for route in self.router.routes):
                # One leading slash: "//host/…" would be another site.
                url = scope["app"].state.settings.public_url + "/" + other.lstrip("/")
                query = scope.get("query_string", b"").decode("latin-1")
                response = RedirectResponse(url + ("?" + query if query else ""))
                await response(scope, receive, send)
                return
        await self.router.not_found(scope, receive, send)


def _lang(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "da"


def _theme(request: Request) -> str:
    theme = request.query_params.get("theme")
    return theme if theme in ("light", "dark") else "auto"


def _common(request: Request, lang: str) -> dict[str, str]:
    other = "da" if lang == "en" else "en"
    return {
        "lang": lang,
        "theme": _theme(request),
        "lang_query": "?lang=en" if lang == "en" else "",
        "other_lang": other,
        "other_lang_href": f"{request.url.path}?lang={other}",
        **TEXT[lang],
    }


def _page(body: str, status: int = 200, *, frame_ancestors: str = "'none'") -> HTMLResponse:
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": f"{CSP}; frame-ancestors {frame_ancestors}",
        "Cache-Control": "no-cache",
    }
    if frame_ancestors == "'none'":
        headers["X-Frame-Options"] = "DENY"
    return HTMLResponse(body, status_code=status, headers=headers)


def _problem(request: Request, status: int, title_key: str, text_key: str) -> HTMLResponse:
    lang = _lang(request)
    words = TEXT[lang]
    page = render(
        "notfound.html", **_common(request, lang), title=words[title_key], message=words[text_key]
    )
    return _page(page, status)


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match's weak comparison: `*`, or any listed tag equal but for `W/`."""
    if not header:
        return False
    ours = etag.removeprefix("W/")
    return any(t.strip() == "*" or t.strip().removeprefix("W/") == ours for t in header.split(","))


async def _match_page(
    request: Request,
    template: str,
    frame_ancestors: str = "'none'",
    *,
    compact: bool = False,
    limit: int = 0,
    discover: bool = False,
    **extra: str,
) -> Response:
    """A page of the match in the path, first painted from its snapshot; else a status page."""
    match_id = request.path_params["match_id"]
    lang = _lang(request)
    try:
        if not MATCH_ID_RE.match(match_id):
            raise MatchNotFound(f"no match {match_id[:64]!r}", "match_id")
        log = await request.app.state.engine.log(match_id)
    except MatchNotFound:
        return _problem(request, 404, "not_found", "not_found_text")
    except EngineUnavailable:
        return _problem(request, 503, "unavailable", "unavailable_text")
    match = log.match or {}
    state = log.state
    etag = ""
    if discover and state["phase"] == "full_time":
        # Weak: the page also carries the time it was made (data-server-time).
        etag = f'W/"{log.head}.{lang}.{_theme(request)}.{_RELEASE}"'
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(
                status_code=304, headers={"ETag": etag, "Cache-Control": FINISHED_CACHE}
            )
    home = match.get("home", {}).get("name", "")
    away = match.get("away", {}).get("name", "")
    score = state["score"]
    heading = f"LIVE: {home} – {away}"
    values: dict[str, Any] = {
        **_common(request, lang),
        **extra,
        "title": heading,
        "heading": heading,
        "match_id": match_id,
        "server_time": str(int(time.time() * 1000)),
        "competition": match.get("competition") or "",
        "venue": match.get("venue") or "",
        "home_name": home,
        "away_name": away,
        "home_short": match.get("home", {}).get("short", home[:3].upper()),
        "away_short": match.get("away", {}).get("short", away[:3].upper()),
        "home_goals": score["home"],
        "away_goals": score["away"],
        "score_text": f"{TEXT[lang]['score']}: {home} {score['home']}, {away} {score['away']}",
        "phase": state["phase"],
        "phase_label": PHASES[lang].get(state["phase"], state["phase"]),
    }
    # The scoreboard markup is shared by the fan page and the embed; scorers, cards, stats
    # and the full-time summary are in it before any script runs (web/static/facts.js
    # keeps them live).
    events = list(log.events.values())
    board = facts.board_slots(lang, match, state, events)
    raw = {
        "snapshot": script_json(log.snapshot().json),
        "scoreboard": render("scoreboard.html", board, **values),
        "stats": "" if compact else facts.stats_html(lang, match, state),
        "lineups": facts.lineups_html(lang, match, log.lineups, events),
        "summary": facts.summary_html(lang, match, state, events),
        "feed": feedpaint.feed_html(lang, match, events, compact=compact, limit=limit),
        "empty_hidden": " hidden" if events else "",
    }
    if discover:
        # Absolute URLs on the public origin; the JSON-LD before any script, in the head.
        origin = public_origin(request)
        page_url = discovery.match_url(origin, match_id, lang)
        org = discovery.publisher(request.app.state.settings)
        blog = discovery.live_blog(log, lang, page_url, heading, org)
        raw["jsonld"] = discovery.ld_json(blog)
        values["canonical_url"] = page_url
        values["oembed_url"] = discovery.oembed_href(origin, page_url)
    response = _page(render(template, raw, **values), frame_ancestors=frame_ancestors)
    if etag:
        response.headers["Cache-Control"] = FINISHED_CACHE
        response.headers["ETag"] = etag
    return response


async def match_page(request: Request) -> Response:
    return await _match_page(request, "match.html", discover=True)


async def embed_page(request: Request) -> Response:
    params = request.query_params
    compact = params.get("compact", "0") not in ("0", "false", "no")
    try:
        limit = max(0, min(200, int(params.get("limit", "0"))))
    except ValueError:
        limit = 0
    ancestors = request.app.state.settings.frame_ancestors.strip() or "'none'"
    return await _match_page(
        request,
        "embed.html",
        ancestors,
        compact=compact,
        limit=limit,
        compact_class=" tk--compact" if compact else "",
        limit_attr=str(limit),
    )


async def index_page(request: Request) -> Response:
    lang = _lang(request)
    try:
        logs = await request.app.state.engine.logs()
    except EngineUnavailable:
        return _problem(request, 503, "unavailable", "unavailable_text")
    summaries = [log.summary() for log in logs if log.match]
    data = orjson.dumps({"matches": summaries})
    page = render("index.html", {"matches_json": script_json(data)}, **_common(request, lang))
    return _page(page)


async def console_page(request: Request) -> Response:
    lang = _lang(request)
    response = _page(render("console.html", **_common(request, lang)))
    response.headers["Cache-Control"] = "no-store"
    return response


async def partners_page(request: Request) -> Response:
    lang = _lang(request)
    example = "fck-ssc-2026-11-25"
    try:
        logs = await request.app.state.engine.logs()
        ids = [log.id for log in logs if log.match]
        example = ids[0] if ids else example
    except EngineUnavailable:
        pass
    origin = public_origin(request)
    page = render("partners.html", **_common(request, lang), origin=origin, example_id=example)
    return _page(page)


async def embed_js(request: Request) -> Response:
    # Access-Control-Allow-Origin comes from the app's read-only CORS middleware, which
    # covers /embed.js; adding it here too would send two headers, which browsers reject.
    return FileResponse(
        WEB / "embed.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


class PublicStatic:
    """StaticFiles for `<ticker-feed>`'s modules: always revalidated, never sniffed.

    Any-origin reads (CORS) come from the app's read-only CORS middleware, as for
    /embed.js: one place decides which origins may read.
    """

    def __init__(self, app: StaticFiles) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {b"cache-control", b"x-content-type-options"}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                headers += [
                    (b"cache-control", b"no-cache"),
                    (b"x-content-type-options", b"nosniff"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


routes: list[BaseRoute] = [
    Route("/", index_page, methods=["GET"]),
    Route("/matches/{match_id}", match_page, methods=["GET"]),
    Route("/embed/{match_id}", embed_page, methods=["GET"]),
    Route("/console", console_page, methods=["GET"]),
    Route("/partners", partners_page, methods=["GET"]),
    Route("/embed.js", embed_js, methods=["GET"]),
    Mount(
        "/static",
        app=PublicStatic(StaticFiles(directory=WEB / "static", check_dir=False)),
        name="static",
    ),
]
