// The Evaluation panel's DOM: a bar (open/close, the evaluation and step choosers, AUC / AP / counts) over
// a grid of five chart cards (ROC, PR, score distributions, reliability, AUC over steps). DOM only: the
// controller (eval_controller.ts) fills it and draws the charts into the cards' hosts.
//
// Test ids: eval-panel (data-open, data-run, data-tag, data-step, data-state), eval-toggle, eval-select,
// eval-step, eval-step-prev, eval-step-next, eval-auc (the AUC, 6 decimals; data-value: the exact number),
// eval-ap, eval-count, eval-error, eval-logy, and the cards eval-roc, eval-pr, eval-dist, eval-calibration,
// eval-over-steps (data-state "loading" | "ready" | "error" | "none", data-points: points drawn), each
// with a title `${testid}-title`.

import { caret } from "./icons";
import { el } from "./dom";

export type EvalCardKey = "roc" | "pr" | "dist" | "calibration" | "overSteps";

export interface EvalCard {
  root: HTMLElement;
  title: HTMLElement;
  host: HTMLElement;
  tools: HTMLElement;
  status: HTMLElement;
}

export interface EvalPanelHandlers {
  onToggle: () => void;
  onSelect: (index: number) => void;
  onStep: (step: number) => void;
  onStepBy: (delta: number) => void;
  onLogY: (on: boolean) => void;
}

export interface EvalPanel {
  root: HTMLElement;
  toggle: HTMLButtonElement;
  select: HTMLSelectElement;
  step: HTMLSelectElement;
  prev: HTMLButtonElement;
  next: HTMLButtonElement;
  auc: HTMLElement;
  ap: HTMLElement;
  counts: HTMLElement;
  error: HTMLElement;
  logy: HTMLInputElement;
  /** The choosers and numbers next to the toggle (shown while open). */
  choosers: HTMLElement;
  body: HTMLElement;
  grid: HTMLElement;
  cards: Record<EvalCardKey, EvalCard>;
}

const CARDS: [EvalCardKey, string, string][] = [
  ["roc", "eval-roc", "ROC"],
  ["pr", "eval-pr", "Precision–recall"],
  ["dist", "eval-dist", "Score distributions"],
  ["calibration", "eval-calibration", "Reliability"],
  ["overSteps", "eval-over-steps", "AUC over steps"],
];

function card(testid: string, title: string): EvalCard {
  const t = el("span", { class: "tbp-chart-title", testid: `${testid}-title`, text: title, title });
  const status = el("span", { class: "tbp-chart-status" });
  const tools = el("span", { class: "tbp-chart-tools" });
  const host = el("div", { class: "tbp-chart-host tbp-eval-host" });
  const root = el(
    "section",
    { class: "tbp-eval-card", testid, "data-state": "none", "data-points": "0" },
    el("div", { class: "tbp-chart-head" }, t, status, tools),
    host,
  );
  return { root, title: t, host, tools, status };
}

