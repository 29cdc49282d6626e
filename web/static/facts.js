// What a sports desk shows around the feed, from the server's state (protocol v1.1):
// scorers and players sent off per side, red-card markers, the shoot-out tally, the stats
// table and the full-time summary. ticker/facts.py renders the same markup for the first
// paint; this module keeps it live. Names are user input: textContent only.

import { t } from "./i18n.js";
import { formatMinute } from "./clock.js";

export const STAT_ROWS = [
  "shots", "shots_on_target", "corners", "fouls", "offsides", "yellow_cards", "red_cards",
];
const SIDES = ["home", "away"];

const named = (player) => typeof player === "string" && player.trim() !== "";
const minuteOf = (e) => formatMinute(e.minute ?? 0, e.added ?? 0);

function el(doc, tag, className, text) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** The goal events behind `state.scorers`, in order: the server's rule (ticker/state.py). */
export function scorerGoals(events) {
  const goals = [];
  for (const e of events) {
    if (e.type === "penalty_shootout") break;
    if (e.type === "goal" && SIDES.includes(e.team)) goals.push(e);
  }
  return goals;
}

/** The card events behind `state.sent_off`, in order: a red, or a player's second yellow. */
export function sendingOffs(events) {
  const yellows = new Map();
  const off = new Set();
  const cards = [];
  for (const e of events) {
    if ((e.type !== "yellow_card" && e.type !== "red_card") || !SIDES.includes(e.team)) continue;
    const key = named(e.player) ? `${e.team}\u0000${e.player.trim().toLowerCase()}` : null;
    if (key !== null && off.has(key)) continue;
    if (e.type === "yellow_card") {
      if (key === null) continue;
      yellows.set(key, (yellows.get(key) || 0) + 1);
      if (yellows.get(key) < 2) continue;
    }
    if (key !== null) off.add(key);
    cards.push(e);
  }
  return cards;
}

/** Per side, "Kaba 13', 45+2' (str.)": one line per player, own goals apart. */
export function scorerLines(lang, state, events, side) {
  const scorers = state.scorers || [];
  const goals = scorerGoals(events);
  const known = goals.length === scorers.length; // else details cannot be matched up
  const lines = new Map();
  scorers.forEach((s, i) => {
    if (s.team !== side) return;
    const name = named(s.player) ? s.player.trim() : t(lang, "ui", "unknownPlayer");
    const key = `${name.toLowerCase()}\u0000${s.own_goal}`;
    if (!lines.has(key)) lines.set(key, { name, own: s.own_goal, minutes: [] });
    let minute = minuteOf(s);
    if (known && !s.own_goal && goals[i].detail === "penalty") minute += ` ${t(lang, "ui", "penMark")}`;
    lines.get(key).minutes.push(minute);
  });
  return [...lines.values()].map(
    (l) => `${l.name} ${l.minutes.join(", ")}${l.own ? ` ${t(lang, "ui", "ogMark")}` : ""}`,
  );
}

/** Per side, the players sent off: [{name, label, line}]. */
export function sentOff(lang, state, events, side) {
  const entries = state.sent_off || [];
  const cards = sendingOffs(events);
  const known = cards.length === entries.length;
  const out = [];
  entries.forEach((s, i) => {
    if (s.team !== side) return;
    const name = named(s.player) ? s.player.trim() : "";
    const red = t(lang, "type", "red_card");
    const shown = name || t(lang, "ui", "unknownPlayer");
    out.push({
      label: name ? `${red}: ${name}` : red,
      line: known ? `${shown} ${minuteOf(cards[i])}` : shown,
    });
  });
  return out;
}

export function penaltiesText(lang, state) {
  const p = state.penalties;
  return p ? `${t(lang, "phase", "penalties")} ${p.home}–${p.away}` : "";
}

