// The TB+ tab: state, polling and wiring between the API, the views and the chart cards.
// Every user choice lives in one ViewState, saved to the URL and localStorage on each change (state.ts).
//
// Sized for 100,000 tags and 1,000 runs: the tag tree is fetched level by level (tag_tree_model.ts) and
// drawn virtualised, a group's charts come a page at a time, and the run table draws only its visible rows.
// Client timings (performance.measure): tbp:tree, tbp:search, tbp:table, tbp:table-filter.
//
// Log directories: the view names one (`logdir`, null: TensorBoard's --logdir) and every request carries it
// (api.ts). Switching checks the new directory with /runs first (a refusal is shown in the picker and the
// current view stays), then drops what belonged to the old one (run selection, tag tree, group, built
// charts of its runs, caches) and keeps the rest of the view (open tags, axes, pins). A directory opened
// for the first time answers /runs at once with no runs while it is indexed: the tab shows the progress and
// polls every second, and asks for nothing else (tags, series) until the runs are there.

import { Api, ApiError, runVersion, type Hparams, type KeyTag, type LogdirsInfo, type Progress, type RunInfo, type RunsAnswer, type SearchMode } from "./api";
import { type Emphasis } from "./chart";
import { ChartCard, cardId, type Annotation, type CardSpec, type ChartCardContext } from "./chart_card";
import { DiagController } from "./diag_controller";
import { EvalController } from "./eval_controller";
import { TraceController } from "./trace_controller";
import { connectHost } from "./host";
import {
  RECENT_MAX, hasSavedState, loadRecentLogdirs, loadState, newId, normalizeLogdir, rememberLogdir, saveState, viewLink, watchUrl,
  type ChartOpts, type CustomSpec, type ViewState,
} from "./state";
import { TagTreeModel } from "./tag_tree_model";
import { createControls, type Controls } from "./views/controls";
import { createLayout, showProgress, type Layout } from "./views/layout";
import { RunTable } from "./views/run_table";
import { TagTreeView, type PinState } from "./views/tag_tree";
import { el } from "./views/dom";
import { LogdirPicker } from "./views/logdir_picker";
import { createShareLink } from "./views/share";
import { PALETTE, RunColors } from "./colors";
import { RunNames } from "./run_names";

export { PALETTE };
const NO_VALUE_COLOR = "#9e9e9e";
export const DEFAULT_RUNS = 10;
/** Runs a first view selects at most: those with key series, the most recently written first. */
export const FIRST_VIEW_RUNS = 20;
/** Charts per page of a group. */
export const GROUP_PAGE = 24;
/** Charts at most per pin in the Pinned section. */
export const PIN_LIMIT = 48;
/** Matches at most per search answer. */
const SEARCH_LIMIT = 1000;
const SEARCH_DEBOUNCE_MS = 250;
const POLL_INDEXING_MS = 1000;
const LOGDIR_QUERY_DEBOUNCE_MS = 200;
/** How long the tab polls fast for an uploaded run to appear in its directory. */
const PENDING_RUN_MS = 60000;
/** Charts opened for an uploaded run when none are open. */
const UPLOAD_CHARTS = 6;
const WAITING_TEXT = "Waiting for the log directory's index…";
const FOCUS_THROTTLE_MS = 2000;
const MAX_X_TAGS = 500;

/** An fnmatch-style glob (`*` any characters, `?` one, `[...]` / `[!...]` a set) as an anchored,
 * case-insensitive regular expression, the way the server reads pins (tag search ignores case in every mode). */