export function createEvalPanel(h: EvalPanelHandlers): EvalPanel {
  const toggle = el("button", { class: "tbp-link tbp-eval-toggle", testid: "eval-toggle", title: "Show or hide the evaluation curves" });
  toggle.addEventListener("click", () => h.onToggle());
  const select = el("select", { class: "tbp-mini tbp-eval-select", testid: "eval-select", title: "Evaluation (run, tag)" });
  select.addEventListener("change", () => h.onSelect(Number(select.value)));
  const step = el("select", { class: "tbp-mini", testid: "eval-step", title: "Step of the evaluation" });
  step.addEventListener("change", () => h.onStep(Number(step.value)));
  const prev = el("button", { class: "tbp-button tbp-small", testid: "eval-step-prev", text: "‹", title: "Previous evaluation step" });
  const next = el("button", { class: "tbp-button tbp-small", testid: "eval-step-next", text: "›", title: "Next evaluation step" });
  prev.addEventListener("click", () => h.onStepBy(-1));
  next.addEventListener("click", () => h.onStepBy(1));
  const auc = el("b", { class: "tbp-eval-num", testid: "eval-auc", text: "—" });
  const ap = el("b", { class: "tbp-eval-num", testid: "eval-ap", text: "—" });
  const counts = el("span", { class: "tbp-muted", testid: "eval-count" });
  const error = el("span", { class: "tbp-error", testid: "eval-error", hidden: true });
  const logy = el("input", { type: "checkbox", testid: "eval-logy" });
  logy.addEventListener("change", () => h.onLogY(logy.checked));

  const cards = {} as Record<EvalCardKey, EvalCard>;
  const grid = el("div", { class: "tbp-eval-grid", testid: "eval-grid" });
  for (const [key, testid, title] of CARDS) {
    cards[key] = card(testid, title);
    grid.appendChild(cards[key].root);
  }
  cards.dist.tools.append(el("label", { class: "tbp-ctl", title: "Log scale for the counts" }, logy, "log y"));

  const choosers = el(
    "span",
    { class: "tbp-eval-choosers" },
    select,
    el("span", { class: "tbp-ctl-label", text: "step" }),
    prev,
    step,
    next,
    el("span", { class: "tbp-ctl-label", text: "AUC" }),
    auc,
    el("span", { class: "tbp-ctl-label", text: "AP" }),
    ap,
    counts,
  );
  const head = el("div", { class: "tbp-eval-head" }, toggle, choosers, error);
  const body = el("div", { class: "tbp-eval-body", testid: "eval-body" }, grid);
  const root = el("section", { class: "tbp-eval", testid: "eval-panel", hidden: true, "data-open": "false" }, head, body);
  return { root, toggle, select, step, prev, next, auc, ap, counts, error, logy, choosers, body, grid, cards };
}

/** Shows the panel open (bar and charts) or closed (the bar's toggle only). */
export function setEvalOpen(p: EvalPanel, open: boolean, listed: number): void {
  p.root.dataset.open = String(open);
  p.body.hidden = !open;
  p.choosers.hidden = !open;
  p.toggle.replaceChildren(caret(open), " Evaluation");
  p.toggle.append(el("span", { class: "tbp-count tbp-eval-count", text: `${listed} evaluation${listed === 1 ? "" : "s"}` }));
}

/** Fills the (run, tag) chooser; option values are indices into the list. */
export function setEvalOptions(p: EvalPanel, items: { run: string; tag: string; kind: string }[], chosen: number): void {
  const key = items.map((i) => `${i.run}\u0000${i.tag}\u0000${i.kind}`).join("\n");
  if (p.select.dataset.key !== key) {
    p.select.dataset.key = key;
    p.select.replaceChildren(
      ...items.map((it, i) =>
        el("option", {
          value: String(i),
          text: `${it.run} · ${it.tag}${it.kind === "pr_curves" ? " (pr_curves)" : ""}`,
          "data-run": it.run,
          "data-tag": it.tag,
          "data-kind": it.kind,
        }),
      ),
    );
  }
  p.select.value = String(chosen);
}

/** Fills the step chooser (the last step is marked) and enables prev/next. */
export function setEvalSteps(p: EvalPanel, steps: number[], current: number): void {
  const key = steps.join(",");
  if (p.step.dataset.key !== key) {
    p.step.dataset.key = key;
    p.step.replaceChildren(
      ...steps.map((s, i) => el("option", { value: String(s), text: i === steps.length - 1 ? `${s} (last)` : String(s) })),
    );
  }
  p.step.value = String(current);
  const i = steps.indexOf(current);
  p.prev.disabled = i <= 0;
  p.next.disabled = i < 0 || i >= steps.length - 1;
}

export function setCardState(c: EvalCard, state: "loading" | "ready" | "error" | "none", points = 0, status = ""): void {
  c.root.dataset.state = state;
  c.root.dataset.points = String(points);
  c.status.textContent = status;
  c.status.classList.toggle("error", state === "error");
}
