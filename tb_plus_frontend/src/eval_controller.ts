// The Evaluation panel's controller: binary-classifier evaluations of the log directory (GET evaluation),
// one at a time, at one step.
//
// - The list of evaluation tags is fetched once the directory is indexed and again whenever its runs or
//   tags change; the panel is hidden while the list is empty.
// - The choice lives in the view state (state.ts): `eval` (open), `erun`/`etag` (null: the first listed),
//   `estep` (null: the last step, so a running job's newest evaluation shows up by itself) and `elogy`.
// - Nothing but the list is fetched while the panel is closed. Open, it fetches the evaluation at the step
//   and the AUC series over steps (`<tag>/auc_roc` and `<tag>/auc_roc_volatility`, or `<tag>/roc_auc` for
//   pr_curves tags) through the ordinary /series route, and draws five charts (eval_chart.ts).

import { Api, ApiError, type Evaluation, type EvaluationList, type Series } from "./api";
import { CurveChart, type CurveSpec } from "./eval_chart";
import { type ViewState } from "./state";
import {
  createEvalPanel, setCardState, setEvalOpen, setEvalOptions, setEvalSteps, type EvalCardKey, type EvalPanel,
} from "./views/eval_panel";

const CHART_HEIGHT = 200;
const NEG_COLOR = "#1f77b4";
const POS_COLOR = "#d62728";
const CURVE_COLOR = "#1f77b4";
const AUC_COLOR = "#2ca02c";
const BASE_COLOR = "#9e9e9e";

export interface EvalContext {
  api: Api;
  /** The current view state (read on every use: the app replaces the object). */
  state: () => ViewState;
  /** Changes view-state keys and saves the state to the URL. */
  patch: (p: Partial<ViewState>) => void;
  /** False while the log directory's first index is being built. */
  ready: () => boolean;
}

interface Item {
  run: string;
  tag: string;
  kind: string;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Indices of `x` sorted ascending by x, then by `y` (stable). */
function order(x: ArrayLike<number>, y: ArrayLike<number>): number[] {
  const idx = Array.from({ length: x.length }, (_, i) => i).filter((i) => Number.isFinite(x[i]));
  let sorted = true;
  for (let k = 1; k < idx.length && sorted; k++) {
    const a = idx[k - 1];
    const b = idx[k];
    if (x[a] > x[b] || (x[a] === x[b] && y[a] > y[b])) sorted = false;
  }
  if (!sorted) idx.sort((a, b) => x[a] - x[b] || y[a] - y[b] || a - b);
  return idx;
}

function pick(values: ArrayLike<number>, idx: number[]): number[] {
  return idx.map((i) => values[i]);
}

function fixed(v: number | null, digits: number): string {
  return v === null ? "—" : v.toFixed(digits);
}

export class EvalController {
  readonly panel: EvalPanel;
  private items: Item[] = [];
  private listSeq = 0;
  private loadSeq = 0;
  private listError: string | null = null;
  private readonly charts = new Map<EvalCardKey, CurveChart>();
  private last: { e: Evaluation; over: { auc: Series | null; vol: Series | null; error: string | null } } | null = null;
  private resizeObserver: ResizeObserver | null = null;
  private resizeTimer = 0;

  constructor(private readonly ctx: EvalContext) {
    this.panel = createEvalPanel({
      onToggle: () => this.toggle(),
      onSelect: (i) => this.choose(i),
      onStep: (step) => this.chooseStep(step),
      onStepBy: (d) => this.stepBy(d),
      onLogY: (on) => {
        this.ctx.patch({ elogy: on });
        if (this.last) this.drawDistribution(this.last.e);
      },
    });
    if (typeof ResizeObserver !== "undefined") {
      this.resizeObserver = new ResizeObserver(() => {
        window.clearTimeout(this.resizeTimer);
        this.resizeTimer = window.setTimeout(() => this.fitWidths(), 100);
      });
      this.resizeObserver.observe(this.panel.grid);
    }
    this.render();
  }

  private get s(): ViewState {
    return this.ctx.state();
  }

  /** The chosen evaluation's index in the list: the state's (run, tag), else the first; -1 when none. */
  private chosenIndex(): number {
    if (!this.items.length) return -1;
    const s = this.s;
    const i = this.items.findIndex((it) => it.run === s.erun && it.tag === s.etag);
    return i >= 0 ? i : 0;
  }

  private chosen(): Item | null {
    const i = this.chosenIndex();
    return i >= 0 ? this.items[i] : null;
  }

