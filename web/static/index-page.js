// The match list /: live matches first, every card kept current over ONE connection for
// the page (/ws/matches, or /sse/matches): a fresh `summaries` on each connect, then a
// `summary` whenever a match's state, metadata or viewer count changes.

import { TickerConnection } from "./connection.js";
import { addClock, formatMinute } from "./clock.js";
import { MatchModel, IN_PLAY } from "./model.js";
import { locale, pageLang, t } from "./i18n.js";
import { mountViewers } from "./viewers.js";

const lang = pageLang();
const listRoot = document.querySelector('[data-tk="list"]');
const langQuery = lang === "en" ? "?lang=en" : "";
const entries = new Map(); // id -> {model, startAt, count, parts, viewers, group, stopClock}

function group(state) {
  if (IN_PLAY.has(state.phase)) return "live";
  return state.phase === "full_time" ? "finished" : "upcoming";
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

function kickoffMs(model) {
  const ms = Date.parse(model.match?.kickoff || "");
  return Number.isFinite(ms) ? ms : Infinity;
}

function buildCard(entry) {
  const { model } = entry;
  const a = el("a", "card");
  a.href = `/matches/${encodeURIComponent(model.match.id)}${langQuery}`;
  const meta = el("span", "card-meta");
  meta.append(el("span", "", model.match.competition || ""));
  const when = Date.parse(model.match.kickoff || "");
  if (Number.isFinite(when)) {
    meta.append(el("span", "", new Intl.DateTimeFormat(locale(lang), {
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    }).format(when)));
  }
  const teams = el("span", "card-teams");
  const home = el("span", "", model.teamName("home"));
  const away = el("span", "", model.teamName("away"));
  teams.append(home, away);
  const score = el("span", "card-score");
  const hs = el("span");
  const as = el("span");
  score.append(hs, as);
  const status = el("span", "card-status");
  const clock = el("span", "card-clock");
  const phase = el("span", "card-phase");
  status.append(clock, phase);
  const viewers = el("span", "card-viewers");
  entry.viewers = mountViewers(viewers, lang);
  if (entry.count != null) entry.viewers.update(entry.count);
  a.append(meta, teams, score, status, viewers);
  entry.parts = { a, home, away, hs, as, clock, phase };
  const li = el("li");
  li.append(a);
  return li;
}

function updateCard(entry) {
  const { model, parts } = entry;
  if (!parts) return;
  const { state } = model;
  parts.home.textContent = model.teamName("home");
  parts.away.textContent = model.teamName("away");
  const started = state.phase !== "pre_match";
  parts.hs.textContent = started ? String(state.score.home) : "";
  parts.as.textContent = started ? String(state.score.away) : "";
  parts.phase.textContent = t(lang, "phase", state.phase);
  parts.a.classList.toggle("card--live", IN_PLAY.has(state.phase));
  if (entry.count != null) entry.viewers?.update(entry.count);
  parts.a.setAttribute("aria-label", [
    `${model.teamName("home")} – ${model.teamName("away")}`,
    started ? `${state.score.home}–${state.score.away}` : "",
    t(lang, "phase", state.phase),
  ].filter(Boolean).join(", "));
}

function render() {
  const groups = { live: [], upcoming: [], finished: [] };
  for (const entry of entries.values()) groups[group(entry.model.state)].push(entry);
  groups.upcoming.sort((x, y) => kickoffMs(x.model) - kickoffMs(y.model));
  groups.finished.sort((x, y) => kickoffMs(y.model) - kickoffMs(x.model));
  groups.live.sort((x, y) => kickoffMs(x.model) - kickoffMs(y.model));
  const sections = [];
  for (const [key, label] of [["live", "liveNow"], ["upcoming", "upcoming"], ["finished", "finished"]]) {
    if (!groups[key].length) continue;
    const section = el("section", "list-group");
    const id = `group-${key}`;
    const h = el("h2", "", t(lang, "ui", label));
    h.id = id;
    section.setAttribute("aria-labelledby", id);
    const ul = el("ul", "cards");
    for (const entry of groups[key]) {
      ul.append(buildCard(entry));
      updateCard(entry);
      entry.group = key;
    }
    section.append(h, ul);
    sections.push(section);
  }
  if (!sections.length) sections.push(el("p", "empty-note", t(lang, "ui", "noMatches")));
  listRoot.replaceChildren(...sections);
}

function addEntry(id) {
  const entry = { model: new MatchModel(), startAt: NaN };
  entry.stopClock = addClock(
    () => ({ state: entry.model.state, startAt: entry.startAt }),
    (clock, state) => {
      if (!entry.parts) return;
      // Kick-off time is in the card's header already; only a match in play has a clock.
      const show = clock.running || (IN_PLAY.has(state.phase) && clock.minute);
      entry.parts.clock.textContent = show ? formatMinute(clock.minute, clock.added) : "";
    },
  );
  entries.set(id, entry);
  return entry;
}

function dropEntry(id) {
  entries.get(id)?.stopClock();
  entries.delete(id);
}

/** Take one summary entry; returns the card's entry, or null when it is not one. */
function take({ match, state, seq, viewers, clock_start: clockStart }) {
  if (!match?.id || !state) return null;
  const entry = entries.get(match.id) || addEntry(match.id);
  entry.model.reset({ match, state, seq, events: [] });
  // When the running period's clock started (ms), so the card's clock runs without events.
  if (clockStart !== undefined) entry.startAt = Number.isFinite(clockStart) ? clockStart : NaN;
  if (Number.isInteger(viewers)) entry.count = viewers;
  return entry;
}

function load(summaries) {
  const seen = new Set();
  for (const summary of summaries) {
    if (take(summary)) seen.add(summary.match.id);
  }
  for (const id of [...entries.keys()]) if (!seen.has(id)) dropEntry(id);
  render();
}

function onMessage(msg) {
  if (msg.op === "summaries" && Array.isArray(msg.matches)) {
    load(msg.matches);
  } else if (msg.op === "summary") {
    const known = entries.has(msg.match?.id);
    const entry = take(msg);
    if (!entry) return;
    // A new match, or one moving between live, upcoming and finished: lay the list out again.
    if (!known || group(entry.model.state) !== entry.group) render();
    else updateCard(entry);
  } else if (msg.op === "gone" && entries.has(msg.id)) {
    dropEntry(msg.id);
    render();
  }
}

let initial = [];
try {
  initial = JSON.parse(document.getElementById("ticker-matches")?.textContent || "{}").matches || [];
} catch {
  initial = [];
}
load(initial);
// The stream's first message replaces the server-rendered list with the current one.
new TickerConnection({ origin: location.origin, list: true, onMessage }).start();