/** Fill the scoreboard's facts: red markers by the names, scorers and sent off below. */
export function renderBoardFacts(root, model, lang) {
  const doc = root.ownerDocument;
  const part = (name) => root.querySelector(`[data-tk="${name}"]`);
  const events = [...model.events.values()];
  const { state } = model;
  for (const side of SIDES) {
    const team = model.teamName(side);
    const off = sentOff(lang, state, events, side);
    const reds = part(`${side}-reds`);
    if (reds) {
      reds.replaceChildren(...off.map(({ label }) => {
        const card = el(doc, "span", "sb-redcard");
        card.setAttribute("role", "img");
        card.setAttribute("aria-label", label);
        card.title = label;
        return card;
      }));
    }
    const facts = part(`${side}-facts`);
    if (!facts) continue;
    const nodes = [];
    const scorers = scorerLines(lang, state, events, side);
    if (scorers.length) {
      const list = el(doc, "ul", "sb-scorers");
      list.setAttribute("aria-label", `${t(lang, "ui", "goals")}: ${team}`);
      list.append(...scorers.map((line) => el(doc, "li", "", line)));
      nodes.push(list);
    }
    if (off.length) {
      const list = el(doc, "ul", "sb-off");
      list.setAttribute("aria-label", `${t(lang, "ui", "sentOff")}: ${team}`);
      for (const { line } of off) {
        const li = el(doc, "li");
        const card = el(doc, "span", "sb-card");
        card.setAttribute("aria-hidden", "true");
        li.append(card, line);
        list.append(li);
      }
      nodes.push(list);
    }
    facts.replaceChildren(...nodes);
  }
  const pens = part("pens");
  if (pens) {
    const text = penaltiesText(lang, state);
    if (pens.textContent !== text) pens.textContent = text;
    pens.hidden = !text;
  }
}

/** The stats panel: a <details> holding a table with header cells and two-sided bars. */
export function buildStats(doc, lang) {
  const details = el(doc, "details", "stats");
  details.dataset.tk = "stats";
  details.setAttribute("part", "stats");
  details.append(el(doc, "summary", "stats-summary", t(lang, "ui", "stats")));
  const table = el(doc, "table", "stats-table");
  table.append(el(doc, "caption", "sr-only", t(lang, "ui", "stats")));
  const head = el(doc, "tr");
  for (const cell of ["home", "", "away"]) {
    const th = el(doc, "th");
    th.scope = "col";
    if (cell) {
      th.className = `stats-team stats-team--${cell}`;
      const short = el(doc, "span");
      short.dataset.tk = `stats-${cell}-short`;
      short.setAttribute("aria-hidden", "true");
      const full = el(doc, "span", "sr-only");
      full.dataset.tk = `stats-${cell}-name`;
      th.append(short, full);
    } else {
      th.append(el(doc, "span", "sr-only", t(lang, "ui", "statistic")));
    }
    head.append(th);
  }
  const thead = el(doc, "thead");
  thead.append(head);
  table.append(thead);
  const body = el(doc, "tbody");
  for (const key of STAT_ROWS) {
    const row = el(doc, "tr");
    row.dataset.stat = key;
    const label = el(doc, "th", "stats-label", t(lang, "stat", key));
    label.scope = "row";
    const bar = el(doc, "span", "stats-bar");
    bar.setAttribute("aria-hidden", "true");
    for (const side of SIDES) {
      const meter = el(doc, "meter", `stats-meter stats-meter--${side}`);
      meter.min = 0;
      meter.max = 1;
      meter.value = 0;
      bar.append(meter);
    }
    label.append(bar);
    row.append(el(doc, "td", "stats-num", "0"), label, el(doc, "td", "stats-num", "0"));
    body.append(row);
  }
  table.append(body);
  details.append(table);
  return details;
}

