"""How others find and reuse a match: the fan page's schema.org JSON-LD (a LiveBlogPosting)
and the oEmbed endpoint that turns a fan page's URL into an embeddable iframe.

Times: `datePublished` (and `coverageStartTime`) is the match's first op, when the page
came to be; `dateModified` is the last op's, so any correction moves it. Both come from the
seqs (milliseconds since the epoch); an event's own time is its `at`.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ticker import feedpaint, pages  # pages imports this module: use pages.X at run time
from ticker.api import JSONResponse
from ticker.errors import BadRequest, MatchNotFound, NotFound, TickerError
from ticker.log import MatchLog, iso_ms
from ticker.model import MATCH_ID_RE

# Newest live events in the JSON-LD; the page itself holds them all.
MAX_UPDATES = 50
# The embed's size when the consumer sets no bound (the partner page's iframe snippet's).
EMBED_WIDTH, EMBED_HEIGHT = 600, 640
OEMBED_CACHE_AGE = 300
_MATCH_PATH = re.compile(r"/matches/([^/]+)\Z")
_FRAME_TITLE = {"da": "Liveticker: {}", "en": "Live ticker: {}"}


class NotImplementedFormat(TickerError):
    status, code = 501, "not_implemented"


def match_url(origin: str, match_id: str, lang: str) -> str:
    """The fan page's absolute URL: its canonical form, `?lang=en` for the English one."""
    return f"{origin}/matches/{match_id}" + ("?lang=en" if lang == "en" else "")


def oembed_href(origin: str, page_url: str) -> str:
    return f"{origin}/oembed?url={quote(page_url, safe='')}&format=json"


def ld_json(data: Any) -> str:
    """JSON for a `<script type="application/ld+json">`: `<`, `>`, `&` and the JavaScript
    line separators escaped (they can only occur inside strings, so the JSON is the same)."""
    text = orjson.dumps(data).decode()
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _team_name(match: dict[str, Any], team: Any) -> str:
    return str((match.get(team) or {}).get("name") or "") if team in ("home", "away") else ""


def event_headline(lang: str, event: dict[str, Any], match: dict[str, Any], kick: bool) -> str:
    """The event in one line, in the page's language: "13' Mål: A. Scholz (FC Midtjylland)"."""
    line = f"{feedpaint.minute_text(event)} {feedpaint.event_label(lang, event, kick)}"
    if event["type"] == "substitution" and (event.get("player_in") or event.get("player_out")):
        ui = feedpaint.UI[lang]
        pairs = (("player_in", ui["in"]), ("player_out", ui["out"]))
        line += ": " + ", ".join(f"{word}: {event[key]}" for key, word in pairs if event.get(key))
    elif event.get("player"):
        line += f": {event['player']}"
    team = _team_name(match, event.get("team"))
    return f"{line} ({team})" if team else line


def live_blog(
    log: MatchLog, lang: str, page_url: str, headline: str, publisher: dict[str, Any] | None
) -> dict[str, Any]:
    """The page's schema.org LiveBlogPosting."""
    match = log.match or {}
    events = list(log.events.values())
    home, away = _team_name(match, "home"), _team_name(match, "away")
    published = iso_ms(log.ops[0].key[0] / 1000) if log.ops else None
    about: dict[str, Any] = {
        "@type": "SportsEvent",
        "name": f"{home} – {away}",
        "homeTeam": {"@type": "SportsTeam", "name": home},
        "awayTeam": {"@type": "SportsTeam", "name": away},
    }
    kickoff = match.get("kickoff") or next(
        (e["at"] for e in events if e["type"] == "kickoff"), None
    )
    if kickoff:
        about["startDate"] = kickoff
    if match.get("venue"):
        about["location"] = {"@type": "Place", "name": match["venue"]}
    blog: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "headline": headline,
        "url": page_url,
        "datePublished": published,
        "dateModified": iso_ms(log.ops[-1].key[0] / 1000) if log.ops else None,
        "coverageStartTime": published,
        "about": about,
    }
    if log.state["phase"] == "full_time":
        end = next((e for e in reversed(events) if e["type"] == "full_time"), None)
        if end is not None:
            blog["coverageEndTime"] = end["at"]
    if publisher is not None:
        blog["publisher"] = publisher
    kicks = feedpaint.kick_ids(events)
    updates = []
    for event in reversed(events[-MAX_UPDATES:]):
        line = event_headline(lang, event, match, event["id"] in kicks)
        updates.append(
            {
                "@type": "BlogPosting",
                "headline": line,
                "datePublished": event["at"],
                "articleBody": event.get("text") or line,
                "url": f"{page_url}#{feedpaint.element_id(event)}",
            }
        )
    if updates:
        blog["liveBlogUpdate"] = updates
    return {k: v for k, v in blog.items() if v is not None}


