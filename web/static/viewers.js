// "12.408 følger kampen" / "12,408 following": a match's live viewer count in one element.
// It opens no connection of its own (that would count every fan twice): hand `update` to
// the page's connection as `onViewers` (mountLive / TickerConnection ask the server for
// counts with `?viewers=1` then), or feed it the `viewers` of GET /api/matches entries.

import { locale } from "./i18n.js";

const TEXT = {
  da: { one: "1 følger kampen", many: "{n} følger kampen" },
  en: { one: "1 following", many: "{n} following" },
};

/** The sentence for `count` in `lang` ("da" or "en"), digits grouped the local way. */
export function viewersText(lang, count) {
  const text = TEXT[lang] || TEXT.da;
  if (count === 1) return text.one;
  return text.many.replace("{n}", new Intl.NumberFormat(locale(lang)).format(count));
}

/**
 * Render counts into `el` (hidden until the first count).
 * @param {Element} el
 * @param {string} lang
 * @returns {{update: (count: number) => void}}
 */
export function mountViewers(el, lang) {
  el.hidden = true;
  el.classList.add("viewers");
  return {
    update(count) {
      if (!Number.isInteger(count) || count < 0) return;
      el.textContent = viewersText(lang, count);
      el.dataset.count = String(count);
      el.hidden = false;
    },
  };
}
