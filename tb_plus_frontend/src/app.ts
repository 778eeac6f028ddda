// The TB+ tab: the wiring between the API, the controllers of each area and the side panels.
// Every user choice lives in one ViewState, saved to the URL and localStorage on each change (state.ts).
//
// Each area owns its state and DOM behind a small context of callbacks and getters: the runs
// (runs_controller.ts: /runs polling, run table, selection, colours, hyperparameters, first view), the tags
// (tags_controller.ts: tree, search, pins, group pages), the charts (charts_controller.ts: controls and
// chart cards), the log directories (logdir_controller.ts: picker, switching, upload) and the side panels
// (diag_controller.ts, eval_controller.ts, trace_controller.ts). The app passes each /runs answer on to
// them and applies every change of the view state.
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

import { Api, type RunsAnswer } from "./api";
import { ChartsController } from "./charts_controller";
import { DiagController } from "./diag_controller";
import { EvalController } from "./eval_controller";
import { LogdirController } from "./logdir_controller";
import { RunsController, pristine } from "./runs_controller";
import { TagsController } from "./tags_controller";
import { TraceController } from "./trace_controller";
import { connectHost } from "./host";
import { hasSavedState, loadState, saveState, viewLink, watchUrl, type ViewState } from "./state";
import { createLayout, showProgress, type Layout } from "./views/layout";
import { createShareLink } from "./views/share";
import { PALETTE } from "./colors";

export { PALETTE };
export { DEFAULT_RUNS, FIRST_VIEW_RUNS } from "./runs_controller";
export { GROUP_PAGE, PIN_LIMIT, globRegex } from "./tags_controller";
const FOCUS_THROTTLE_MS = 2000;

export class App {
  private readonly api = new Api();
  private layout!: Layout;
  private s!: ViewState;
  private runsCtl!: RunsController;
  private tagsCtl!: TagsController;
  private chartsCtl!: ChartsController;
  private logdirCtl!: LogdirController;
  private evalCtl!: EvalController;
  private diagCtl!: DiagController;
  private traceCtl!: TraceController;
  /** False from opening a directory until its first index is in place (runs listed, or indexing done). */
  private dirReady = true;
  /** While a first view waits for its charts, the side panels (evaluation, layers) do not ask for their
   * lists: a browser sends six requests at a time per host, and the first charts' requests come first. */
  private holdSide = false;
  private lastFocusRefresh = 0;
  private focusTimer = 0;

