// The iframe page /embed/{id}?lang=en&theme=dark&compact=1&limit=10.

import { mountLive, readSnapshot, transportParam } from "./live.js";
import { observeServerTime } from "./clock.js";
import { pageLang } from "./i18n.js";
import { mountViewers } from "./viewers.js";
import { buildLineups, buildPinned, renderLineups, renderPinned } from "./lineups.js";

const root = document.documentElement;
const part = (name) => document.querySelector(`[data-tk="${name}"]`);
const snapshot = readSnapshot();
observeServerTime(Number(root.dataset.serverTime));

const lang = pageLang();

// Lineups and pinned events above the feed (pinned ones are in the server's first paint).
const feedSection = document.querySelector(".feed-section");
const pinned = part("pinned") || feedSection.before(buildPinned(document, lang)) || part("pinned");
const lineups = part("lineups") || pinned.before(buildLineups(document, lang)) || part("lineups");
const around = (model) => {
  renderLineups(lineups, model, lang);
  renderPinned(pinned, model, lang);
};

const live = mountLive({
  origin: location.origin,
  matchId: snapshot?.match?.id || decodeURIComponent(location.pathname.split("/").pop()),
  lang,
  snapshot,
  limit: Number(root.dataset.limit) || 0,
  compact: root.classList.contains("tk--compact"),
  transport: transportParam(),
  scoreboard: part("scoreboard"),
  feed: part("feed"),
  empty: part("empty"),
  status: document.querySelector(".conn"),
  announce: part("announce"),
  stats: part("stats"),
  summary: part("summary"),
  onViewers: mountViewers(part("viewers"), lang).update,
  onChange: () => live && around(live.model),
});
around(live.model);
