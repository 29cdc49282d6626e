// Danish by default, English with ?lang=en (pages) or lang="en" (the embed).

const STRINGS = {
  da: {
    type: {
      kickoff: "Afspark", goal: "Mål", own_goal: "Selvmål", miss: "Forbier", save: "Redning",
      offside: "Offside", yellow_card: "Gult kort", red_card: "Rødt kort",
      substitution: "Udskiftning", corner: "Hjørnespark", foul: "Frispark", var: "VAR",
      injury: "Skade", half_time: "Pause", second_half: "Anden halvleg",
      extra_time: "Forlænget spilletid", penalty_shootout: "Straffesparkskonkurrence",
      full_time: "Slut", comment: "Kommentar",
    },
    kick: { goal: "Straffe scoret", miss: "Straffe brændt", save: "Straffe reddet" },
    phase: {
      pre_match: "Før kampen", first_half: "1. halvleg", half_time: "Pause",
      second_half: "2. halvleg", extra_time: "Forlænget spilletid",
      penalties: "Straffespark", full_time: "Slut",
    },
    detail: {
      header: "hovedstød", penalty: "straffespark", own_goal: "selvmål",
      free_kick: "frispark", volley: "volley", tap_in: "prikket ind",
      disallowed: "annulleret", second_yellow: "andet gule kort",
    },
    status: {
      connecting: "Forbinder…", live: "Live", reconnecting: "Genforbinder…",
      offline: "Offline", gone: "Kampen findes ikke",
    },
    ui: {
      events: "Hændelser", noEvents: "Ingen hændelser endnu.", allMatches: "Alle kampe",
      newEvents1: "1 ny hændelse", newEventsN: "{n} nye hændelser", assist: "Oplæg",
      playerIn: "Ind", playerOut: "Ud", corrected: "rettet", score: "Stilling",
      noMatches: "Ingen kampe lige nu.", matches: "Kampe", liveNow: "Live nu",
      upcoming: "Kommende", finished: "Afsluttede", moreNew: "{n} nye hændelser. Seneste: {last}",
      kickoffAt: "Afspark {time}", poweredBy: "Live ticker", openFull: "Åbn hele tickeren",
      goals: "Mål", sentOff: "Udvist", cards: "Kort", penMark: "(str.)", ogMark: "(selvmål)",
      unknownPlayer: "Ukendt", stats: "Kampstatistik", statistic: "Statistik",
      fullTime: "Slutresultat", secondYellow: "Andet gule kort",
    },
    stat: {
      shots: "Skud", shots_on_target: "Skud på mål", corners: "Hjørnespark",
      fouls: "Begåede frispark", offsides: "Offside", yellow_cards: "Gule kort",
      red_cards: "Røde kort",
    },
  },
  en: {
    type: {
      kickoff: "Kick-off", goal: "Goal", own_goal: "Own goal", miss: "Miss", save: "Save",
      offside: "Offside", yellow_card: "Yellow card", red_card: "Red card",
      substitution: "Substitution", corner: "Corner", foul: "Foul", var: "VAR",
      injury: "Injury", half_time: "Half-time", second_half: "Second half",
      extra_time: "Extra time", penalty_shootout: "Penalty shoot-out",
      full_time: "Full-time", comment: "Comment",
    },
    kick: { goal: "Penalty scored", miss: "Penalty missed", save: "Penalty saved" },
    phase: {
      pre_match: "Pre-match", first_half: "First half", half_time: "Half-time",
      second_half: "Second half", extra_time: "Extra time", penalties: "Penalties",
      full_time: "Full-time",
    },
    detail: {
      header: "header", penalty: "penalty", own_goal: "own goal", free_kick: "free kick",
      volley: "volley", tap_in: "tap-in", disallowed: "disallowed",
      second_yellow: "second yellow",
    },
    status: {
      connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…",
      offline: "Offline", gone: "Match not found",
    },
    ui: {
      events: "Events", noEvents: "No events yet.", allMatches: "All matches",
      newEvents1: "1 new event", newEventsN: "{n} new events", assist: "Assist",
      playerIn: "On", playerOut: "Off", corrected: "corrected", score: "Score",
      noMatches: "No matches right now.", matches: "Matches", liveNow: "Live now",
      upcoming: "Upcoming", finished: "Finished", moreNew: "{n} new events. Latest: {last}",
      kickoffAt: "Kick-off {time}", poweredBy: "Live ticker", openFull: "Open the full ticker",
      goals: "Goals", sentOff: "Sent off", cards: "Cards", penMark: "(pen.)", ogMark: "(o.g.)",
      unknownPlayer: "Unknown", stats: "Match stats", statistic: "Statistic",
      fullTime: "Full-time", secondYellow: "Second yellow",
    },
    stat: {
      shots: "Shots", shots_on_target: "Shots on target", corners: "Corners", fouls: "Fouls",
      offsides: "Offsides", yellow_cards: "Yellow cards", red_cards: "Red cards",
    },
  },
};

export const LANGS = Object.keys(STRINGS);

/** "da" or "en" from a raw value (query parameter, attribute, <html lang>). */
export function pickLang(raw) {
  const value = String(raw || "").toLowerCase().slice(0, 2);
  return value in STRINGS ? value : "da";
}

/** The page's language: ?lang=… first, then <html lang>. */
export function pageLang() {
  const param = new URLSearchParams(location.search).get("lang");
  return pickLang(param || document.documentElement.lang);
}

export function t(lang, group, key, vars) {
  const table = (STRINGS[lang] || STRINGS.da)[group] || {};
  let text = table[key] ?? STRINGS.da[group]?.[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) text = text.replace(`{${k}}`, String(v));
  return text;
}

/** The label of an event: an own goal is told apart from a goal. */
export function eventLabel(lang, event, { kick = false } = {}) {
  // A kick of the shoot-out is no goal of the match: it is told as a penalty scored or missed.
  if (kick && (event.type === "goal" || event.type === "miss" || event.type === "save")) {
    return t(lang, "kick", event.type);
  }
  if (event.type === "goal" && event.detail === "own_goal") return t(lang, "type", "own_goal");
  return t(lang, "type", event.type);
}

/** A known detail in the reader's language; an unknown one as the reporter wrote it. */
export function detailLabel(lang, detail) {
  if (!detail) return "";
  const table = STRINGS[lang]?.detail || {};
  return table[detail] ?? detail.replaceAll("_", " ");
}

export function locale(lang) {
  return lang === "en" ? "en-GB" : "da-DK";
}
