// Wires one match together: connection -> model -> scoreboard, feed, clock, live region.
// Used by the fan page, the iframe embed, <ticker-feed> and the reporter console.

import { TickerConnection } from "./connection.js";
import { addClock, observeServerTime, refreshClocks } from "./clock.js";
import { MatchModel } from "./model.js";
import { FeedView, Scoreboard, createAnnouncer, eventSentence, preserveScroll } from "./render.js";
import { t } from "./i18n.js";
import { renderStats, renderSummary } from "./facts.js";

// Ops that arrive this soon after a (re)connect are catch-up, not news of right now.
const CATCH_UP_MS = 2000;

/**
 * @param {object} o
 * @param {Element} o.scoreboard  a Scoreboard root (server-rendered or Scoreboard.build)
 * @param {Element} o.feed        the <ol> for events
 * @param {Element} [o.empty]     shown while there are no events
 * @param {Element} [o.status]    gets data-status and a label
 * @param {Element} [o.announce]  an aria-live region
 * @param {Element} [o.stats]     the stats <details> (facts.js buildStats, or server-rendered)
 * @param {Element} [o.summary]   the full-time summary's section
 * @param {string} o.origin, o.matchId, o.lang
 * @param {object} [o.snapshot]   first paint (server-rendered); connect with since=its seq
 * @param {(info: {kind: string, scrolled: boolean}) => void} [o.onChange]
 * @param {(count: number) => void} [o.onViewers] live viewer counts (viewers.js)
 */
export function mountLive(o) {
  const model = new MatchModel();
  const board = new Scoreboard(o.scoreboard, { lang: o.lang });
  const feed = new FeedView(o.feed, {
    lang: o.lang, model, limit: o.limit || 0, compact: !!o.compact, decorate: o.decorate, empty: o.empty,
  });
  const say = o.announce ? createAnnouncer(o.announce, o.lang) : () => {};
  let connectedAt = 0;

  function showStatus(status) {
    if (status === "live") connectedAt = Date.now();
    if (!o.status) return;
    o.status.dataset.status = status;
    const label = o.status.querySelector("[data-tk=status-text]") || o.status;
    label.textContent = t(o.lang, "status", status);
    o.status.title = label.textContent;
  }

  function render() {
    board.update(model);
    if (o.stats) renderStats(o.stats, model);
    if (o.summary) renderSummary(o.summary, model, o.lang);
    refreshClocks();
  }

  function onMessage(msg) {
    if (msg.op === "snapshot") {
      model.reset(msg);
      // The board, stats and summary above the feed change height too: one anchor for all.
      preserveScroll(o.feed, () => {
        feed.reset();
        render();
      });
      o.onChange?.({ kind: "reset", scrolled: false });
      return;
    }
    const before = `${model.state.score.home}-${model.state.score.away}`;
    const shootout = model.shootoutStart();
    const change = model.apply(msg);
    if (!change) return;
    // The shoot-out's start moved (retracted, or a correction made one): every kick changes.
    const rekick = shootout !== model.shootoutStart() && change.kind !== "add";
    let scrolled = false;
    // A new scorer or red card grows the board above the feed: keep the reader's place.
    preserveScroll(o.feed, () => {
      if (change.kind === "add") {
        scrolled = feed.add(change.event);
        if (Date.now() - connectedAt > CATCH_UP_MS) observeServerTime(Date.parse(change.event.at));
        say(eventSentence(o.lang, change.event, model));
      } else if (change.kind === "update") {
        feed.update(change.event);
      } else if (change.kind === "remove") {
        feed.remove(change.id);
      } else if (change.kind === "match") {
        feed.reset(); // team names appear in every item
      }
      if (rekick) feed.reset();
      render();
    });
    const after = `${model.state.score.home}-${model.state.score.away}`;
    if (change.kind !== "add" && before !== after) {
      say(`${t(o.lang, "ui", "score")} ${model.teamName("home")} ${after.replace("-", "–")} ${model.teamName("away")}`);
    }
    o.onChange?.({ kind: change.kind, scrolled, event: change.event });
  }

  if (o.snapshot) {
    model.reset(o.snapshot);
    feed.reset();
  }
  render();
  const stopClock = addClock(
    () => ({ state: model.state, startAt: model.periodStart() }),
    (clock, state) => {
      board.renderClock(clock, state, model.match?.kickoff);
      o.onClock?.(clock, state);
    },
  );

  const conn = new TickerConnection({
    origin: o.origin,
    matchId: o.matchId,
    since: o.snapshot?.seq,
    onMessage,
    onStatus: (status) => {
      showStatus(status);
      o.onStatus?.(status);
    },
    transport: o.transport,
    onViewers: o.onViewers,
  });
  conn.start();

  return {
    model,
    conn,
    feed,
    board,
    stop() {
      conn.stop();
      stopClock();
    },
  };
}

/** The snapshot a page was served with, or null. */
export function readSnapshot(doc = document) {
  const node = doc.getElementById("ticker-snapshot");
  if (!node) return null;
  try {
    return JSON.parse(node.textContent);
  } catch {
    return null;
  }
}

/** ?transport=sse|ws forces one (for diagnosing a network); anything else: auto. */
export function transportParam() {
  const value = new URLSearchParams(location.search).get("transport");
  return value === "sse" || value === "ws" ? value : "auto";
}
