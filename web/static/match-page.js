// The fan page /matches/{id}: first paint from the served snapshot, then live.

import { mountLive, readSnapshot, transportParam } from "./live.js";
import { observeServerTime } from "./clock.js";
import { pageLang, t } from "./i18n.js";
import { mountViewers } from "./viewers.js";
import { preserveScroll } from "./render.js";
import { buildLineups, buildPinned, renderLineups, renderPinned } from "./lineups.js";

const lang = pageLang();
const part = (name) => document.querySelector(`[data-tk="${name}"]`);
const snapshot = readSnapshot();
const matchId = snapshot?.match?.id || decodeURIComponent(location.pathname.split("/").pop());

observeServerTime(Number(document.documentElement.dataset.serverTime));

const pill = part("pill");
const pillText = part("pill-text");
const feedHeading = document.getElementById("feed-heading");
let unseen = 0;

function feedInView() {
  return part("feed").getBoundingClientRect().top >= -4;
}

function showPill() {
  pillText.textContent = unseen === 1 ? t(lang, "ui", "newEvents1") : t(lang, "ui", "newEventsN", { n: unseen });
  pill.hidden = unseen === 0;
}

pill.addEventListener("click", () => {
  unseen = 0;
  showPill();
  const smooth = !matchMedia("(prefers-reduced-motion: reduce)").matches;
  feedHeading.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
  feedHeading.focus({ preventScroll: true });
});

addEventListener("scroll", () => {
  if (unseen && feedInView()) {
    unseen = 0;
    showPill();
  }
}, { passive: true });

// Lineups and pinned events sit above the feed; the server may have painted them already.
const feedSection = document.querySelector(".feed-section");
const pinned = part("pinned") || feedSection.before(buildPinned(document, lang)) || part("pinned");
const lineups = part("lineups") || pinned.before(buildLineups(document, lang)) || part("lineups");

function renderAround(model) {
  // Both sit above the feed: keep the reader's place in it.
  preserveScroll(part("feed"), () => {
    renderLineups(lineups, model, lang);
    renderPinned(pinned, model, lang);
  });
}

let live = null;
live = mountLive({
  origin: location.origin,
  matchId,
  lang,
  snapshot,
  transport: transportParam(),
  onViewers: mountViewers(part("viewers"), lang).update,
  scoreboard: part("scoreboard"),
  feed: part("feed"),
  empty: part("empty"),
  status: document.querySelector(".conn"),
  announce: part("announce"),
  stats: part("stats"),
  summary: part("summary"),
  onChange({ kind, scrolled }) {
    if (live) renderAround(live.model);
    if (kind === "add" && scrolled) {
      unseen += 1;
      showPill();
    }
    if (live) {
      const { model } = live;
      const { home, away } = model.state.score;
      document.title = `${home}–${away} · ${model.teamName("home")} – ${model.teamName("away")}`;
    }
  },
});

renderAround(live.model);

// For people debugging a page in devtools; nothing depends on it.
window.ticker = live;
