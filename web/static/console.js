// The reporter console /console: sign in, pick a match, post events fast, correct and
// retract them. Writes go through the outbox (outbox.js) so nothing is lost on a bad
// connection and nothing is posted twice.

import * as outbox from "./outbox.js";
import { backoffDelay } from "./connection.js";
import { formatMinute, serverNow } from "./clock.js";
import { eventLabel, pageLang, t } from "./i18n.js";
import { mountLive } from "./live.js";
import { mountPresence } from "./presence.js";
import { Scoreboard } from "./render.js";
import { hasYellow, parseSquad, pitch } from "./lineups.js";
import { attachSuggest } from "./suggest.js";
import { mountLineupEditor } from "./lineup-editor.js";

const lang = pageLang();
const TEXT = {
  da: {
    signinTitle: "Log ind som reporter", signinHint: "Brug den token, redaktionen har givet dig.",
    token: "Reporter-token", signin: "Log ind", signout: "Log ud", match: "Kamp",
    type: "Hændelse", team: "Hold", minute: "Minut", added: "+ tillæg", player: "Spiller",
    assist: "Oplæg", player_in: "Ind", player_out: "Ud", detail: "Detalje", text: "Tekst",
    textHint: "Enter sender, Shift+Enter giver ny linje.", send: "Send", sendEdit: "Gem rettelse",
    cancel: "Annuller", newEvent: "Ny hændelse", editing: "Retter {what}", outbox: "Udbakke",
    outboxEmpty: "Alt er sendt.", outboxWaiting: "Venter på forbindelse – sendes automatisk.",
    outboxAuth: "Log ind igen – udbakken sendes bagefter.", posted: "Kampens forløb",
    edit: "Ret", retract: "Træk tilbage", confirmRetract: "Bekræft tilbagetrækning",
    discard: "Kassér", fix: "Ret og send igen", rejected: "Afvist", pending: "Venter",
    noMatch: "Ingen kampe endnu – en administrator opretter dem.", teamRequired: "Vælg et hold.",
    nothingChanged: "Intet er ændret.", signedInAs: "Logget ind som {name}",
    keysHint: "Taster: G mål · M forbier · S redning · O offside · Y gult · R rødt · U udskiftning · N hjørne · L frispark · V VAR · I skade · C kommentar · K afspark · H pause · B 2. halvleg · E forlænget · P straffe · F slut · 1/2 hold · Alt+A holdopstillinger · Esc annuller. I et tekstfelt: Alt+tast.",
    sessionError: "Kunne ikke logge ind.", networkError: "Ingen forbindelse til serveren.",
    forMatch: "kamp {id}", retracting: "tilbagetrækning", correcting: "rettelse",
    history: "Historik", historyLoading: "Henter historik…",
    historyError: "Historikken kunne ikke hentes.", posted_by: "Sendt af {who}",
    edited_by: "Rettet af {who}", removed_by: "Trukket tilbage af {who}", rev: "version {n}",
    conflict: "Ændret af {who} i mellemtiden (nu version {n}) – gennemse og prøv igen.",
    conflictNow: "Nu: {what}", conflictMine: "Din ændring: {what}", review: "Gennemse",
    dismiss: "Luk", dupGoal: "Allerede sendt af {who} for {sec} s siden – send alligevel?",
    postAnyway: "Send alligevel", someone: "en anden",
    lineups: "Holdopstillinger", luOpen: "Indtast holdopstillinger", luEdit: "Ret holdopstillinger",
    luClose: "Luk", luSave: "Gem holdopstillinger", luNone: "Ikke indtastet endnu.",
    luSide: "{team}: {n} spillere", luSideNone: "{team}: ikke indtastet",
    luHint: "Indsæt truppen: ét \"nummer navn\" pr. linje, (c) for anfører, evt. GK/DF/MF/FW. De første 11 starter – ret med mellemrum i Start-kolonnen.",
    squad: "Trup – {team}", formation: "Formation", coach: "Træner", no: "Nr.", name: "Navn",
    pos: "Pos.", starter: "Start", captain: "Anfører", starters: "{n} af 11 i startopstillingen",
    unread: "Linje {line} kunne ikke læses: {text}", luSaving: "Holdopstillinger",
    secondYellow: "Andet gule kort: udvisning – {who} har allerede gult kort. Send alligevel?",
    secondPost: "Send (udvisning)", pin: "Fastgør", unpin: "Frigør", pinning: "fastgørelse",
    unpinning: "frigørelse", pinnedBadge: "Fastgjort", onPitch: "på banen", bench: "bænk",
  },
  en: {
    signinTitle: "Sign in as a reporter", signinHint: "Use the token the news desk gave you.",
    token: "Reporter token", signin: "Sign in", signout: "Sign out", match: "Match",
    type: "Event", team: "Team", minute: "Minute", added: "+ added", player: "Player",
    assist: "Assist", player_in: "On", player_out: "Off", detail: "Detail", text: "Text",
    textHint: "Enter sends, Shift+Enter adds a line.", send: "Send", sendEdit: "Save correction",
    cancel: "Cancel", newEvent: "New event", editing: "Correcting {what}", outbox: "Outbox",
    outboxEmpty: "Everything is sent.", outboxWaiting: "Waiting for the connection – sent automatically.",
    outboxAuth: "Sign in again – the outbox is sent after.", posted: "Match log",
    edit: "Correct", retract: "Retract", confirmRetract: "Confirm retraction",
    discard: "Discard", fix: "Fix and resend", rejected: "Rejected", pending: "Waiting",
    noMatch: "No matches yet – an administrator creates them.", teamRequired: "Choose a team.",
    nothingChanged: "Nothing was changed.", signedInAs: "Signed in as {name}",
    keysHint: "Keys: G goal · M miss · S save · O offside · Y yellow · R red · U substitution · N corner · L foul · V VAR · I injury · C comment · K kick-off · H half-time · B second half · E extra time · P penalties · F full-time · 1/2 team · Alt+A lineups · Esc cancel. In a text field: Alt+key.",
    sessionError: "Could not sign in.", networkError: "No connection to the server.",
    forMatch: "match {id}", retracting: "retraction", correcting: "correction",
    history: "History", historyLoading: "Loading the history…",
    historyError: "Could not load the history.", posted_by: "Posted by {who}",
    edited_by: "Changed by {who}", removed_by: "Retracted by {who}", rev: "rev {n}",
    conflict: "Changed by {who} meanwhile (now rev {n}) – review and retry.",
    conflictNow: "Now: {what}", conflictMine: "Your change: {what}", review: "Review",
    dismiss: "Dismiss", dupGoal: "Already posted by {who} {sec} s ago – post anyway?",
    postAnyway: "Post anyway", someone: "someone else",
    lineups: "Lineups", luOpen: "Enter the lineups", luEdit: "Edit the lineups",
    luClose: "Close", luSave: "Save lineups", luNone: "Not entered yet.",
    luSide: "{team}: {n} players", luSideNone: "{team}: not entered",
    luHint: "Paste the squad: one \"number name\" a line, (c) for the captain, GK/DF/MF/FW if you have them. The first 11 start – change with Space in the Start column.",
    squad: "Squad – {team}", formation: "Formation", coach: "Manager", no: "No.", name: "Name",
    pos: "Pos.", starter: "Start", captain: "Captain", starters: "{n} of 11 in the starting XI",
    unread: "Line {line} could not be read: {text}", luSaving: "Lineups",
    secondYellow: "Second yellow: sent off – {who} is already booked. Post anyway?",
    secondPost: "Post (sending-off)", pin: "Pin", unpin: "Unpin", pinning: "pin",
    unpinning: "unpin", pinnedBadge: "Pinned", onPitch: "on the pitch", bench: "bench",
  },
};
const tx = (key, vars) => {
  let text = TEXT[lang][key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) text = text.replace(`{${k}}`, String(v));
  return text;
};