  start(parent: HTMLElement): void {
    this.layout = createLayout(parent);
    this.s = loadState();
    this.api.setLogdir(this.s.logdir);
    // A directory named by the URL may be opened for the first time: nothing but /runs until it is indexed.
    this.dirReady = this.s.logdir === null;
    const firstView = !hasSavedState() && pristine(this.s);
    // what every controller shares: the API and how it reads and saves the view state
    const base = {
      api: this.api,
      state: () => this.s,
      save: (replace?: boolean) => this.save(replace),
      ready: () => this.dirReady,
    };
    this.runsCtl = new RunsController(
      {
        ...base,
        status: this.layout.status,
        root: this.layout.root,
        awaitingRun: () => this.logdirCtl.awaitingRun(),
        onRuns: (answer, all) => this.applyRuns(answer, all),
        onRunsError: (e) => this.logdirCtl.runsFailed(e),
        onSelection: () => {
          this.chartsCtl.renderControls();
          this.chartsCtl.updateCards(null);
          void this.traceCtl.loadList(); // the runs asked for tracer data follow the selection
          this.diagCtl.render(); // "selected runs" follows the selection
        },
        onFilter: () => {
          // the charts draw the selected runs that pass the run table's filters
          this.chartsCtl.renderControls(); // the values of a highlight dimension follow the series drawn
          this.chartsCtl.updateCards(null);
        },
        showDiagnostics: (run) => this.diagCtl.showRun(run),
        diagCounts: (run) => this.diagCtl.countsOf(run),
        onHparams: () => {
          this.chartsCtl.renderControls();
          this.runsCtl.render();
          this.chartsCtl.refreshAll();
        },
        openCharts: (tags) => {
          this.s.tags = tags;
          this.save(true); // the app's choice, not a step to go Back to
          this.afterChartsChanged();
          this.runsCtl.render();
          this.diagCtl.render();
        },
        releaseSide: () => this.releaseSide(),
      },
      firstView,
    );
    this.logdirCtl = new LogdirController({
      ...base,
      reset: (target) => this.resetForLogdir(target),
      selectOnly: (run) => this.runsCtl.selectOnly(run),
      takeRuns: (answer) => {
        this.runsCtl.dropPending(); // an answer still on its way for the old directory is dropped
        this.api.noteVersions(answer.runs);
        this.applyRuns(answer, true);
      },
      afterChartsChanged: () => this.afterChartsChanged(),
    });
    this.layout.logdirHost.appendChild(this.logdirCtl.picker.root);
    this.logdirCtl.render();
    // A first view charts the key series and lists the groups collapsed, as TensorBoard does.
    this.tagsCtl = new TagsController(
      {
        ...base,
        status: this.layout.status,
        groupBar: this.layout.groupBar,
        changeState: (patch) => this.changeState(patch),
        afterChartsChanged: () => this.afterChartsChanged(),
        renderCards: () => this.chartsCtl.renderCards(),
        renderControls: () => this.chartsCtl.renderControls(),
        tagsChanged: () => {
          void this.evalCtl.loadList();
          void this.traceCtl.loadList();
        },
      },
      firstView,
    );
    this.chartsCtl = new ChartsController({
      ...base,
      layout: this.layout,
      runs: this.runsCtl,
      tags: this.tagsCtl,
      annotations: (pairs) => this.diagCtl.annotationsFor(pairs),
      changeState: (patch) => this.changeState(patch),
      afterChartsChanged: () => this.afterChartsChanged(),
    });
    this.layout.controlsHost.appendChild(this.chartsCtl.controls.root);
    // the side panels (evaluation, layers) share how they read and change the view state
    const panelState = {
      ...base,
      patch: (p: Partial<ViewState>) => {
        Object.assign(this.s, p);
        this.save();
      },
    };
    this.diagCtl = new DiagController({
      ...panelState,
      runs: () => this.runsCtl.runs.map((r) => r.name),
      selected: () => this.runsCtl.selected(),
      selectRun: (run) => this.runsCtl.selectRuns([run], true),
      runColor: (run) => this.runsCtl.style(run, "").color,
      runLabel: (run) => this.runsCtl.runLabel(run, 24),
      newCard: (spec, annotations, onClose) => this.chartsCtl.panelCard(spec, annotations, onClose),
      onChange: () => {
        this.runsCtl.render();
        this.chartsCtl.redrawAnnotations();
      },
    });
    this.layout.diagHost.appendChild(this.diagCtl.panel.root);
    const sideState = { ...panelState, ready: () => this.dirReady && !this.holdSide };
    this.evalCtl = new EvalController(sideState);
    this.layout.evalHost.appendChild(this.evalCtl.panel.root);
    this.traceCtl = new TraceController({
      ...sideState,
      candidates: () => {
        const selected = this.runsCtl.selected();
        return selected.length ? selected : this.runsCtl.runs.slice(0, 1).map((r) => r.name);
      },
    });
    this.layout.traceHost.appendChild(this.traceCtl.panel.root);
    this.layout.tagsHost.appendChild(this.tagsCtl.view.root);
    this.layout.runsHost.appendChild(this.runsCtl.table.root);

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
    this.holdSide = firstView;
    if (firstView && this.dirReady) this.runsCtl.askKeyTagsEarly();
    void this.reload(false);
    void this.logdirCtl.load();
    this.tagsCtl.renderTree();
    void this.tagsCtl.loadTagSample();
    void this.tagsCtl.resolvePins();
    void this.evalCtl.loadList();
    void this.traceCtl.loadList();
    void this.diagCtl.load();
    if (this.s.group !== null) void this.tagsCtl.loadGroupPage(false);
    this.tagsCtl.renderGroupBar();
    this.chartsCtl.renderControls();
    this.chartsCtl.renderCards();
  }

  /** Refetches runs and every chart; `hard` also drops the caches (series and tags). */
  async reload(hard: boolean): Promise<void> {
    if (hard) {
      this.api.clear();
      if (this.dirReady) this.tagsCtl.refresh();
    }
    this.layout.status.textContent = "";
    await this.runsCtl.refresh(true);
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
    this.s.runs = this.s.runs === null ? null : [...this.runsCtl.selectedRuns];
    saveState(this.s, replace);
  }

