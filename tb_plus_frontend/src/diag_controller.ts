// The Diagnostics panel's controller: the findings of the rules engine (GET diagnostics, tb_plus.diagnostics).
//
// - The findings of every run are fetched once per data version of the runs (api.ts caches them), when
//   the directory is indexed and whenever a run changes; an answer still `pending` (a first diagnosis
//   being computed) is asked for again after a moment. The panel is hidden while the backend has no route.
// - They serve three places: the panel's list (filtered by severity and by runs: the selected runs, or
//   every run when none is, all runs, or one run), markers on the ordinary charts (`annotationsFor`: a
//   finding of run R listing tag T, with a step, marks the chart of T where it draws R), and the run
//   table's badges (`countsOf`, when /runs has no counts yet).
// - Clicking a finding selects its run and charts its tags (a "custom" chart card, up to MAX_TAGS) with a
//   marker at the onset step and a band to the last step of the range.
// - The choice lives in the view state (state.ts): `diag` (open), `dsev`, `dscope`, `dfind`.

import { type Api, type DiagCounts, type Diagnostics, type Finding, type Severity } from "./api";
import { type Annotation, ChartCard } from "./chart_card";
import { type CustomSpec, type ViewState } from "./state";
import {
  SEVERITY_COLOR, SEVERITY_ICON, createDiagPanel, setDiagChart, setDiagFilter, setDiagFindings, setDiagOpen, setDiagScope, stepRange, type DiagPanel,
} from "./views/diag_panel";

/** Findings listed at most (the rest are counted). */
const LIST_LIMIT = 200;
/** Tags of a finding charted at most. */
const MAX_TAGS = 4;
/** How long to wait before asking again while the server is still diagnosing. */
const PENDING_RETRY_MS = 2000;

export interface DiagContext {
  api: Api;
  state: () => ViewState;
  patch: (p: Partial<ViewState>) => void;
  ready: () => boolean;
  /** Every run, in table order. */
  runs: () => string[];
  /** The selected runs. */
  selected: () => string[];
  /** Selects a run (the others stay selected). */
  selectRun: (run: string) => void;
  /** A run's colour in the charts and its name as shown (the markers on ordinary charts use both). */
  runColor?: (run: string) => string;
  runLabel?: (run: string) => string;
  /** A chart card for `spec` drawing `annotations`; `onClose` when its ✕ is clicked. */
  newCard: (spec: CustomSpec, annotations: () => Annotation[], onClose: () => void) => ChartCard;
  /** The findings (or the severities shown) changed: badges and chart markers follow. */
  onChange: () => void;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A finding's marker. On the finding's own chart: the severity's colour and the title. On ordinary charts
 * (`run` given): the run's colour, and the severity, the run's name and the title in the label. */
function annotationOf(f: Finding, tag: string | null, testid: string, run?: { color: string; label: string }): Annotation {
  return {
    key: f.id,
    run: f.run,
    tag,
    step: f.step as number,
    stepEnd: f.stepEnd,
    label: run ? `${SEVERITY_ICON[f.severity]} ${run.label}: ${f.title}` : f.title,
    color: run ? run.color : SEVERITY_COLOR[f.severity],
    testid,
    data: { rule: f.rule, severity: f.severity, id: f.id },
  };
}

/** Rules whose series are layer norms or ratios: their chart opens with a log y axis. */
const LOG_Y_RULES = new Set(["vanishing_gradients", "exploding_gradients", "update_ratio", "weights_not_updated",
  "weight_growth", "nonfinite_tensor"]);

export class DiagController {
  readonly panel: DiagPanel;
  private data: Diagnostics | null = null;
  private error: string | null = null;
  private seq = 0;
  private retryTimer = 0;
  /** run + "\0" + tag -> findings with a step listing that tag. */
  private byTag = new Map<string, Finding[]>();
  private card: ChartCard | null = null;
  private cardKey = "";

