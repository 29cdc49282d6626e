// Who else is working on the open match: the console's presence heartbeat and its list.
// The console tells it nothing but how to read its state; this module checks that state
// every second (no request unless the match or the open event type changed) and beats
// every 5 s: `PUT /api/matches/{id}/presence {"typing"}`, whose reply lists everyone there.

import { t } from "./i18n.js";

const BEAT_MS = 5000;
const CHECK_MS = 1000;

const TEXT = {
  da: { here: "Også på kampen:", typing: "har {type} åben", alone: "Ingen andre reportere på kampen." },
  en: { here: "Also on this match:", typing: "has {type} open", alone: "No other reporters on this match." },
};

/**
 * @param {object} o
 * @param {Element} o.root   where the list goes (the console's [data-c=presence])
 * @param {string} o.lang
 * @param {() => {matchId: string, csrf: string, typing: string|null}} o.state
 */
export function mountPresence(o) {
  const text = TEXT[o.lang] || TEXT.da;
  let sent = { matchId: "", typing: null };
  let beatAt = 0;
  let busy = false;

  function headers(csrf) {
    return { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf };
  }

  function render(reply) {
    const others = (reply?.reporters || []).filter((r) => r.name !== reply.you);
    o.root.replaceChildren();
    o.root.hidden = !reply;
    if (!reply) return;
    if (!others.length) {
      o.root.textContent = text.alone;
      return;
    }
    const label = document.createElement("span");
    label.className = "presence-label";
    label.textContent = text.here;
    const list = document.createElement("ul");
    list.className = "presence-list";
    for (const r of others) {
      const li = document.createElement("li");
      li.dataset.reporter = r.name;
      const name = document.createElement("strong");
      name.textContent = r.name;
      li.append(name);
      if (r.typing) {
        const what = document.createElement("span");
        what.className = "presence-typing";
        what.dataset.typing = r.typing;
        what.textContent = ` ${text.typing.replace("{type}", t(o.lang, "type", r.typing).toLowerCase())}`;
        li.append(what);
      }
      list.append(li);
    }
    o.root.append(label, list);
  }

  function leave(matchId, csrf, keepalive = false) {
    if (!matchId || !csrf) return;
    fetch(`/api/matches/${encodeURIComponent(matchId)}/presence`, {
      method: "DELETE", headers: headers(csrf), keepalive,
    }).catch(() => {});
  }

  async function check() {
    if (busy) return;
    const now = o.state();
    const typing = now.typing || null;
    if (now.matchId !== sent.matchId) leave(sent.matchId, now.csrf);
    const changed = now.matchId !== sent.matchId || typing !== sent.typing;
    if (!now.matchId || !now.csrf) {
      sent = { matchId: "", typing: null };
      render(null);
      return;
    }
    if (!changed && Date.now() - beatAt < BEAT_MS) return;
    busy = true;
    sent = { matchId: now.matchId, typing };
    beatAt = Date.now();
    try {
      const res = await fetch(`/api/matches/${encodeURIComponent(now.matchId)}/presence`, {
        method: "PUT", headers: headers(now.csrf), body: JSON.stringify({ typing }),
      });
      // Another match was opened meanwhile: this reply is not about it.
      if (res.ok && o.state().matchId === now.matchId) render(await res.json());
    } catch {
      // Offline: the next beat tries again; the others see us gone after 15 s.
    } finally {
      busy = false;
    }
  }

  addEventListener("pagehide", () => leave(sent.matchId, o.state().csrf, true));
  setInterval(check, CHECK_MS);
  check();
  return { check };
}
