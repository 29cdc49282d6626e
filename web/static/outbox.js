// The reporter's outbox: every write waits here (in localStorage, so it survives a reload)
// until the server has answered it. Each item carries its Idempotency-Key from the start,
// so sending it again after a lost answer appends nothing twice. No DOM in here.

const KEY = "ticker-outbox-v1";
const LOCK = "ticker-outbox";

function read() {
  try {
    const items = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(items) ? items : [];
  } catch {
    return [];
  }
}

function write(items) {
  localStorage.setItem(KEY, JSON.stringify(items));
}

/** Change the stored list (read fresh each time: another tab may have changed it). */
function mutate(fn) {
  const items = read();
  const result = fn(items);
  write(items);
  return result;
}

export function items() {
  return read();
}

/**
 * Queue a write; returns the item. `kind`: add | update | remove | lineups (PUT). `ifMatch`: the event's rev
 * the reporter saw (sent as If-Match, so a change made meanwhile is a 409, not overwritten).
 */
export function enqueue({ kind, matchId, eventId = null, body = null, label = "", ifMatch = null }) {
  const item = {
    key: crypto.randomUUID(),
    kind,
    matchId,
    eventId,
    body,
    ifMatch,
    label,
    created: Date.now(),
    state: "pending",
    error: null,
    tries: 0,
  };
  mutate((list) => list.push(item));
  return item;
}

export function drop(key) {
  mutate((list) => {
    const at = list.findIndex((i) => i.key === key);
    if (at >= 0) list.splice(at, 1);
  });
}

function patch(key, fields) {
  mutate((list) => {
    const item = list.find((i) => i.key === key);
    if (item) Object.assign(item, fields);
  });
}

export function request(item) {
  if (item.kind === "lineups") {
    return { method: "PUT", url: `/api/matches/${encodeURIComponent(item.matchId)}/lineups`, body: item.body };
  }
  const base = `/api/matches/${encodeURIComponent(item.matchId)}/events`;
  if (item.kind === "add") return { method: "POST", url: base, body: item.body };
  const url = `${base}/${encodeURIComponent(item.eventId)}`;
  return item.kind === "update" ? { method: "PATCH", url, body: item.body } : { method: "DELETE", url, body: null };
}

/**
 * What an answer means for an item:
 * "done" (written, or a retraction of something already gone), "retry" (try again later:
 * the network, the server or a rate limit), "auth" (sign in again; keep it), "rejected".
 */
export function classify(item, status, error) {
  if (status >= 200 && status < 300) return "done";
  if (item.kind === "remove" && status === 404 && error?.code !== "match_not_found") return "done";
  if (status === 401 || status === 403) return "auth";
  if (status === 408 || status === 429 || status >= 500) return "retry";
  return "rejected";
}

/**
 * Sends pending items in order until one cannot go. Returns
 * {sent: [items], rejected: [{item, error}], stopped: null|"retry"|"auth"}.
 */
export async function flush({ csrf, fetchImpl = fetch }) {
  const run = async () => {
    const report = { sent: [], rejected: [], stopped: null };
    for (;;) {
      const item = read().find((i) => i.state === "pending");
      if (!item) return report;
      const { method, url, body } = request(item);
      const headers = { "Idempotency-Key": item.key, Accept: "application/json" };
      if (csrf) headers["X-CSRF-Token"] = csrf;
      if (body) headers["Content-Type"] = "application/json";
      if (item.ifMatch) headers["If-Match"] = `"${item.ifMatch}"`;
      patch(item.key, { tries: item.tries + 1 });
      let res;
      let data = null;
      try {
        res = await fetchImpl(url, {
          method, headers, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin",
        });
        data = await res.json().catch(() => null);
      } catch {
        report.stopped = "retry";
        return report;
      }
      const error = data?.error || null;
      const verdict = classify(item, res.status, error);
      if (verdict === "done") {
        drop(item.key);
        report.sent.push({ item, op: data?.op || null });
      } else if (verdict === "rejected") {
        const message = error?.message || `HTTP ${res.status}`;
        patch(item.key, { state: "rejected", error: { ...error, message } });
        report.rejected.push({ item, error: { ...error, message } });
      } else {
        report.stopped = verdict;
        return report;
      }
    }
  };
  // One sender at a time across this origin's tabs; the Idempotency-Key covers the rest.
  if (navigator.locks?.request) return navigator.locks.request(LOCK, run);
  return run();
}

export function onChange(callback) {
  addEventListener("storage", (e) => {
    if (e.key === KEY) callback();
  });
}
