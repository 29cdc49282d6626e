// <ticker-feed match="ID" lang="da|en" theme="light|dark|auto" compact limit="10">
//
// One line for a partner page:
//   <script type="module" src="https://TICKER/embed.js"></script>
//   <ticker-feed match="fck-ssc-2026-11-25"></ticker-feed>
// It connects to the origin it was loaded from, renders into its own shadow root (so the
// partner's CSS cannot break it, and it works inside other components' shadow roots too),
// and follows its attributes: change one and it re-renders or reconnects.
// Style hooks: --tk-* custom properties (they inherit in) and
// ::part(scoreboard|stats|summary|lineups|pinned|feed|event). `compact` leaves the stats panel out.

import { mountLive } from "./static/live.js";
import { mountViewers } from "./static/viewers.js";
import { pickLang, t } from "./static/i18n.js";
import { Scoreboard } from "./static/render.js";
import { buildStats, buildSummary } from "./static/facts.js";
import { buildLineups, buildPinned, renderLineups, renderPinned } from "./static/lineups.js";

const ORIGIN = new URL(import.meta.url).origin;
const STYLESHEET = new URL("./static/feed.css", import.meta.url).href;

class TickerFeed extends HTMLElement {
  static observedAttributes = ["match", "lang", "theme", "compact", "limit"];

  connectedCallback() {
    this._connected = true;
    this._mount();
  }

  disconnectedCallback() {
    this._connected = false;
    this._unmount();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (!this._connected || oldValue === newValue) return;
    if (name === "theme") {
      this._root?.setAttribute("data-theme", this._theme());
      return;
    }
    // lang, compact and limit change every item; match changes everything.
    this._unmount();
    this._mount();
  }

  /** The live match model (for partners who want to read the score from script). */
  get model() {
    return this._live?.model ?? null;
  }

  _theme() {
    const theme = this.getAttribute("theme");
    return theme === "light" || theme === "dark" ? theme : "auto";
  }

  _mount() {
    const matchId = (this.getAttribute("match") || "").trim();
    const lang = pickLang(this.getAttribute("lang") || document.documentElement.lang);
    const compact = this.hasAttribute("compact") && this.getAttribute("compact") !== "false";
    const limit = Math.max(0, Number.parseInt(this.getAttribute("limit") || "0", 10) || 0);
    const shadow = this.shadowRoot || this.attachShadow({ mode: "open" });

    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = STYLESHEET;
    const root = document.createElement("div");
    root.className = compact ? "tk tk--element tk--compact" : "tk tk--element";
    root.setAttribute("data-theme", this._theme());
    root.setAttribute("data-loading", "");
    // Show once styled, or anyway if the stylesheet cannot load.
    const show = () => root.removeAttribute("data-loading");
    link.addEventListener("load", show);
    link.addEventListener("error", show);
    setTimeout(show, 3000);

    const board = Scoreboard.build(document, "h2");
    const foot = document.createElement("p");
    foot.className = "tk-foot";
    const status = document.createElement("span");
    status.className = "conn";
    status.setAttribute("part", "status");
    const dot = document.createElement("span");
    dot.className = "conn-dot";
    dot.setAttribute("aria-hidden", "true");
    const statusText = document.createElement("span");
    statusText.dataset.tk = "status-text";
    status.append(dot, statusText);
    const full = document.createElement("a");
    full.href = `${ORIGIN}/matches/${encodeURIComponent(matchId)}${lang === "en" ? "?lang=en" : ""}`;
    full.target = "_blank";
    full.rel = "noopener";
    full.textContent = `${t(lang, "ui", "openFull")} ↗`;
    const viewers = document.createElement("span");
    viewers.setAttribute("part", "viewers");
    foot.append(status, viewers, full);

    const feed = document.createElement("ol");
    feed.className = "feed";
    feed.dataset.tk = "feed";
    feed.setAttribute("part", "feed");
    feed.setAttribute("aria-label", t(lang, "ui", "events"));
    const empty = document.createElement("p");
    empty.className = "feed-empty";
    empty.dataset.tk = "empty";
    empty.textContent = t(lang, "ui", "noEvents");
    const announce = document.createElement("div");
    announce.className = "sr-only";
    announce.setAttribute("aria-live", "polite");
    announce.setAttribute("aria-atomic", "true");

    const stats = compact ? null : buildStats(document, lang);
    const summary = buildSummary(document);
    const lineups = buildLineups(document, lang);
    const pinned = buildPinned(document, lang);
    root.append(...[board, foot, stats, summary, lineups, pinned, feed, empty, announce].filter(Boolean));
    shadow.replaceChildren(link, root);
    this._root = root;

    if (!matchId) {
      status.dataset.status = "gone";
      statusText.textContent = t(lang, "status", "gone");
      return;
    }
    this._live = mountLive({
      origin: ORIGIN,
      matchId,
      lang,
      limit,
      compact,
      scoreboard: board,
      feed,
      empty,
      status,
      announce,
      stats,
      summary,
      decorate: (li) => li.setAttribute("part", "event"),
      onViewers: mountViewers(viewers, lang).update,
      onChange: () => {
        if (!this._live) return;
        renderLineups(lineups, this._live.model, lang);
        renderPinned(pinned, this._live.model, lang);
      },
    });
  }

  _unmount() {
    this._live?.stop();
    this._live = null;
  }
}

if (!customElements.get("ticker-feed")) customElements.define("ticker-feed", TickerFeed);

export { TickerFeed };
