// Lineups (protocol v1.1): reading a pasted team sheet, who is on the pitch now, and the
// reader's views - the lineups <details> and the pinned events above the feed. Shared by
// the fan page, the embed and the console. Names are user input: textContent only.

import { formatMinute } from "./clock.js";
import { renderEvent } from "./render.js";

const SIDES = ["home", "away"];
const POSITIONS = new Set(["GK", "DF", "MF", "FW"]);
// Team sheets in Danish and English name positions in several ways.
const POSITION_WORDS = {
  GK: "GK", G: "GK", MV: "GK", GOALKEEPER: "GK", MÅLMAND: "GK",
  DF: "DF", D: "DF", DEF: "DF", FORSVAR: "DF", DEFENDER: "DF",
  MF: "MF", M: "MF", MID: "MF", MIDTBANE: "MF", MIDFIELDER: "MF",
  FW: "FW", F: "FW", FWD: "FW", ANGREB: "FW", FORWARD: "FW", ST: "FW",
};

export const WORDS = {
  da: {
    lineups: "Holdopstillinger", starters: "Startopstilling", bench: "Bænk", coach: "Træner",
    captain: "anfører", formation: "Formation", pinned: "Fastgjort", subOn: "ind", subOff: "ud",
    sentOff: "udvist", noLineup: "Ikke offentliggjort endnu.", goalkeeper: "Målmand",
    line: "Række {n}",
  },
  en: {
    lineups: "Lineups", starters: "Starting XI", bench: "Substitutes", coach: "Manager",
    captain: "captain", formation: "Formation", pinned: "Pinned", subOn: "on", subOff: "off",
    sentOff: "sent off", noLineup: "Not announced yet.", goalkeeper: "Goalkeeper",
    line: "Line {n}",
  },
};
const w = (lang, key, vars) => {
  let text = (WORDS[lang] || WORDS.da)[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) text = text.replace(`{${k}}`, String(v));
  return text;
};

/** A name as compared: trimmed, case- and accent-insensitive. */
export function norm(name) {
  return String(name ?? "").trim().toLowerCase().normalize("NFD").replace(/\p{M}/gu, "");
}

/**
 * One squad line per player, the way team sheets arrive: "6 Kristoffer Olsson (c)",
 * "10. Kaba", "1\tJonas Lössl\tGK", "MF 8 Name". Returns {players, errors: [{line, text}]};
 * the first 11 are starters.
 */
export function parseSquad(text) {
  const players = [];
  const errors = [];
  String(text || "").split(/\r?\n/).forEach((raw, index) => {
    let line = raw.replace(/\t/g, " ").replace(/\s+/g, " ").trim();
    if (!line) return;
    let captain = false;
    let position = null;
    line = line.replace(/\s*[([]\s*(c|k|captain|anfører)\s*[)\]]\s*/i, () => {
      captain = true;
      return " ";
    }).trim();
    // A position marker first or last, bare or in brackets.
    const takePosition = (re) => {
      line = line.replace(re, (all, word) => {
        const pos = POSITION_WORDS[word.toUpperCase()];
        if (!pos || position) return all;
        position = pos;
        return " ";
      }).trim();
    };
    takePosition(/[([]\s*([A-Za-zÅåæÆøØ]+)\s*[)\]]\s*$/);
    takePosition(/\s(GK|DF|MF|FW|MV|DEF|MID|FWD|ST)$/i);
    takePosition(/^(GK|DF|MF|FW|MV|DEF|MID|FWD|ST)\s/i);
    const m = /^#?(\d{1,2})\s*[.):-]?\s+(.+)$/.exec(line) || /^(.+?)\s+#?(\d{1,2})$/.exec(line);
    if (!m) {
      errors.push({ line: index + 1, text: raw });
      return;
    }
    const [number, name] = /^\d/.test(m[1]) ? [Number(m[1]), m[2]] : [Number(m[2]), m[1]];
    players.push({ number, name: name.trim().slice(0, 80), position, starter: false, captain });
  });
  players.forEach((p, i) => { p.starter = i < 11; });
  return { players, errors };
}