  constructor(private readonly ctx: DiagContext) {
    this.panel = createDiagPanel({
      onToggle: () => {
        this.ctx.patch({ diag: !this.s.diag });
        this.render();
      },
      onSeverity: (sev, on) => {
        const dsev = this.s.dsev.filter((v) => v !== sev);
        if (on) dsev.push(sev);
        this.ctx.patch({ dsev });
        this.index();
        this.render();
        this.ctx.onChange();
      },
      onScope: (scope) => {
        this.ctx.patch({ dscope: scope });
        this.render();
      },
      onPick: (id) => this.pick(id),
    });
    this.render();
  }

  private get s(): ViewState {
    return this.ctx.state();
  }

  /** Forgets the old directory's findings (the caller resets dscope / dfind in the state). */
  reset(): void {
    this.seq++;
    window.clearTimeout(this.retryTimer);
    this.data = null;
    this.error = null;
    this.byTag.clear();
    this.dropCard();
    this.render();
  }

  /** Fetches the findings of every run (cached per run versions) and redraws what shows them. */
  async load(): Promise<void> {
    if (!this.ctx.ready()) return;
    const seq = ++this.seq;
    window.clearTimeout(this.retryTimer);
    this.panel.root.dataset.state = "loading";
    let d: Diagnostics;
    try {
      d = await this.ctx.api.diagnostics();
    } catch (e) {
      if (seq !== this.seq) return;
      this.error = `diagnostics: ${errorText(e)}`;
      this.panel.root.dataset.state = "error";
      this.render();
      return;
    }
    if (seq !== this.seq) return;
    this.error = null;
    this.data = d;
    if (d.pending) this.retryTimer = window.setTimeout(() => void this.load(), PENDING_RETRY_MS);
    this.index();
    this.render();
    this.panel.root.dataset.state = "ready";
    this.ctx.onChange();
  }

  /** Severities shown (the panel's filter; the chart markers follow it too). */
  private severities(): Severity[] {
    return this.s.dsev;
  }

  private index(): void {
    this.byTag.clear();
    const sev = this.severities();
    for (const f of this.data?.findings ?? []) {
      if (f.step === null || !sev.includes(f.severity)) continue;
      for (const t of f.tags) {
        const key = `${f.run}\u0000${t}`;
        const list = this.byTag.get(key);
        if (list) list.push(f);
        else this.byTag.set(key, [f]);
      }
    }
  }

  /** Markers for the charts drawing these (run, tag) series: the findings listing them (worst first). */
  annotationsFor = (pairs: [string, string][]): Annotation[] => {
    const out: Annotation[] = [];
    if (!this.s.dover) return out; // switched off in the controls
    for (const [run, tag] of pairs) {
      const findings = this.byTag.get(`${run}\u0000${tag}`);
      if (!findings) continue;
      const style = { color: this.ctx.runColor?.(run) ?? "#c62828", label: this.ctx.runLabel?.(run) ?? run };
      for (const f of findings) out.push(annotationOf(f, tag, "chart-annotation", style));
    }
    return out;
  };

  /** A run's counts from the last answer (null: not diagnosed, or no answer yet). */
  countsOf(run: string): DiagCounts | null {
    return this.data?.runs[run] ?? null;
  }

  /** The runs listed: a set, or null for every run. */
  private scopeRuns(): Set<string> | null {
    const scope = this.s.dscope;
    if (scope.startsWith("run:")) return new Set([scope.slice(4)]);
    if (scope === "all") return null;
    const sel = this.ctx.selected();
    return sel.length ? new Set(sel) : null;
  }

  private listed(): Finding[] {
    const runs = this.scopeRuns();
    const sev = this.severities();
    return (this.data?.findings ?? []).filter((f) => sev.includes(f.severity) && (runs === null || runs.has(f.run)));
  }

  /** Opens the panel on one run's findings (the run table's badge). */
  showRun(run: string): void {
    this.ctx.patch({ diag: true, dscope: `run:${run}` });
    this.render();
    this.panel.root.scrollIntoView({ block: "nearest" });
  }

