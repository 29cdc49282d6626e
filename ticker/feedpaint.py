"""The first paint of a match's feed, newest first, as HTML: the markup `renderEvent` in
web/static/render.js makes, so a page read without JavaScript (or before it runs) holds
the whole match. The script takes the list over from the snapshot on load.

Labels are web/static/i18n.js's; tests/test_browser_fan.py checks both paint the same.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

TYPES = {
    "da": {
        "kickoff": "Afspark",
        "goal": "Mål",
        "own_goal": "Selvmål",
        "miss": "Forbier",
        "save": "Redning",
        "offside": "Offside",
        "yellow_card": "Gult kort",
        "red_card": "Rødt kort",
        "substitution": "Udskiftning",
        "corner": "Hjørnespark",
        "foul": "Frispark",
        "var": "VAR",
        "injury": "Skade",
        "half_time": "Pause",
        "second_half": "Anden halvleg",
        "extra_time": "Forlænget spilletid",
        "penalty_shootout": "Straffesparkskonkurrence",
        "full_time": "Slut",
        "comment": "Kommentar",
        "kick.goal": "Straffe scoret",
        "kick.miss": "Straffe brændt",
        "kick.save": "Straffe reddet",
    },
    "en": {
        "kickoff": "Kick-off",
        "goal": "Goal",
        "own_goal": "Own goal",
        "miss": "Miss",
        "save": "Save",
        "offside": "Offside",
        "yellow_card": "Yellow card",
        "red_card": "Red card",
        "substitution": "Substitution",
        "corner": "Corner",
        "foul": "Foul",
        "var": "VAR",
        "injury": "Injury",
        "half_time": "Half-time",
        "second_half": "Second half",
        "extra_time": "Extra time",
        "penalty_shootout": "Penalty shoot-out",
        "full_time": "Full-time",
        "comment": "Comment",
        "kick.goal": "Penalty scored",
        "kick.miss": "Penalty missed",
        "kick.save": "Penalty saved",
    },
}
DETAILS = {
    "da": {
        "header": "hovedstød",
        "penalty": "straffespark",
        "own_goal": "selvmål",
        "free_kick": "frispark",
        "volley": "volley",
        "tap_in": "prikket ind",
        "disallowed": "annulleret",
        "second_yellow": "andet gule kort",
    },
    "en": {
        "header": "header",
        "penalty": "penalty",
        "own_goal": "own goal",
        "free_kick": "free kick",
        "volley": "volley",
        "tap_in": "tap-in",
        "disallowed": "disallowed",
        "second_yellow": "second yellow",
    },
}
UI = {
    "da": {"assist": "Oplæg", "in": "Ind", "out": "Ud", "corrected": "rettet"},
    "en": {"assist": "Assist", "in": "On", "out": "Off", "corrected": "corrected"},
}

# render.js ICONS, the same constant path data.
_ICONS = {
    "ball": '<circle cx="12" cy="12" r="9"/><path d="M12 7.5l3.6 2.6-1.4 4.2H9.8L8.4 10.1z" '
    'fill="currentColor"/><path d="M12 3v4.5M15.6 10.1l4.8-1.6M14.2 14.3l2.8 4M9.8 14.3L7 '
    '18.3M8.4 10.1L3.6 8.5"/>',
    "card": '<rect x="7" y="4" width="10" height="16" rx="1.5" fill="currentColor" stroke="none"/>',
    "glove": '<path d="M12 3l7 3v5c0 4.5-3 8-7 10-4-2-7-5.5-7-10V6z"/>',
    "miss": '<circle cx="12" cy="12" r="9"/><path d="M8 16l8-8M11 8h5v5"/>',
    "flag": '<path d="M6 21V3M6 4h11l-3 4 3 4H6"/>',
    "swap": '<path d="M7 20V5M3.5 8.5L7 5l3.5 3.5M17 4v15M13.5 15.5L17 19l3.5-3.5"/>',
    "whistle": '<circle cx="12" cy="13.5" r="7.5"/><path d="M12 13.5V9.5M9.5 2.5h5M12 2.5V6M18.5 '
    '6.5l1.5-1.5"/>',
    "screen": '<rect x="3" y="5" width="18" height="12" rx="2"/><path d="M8 21h8M12 17v4"/>',
    "cross": '<circle cx="12" cy="12" r="9"/><path d="M12 7.5v9M7.5 12h9"/>',
    "foul": '<path d="M12 3l9.5 17h-19z"/><path d="M12 10v4.5M12 17.5h.01"/>',
    "bubble": '<path d="M4 5h16v11H9l-5 4z"/>',
    "net": '<path d="M3 19V6h18v13M3 10h18M3 14h18M8 6v13M13 6v13M18 6v13"/>',
}
_ICON_OF = {
    "goal": "ball",
    "miss": "miss",
    "save": "glove",
    "offside": "flag",
    "yellow_card": "card",
    "red_card": "card",
    "substitution": "swap",
    "corner": "flag",
    "foul": "foul",
    "var": "screen",
    "injury": "cross",
    "kickoff": "whistle",
    "half_time": "whistle",
    "second_half": "whistle",
    "extra_time": "whistle",
    "full_time": "whistle",
    "penalty_shootout": "net",
    "comment": "bubble",
}


def minute_text(event: dict[str, Any]) -> str:
    minute, added = event.get("minute") or 0, event.get("added") or 0
    return f"{minute}+{added}'" if added > 0 else f"{minute}'"


def event_label(lang: str, event: dict[str, Any], kick: bool) -> str:
    kind = event["type"]
    if kick and kind in ("goal", "miss", "save"):
        return TYPES[lang][f"kick.{kind}"]
    if kind == "goal" and event.get("detail") == "own_goal":
        return TYPES[lang]["own_goal"]
    return TYPES[lang].get(kind, kind)


def element_id(event: dict[str, Any]) -> str:
    """The feed item's element id, the fragment that links to the event (render.js sets
    the same: `li.id = "e-" + event.id`)."""
    return f"e-{event['id']}"


def kick_ids(events: list[dict[str, Any]]) -> set[str]:
    """The ids of the events logged after the shoot-out began: its kicks."""
    kicks: set[str] = set()
    started = False
    for event in events:
        if started:
            kicks.add(event["id"])
        started = started or event["type"] == "penalty_shootout"
    return kicks


def event_html(
    lang: str, event: dict[str, Any], match: dict[str, Any], *, compact: bool, kick: bool
) -> str:
    kind = event["type"]
    classes = ["ev", f"ev--{kind}"]
    if kick:
        classes.append("ev--kick")
    if kind == "goal" and event.get("detail") == "own_goal":
        classes.append("ev--own-goal")
    team = event.get("team")
    if team in ("home", "away"):
        classes.append(f"ev--{team}")
    ui = UI[lang]
    icon = _ICONS[_ICON_OF.get(kind, "bubble")]
    head = f'<strong class="ev-label">{escape(event_label(lang, event, kick))}</strong>'
    team_name = (match.get(team) or {}).get("name") if team in ("home", "away") else ""
    if team_name:
        head += f'<span class="ev-team">{escape(team_name)}</span>'
    detail = event.get("detail")
    if detail and detail != "own_goal":
        shown = DETAILS[lang].get(detail, detail.replace("_", " "))
        head += f'<span class="ev-detail">{escape(shown)}</span>'
    body = f'<p class="ev-head">{head}</p>'
    if kind == "substitution" and (event.get("player_in") or event.get("player_out")):
        who = ""
        for key, cls, word in (("player_in", "ev-in", "in"), ("player_out", "ev-out", "out")):
            if event.get(key):
                who += (
                    f'<span class="{cls}"><span class="ev-key">{ui[word]}: </span>'
                    f"{escape(event[key])}</span>"
                )
        body += f'<p class="ev-who ev-sub">{who}</p>'
    elif event.get("player"):
        who = f'<span class="ev-player">{escape(event["player"])}</span>'
        if event.get("assist"):
            who += f'<span class="ev-assist">{ui["assist"]}: {escape(event["assist"])}</span>'
        body += f'<p class="ev-who">{who}</p>'
    if event.get("text"):
        cls = "ev-text ev-text--clamp" if compact else "ev-text"
        body += f'<p class="{cls}">{escape(event["text"])}</p>'
    if (event.get("rev") or 1) > 1:
        body += f'<span class="ev-rev">{ui["corrected"]}</span>'
    return (
        f'<li class="{" ".join(classes)}" id="{escape(element_id(event))}" '
        f'data-id="{escape(event["id"])}" data-type="{escape(kind)}" '
        f'data-rev="{int(event.get("rev") or 1)}"><span class="ev-min">{minute_text(event)}</span>'
        f'<span class="ev-icon"><svg viewBox="0 0 24 24" aria-hidden="true" focusable="false" '
        f'class="tk-icon">{icon}</svg></span>'
        f'<div class="ev-body">{body}</div></li>'
    )


def feed_html(
    lang: str,
    match: dict[str, Any],
    events: list[dict[str, Any]],
    *,
    compact: bool = False,
    limit: int = 0,
) -> str:
    """The live events newest first; past `limit` (when set) hidden, as the script does."""
    kicks = kick_ids(events)
    items = []
    for n, event in enumerate(reversed(events), 1):
        item = event_html(lang, event, match, compact=compact, kick=event["id"] in kicks)
        if limit and n > limit:
            item = item.replace("<li ", "<li hidden ", 1)
        items.append(item)
    return "".join(items)


PINNED = {"da": "Fastgjort", "en": "Pinned"}


def pinned_html(lang: str, match: dict[str, Any], events: list[dict[str, Any]]) -> str:
    """The pinned section above the feed (web/static/lineups.js renderPinned keeps it live):
    the pinned live events newest first, as copies (the feed keeps the items with their ids).
    """
    kicks: set[str] = set()
    started = False
    for event in events:
        if started:
            kicks.add(event["id"])
        started = started or event["type"] == "penalty_shootout"
    items = []
    for e in reversed(events):
        if e.get("pinned") is not True:
            continue
        item = event_html(lang, e, match, compact=False, kick=e["id"] in kicks)
        # The same markup as the script's copy: one more class, the id moved to the end.
        item = re.sub(r'class="([^"]*)"', r'class="\1 ev--pinned"', item, count=1)
        item = item.replace(f' data-id="{escape(e["id"])}"', "", 1)
        item = re.sub(r'(data-rev="\d+")', rf'\1 data-pinned-id="{escape(e["id"])}"', item, count=1)
        items.append(item)
    hidden = "" if items else " hidden"
    return (
        f'<section class="pinned" data-tk="pinned" aria-labelledby="pinned-heading"{hidden}>'
        f'<h2 id="pinned-heading" class="pinned-heading">{PINNED[lang]}</h2>'
        f'<ol class="feed pinned-list">{"".join(items)}</ol></section>'
    )
