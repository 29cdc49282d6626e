// Turning a match into DOM. Every piece of reporter or match text goes in through
// textContent (or an attribute), never innerHTML: event text is plain text by protocol.

import { detailLabel, eventLabel, locale, t } from "./i18n.js";
import { formatMinute } from "./clock.js";
import { renderBoardFacts } from "./facts.js";

const SVG = "http://www.w3.org/2000/svg";

// Icons: constant path data only, drawn in currentColor unless a fill is given.
const ICONS = {
  ball: [["circle", { cx: 12, cy: 12, r: 9 }],
    ["path", { d: "M12 7.5l3.6 2.6-1.4 4.2H9.8L8.4 10.1z", fill: "currentColor" }],
    ["path", { d: "M12 3v4.5M15.6 10.1l4.8-1.6M14.2 14.3l2.8 4M9.8 14.3L7 18.3M8.4 10.1L3.6 8.5" }]],
  card: [["rect", { x: 7, y: 4, width: 10, height: 16, rx: 1.5, fill: "currentColor", stroke: "none" }]],
  glove: [["path", { d: "M12 3l7 3v5c0 4.5-3 8-7 10-4-2-7-5.5-7-10V6z" }]],
  miss: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M8 16l8-8M11 8h5v5" }]],
  flag: [["path", { d: "M6 21V3M6 4h11l-3 4 3 4H6" }]],
  swap: [["path", { d: "M7 20V5M3.5 8.5L7 5l3.5 3.5M17 4v15M13.5 15.5L17 19l3.5-3.5" }]],
  whistle: [["circle", { cx: 12, cy: 13.5, r: 7.5 }], ["path", { d: "M12 13.5V9.5M9.5 2.5h5M12 2.5V6M18.5 6.5l1.5-1.5" }]],
  screen: [["rect", { x: 3, y: 5, width: 18, height: 12, rx: 2 }], ["path", { d: "M8 21h8M12 17v4" }]],
  cross: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M12 7.5v9M7.5 12h9" }]],
  foul: [["path", { d: "M12 3l9.5 17h-19z" }], ["path", { d: "M12 10v4.5M12 17.5h.01" }]],
  bubble: [["path", { d: "M4 5h16v11H9l-5 4z" }]],
  net: [["path", { d: "M3 19V6h18v13M3 10h18M3 14h18M8 6v13M13 6v13M18 6v13" }]],
};
const ICON_OF = {
  goal: "ball", miss: "miss", save: "glove", offside: "flag", yellow_card: "card",
  red_card: "card", substitution: "swap", corner: "flag", foul: "foul", var: "screen",
  injury: "cross", kickoff: "whistle", half_time: "whistle", second_half: "whistle",
  extra_time: "whistle", full_time: "whistle", penalty_shootout: "net", comment: "bubble",
};

export function icon(doc, type) {
  const svg = doc.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "tk-icon");
  for (const [tag, attrs] of ICONS[ICON_OF[type] || "bubble"]) {
    const el = doc.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    svg.append(el);
  }
  return svg;
}

function el(doc, tag, className, text) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null && text !== "") node.textContent = String(text);
  return node;
}

/** The event as a list item: minute, icon, label, team, players, text. */
export function renderEvent(doc, event, { lang, match, compact = false, kick = false }) {
  const li = el(doc, "li", `ev ev--${event.type}`);
  if (kick) li.classList.add("ev--kick");
  if (event.type === "goal" && event.detail === "own_goal") li.classList.add("ev--own-goal");
  if (event.team === "home" || event.team === "away") li.classList.add(`ev--${event.team}`);
  li.id = `e-${event.id}`; // the fragment JSON-LD and shared links lead to
  li.dataset.id = event.id;
  li.dataset.type = event.type;
  li.dataset.rev = String(event.rev ?? 1);

  li.append(el(doc, "span", "ev-min", formatMinute(event.minute ?? 0, event.added ?? 0)));
  const badge = el(doc, "span", "ev-icon");
  badge.append(icon(doc, event.type));
  li.append(badge);

  const body = el(doc, "div", "ev-body");
  const head = el(doc, "p", "ev-head");
  head.append(el(doc, "strong", "ev-label", eventLabel(lang, event, { kick })));
  const team = event.team ? match?.[event.team]?.name : "";
  if (team) head.append(el(doc, "span", "ev-team", team));
  const detail = event.detail && event.detail !== "own_goal" ? detailLabel(lang, event.detail) : "";
  if (detail) head.append(el(doc, "span", "ev-detail", detail));
  body.append(head);

  if (event.type === "substitution" && (event.player_in || event.player_out)) {
    const who = el(doc, "p", "ev-who ev-sub");
    if (event.player_in) {
      const on = el(doc, "span", "ev-in");
      on.append(el(doc, "span", "ev-key", `${t(lang, "ui", "playerIn")}: `), event.player_in);
      who.append(on);
    }
    if (event.player_out) {
      const off = el(doc, "span", "ev-out");
      off.append(el(doc, "span", "ev-key", `${t(lang, "ui", "playerOut")}: `), event.player_out);
      who.append(off);
    }
    body.append(who);
  } else if (event.player) {
    const who = el(doc, "p", "ev-who");
    who.append(el(doc, "span", "ev-player", event.player));
    if (event.assist) {
      const assist = el(doc, "span", "ev-assist");
      assist.append(`${t(lang, "ui", "assist")}: `, event.assist);
      who.append(assist);
    }
    body.append(who);
  }
  if (event.text) body.append(el(doc, "p", compact ? "ev-text ev-text--clamp" : "ev-text", event.text));
  if ((event.rev ?? 1) > 1) body.append(el(doc, "span", "ev-rev", t(lang, "ui", "corrected")));
  li.append(body);
  return li;
}

