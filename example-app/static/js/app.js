// Entry module of every page: live word count on the compose form, local dates, and
// the mood chart, loaded only on pages that have one.
import { ready, countWords, formatDate } from "./util.js";

function attachWordCounter(form) {
  const textarea = form.querySelector("textarea");
  const counter = form.querySelector("[data-word-count]");
  if (!textarea || !counter) {
    return;
  }
  const update = () => {
    const count = countWords(textarea.value);
    counter.textContent = count === 1 ? "1 word" : `${count} words`;
  };
  textarea.addEventListener("input", update);
  update();
}

function localiseDates(root) {
  for (const element of root.querySelectorAll("time[data-epoch]")) {
    const seconds = Number(element.dataset.epoch);
    if (Number.isFinite(seconds)) {
      element.textContent = formatDate(seconds);
    }
  }
}

ready(async () => {
  document.documentElement.dataset.appReady = "true";
  const form = document.querySelector("form.compose");
  if (form) {
    attachWordCounter(form);
  }
  localiseDates(document);
  const chartHost = document.querySelector("[data-mood-chart]");
  if (chartHost) {
    const { renderMoodChart } = await import("./features/mood-chart.js");
    renderMoodChart(chartHost, JSON.parse(chartHost.dataset.moodChart));
  }
});
