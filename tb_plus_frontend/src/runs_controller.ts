// The runs: /runs answers and their polling, the run table (selection and filter), run colours and labels,
// the highlight dimension's values, the hyperparameters, and the first view's default selection.
//
// - /runs is polled every `refresh` seconds, and every second while the directory is being indexed or an
//   uploaded run is awaited; an answer older than the last request sent is dropped. `take` keeps an
//   answer's bookkeeping (which runs grew, by their data version); the app passes the changes on to the
//   tags, the charts and the side panels.
// - The selection lives in the view state (`runs`, null: none chosen yet). While none is chosen it is the
//   runs with key series (/keytags), and a first view (no chart chosen either) charts the key series.

import { type Api, type DiagCounts, type Hparams, type KeyTag, type Progress, type RunInfo, type RunsAnswer, runVersion } from "./api";
import { type Emphasis } from "./chart";
import { PALETTE, RunColors } from "./colors";
import { WAITING_TEXT } from "./logdir_controller";
import { RunNames } from "./run_names";
import { type CustomSpec, type ViewState } from "./state";
import { RunTable } from "./views/run_table";

const NO_VALUE_COLOR = "#9e9e9e";
export const DEFAULT_RUNS = 10;
/** Runs a first view selects at most: those with key series, the most recently written first. */
export const FIRST_VIEW_RUNS = 20;
const POLL_INDEXING_MS = 1000;

export interface RunsContext {
  api: Api;
  /** The current view state (read on every use: the app replaces the object). */
  state: () => ViewState;
  /** Saves the view state to the URL (`replace`: no new history entry). */
  save: (replace?: boolean) => void;
  /** False while the log directory's first index is being built. */
  ready: () => boolean;
  /** The top bar's status line: a failed /runs says so there. */
  status: HTMLElement;
  /** The page's root: its data-refresh names the polling interval. */
  root: HTMLElement;
  /** Whether an uploaded run is awaited (polled for every second). */
  awaitingRun: () => boolean;
  /** A polled /runs answer of the current directory (`all`: every chart reloads). */
  onRuns: (answer: RunsAnswer, all: boolean) => void;
  /** A polled /runs failed (the status line already says why). */
  onRunsError: (e: unknown) => void;
  /** The selection changed (saved, table redrawn): the controls, charts and side panels follow. */
  onSelection: () => void;
  /** The run table's filters changed. */
  onFilter: () => void;
  /** A run's diagnostics badge was clicked. */
  showDiagnostics: (run: string) => void;
  /** A run's diagnostics counts for its badges while /runs has none. */
  diagCounts: (run: string) => DiagCounts | null;
  /** The hyperparameters arrived: the controls, the table and the charts follow. */
  onHparams: () => void;
  /** A first view's key series: the app charts them. */
  openCharts: (tags: string[]) => void;
  /** /keytags answered (or failed): the side panels may ask for their lists. */
  releaseSide: () => void;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Natural order: "layer2" before "layer10", numbers by value. */
function naturalCompare(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a !== "" && b !== "" && Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a.localeCompare(b, undefined, { numeric: true });
}

/** No chart chosen yet: no tags, pins, group or built charts, and no run selection. */
export function pristine(s: ViewState): boolean {
  return s.runs === null && !s.tags.length && !s.pins.length && s.group === null && !s.custom.length && !s.agg.length && !s.cmp.length;
}

export class RunsController {
  readonly table: RunTable;
  /** The runs of the last /runs answer, in table order. */
  runs: RunInfo[] = [];
  readonly selectedRuns = new Set<string>();
  private progress: Progress | null = null;
  private liveSeconds = 60;
  private staleSeconds: number | null = null;
  private runHparamNames: string[] = [];
  /** Run colours: stable per name, distinct among the selected runs (colors.ts). */
  private readonly colors = new RunColors();
  /** Short run names for the table and the legends (run_names.ts). */
  private readonly names = new RunNames(48);
  private readonly versions = new Map<string, string>();
  private hparams: Hparams = { runs: [], hparams: {} };
  private pollTimer = 0;
  private runsSeq = 0;
  /** The last /runs failed (e.g. a refused directory in the URL): poll at the normal pace, not fast. */
  private runsFailed = false;
  /** Runs that have a key series (/keytags): the default selection; null until known. */
  private keyRuns: Set<string> | null = null;
  private keySeq = 0;
  /** A first view's /keytags request, sent with /runs at start (the answer is read once the runs are in). */
  private earlyKeyTags: Promise<KeyTag[]> | null = null;
  /** Whether the next /keytags answer opens the charts (no chart was chosen yet in this directory). */
  private firstView: boolean;
  /** The tags a first view opened, while they are unchanged (a directory switch then opens the new ones). */
  private autoTags: string | null = null;

