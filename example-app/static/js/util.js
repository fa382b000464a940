// Small DOM helpers shared by the page modules.

/**
 * Runs `callback` once the document is parsed (at once if it already is).
 * @param {() => void} callback
 */
export function ready(callback) {
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", callback, { once: true });
  } else {
    callback();
  }
}

/**
 * Counts the words of a text, the way the server does.
 * @param {string} text
 * @returns {number}
 */
export function countWords(text) {
  const words = text.trim().split(/\s+/).filter((word) => word.length > 0);
  return words.length;
}

/**
 * Formats a UNIX timestamp (seconds) as a short local date.
 * @param {number} seconds
 */
export function formatDate(seconds) {
  const date = new Date(seconds * 1000);
  return date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}