  /** Applies a change from the controls: saves it, then redraws what it touches. */
  private changeState(patch: Partial<ViewState>): void {
    const before = this.s;
    this.s = { ...this.s, ...patch };
    if (patch.smooth === "none") this.s.smooth = "none";
    this.save();
    if (patch.refresh !== undefined && patch.refresh !== before.refresh) this.runsCtl.schedulePoll();
    if (patch.dim !== undefined && patch.dim.startsWith("hparam:")) void this.runsCtl.loadHparams();
    if (patch.pins !== undefined) {
      void this.tagsCtl.resolvePins();
      this.chartsCtl.renderCards();
      this.tagsCtl.view.redraw();
    }
    this.chartsCtl.renderControls();
    this.runsCtl.render();
    const touchesCharts = ["x", "xlog", "ylog", "outliers", "smooth", "weight", "window", "dim", "hl"].some((k) => k in patch);
    if (touchesCharts) {
      this.chartsCtl.refreshAll();
      this.diagCtl.refreshChart();
    } else if (patch.dover !== undefined) {
      this.chartsCtl.redrawAnnotations();
    }
  }

  /** Charts were added or removed: saved, and the tree's marks, the cards and the controls follow. */
  private afterChartsChanged(): void {
    this.save();
    this.tagsCtl.view.redraw();
    this.chartsCtl.renderCards();
    this.chartsCtl.renderControls();
  }

  /** Takes a /runs answer of the current directory: the table, the progress, and (once the directory is
   * indexed) the tags, charts and side panels it changes. */
  private applyRuns(answer: RunsAnswer, all: boolean): void {
    const t0 = performance.now();
    const { names, changed, runsChanged } = this.runsCtl.take(answer);
    showProgress(this.layout, answer.progress);
    this.runsCtl.render();
    performance.measure("tbp:table", { start: t0, end: performance.now() });

    if (!this.dirReady) {
      // The first index is still being built: every other request would wait for it. Poll /runs.
      if (answer.progress.indexing && !answer.runs.length) {
        this.runsCtl.schedulePoll();
        return;
      }
      this.dirReady = true;
      this.tagsCtl.takeRuns(answer.runs, true);
      all = true;
    } else {
      this.tagsCtl.takeRuns(answer.runs, false);
    }
    this.logdirCtl.takePendingRun(names);
    const fresh = all || runsChanged;
    if (this.runsCtl.keyTagsDue(fresh)) void this.runsCtl.loadKeyTags();
    if (fresh || changed.size > 0) {
      if (all || this.s.dim.startsWith("hparam:")) void this.runsCtl.loadHparams();
      const which = fresh ? null : changed;
      this.evalCtl.refresh(which);
      this.traceCtl.refresh(which);
      this.diagCtl.refresh();
      this.diagCtl.refreshChart(which);
    }
    const touchesSelection = [...changed].some((r) => this.runsCtl.isSelected(r));
    if (fresh || touchesSelection) this.chartsCtl.updateCards(fresh ? null : changed);
    this.runsCtl.schedulePoll();
  }

  /** The first charts were asked for (or there are none to ask for): the side panels load their lists. */
  private releaseSide(): void {
    if (!this.holdSide) return;
    this.holdSide = false;
    void this.evalCtl.loadList();
    void this.traceCtl.loadList();
  }

  /** Forgets what belonged to the old directory and starts the new one in the waiting state. */
  private resetForLogdir(target: string | null): void {
    this.s.logdir = target;
    this.api.setLogdir(target);
    this.runsCtl.reset();
    // The group, the search and charts built from the old directory's runs mean nothing in the new one;
    // open tags, pins, axes and smoothing stay.
    this.tagsCtl.reset();
    this.chartsCtl.reset();
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
    this.dirReady = false;
    this.runsCtl.renewFirstView();
    this.layout.status.textContent = "";
    this.layout.status.classList.remove("error");
    this.save();
    showProgress(this.layout, null);
    this.tagsCtl.renderTree();
    this.tagsCtl.renderGroupBar();
    this.chartsCtl.renderControls();
    this.runsCtl.render();
    this.chartsCtl.renderCards();
  }
}
