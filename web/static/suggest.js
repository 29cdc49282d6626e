// A small accessible combobox for a text input (ARIA 1.2 pattern: role=combobox,
// aria-autocomplete=list, a listbox, aria-activedescendant). The console's player fields
// use it to offer the lineup by shirt number or name. Up/Down move, Enter or Tab picks,
// Escape closes; the input stays a plain text field (any name can still be typed).

import { norm } from "./lineups.js";

let counter = 0;

/**
 * @param {HTMLInputElement} input
 * @param {() => Array<{number?: number, name: string, note?: string}>} source  the choices now
 */
export function attachSuggest(input, source) {
  const id = `sug-${++counter}`;
  const list = document.createElement("ul");
  list.id = id;
  list.className = "suggest";
  list.setAttribute("role", "listbox");
  const label = input.labels?.[0];
  if (label) {
    if (!label.id) label.id = `${input.id}-label`;
    list.setAttribute("aria-labelledby", label.id);
  }
  list.hidden = true;
  input.after(list);
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", id);
  input.setAttribute("aria-expanded", "false");
  input.removeAttribute("list");
  let shown = [];
  let active = -1;

  function matches() {
    const q = norm(input.value);
    const all = source();
    if (!q) return all.slice(0, 12);
    const digits = /^\d+$/.test(q);
    return all.filter((p) => {
      if (digits) return p.number !== undefined && String(p.number).startsWith(q);
      const name = norm(p.name);
      return name.startsWith(q) || name.split(/[\s-]+/).some((part) => part.startsWith(q));
    }).slice(0, 12);
  }

  function close() {
    list.hidden = true;
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function setActive(i) {
    active = i;
    for (const [n, li] of [...list.children].entries()) li.setAttribute("aria-selected", String(n === i));
    if (i >= 0) {
      input.setAttribute("aria-activedescendant", `${id}-${i}`);
      list.children[i].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function open() {
    shown = matches();
    // Nothing to offer, or the one offer is what is typed already.
    if (!shown.length || (shown.length === 1 && norm(shown[0].name) === norm(input.value))) {
      close();
      return;
    }
    list.replaceChildren(...shown.map((p, i) => {
      const li = document.createElement("li");
      li.id = `${id}-${i}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.className = "suggest-opt";
      if (p.number !== undefined) {
        const num = document.createElement("span");
        num.className = "suggest-num";
        num.textContent = String(p.number);
        li.append(num, " ");
      }
      li.append(p.name);
      if (p.note) {
        const note = document.createElement("span");
        note.className = "suggest-note";
        note.textContent = ` ${p.note}`;
        li.append(note);
      }
      // pointerdown, not click: the input must not lose focus first.
      li.addEventListener("pointerdown", (e) => {
        e.preventDefault();
        pick(i);
      });
      return li;
    }));
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    // Typing a shirt number offers one player: Enter takes him.
    setActive(/^\d+$/.test(input.value.trim()) ? 0 : -1);
  }

  function pick(i) {
    const p = shown[i];
    if (!p) return;
    input.value = p.name;
    close();
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
    close();
  }

  input.addEventListener("input", (e) => {
    if (e.isTrusted || e instanceof InputEvent) open();
  });
  input.addEventListener("focus", () => { if (input.value.trim()) open(); });
  input.addEventListener("blur", close);
  input.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (list.hidden) open();
      if (list.hidden) return;
      e.preventDefault();
      const n = shown.length;
      setActive(e.key === "ArrowDown" ? (active + 1) % n : (active - 1 + n) % n);
    } else if ((e.key === "Enter" || e.key === "Tab") && !list.hidden && active >= 0) {
      // Enter picks instead of sending the form; Tab picks and moves on.
      if (e.key === "Enter") {
        e.preventDefault();
        e.stopPropagation();
      }
      pick(active);
    } else if (e.key === "Escape" && !list.hidden) {
      e.preventDefault();
      e.stopPropagation(); // closes the list, not the whole form
      close();
    }
  });
  return { close, refresh: () => (list.hidden ? null : open()) };
}