  /** Forgets the old directory's evaluations (the caller clears erun/etag/estep in the state). */
  reset(): void {
    this.listSeq++;
    this.loadSeq++;
    this.items = [];
    this.listError = null;
    this.last = null;
    for (const c of this.charts.values()) c.destroy();
    this.charts.clear();
    for (const card of Object.values(this.panel.cards)) setCardState(card, "none");
    this.render();
  }

  /** Fetches the list of evaluation tags (cached until a run changes), then the open evaluation. */
  async loadList(): Promise<void> {
    if (!this.ctx.ready()) return;
    const seq = ++this.listSeq;
    let list: EvaluationList;
    try {
      list = await this.ctx.api.evaluations();
    } catch (e) {
      if (seq !== this.listSeq) return;
      this.listError = `evaluations: ${errorText(e)}`;
      this.render();
      return;
    }
    if (seq !== this.listSeq) return;
    this.listError = null;
    this.items = list.run.map((run, i) => ({ run, tag: list.tag[i], kind: list.kind[i] }));
    this.render();
    void this.load();
  }

  private render(): void {
    const p = this.panel;
    p.root.hidden = this.items.length === 0 && this.listError === null;
    setEvalOpen(p, this.s.eval, this.items.length);
    setEvalOptions(p, this.items, this.chosenIndex());
    const item = this.chosen();
    if (item) {
      p.root.dataset.run = item.run;
      p.root.dataset.tag = item.tag;
      p.root.dataset.kind = item.kind;
    } else {
      delete p.root.dataset.run;
      delete p.root.dataset.tag;
      delete p.root.dataset.kind;
    }
    this.showError(this.listError);
  }

  private showError(text: string | null): void {
    this.panel.error.hidden = text === null;
    this.panel.error.textContent = text ?? "";
  }

  private toggle(): void {
    this.ctx.patch({ eval: !this.s.eval });
    this.render();
    if (this.s.eval) void this.load();
  }

  private choose(index: number): void {
    const it = this.items[index];
    if (!it) return;
    this.ctx.patch({ erun: it.run, etag: it.tag, estep: null });
    this.render();
    void this.load();
  }

  private chooseStep(step: number): void {
    const steps = this.last?.e.steps ?? [];
    const item = this.chosen();
    if (!item) return;
    // The last step is "follow the newest": a later evaluation replaces it by itself.
    const estep = steps.length && step === steps[steps.length - 1] ? null : step;
    this.ctx.patch({ erun: item.run, etag: item.tag, estep });
    void this.load();
  }

  private stepBy(delta: number): void {
    const e = this.last?.e;
    if (!e) return;
    const i = e.steps.indexOf(e.step);
    const j = Math.max(0, Math.min(e.steps.length - 1, i + delta));
    if (i >= 0 && j !== i) this.chooseStep(e.steps[j]);
  }

  /** Data of some runs changed (null: anything may have): the list, and the open evaluation if its run did. */
  refresh(changed: Set<string> | null): void {
    const item = this.chosen();
    if (changed === null || !item || changed.has(item.run)) void this.loadList();
  }

  /** Fetches and draws the chosen evaluation at the chosen step, with its AUC over steps. */
  async load(): Promise<void> {
    const item = this.chosen();
    if (!this.s.eval || !item || !this.ctx.ready()) return;
    const seq = ++this.loadSeq;
    const step = this.s.erun === item.run && this.s.etag === item.tag ? this.s.estep : null;
    const p = this.panel;
    p.root.dataset.state = "loading";
    for (const card of Object.values(p.cards)) {
      card.root.dataset.state = "loading";
    }
    const overTags = item.kind === "pr_curves" ? [`${item.tag}/roc_auc`] : [`${item.tag}/auc_roc`, `${item.tag}/auc_roc_volatility`];
    const [evalResult, ...overResults] = await Promise.allSettled([
      this.ctx.api.evaluation(item.run, item.tag, step),
      ...overTags.map((tag) => this.ctx.api.series({ run: item.run, tag })),
    ]);
    if (seq !== this.loadSeq) return; // a newer choice
    if (evalResult.status === "rejected") {
      const e = evalResult.reason;
      if (step !== null && e instanceof ApiError && e.status === 404) {
        // The step is gone (another directory, a rewritten run): show the last one instead.
        this.ctx.patch({ estep: null });
        void this.load();
        return;
      }
      p.root.dataset.state = "error";
      this.showError(`${item.run} · ${item.tag}: ${errorText(e)}`);
      for (const card of Object.values(p.cards)) setCardState(card, "error", 0, "");
      return;
    }
    const e = evalResult.value as Evaluation;
    const aucSeries = overResults[0]?.status === "fulfilled" ? (overResults[0].value as Series) : null;
    const volSeries = overResults[1]?.status === "fulfilled" ? (overResults[1].value as Series) : null;
    const overError = overResults[0]?.status === "rejected" ? errorText(overResults[0].reason) : null;
    this.last = { e, over: { auc: aucSeries, vol: volSeries, error: overError } };
    this.showError(this.listError);
    this.draw();
    p.root.dataset.step = String(e.step);
    p.root.dataset.state = "ready";
  }

