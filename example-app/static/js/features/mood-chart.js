// Draws the mood distribution of the visible reflections as an inline SVG bar chart.
// Loaded on demand by app.js, so pages without a chart never download it.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * @param {HTMLElement} host
 * @param {Record<string, number>} counts mood name -> number of reflections
 */
export function renderMoodChart(host, counts) {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map(([, value]) => value));
  const barHeight = 22;
  const width = 320;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${entries.length * (barHeight + 8)}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Reflections by mood");
  entries.forEach(([mood, value], index) => {
    const y = index * (barHeight + 8);
    const bar = document.createElementNS(SVG_NS, "rect");
    bar.setAttribute("x", "96");
    bar.setAttribute("y", String(y));
    bar.setAttribute("height", String(barHeight));
    bar.setAttribute("width", String(((width - 110) * value) / max));
    bar.setAttribute("rx", "4");
    bar.setAttribute("fill", "#3c6e71");
    const label = document.createElementNS(SVG_NS, "text");
    label.setAttribute("x", "0");
    label.setAttribute("y", String(y + barHeight - 6));
    label.textContent = `${mood} (${value})`;
    svg.append(bar, label);
  });
  host.replaceChildren(svg);
  host.dataset.rendered = String(entries.length);
}