/** "3-4-3" -> [3, 4, 3] when it adds up to 10 outfield players, else null. */
export function formationLines(formation) {
  if (!formation || !/^\d(-\d){1,4}$/.test(formation)) return null;
  const lines = formation.split("-").map(Number);
  return lines.reduce((a, b) => a + b, 0) === 10 ? lines : null;
}

/**
 * Who came on and went off, and who was sent off, per side, from the live events in log
 * order: {home: {on: Map(name -> event), off: Map, sent: Map}, away: ...}.
 */
export function changes(events) {
  const out = Object.fromEntries(SIDES.map((s) => [s, { on: new Map(), off: new Map(), sent: new Map() }]));
  const yellows = new Map();
  for (const e of events) {
    if (!SIDES.includes(e.team)) continue;
    const side = out[e.team];
    if (e.type === "penalty_shootout") break;
    if (e.type === "substitution") {
      if (e.player_in) side.on.set(norm(e.player_in), e);
      if (e.player_out) side.off.set(norm(e.player_out), e);
    } else if ((e.type === "red_card" || e.type === "yellow_card") && e.player) {
      const key = norm(e.player);
      if (side.sent.has(key)) continue;
      if (e.type === "yellow_card") {
        const n = (yellows.get(`${e.team}\0${key}`) || 0) + 1;
        yellows.set(`${e.team}\0${key}`, n);
        if (n < 2) continue;
      }
      side.sent.set(key, e);
    }
  }
  return out;
}

/** A side's players on the pitch now: starters minus those off, plus those on; and the bench. */
export function pitch(lineup, events, side) {
  const players = lineup?.players || [];
  const c = changes(events)[side];
  const gone = (p) => c.off.has(norm(p.name)) || c.sent.has(norm(p.name));
  const on = players.filter((p) => (p.starter || c.on.has(norm(p.name))) && !gone(p));
  const bench = players.filter((p) => !p.starter && !c.on.has(norm(p.name)) && !c.off.has(norm(p.name)));
  return { on, bench };
}

/** Has this player of this side a live yellow card already (and is still on)? */
export function hasYellow(events, side, player) {
  const key = norm(player);
  if (!key) return false;
  const c = changes(events)[side];
  if (c?.sent.has(key)) return false;
  return events.some((e) => e.type === "yellow_card" && e.team === side && norm(e.player) === key);
}

function el(doc, tag, className, text) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null && text !== "") node.textContent = String(text);
  return node;
}

function playerItem(doc, lang, p, c) {
  const li = el(doc, "li", "lu-player");
  li.append(el(doc, "span", "lu-num", p.number));
  const name = el(doc, "span", "lu-name", p.name);
  li.append(name);
  if (p.captain) {
    const cap = el(doc, "abbr", "lu-cap", "C");
    cap.title = w(lang, "captain");
    li.append(cap);
  }
  const key = norm(p.name);
  for (const [map, cls, arrow, word] of [[c.off, "lu-off", "↓", "subOff"], [c.on, "lu-on", "↑", "subOn"]]) {
    const e = map.get(key);
    if (!e) continue;
    const mark = el(doc, "span", `lu-sub ${cls}`);
    const said = `${w(lang, word)} ${formatMinute(e.minute ?? 0, e.added ?? 0)}`;
    mark.append(el(doc, "span", "", arrow), el(doc, "span", "sr-only", ` ${w(lang, word)}`),
      ` ${formatMinute(e.minute ?? 0, e.added ?? 0)}`);
    mark.title = said;
    li.append(mark);
  }
  const red = c.sent.get(key);
  if (red) {
    const mark = el(doc, "span", "lu-red");
    mark.setAttribute("role", "img");
    mark.setAttribute("aria-label", `${w(lang, "sentOff")} ${formatMinute(red.minute ?? 0, red.added ?? 0)}`);
    li.append(mark);
  }
  return li;
}