/** Keep what the reader is looking at in place while `mutate` changes the list above it. */
export function preserveScroll(list, mutate) {
  const win = list.ownerDocument.defaultView;
  if (!win || list.getBoundingClientRect().top >= 0) {
    mutate();
    return false;
  }
  let anchor = null;
  let before = 0;
  for (const item of list.children) {
    const rect = item.getBoundingClientRect();
    if (rect.bottom > 0) {
      anchor = item;
      before = rect.top;
      break;
    }
  }
  const fallback = anchor?.nextElementSibling;
  mutate();
  const target = anchor?.isConnected ? anchor : fallback?.isConnected ? fallback : null;
  if (target) {
    const delta = target.getBoundingClientRect().top - before;
    if (delta) win.scrollBy(0, delta);
  }
  return true;
}

/** The feed, newest first, applied op by op so items keep their identity. */
export class FeedView {
  constructor(list, { lang, model, limit = 0, compact = false, decorate = null, empty = null }) {
    this.list = list;
    this.doc = list.ownerDocument;
    this.lang = lang;
    this.model = model;
    this.limit = limit;
    this.compact = compact;
    this.decorate = decorate;
    this.empty = empty;
    this.items = new Map();
  }

  _node(event, kicks = this.model.shootoutIds()) {
    const li = renderEvent(this.doc, event, {
      lang: this.lang, match: this.model.match, compact: this.compact, kick: kicks.has(event.id),
    });
    if (this.decorate) this.decorate(li, event);
    return li;
  }

  reset() {
    this.items.clear();
    const kicks = this.model.shootoutIds();
    const nodes = this.model.newestFirst().map((event) => {
      const li = this._node(event, kicks);
      this.items.set(event.id, li);
      return li;
    });
    preserveScroll(this.list, () => this.list.replaceChildren(...nodes));
    this._after();
  }

  /** Returns whether the reader was scrolled down into the feed when it arrived. */
  add(event) {
    const li = this._node(event);
    li.classList.add("ev--new");
    this.items.set(event.id, li);
    const scrolled = preserveScroll(this.list, () => this.list.prepend(li));
    this._after();
    return scrolled;
  }

  update(event) {
    const old = this.items.get(event.id);
    if (!old) return this.add(event);
    const li = this._node(event);
    // The same element in the same place gets the corrected content.
    preserveScroll(this.list, () => {
      old.className = li.className;
      old.classList.add("ev--changed");
      Object.assign(old.dataset, li.dataset);
      old.replaceChildren(...li.childNodes);
    });
    this._after();
    return false;
  }

  remove(id) {
    const old = this.items.get(id);
    if (!old) return;
    this.items.delete(id);
    preserveScroll(this.list, () => old.remove());
    this._after();
  }

  _after() {
    if (this.limit > 0) {
      let shown = 0;
      for (const li of this.list.children) li.hidden = ++shown > this.limit;
    }
    if (this.empty) this.empty.hidden = this.items.size > 0;
  }
}

/** The score header: team names, score, phase and the ticking clock. */
export class Scoreboard {
  constructor(root, { lang }) {
    this.root = root;
    this.lang = lang;
    this.doc = root.ownerDocument;
    this.part = (name) => root.querySelector(`[data-tk="${name}"]`);
    this.lastScore = null;
  }

