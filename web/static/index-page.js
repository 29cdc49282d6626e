// The match list /: live matches first, each card kept current over its own connection.

import { TickerConnection } from "./connection.js";
import { addClock, formatMinute } from "./clock.js";
import { MatchModel, IN_PLAY } from "./model.js";
import { locale, pageLang, t } from "./i18n.js";
import { mountViewers } from "./viewers.js";

const lang = pageLang();
const listRoot = document.querySelector('[data-tk="list"]');
const langQuery = lang === "en" ? "?lang=en" : "";
// Cards that get a live connection (the rest refresh with the list every minute).
const MAX_LIVE = 24;
const REFRESH_MS = 30000;

const entries = new Map(); // id -> {model, conn, card, stopClock}

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

function connect(entry) {
  if (entry.conn || [...entries.values()].filter((e) => e.conn).length >= MAX_LIVE) return;
  entry.conn = new TickerConnection({
    origin: location.origin,
    matchId: entry.model.match.id,
    onViewers: (n) => entry.viewers?.update((entry.count = n)),
    onMessage(msg) {
      if (msg.op === "snapshot") entry.model.reset(msg);
      else entry.model.apply(msg);
      if (group(entry.model.state) !== entry.group) render();
      else updateCard(entry);
    },
  });
  entry.conn.start();
  entry.stopClock = addClock(
    () => ({ state: entry.model.state, startAt: entry.model.periodStart() }),
    (clock, state) => {
      if (!entry.parts) return;
      // Kick-off time is in the card's header already; only a match in play has a clock.
      const show = clock.running || (IN_PLAY.has(state.phase) && clock.minute);
      entry.parts.clock.textContent = show ? formatMinute(clock.minute, clock.added) : "";
    },
  );
}

function load(summaries) {
  const seen = new Set();
  for (const { match, state, seq, viewers } of summaries) {
    if (!match?.id) continue;
    seen.add(match.id);
    let entry = entries.get(match.id);
    if (!entry) {
      entry = { model: new MatchModel() };
      entries.set(match.id, entry);
    }
    // A connected card is kept current by its stream; the list only fills the others.
    if (!entry.conn) entry.model.reset({ match, state, seq, events: [] });
    if (!entry.conn) entry.count = viewers;
  }
  for (const [id, entry] of entries) {
    if (!seen.has(id)) {
      entry.conn?.stop();
      entry.stopClock?.();
      entries.delete(id);
    }
  }
  render();
  // Live matches get the connections first, then the next to kick off.
  const rank = { live: 0, upcoming: 1, finished: 2 };
  const order = [...entries.values()]
    .filter((e) => e.model.state.phase !== "full_time")
    .sort((x, y) => rank[group(x.model.state)] - rank[group(y.model.state)]
      || kickoffMs(x.model) - kickoffMs(y.model));
  for (const entry of order) connect(entry);
}

async function refresh() {
  try {
    const res = await fetch("/api/matches", { headers: { Accept: "application/json" } });
    if (res.ok) load((await res.json()).matches || []);
  } catch {
    // Offline: the cards' own connections keep retrying; try the list again later.
  }
}

let initial = [];
try {
  initial = JSON.parse(document.getElementById("ticker-matches")?.textContent || "{}").matches || [];
} catch {
  initial = [];
}
load(initial);
setInterval(refresh, REFRESH_MS);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
});