  /** Redraws the panel (after a selection change too: "selected runs" follows it). */
  render(): void {
    const p = this.panel;
    const d = this.data;
    p.root.hidden = d !== null && !d.available && this.error === null;
    const runs = this.ctx.runs();
    let total: DiagCounts | null = null;
    if (d) {
      // The bar counts the runs the list shows (the scope), like the list.
      const scope = this.scopeRuns();
      total = { error: 0, warning: 0, info: 0 };
      for (const [run, c] of Object.entries(d.runs)) {
        if (scope !== null && !scope.has(run)) continue;
        total.error += c.error;
        total.warning += c.warning;
        total.info += c.info;
      }
    }
    setDiagOpen(p, this.s.diag, total);
    setDiagFilter(p, this.severities());
    setDiagScope(p, runs, this.s.dscope, this.ctx.selected().length);
    p.pending.hidden = !d?.pending;
    p.error.hidden = this.error === null;
    p.error.textContent = this.error ?? "";
    if (!this.s.diag) {
      this.dropCard();
      return;
    }
    const listed = this.listed();
    const emptyText = d === null ? "Loading the diagnostics…" : d.pending && !listed.length ? "Diagnosing the runs…" : "No findings for these runs and severities.";
    setDiagFindings(p, listed, this.s.dfind, LIST_LIMIT, emptyText, (id) => this.pick(id));
    this.renderChart();
  }

  private chosen(): Finding | null {
    const id = this.s.dfind;
    if (id === null || !this.data) return null;
    return this.data.findings.find((f) => f.id === id) ?? null;
  }

  private pick(id: string): void {
    const f = this.data?.findings.find((x) => x.id === id);
    if (!f) return;
    this.ctx.patch({ dfind: id });
    if (!this.ctx.selected().includes(f.run)) this.ctx.selectRun(f.run); // redraws the panel too
    else this.render();
    this.panel.chart.scrollIntoView({ block: "nearest" });
  }

  /** The chosen finding's chart: its run's series of its first tags, a marker at its step (log y
   * for the per-layer rules, whose series differ by orders of magnitude). */
  private renderChart(): void {
    const f = this.chosen();
    setDiagChart(this.panel, f !== null && f.tags.length ? f : null);
    if (!f || !f.tags.length) {
      this.dropCard();
      return;
    }
    const tags = f.tags.slice(0, MAX_TAGS);
    const key = JSON.stringify([f.id, f.step, f.stepEnd, f.title, tags]);
    if (this.card && key === this.cardKey) {
      this.card.redrawAnnotations();
      return;
    }
    this.dropCard();
    const range = stepRange(f);
    const spec: CustomSpec = { id: "diag", title: `${f.run} · ${f.title}${range ? ` · ${range}` : ""}`, series: tags.map((t) => [f.run, t]) };
    const annotations = (): Annotation[] => (f.step === null ? [] : [annotationOf(f, null, "diag-annotation")]);
    const card = this.ctx.newCard(spec, annotations, () => {
      this.ctx.patch({ dfind: null });
      this.render();
    });
    // Norms and ratios of layers span decades (a vanishing first layer sits at 1e-10 beside 0.5): log y.
    if (LOG_Y_RULES.has(f.rule)) card.opts = { ...card.opts, ylog: true };
    this.card = card;
    this.cardKey = key;
    this.panel.chart.appendChild(card.panel.root);
    card.mount();
    card.refresh();
  }

  private dropCard(): void {
    this.card?.destroy();
    this.card = null;
    this.cardKey = "";
  }

  /** Data of some runs changed: ask again (the cache answers at once when nothing changed). */
  refresh(): void {
    void this.load();
  }

  /** Refetches the open chart (its run changed, or the axis / smoothing settings did). */
  refreshChart(changed: Set<string> | null = null): void {
    const f = this.chosen();
    if (this.card && (changed === null || (f && changed.has(f.run)))) this.card.refresh();
  }
}