  private chart(key: EvalCardKey): CurveChart {
    let c = this.charts.get(key);
    if (!c) {
      const card = this.panel.cards[key];
      c = new CurveChart(card.host, CHART_HEIGHT, key === "overSteps" ? (x) => this.clickStep(x) : undefined);
      this.charts.set(key, c);
    }
    c.setWidth(this.panel.cards[key].host.clientWidth || 320);
    return c;
  }

  /** A click on the AUC-over-steps chart chooses the evaluation step nearest to it. */
  private clickStep(x: number): void {
    const steps = this.last?.e.steps;
    if (!steps?.length) return;
    let best = steps[0];
    for (const s of steps) if (Math.abs(s - x) < Math.abs(best - x)) best = s;
    if (best !== this.last?.e.step) this.chooseStep(best);
  }

  private fitWidths(): void {
    for (const [key, c] of this.charts) c.setWidth(this.panel.cards[key].host.clientWidth || 320);
  }

  private draw(): void {
    const last = this.last;
    if (!last) return;
    const { e } = last;
    const p = this.panel;
    setEvalSteps(p, e.steps, e.step);
    p.auc.textContent = fixed(e.auc, 6);
    p.auc.dataset.value = e.auc === null ? "" : String(e.auc);
    p.auc.title = e.aucErrorBound !== null ? `± ${e.aucErrorBound.toPrecision(2)} (bucket ties)` : "";
    p.ap.textContent = fixed(e.ap, 6);
    p.ap.dataset.value = e.ap === null ? "" : String(e.ap);
    const { positives, negatives, nan } = e.count;
    p.counts.textContent =
      `${positives.toLocaleString()} positives · ${negatives.toLocaleString()} negatives` + (nan ? ` · ${nan.toLocaleString()} NaN scores` : "");
    this.drawRoc(e);
    this.drawPr(e);
    this.drawDistribution(e);
    this.drawCalibration(e);
    this.drawOverSteps(e);
  }

  private drawRoc(e: Evaluation): void {
    const card = this.panel.cards.roc;
    const idx = order(e.roc.fpr, e.roc.tpr);
    const bound = e.aucErrorBound !== null ? ` ± ${e.aucErrorBound.toPrecision(2)}` : "";
    const title = `ROC · AUC ${fixed(e.auc, 6)}${bound}${e.kind === "pr_curves" ? " (trapezoid over thresholds)" : ""}`;
    card.title.textContent = title;
    card.title.title = title;
    card.root.hidden = false;
    const spec: CurveSpec = {
      x: pick(e.roc.fpr, idx),
      series: [{ label: "TPR", color: CURVE_COLOR, y: pick(e.roc.tpr, idx), width: 2 }],
      xLabel: "false positive rate",
      yLabel: "true positive rate",
      xRange: [0, 1],
      yRange: [0, 1],
      diagonal: true,
    };
    this.chart("roc").setData(spec);
    setCardState(card, "ready", idx.length, `${idx.length} pts`);
  }

  private drawPr(e: Evaluation): void {
    const card = this.panel.cards.pr;
    // Same recall: highest precision first. A (0, 0) point is a threshold above every score (no
    // predictions: TensorBoard's pr_curves write precision 0 there), not a point of the curve.
    const idx = order(e.pr.recall, e.pr.precision.map((v) => -v)).filter((i) => e.pr.recall[i] > 0 || e.pr.precision[i] > 0);
    const title = `Precision–recall${e.ap !== null ? ` · AP ${e.ap.toFixed(6)}` : ""}`;
    card.title.textContent = title;
    card.title.title = title;
    const total = e.count.positives + e.count.negatives;
    const base = total > 0 ? e.count.positives / total : NaN;
    const x = pick(e.pr.recall, idx);
    const spec: CurveSpec = {
      x,
      series: [
        { label: "precision", color: CURVE_COLOR, y: pick(e.pr.precision, idx), width: 2 },
        { label: "base rate", color: BASE_COLOR, y: x.map(() => base), width: 1, dash: [5, 4] },
      ],
      xLabel: "recall",
      yLabel: "precision",
      xRange: [0, 1],
      yRange: [0, 1],
    };
    this.chart("pr").setData(spec);
    setCardState(card, "ready", idx.length, `${idx.length} pts`);
  }