  constructor(private readonly ctx: RunsContext, firstView: boolean) {
    this.firstView = firstView;
    const runs = this.s.runs;
    if (runs) for (const r of runs) this.selectedRuns.add(r);
    this.table = new RunTable({
      onSelect: (names, on) => this.selectRuns(names, on),
      onDiagnostics: (run) => this.ctx.showDiagnostics(run),
      onFilter: () => this.ctx.onFilter(),
    });
  }

  /** The view state of the moment (the app replaces the object on a change). */
  private get s(): ViewState {
    return this.ctx.state();
  }

  /** A first view asks for the key series with the first /runs: the requests travel together. */
  askKeyTagsEarly(): void {
    this.earlyKeyTags = this.ctx.api.keyTags();
    this.earlyKeyTags.catch(() => undefined); // read (and its failure handled) by loadKeyTags
  }

  // ---- the run table

  render(): void {
    this.syncColors();
    const colorOf = this.s.dim ? (run: string) => this.style(run, "").color : this.runColor;
    this.table.update({
      labelOf: this.runLabel,
      runs: this.runs,
      hparamNames: this.runHparamNames,
      selected: this.selectedRuns,
      colorOf,
      liveSeconds: this.liveSeconds,
      staleSeconds: this.staleSeconds,
      emptyText: this.emptyText(),
      diagOf: (r) => r.diagnostics ?? this.ctx.diagCounts(r.name),
    });
  }

  private emptyText(): string {
    const p = this.progress;
    if (p?.indexing) return `Indexing the log directory: ${p.files_done}/${p.files_total} files…`;
    if (!this.ctx.ready()) return WAITING_TEXT;
    return this.s.logdir === null ? "No runs yet." : "No runs in this log directory yet.";
  }

  // ---- selection

  /** Selects (on) or deselects the named runs; the others stay as they are. */
  selectRuns(names: string[], on: boolean): void {
    this.s.runs = [];
    for (const n of names) {
      if (on) this.selectedRuns.add(n);
      else this.selectedRuns.delete(n);
    }
    this.afterSelection();
  }

  /** Selects this run alone (an upload's). */
  selectOnly(run: string): void {
    this.selectedRuns.clear();
    this.selectedRuns.add(run);
  }

  isSelected(run: string): boolean {
    return this.selectedRuns.has(run);
  }

  /** The selected runs in run order. */
  selected(): string[] {
    return this.runs.map((r) => r.name).filter((r) => this.selectedRuns.has(r));
  }

  private afterSelection(): void {
    this.ctx.save();
    this.render();
    this.ctx.onSelection();
  }

  /** Runs the charts draw: the selected runs that pass the run table's filters, in run order. */
  drawnRuns = (): string[] => {
    return this.runs.map((r) => r.name).filter((r) => this.selectedRuns.has(r) && this.table.passes(r));
  };

  /** Runs to draw for a tag: the drawn runs (a run without the tag answers 404, which the chart leaves
   * out silently). */
  runsFor = (_tag: string): string[] => this.drawnRuns();

  // ---- polling

  schedulePoll(): void {
    window.clearTimeout(this.pollTimer);
    this.pollTimer = 0;
    const fast = !this.runsFailed && (this.progress?.indexing || !this.ctx.ready() || this.ctx.awaitingRun());
    const delay = fast ? POLL_INDEXING_MS : this.s.refresh * 1000;
    if (delay > 0) this.pollTimer = window.setTimeout(() => void this.refresh(false), delay);
    this.ctx.root.dataset.refresh = String(this.s.refresh);
  }

  /**
   * Fetches /runs and hands the answer to the app, which refreshes the tags when runs appeared or their
   * tag counts moved, and the charts when runs appeared, vanished or grew (or when `all`). Series of runs
   * whose version did not change come from the cache, so a refresh fetches only the series of runs that grew.
   */
  async refresh(all: boolean): Promise<void> {
    const seq = ++this.runsSeq;
    let answer;
    try {
      answer = await this.ctx.api.runs();
    } catch (e) {
      if (seq !== this.runsSeq) return;
      this.runsFailed = true;
      this.ctx.status.textContent = `runs: ${errorMessage(e)}`;
      this.ctx.status.classList.add("error");
      this.ctx.onRunsError(e);
      this.schedulePoll();
      return;
    }
    if (seq !== this.runsSeq) return; // out of date
    this.ctx.onRuns(answer, all);
  }

  /** Drops the answer of a /runs request still on its way (it belonged to the old directory). */
  dropPending(): void {
    this.runsSeq++;
  }

