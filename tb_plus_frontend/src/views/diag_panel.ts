// The Diagnostics panel's DOM: a bar (open/close with the counts, a severity filter, the runs listed) over
// the list of findings and, for the finding clicked, its annotated chart. DOM only: the controller
// (diag_controller.ts) fills it and puts a chart card into the chart host.
//
// Test ids: diag-panel (data-open, data-state "loading" | "ready" | "error", data-count: findings listed,
// data-scope), diag-toggle, diag-summary, diag-filter (the severity checkboxes diag-filter-error,
// diag-filter-warning, diag-filter-info), diag-scope, diag-error, diag-pending, diag-list, diag-finding
// (one per finding: data-id, data-rule, data-run, data-severity, data-step, data-step-end; aria-selected
// for the one charted), diag-evidence, diag-more, diag-empty, diag-chart (data-id, data-run, data-rule,
// data-step; holds a chart card whose markers are diag-annotation, data-step / data-rule / data-left).

import { caret } from "./icons";
import { el } from "./dom";
import type { DiagCounts, Finding, Severity } from "../api";

export const SEVERITY_COLOR: Record<Severity, string> = { error: "#c62828", warning: "#ef6c00", info: "#607d8b" };
export const SEVERITY_ICON: Record<Severity, string> = { error: "×", warning: "▲", info: "i" };
const SEVERITY_ORDER: Severity[] = ["error", "warning", "info"];

export interface DiagPanelHandlers {
  onToggle: () => void;
  onSeverity: (severity: Severity, on: boolean) => void;
  onScope: (scope: string) => void;
  onPick: (id: string) => void;
}

export interface DiagPanel {
  root: HTMLElement;
  toggle: HTMLButtonElement;
  summary: HTMLElement;
  choosers: HTMLElement;
  boxes: Record<Severity, HTMLInputElement>;
  scope: HTMLSelectElement;
  error: HTMLElement;
  pending: HTMLElement;
  body: HTMLElement;
  list: HTMLElement;
  empty: HTMLElement;
  more: HTMLElement;
  /** Holds the chart card of the finding clicked. */
  chart: HTMLElement;
}

/** "3 errors", "1 warning", "2 info". */
export function countText(n: number, severity: Severity): string {
  if (severity === "info") return `${n} info`;
  return `${n} ${severity}${n === 1 ? "" : "s"}`;
}

/** The worst severity with findings, "ok" when none. */
export function worstOf(c: DiagCounts): Severity | "ok" {
  return c.error > 0 ? "error" : c.warning > 0 ? "warning" : c.info > 0 ? "info" : "ok";
}

/** "steps 60–199", "step 60", "" (not tied to a step). */
export function stepRange(f: Finding): string {
  if (f.step === null) return "";
  if (f.stepEnd === null || f.stepEnd === f.step) return `step ${f.step}`;
  return `steps ${f.step}–${f.stepEnd}`;
}

