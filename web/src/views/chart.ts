// A webhook's health over time, drawn as SVG: a stacked bar per bucket of
// its attempts by outcome, and the attempts' latency p95 as a line. Plain
// SVG, a few dozen lines: a charting library would weigh more than the
// whole panel for one kind of chart.

import type { Stats } from "../api";
import { h } from "../dom";
import { lang, t } from "../i18n";

const NS = "http://www.w3.org/2000/svg";

/** The outcomes, bottom to top, each with its colour (CSS class). */
const OUTCOMES = ["succeeded", "retrying", "failed", "cancelled"] as const;

function svg(tag: string, attrs: Record<string, string | number>, ...children: (Node | string)[]): SVGElement {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

function clock(iso: string): string {
  return new Date(iso).toLocaleTimeString(lang() === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit" });
}

export function healthChart(stats: Stats): HTMLElement {
  const buckets = stats.buckets;
  const total = (key: (typeof OUTCOMES)[number]): number => buckets.reduce((sum, b) => sum + b[key], 0);
  const summary = t("healthSummary", {
    succeeded: total("succeeded"),
    retrying: total("retrying"),
    failed: total("failed"),
    cancelled: total("cancelled"),
  });
  if (OUTCOMES.every((o) => total(o) === 0)) {
    return h("div", { class: "chart empty" }, h("p", {}, t("noAttempts")));
  }
  const [width, height, left, right, top, bottom] = [960, 200, 36, 60, 10, 24];
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const most = Math.max(1, ...buckets.map((b) => OUTCOMES.reduce((sum, o) => sum + b[o], 0)));
  const slowest = Math.max(1, ...buckets.map((b) => b.latencyP95Ms ?? 0));
  const step = plotWidth / Math.max(1, buckets.length);
  const bar = Math.max(1, step * 0.7);
  const y = (count: number): number => top + plotHeight - (count / most) * plotHeight;
  const bars = buckets.map((b, i) => {
    let base = 0;
    const x = left + i * step + (step - bar) / 2;
    const title = `${clock(b.start)} · ${OUTCOMES.map((o) => `${t(o)} ${b[o]}`).join(", ")}${
      b.latencyP95Ms == null ? "" : ` · ${t("latencyP95")} ${b.latencyP95Ms} ms`
    }`;
    const parts = OUTCOMES.filter((o) => b[o] > 0).map((o) => {
      const from = base;
      base += b[o];
      return svg("rect", { class: o, x: x.toFixed(1), y: y(base).toFixed(1), width: bar.toFixed(1), height: (y(from) - y(base)).toFixed(1) });
    });
    return svg("g", { class: "bucket", "data-start": b.start }, svg("title", {}, title), ...parts);
  });
  const points = buckets
    .map((b, i) => (b.latencyP95Ms == null ? null : `${(left + i * step + step / 2).toFixed(1)},${(top + plotHeight - (b.latencyP95Ms / slowest) * plotHeight).toFixed(1)}`))
    .filter((p): p is string => p !== null);
  const labels = buckets
    .map((b, i) => ({ b, i }))
    .filter(({ i }) => i % Math.max(1, Math.round(buckets.length / 6)) === 0)
    .map(({ b, i }) => svg("text", { x: (left + i * step).toFixed(1), y: height - 6, class: "axis" }, clock(b.start)));
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary, class: "health" },
    svg("line", { x1: left, x2: width - right, y1: top + plotHeight, y2: top + plotHeight, class: "baseline" }),
    svg("text", { x: left - 6, y: top + 10, class: "axis end" }, String(most)),
    svg("text", { x: width - right + 6, y: top + 10, class: "axis latency" }, `${slowest} ms`),
    ...bars,
    svg("polyline", { points: points.join(" "), class: "latency" }),
    ...labels,
  );
  const legend = h(
    "ul",
    { class: "legend" },
    OUTCOMES.map((o) => h("li", {}, h("span", { class: `swatch ${o}` }), ` ${t(o)}`)),
    h("li", {}, h("span", { class: "swatch latency" }), ` ${t("latencyP95")}`),
  );
  return h("figure", { class: "chart" }, chart, h("figcaption", {}, summary), legend);
}
