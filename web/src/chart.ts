// A bar chart of money by day, as SVG: bars above the line for gains, below
// it (red) for losses. Small on purpose; the table beside it has the
// exact figures.

import { money } from "./format";

const SVG = "http://www.w3.org/2000/svg";

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  return element;
}

/** A bar per day; `title` names the chart for screen readers. */
export function barChart(title: string, points: { day: string; cents: bigint }[]): SVGSVGElement {
  const width = 640;
  const height = 220;
  const top = 16;
  const bottom = 28;
  const left = 8;
  const plot = height - top - bottom;
  const values = points.map((point) => Number(point.cents));
  const highest = Math.max(0, ...values);
  const lowest = Math.min(0, ...values);
  const span = highest - lowest || 1;
  const zero = top + (highest / span) * plot;
  const step = (width - 2 * left) / Math.max(points.length, 1);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart" });
  const label = svg("title", {});
  label.textContent = title;
  chart.append(label);
  points.forEach((point, index) => {
    const value = values[index];
    const barHeight = (Math.abs(value) / span) * plot;
    const x = left + index * step + step * 0.15;
    const bar = svg("rect", {
      x,
      y: value >= 0 ? zero - barHeight : zero,
      width: step * 0.7,
      height: Math.max(barHeight, value === 0 ? 0 : 1),
      class: value < 0 ? "bar negative" : "bar",
    });
    const tip = svg("title", {});
    tip.textContent = `${point.day}: ${money(point.cents)}`;
    bar.append(tip);
    chart.append(bar);
    // Label every day when few, else every few days.
    if (points.length <= 14 || index % Math.ceil(points.length / 10) === 0) {
      const text = svg("text", { x: x + step * 0.35, y: height - 8, "text-anchor": "middle", class: "axis" });
      text.textContent = point.day.slice(5);
      chart.append(text);
    }
  });
  chart.append(svg("line", { x1: left, x2: width - left, y1: zero, y2: zero, class: "zero" }));
  return chart;
}
