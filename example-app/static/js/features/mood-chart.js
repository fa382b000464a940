// Draws the mood history of the landing page with uPlot: each day's average mood as a point
// on a scale from stuck to energised, and the seven-day average as a line. Loaded on demand by
// journal.js when the page has a chart, so uPlot is downloaded by no other page.
import uPlot from "uplot";

/** The moods from lowest to highest, as the chart's scale reads them. */
const SCALE = ["stuck", "tired", "calm", "curious", "grateful", "energised"];

const DAY = 86_400;

/**
 * Each day's average mood and its trailing seven-day average.
 * @param {[number, string, number][]} days [UNIX seconds of the day, mood, reflections], oldest first
 */
export function series(days) {
  const byDay = new Map();
  for (const [t, mood, n] of days) {
    const score = SCALE.indexOf(mood) + 1;
    if (score === 0) continue;
    const day = byDay.get(t) ?? { sum: 0, n: 0 };
    day.sum += score * n;
    day.n += n;
    byDay.set(t, day);
  }
  const times = [...byDay.keys()].sort((a, b) => a - b);
  const scores = times.map((t) => Math.round((byDay.get(t).sum / byDay.get(t).n) * 100) / 100);
  const average = times.map((t, i) => {
    let sum = 0;
    let n = 0;
    for (let j = i; j >= 0 && t - times[j] < 7 * DAY; j--) {
      sum += byDay.get(times[j]).sum;
      n += byDay.get(times[j]).n;
    }
    return Math.round((sum / n) * 100) / 100;
  });
  return [times, scores, average];
}

/** What the chart shows, in words, for screen readers. */
function summary(days) {
  const counts = new Map();
  let total = 0;
  for (const [, mood, n] of days) {
    counts.set(mood, (counts.get(mood) ?? 0) + n);
    total += n;
  }
  const top = [...counts].sort((a, b) => b[1] - a[1])[0];
  return total === 0
    ? "Mood history: no reflections yet."
    : `Mood history: ${total} reflections, most often ${top[0]} (${top[1]}).`;
}

/**
 * @param {HTMLElement} host
 * @param {{ moods: string[], days: [number, string, number][] }} data
 */
export function renderMoodChart(host, data) {
  const days = data.days ?? [];
  host.setAttribute("role", "img");
  host.setAttribute("aria-label", summary(days));
  const ink = getComputedStyle(host).color;
  const accent = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#3c6e71";
  const size = () => ({ width: Math.max(280, host.clientWidth), height: 240 });
  const options = {
    ...size(),
    legend: { show: false },
    cursor: { show: false },
    scales: { y: { range: [0.5, SCALE.length + 0.5] } },
    axes: [
      { stroke: ink, grid: { stroke: "rgba(128, 128, 128, 0.15)" } },
      {
        stroke: ink,
        size: 80,
        grid: { stroke: "rgba(128, 128, 128, 0.15)" },
        splits: () => SCALE.map((_, i) => i + 1),
        values: (_, splits) => splits.map((v) => SCALE[v - 1] ?? ""),
      },
    ],
    series: [
      {},
      {
        label: "Mood of the day",
        stroke: accent,
        paths: () => null,
        points: { show: true, size: 7, fill: accent },
      },
      { label: "Seven-day average", stroke: ink, width: 2, points: { show: false } },
    ],
  };
  host.replaceChildren();
  const plotted = series(days);
  const chart = new uPlot(options, plotted, host);
  new ResizeObserver(() => chart.setSize(size())).observe(host);
  host.dataset.rendered = String(plotted[0].length);
  return chart;
}