  /** Build the header's markup into `root` (pages render it on the server instead). */
  static build(doc, headingTag = "h1") {
    const root = el(doc, "header", "sb");
    root.dataset.tk = "scoreboard";
    root.setAttribute("part", "scoreboard");
    const meta = el(doc, "p", "sb-meta");
    meta.append(el(doc, "span", "sb-comp"), el(doc, "span", "sb-venue"));
    meta.children[0].dataset.tk = "competition";
    meta.children[1].dataset.tk = "venue";
    const title = el(doc, headingTag, "sb-title");
    title.dataset.tk = "title";
    const grid = el(doc, "div", "sb-grid");
    for (const side of ["home", "away"]) {
      const team = el(doc, "div", `sb-team sb-team--${side}`);
      const crest = el(doc, "span", "sb-crest");
      crest.dataset.tk = `${side}-short`;
      crest.setAttribute("aria-hidden", "true");
      const row = el(doc, "span", "sb-name-row");
      const name = el(doc, "span", "sb-name");
      name.dataset.tk = `${side}-name`;
      const reds = el(doc, "span", "sb-reds");
      reds.dataset.tk = `${side}-reds`;
      row.append(name, reds);
      team.append(crest, row);
      grid.append(team);
      if (side === "home") {
        const score = el(doc, "div", "sb-score");
        score.dataset.tk = "score";
        const said = el(doc, "span", "sr-only");
        said.dataset.tk = "score-text";
        const shown = el(doc, "span", "sb-digits");
        shown.setAttribute("aria-hidden", "true");
        const home = el(doc, "span", "sb-goals", "0");
        home.dataset.tk = "home-goals";
        const away = el(doc, "span", "sb-goals", "0");
        away.dataset.tk = "away-goals";
        shown.append(home, el(doc, "span", "sb-dash", "–"), away);
        score.append(said, shown);
        grid.append(score);
      }
    }
    const status = el(doc, "p", "sb-status");
    const clock = el(doc, "span", "sb-clock");
    clock.dataset.tk = "clock";
    const phase = el(doc, "span", "sb-phase");
    phase.dataset.tk = "phase";
    status.append(clock, phase);
    const pens = el(doc, "p", "sb-pens");
    pens.dataset.tk = "pens";
    pens.hidden = true;
    const facts = el(doc, "div", "sb-facts");
    for (const side of ["home", "away"]) {
      const box = el(doc, "div", `sb-side sb-side--${side}`);
      box.dataset.tk = `${side}-facts`;
      facts.append(box);
    }
    root.append(meta, title, grid, pens, status, facts);
    return root;
  }

  setText(name, text) {
    const node = this.part(name);
    if (node && node.textContent !== text) node.textContent = text;
  }

  update(model) {
    const { match, state } = model;
    const home = model.teamName("home");
    const away = model.teamName("away");
    this.setText("title", `LIVE: ${home} – ${away}`);
    this.setText("home-name", home);
    this.setText("away-name", away);
    this.setText("home-short", match?.home?.short || home.slice(0, 3).toUpperCase());
    this.setText("away-short", match?.away?.short || away.slice(0, 3).toUpperCase());
    this.setText("competition", match?.competition || "");
    this.setText("venue", match?.venue || "");
    const { home: h, away: a } = state.score;
    this.setText("home-goals", String(h));
    this.setText("away-goals", String(a));
    this.setText("score-text", `${t(this.lang, "ui", "score")}: ${home} ${h}, ${away} ${a}`);
    const key = `${h}-${a}`;
    if (this.lastScore !== null && this.lastScore !== key) {
      const score = this.part("score");
      score?.classList.remove("sb-score--flash");
      void score?.offsetWidth; // restart the animation
      score?.classList.add("sb-score--flash");
    }
    this.lastScore = key;
    this.setText("phase", t(this.lang, "phase", state.phase));
    this.root.dataset.phase = state.phase;
    renderBoardFacts(this.root, model, this.lang);
  }

  /** Called by the shared clock timer. */
  renderClock(clock, state, kickoff) {
    let text;
    if (clock.running) text = formatMinute(clock.minute, clock.added);
    else if (state.phase === "pre_match") text = kickoffText(this.lang, kickoff);
    else if (state.phase === "full_time" || state.phase === "penalties" || !clock.minute) text = "";
    else text = formatMinute(clock.minute, clock.added);
    this.setText("clock", text);
    this.root.classList.toggle("sb--running", clock.running);
  }
}

export function kickoffText(lang, kickoff) {
  const when = Date.parse(kickoff || "");
  if (!Number.isFinite(when)) return "";
  const fmt = new Intl.DateTimeFormat(locale(lang), {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  return t(lang, "ui", "kickoffAt", { time: fmt.format(when) });
}

/** One polite live region; bursts (a catch-up after a reconnect) are said as one line. */
export function createAnnouncer(region, lang) {
  let queue = [];
  let timer = 0;
  return (text) => {
    queue.push(text);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const said = queue.length === 1
        ? queue[0]
        : t(lang, "ui", "moreNew", { n: queue.length, last: queue[queue.length - 1] });
      queue = [];
      region.textContent = said;
    }, 250);
  };
}

/** What the live region says for a new event. */
export function eventSentence(lang, event, model) {
  const kick = model.shootoutIds().has(event.id);
  const parts = [formatMinute(event.minute ?? 0, event.added ?? 0), eventLabel(lang, event, { kick })];
  if (event.team) parts.push(model.teamName(event.team));
  const who = event.type === "substitution"
    ? [event.player_in, event.player_out].filter(Boolean).join(" / ")
    : event.player;
  if (who) parts.push(who);
  let sentence = parts.join(", ");
  if (event.text) sentence += `. ${event.text}`;
  if (kick && model.state.penalties) {
    const p = model.state.penalties;
    sentence += `. ${t(lang, "phase", "penalties")} ${p.home}–${p.away}`;
  } else if (event.type === "goal") {
    const s = model.state.score;
    sentence += `. ${t(lang, "ui", "score")} ${s.home}–${s.away}`;
  }
  return sentence;
}
