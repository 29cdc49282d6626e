// One match as a client holds it: metadata, state (always the server's, never computed
// here) and the live events in log order. Applying an op returns what changed.

import { PERIODS, PERIOD_START } from "./clock.js";

export class MatchModel {
  constructor() {
    this.match = null;
    this.state = { score: { home: 0, away: 0 }, phase: "pre_match", minute: 0, added: 0 };
    this.events = new Map(); // id -> event, in log order
    this.lineups = { home: null, away: null }; // protocol v1.1; null until set
    this.seq = "";
  }

  reset(snapshot) {
    this.match = snapshot.match || this.match;
    if (snapshot.state) this.state = snapshot.state;
    this.events = new Map((snapshot.events || []).map((e) => [e.id, e]));
    if (snapshot.lineups) this.lineups = snapshot.lineups;
    this.seq = snapshot.seq || "";
  }

  /** Apply one op; returns {kind, event?, id?} or null when it changed nothing. */
  apply(op) {
    this.seq = op.seq || this.seq;
    if (op.state) this.state = op.state;
    switch (op.op) {
      case "add":
        this.events.set(op.event.id, op.event);
        return { kind: "add", event: op.event };
      case "update":
        if (!this.events.has(op.event.id)) {
          this.events.set(op.event.id, op.event);
          return { kind: "add", event: op.event };
        }
        this.events.set(op.event.id, op.event);
        return { kind: "update", event: op.event };
      case "remove":
        if (!this.events.delete(op.id)) return { kind: "state" };
        return { kind: "remove", id: op.id };
      case "match":
        this.match = op.match;
        return { kind: "match" };
      case "lineups":
        this.lineups = op.lineups || this.lineups;
        return { kind: "lineups" };
      default:
        return null;
    }
  }

  /**
   * When the running period's clock started (ms), or NaN. Counted from the `at` of the event
   * that started the period, moved back when a later event of the period carries a minute
   * ahead of that count (reporters' minutes win). The server's rule: ticker/state.py `clock`.
   */
  periodStart() {
    const period = PERIODS[this.state.phase];
    let start = NaN;
    for (const event of this.events.values()) {
      if (PERIOD_START[event.type] === this.state.phase) {
        start = Date.parse(event.at);
      } else if (period && Number.isFinite(start)) {
        const played = Math.max(0, event.minute + (event.added || 0) - period[0] - 1);
        start = Math.min(start, Date.parse(event.at) - played * 60000);
      }
    }
    return start;
  }

  /** The id of the live event that began the shoot-out, or null. */
  shootoutStart() {
    for (const event of this.events.values()) if (event.type === "penalty_shootout") return event.id;
    return null;
  }

  /** Ids of the live events logged after the shoot-out began (its kicks, and the end). */
  shootoutIds() {
    const ids = new Set();
    let started = false;
    for (const event of this.events.values()) {
      if (started) ids.add(event.id);
      else started = event.type === "penalty_shootout";
    }
    return ids;
  }

  /** Events newest first. */
  newestFirst() {
    return [...this.events.values()].reverse();
  }

  teamName(side) {
    return this.match?.[side]?.name || (side === "home" ? "Home" : "Away");
  }
}

export const IN_PLAY = new Set(["first_half", "half_time", "second_half", "extra_time", "penalties"]);