// Type -> [shortcut key, fields shown]. Order is the button order.
const TYPES = [
  ["goal", "g", ["team", "player", "assist", "detail", "text"]],
  ["save", "s", ["team", "player", "text"]],
  ["miss", "m", ["team", "player", "detail", "text"]],
  ["offside", "o", ["team", "player", "text"]],
  ["yellow_card", "y", ["team", "player", "text"]],
  ["red_card", "r", ["team", "player", "text"]],
  ["substitution", "u", ["team", "player_in", "player_out", "text"]],
  ["corner", "n", ["team", "text"]],
  ["foul", "l", ["team", "player", "text"]],
  ["var", "v", ["team", "detail", "text"]],
  ["injury", "i", ["team", "player", "text"]],
  ["comment", "c", ["text"]],
  ["kickoff", "k", ["text"]],
  ["half_time", "h", ["text"]],
  ["second_half", "b", ["text"]],
  ["extra_time", "e", ["text"]],
  ["penalty_shootout", "p", ["text"]],
  ["full_time", "f", ["text"]],
];
// Button labels where the full name is too long for a button.
const SHORT = {
  da: { penalty_shootout: "Straffespark", extra_time: "Forlænget" },
  en: { penalty_shootout: "Shoot-out" },
};
const FIELDS_OF = Object.fromEntries(TYPES.map(([type, , fields]) => [type, fields]));
const TYPE_OF_KEY = Object.fromEntries(TYPES.map(([type, key]) => [key, type]));
const TEAM_REQUIRED = new Set(["goal", "miss", "save", "offside", "yellow_card", "red_card", "substitution", "corner", "foul"]);
// Period starts: the server sets their minute (0, 46, 91) unless the reporter typed one.
const PERIOD_STARTS = new Set(["kickoff", "second_half", "extra_time"]);
const TEXT_FIELDS = ["player", "assist", "player_in", "player_out", "detail", "text"];
const DETAILS = ["header", "penalty", "own_goal", "free_kick", "volley", "second_yellow", "disallowed"];

const $ = (name) => document.querySelector(`[data-c="${name}"]`);
const form = $("event-form");
const field = (name) => form.elements.namedItem(name);

let csrf = "";
let reporter = "";
let live = null;
let matchId = "";
let matches = [];
let editing = null; // {id, event} while correcting; event.rev goes out as If-Match
const conflicts = new Map(); // event id -> {current, changes, kind}: a 409 shown by the event
const historyOpen = new Set(); // event ids whose history is expanded (kept across re-renders)
let dupConfirmed = false; // the reporter said "post anyway" to the duplicate-goal question
let secondConfirmed = false; // ... and "post" to the second-yellow question
let minuteDirty = false;
let inFlightKey = ""; // the item the form just queued; a rejection puts it back in the form
let retryAttempt = 0;
let retryTimer = 0;
let lastClock = null;
let focusAfterChange = false;