export function renderStats(details, model) {
  const stats = model.state.stats;
  const set = (node, text) => {
    if (node && node.textContent !== text) node.textContent = text;
  };
  for (const side of SIDES) {
    const name = model.teamName(side);
    set(details.querySelector(`[data-tk="stats-${side}-short"]`),
      model.match?.[side]?.short || name.slice(0, 3).toUpperCase());
    set(details.querySelector(`[data-tk="stats-${side}-name"]`), name);
  }
  for (const row of details.querySelectorAll("tr[data-stat]")) {
    const key = row.dataset.stat;
    const h = stats?.home?.[key] ?? 0;
    const a = stats?.away?.[key] ?? 0;
    const [homeCell, awayCell] = row.querySelectorAll("td");
    set(homeCell, String(h));
    set(awayCell, String(a));
    const [homeBar, awayBar] = row.querySelectorAll("meter");
    for (const [meter, value] of [[homeBar, h], [awayBar, a]]) {
      if (!meter) continue;
      meter.max = Math.max(1, h + a);
      meter.value = value;
    }
  }
}

/** The full-time summary's section (hidden until full time). */
export function buildSummary(doc) {
  const section = el(doc, "section", "summary");
  section.dataset.tk = "summary";
  section.setAttribute("part", "summary");
  section.hidden = true;
  return section;
}

export function renderSummary(section, model, lang) {
  const { state } = model;
  const done = state.phase === "full_time";
  section.hidden = !done;
  if (!done) {
    section.replaceChildren();
    return;
  }
  const doc = section.ownerDocument;
  const events = [...model.events.values()];
  const teamOf = (side) => model.teamName(side);
  const heading = el(doc, "h2", "summary-heading", t(lang, "ui", "fullTime"));
  heading.id = "summary-heading";
  section.setAttribute("aria-labelledby", "summary-heading");
  const nodes = [heading];
  let result = `${teamOf("home")} ${state.score.home}–${state.score.away} ${teamOf("away")}`;
  const pens = penaltiesText(lang, state);
  if (pens) result += ` · ${pens}`;
  nodes.push(el(doc, "p", "sum-result", result));

  const scorers = state.scorers || [];
  if (scorers.length) {
    const goals = scorerGoals(events);
    const known = goals.length === scorers.length;
    const running = { home: 0, away: 0 };
    const list = el(doc, "ol", "sum-list sum-goals");
    scorers.forEach((s, i) => {
      running[s.team] += 1;
      let who = named(s.player) ? s.player.trim() : t(lang, "ui", "unknownPlayer");
      if (s.own_goal) who += ` ${t(lang, "ui", "ogMark")}`;
      else if (known && goals[i].detail === "penalty") who += ` ${t(lang, "ui", "penMark")}`;
      const li = el(doc, "li", `sum-item sum-item--${s.team}`);
      const body = el(doc, "span", "sum-body");
      body.append(el(doc, "span", "sum-who", who), " ",
        el(doc, "span", "sum-team", `(${teamOf(s.team)})`), " ",
        el(doc, "span", "sum-score", `${running.home}–${running.away}`));
      li.append(el(doc, "span", "sum-min", minuteOf(s)), " ", body);
      list.append(li);
    });
    nodes.push(el(doc, "h3", "sum-sub", t(lang, "ui", "goals")), list);
  }

  const cards = events.filter((e) => (e.type === "yellow_card" || e.type === "red_card")
    && SIDES.includes(e.team));
  if (cards.length) {
    const offs = new Set(sendingOffs(events).map((e) => e.id));
    const list = el(doc, "ol", "sum-list sum-cards");
    for (const e of cards) {
      const second = e.type === "yellow_card" && offs.has(e.id);
      const label = second ? t(lang, "ui", "secondYellow") : t(lang, "type", e.type);
      const li = el(doc, "li", `sum-item sum-item--${e.team}`);
      const card = el(doc, "span", `sum-card sum-card--${second ? "second" : e.type}`);
      card.setAttribute("aria-hidden", "true");
      const body = el(doc, "span", "sum-body");
      body.append(card, el(doc, "span", "sum-what", label), " ");
      if (named(e.player)) body.append(el(doc, "span", "sum-who", e.player.trim()), " ");
      body.append(el(doc, "span", "sum-team", `(${teamOf(e.team)})`));
      li.append(el(doc, "span", "sum-min", minuteOf(e)), " ", body);
      list.append(li);
    }
    nodes.push(el(doc, "h3", "sum-sub", t(lang, "ui", "cards")), list);
  }
  section.replaceChildren(...nodes);
}