function fmtEvidence(v: number | string): string {
  if (typeof v === "string") return v;
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

export function createDiagPanel(h: DiagPanelHandlers): DiagPanel {
  const toggle = el("button", { class: "tbp-link tbp-eval-toggle", testid: "diag-toggle", title: "Show or hide the diagnostics findings" });
  toggle.addEventListener("click", () => h.onToggle());
  const summary = el("span", { class: "tbp-diag-summary", testid: "diag-summary" });
  const boxes = {} as Record<Severity, HTMLInputElement>;
  const filter = el("span", { class: "tbp-diag-filter", testid: "diag-filter", title: "Severities listed (and drawn on the charts)" });
  for (const sev of SEVERITY_ORDER) {
    const box = el("input", { type: "checkbox", testid: `diag-filter-${sev}`, "data-severity": sev });
    box.addEventListener("change", () => h.onSeverity(sev, box.checked));
    boxes[sev] = box;
    const icon = el("span", { class: `tbp-diag-icon ${sev}`, text: SEVERITY_ICON[sev] });
    filter.append(el("label", { class: "tbp-ctl" }, box, icon, sev));
  }
  const scope = el("select", { class: "tbp-mini tbp-eval-select", testid: "diag-scope", title: "Runs whose findings are listed" });
  scope.addEventListener("change", () => h.onScope(scope.value));
  const error = el("span", { class: "tbp-error", testid: "diag-error", hidden: true });
  const pending = el("span", { class: "tbp-muted", testid: "diag-pending", text: "diagnosing…", hidden: true });
  const choosers = el("span", { class: "tbp-eval-choosers" }, filter, el("span", { class: "tbp-ctl-label", text: "runs" }), scope, pending);
  const list = el("div", { class: "tbp-diag-list", testid: "diag-list", role: "list" });
  const empty = el("div", { class: "tbp-muted tbp-diag-empty", testid: "diag-empty", hidden: true });
  const more = el("div", { class: "tbp-muted", testid: "diag-more", hidden: true });
  const chart = el("div", { class: "tbp-diag-chart", testid: "diag-chart", hidden: true });
  const body = el("div", { class: "tbp-eval-body tbp-diag-body" }, list, empty, more, chart);
  const head = el("div", { class: "tbp-eval-head" }, toggle, summary, choosers, error);
  const root = el("section", { class: "tbp-eval tbp-diag", testid: "diag-panel", hidden: true, "data-open": "false" }, head, body);
  return { root, toggle, summary, choosers, boxes, scope, error, pending, body, list, empty, more, chart };
}

/** Shows the panel open (bar, list, chart) or closed (the toggle and the counts only). */
export function setDiagOpen(p: DiagPanel, open: boolean, total: DiagCounts | null): void {
  p.root.dataset.open = String(open);
  p.body.hidden = !open;
  p.choosers.hidden = !open;
  p.toggle.replaceChildren(caret(open), " Diagnostics");
  const parts: HTMLElement[] = [];
  if (total) {
    for (const sev of SEVERITY_ORDER) {
      if (total[sev] > 0) parts.push(el("span", { class: `tbp-diag-count ${sev}`, "data-severity": sev, text: `${SEVERITY_ICON[sev]} ${countText(total[sev], sev)}` }));
    }
    if (!parts.length) parts.push(el("span", { class: "tbp-diag-count ok", text: "no findings" }));
  }
  p.summary.replaceChildren(...parts);
}

export function setDiagFilter(p: DiagPanel, severities: readonly Severity[]): void {
  for (const sev of SEVERITY_ORDER) p.boxes[sev].checked = severities.includes(sev);
}

/** Fills the runs chooser: the selected runs, every run, then one run each. */
export function setDiagScope(p: DiagPanel, runs: string[], scope: string, selected: number): void {
  const key = runs.join("\u0000") + `\u0001${selected}`;
  if (p.scope.dataset.key !== key) {
    p.scope.dataset.key = key;
    p.scope.replaceChildren(
      el("option", { value: "sel", text: selected ? `selected runs (${selected})` : "selected runs (none: all)" }),
      el("option", { value: "all", text: "all runs" }),
      ...runs.map((r) => el("option", { value: `run:${r}`, text: r })),
    );
  }
  p.scope.value = scope;
  if (p.scope.value !== scope) p.scope.value = "sel";
  p.root.dataset.scope = scope;
}

function evidenceTable(f: Finding): HTMLElement | null {
  const entries = Object.entries(f.evidence);
  if (!entries.length) return null;
  const head = el("tr", {}, ...entries.map(([k]) => el("th", { text: k })));
  const values = el(
    "tr",
    {},
    ...entries.map(([k, v]) => el("td", { text: fmtEvidence(v), title: `${k} = ${String(v)}`, "data-key": k, "data-value": String(v) })),
  );
  return el("table", { class: "tbp-diag-evidence", testid: "diag-evidence" }, el("tbody", {}, head, values));
}

/** One finding: severity icon, run, title, step range, message, prompt, evidence numbers. */
function findingRow(f: Finding, chosen: boolean, onPick: (id: string) => void): HTMLElement {
  const range = stepRange(f);
  const row = el(
    "div",
    {
      class: `tbp-diag-finding ${f.severity}${chosen ? " chosen" : ""}`,
      testid: "diag-finding",
      role: "listitem",
      tabindex: 0,
      title: f.tags.length ? `Click to chart ${f.tags.slice(0, 4).join(", ")} of ${f.run}` : f.message,
      "data-id": f.id,
      "data-rule": f.rule,
      "data-run": f.run,
      "data-severity": f.severity,
      "data-step": f.step === null ? undefined : String(f.step),
      "data-step-end": f.stepEnd === null ? undefined : String(f.stepEnd),
      "aria-selected": String(chosen),
    },
    el(
      "div",
      { class: "tbp-diag-line" },
      el("span", { class: `tbp-diag-icon ${f.severity}`, text: SEVERITY_ICON[f.severity], title: f.severity }),
      el("b", { class: "tbp-diag-run", text: f.run }),
      el("span", { class: "tbp-diag-title", text: f.title }),
      range ? el("span", { class: "tbp-diag-steps", text: range }) : null,
      f.tags.length ? el("span", { class: "tbp-muted tbp-diag-tags", text: f.tags.slice(0, 3).join(", ") + (f.tags.length > 3 ? ` +${f.tags.length - 3}` : "") }) : null,
      el("span", { class: "tbp-muted tbp-diag-rule", text: f.rule }),
    ),
    f.message ? el("div", { class: "tbp-diag-message", text: f.message }) : null,
    f.prompt ? el("div", { class: "tbp-diag-prompt", text: `→ ${f.prompt}` }) : null,
    evidenceTable(f),
  );
  row.addEventListener("click", () => onPick(f.id));
  row.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      onPick(f.id);
    }
  });
  return row;
}

/** Fills the list (at most `limit` rows); `emptyText` shows when there is none. */
export function setDiagFindings(
  p: DiagPanel,
  findings: Finding[],
  chosen: string | null,
  limit: number,
  emptyText: string,
  onPick: (id: string) => void,
): void {
  const shown = findings.slice(0, limit);
  p.list.replaceChildren(...shown.map((f) => findingRow(f, f.id === chosen, onPick)));
  p.root.dataset.count = String(findings.length);
  p.empty.hidden = findings.length > 0;
  p.empty.textContent = emptyText;
  p.more.hidden = findings.length <= limit;
  p.more.textContent = `${(findings.length - limit).toLocaleString()} more findings not listed: narrow the runs or severities`;
}

/** Shows (finding) or hides (null) the chart area; the controller puts the chart card in. */
export function setDiagChart(p: DiagPanel, f: Finding | null): void {
  p.chart.hidden = f === null;
  for (const k of ["id", "run", "rule", "step"]) delete p.chart.dataset[k];
  if (!f) return;
  p.chart.dataset.id = f.id;
  p.chart.dataset.run = f.run;
  p.chart.dataset.rule = f.rule;
  if (f.step !== null) p.chart.dataset.step = String(f.step);
}