// ---- static text ----
for (const node of document.querySelectorAll("[data-i]")) node.textContent = tx(node.dataset.i);
$("signout").textContent = tx("signout");
$("cancel").textContent = tx("cancel");
$("empty").textContent = t(lang, "ui", "noEvents");
{
  const list = document.getElementById("details");
  for (const d of DETAILS) {
    const option = document.createElement("option");
    option.value = d;
    list.append(option);
  }
}

// ---- type buttons ----
for (const [type, key] of TYPES) {
  const label = document.createElement("label");
  label.className = `type-btn type-btn--${type}`;
  const input = document.createElement("input");
  input.type = "radio";
  input.name = "type";
  input.value = type;
  input.setAttribute("aria-keyshortcuts", key.toUpperCase());
  const text = document.createElement("span");
  text.className = "type-name";
  text.textContent = SHORT[lang][type] || t(lang, "type", type);
  const kbd = document.createElement("kbd");
  kbd.textContent = key.toUpperCase();
  label.append(input, text, kbd);
  $("types").append(label);
}
$("types").addEventListener("pointerdown", () => { focusAfterChange = true; });

// ---- errors ----
function clearErrors() {
  for (const node of form.querySelectorAll(".field-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  $("form-error").hidden = true;
}

function showError(error) {
  const name = error?.field;
  const slot = name && form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  const visible = slot && !slot.parentElement.closest("[hidden]");
  if (visible) {
    slot.textContent = error.message;
    slot.hidden = false;
    const input = form.elements.namedItem(name);
    const target = input instanceof RadioNodeList ? input[0] : input;
    if (target) {
      if (!(input instanceof RadioNodeList)) target.setAttribute("aria-invalid", "true");
      target.focus();
    }
  } else {
    $("form-error").textContent = error?.message || tx("networkError");
    $("form-error").hidden = false;
  }
}

// ---- form state ----
function currentType() {
  return field("type").value || "comment";
}

function currentTeam() {
  return field("team").value || "";
}

function setType(type, { focus = false } = {}) {
  field("type").value = type;
  const shown = new Set(FIELDS_OF[type] || ["text"]);
  for (const node of form.querySelectorAll("[data-for]")) node.hidden = !shown.has(node.dataset.for);
  if (focus) {
    const first = ["player", "player_in", "text"].find((n) => shown.has(n));
    field(first)?.focus();
  }
  updatePlayerList();
}

function setTeam(team) {
  field("team").value = team;
  updatePlayerList();
}

function playersKey(team) {
  return `ticker-players:${matchId}:${team}`;
}

function rememberedPlayers(team) {
  try {
    return JSON.parse(localStorage.getItem(playersKey(team)) || "[]");
  } catch {
    return [];
  }
}

function rememberPlayers(team, names) {
  if (!team) return;
  const list = rememberedPlayers(team).filter((n) => !names.includes(n));
  list.unshift(...names.filter(Boolean));
  localStorage.setItem(playersKey(team), JSON.stringify(list.slice(0, 40)));
}

function updatePlayerList() {
  // The names used before for the team (the suggestions offer them after the lineup).
  const list = document.getElementById("players");
  const team = currentTeam();
  const names = team ? rememberedPlayers(team) : [];
  list.replaceChildren(...names.map((name) => {
    const option = document.createElement("option");
    option.value = name;
    return option;
  }));
  for (const box of suggests) box.close();
}

// ---- player suggestions: the lineup by shirt number or name, then names used before ----
function lineupOf(team) {
  return live?.model.lineups?.[team]?.players?.length ? live.model.lineups[team] : null;
}

/** What a player field offers: "out" the players on the pitch, "in" the bench. */
function choices(name) {
  const team = currentTeam();
  if (!team) return [];
  const lineup = lineupOf(team);
  let offered = [];
  if (lineup) {
    const { on, bench } = pitch(lineup, [...live.model.events.values()], team);
    const note = (p) => ({ number: p.number, name: p.name, note: `(${tx("bench")})` });
    if (name === "player_out") offered = on;
    else if (name === "player_in") offered = bench;
    else {
      const rest = lineup.players.filter((p) => !on.includes(p));
      offered = [...on, ...rest.map((p) => (bench.includes(p) ? note(p) : p))];
    }
    if (name === "player_in" || name === "player_out") return offered;
  }
  const known = new Set(offered.map((p) => p.name.trim().toLowerCase()));
  const remembered = rememberedPlayers(team).filter((n) => !known.has(n.trim().toLowerCase()));
  return [...offered, ...remembered.map((n) => ({ name: n }))];
}

const suggests = ["player", "assist", "player_in", "player_out"].map((name) => attachSuggest(field(name), () => choices(name)));

function resetForm({ keepTeam = true } = {}) {
  const team = currentTeam();
  form.reset();
  editing = null;
  minuteDirty = false;
  hideDuplicate();
  clearErrors();
  if (keepTeam && team) setTeam(team);
  setType("comment");
  $("form-title").textContent = tx("newEvent");
  $("submit").textContent = tx("send");
  $("cancel").hidden = true;
  fillClock();
}

function fillForm(type, values, { minuteFromValues = false } = {}) {
  setType(type);
  if (values.team) setTeam(values.team);
  for (const name of TEXT_FIELDS) field(name).value = values[name] ?? "";
  if (minuteFromValues && values.minute !== undefined) {
    field("minute").value = String(values.minute);
    field("added").value = String(values.added ?? 0);
    minuteDirty = true;
  }
}

function fillClock() {
  if (minuteDirty || editing || !live) return;
  if (!lastClock) return;
  field("minute").value = String(lastClock.minute);
  field("added").value = String(lastClock.added);
}

form.addEventListener("input", (e) => {
  if (e.target.name === "minute" || e.target.name === "added") minuteDirty = true;
});
form.addEventListener("change", (e) => {
  // A click on a type moves on to its first field; arrow keys stay in the group.
  if (e.target.name === "type") setType(e.target.value, { focus: focusAfterChange });
  if (e.target.name === "type" || e.target.name === "team") hideDuplicate();
  focusAfterChange = false;
  if (e.target.name === "team") updatePlayerList();
});

function numberField(name) {
  const raw = field(name).value.trim();
  if (raw === "") return undefined;
  const value = Number(raw);
  return Number.isInteger(value) ? value : raw; // the API explains what is wrong with it
}

/** The event fields the form holds for its type. */
function collect() {
  const type = currentType();
  const shown = new Set(FIELDS_OF[type]);
  const body = { type };
  if (shown.has("team") && currentTeam()) body.team = currentTeam();
  if (minuteDirty || editing || !PERIOD_STARTS.has(type)) {
    const minute = numberField("minute");
    const added = numberField("added");
    if (minute !== undefined) body.minute = minute;
    if (added !== undefined) body.added = added;
  }
  for (const name of TEXT_FIELDS) {
    if (!shown.has(name)) continue;
    const value = field(name).value.trim();
    if (value) body[name] = value;
  }
  return body;
}

function describe(body, { id } = {}) {
  const minute = body.minute !== undefined ? formatMinute(body.minute, body.added || 0) : "";
  const team = body.team ? live?.model.teamName(body.team) : "";
  const who = body.player || body.player_in || "";
  return [minute, eventLabel(lang, body), team, who].filter(Boolean).join(" · ") || id || "";
}

/** A correction sends only what changed; a field emptied is sent as null. */
function diff(original, body) {
  const changes = {};
  const shown = new Set([...FIELDS_OF[body.type], "type", "minute", "added"]);
  for (const name of shown) {
    const before = original[name];
    const after = body[name];
    if (after === undefined) {
      if (before !== undefined && before !== null && before !== "" && name !== "minute" && name !== "added") {
        changes[name] = null;
      }
    } else if (after !== before) {
      changes[name] = after;
    }
  }
  // Fields the new type no longer shows (a goal corrected to a comment) are cleared.
  for (const name of [...TEXT_FIELDS, "team"]) {
    if (!shown.has(name) && original[name] !== undefined && original[name] !== null) changes[name] = null;
  }
  return changes;
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  clearErrors();
  if (!matchId) return;
  const body = collect();
  if (TEAM_REQUIRED.has(body.type) && !body.team) {
    showError({ field: "team", message: tx("teamRequired") });
    return;
  }
  let item;
  if (editing) {
    const changes = diff(editing.event, body);
    if (!Object.keys(changes).length) {
      showError({ message: tx("nothingChanged") });
      return;
    }
    conflicts.delete(editing.id);
    item = outbox.enqueue({
      kind: "update", matchId, eventId: editing.id, body: changes,
      ifMatch: expectedRev(editing.id, editing.event.rev),
      label: `${tx("correcting")}: ${describe({ ...editing.event, ...body })}`,
    });
  } else {
    const twin = !dupConfirmed && recentGoalByOther(body.team);
    if (twin) {
      askDuplicate(twin);
      return;
    }
    // A second yellow for the same player sends him off: said before it goes out.
    const booked = body.type === "yellow_card" && body.team && body.player && live
      && hasYellow([...live.model.events.values()], body.team, body.player);
    if (booked && !secondConfirmed) {
      askSecond(body.player);
      return;
    }
    item = outbox.enqueue({ kind: "add", matchId, body, label: describe(body) });
  }
  inFlightKey = item.key;
  rememberPlayers(body.team, [body.player, body.assist, body.player_in, body.player_out]);
  resetForm();
  renderOutbox();
  send();
});

// Enter submits from anywhere in the form except a button; Shift+Enter is a new line.
form.addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || e.shiftKey || e.isComposing) return;
  if (e.target instanceof HTMLButtonElement) return;
  if (e.target instanceof HTMLInputElement && e.target.list && e.altKey) return;
  e.preventDefault();
  form.requestSubmit();
});

