// The Layers panel's DOM: a bar (open/close, run / family / statistic choosers) over a heatmap canvas of
// one tracer statistic (rows: layers, columns: steps), its colour legend and a hover tooltip. DOM only: the
// controller (trace_controller.ts) fills it and draws the canvas.
//
// Test ids: trace-panel (data-open, data-run, data-tag, data-stat, data-state "loading" | "ready" | "error",
// data-layers / data-steps: the matrix drawn, data-width: the columns asked for), trace-toggle, trace-run,
// trace-family, trace-stat, trace-canvas, trace-tip (data-layer, data-step, data-value: the exact number),
// trace-legend, trace-legend-min, trace-legend-max, trace-error.

import { caret } from "./icons";
import { el } from "./dom";

export interface TracePanelHandlers {
  onToggle: () => void;
  onRun: (run: string) => void;
  onFamily: (tag: string) => void;
  onStat: (stat: string) => void;
}

export interface TracePanel {
  root: HTMLElement;
  toggle: HTMLButtonElement;
  run: HTMLSelectElement;
  family: HTMLSelectElement;
  stat: HTMLSelectElement;
  choosers: HTMLElement;
  error: HTMLElement;
  body: HTMLElement;
  plot: HTMLElement;
  canvas: HTMLCanvasElement;
  tip: HTMLElement;
  legend: HTMLElement;
  legendBar: HTMLCanvasElement;
  legendMin: HTMLElement;
  legendMax: HTMLElement;
  legendNote: HTMLElement;
}

export function createTracePanel(h: TracePanelHandlers): TracePanel {
  const toggle = el("button", { class: "tbp-link tbp-eval-toggle", testid: "trace-toggle", title: "Show or hide the per-layer heatmap" });
  toggle.addEventListener("click", () => h.onToggle());
  const run = el("select", { class: "tbp-mini tbp-eval-select", testid: "trace-run", title: "Run with tracer data" });
  run.addEventListener("change", () => h.onRun(run.value));
  const family = el("select", { class: "tbp-mini", testid: "trace-family", title: "Traced family" });
  family.addEventListener("change", () => h.onFamily(family.value));
  const stat = el("select", { class: "tbp-mini", testid: "trace-stat", title: "Statistic" });
  stat.addEventListener("change", () => h.onStat(stat.value));
  const error = el("span", { class: "tbp-error", testid: "trace-error", hidden: true });
  const choosers = el(
    "span",
    { class: "tbp-eval-choosers" },
    el("span", { class: "tbp-ctl-label", text: "run" }),
    run,
    el("span", { class: "tbp-ctl-label", text: "family" }),
    family,
    el("span", { class: "tbp-ctl-label", text: "statistic" }),
    stat,
  );
  const canvas = el("canvas", { class: "tbp-trace-canvas", testid: "trace-canvas" });
  const tip = el("div", { class: "tbp-trace-tip", testid: "trace-tip", hidden: true });
  const plot = el("div", { class: "tbp-trace-plot" }, canvas, tip);
  const legendBar = el("canvas", { class: "tbp-trace-legend-bar", width: "160", height: "10" });
  const legendMin = el("span", { class: "tbp-eval-num", testid: "trace-legend-min" });
  const legendMax = el("span", { class: "tbp-eval-num", testid: "trace-legend-max" });
  const legendNote = el("span", { class: "tbp-muted" });
  const swatch = (color: string, text: string) =>
    el("span", { class: "tbp-trace-swatch" }, el("i", { style: `background:${color}` }), text);
  const legend = el(
    "div",
    { class: "tbp-trace-legend", testid: "trace-legend" },
    legendMin,
    legendBar,
    legendMax,
    legendNote,
    swatch("#000000", "0"),
    swatch("#555555", "< 0 (log)"),
    swatch("#ff0000", "NaN"),
    swatch("#ff00ff", "±Inf"),
  );
  const body = el("div", { class: "tbp-eval-body" }, plot, legend);
  const head = el("div", { class: "tbp-eval-head" }, toggle, choosers, error);
  const root = el("section", { class: "tbp-eval tbp-trace", testid: "trace-panel", hidden: true, "data-open": "false" }, head, body);
  return { root, toggle, run, family, stat, choosers, error, body, plot, canvas, tip, legend, legendBar, legendMin, legendMax, legendNote };
}

export function setTraceOpen(p: TracePanel, open: boolean, layers: number): void {
  p.root.dataset.open = String(open);
  p.body.hidden = !open;
  p.choosers.hidden = !open;
  p.toggle.replaceChildren(caret(open), " Layers");
  p.toggle.append(el("span", { class: "tbp-count tbp-eval-count", text: `${layers} traced tensor${layers === 1 ? "" : "s"}` }));
}

/** Fills a select with `values` (labels default to the values) and selects `chosen`. */
export function setOptions(select: HTMLSelectElement, values: string[], chosen: string | null, labels?: string[]): void {
  const key = values.join("\u0000");
  if (select.dataset.key !== key) {
    select.dataset.key = key;
    select.replaceChildren(...values.map((v, i) => el("option", { value: v, text: labels?.[i] ?? v })));
  }
  if (chosen !== null) select.value = chosen;
}
