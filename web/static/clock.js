// Match clocks: one shared one-second timer for every clock on the page, no message
// per second from the server. The rule matches the server's (ticker/state.py `clock`).

// Running phase -> [minute the period starts after, its regular last minute].
export const PERIODS = {
  first_half: [0, 45],
  second_half: [45, 90],
  extra_time: [90, 120],
};
// Event type that starts each running phase.
export const PERIOD_START = { kickoff: "first_half", second_half: "second_half", extra_time: "extra_time" };

export function formatMinute(minute, added) {
  return added > 0 ? `${minute}+${added}'` : `${minute}'`;
}

/**
 * The clock at `now` (ms): {minute, added, running}. In a running phase it counts from the
 * `at` (ms) of the event that started it: 0:00-0:59 is minute 1, and past the regular end
 * the rest is added time ("45+2'"). Otherwise it stands at the state's minute.
 */
export function matchClock(state, startAt, now) {
  const period = PERIODS[state?.phase];
  if (!period || !Number.isFinite(startAt)) {
    return { minute: state?.minute ?? 0, added: state?.added ?? 0, running: false };
  }
  const [base, end] = period;
  const elapsed = Math.max(0, now - startAt);
  const minute = base + Math.floor(elapsed / 60000) + 1;
  if (minute <= end) return { minute, added: 0, running: true };
  return { minute: end, added: Math.min(30, minute - end), running: true };
}

// Client clock minus server clock, in ms. Estimated as the least (now - event.at) seen for
// freshly posted events: network delay only ever adds to it, so the minimum is the best guess.
let offset = null;

/** Feed an observation of server time (ms since epoch) seen just now. */
export function observeServerTime(serverMs, nowMs = Date.now()) {
  if (!Number.isFinite(serverMs)) return;
  const value = nowMs - serverMs;
  // Anything over 5 minutes is an old event replayed, not a clock difference.
  if (Math.abs(value) > 300000) return;
  if (offset === null || value < offset) offset = value;
}

/** Now on the server's clock, as well as we can tell. */
export function serverNow() {
  return Date.now() - (offset ?? 0);
}

const clocks = new Set();
let timer = 0;

function tick() {
  for (const entry of clocks) entry.update();
  if (!clocks.size) {
    clearInterval(timer);
    timer = 0;
  }
}

/**
 * Keep `render(clock)` called once a second, and at once. `source()` returns
 * {state, startAt}. Returns a function that stops it.
 */
export function addClock(source, render) {
  const entry = {
    update() {
      const { state, startAt } = source();
      render(matchClock(state, startAt, serverNow()), state);
    },
  };
  clocks.add(entry);
  entry.update();
  if (!timer) timer = setInterval(tick, 1000);
  return () => clocks.delete(entry);
}

/** Update every clock now (after an op changed a phase), not at the next tick. */
export function refreshClocks() {
  for (const entry of clocks) entry.update();
}
