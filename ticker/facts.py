"""The first paint of what a sports desk shows around the feed (protocol v1.1 state):
scorers and players sent off per side, red-card markers, the shoot-out tally, the stats
table and the full-time summary, as HTML.

web/static/facts.js renders the same markup in the browser and keeps it live; the two must
agree (tests/test_browser_fan.py checks both). Every name is escaped here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from ticker import feedpaint
from ticker.state import SIDES, STAT_KEYS

# The stats panel's rows: every stat but substitutions (the lineups show those).
STAT_ROWS = tuple(key for key in STAT_KEYS if key != "substitutions")
WORDS = {
    "da": {
        "goals": "Mål",
        "sent_off": "Udvist",
        "cards": "Kort",
        "pen": "(str.)",
        "og": "(selvmål)",
        "unknown": "Ukendt",
        "stats": "Kampstatistik",
        "statistic": "Statistik",
        "full_time": "Slutresultat",
        "penalties": "Straffespark",
        "yellow_card": "Gult kort",
        "red_card": "Rødt kort",
        "second_yellow": "Andet gule kort",
        "shots": "Skud",
        "shots_on_target": "Skud på mål",
        "corners": "Hjørnespark",
        "fouls": "Begåede frispark",
        "offsides": "Offside",
        "yellow_cards": "Gule kort",
        "red_cards": "Røde kort",
    },
    "en": {
        "goals": "Goals",
        "sent_off": "Sent off",
        "cards": "Cards",
        "pen": "(pen.)",
        "og": "(o.g.)",
        "unknown": "Unknown",
        "stats": "Match stats",
        "statistic": "Statistic",
        "full_time": "Full-time",
        "penalties": "Penalties",
        "yellow_card": "Yellow card",
        "red_card": "Red card",
        "second_yellow": "Second yellow",
        "shots": "Shots",
        "shots_on_target": "Shots on target",
        "corners": "Corners",
        "fouls": "Fouls",
        "offsides": "Offsides",
        "yellow_cards": "Yellow cards",
        "red_cards": "Red cards",
    },
}


def _named(player: Any) -> bool:
    return isinstance(player, str) and bool(player.strip())


def _minute(item: dict[str, Any]) -> str:
    minute, added = item.get("minute", 0), item.get("added", 0)
    return f"{minute}+{added}'" if added else f"{minute}'"


def _team(match: dict[str, Any], side: str) -> str:
    return str(match.get(side, {}).get("name") or side.title())


def scorer_goals(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The goal events behind `state["scorers"]`, in order (ticker/state.py's rule)."""
    goals = []
    for event in events:
        if event["type"] == "penalty_shootout":
            break
        if event["type"] == "goal" and event.get("team") in SIDES:
            goals.append(event)
    return goals