  /** Takes a /runs answer of the current directory: the runs, their short names, the default selection
   * and the data versions. Returns the runs' names, the runs whose data changed, and whether the list did. */
  take(answer: RunsAnswer): { names: Set<string>; changed: Set<string>; runsChanged: boolean } {
    this.runsFailed = false;
    const status = this.ctx.status;
    if (status.classList.contains("error")) status.textContent = "";
    status.classList.remove("error");
    const before = this.runs.map((r) => r.name).join("\n");
    this.runs = answer.runs;
    this.progress = answer.progress;
    this.liveSeconds = answer.liveSeconds;
    this.staleSeconds = answer.staleSeconds;
    this.runHparamNames = answer.hparamNames;
    this.names.setRuns(this.runs.map((r) => r.name));
    const names = new Set(this.runs.map((r) => r.name));
    if (this.s.runs === null) this.selectDefaultRuns();
    const changed = new Set<string>();
    for (const r of this.runs) {
      const v = runVersion(r);
      if (this.versions.get(r.name) !== v) changed.add(r.name);
      this.versions.set(r.name, v);
    }
    for (const name of [...this.versions.keys()]) if (!names.has(name)) this.versions.delete(name);
    const runsChanged = before !== this.runs.map((r) => r.name).join("\n");
    return { names, changed, runsChanged };
  }

  /** Forgets the old directory's runs, selection, key series, run filter and hyperparameters. */
  reset(): void {
    this.runs = [];
    this.progress = null;
    this.runHparamNames = [];
    this.versions.clear();
    this.selectedRuns.clear();
    this.s.runs = null;
    this.keyRuns = null;
    this.keySeq++;
    if (this.autoTags !== null && this.autoTags === JSON.stringify(this.s.tags)) this.s.tags = []; // the first view's
    this.autoTags = null;
    // The run filter, sort anchor and highlight belonged to the old runs: a new directory starts unfiltered.
    this.table.resetFilters();
    this.hparams = { runs: [], hparams: {} };
  }

  // ---- first view

  /** A new directory is a first view again when no chart is chosen (called once every part dropped the
   * old directory's charts and selection). */
  renewFirstView(): void {
    this.firstView = this.firstView || pristine(this.s);
  }

  /** Whether /keytags is due: no selection was chosen, and the runs changed (`fresh`) or no answer came yet. */
  keyTagsDue(fresh: boolean): boolean {
    return this.s.runs === null && (fresh || this.keyRuns === null);
  }

  /** The selection while none was chosen: the runs with key series, the most recently written first (up to
   * FIRST_VIEW_RUNS); before /keytags answers (or without key series), the first DEFAULT_RUNS runs. */
  private selectDefaultRuns(): void {
    this.selectedRuns.clear();
    const keyed = this.keyRuns === null ? [] : this.runs.filter((r) => this.keyRuns!.has(r.name));
    if (keyed.length) {
      // Newest first by the first event's time (a copied directory's files all have the copy's mtime).
      const started = (r: RunInfo): number => r.firstWrite ?? r.lastWrite;
      keyed.sort((a, b) => started(b) - started(a) || b.lastWrite - a.lastWrite || (a.name < b.name ? -1 : 1));
      for (const r of keyed.slice(0, FIRST_VIEW_RUNS)) this.selectedRuns.add(r.name);
    } else {
      for (const r of this.runs.slice(0, DEFAULT_RUNS)) this.selectedRuns.add(r.name);
    }
  }

  /** Asks /keytags: the runs with key series become the default selection, and a first view charts the
   * key series themselves. */
  async loadKeyTags(): Promise<void> {
    if (!this.ctx.ready() || !this.runs.length) return;
    const seq = ++this.keySeq;
    const early = this.earlyKeyTags;
    this.earlyKeyTags = null;
    let tags;
    try {
      tags = await (early ?? this.ctx.api.keyTags());
    } catch {
      this.ctx.releaseSide();
      return; // the charts stay as chosen; the tree still lists every tag
    }
    if (seq !== this.keySeq) return;
    this.ctx.releaseSide();
    this.keyRuns = new Set(tags.flatMap((t) => t.runs));
    const open = this.firstView && pristine(this.s) && tags.length > 0;
    if (this.s.runs !== null) return;
    const before = [...this.selectedRuns].join("\n");
    this.selectDefaultRuns();
    // Only the key series that some selected run has: no first chart says "no data".
    const shown = tags.filter((t) => t.runs.some((r) => this.selectedRuns.has(r)));
    if (open && shown.length) {
      const chosen = shown.map((t) => t.tag);
      this.autoTags = JSON.stringify(chosen);
      this.firstView = false;
      this.ctx.openCharts(chosen);
    } else if (before !== [...this.selectedRuns].join("\n")) {
      this.afterSelection();
    }
  }

  // ---- hyperparameters

  async loadHparams(): Promise<void> {
    if (!this.ctx.ready()) return; // asked for again once the directory is indexed
    try {
      this.hparams = await this.ctx.api.hparams();
    } catch {
      this.hparams = { runs: [], hparams: {} };
    }
    this.ctx.onHparams();
  }

