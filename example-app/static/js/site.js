// Shared by every page: the reader's saved preferences, dates shown relative to now
// ("3 days ago", the exact date on hover), and the header's buttons, which load the coach
// and the settings panel on demand: neither is downloaded until it is wanted (hovering a
// button preloads it).
import { formatDistanceToNow } from "date-fns";
import { CodeSplitter } from "../_perf/code-splitter.js";
import { formatDate, ready } from "./util.js";

const PREFERENCES_KEY = "inner-architect:preferences";

/** @returns {{ theme?: "light" | "dark", dates?: "relative" | "absolute" }} */
export function readPreferences() {
  try {
    return JSON.parse(localStorage.getItem(PREFERENCES_KEY) ?? "{}") ?? {};
  } catch {
    return {};
  }
}

/** Saves the preferences and applies them to the page at once. */
export function savePreferences(preferences) {
  localStorage.setItem(PREFERENCES_KEY, JSON.stringify(preferences));
  applyPreferences(preferences);
}

/** Applies the theme and the date style to the page. */
export function applyPreferences(preferences = readPreferences()) {
  const root = document.documentElement;
  if (preferences.theme) {
    root.dataset.theme = preferences.theme;
  } else {
    delete root.dataset.theme;
  }
  localiseDates(document, preferences.dates ?? "relative");
}

/**
 * Writes each `<time data-epoch>` as "3 days ago" (or as a date), with the exact date in
 * its title.
 */
export function localiseDates(root, style = "relative") {
  for (const element of root.querySelectorAll("time[data-epoch]")) {
    const seconds = Number(element.dataset.epoch);
    if (!Number.isFinite(seconds)) {
      continue;
    }
    const exact = formatDate(seconds);
    element.dateTime = new Date(seconds * 1000).toISOString();
    element.title = exact;
    element.textContent =
      style === "absolute" ? exact : formatDistanceToNow(seconds * 1000, { addSuffix: true });
  }
}

ready(() => {
  applyPreferences();
  for (const button of document.querySelectorAll("button[data-perf-feature]")) {
    button.addEventListener("click", () =>
      CodeSplitter.loadFeature(button.dataset.perfFeature, (feature) => feature.open(button)),
    );
  }
  document.documentElement.dataset.appReady = "true";
});
