// The landing, journal and compose pages: the live word count of the compose form, and the
// mood history, whose module is loaded only when the page has a chart and it is in view.
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
  // The mood history sits below the fold: its module (uPlot within) is fetched and run
  // when the chart comes near the viewport, not while the page is still loading.
  const chartHost = document.querySelector("[data-mood-chart]");
  if (chartHost) {
    const observer = new IntersectionObserver(
      async (entries) => {
        if (!entries.some((e) => e.isIntersecting)) {
          return;
        }
        observer.disconnect();
        const { renderMoodChart } = await import("./features/mood-chart.js");
        renderMoodChart(chartHost, JSON.parse(chartHost.dataset.moodChart));
      },
      { rootMargin: "200px" },
    );
    observer.observe(chartHost);
  }
});
