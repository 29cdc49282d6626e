// The live connection to one match (or, with `list`, to the match list's summaries): WebSocket first, SSE when a WebSocket cannot be
// opened, resume with `since` after every drop, full-jitter exponential backoff.
// It knows nothing about rendering: it hands each new message to `onMessage` and each
// status change to `onStatus` ("connecting", "live", "reconnecting", "offline", "gone").

const OPS = new Set(["snapshot", "add", "update", "remove", "match", "lineups"]);
// The match list stream's messages (/ws/matches, /sse/matches): outside any log, no seq.
const LIST_OPS = ["summaries", "summary", "gone"];
const SEQ_RE = /^(\d{1,20})-(\d{1,20})$/;

/** [ms, n] of a seq, or null. Numbers, not strings: "…-10" comes after "…-9". */
export function parseSeq(seq) {
  const m = SEQ_RE.exec(String(seq ?? ""));
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** Whether seq `a` comes after seq `b`; anything valid comes after "" (nothing yet). */
export function seqNewer(a, b) {
  const x = parseSeq(a);
  if (!x) return false;
  const y = parseSeq(b);
  if (!y) return true;
  return x[0] > y[0] || (x[0] === y[0] && x[1] > y[1]);
}

/** Full jitter: a random delay between 0 and min(cap, base * 2^attempt). */
export function backoffDelay(attempt, { base = 500, cap = 30000, random = Math.random } = {}) {
  return Math.floor(random() * Math.min(cap, base * 2 ** Math.min(attempt, 30)));
}

// A WebSocket that has not opened after this long is given up on (a proxy that hangs).
const OPEN_TIMEOUT = 10000;
// A connection that stayed up this long resets the backoff.
const STABLE_AFTER = 5000;
// Failed WebSocket attempts in a row before the next attempt uses SSE.
const WS_FAILS_BEFORE_SSE = 2;
// Failed attempts in a row after which the indicator says offline, not reconnecting.
const FAILS_BEFORE_OFFLINE = 5;
// A tab hidden longer than this may hold a socket a phone silently lost: reconnect.
const HIDDEN_RECONNECT = 30000;
// 1012: the server is restarting. It closes its fans spread over its drain window; each
// waits a random 0-5 s more (never over the backoff cap), so the other servers see a
// trickle of resumes, not a spike.
const CLOSE_RESTART = 1012;
const RESTART_JITTER = 5000;

export class TickerConnection {
  /**
   * @param {object} o
   * @param {string} o.origin  e.g. "https://ticker.example" (the page's or the embed's)
   * @param {string} [o.matchId] (not with `list`)
   * @param {boolean} [o.list] the match list stream instead: every message to `onMessage`,
   *   and a fresh `summaries` on each connect (no `since`)
   * @param {string} [o.since] the seq of the snapshot already shown (server-rendered)
   * @param {(msg: object) => void} o.onMessage
   * @param {(status: string) => void} [o.onStatus]
   * @param {"auto"|"ws"|"sse"} [o.transport]
   * @param {(count: number) => void} [o.onViewers] asks for viewer counts (`viewers=1`)
   */
  constructor(o) {
    this.origin = o.origin.replace(/\/$/, "");
    this.matchId = o.matchId;
    this.list = Boolean(o.list);
    this.seq = o.since || "";
    this.onMessage = o.onMessage;
    this.onStatus = o.onStatus || (() => {});
    this.onViewers = o.onViewers || null;
    this.transport = o.transport || "auto";
    this.WebSocket = "WebSocket" in o ? o.WebSocket : globalThis.WebSocket;
    this.EventSource = "EventSource" in o ? o.EventSource : globalThis.EventSource;
    this.random = o.random || Math.random;
    this.base = o.base ?? 500;
    this.cap = o.cap ?? 30000;
    this.status = "";
    this.kind = ""; // "ws" or "sse" while a transport is in use
    this.attempt = 0; // failed attempts since the last stable connection
    this.wsFails = 0;
    this.stopped = true;
    this.socket = null;
    this.timer = 0;
    this.openTimer = 0;
    this.stableTimer = 0;
    this.hiddenAt = 0;
    this.openedAt = 0;
    this._onVisibility = () => this._visibility();
    this._onOnline = () => this.reconnectNow();
    this._onOffline = () => this._setStatus("offline");
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    if (typeof document !== "undefined") {
      document.addEventListener("visibilitychange", this._onVisibility);
    }
    if (typeof window !== "undefined") {
      window.addEventListener("online", this._onOnline);
      window.addEventListener("offline", this._onOffline);
    }
    this._setStatus("connecting");
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this._teardown();
    if (typeof document !== "undefined") {
      document.removeEventListener("visibilitychange", this._onVisibility);
    }
    if (typeof window !== "undefined") {
      window.removeEventListener("online", this._onOnline);
      window.removeEventListener("offline", this._onOffline);
    }
  }

  /** Drop any wait and connect at once (tab visible again, network back). */
  reconnectNow() {
    if (this.stopped || this.status === "gone") return;
    clearTimeout(this.timer);
    this.timer = 0;
    this.attempt = 0;
    this._teardown();
    this._connect();
  }

  _visibility() {
    if (document.visibilityState === "hidden") {
      this.hiddenAt = Date.now();
      return;
    }
    const longHidden = this.hiddenAt && Date.now() - this.hiddenAt > HIDDEN_RECONNECT;
    this.hiddenAt = 0;
    if (this.status !== "live" || longHidden) this.reconnectNow();
  }

  _url(kind) {
    const path = this.list ? `/${kind}/matches` : `/${kind}/matches/${encodeURIComponent(this.matchId)}`;
    const params = new URLSearchParams(this.seq && !this.list ? { since: this.seq } : {});
    if (this.onViewers) params.set("viewers", "1");
    const query = params.toString() ? `?${params}` : "";
    const base = kind === "ws" ? this.origin.replace(/^http/, "ws") : this.origin;
    return base + path + query;
  }

  _pickTransport() {
    if (this.transport === "sse" || !this.WebSocket) return "sse";
    if (this.transport === "ws" || !this.EventSource) return "ws";
    return this.wsFails >= WS_FAILS_BEFORE_SSE ? "sse" : "ws";
  }

  _connect() {
    if (this.stopped) return;
    const kind = this._pickTransport();
    this.kind = kind;
    try {
      if (kind === "ws") this._openWebSocket();
      else this._openEventSource();
    } catch {
      // The constructor itself refused (blocked, unsupported): count it as a failed open.
      this._closed(false, 0);
    }
  }

  _openWebSocket() {
    const ws = new this.WebSocket(this._url("ws"));
    this.socket = ws;
    let opened = false;
    this.openTimer = setTimeout(() => {
      if (this.socket === ws && !opened) {
        this._detach(ws);
        try { ws.close(); } catch { /* already gone */ }
        this._closed(false, 0);
      }
    }, OPEN_TIMEOUT);
    ws.onopen = () => {
      if (this.socket !== ws) return;
      opened = true;
      this.wsFails = 0;
      this._opened();
    };
    ws.onmessage = (e) => {
      if (this.socket === ws) this._receive(e.data);
    };
    ws.onclose = (e) => {
      if (this.socket !== ws) return;
      this._detach(ws);
      this._closed(opened, e.code);
    };
    ws.onerror = () => {}; // a close event always follows
  }

  _openEventSource() {
    const es = new this.EventSource(this._url("sse"));
    this.socket = es;
    let opened = false;
    const receive = (e) => {
      if (this.socket === es) this._receive(e.data);
    };
    for (const name of this.list ? LIST_OPS : OPS) es.addEventListener(name, receive);
    if (this.onViewers) es.addEventListener("viewers", receive);
    es.onmessage = receive;
    es.onopen = () => {
      if (this.socket !== es) return;
      opened = true;
      this._opened();
    };
    es.onerror = () => {
      if (this.socket !== es) return;
      // We resume ourselves (with `since` and backoff), not with EventSource's own retry.
      this._detach(es);
      es.close();
      // An SSE stream that worked ends: give the WebSocket another chance next time.
      if (opened) this.wsFails = 0;
      this._closed(opened, 0);
    };
  }

  _detach(socket) {
    if (this.socket === socket) this.socket = null;
    clearTimeout(this.openTimer);
    clearTimeout(this.stableTimer);
  }

  _teardown() {
    const socket = this.socket;
    if (!socket) return;
    this._detach(socket);
    try { socket.close(); } catch { /* already gone */ }
  }

  _opened() {
    clearTimeout(this.openTimer);
    this.openedAt = Date.now();
    this._setStatus("live");
    this.stableTimer = setTimeout(() => { this.attempt = 0; }, STABLE_AFTER);
  }

  _closed(wasOpen, code) {
    if (this.stopped) return;
    if (code === 4404) {
      this._setStatus("gone");
      return;
    }
    if (!wasOpen && this.kind === "ws") this.wsFails += 1;
    const offline = typeof navigator !== "undefined" && navigator.onLine === false;
    this._setStatus(offline || this.attempt >= FAILS_BEFORE_OFFLINE ? "offline" : "reconnecting");
    let delay;
    if (wasOpen && code === CLOSE_RESTART) {
      // Not a failure: no backoff step, only the jitter.
      delay = Math.floor(this.random() * Math.min(this.cap, RESTART_JITTER));
    } else {
      delay = backoffDelay(this.attempt, { base: this.base, cap: this.cap, random: this.random });
      this.attempt += 1;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = 0;
      this._connect();
    }, delay);
  }

  _receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (this.list) {
      this.onMessage(msg);
      return;
    }
    if (msg.op === "viewers") {
      // Outside the log: no seq, so it never moves the resume cursor.
      if (this.onViewers && Number.isInteger(msg.count)) this.onViewers(msg.count);
      return;
    }
    if (msg.op === "snapshot") {
      // A snapshot is the whole truth at its seq (a fresh stream, or a reset).
      this.seq = typeof msg.seq === "string" ? msg.seq : "";
      this.onMessage(msg);
      return;
    }
    // Already applied (a duplicate after a resume, or a replay): drop it.
    if (!seqNewer(msg.seq, this.seq)) return;
    this.seq = msg.seq;
    if (OPS.has(msg.op)) this.onMessage(msg); // unknown ops are skipped, their seq kept
  }

  _setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.onStatus(status);
  }
}