export function globRegex(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[") {
      const close = glob.indexOf("]", i + 2);
      if (close < 0) {
        out += "\\[";
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith("!");
      if (negate) body = body.slice(1);
      out += `[${negate ? "^" : ""}${body.replace(/[\\^\]]/g, "\\$&")}]`;
      i = close;
    } else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`, "si");
}

/** Natural order: "layer2" before "layer10", numbers by value. */
function naturalCompare(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a !== "" && b !== "" && Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a.localeCompare(b, undefined, { numeric: true });
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class App {
  private readonly api = new Api();
  private layout!: Layout;
  private controls!: Controls;
  private s!: ViewState;
  private runs: RunInfo[] = [];
  private progress: Progress | null = null;
  private liveSeconds = 60;
  private staleSeconds: number | null = null;
  private runHparamNames: string[] = [];
  private readonly selectedRuns = new Set<string>();
  /** Run colours: stable per name, distinct among the selected runs (colors.ts). */
  private readonly colors = new RunColors();
  /** Short run names for the table and the legends (run_names.ts). */
  private readonly names = new RunNames(48);
  private readonly versions = new Map<string, string>();
  private readonly cards = new Map<string, ChartCard>();
  private evalCtl!: EvalController;
  private diagCtl!: DiagController;
  private traceCtl!: TraceController;
  private hparams: Hparams = { runs: [], hparams: {} };
  private pollTimer = 0;
  private runsSeq = 0;
  private lastFocusRefresh = 0;
  private focusTimer = 0;

  // tags
  private tree!: TagTreeModel;
  private treeView!: TagTreeView;
  private runTable!: RunTable;
  /** Run names and tag counts of the last /runs answer: when it changes, tags may have appeared. */
  private tagsKey: string | null = null;
  private tagsGen = 0;
  private searchTimer = 0;
  private searchSeq = 0;
  /** The first tags of the log directory (x-axis choices and the chart builders' lists). */
  private tagSample: string[] = [];
  private sampleSeq = 0;
  /** Tags each pin resolves to on the server (a pin not yet resolved is absent). */
  private pinned = new Map<string, string[]>();
  private pinsSeq = 0;
  private pinRegexes = new Map<string, RegExp>();
  private groupTotal: number | null = null;
  private groupError: string | null = null;
  private groupSeq = 0;

  // log directories
  private picker!: LogdirPicker;
  private logdirsInfo: LogdirsInfo | null = null;
  /** False from opening a directory until its first index is in place (runs listed, or indexing done). */
  private dirReady = true;
  private switchSeq = 0;
  private querySeq = 0;
  private queryTimer = 0;
  private queryAbort: AbortController | null = null;
  private recent: string[] = [];
  /** An uploaded run to select once its directory lists it. */
  private pendingRun: { name: string; until: number } | null = null;
  /** The last /runs failed (e.g. a refused directory in the URL): poll at the normal pace, not fast. */
  private runsFailed = false;

  // first view
  /** Runs that have a key series (/keytags): the default selection; null until known. */
  private keyRuns: Set<string> | null = null;
  private keySeq = 0;
  /** A first view's /keytags request, sent with /runs at start (the answer is read once the runs are in). */
  private earlyKeyTags: Promise<KeyTag[]> | null = null;
  /** While a first view waits for its charts, the side panels (evaluation, layers) do not ask for their
   * lists: a browser sends six requests at a time per host, and the first charts' requests come first. */
  private holdSide = false;
  /** Whether the next /keytags answer opens the charts (no chart was chosen yet in this directory). */
  private firstView = false;
  /** The tags a first view opened, while they are unchanged (a directory switch then opens the new ones). */
  private autoTags: string | null = null;

  start(parent: HTMLElement): void {
    this.layout = createLayout(parent);
    this.s = loadState();
    this.api.setLogdir(this.s.logdir);
    // A directory named by the URL may be opened for the first time: nothing but /runs until it is indexed.
    this.dirReady = this.s.logdir === null;
    this.firstView = !hasSavedState() && this.pristine();
    this.recent = loadRecentLogdirs();
    if (this.s.runs) for (const r of this.s.runs) this.selectedRuns.add(r);
    this.picker = new LogdirPicker({
      onOpen: (path) => void this.switchLogdir(path),
      onDefault: () => void this.switchLogdir(null),
      onQuery: (prefix) => this.queryLogdirs(prefix),
      onUpload: (file, run) => void this.upload(file, run),
    });
    this.layout.logdirHost.appendChild(this.picker.root);
    this.renderPicker();
    this.controls = createControls({
      onChange: (patch) => this.changeState(patch),
      onAddCustom: (spec) => {
        this.s.custom.push({ id: newId(), ...spec });
        this.afterChartsChanged();
      },
      onAddAgg: (spec) => {
        this.s.agg.push({ id: newId(), ...spec });
        this.afterChartsChanged();
      },
      onAddCmp: (spec) => {
        this.s.cmp.push({ id: newId(), ...spec });
        this.afterChartsChanged();
      },
    });
    this.layout.controlsHost.appendChild(this.controls.root);
    // the side panels (evaluation, layers) share how they read and change the view state
    const panelState = {
      api: this.api,
      state: () => this.s,
      patch: (p: Partial<ViewState>) => {
        Object.assign(this.s, p);
        this.save();
      },
      ready: () => this.dirReady,
    };
    this.diagCtl = new DiagController({
      ...panelState,
      runs: () => this.runs.map((r) => r.name),
      selected: () => this.runs.map((r) => r.name).filter((r) => this.selectedRuns.has(r)),
      selectRun: (run) => this.selectRuns([run], true),
      runColor: (run) => this.style(run, "").color,
      runLabel: (run) => this.runLabel(run, 24),
      newCard: (spec, annotations, onClose) => {
        const card = new ChartCard(
          { kind: "custom", spec },
          {
            ...this.cardContext(),
            style: (run, tag) => this.customStyle(spec, run, tag),
            annotations: () => annotations(),
            onOpts: (c, o) => (c.opts = o),
            onClose: () => onClose(),
            onPin: () => undefined,
            isPinned: () => false,
          },
        );
        // Not one of the chart area's cards (its own class, so that counting .tbp-chart counts those).
        card.panel.root.classList.replace("tbp-chart", "tbp-diag-card");
        return card;
      },
      onChange: () => {
        this.renderRuns();
        for (const card of this.cards.values()) card.redrawAnnotations();
      },
    });
    this.layout.diagHost.appendChild(this.diagCtl.panel.root);
    const sideState = { ...panelState, ready: () => this.dirReady && !this.holdSide };
    this.evalCtl = new EvalController(sideState);
    this.layout.evalHost.appendChild(this.evalCtl.panel.root);
    this.traceCtl = new TraceController({
      ...sideState,
      candidates: () => {
        const selected = this.runs.filter((r) => this.selectedRuns.has(r.name)).map((r) => r.name);
        return selected.length ? selected : this.runs.slice(0, 1).map((r) => r.name);
      },
    });
    this.layout.traceHost.appendChild(this.traceCtl.panel.root);

    this.tree = new TagTreeModel(
      this.api,
      (t0) => {
        this.renderTree();
        performance.measure("tbp:tree", { start: t0, end: performance.now() });
      },
      (message) => {
        this.layout.status.textContent = `tags: ${message}`;
      },
    );
    this.tree.setSeparator(this.s.sep);
    // A first view charts the key series and lists the groups collapsed, as TensorBoard does.
    this.tree.openSmallTree = !this.firstView;
    if (!this.dirReady) this.tree.waiting = WAITING_TEXT;
    this.treeView = new TagTreeView(
      {
        onToggleTag: (path) => this.toggleTag(path),
        onShowGroup: (path) => this.showGroup(path),
        onToggleExpand: (path) => {
          this.tree.toggle(path);
          this.renderTree();
        },
        onMore: (parent) => {
          this.tree.more(parent);
          this.renderTree();
        },
        onPin: (path) => this.togglePin(path),
        onSearch: () => {
          window.clearTimeout(this.searchTimer);
          this.searchTimer = window.setTimeout(() => void this.runSearch(), SEARCH_DEBOUNCE_MS);
        },
        onSeparator: (sep) => this.setSeparator(sep),
      },
      {
        selected: (path) => this.s.tags.includes(path),
        pinned: (path) => this.pinState(path),
      },
    );
    this.treeView.sep.value = this.s.sep;
    this.layout.tagsHost.appendChild(this.treeView.root);

    this.runTable = new RunTable({
      onSelect: (names, on) => this.selectRuns(names, on),
      onDiagnostics: (run) => this.diagCtl.showRun(run),
      onFilter: () => this.afterRunFilter(),
    });
    this.layout.runsHost.appendChild(this.runTable.root);

    this.layout.reload.addEventListener("click", () => void this.reload(true));
    window.addEventListener("focus", () => this.onFocus());
    connectHost(() => void this.reload(false));
    this.save(true);
    // Back, Forward or a pasted link name another view: start again from it (every part of the view
    // follows the state, and a fresh start is the one path that builds all of them).
    watchUrl(() => window.location.reload());
    this.layout.top.append(createShareLink(viewLink));
    // Runs, the tree's first level, pins and the tag sample are asked for at once: the requests travel
    // while the chart cards are built below. A first view also asks for the key series at once.
    this.holdSide = this.firstView;
    if (this.firstView && this.dirReady) {
      this.earlyKeyTags = this.api.keyTags();
      this.earlyKeyTags.catch(() => undefined); // read (and its failure handled) by loadKeyTags
    }
    void this.reload(false);
    void this.loadLogdirs();
    this.renderTree();
    void this.loadTagSample();
    void this.resolvePins();
    void this.evalCtl.loadList();
    void this.traceCtl.loadList();
    void this.diagCtl.load();
    if (this.s.group !== null) void this.loadGroupPage(false);
    this.renderGroupBar();
    this.renderControls();
    this.renderCards();
  }

  /** Refetches runs and every chart; `hard` also drops the caches (series and tags). */
  async reload(hard: boolean): Promise<void> {
    if (hard) {
      this.api.clear();
      if (this.dirReady) this.refreshTags();
    }
    this.layout.status.textContent = "";
    await this.refreshRuns(true);
  }

  /** Refreshes when the tab regains focus: at most once per 2 s, a later focus is not lost but delayed. */
  private onFocus(): void {
    if (this.focusTimer) return;
    const wait = Math.max(0, this.lastFocusRefresh + FOCUS_THROTTLE_MS - Date.now());
    this.focusTimer = window.setTimeout(() => {
      this.focusTimer = 0;
      this.lastFocusRefresh = Date.now();
      void this.reload(false);
    }, wait);
  }

  /** Saves the view (see saveState: a change adds a history entry unless `replace`). */
  private save(replace = false): void {
    this.s.runs = this.s.runs === null ? null : [...this.selectedRuns];
    saveState(this.s, replace);
  }

  /** Applies a change from the controls: saves it, then redraws what it touches. */
  private changeState(patch: Partial<ViewState>): void {
    const before = this.s;
    this.s = { ...this.s, ...patch };
    if (patch.smooth === "none") this.s.smooth = "none";
    this.save();
    if (patch.refresh !== undefined && patch.refresh !== before.refresh) this.schedulePoll();
    if (patch.dim !== undefined && patch.dim.startsWith("hparam:")) void this.loadHparams();
    if (patch.pins !== undefined) {
      void this.resolvePins();
      this.renderCards();
      this.treeView.redraw();
    }
    this.renderControls();
    this.renderRuns();
    const touchesCharts = ["x", "xlog", "ylog", "outliers", "smooth", "weight", "window", "dim", "hl"].some((k) => k in patch);
    if (touchesCharts) {
      for (const card of this.cards.values()) card.refresh();
      this.diagCtl.refreshChart();
    } else if (patch.dover !== undefined) {
      for (const card of this.cards.values()) card.redrawAnnotations();
    }
  }

  private async loadHparams(): Promise<void> {
    if (!this.dirReady) return; // asked for again once the directory is indexed
    try {
      this.hparams = await this.api.hparams();
    } catch {
      this.hparams = { runs: [], hparams: {} };
    }
    this.renderControls();
    this.renderRuns();
    for (const card of this.cards.values()) card.refresh();
  }

  // ---- colours, dimensions, emphasis

  private runColor = (run: string): string => this.colors.color(run);

  /** Recomputes the colour assignment for the selected runs (cheap when the selection did not change). */
  private syncColors(): void {
    this.colors.setDrawn(this.selectedRuns);
  }

  /** A run's name as shown (the shared leading path elided, cut in the middle). */
  private runLabel = (run: string, maxChars?: number): string => this.names.short(run, maxChars);

  /** Style of a series of a custom chart: a run with several series in it gets a colour per series. */
  private customStyle(spec: CustomSpec, run: string, tag: string): { color: string; emphasis: Emphasis } {
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

  private dimColor(value: string | null, values: string[]): string {
    if (value === null) return NO_VALUE_COLOR;
    const i = values.indexOf(value);
    return i < 0 ? NO_VALUE_COLOR : PALETTE[i % PALETTE.length];
  }

  private emphasisOf(value: string | null): Emphasis {
    if (!this.s.dim || this.s.hl === null) return "normal";
    return value === this.s.hl ? "emph" : "dim";
  }

  private style = (run: string, tag: string): { color: string; emphasis: Emphasis } => {
    if (!this.s.dim) return { color: this.runColor(run), emphasis: "normal" };
    const v = this.dimValue(run, tag);
    return { color: this.dimColor(v, this.dimValues()), emphasis: this.emphasisOf(v) };
  };

  private groupStyle = (groupBy: string, key: string, index: number): { color: string; emphasis: Emphasis } => {
    const sameDim = this.s.dim && (groupBy === this.s.dim || groupBy.replace(/^run_regex:/, "") === this.s.dim.replace(/^run_regex:/, ""));
    const emphasis: Emphasis = sameDim && this.s.hl !== null ? (key === this.s.hl ? "emph" : "dim") : "normal";
    return { color: PALETTE[index % PALETTE.length], emphasis };
  };

  private renderControls(): void {
    const values = this.dimValues();
    this.controls.update({
      state: this.s,
      xTags: this.tagSample.slice(0, MAX_X_TAGS),
      runs: this.runs.map((r) => r.name),
      runLabel: this.runLabel,
      tags: this.tagSample,
      hparamNames: Object.keys(this.hparams.hparams).sort(),
      dimValues: values.map((value) => ({ value, color: this.dimColor(value, values) })),
    });
  }

  // ---- polling

  private schedulePoll(): void {
    window.clearTimeout(this.pollTimer);
    this.pollTimer = 0;
    const fast = !this.runsFailed && (this.progress?.indexing || !this.dirReady || this.pendingRun !== null);
    const delay = fast ? POLL_INDEXING_MS : this.s.refresh * 1000;
    if (delay > 0) this.pollTimer = window.setTimeout(() => void this.refreshRuns(false), delay);
    this.layout.root.dataset.refresh = String(this.s.refresh);
  }

  /**
   * Fetches /runs; refreshes the tags when runs appeared or their tag counts moved, and the charts when
   * runs appeared, vanished or grew (or when `all`). Series of runs whose version did not change come
   * from the cache, so a refresh fetches only the series of runs that grew.
   */
  private async refreshRuns(all: boolean): Promise<void> {
    const seq = ++this.runsSeq;
    let answer;
    try {
      answer = await this.api.runs();
    } catch (e) {
      if (seq !== this.runsSeq) return;
      this.runsFailed = true;
      this.layout.status.textContent = `runs: ${errorMessage(e)}`;
      this.layout.status.classList.add("error");
      // A directory named by the URL that the server refuses (or that vanished): say so in the picker.
      if (this.s.logdir !== null && e instanceof ApiError && [400, 403, 404].includes(e.status)) this.picker.setError(e.message);
      this.schedulePoll();
      return;
    }
    if (seq !== this.runsSeq) return; // out of date
    this.applyRuns(answer, all);
  }

  /** Takes a /runs answer of the current directory: the table, the progress, and (once the directory is
   * indexed) the tags and charts it changes. */
  private applyRuns(answer: RunsAnswer, all: boolean): void {
    const t0 = performance.now();
    this.runsFailed = false;
    if (this.layout.status.classList.contains("error")) this.layout.status.textContent = "";
    this.layout.status.classList.remove("error");
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

    showProgress(this.layout, this.progress);
    this.renderRuns();
    performance.measure("tbp:table", { start: t0, end: performance.now() });

    const tagsKey = this.runs.map((r) => `${r.name}\u0000${r.tags}`).join("\n");
    if (!this.dirReady) {
      // The first index is still being built: every other request would wait for it. Poll /runs.
      if (answer.progress.indexing && !this.runs.length) {
        this.schedulePoll();
        return;
      }
      this.dirReady = true;
      this.tree.waiting = null;
      this.tagsKey = tagsKey;
      this.refreshTags();
      all = true;
    } else {
      if (this.tagsKey !== null && tagsKey !== this.tagsKey) this.refreshTags();
      this.tagsKey = tagsKey;
    }
    this.takePendingRun(names);
    if (this.s.runs === null && (all || runsChanged || this.keyRuns === null)) void this.loadKeyTags();
    if (all || runsChanged || changed.size > 0) {
      if (all || this.s.dim.startsWith("hparam:")) void this.loadHparams();
    }
    if (all || runsChanged || changed.size > 0) this.evalCtl.refresh(all || runsChanged ? null : changed);
    if (all || runsChanged || changed.size > 0) this.traceCtl.refresh(all || runsChanged ? null : changed);
    if (all || runsChanged || changed.size > 0) {
      this.diagCtl.refresh();
      this.diagCtl.refreshChart(all || runsChanged ? null : changed);
    }
    const touchesSelection = [...changed].some((r) => this.selectedRuns.has(r));
    if (all || runsChanged || touchesSelection) this.updateCards(all || runsChanged ? null : changed);
    this.schedulePoll();
  }

  // ---- first view

  /** No chart chosen yet: no tags, pins, group or built charts, and no run selection. */
  private pristine(): boolean {
    const s = this.s;
    return s.runs === null && !s.tags.length && !s.pins.length && s.group === null && !s.custom.length && !s.agg.length && !s.cmp.length;
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
  private async loadKeyTags(): Promise<void> {
    if (!this.dirReady || !this.runs.length) return;
    const seq = ++this.keySeq;
    const early = this.earlyKeyTags;
    this.earlyKeyTags = null;
    let tags;
    try {
      tags = await (early ?? this.api.keyTags());
    } catch {
      this.releaseSide();
      return; // the charts stay as chosen; the tree still lists every tag
    }
    if (seq !== this.keySeq) return;
    this.releaseSide();
    this.keyRuns = new Set(tags.flatMap((t) => t.runs));
    const open = this.firstView && this.pristine() && tags.length > 0;
    if (this.s.runs !== null) return;
    const before = [...this.selectedRuns].join("\n");
    this.selectDefaultRuns();
    // Only the key series that some selected run has: no first chart says "no data".
    const shown = tags.filter((t) => t.runs.some((r) => this.selectedRuns.has(r)));
    if (open && shown.length) {
      this.s.tags = shown.map((t) => t.tag);
      this.autoTags = JSON.stringify(this.s.tags);
      this.firstView = false;
      this.save(true); // the app's choice, not a step to go Back to
      this.afterChartsChanged();
      this.renderRuns();
      this.diagCtl.render();
    } else if (before !== [...this.selectedRuns].join("\n")) {
      this.afterRunSelection();
    }
  }

  /** The first charts were asked for (or there are none to ask for): the side panels load their lists. */
  private releaseSide(): void {
    if (!this.holdSide) return;
    this.holdSide = false;
    void this.evalCtl.loadList();
    void this.traceCtl.loadList();
  }

  // ---- log directories

  /** The picker's data (default directory, upload settings); its completions come with queryLogdirs. */
  private async loadLogdirs(): Promise<void> {
    try {
      this.logdirsInfo = await this.api.logdirs("");
    } catch {
      return; // an older backend without /logdirs: the picker still opens typed paths
    }
    this.renderPicker();
  }

  /** Completions for the picker's input, debounced; a newer query cancels the older one. */
  private queryLogdirs(prefix: string): void {
    window.clearTimeout(this.queryTimer);
    this.queryTimer = window.setTimeout(async () => {
      const seq = ++this.querySeq;
      this.queryAbort?.abort();
      const abort = new AbortController();
      this.queryAbort = abort;
      try {
        const info = await this.api.logdirs(prefix.trim(), abort.signal);
        if (seq !== this.querySeq) return;
        const first = this.logdirsInfo === null;
        this.logdirsInfo = info;
        if (first) this.renderPicker();
        this.picker.setSuggestions(info.dirs);
      } catch {
        if (seq === this.querySeq) this.picker.setSuggestions([]);
      }
    }, LOGDIR_QUERY_DEBOUNCE_MS);
  }

  private defaultLogdir(): string | null {
    return this.logdirsInfo?.default ?? null;
  }

  private renderPicker(): void {
    const def = this.defaultLogdir();
    const isDefault = this.s.logdir === null;
    this.picker.setCurrent(this.s.logdir ?? def, isDefault);
    this.picker.setDefault(def, isDefault);
    this.picker.setRecent(this.recent, this.s.logdir ?? def);
    this.picker.setUpload(Boolean(this.logdirsInfo?.upload), this.logdirsInfo?.upload_max_bytes ?? 0);
  }

  private remember(path: string | null): void {
    if (!path) return;
    const stored = rememberLogdir(path);
    this.recent = [...new Set([path, ...stored, ...this.recent])].slice(0, RECENT_MAX);
  }

  /**
   * Opens another log directory (null: TensorBoard's --logdir). Its /runs is fetched first: a refusal
   * (400, 403, 404) is shown in the picker and nothing else changes. `selectRun`: the run to select (an
   * upload's), polled for until the directory lists it. Resolves to whether the switch happened.
   */
  private async switchLogdir(raw: string | null, selectRun?: string): Promise<boolean> {
    let target = raw === null ? null : normalizeLogdir(raw);
    if (target !== null && target === this.defaultLogdir()) target = null;
    const seq = ++this.switchSeq;
    this.picker.setBusy(true);
    this.picker.setError(null);
    let answer: RunsAnswer;
    try {
      answer = await this.api.runs(target);
    } catch (e) {
      if (seq !== this.switchSeq) return false;
      this.picker.setBusy(false);
      this.picker.setError(errorMessage(e));
      return false;
    }
    if (seq !== this.switchSeq) return false;
    this.picker.setBusy(false);
    this.picker.close();
    if (target !== this.s.logdir) {
      this.remember(this.s.logdir ?? this.defaultLogdir());
      this.remember(target ?? this.defaultLogdir());
      this.resetForLogdir(target);
    } else if (selectRun === undefined) {
      this.picker.setError(null);
    }
    if (selectRun !== undefined) {
      this.selectedRuns.clear();
      this.selectedRuns.add(selectRun);
      this.s.runs = [selectRun];
      this.pendingRun = { name: selectRun, until: Date.now() + PENDING_RUN_MS };
      this.save();
    }
    this.renderPicker();
    this.runsSeq++; // an answer still on its way for the old directory is dropped
    this.api.noteVersions(answer.runs);
    this.applyRuns(answer, true);
    return true;
  }

  /** Forgets what belonged to the old directory and starts the new one in the waiting state. */
  private resetForLogdir(target: string | null): void {
    this.s.logdir = target;
    this.api.setLogdir(target);
    this.runs = [];
    this.progress = null;
    this.runHparamNames = [];
    this.versions.clear();
    this.tagsKey = null;
    this.selectedRuns.clear();
    this.s.runs = null;
    this.pendingRun = null;
    this.keyRuns = null;
    this.keySeq++;
    if (this.autoTags !== null && this.autoTags === JSON.stringify(this.s.tags)) this.s.tags = []; // the first view's
    this.autoTags = null;
    // The run filter, sort anchor and highlight belonged to the old runs: a new directory starts unfiltered.
    this.runTable.resetFilters();
    // The group, the search and charts built from the old directory's runs mean nothing in the new one;
    // open tags, pins, axes and smoothing stay.
    this.s.group = null;
    this.s.gpage = 0;
    this.s.gfilter = "";
    this.groupTotal = null;
    this.groupError = null;
    this.s.custom = [];
    this.s.cmp = [];
    this.s.hl = null;
    // The evaluation chosen belonged to the old directory (the panel stays open or closed).
    this.s.erun = null;
    this.s.etag = null;
    this.s.estep = null;
    this.evalCtl.reset();
    this.s.trun = null;
    this.s.ttag = null;
    this.s.tstat = null;
    this.traceCtl.reset();
    this.s.dscope = "sel";
    this.s.dfind = null;
    this.diagCtl.reset();
    this.hparams = { runs: [], hparams: {} };
    this.tagSample = [];
    this.pinned = new Map();
    this.searchSeq++;
    this.groupSeq++;
    this.pinsSeq++;
    this.sampleSeq++;
    window.clearTimeout(this.searchTimer);
    this.dirReady = false;
    this.firstView = this.firstView || this.pristine();
    this.tree.reset();
    this.tree.waiting = WAITING_TEXT;
    this.treeView.search.value = "";
    this.treeView.setError(null);
    this.treeView.info.textContent = "";
    for (const card of this.cards.values()) card.destroy(); // in-flight answers of the old directory die with them
    this.cards.clear();
    this.layout.status.textContent = "";
    this.layout.status.classList.remove("error");
    this.save();
    showProgress(this.layout, null);
    this.renderTree();
    this.renderGroupBar();
    this.renderControls();
    this.renderRuns();
    this.renderCards();
  }

  /** Selects an uploaded run once the directory lists it, and opens its first charts when none are open. */
  private takePendingRun(names: Set<string>): void {
    const pending = this.pendingRun;
    if (!pending) return;
    if (!names.has(pending.name)) {
      if (Date.now() > pending.until) this.pendingRun = null;
      return;
    }
    this.pendingRun = null;
    if (this.s.tags.length || this.s.agg.length || this.s.custom.length || this.s.cmp.length) return;
    const logdir = this.s.logdir;
    void this.api.tagList({ under: "", sep: this.s.sep, limit: UPLOAD_CHARTS, runs: [pending.name] }).then(
      (answer) => {
        if (this.s.logdir !== logdir || this.s.tags.length) return;
        this.s.tags = answer.tags.slice();
        this.afterChartsChanged();
      },
      () => undefined, // the tree shows tag errors
    );
  }

  private async upload(file: File, run: string): Promise<void> {
    this.picker.setUploadStatus(`Uploading ${file.name}…`, "busy");
    let result;
    try {
      result = await this.api.upload(file, run, (sent, total) => {
        const pct = total > 0 ? Math.min(100, Math.round((100 * sent) / total)) : 0;
        this.picker.setUploadStatus(`Uploading ${file.name}… ${pct}%`, "busy");
      });
    } catch (e) {
      this.picker.setUploadStatus(errorMessage(e), "error"); // the server's "Upload refused: ..." as it is
      return;
    }
    const records = result.records.toLocaleString();
    this.picker.setUploadStatus(
      `Uploaded run '${result.run}' (${result.files} event file${result.files === 1 ? "" : "s"}, ${records} records)`,
      "ok",
    );
    await this.switchLogdir(result.logdir, result.run);
  }

  /** Tags may have changed: refetch the tree's levels as they are drawn, the search, pins, the sample
   * and the open group's size. */
  private refreshTags(): void {
    this.api.tagsVersion = String(++this.tagsGen);
    this.tree.invalidate();
    this.renderTree();
    if (this.treeView.search.value.trim()) void this.runSearch();
    void this.loadTagSample();
    void this.resolvePins();
    void this.evalCtl.loadList();
    void this.traceCtl.loadList();
    if (this.s.group !== null) void this.loadGroupPage(false);
  }

  private async loadTagSample(): Promise<void> {
    if (!this.dirReady) return;
    const seq = ++this.sampleSeq;
    try {
      const answer = await this.api.tagList({ under: "", sep: this.s.sep, limit: MAX_X_TAGS });
      if (seq !== this.sampleSeq) return;
      this.tagSample = answer.tags;
    } catch {
      return; // the tree shows tag errors
    }
    this.renderControls();
  }

  // ---- the tag tree

  private renderTree(): void {
    this.treeView.setRows(this.tree.rows());
    if (this.tree.totalTags !== null) this.treeView.tree.dataset.count = String(this.tree.totalTags);
    this.treeView.tree.dataset.mode = this.tree.searching ? "search" : "browse";
  }

  private async runSearch(): Promise<void> {
    window.clearTimeout(this.searchTimer);
    const seq = ++this.searchSeq;
    const text = this.treeView.search.value.trim();
    const mode = this.treeView.mode.value as SearchMode;
    if (!text) {
      this.treeView.setError(null);
      this.treeView.info.textContent = "";
      this.tree.setSearch(null);
      this.renderTree();
      return;
    }
    try {
      const answer = await this.api.tagSearch({ filter: text, mode, sep: this.s.sep, limit: SEARCH_LIMIT });
      if (seq !== this.searchSeq) return; // out of date
      const t0 = performance.now();
      this.treeView.setError(null);
      this.tree.setSearch(answer);
      this.renderTree();
      this.treeView.info.textContent = `${answer.count.toLocaleString()} of ${answer.total.toLocaleString()} tags match`;
      performance.measure("tbp:search", { start: t0, end: performance.now() });
    } catch (e) {
      if (seq !== this.searchSeq) return;
      const what = mode === "regex" ? "Invalid regular expression" : mode === "glob" ? "Invalid pattern" : "Bad search";
      this.treeView.setError(e instanceof ApiError && e.status === 400 ? `${what}: ${e.message.replace(/^Invalid argument: /, "")}` : `tags: ${errorMessage(e)}`);
      this.treeView.info.textContent = "";
    }
  }

  private setSeparator(sep: string): void {
    if (sep === this.s.sep) return;
    this.s.sep = sep;
    this.tree.setSeparator(sep);
    // A group path means another group (or nothing) under another separator: leave the group view.
    this.s.group = null;
    this.groupTotal = null;
    this.save();
    this.renderGroupBar();
    this.renderTree();
    if (this.treeView.search.value.trim()) void this.runSearch();
  }

  private toggleTag(path: string): void {
    const i = this.s.tags.indexOf(path);
    if (i >= 0) this.s.tags.splice(i, 1);
    else this.s.tags.push(path);
    this.afterChartsChanged();
  }

  // ---- group pages

  /** Shows the first page of a group's charts (narrowed by the search when the tree shows one). */
  private showGroup(path: string): void {
    const text = this.tree.searching ? this.treeView.search.value.trim() : "";
    this.s.group = path;
    this.s.gpage = 0;
    this.s.gfilter = text;
    this.s.gmode = text ? (this.treeView.mode.value as SearchMode) : "substring";
    this.groupTotal = null;
    this.tree.expand(path);
    this.renderTree();
    this.renderGroupBar();
    void this.loadGroupPage(true);
  }

  private groupPages(): number {
    return this.groupTotal === null ? 1 : Math.max(1, Math.ceil(this.groupTotal / GROUP_PAGE));
  }

  /** Fetches the open group's page; with `show`, its tags become the charts. */
  private async loadGroupPage(show: boolean): Promise<void> {
    const group = this.s.group;
    if (group === null || !this.dirReady) return;
    const seq = ++this.groupSeq;
    try {
      const answer = await this.api.tagList({
        under: group,
        sep: this.s.sep,
        offset: this.s.gpage * GROUP_PAGE,
        limit: GROUP_PAGE,
        filter: this.s.gfilter || undefined,
        mode: this.s.gfilter ? this.s.gmode : undefined,
      });
      if (seq !== this.groupSeq || this.s.group !== group) return;
      this.groupTotal = answer.total;
      this.groupError = null;
      if (show) {
        this.s.tags = answer.tags.slice();
        this.afterChartsChanged();
      }
    } catch (e) {
      if (seq !== this.groupSeq) return;
      this.groupError = errorMessage(e);
    }
    this.renderGroupBar();
  }

  private gotoGroupPage(page: number): void {
    const n = this.groupPages();
    const p = Math.max(0, Math.min(n - 1, page));
    if (p === this.s.gpage) return;
    this.s.gpage = p;
    this.save();
    this.renderGroupBar();
    void this.loadGroupPage(true);
  }

  private renderGroupBar(): void {
    const bar = this.layout.groupBar;
    const group = this.s.group;
    bar.hidden = group === null;
    if (group === null) {
      bar.replaceChildren();
      return;
    }
    const n = this.groupPages();
    const prev = el("button", { class: "tbp-button tbp-small", testid: "group-prev", text: "‹ prev", disabled: this.s.gpage <= 0 });
    const next = el("button", { class: "tbp-button tbp-small", testid: "group-next", text: "next ›", disabled: this.s.gpage >= n - 1 });
    prev.addEventListener("click", () => this.gotoGroupPage(this.s.gpage - 1));
    next.addEventListener("click", () => this.gotoGroupPage(this.s.gpage + 1));
    const close = el("button", { class: "tbp-link", testid: "group-close", text: "×", title: "Leave this group (its charts stay)" });
    close.addEventListener("click", () => {
      this.s.group = null;
      this.groupTotal = null;
      this.save();
      this.renderGroupBar();
    });
    const total = this.groupTotal;
    bar.dataset.page = String(this.s.gpage + 1);
    bar.dataset.pages = String(n);
    const parts: (HTMLElement | null)[] = [
      el("span", { class: "tbp-ctl-label", text: "group" }),
      el("b", { class: "tbp-group-title", testid: "group-title", text: group || "(all tags)" }),
      this.s.gfilter ? el("span", { class: "tbp-muted", text: `matching ${this.s.gmode} “${this.s.gfilter}”` }) : null,
      el("span", { class: "tbp-muted", text: total === null ? "" : `${total.toLocaleString()} chart${total === 1 ? "" : "s"}` }),
      prev,
      el("span", { testid: "group-page", text: `page ${this.s.gpage + 1} of ${n}` }),
      next,
      this.groupError ? el("span", { class: "tbp-error", text: this.groupError }) : null,
      close,
    ];
    bar.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
  }

  // ---- pins

  private pinRegex(pin: string): RegExp {
    let re = this.pinRegexes.get(pin);
    if (!re) {
      re = globRegex(pin);
      this.pinRegexes.set(pin, re);
    }
    return re;
  }

  private isPinnedTag(tag: string): boolean {
    return this.s.pins.some((p) => p === tag || this.pinRegex(p).test(tag));
  }

  private pinState(tag: string): PinState {
    if (this.s.pins.includes(tag)) return "exact";
    return this.isPinnedTag(tag) ? "pattern" : null;
  }

  private togglePin(tag: string): void {
    const pins = this.s.pins.includes(tag) ? this.s.pins.filter((p) => p !== tag) : [...this.s.pins, tag];
    this.changeState({ pins });
  }

  /** Asks the server which tags each pin names (list mode, the pin as a glob), PIN_LIMIT at most per pin. */
  private async resolvePins(): Promise<void> {
    const seq = ++this.pinsSeq;
    const pins = this.s.pins.slice();
    if (!pins.length) {
      this.pinned = new Map();
      return;
    }
    if (!this.dirReady) return; // resolved once the directory is indexed
    const answers = await Promise.allSettled(
      pins.map((pin) => this.api.tagList({ under: "", sep: this.s.sep, limit: PIN_LIMIT, filter: pin, mode: "glob" })),
    );
    if (seq !== this.pinsSeq) return;
    const pinned = new Map<string, string[]>();
    answers.forEach((a, i) => {
      if (a.status === "fulfilled") pinned.set(pins[i], a.value.tags);
    });
    this.pinned = pinned;
    this.renderCards();
  }

  /** Tags of the Pinned section, pin by pin: what the server resolved, else the charts open that match. */
  private pinnedTags(): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    const add = (t: string): void => {
      if (!seen.has(t)) {
        seen.add(t);
        out.push(t);
      }
    };
    for (const pin of this.s.pins) {
      const resolved = this.pinned.get(pin);
      if (resolved) resolved.forEach(add);
      else for (const t of this.s.tags) if (t === pin || this.pinRegex(pin).test(t)) add(t);
    }
    for (const t of this.s.tags) if (this.isPinnedTag(t)) add(t); // beyond a pin's limit
    return out;
  }

  // ---- runs

  private renderRuns(): void {
    this.syncColors();
    const colorOf = this.s.dim ? (run: string) => this.style(run, "").color : this.runColor;
    this.runTable.update({
      labelOf: this.runLabel,
      runs: this.runs,
      hparamNames: this.runHparamNames,
      selected: this.selectedRuns,
      colorOf,
      liveSeconds: this.liveSeconds,
      staleSeconds: this.staleSeconds,
      emptyText: this.emptyRunsText(),
      diagOf: (r) => r.diagnostics ?? this.diagCtl.countsOf(r.name),
    });
  }

  private emptyRunsText(): string {
    const p = this.progress;
    if (p?.indexing) return `Indexing the log directory: ${p.files_done}/${p.files_total} files…`;
    if (!this.dirReady) return WAITING_TEXT;
    return this.s.logdir === null ? "No runs yet." : "No runs in this log directory yet.";
  }

  private selectRuns(names: string[], on: boolean): void {
    this.s.runs = [];
    for (const n of names) {
      if (on) this.selectedRuns.add(n);
      else this.selectedRuns.delete(n);
    }
    this.afterRunSelection();
  }

  private afterRunSelection(): void {
    this.save();
    this.renderRuns();
    this.renderControls();
    this.updateCards(null);
    void this.traceCtl.loadList(); // the runs asked for tracer data follow the selection
    this.diagCtl.render(); // "selected runs" follows the selection
  }

  /** The run table's filters changed: the charts draw the selected runs that pass them. */
  private afterRunFilter(): void {
    this.renderControls(); // the values of a highlight dimension follow the series drawn
    this.updateCards(null);
  }

  private afterChartsChanged(): void {
    this.save();
    this.treeView.redraw();
    this.renderCards();
    this.renderControls();
  }

  /** Runs the charts draw: the selected runs that pass the run table's filters, in run order. */
  private drawnRuns = (): string[] => {
    return this.runs.map((r) => r.name).filter((r) => this.selectedRuns.has(r) && this.runTable.passes(r));
  };

  /** Runs to draw for a tag: the drawn runs (a run without the tag answers 404, which the chart leaves
   * out silently). */
  private runsFor = (_tag: string): string[] => this.drawnRuns();

  // ---- charts

  /** Every chart to show: the Pinned section's tags, then the other tags, then the built charts. */
  private specs(): { pinned: CardSpec[]; rest: CardSpec[] } {
    const pinnedTags = this.pinnedTags();
    const inPinned = new Set(pinnedTags);
    return {
      pinned: pinnedTags.map((tag): CardSpec => ({ kind: "tag", tag })),
      rest: [
        ...this.s.tags.filter((t) => !inPinned.has(t)).map((tag): CardSpec => ({ kind: "tag", tag })),
        ...this.s.custom.map((spec): CardSpec => ({ kind: "custom", spec })),
        ...this.s.agg.map((spec): CardSpec => ({ kind: "agg", spec })),
        ...this.s.cmp.map((spec): CardSpec => ({ kind: "cmp", spec })),
      ],
    };
  }

  private removeCard(card: ChartCard): void {
    const spec = card.spec;
    if (spec.kind === "tag" && this.s.pins.includes(spec.tag)) {
      // A chart pinned by name leaves the Pinned section when closed.
      this.s.tags = this.s.tags.filter((t) => t !== spec.tag);
      this.changeState({ pins: this.s.pins.filter((p) => p !== spec.tag) });
      this.afterChartsChanged();
      return;
    }
    if (spec.kind === "tag") this.s.tags = this.s.tags.filter((t) => t !== spec.tag);
    else if (spec.kind === "custom") this.s.custom = this.s.custom.filter((c) => c.id !== spec.spec.id);
    else if (spec.kind === "agg") this.s.agg = this.s.agg.filter((c) => c.id !== spec.spec.id);
    else this.s.cmp = this.s.cmp.filter((c) => c.id !== spec.spec.id);
    this.afterChartsChanged();
  }

  private setCardOpts(card: ChartCard, opts: ChartOpts): void {
    const spec = card.spec;
    const o = Object.keys(opts).length ? opts : undefined;
    if (spec.kind === "tag") {
      const tagOpts = { ...this.s.tagOpts };
      if (o) tagOpts[spec.tag] = o;
      else delete tagOpts[spec.tag];
      this.s.tagOpts = tagOpts;
    } else {
      spec.spec.o = o;
    }
    this.save();
  }

  /** Makes the grids hold one card per chart spec, in order: the Pinned section's, then the others. */
  private renderCards(): void {
    const { pinned, rest } = this.specs();
    const wanted = new Set([...pinned, ...rest].map(cardId));
    for (const [id, card] of this.cards) {
      if (!wanted.has(id)) {
        card.destroy();
        this.cards.delete(id);
      }
    }
    const fresh: ChartCard[] = [];
    const place = (specs: CardSpec[], grid: HTMLElement): void => {
      for (const spec of specs) {
        const id = cardId(spec);
        let card = this.cards.get(id);
        if (!card) {
          card = this.newCard(spec);
          this.cards.set(id, card);
          fresh.push(card);
        }
        grid.appendChild(card.panel.root); // appending an existing node moves it: keeps order
      }
    };
    place(pinned, this.layout.pinnedGrid);
    place(rest, this.layout.grid);
    this.layout.pinned.hidden = pinned.length === 0;
    this.layout.empty.hidden = pinned.length + rest.length > 0;
    this.renderMainBar();
    for (const card of fresh) {
      card.mount();
      if (this.runs.length) card.refresh();
    }
    // Pins changed: refresh the pin marks of the cards that stayed.
    for (const card of this.cards.values()) if (!fresh.includes(card) && card.tag !== null) card.panel.root.dataset.pinned = String(this.isPinnedTag(card.tag));
  }

  /** What every chart card shares: the API, runs, styles, settings and the diagnostics markers. */
  private cardContext(): Omit<ChartCardContext, "onOpts" | "onClose" | "onPin" | "isPinned"> {
    return {
      api: this.api,
      runsFor: this.runsFor,
      selectedRuns: this.drawnRuns,
      style: this.style,
      runLabel: this.runLabel,
      groupStyle: this.groupStyle,
      settings: () => ({
        x: this.s.x,
        xlog: this.s.xlog,
        ylog: this.s.ylog,
        outliers: this.s.outliers,
        smooth: { kind: this.s.smooth, weight: this.s.weight, window: this.s.window },
      }),
      xTags: () => this.tagSample.slice(0, MAX_X_TAGS),
      ready: () => this.dirReady,
      annotations: (pairs: [string, string][]): Annotation[] => this.diagCtl.annotationsFor(pairs),
    };
  }

  private newCard(spec: CardSpec): ChartCard {
    const custom = spec.kind === "custom" ? spec.spec : null;
    const card = new ChartCard(spec, {
      ...this.cardContext(),
      ...(custom ? { style: (run: string, tag: string) => this.customStyle(custom, run, tag) } : {}),
      onOpts: (c, o) => this.setCardOpts(c, o),
      onClose: (c) => this.removeCard(c),
      onPin: (c) => {
        if (c.tag !== null) this.togglePin(c.tag);
      },
      isPinned: (c) => c.tag !== null && this.isPinnedTag(c.tag),
    });
    card.opts = spec.kind === "tag" ? { ...(this.s.tagOpts[spec.tag] ?? {}) } : { ...(spec.spec.o ?? {}) };
    return card;
  }

  private renderMainBar(): void {
    const n = this.cards.size;
    if (!n) {
      this.layout.mainBar.replaceChildren();
      return;
    }
    const clear = el("button", { class: "tbp-link", testid: "charts-clear", text: "clear all" });
    clear.addEventListener("click", () => {
      this.s.tags = [];
      this.s.group = null;
      this.groupTotal = null;
      this.renderGroupBar();
      this.s.custom = [];
      this.s.agg = [];
      this.s.cmp = [];
      this.afterChartsChanged();
    });
    const drawn = this.drawnRuns().length;
    const selected = this.runs.filter((r) => this.selectedRuns.has(r.name)).length;
    const hidden = selected - drawn;
    const runs = el("span", {
      testid: "charts-runs",
      "data-drawn": drawn,
      text: `${n} chart${n === 1 ? "" : "s"} · ${drawn} run${drawn === 1 ? "" : "s"}`,
    });
    const note = hidden > 0
      ? el("span", { class: "tbp-filter-note", testid: "charts-filter-note", text: `${hidden} selected run${hidden === 1 ? "" : "s"} hidden by the run filter` })
      : null;
    this.layout.mainBar.replaceChildren(...(note ? [runs, note, clear] : [runs, clear]));
  }

  /** Reloads the cards; with `changed`, only those that may show one of these runs. */
  private updateCards(changed: Set<string> | null): void {
    this.renderMainBar();
    if (!this.runs.length) return;
    for (const card of this.cards.values()) {
      if (changed && !this.cardTouches(card, changed)) continue;
      card.refresh();
    }
  }

  private cardTouches(card: ChartCard, runs: Set<string>): boolean {
    const spec = card.spec;
    if (spec.kind === "tag") return [...runs].some((r) => this.selectedRuns.has(r));
    if (spec.kind === "custom") return spec.spec.series.some(([r]) => runs.has(r));
    if (spec.kind === "cmp") return runs.has(spec.spec.a[0]) || runs.has(spec.spec.b[0]);
    return [...runs].some((r) => this.selectedRuns.has(r));
  }
}