def sending_offs(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The card events behind `state["sent_off"]`, in order: a red, or a second yellow."""
    yellows: dict[tuple[str, str], int] = {}
    off: set[tuple[str, str]] = set()
    cards = []
    for event in events:
        team = event.get("team")
        if event["type"] not in ("yellow_card", "red_card") or team not in SIDES:
            continue
        player = event.get("player")
        key = (
            (team, player.strip().casefold())
            if isinstance(player, str) and _named(player)
            else None
        )
        if key is not None and key in off:
            continue
        if event["type"] == "yellow_card":
            if key is None:
                continue
            yellows[key] = yellows.get(key, 0) + 1
            if yellows[key] < 2:
                continue
        if key is not None:
            off.add(key)
        cards.append(event)
    return cards


def _scorer_lines(
    words: dict[str, str], scorers: Sequence[dict[str, Any]], goals: list[dict[str, Any]], side: str
) -> list[str]:
    known = len(goals) == len(scorers)  # else details cannot be matched up
    lines: dict[tuple[str, bool], tuple[str, list[str]]] = {}
    for i, s in enumerate(scorers):
        if s["team"] != side:
            continue
        name = s["player"].strip() if _named(s["player"]) else words["unknown"]
        minute = _minute(s)
        if known and not s["own_goal"] and goals[i].get("detail") == "penalty":
            minute += " " + words["pen"]
        lines.setdefault((name.lower(), s["own_goal"]), (name, []))[1].append(minute)
    return [
        f"{name} {', '.join(minutes)}{' ' + words['og'] if own else ''}"
        for (_, own), (name, minutes) in lines.items()
    ]


def penalties_text(lang: str, state: dict[str, Any]) -> str:
    p = state.get("penalties")
    return f"{WORDS[lang]['penalties']} {p['home']}–{p['away']}" if p else ""


def board_slots(
    lang: str, match: dict[str, Any], state: dict[str, Any], events: list[dict[str, Any]]
) -> dict[str, str]:
    """The scoreboard's raw slots: {side}_reds, {side}_facts, pens_text, pens_hidden."""
    words = WORDS[lang]
    scorers = state.get("scorers") or []
    goals = scorer_goals(events)
    entries = state.get("sent_off") or []
    cards = sending_offs(events)
    slots: dict[str, str] = {}
    for side in SIDES:
        team = escape(_team(match, side))
        reds, off = [], []
        for i, entry in enumerate(entries):
            if entry["team"] != side:
                continue
            name = entry["player"].strip() if _named(entry["player"]) else ""
            label = escape(f"{words['red_card']}: {name}" if name else words["red_card"])
            reds.append(
                f'<span class="sb-redcard" role="img" aria-label="{label}" title="{label}"></span>'
            )
            line = name or words["unknown"]
            if len(cards) == len(entries):
                line += " " + _minute(cards[i])
            off.append(f'<li><span class="sb-card" aria-hidden="true"></span>{escape(line)}</li>')
        lines = _scorer_lines(words, scorers, goals, side)
        html = ""
        if lines:
            items = "".join(f"<li>{escape(line)}</li>" for line in lines)
            html += f'<ul class="sb-scorers" aria-label="{words["goals"]}: {team}">{items}</ul>'
        if off:
            label = f"{words['sent_off']}: {team}"
            html += f'<ul class="sb-off" aria-label="{label}">{"".join(off)}</ul>'
        slots[f"{side}_reds"] = "".join(reds)
        slots[f"{side}_facts"] = html
    pens = penalties_text(lang, state)
    slots["pens_text"] = escape(pens)
    slots["pens_hidden"] = "" if pens else " hidden"
    return slots


def stats_html(lang: str, match: dict[str, Any], state: dict[str, Any]) -> str:
    """The stats panel: a <details> with a table of header cells and two-sided bars."""
    words = WORDS[lang]
    stats = state.get("stats") or {}
    heads = []
    for side in SIDES:
        name = _team(match, side)
        short = match.get(side, {}).get("short") or name[:3].upper()
        heads.append(
            f'<th scope="col" class="stats-team stats-team--{side}">'
            f'<span data-tk="stats-{side}-short" aria-hidden="true">{escape(short)}</span>'
            f'<span class="sr-only" data-tk="stats-{side}-name">{escape(name)}</span></th>'
        )
    middle = f'<th scope="col"><span class="sr-only">{words["statistic"]}</span></th>'
    rows = []
    for key in STAT_ROWS:
        h = int(stats.get("home", {}).get(key, 0))
        a = int(stats.get("away", {}).get(key, 0))
        top = max(1, h + a)
        bar = "".join(
            f'<meter class="stats-meter stats-meter--{side}" min="0" max="{top}" value="{v}">'
            "</meter>"
            for side, v in (("home", h), ("away", a))
        )
        rows.append(
            f'<tr data-stat="{key}"><td class="stats-num">{h}</td>'
            f'<th scope="row" class="stats-label">{words[key]}'
            f'<span class="stats-bar" aria-hidden="true">{bar}</span></th>'
            f'<td class="stats-num">{a}</td></tr>'
        )
    return (
        f'<details class="stats" data-tk="stats"><summary class="stats-summary">{words["stats"]}'
        f'</summary><table class="stats-table"><caption class="sr-only">{words["stats"]}</caption>'
        f"<thead><tr>{heads[0]}{middle}{heads[1]}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></details>"
    )


def summary_html(
    lang: str, match: dict[str, Any], state: dict[str, Any], events: list[dict[str, Any]]
) -> str:
    """What stands right above the feed: the full-time summary, then the pinned events
    (feedpaint.pinned_html; this is the page's one slot there)."""
    return _summary(lang, match, state, events) + feedpaint.pinned_html(lang, match, events)


def _summary(
    lang: str, match: dict[str, Any], state: dict[str, Any], events: list[dict[str, Any]]
) -> str:
    """The full-time summary's section: the result, the goals and the cards, in order."""
    if state["phase"] != "full_time":
        return '<section class="summary" data-tk="summary" hidden></section>'
    words = WORDS[lang]
    score = state["score"]
    result = f"{_team(match, 'home')} {score['home']}–{score['away']} {_team(match, 'away')}"
    pens = penalties_text(lang, state)
    if pens:
        result += f" · {pens}"
    parts = [
        f'<h2 id="summary-heading" class="summary-heading">{words["full_time"]}</h2>',
        f'<p class="sum-result">{escape(result)}</p>',
    ]
    scorers = state.get("scorers") or []
    if scorers:
        goals = scorer_goals(events)
        known = len(goals) == len(scorers)
        running = {"home": 0, "away": 0}
        items = []
        for i, s in enumerate(scorers):
            running[s["team"]] += 1
            who = s["player"].strip() if _named(s["player"]) else words["unknown"]
            if s["own_goal"]:
                who += " " + words["og"]
            elif known and goals[i].get("detail") == "penalty":
                who += " " + words["pen"]
            items.append(
                f'<li class="sum-item sum-item--{s["team"]}"><span class="sum-min">{_minute(s)}'
                f'</span> <span class="sum-body"><span class="sum-who">{escape(who)}</span> '
                f'<span class="sum-team">({escape(_team(match, s["team"]))})</span> '
                f'<span class="sum-score">{running["home"]}–{running["away"]}</span></span></li>'
            )
        parts.append(f'<h3 class="sum-sub">{words["goals"]}</h3>')
        parts.append(f'<ol class="sum-list sum-goals">{"".join(items)}</ol>')
    cards = [
        e for e in events if e["type"] in ("yellow_card", "red_card") and e.get("team") in SIDES
    ]
    if cards:
        offs = {e["id"] for e in sending_offs(events)}
        items = []
        for e in cards:
            second = e["type"] == "yellow_card" and e["id"] in offs
            kind = "second" if second else e["type"]
            label = words["second_yellow"] if second else words[e["type"]]
            who = (
                f'<span class="sum-who">{escape(e["player"].strip())}</span> '
                if _named(e.get("player"))
                else ""
            )
            items.append(
                f'<li class="sum-item sum-item--{e["team"]}"><span class="sum-min">{_minute(e)}'
                f'</span> <span class="sum-body"><span class="sum-card sum-card--{kind}" '
                f'aria-hidden="true"></span><span class="sum-what">{label}</span> {who}'
                f'<span class="sum-team">({escape(_team(match, e["team"]))})</span></span></li>'
            )
        parts.append(f'<h3 class="sum-sub">{words["cards"]}</h3>')
        parts.append(f'<ol class="sum-list sum-cards">{"".join(items)}</ol>')
    return (
        '<section class="summary" data-tk="summary" aria-labelledby="summary-heading">'
        f"{''.join(parts)}</section>"
    )


LINEUP_WORDS = {
    "da": {
        "lineups": "Holdopstillinger",
        "starters": "Startopstilling",
        "bench": "Bænk",
        "coach": "Træner",
        "captain": "anfører",
        "on": "ind",
        "off": "ud",
        "sent_off": "udvist",
        "none": "Ikke offentliggjort endnu.",
        "goalkeeper": "Målmand",
        "line": "Række {n}",
    },
    "en": {
        "lineups": "Lineups",
        "starters": "Starting XI",
        "bench": "Substitutes",
        "coach": "Manager",
        "captain": "captain",
        "on": "on",
        "off": "off",
        "sent_off": "sent off",
        "none": "Not announced yet.",
        "goalkeeper": "Goalkeeper",
        "line": "Line {n}",
    },
}


def _norm(name: Any) -> str:
    """A name as compared: trimmed, case- and accent-insensitive (lineups.js `norm`)."""
    text = unicodedata.normalize("NFD", str(name or "").strip().lower())
    return "".join(c for c in text if not unicodedata.combining(c))


def lineup_changes(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per side, who came on, went off and was sent off (name -> event), before any shoot-out."""
    out: dict[str, dict[str, dict[str, Any]]] = {
        s: {"on": {}, "off": {}, "sent": {}} for s in SIDES
    }
    yellows: dict[tuple[str, str], int] = {}
    for e in events:
        if e.get("team") not in SIDES:
            continue
        if e["type"] == "penalty_shootout":
            break
        side = out[e["team"]]
        if e["type"] == "substitution":
            if e.get("player_in"):
                side["on"][_norm(e["player_in"])] = e
            if e.get("player_out"):
                side["off"][_norm(e["player_out"])] = e
        elif e["type"] in ("red_card", "yellow_card") and e.get("player"):
            key = _norm(e["player"])
            if key in side["sent"]:
                continue
            if e["type"] == "yellow_card":
                yellows[(e["team"], key)] = yellows.get((e["team"], key), 0) + 1
                if yellows[(e["team"], key)] < 2:
                    continue
            side["sent"][key] = e
    return out


def formation_lines(formation: Any) -> list[int] | None:
    """ "3-4-3" -> [3, 4, 3] when it adds up to 10 outfield players, else None."""
    if not isinstance(formation, str) or not re.fullmatch(r"\d(-\d){1,4}", formation):
        return None
    lines = [int(n) for n in formation.split("-")]
    return lines if sum(lines) == 10 else None


def _player_html(words: dict[str, str], p: dict[str, Any], c: dict[str, dict[str, Any]]) -> str:
    html = (
        f'<li class="lu-player"><span class="lu-num">{int(p["number"])}</span>'
        f'<span class="lu-name">{escape(p["name"])}</span>'
    )
    if p.get("captain"):
        html += f'<abbr class="lu-cap" title="{words["captain"]}">C</abbr>'
    key = _norm(p["name"])
    for kind, cls, arrow in (("off", "lu-off", "↓"), ("on", "lu-on", "↑")):
        e = c[kind].get(key)
        if e:
            said = f"{words[kind]} {_minute(e)}"
            html += (
                f'<span class="lu-sub {cls}" title="{escape(said)}"><span>{arrow}</span>'
                f'<span class="sr-only"> {words[kind]}</span> {_minute(e)}</span>'
            )
    red = c["sent"].get(key)
    if red:
        label = escape(f"{words['sent_off']} {_minute(red)}")
        html += f'<span class="lu-red" role="img" aria-label="{label}"></span>'
    return html + "</li>"


def _side_html(
    words: dict[str, str], side: str, name: str, lineup: Any, c: dict[str, dict[str, Any]]
) -> str:
    head = escape(name)
    if lineup and lineup.get("formation"):
        head += f' <span class="lu-formation">{escape(lineup["formation"])}</span>'
    html = f'<h3 class="lu-team" id="lu-h-{side}">{head}</h3>'
    players = (lineup or {}).get("players") or []
    if not players:
        html += f'<p class="lu-none">{words["none"]}</p>'
    else:
        starters = [p for p in players if p.get("starter")]
        bench = [p for p in players if not p.get("starter")]
        html += f'<h4 class="lu-sub-h">{words["starters"]}</h4>'
        lines = formation_lines(lineup.get("formation"))
        if lines and len(starters) == 11:
            gk = next((p for p in starters if p.get("position") == "GK"), starters[0])
            outfield = [p for p in starters if p is not gk]
            groups, at = [[gk]], 0
            for n in lines:
                groups.append(outfield[at : at + n])
                at += n
            rows = ""
            for i, group in enumerate(groups):
                label = words["goalkeeper"] if i == 0 else words["line"].format(n=i)
                items = "".join(_player_html(words, p, c) for p in group)
                rows += (
                    f'<li class="lu-line"><ul class="lu-list lu-list--line" aria-label="{label}">'
                    f"{items}</ul></li>"
                )
            html += f'<ol class="lu-lines">{rows}</ol>'
        else:
            items = "".join(_player_html(words, p, c) for p in starters)
            html += f'<ul class="lu-list">{items}</ul>'
        if bench:
            items = "".join(_player_html(words, p, c) for p in bench)
            html += (
                f'<h4 class="lu-sub-h">{words["bench"]}</h4>'
                f'<ul class="lu-list lu-bench">{items}</ul>'
            )
        if lineup.get("coach"):
            html += (
                f'<p class="lu-coach"><span class="lu-key">{words["coach"]}: </span>'
                f"{escape(lineup['coach'])}</p>"
            )
    return (
        f'<section class="lu-side lu-side--{side}" aria-labelledby="lu-h-{side}">{html}</section>'
    )


def lineups_html(
    lang: str, match: dict[str, Any], lineups: Any, events: list[dict[str, Any]]
) -> str:
    """The lineups <details> (web/static/lineups.js renderLineups keeps it live): per side the
    starters by formation line (goalkeeper first) or as a list, the bench, the coach, with
    substitutions and sendings-off marked. Hidden until a side has players."""
    words = LINEUP_WORDS[lang]
    lineups = lineups or {}
    shown = any(((lineups.get(s) or {}).get("players") or []) for s in SIDES)
    grid = ""
    if shown:
        c = lineup_changes(events)
        grid = "".join(_side_html(words, s, _team(match, s), lineups.get(s), c[s]) for s in SIDES)
    return (
        f'<details class="lineups" data-tk="lineups" part="lineups"{"" if shown else " hidden"}>'
        f'<summary class="lineups-summary">{words["lineups"]}</summary>'
        f'<div class="lu-grid">{grid}</div></details>'
    )
