// The iframe page /embed/{id}?lang=en&theme=dark&compact=1&limit=10.

import { mountLive, readSnapshot, transportParam } from "./live.js";
import { observeServerTime } from "./clock.js";
import { pageLang } from "./i18n.js";
import { mountViewers } from "./viewers.js";

const root = document.documentElement;
const part = (name) => document.querySelector(`[data-tk="${name}"]`);
const snapshot = readSnapshot();
observeServerTime(Number(root.dataset.serverTime));

const lang = pageLang();

mountLive({
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
});