$("cancel").addEventListener("click", () => resetForm());

// ---- shortcuts ----
function typing(target) {
  return target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement
    || (target instanceof HTMLInputElement && !["radio", "checkbox", "button", "submit"].includes(target.type));
}

document.addEventListener("keydown", (e) => {
  if ($("desk").hidden || e.ctrlKey || e.metaKey || e.isComposing) return;
  if (e.key === "Escape") {
    resetForm();
    return;
  }
  let key = "";
  if (e.altKey) key = e.code.startsWith("Key") ? e.code.slice(3).toLowerCase() : e.code.replace("Digit", "");
  else if (!typing(e.target)) key = e.key.toLowerCase();
  if (!key) return;
  if (key === "a" && e.altKey) {
    if ($("lu-editor").hidden) openEditor();
    else closeEditor();
  } else if (key === "1" || key === "2") {
    setTeam(key === "1" ? "home" : "away");
  } else if (key === "t") {
    setTeam(currentTeam() === "home" ? "away" : "home");
  } else if (TYPE_OF_KEY[key]) {
    setType(TYPE_OF_KEY[key], { focus: true });
  } else {
    return;
  }
  e.preventDefault();
});

// ---- outbox ----
function renderOutbox() {
  const items = outbox.items();
  $("outbox-count").textContent = String(items.length);
  $("outbox").dataset.count = String(items.length);
  const list = $("outbox-list");
  list.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    li.className = `ob ob--${item.state}`;
    li.dataset.key = item.key;
    const state = document.createElement("span");
    state.className = "ob-state";
    state.textContent = item.state === "rejected" ? tx("rejected") : tx("pending");
    const label = document.createElement("span");
    label.className = "ob-label";
    label.textContent = item.label || item.kind;
    if (item.matchId !== matchId) label.textContent += ` (${tx("forMatch", { id: item.matchId })})`;
    li.append(state, label);
    if (item.state === "rejected") {
      const why = document.createElement("span");
      why.className = "ob-error";
      why.textContent = item.error?.message || "";
      const fix = button(tx("fix"), "btn btn--small", () => {
        outbox.drop(item.key);
        renderOutbox();
        if (item.matchId === matchId && item.kind === "add") {
          resetForm();
          fillForm(item.body.type, item.body, { minuteFromValues: true });
          showError(item.error);
        }
      });
      const discard = button(tx("discard"), "btn btn--small btn--danger", () => {
        outbox.drop(item.key);
        renderOutbox();
      });
      li.append(why, fix, discard);
      if (item.kind !== "add" || item.matchId !== matchId) fix.hidden = true;
    }
    return li;
  }));
  const waiting = items.some((i) => i.state === "pending");
  $("outbox-note").textContent = !items.length ? tx("outboxEmpty") : waiting ? tx("outboxWaiting") : "";
}

