// Draws the mood history of the landing page with uPlot: each reflection as a point on a
// scale from stuck to energised, and its seven-day average as a line. Loaded on demand by
// journal.js when the page has a chart, so uPlot is downloaded by no other page.
import uPlot from "uplot";

/** The moods from lowest to highest, as the chart's scale reads them. */
const SCALE = ["stuck", "tired", "calm", "curious", "grateful", "energised"];

const DAY = 86_400;

/**
 * The points and their trailing seven-day average.
 * @param {[number, string][]} points [UNIX seconds, mood], oldest first
 */
export function series(points) {
  const known = points.filter(([, mood]) => SCALE.includes(mood));
  const times = known.map(([t]) => t);
  const scores = known.map(([, mood]) => SCALE.indexOf(mood) + 1);
  const average = scores.map((_, i) => {
    let sum = 0;
    let n = 0;
    for (let j = i; j >= 0 && times[i] - times[j] < 7 * DAY; j--) {
      sum += scores[j];
      n++;
    }
    return Math.round((sum / n) * 100) / 100;
  });
  return [times, scores, average];
}

/** What the chart shows, in words, for screen readers. */
function summary(points) {
  const counts = new Map();
  for (const [, mood] of points) counts.set(mood, (counts.get(mood) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1])[0];
  return points.length === 0
    ? "Mood history: no reflections yet."
    : `Mood history: ${points.length} reflections, most often ${top[0]} (${top[1]}).`;
}

/**
 * @param {HTMLElement} host
 * @param {{ moods: string[], points: [number, string][] }} data
 */
export function renderMoodChart(host, data) {
  const points = data.points ?? [];
  host.setAttribute("role", "img");
  host.setAttribute("aria-label", summary(points));
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
        label: "Mood",
        stroke: accent,
        paths: () => null,
        points: { show: true, size: 7, fill: accent },
      },
      { label: "Seven-day average", stroke: ink, width: 2, points: { show: false } },
    ],
  };
  host.replaceChildren();
  const chart = new uPlot(options, series(points), host);
  new ResizeObserver(() => chart.setSize(size())).observe(host);
  host.dataset.rendered = String(points.length);
  return chart;
}