function sideBlock(doc, lang, side, name, lineup, c) {
  const box = el(doc, "section", `lu-side lu-side--${side}`);
  const headId = `lu-h-${side}`;
  const head = el(doc, "h3", "lu-team", name);
  head.id = headId;
  box.setAttribute("aria-labelledby", headId);
  if (lineup?.formation) head.append(" ", el(doc, "span", "lu-formation", lineup.formation));
  box.append(head);
  const players = lineup?.players || [];
  if (!players.length) {
    box.append(el(doc, "p", "lu-none", w(lang, "noLineup")));
    return box;
  }
  const starters = players.filter((p) => p.starter);
  const bench = players.filter((p) => !p.starter);
  box.append(el(doc, "h4", "lu-sub-h", w(lang, "starters")));
  const lines = formationLines(lineup.formation);
  const gk = starters.find((p) => p.position === "GK") || starters[0];
  const outfield = starters.filter((p) => p !== gk);
  if (lines && starters.length === 11) {
    // Goalkeeper first, then the formation's lines from the back.
    const groups = [[gk]];
    let at = 0;
    for (const n of lines) {
      groups.push(outfield.slice(at, at + n));
      at += n;
    }
    const pitchList = el(doc, "ol", "lu-lines");
    groups.forEach((group, i) => {
      const row = el(doc, "li", "lu-line");
      const list = el(doc, "ul", "lu-list lu-list--line");
      list.setAttribute("aria-label", i === 0 ? w(lang, "goalkeeper") : w(lang, "line", { n: i }));
      list.append(...group.map((p) => playerItem(doc, lang, p, c)));
      row.append(list);
      pitchList.append(row);
    });
    box.append(pitchList);
  } else {
    const list = el(doc, "ul", "lu-list");
    list.append(...starters.map((p) => playerItem(doc, lang, p, c)));
    box.append(list);
  }
  if (bench.length) {
    box.append(el(doc, "h4", "lu-sub-h", w(lang, "bench")));
    const list = el(doc, "ul", "lu-list lu-bench");
    list.append(...bench.map((p) => playerItem(doc, lang, p, c)));
    box.append(list);
  }
  if (lineup.coach) {
    const coach = el(doc, "p", "lu-coach");
    coach.append(el(doc, "span", "lu-key", `${w(lang, "coach")}: `), lineup.coach);
    box.append(coach);
  }
  return box;
}

/** The lineups panel: a closed <details>, hidden until a side has a lineup. */
export function buildLineups(doc, lang) {
  const details = el(doc, "details", "lineups");
  details.dataset.tk = "lineups";
  details.setAttribute("part", "lineups");
  details.hidden = true;
  details.append(el(doc, "summary", "lineups-summary", w(lang, "lineups")));
  details.append(el(doc, "div", "lu-grid"));
  return details;
}

/** Fill the panel from the model (its `lineups` and live events); keeps open/closed. */
export function renderLineups(details, model, lang) {
  const doc = details.ownerDocument;
  const lineups = model.lineups || {};
  const any = SIDES.some((s) => lineups[s]?.players?.length);
  details.hidden = !any;
  const grid = details.querySelector(".lu-grid");
  if (!any || !grid) {
    grid?.replaceChildren();
    return;
  }
  const c = changes([...model.events.values()]);
  grid.replaceChildren(...SIDES.map((s) => sideBlock(doc, lang, s, model.teamName(s), lineups[s], c[s])));
}

/** The pinned section above the feed: hidden while nothing is pinned. */
export function buildPinned(doc, lang) {
  const section = el(doc, "section", "pinned");
  section.dataset.tk = "pinned";
  section.setAttribute("part", "pinned");
  section.hidden = true;
  const id = `pinned-h-${Math.random().toString(36).slice(2, 8)}`;
  const head = el(doc, "h2", "pinned-heading", w(lang, "pinned"));
  head.id = id;
  section.setAttribute("aria-labelledby", id);
  const list = el(doc, "ol", "feed pinned-list");
  section.append(head, list);
  return section;
}

/** Pinned live events, newest first, as the feed shows them. */
export function renderPinned(section, model, lang) {
  const doc = section.ownerDocument;
  const list = section.querySelector(".pinned-list");
  const kicks = model.shootoutIds();
  const pinned = model.newestFirst().filter((e) => e.pinned === true);
  section.hidden = !pinned.length;
  list.replaceChildren(...pinned.map((e) => {
    const li = renderEvent(doc, e, { lang, match: model.match, kick: kicks.has(e.id) });
    li.classList.add("ev--pinned");
    li.removeAttribute("data-id"); // the feed's item keeps the id; this is a copy
    li.dataset.pinnedId = e.id;
    return li;
  }));
}

export { POSITIONS };