function button(text, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

let sending = false;
let sendAgain = false;

async function send() {
  if (!csrf) return;
  if (sending) {
    sendAgain = true;
    return;
  }
  sending = true;
  clearTimeout(retryTimer);
  try {
    let report;
    let refreshed = false;
    do {
      sendAgain = false;
      report = await outbox.flush({ csrf });
      for (const { item, error } of report.rejected) {
        if (error?.code === "conflict" && error.field === "If-Match" && error.current && item.matchId === matchId) {
          // Shown by the event it is about, with what the event is now; not left in the outbox.
          outbox.drop(item.key);
          showConflict(item, error);
          continue;
        }
        if (item.kind === "lineups" && item.matchId === matchId) {
          // Back into the editor (its rows are still there), the message by the row it is about.
          outbox.drop(item.key);
          openEditor({ reload: false });
          editor.showError(error);
          continue;
        }
        // Rejected straight away: back into the form, with the message by its field.
        if (item.key === inFlightKey && item.matchId === matchId && item.kind === "add") {
          outbox.drop(item.key);
          resetForm();
          fillForm(item.body.type, item.body, { minuteFromValues: item.body.minute !== undefined });
          showError(error);
        }
      }
      if (report.stopped === "auth") {
        // Once per round: a fresh CSRF value may fix it; if not, the reporter signs in again.
        const ok = !refreshed && (await refreshSession());
        refreshed = true;
        if (ok) sendAgain = true;
        else showSignin(tx("outboxAuth"));
      }
    } while (sendAgain);
    if (report.stopped === "retry") {
      retryTimer = setTimeout(send, 1000 + backoffDelay(retryAttempt++, { base: 1000, cap: 30000 }));
    } else {
      retryAttempt = 0;
    }
  } finally {
    sending = false;
    inFlightKey = "";
    renderOutbox();
  }
}

outbox.onChange(renderOutbox);
addEventListener("online", () => send());

// ---- session ----
async function refreshSession() {
  try {
    const res = await fetch("/api/session", { headers: { Accept: "application/json" } });
    if (!res.ok) return false;
    const data = await res.json();
    csrf = data.csrf;
    reporter = data.reporter;
    return true;
  } catch {
    return false;
  }
}

function showSignin(message = "") {
  csrf = "";
  $("signin").hidden = false;
  $("desk").hidden = true;
  $("who").hidden = true;
  $("signout").hidden = true;
  $("conn").hidden = true;
  const err = document.querySelector('[data-error-for="token"]');
  err.textContent = message;
  err.hidden = !message;
  document.getElementById("token").focus();
}

async function showDesk() {
  $("signin").hidden = true;
  $("desk").hidden = false;
  $("who").hidden = false;
  $("who").textContent = tx("signedInAs", { name: reporter });
  $("signout").hidden = false;
  $("conn").hidden = false;
  renderOutbox();
  await loadMatches();
  send();
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = document.getElementById("token");
  const err = document.querySelector('[data-error-for="token"]');
  err.hidden = true;
  input.removeAttribute("aria-invalid");
  let res;
  let data = null;
  try {
    res = await fetch("/api/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ token: input.value.trim() }),
    });
    data = await res.json().catch(() => null);
  } catch {
    err.textContent = tx("networkError");
    err.hidden = false;
    return;
  }
  if (!res.ok) {
    err.textContent = data?.error?.message || tx("sessionError");
    err.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  csrf = data.csrf;
  reporter = data.reporter;
  input.value = "";
  await showDesk();
});