def publisher(settings: Any) -> dict[str, Any] | None:
    """The operator's Organization (TICKER_PUBLISHER_NAME, _LOGO), or None when unset."""
    if not settings.publisher_name:
        return None
    org: dict[str, Any] = {"@type": "Organization", "name": settings.publisher_name}
    if settings.publisher_logo:
        org["logo"] = {"@type": "ImageObject", "url": settings.publisher_logo}
    return org


def _bound(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= 100_000:
        raise BadRequest(f"{name} must be a whole number of pixels, at least 1", name)
    return int(raw)


async def oembed(request: Request) -> Response:
    """oEmbed 1.0 for a fan page's URL on our public origin: a `rich` iframe of its embed."""
    params = request.query_params
    url = params.get("url")
    if not url:
        raise BadRequest("url is required: the fan page's address", "url")
    fmt = params.get("format", "json")
    if fmt != "json":
        raise NotImplementedFormat(f"format {fmt[:20]!r} is not offered; use json", "format")
    max_width, max_height = _bound(request, "maxwidth"), _bound(request, "maxheight")
    origin = pages.public_origin(request)
    try:
        parts = urlsplit(url.strip())
        found = _MATCH_PATH.match(parts.path)
        ours = f"{parts.scheme}://{parts.netloc}".lower() == origin.lower()
    except ValueError:
        found, ours = None, False
    if not ours or found is None or not MATCH_ID_RE.match(found.group(1)):
        raise NotFound("url is not a match page of this ticker", "url")
    match_id = found.group(1)
    try:
        log = await request.app.state.engine.log(match_id)
    except MatchNotFound:
        log = None
    if log is None or not log.match:
        raise MatchNotFound(f"no match {match_id!r}", "url")
    lang = "en" if parse_qs(parts.query).get("lang") == ["en"] else "da"
    match = log.match
    title = f"{_team_name(match, 'home')} – {_team_name(match, 'away')}"
    width = min(EMBED_WIDTH, max_width or EMBED_WIDTH)
    height = min(EMBED_HEIGHT, max_height or EMBED_HEIGHT)
    src = f"{origin}/embed/{match_id}" + ("?lang=en" if lang == "en" else "")
    frame = (
        f'<iframe src="{escape(src)}" width="{width}" height="{height}" '
        f'title="{escape(_FRAME_TITLE[lang].format(title))}" loading="lazy" '
        f'style="border:0"></iframe>'
    )
    body = {
        "version": "1.0",
        "type": "rich",
        "title": title,
        "html": frame,
        "width": width,
        "height": height,
        "provider_name": request.app.state.settings.publisher_name or "Ticker",
        "provider_url": origin + "/",
        "cache_age": OEMBED_CACHE_AGE,
    }
    return JSONResponse(body, headers={"Cache-Control": f"public, max-age={OEMBED_CACHE_AGE}"})


routes: list[BaseRoute] = [Route("/oembed", oembed, methods=["GET"])]