  /** The hyperparameters' names (the highlight dimension's choices). */
  hparamNames(): string[] {
    return Object.keys(this.hparams.hparams).sort();
  }

  // ---- colours, labels, dimensions, emphasis

  private runColor = (run: string): string => this.colors.color(run);

  /** Recomputes the colour assignment for the selected runs (cheap when the selection did not change). */
  private syncColors(): void {
    this.colors.setDrawn(this.selectedRuns);
  }

  /** A run's name as shown (the shared leading path elided, cut in the middle). */
  runLabel = (run: string, maxChars?: number): string => this.names.short(run, maxChars);

  /** Style of a series of a custom chart: a run with several series in it gets a colour per series. */
  customStyle(spec: CustomSpec, run: string, tag: string): { color: string; emphasis: Emphasis } {
    const base = this.style(run, tag);
    if (this.s.dim) return base;
    const own = spec.series.filter(([r]) => r === run).map(([, t]) => t);
    if (own.length < 2) return base;
    const taken = new Set(spec.series.filter(([r]) => r !== run).map(([r]) => this.colors.index(r)));
    const colors = this.colors.seriesColors(run, own.length, taken);
    return { color: colors[Math.max(0, own.indexOf(tag))], emphasis: base.emphasis };
  }

  /** The value of the highlight dimension for a (run, tag) series, or null. */
  private dimValue(run: string, tag: string): string | null {
    const dim = this.s.dim;
    const i = dim.indexOf(":");
    if (i < 0) return null;
    const kind = dim.slice(0, i);
    const arg = dim.slice(i + 1);
    if (kind === "run_regex") {
      let re: RegExp;
      try {
        re = new RegExp(arg);
      } catch {
        return null;
      }
      const m = re.exec(run);
      return m ? m[1] ?? m[0] : null;
    }
    if (kind === "run_split") return run.split("/")[Number(arg)] ?? null;
    if (kind === "tag_level") return tag.split("/")[Number(arg)] ?? null;
    if (kind === "hparam") {
      const col = this.hparams.hparams[arg];
      const k = this.hparams.runs.indexOf(run);
      if (!col || k < 0 || col[k] === null || col[k] === undefined) return null;
      return String(col[k]);
    }
    return null;
  }

  /** Every (run, tag) pair on screen, for the values of the dimension. */
  private visiblePairs(): [string, string][] {
    const out: [string, string][] = [];
    for (const tag of this.s.tags) for (const run of this.runsFor(tag)) out.push([run, tag]);
    for (const c of this.s.custom) out.push(...c.series);
    if (!out.length) for (const run of this.selectedRuns) out.push([run, ""]);
    return out;
  }

  private dimValues(): string[] {
    if (!this.s.dim) return [];
    const values = new Set<string>();
    for (const [run, tag] of this.visiblePairs()) {
      const v = this.dimValue(run, tag);
      if (v !== null) values.add(v);
    }
    return [...values].sort(naturalCompare);
  }

  /** The values of the highlight dimension on screen with their colours (the controls' legend). */
  dimLegend(): { value: string; color: string }[] {
    const values = this.dimValues();
    return values.map((value) => ({ value, color: this.dimColor(value, values) }));
  }

  private dimColor(value: string | null, values: string[]): string {
    if (value === null) return NO_VALUE_COLOR;
    const i = values.indexOf(value);
    return i < 0 ? NO_VALUE_COLOR : PALETTE[i % PALETTE.length];
  }

  private emphasisOf(value: string | null): Emphasis {
    if (!this.s.dim || this.s.hl === null) return "normal";
    return value === this.s.hl ? "emph" : "dim";
  }

  /** Colour and emphasis of a (run, tag) series: the run's colour, or its highlight dimension value's. */
  style = (run: string, tag: string): { color: string; emphasis: Emphasis } => {
    if (!this.s.dim) return { color: this.runColor(run), emphasis: "normal" };
    const v = this.dimValue(run, tag);
    return { color: this.dimColor(v, this.dimValues()), emphasis: this.emphasisOf(v) };
  };

  /** Colour and emphasis of an aggregation group (emphasised when it groups by the highlight dimension). */
  groupStyle = (groupBy: string, key: string, index: number): { color: string; emphasis: Emphasis } => {
    const sameDim = this.s.dim && (groupBy === this.s.dim || groupBy.replace(/^run_regex:/, "") === this.s.dim.replace(/^run_regex:/, ""));
    const emphasis: Emphasis = sameDim && this.s.hl !== null ? (key === this.s.hl ? "emph" : "dim") : "normal";
    return { color: PALETTE[index % PALETTE.length], emphasis };
  };
}