$("signout").addEventListener("click", async () => {
  try {
    await fetch("/api/session", { method: "DELETE", headers: { "X-CSRF-Token": csrf } });
  } catch {
    // Signed out locally either way; the cookie expires on its own.
  }
  live?.stop();
  live = null;
  showSignin();
});

// ---- match ----
async function loadMatches() {
  try {
    const res = await fetch("/api/matches", { headers: { Accept: "application/json" } });
    if (res.ok) matches = (await res.json()).matches || [];
  } catch {
    // Keep what we had; the select still works for the match already open.
  }
  const select = $("match-select");
  const wanted = new URLSearchParams(location.search).get("match") || localStorage.getItem("ticker-console-match") || "";
  select.replaceChildren(...matches.map(({ match }) => {
    const option = document.createElement("option");
    option.value = match.id;
    option.textContent = `${match.home?.name} – ${match.away?.name}${match.competition ? ` (${match.competition})` : ""}`;
    return option;
  }));
  if (!matches.length) {
    const option = document.createElement("option");
    option.textContent = tx("noMatch");
    option.value = "";
    select.append(option);
  }
  const pick = matches.some((m) => m.match.id === wanted) ? wanted : matches[0]?.match.id || "";
  select.value = pick;
  openMatch(pick);
}

$("match-select").addEventListener("change", (e) => openMatch(e.target.value));

function decorate(li, event) {
  const actions = document.createElement("div");
  actions.className = "ev-actions";
  const what = describe(event);
  const edit = button(tx("edit"), "btn btn--small", () => startEdit(event.id));
  edit.setAttribute("aria-label", `${tx("edit")}: ${what}`);
  const retract = button(tx("retract"), "btn btn--small btn--danger", () => {
    if (retract.dataset.armed !== "1") {
      retract.dataset.armed = "1";
      retract.textContent = tx("confirmRetract");
      setTimeout(() => {
        if (retract.isConnected) {
          retract.dataset.armed = "";
          retract.textContent = tx("retract");
        }
      }, 5000);
      return;
    }
    const shown = live.model.events.get(event.id) || event;
    conflicts.delete(event.id);
    outbox.enqueue({
      kind: "remove", matchId, eventId: event.id, ifMatch: expectedRev(event.id, shown.rev),
      label: `${tx("retracting")}: ${describe(shown)}`,
    });
    renderOutbox();
    send();
  });
  retract.setAttribute("aria-label", `${tx("retract")}: ${what}`);
  const label = `${tx("history")} · ${tx("rev", { n: event.rev ?? 1 })}`;
  // The item's children move into the old item on a correction: find it at click time.
  const hist = button(label, "btn btn--small btn--quiet", () => toggleHistory(hist.closest(".ev"), event.id));
  hist.dataset.c = "history-toggle";
  hist.setAttribute("aria-label", `${label}: ${what}`);
  hist.setAttribute("aria-expanded", "false");
  const pinned = event.pinned === true;
  const pin = button(pinned ? tx("unpin") : tx("pin"), "btn btn--small", () => {
    const shown = live.model.events.get(event.id) || event;
    const want = shown.pinned !== true;
    conflicts.delete(event.id);
    outbox.enqueue({
      kind: "update", matchId, eventId: event.id, body: { pinned: want },
      ifMatch: expectedRev(event.id, shown.rev),
      label: `${tx(want ? "pinning" : "unpinning")}: ${describe(shown)}`,
    });
    renderOutbox();
    send();
  });
  pin.dataset.c = "pin";
  pin.setAttribute("aria-label", `${pin.textContent}: ${what}`);
  if (pinned) {
    li.classList.add("ev--pinned");
    li.querySelector(".ev-head")?.append(Object.assign(document.createElement("span"), {
      className: "ev-pinned", textContent: tx("pinnedBadge"),
    }));
  }
  actions.append(edit, pin, retract, hist);
  const body = li.querySelector(".ev-body");
  body?.append(actions);
  const panel = document.createElement("div");
  panel.className = "ev-history";
  panel.id = `history-${event.id}`;
  panel.hidden = true;
  hist.setAttribute("aria-controls", panel.id);
  body?.append(panel);
  if (historyOpen.has(event.id)) showHistory(li, event.id);
  renderConflict(li, event.id);
}

/**
 * The rev to send as If-Match: the one shown, or past this reporter's own corrections of
 * the event still in the outbox (each makes one rev), so they do not conflict with each other.
 */
function expectedRev(eventId, shownRev) {
  let rev = shownRev ?? 1;
  for (const item of outbox.items()) {
    if (item.matchId === matchId && item.eventId === eventId && item.kind === "update" && item.state === "pending" && item.ifMatch) {
      rev = Math.max(rev, item.ifMatch + 1);
    }
  }
  return rev;
}

// ---- history of an event: its ops from /ops, filtered here ----
function toggleHistory(li, id) {
  if (historyOpen.has(id)) {
    historyOpen.delete(id);
    const panel = li.querySelector(".ev-history");
    panel.hidden = true;
    li.querySelector("[data-c=history-toggle]").setAttribute("aria-expanded", "false");
  } else {
    historyOpen.add(id);
    showHistory(li, id);
  }
}