  private drawDistribution(e: Evaluation): void {
    const card = this.panel.cards.dist;
    const d = e.distribution;
    this.panel.logy.checked = this.s.elogy;
    if (!d) {
      card.root.hidden = true;
      setCardState(card, "none", 0, "");
      return;
    }
    card.root.hidden = false;
    const bins = d.negatives.length;
    const hold = (v: Float64Array): number[] => {
      const out = Array.from(v);
      out.push(bins ? v[bins - 1] : NaN); // the last bin holds to its right edge
      return out;
    };
    const title = `Score distributions · ${e.count.negatives.toLocaleString()} neg, ${e.count.positives.toLocaleString()} pos`;
    card.title.textContent = title;
    card.title.title = `${title} (${bins} bins of the ${d.space})`;
    const spec: CurveSpec = {
      x: Array.from(d.edges),
      series: [
        { label: "negatives", color: NEG_COLOR, y: hold(d.negatives), stepped: true, fill: `${NEG_COLOR}33`, width: 1.5 },
        { label: "positives", color: POS_COLOR, y: hold(d.positives), stepped: true, fill: `${POS_COLOR}33`, width: 1.5 },
      ],
      xLabel: d.space === "probability" ? "score" : "logit",
      yLabel: "count",
      yLog: this.s.elogy,
    };
    this.chart("dist").setData(spec);
    setCardState(card, "ready", bins, `${bins} bins${this.s.elogy ? " · log y" : ""}`);
    card.root.dataset.logy = String(this.s.elogy);
  }

  private drawCalibration(e: Evaluation): void {
    const card = this.panel.cards.calibration;
    const c = e.calibration;
    if (!c) {
      card.root.hidden = true;
      setCardState(card, "none", 0, "");
      return;
    }
    card.root.hidden = false;
    const keep = order(c.meanPredicted, c.fractionPositive).filter((i) => c.count[i] > 0 && Number.isFinite(c.fractionPositive[i]));
    const title = `Reliability · ECE ${Number.isFinite(c.ece) ? c.ece.toFixed(4) : "—"}`;
    card.title.textContent = title;
    card.title.title = title;
    const spec: CurveSpec = {
      x: pick(c.meanPredicted, keep),
      series: [{ label: "fraction positive", color: CURVE_COLOR, y: pick(c.fractionPositive, keep), width: 2, points: true }],
      xLabel: "mean predicted probability",
      yLabel: "fraction positive",
      xRange: [0, 1],
      yRange: [0, 1],
      diagonal: true,
    };
    this.chart("calibration").setData(spec);
    setCardState(card, "ready", keep.length, `${keep.length} bins`);
  }

  private drawOverSteps(e: Evaluation): void {
    const card = this.panel.cards.overSteps;
    const over = this.last?.over;
    const auc = over?.auc ?? null;
    if (!auc) {
      this.chart("overSteps").setData({ x: [], series: [], xLabel: "step", yLabel: "AUC" });
      setCardState(card, over?.error ? "error" : "ready", 0, over?.error ?? "no AUC series");
      return;
    }
    const vol = over?.vol ?? null;
    const volAt = new Map<number, number>();
    if (vol) for (let i = 0; i < vol.step.length; i++) volAt.set(vol.step[i], vol.value[i]);
    const idx = order(auc.step, new Float64Array(auc.step.length)); // steps as written may go back (a restart)
    const x = pick(auc.step, idx);
    const y = pick(auc.value, idx);
    const series: CurveSpec["series"] = [{ label: "AUC", color: AUC_COLOR, y, width: 2, points: true }];
    let band: CurveSpec["band"];
    if (vol) {
      const lo = x.map((s, i) => y[i] - (volAt.get(s) ?? NaN));
      const hi = x.map((s, i) => y[i] + (volAt.get(s) ?? NaN));
      series.push(
        { label: "AUC − volatility", color: `${AUC_COLOR}88`, y: lo, width: 0.5 },
        { label: "AUC + volatility", color: `${AUC_COLOR}88`, y: hi, width: 0.5 },
      );
      band = { lo: 1, hi: 2, fill: `${AUC_COLOR}2e` };
    }
    const title = `AUC over steps${vol ? " ± volatility" : ""}`;
    card.title.textContent = title;
    card.title.title = vol ? `${title} (standard deviation of the AUC over the last 5 evaluations)` : title;
    this.chart("overSteps").setData({ x, series, band, xLabel: "step", yLabel: "AUC", marker: e.step, integerX: true });
    setCardState(card, "ready", x.length, `${x.length} evaluations · click to choose a step`);
  }
}
