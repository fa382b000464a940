// The journal page (the home page): the live word count of the compose form, and the mood
// chart, whose module is loaded only when the page has a chart.
import "./site.js";
import { countWords, ready } from "./util.js";

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

ready(async () => {
  const form = document.querySelector("form.compose");
  if (form) {
    attachWordCounter(form);
  }
  const chartHost = document.querySelector("[data-mood-chart]");
  if (chartHost) {
    const { renderMoodChart } = await import("./features/mood-chart.js");
    renderMoodChart(chartHost, JSON.parse(chartHost.dataset.moodChart));
  }
});