async function eventOps(id) {
  const found = [];
  let since = "";
  for (let page = 0; page < 100; page++) {
    const query = since ? `?since=${encodeURIComponent(since)}` : "";
    const res = await fetch(`/api/matches/${encodeURIComponent(matchId)}/ops${query}`, { headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const data = await res.json();
    for (const op of data.ops) if ((op.event?.id ?? op.id) === id && op.op !== "match") found.push(op);
    if (!data.more) break;
    since = data.seq;
  }
  return found;
}

function clockTime(iso) {
  const at = new Date(iso || NaN);
  return Number.isNaN(at.getTime()) ? "" : at.toLocaleTimeString(lang === "da" ? "da-DK" : "en-GB");
}

/** What changed between two versions of an event, as "field: before → after". */
function changesText(before, after) {
  const names = ["type", "team", "minute", "added", ...TEXT_FIELDS];
  const show = (name, v) => (v === undefined || v === null || v === "" ? "–" : name === "team" ? live?.model.teamName(v) : name === "type" ? t(lang, "type", v) : String(v));
  return names
    .filter((n) => (before?.[n] ?? null) !== (after?.[n] ?? null))
    .map((n) => `${tx(n)}: ${show(n, before?.[n])} → ${show(n, after?.[n])}`)
    .join("; ");
}

async function showHistory(li, id) {
  const panel = li.querySelector(".ev-history");
  const toggle = li.querySelector("[data-c=history-toggle]");
  if (!panel) return;
  panel.hidden = false;
  toggle.setAttribute("aria-expanded", "true");
  panel.textContent = tx("historyLoading");
  const forMatch = matchId;
  let ops;
  try {
    ops = await eventOps(id);
  } catch {
    panel.textContent = tx("historyError");
    return;
  }
  if (forMatch !== matchId) return;
  const list = document.createElement("ol");
  list.className = "ev-history-list";
  let before = null;
  for (const op of ops) {
    const row = document.createElement("li");
    let what;
    let at;
    if (op.op === "add") {
      what = tx("posted_by", { who: op.event.author || tx("someone") });
      at = op.event.at;
    } else if (op.op === "update") {
      const change = changesText(before, op.event);
      what = `${tx("edited_by", { who: op.event.edited_by || tx("someone") })} (${tx("rev", { n: op.event.rev })})${change ? `: ${change}` : ""}`;
      at = op.event.edited_at;
    } else {
      what = tx("removed_by", { who: op.by || tx("someone") });
      at = op.at;
    }
    if (op.event) before = op.event;
    const time = document.createElement("time");
    time.className = "ev-history-at";
    if (at) time.dateTime = at;
    time.textContent = clockTime(at);
    row.append(time, " ", what);
    list.append(row);
  }
  panel.replaceChildren(list);
}

// ---- conflicts: a correction or retraction refused because the event changed meanwhile ----
function renderConflict(li, id) {
  li.querySelector(".ev-conflict")?.remove();
  const c = conflicts.get(id);
  if (!c) return;
  const shown = live?.model.events.get(id);
  if (shown && shown.rev > c.current.rev) c.current = shown; // changed again since the 409
  const box = document.createElement("div");
  box.className = "ev-conflict";
  box.setAttribute("role", "alert");
  const who = c.current.edited_by || c.current.author || tx("someone");
  const head = document.createElement("p");
  head.className = "ev-conflict-msg";
  head.textContent = tx("conflict", { who, n: c.current.rev });
  const now = document.createElement("p");
  now.className = "ev-conflict-now";
  now.textContent = tx("conflictNow", { what: [describe(c.current), c.current.text].filter(Boolean).join(" – ") });
  box.append(head, now);
  if (c.kind === "update") {
    const mine = document.createElement("p");
    mine.className = "ev-conflict-mine";
    mine.textContent = tx("conflictMine", { what: changesText(c.current, { ...c.current, ...c.changes }) || "–" });
    box.append(mine);
  }
  const actions = document.createElement("div");
  actions.className = "ev-actions";
  const review = button(tx("review"), "btn btn--small btn--primary", () => {
    const item = box.closest(".ev");
    conflicts.delete(id);
    box.remove();
    if (c.kind === "update") startEdit(id, c.changes);
    else item?.querySelector(".btn--danger")?.focus();
  });
  const dismiss = button(tx("dismiss"), "btn btn--small", () => {
    conflicts.delete(id);
    box.remove();
  });
  actions.append(review, dismiss);
  box.append(actions);
  li.querySelector(".ev-body")?.append(box);
}

function showConflict(item, error) {
  const current = error.current;
  conflicts.set(item.eventId, { current, changes: item.body || {}, kind: item.kind });
  const li = live?.feed.items.get(item.eventId);
  if (li) {
    renderConflict(li, item.eventId);
    li.querySelector(".ev-conflict .btn--primary")?.focus();
  }
}

// ---- a goal another reporter posted moments ago ----
function recentGoalByOther(team) {
  if (!live || !team) return null;
  const now = serverNow();
  for (const event of live.model.newestFirst()) {
    if (event.type !== "goal" || event.team !== team || event.author === reporter) continue;
    const age = now - Date.parse(event.at);
    if (age >= -5000 && age < 30000) return { event, sec: Math.max(0, Math.round(age / 1000)) };
  }
  return null;
}

function askDuplicate({ event, sec }) {
  const box = $("dup");
  $("dup-msg").textContent = tx("dupGoal", { who: event.author || tx("someone"), sec });
  box.hidden = false;
  $("dup-post").focus();
}

function hideDuplicate() {
  dupConfirmed = false;
  $("dup").hidden = true;
  secondConfirmed = false;
  $("second").hidden = true;
}

function askSecond(who) {
  $("second-msg").textContent = tx("secondYellow", { who });
  $("second").hidden = false;
  $("second-post").focus();
}

$("second-post").textContent = tx("secondPost");
$("second-cancel").textContent = tx("cancel");
$("second-post").addEventListener("click", () => {
  secondConfirmed = true;
  $("second").hidden = true;
  form.requestSubmit();
});
$("second-cancel").addEventListener("click", () => {
  hideDuplicate();
  field("player")?.focus();
});

$("dup-post").textContent = tx("postAnyway");
$("dup-cancel").textContent = tx("cancel");
$("dup-post").addEventListener("click", () => {
  dupConfirmed = true;
  $("dup").hidden = true;
  form.requestSubmit();
});
$("dup-cancel").addEventListener("click", () => {
  hideDuplicate();
  field("player")?.focus();
});

function startEdit(id, changes = null) {
  const event = live?.model.events.get(id);
  if (!event) return;
  resetForm();
  editing = { id, event };
  // After a conflict: the current version, with the reporter's own change on top to review.
  const values = changes ? { ...event, ...changes } : event;
  fillForm(values.type, values, { minuteFromValues: true });
  $("form-title").textContent = tx("editing", { what: describe(event) });
  $("submit").textContent = tx("sendEdit");
  $("cancel").hidden = false;
  form.scrollIntoView({ block: "nearest" });
  field(FIELDS_OF[event.type].find((n) => n !== "team") || "text")?.focus();
}

function openMatch(id) {
  live?.stop();
  live = null;
  lastClock = null;
  matchId = id;
  conflicts.clear();
  historyOpen.clear();
  const slot = $("board-slot");
  slot.replaceChildren();
  $("feed").replaceChildren();
  if (!id) return;
  localStorage.setItem("ticker-console-match", id);
  const board = Scoreboard.build(document, "h3");
  board.classList.add("sb--console");
  slot.append(board);
  const conn = $("conn");
  live = mountLive({
    origin: location.origin,
    matchId: id,
    lang,
    scoreboard: board,
    feed: $("feed"),
    empty: $("empty"),
    status: conn,
    announce: $("announce"),
    decorate,
    onStatus(status) {
      if (status === "live") send();
    },
    onClock(clock) {
      lastClock = clock;
      fillClock();
    },
    onChange() {
      $("team-home").textContent = live.model.teamName("home");
      $("team-away").textContent = live.model.teamName("away");
      if (editing && !live.model.events.has(editing.id)) resetForm();
      lineupStatus();
      editor.label(); // team names arrive with the snapshot
    },
  });
  const entry = matches.find((m) => m.match.id === id);
  $("team-home").textContent = entry?.match.home?.name || "";
  $("team-away").textContent = entry?.match.away?.name || "";
  resetForm({ keepTeam: false });
  closeEditor({ focus: false });
  lineupStatus();
}

// ---- lineups: entered before kick-off, sent as one PUT through the outbox ----
const editor = mountLineupEditor({
  form: $("lu-editor"),
  tx,
  teamName: (side) => live?.model.teamName(side) || "",
  onSave(body) {
    if (!matchId) return;
    outbox.enqueue({ kind: "lineups", matchId, body, label: tx("luSaving") });
    closeEditor();
    renderOutbox();
    send();
  },
});
$("lu-save").textContent = tx("luSave");
$("lu-close").textContent = tx("luClose");
$("lu-close").addEventListener("click", () => closeEditor());
$("lu-toggle").addEventListener("click", () => ($("lu-editor").hidden ? openEditor() : closeEditor()));
$("lu-editor").addEventListener("keydown", (e) => {
  if (e.key === "Escape") {
    e.stopPropagation();
    closeEditor();
  }
});

/** Open the editor; by default with the lineups the match has now. */
function openEditor({ reload = true } = {}) {
  if (!live) return;
  if (reload) editor.load(live.model.lineups);
  editor.label();
  $("lu-editor").hidden = false;
  $("lu-toggle").setAttribute("aria-expanded", "true");
  if (reload) document.getElementById("lu-squad-home")?.focus();
}

function closeEditor({ focus = true } = {}) {
  const wasOpen = !$("lu-editor").hidden;
  $("lu-editor").hidden = true;
  $("lu-toggle").setAttribute("aria-expanded", "false");
  if (focus && wasOpen) $("lu-toggle").focus();
}

function lineupStatus() {
  const lineups = live?.model.lineups || {};
  const n = (side) => lineups[side]?.players?.length || 0;
  const set = n("home") || n("away");
  const side = (s) => tx(n(s) ? "luSide" : "luSideNone", { team: live.model.teamName(s), n: n(s) });
  $("lu-status").textContent = set ? `${side("home")} · ${side("away")}` : tx("luNone");
  $("lu-toggle").textContent = set ? tx("luEdit") : tx("luOpen");
}

// ---- start ----
// Who else is on the match (presence.js reads our state; it beats and renders on its own).
mountPresence({ root: $("presence"), lang, state: () => ({ matchId, csrf, typing: currentType() }) });
setType("comment");
$("form-title").textContent = tx("newEvent");
$("submit").textContent = tx("send");
renderOutbox();
if (await refreshSession()) await showDesk();
else showSignin();
