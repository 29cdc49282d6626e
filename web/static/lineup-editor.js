// The console's lineup editor: per side a pasted squad (lineups.js parseSquad), formation,
// coach and a table to mark starters and the captain. It loads what the match has now and
// hands a PUT body to the console, which sends it through the outbox.

import { parseSquad } from "./lineups.js";

const SIDES = ["home", "away"];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null && text !== "") node.textContent = String(text);
  return node;
}

/** The squad as the reporter would type it, from a stored lineup. */
function squadText(lineup) {
  return (lineup?.players || [])
    .map((p) => `${p.number} ${p.name}${p.captain ? " (c)" : ""}${p.position ? ` ${p.position}` : ""}`)
    .join("\n");
}

/**
 * @param {object} o
 * @param {HTMLFormElement} o.form   the editor's <form> (fieldsets with data-side inside)
 * @param {(key: string, vars?: object) => string} o.tx
 * @param {(side: string) => string} o.teamName
 * @param {(body: object) => void} o.onSave   gets {home?: LINEUP, away?: LINEUP}
 */
export function mountLineupEditor(o) {
  const sides = {};
  for (const side of SIDES) {
    const box = o.form.querySelector(`[data-side="${side}"]`);
    const id = (name) => `lu-${name}-${side}`;
    const text = el("textarea");
    text.id = id("squad");
    text.name = `${side}.players`;
    text.rows = 8;
    text.spellcheck = false;
    text.setAttribute("aria-describedby", `${id("count")} ${id("err-players")}`);
    const textLabel = el("label");
    textLabel.htmlFor = text.id;
    const squad = el("div", "field");
    const playersErr = el("p", "field-error");
    playersErr.id = id("err-players");
    playersErr.dataset.errorFor = `${side}.players`;
    playersErr.hidden = true;
    squad.append(textLabel, text, playersErr);

    const row = el("div", "row");
    const inputs = {};
    for (const name of ["formation", "coach"]) {
      const wrap = el("div", "field");
      const input = el("input");
      input.id = id(name);
      input.name = `${side}.${name}`;
      input.maxLength = name === "coach" ? 80 : 12;
      if (name === "formation") input.placeholder = "4-3-3";
      const err = el("p", "field-error");
      err.id = id(`err-${name}`);
      err.dataset.errorFor = `${side}.${name}`;
      err.hidden = true;
      input.setAttribute("aria-describedby", err.id);
      const label = el("label", "", o.tx(name));
      label.htmlFor = input.id;
      wrap.append(label, input, err);
      row.append(wrap);
      inputs[name] = input;
    }
    const count = el("p", "hint lu-count");
    count.id = id("count");
    count.setAttribute("aria-live", "polite");
    const unread = el("p", "field-error lu-unread");
    unread.hidden = true;
    const table = el("table", "lu-table");
    const caption = el("caption", "sr-only");
    const head = el("tr");
    for (const key of ["no", "name", "pos", "starter", "captain"]) {
      const th = el("th", `lu-th lu-th--${key}`, o.tx(key));
      th.scope = "col";
      head.append(th);
    }
    const thead = el("thead");
    thead.append(head);
    const tbody = el("tbody");
    table.append(caption, thead, tbody);
    const scroller = el("div", "lu-table-wrap");
    scroller.append(table);
    box.append(squad, row, count, unread, scroller);
    sides[side] = { box, text, textLabel, inputs, count, unread, tbody, caption, players: [] };
    text.addEventListener("input", () => reparse(side));
  }

  function label() {
    for (const side of SIDES) {
      const s = sides[side];
      const team = o.teamName(side);
      o.form.querySelector(`[data-c="lu-legend-${side}"]`).textContent = team;
      s.textLabel.textContent = o.tx("squad", { team });
      s.caption.textContent = o.tx("squad", { team });
    }
  }

  /** New text: keep the marks made on players that are still there (same shirt number). */
  function reparse(side) {
    const s = sides[side];
    const before = new Map(s.players.map((p) => [p.number, p]));
    const { players, errors } = parseSquad(s.text.value);
    const anyCaptain = players.some((p) => p.captain);
    let starters = 0;
    for (const [i, p] of players.entries()) {
      const old = before.get(p.number);
      if (old) {
        p.starter = old.starter;
        p.captain = anyCaptain ? p.captain : old.captain;
      } else {
        p.starter = i < 11 && starters < 11;
      }
      if (p.starter) starters += 1;
    }
    s.players = players;
    s.unread.hidden = !errors.length;
    s.unread.textContent = errors.map((e) => o.tx("unread", { line: e.line, text: e.text })).join(" ");
    renderTable(side);
  }

  function renderTable(side) {
    const s = sides[side];
    s.tbody.replaceChildren(...s.players.map((p, i) => {
      const tr = el("tr", "lu-row");
      tr.dataset.index = String(i);
      const num = el("td", "lu-td-num", p.number);
      const name = el("td", "lu-td-name", p.name);
      const err = el("span", "field-error lu-row-error");
      err.id = `lu-err-${side}-${i}`;
      err.dataset.errorFor = `${side}.players[${i}]`;
      err.hidden = true;
      name.append(err);
      const pos = el("td", "lu-td-pos", p.position || "–");
      const start = el("td", "lu-td-check");
      const box = el("input");
      box.type = "checkbox";
      box.checked = p.starter;
      box.setAttribute("aria-label", `${o.tx("starter")}: ${p.number} ${p.name}`);
      box.setAttribute("aria-describedby", err.id);
      box.addEventListener("change", () => {
        p.starter = box.checked;
        renderCount(side);
      });
      start.append(box);
      const cap = el("td", "lu-td-check");
      const radio = el("input");
      radio.type = "radio";
      radio.name = `lu-captain-${side}`;
      radio.checked = p.captain;
      radio.setAttribute("aria-label", `${o.tx("captain")}: ${p.number} ${p.name}`);
      radio.addEventListener("change", () => {
        for (const q of s.players) q.captain = q === p;
      });
      cap.append(radio);
      tr.append(num, name, pos, start, cap);
      return tr;
    }));
    renderCount(side);
  }

  function renderCount(side) {
    const s = sides[side];
    const n = s.players.filter((p) => p.starter).length;
    s.count.textContent = o.tx("starters", { n });
    s.count.classList.toggle("lu-count--off", n !== 11 && s.players.length > 0);
  }

  function clearErrors() {
    for (const node of o.form.querySelectorAll(".field-error[data-error-for]")) {
      node.hidden = true;
      node.textContent = "";
    }
    for (const node of o.form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    const general = o.form.querySelector('[data-c="lu-error"]');
    general.hidden = true;
  }

  /** A 422's `field` ("home.players[3].number") by its row or input; else under the form. */
  function showError(error) {
    const fieldName = String(error?.field || "");
    const m = /^(home|away)\.players\[(\d+)\]/.exec(fieldName);
    let slot = null;
    let focus = null;
    if (m) {
      slot = o.form.querySelector(`[data-error-for="${m[1]}.players[${m[2]}]"]`);
      focus = slot?.closest("tr")?.querySelector("input");
      slot?.closest("tr")?.setAttribute("aria-invalid", "true");
    } else if (fieldName) {
      const name = fieldName.split(/[.[]/).slice(0, 2).join(".");
      slot = o.form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
      focus = o.form.elements.namedItem(name);
    }
    if (slot) {
      slot.textContent = error.message;
      slot.hidden = false;
      if (focus instanceof HTMLElement) {
        if (!m) focus.setAttribute("aria-invalid", "true");
        focus.focus();
      }
    } else {
      const general = o.form.querySelector('[data-c="lu-error"]');
      general.textContent = error?.message || "";
      general.hidden = false;
    }
  }

  /** Fill the editor from the match's lineups now. */
  function load(lineups) {
    label();
    clearErrors();
    for (const side of SIDES) {
      const s = sides[side];
      const lineup = lineups?.[side];
      s.text.value = squadText(lineup);
      s.inputs.formation.value = lineup?.formation || "";
      s.inputs.coach.value = lineup?.coach || "";
      s.players = (lineup?.players || []).map((p) => ({ ...p }));
      s.unread.hidden = true;
      renderTable(side);
    }
  }

  function body() {
    const out = {};
    for (const side of SIDES) {
      const s = sides[side];
      if (!s.players.length && !s.text.value.trim()) continue;
      out[side] = {
        formation: s.inputs.formation.value.trim() || null,
        coach: s.inputs.coach.value.trim() || null,
        players: s.players.map(({ number, name, position, starter, captain }) => ({
          number, name, position: position || null, starter: !!starter, captain: !!captain,
        })),
      };
    }
    return out;
  }

  o.form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors();
    const sent = body();
    if (!Object.keys(sent).length) return;
    o.onSave(sent);
  });

  return { load, showError, clearErrors, label };
}
