// The TB+ tab: state, polling and wiring between the API, the views and the chart cards.
// Every user choice lives in one ViewState, saved to the URL and localStorage on each change (state.ts).

import { Api, ApiError, runVersion, type Hparams, type Progress, type RunInfo, type TagNode } from "./api";
import { type Emphasis } from "./chart";
import { ChartCard, cardId, type CardSpec } from "./chart_card";
import { connectHost } from "./host";
import { loadState, newId, saveState, type ChartOpts, type ViewState } from "./state";
import { createControls, type Controls } from "./views/controls";
import { createLayout, showProgress, type Layout } from "./views/layout";
import { renderRunList } from "./views/run_list";
import { isTag, renderTagTree, tagsUnder } from "./views/tag_tree";
import { el } from "./views/dom";

export const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a",
];
const NO_VALUE_COLOR = "#9e9e9e";
export const DEFAULT_RUNS = 10;
export const GROUP_LIMIT = 24;
const POLL_INDEXING_MS = 2000;
const FOCUS_THROTTLE_MS = 2000;
const MAX_X_TAGS = 500;

function groupPaths(node: TagNode, out: string[] = []): string[] {
  for (const c of node.children) {
    if (c.children.length) {
      out.push(c.path);
      groupPaths(c, out);
    }
  }
  return out;
}

/** A glob (`*` any characters, `?` one) as an anchored regular expression. */
export function globRegex(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

/** Natural order: "layer2" before "layer10", numbers by value. */
function naturalCompare(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a !== "" && b !== "" && Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a.localeCompare(b, undefined, { numeric: true });
}

export class App {
  private readonly api = new Api();
  private layout!: Layout;
  private controls!: Controls;
  private s!: ViewState;
  private runs: RunInfo[] = [];
  private progress: Progress | null = null;
  private readonly selectedRuns = new Set<string>();
  private readonly colors = new Map<string, string>();
  private readonly versions = new Map<string, string>();
  private tree: TagNode | null = null;
  private readonly tagRuns = new Map<string, string[]>();
  private expanded = new Set<string>();
  private treeSeen = false;
  private readonly cards = new Map<string, ChartCard>();
  private hparams: Hparams = { runs: [], hparams: {} };
  private pollTimer = 0;
  private runsSeq = 0;
  private tagsSeq = 0;
  private filterTimer = 0;
  private lastFocusRefresh = 0;
  private focusTimer = 0;

  start(parent: HTMLElement): void {
    this.layout = createLayout(parent);
    this.s = loadState();
    if (this.s.runs) for (const r of this.s.runs) this.selectedRuns.add(r);
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
    this.layout.reload.addEventListener("click", () => void this.reload(true));
    this.layout.tagFilter.addEventListener("input", () => {
      window.clearTimeout(this.filterTimer);
      this.filterTimer = window.setTimeout(() => void this.refreshTags(), 250);
    });
    this.layout.tagRegex.addEventListener("change", () => void this.refreshTags());
    window.addEventListener("focus", () => this.onFocus());
    connectHost(() => void this.reload(false));
    this.save();
    // Ask for runs and tags first: the requests travel while the chart cards are built below
    // (charts need both before they can fetch their series).
    void this.reload(false);
    void this.refreshTags();
    this.renderControls();
    this.renderCards();
  }

  /** Refetches runs, tags and every chart; `hard` also drops the series cache. */
  async reload(hard: boolean): Promise<void> {
    if (hard) this.api.clear();
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

  private tagRunsVersion = 0;
  private xTagsCache: { version: number; tags: string[] } | null = null;

  /** The scalar tags offered as x axes, sorted once per tag list (every chart asks for them). */
  private sortedXTags(): string[] {
    const c = this.xTagsCache;
    if (c && c.version === this.tagRunsVersion) return c.tags;
    const tags = [...this.tagRuns.keys()].sort(naturalCompare).slice(0, MAX_X_TAGS);
    this.xTagsCache = { version: this.tagRunsVersion, tags };
    return tags;
  }

  private save(): void {
    this.s.runs = this.s.runs === null ? null : [...this.selectedRuns];
    saveState(this.s);
  }

  /** Applies a change from the controls: saves it, then redraws what it touches. */
  private changeState(patch: Partial<ViewState>): void {
    const before = this.s;
    this.s = { ...this.s, ...patch };
    if (patch.smooth === "none") this.s.smooth = "none";
    this.save();
    if (patch.refresh !== undefined && patch.refresh !== before.refresh) this.schedulePoll();
    if (patch.dim !== undefined && patch.dim.startsWith("hparam:")) void this.loadHparams();
    if (patch.pins !== undefined) this.renderCards();
    this.renderControls();
    this.renderRuns();
    const touchesCharts = ["x", "xlog", "ylog", "smooth", "weight", "window", "dim", "hl"].some((k) => k in patch);
    if (touchesCharts) for (const card of this.cards.values()) card.refresh();
  }

  private async loadHparams(): Promise<void> {
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

  private runColor = (run: string): string => {
    let c = this.colors.get(run);
    if (!c) {
      c = PALETTE[this.colors.size % PALETTE.length];
      this.colors.set(run, c);
    }
    return c;
  };

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
    const tags = [...this.tagRuns.keys()].sort(naturalCompare);
    this.controls.update({
      state: this.s,
      xTags: tags.slice(0, MAX_X_TAGS),
      runs: this.runs.map((r) => r.name),
      tags,
      hparamNames: Object.keys(this.hparams.hparams).sort(),
      dimValues: values.map((value) => ({ value, color: this.dimColor(value, values) })),
    });
  }

  // ---- polling

  private schedulePoll(): void {
    window.clearTimeout(this.pollTimer);
    this.pollTimer = 0;
    const delay = this.progress?.indexing ? POLL_INDEXING_MS : this.s.refresh * 1000;
    if (delay > 0) this.pollTimer = window.setTimeout(() => void this.refreshRuns(false), delay);
    this.layout.root.dataset.refresh = String(this.s.refresh);
  }

  /**
   * Fetches /runs; refetches tags and charts when runs appeared, vanished or grew (or when `all`).
   * Series of runs whose version did not change come from the cache, so a refresh fetches only
   * the series of runs that grew.
   */
  private async refreshRuns(all: boolean): Promise<void> {
    const seq = ++this.runsSeq;
    let answer;
    try {
      answer = await this.api.runs();
    } catch (e) {
      if (seq !== this.runsSeq) return;
      this.layout.status.textContent = `runs: ${e instanceof Error ? e.message : String(e)}`;
      this.layout.status.classList.add("error");
      this.schedulePoll();
      return;
    }
    if (seq !== this.runsSeq) return; // out of date
    this.layout.status.classList.remove("error");
    const before = this.runs.map((r) => r.name).join("\n");
    this.runs = answer.runs;
    this.progress = answer.progress;
    for (const r of this.runs) this.runColor(r.name);
    const names = new Set(this.runs.map((r) => r.name));
    if (this.s.runs === null) {
      this.selectedRuns.clear();
      for (const r of this.runs.slice(0, DEFAULT_RUNS)) this.selectedRuns.add(r.name);
    }
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
    if (all || runsChanged || changed.size > 0 || !this.tree) void this.refreshTags();
    if (all || runsChanged || changed.size > 0) {
      if (all || this.s.dim.startsWith("hparam:")) void this.loadHparams();
    }
    const touchesSelection = [...changed].some((r) => this.selectedRuns.has(r));
    if (all || runsChanged || touchesSelection) this.updateCards(all || runsChanged ? null : changed);
    this.schedulePoll();
  }

  private async refreshTags(): Promise<void> {
    const seq = ++this.tagsSeq;
    const filter = this.layout.tagFilter.value.trim();
    const regex = this.layout.tagRegex.checked;
    try {
      const answer = await this.api.tags({ filter, regex });
      if (seq !== this.tagsSeq) return; // out of date
      this.layout.tagError.hidden = true;
      this.tree = answer.tree;
      this.indexTagRuns(answer.tree);
      if (filter) this.expanded = new Set(groupPaths(answer.tree));
      else if (!this.treeSeen) {
        // First view: open the top-level groups of a small tree.
        if (answer.count <= 300) for (const c of answer.tree.children) if (c.children.length) this.expanded.add(c.path);
      }
      this.treeSeen = true;
      this.layout.tagTree.dataset.count = String(answer.count);
      this.renderTree();
      this.renderControls();
      this.updateCards(null);
    } catch (e) {
      if (seq !== this.tagsSeq) return;
      this.layout.tagError.hidden = false;
      this.layout.tagError.textContent =
        e instanceof ApiError && e.status === 400 ? `Bad filter: ${e.message}` : `tags: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  private indexTagRuns(node: TagNode): void {
    this.tagRunsVersion++;
    if (isTag(node) && node.path) this.tagRuns.set(node.path, node.runs ?? []);
    for (const c of node.children) this.indexTagRuns(c);
  }

  // ---- runs and tags

  private renderRuns(): void {
    const colorOf = this.s.dim ? (run: string) => this.style(run, "").color : this.runColor;
    renderRunList(this.layout.runList, this.runs, this.selectedRuns, colorOf, {
      onToggle: (run, on) => {
        this.s.runs = [];
        if (on) this.selectedRuns.add(run);
        else this.selectedRuns.delete(run);
        this.afterRunSelection();
      },
      onAll: (on) => {
        this.s.runs = [];
        this.selectedRuns.clear();
        if (on) for (const r of this.runs) this.selectedRuns.add(r.name);
        this.afterRunSelection();
      },
    });
  }

  private afterRunSelection(): void {
    this.save();
    this.renderRuns();
    this.renderTree();
    this.renderControls();
    this.updateCards(null);
  }

  private renderTree(): void {
    renderTagTree(
      this.layout.tagTree,
      this.tree,
      { expanded: this.expanded, selectedTags: new Set(this.s.tags), selectedRuns: this.selectedRuns },
      {
        onToggleTag: (path) => {
          const i = this.s.tags.indexOf(path);
          if (i >= 0) this.s.tags.splice(i, 1);
          else this.s.tags.push(path);
          this.afterChartsChanged();
        },
        onShowGroup: (node) => {
          this.s.tags = tagsUnder(node, GROUP_LIMIT);
          this.expanded.add(node.path);
          this.afterChartsChanged();
        },
        onToggleExpand: (path) => {
          if (this.expanded.has(path)) this.expanded.delete(path);
          else this.expanded.add(path);
          this.renderTree();
        },
      },
    );
  }

  private afterChartsChanged(): void {
    this.save();
    this.renderTree();
    this.renderCards();
    this.renderControls();
  }

  /** Runs to draw for a tag: the selected runs (in run order) that have it, when that is known. */
  private runsFor = (tag: string): string[] => {
    const has = this.tagRuns.get(tag);
    const hasSet = has ? new Set(has) : null;
    return this.runs.map((r) => r.name).filter((r) => this.selectedRuns.has(r) && (!hasSet || hasSet.has(r)));
  };

  // ---- charts

  private isPinnedTag(tag: string): boolean {
    return this.s.pins.some((p) => p === tag || globRegex(p).test(tag));
  }

  /** Every chart to show, pinned tag charts first (each group in selection order). */
  private specs(): CardSpec[] {
    const tags = this.s.tags;
    const pinned = tags.filter((t) => this.isPinnedTag(t));
    const rest = tags.filter((t) => !this.isPinnedTag(t));
    return [
      ...pinned.map((tag): CardSpec => ({ kind: "tag", tag })),
      ...rest.map((tag): CardSpec => ({ kind: "tag", tag })),
      ...this.s.custom.map((spec): CardSpec => ({ kind: "custom", spec })),
      ...this.s.agg.map((spec): CardSpec => ({ kind: "agg", spec })),
      ...this.s.cmp.map((spec): CardSpec => ({ kind: "cmp", spec })),
    ];
  }

  private removeCard(card: ChartCard): void {
    const spec = card.spec;
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

  /** Makes the grid hold one card per chart spec, in order. */
  private renderCards(): void {
    const specs = this.specs();
    const wanted = new Set(specs.map(cardId));
    for (const [id, card] of this.cards) {
      if (!wanted.has(id)) {
        card.destroy();
        this.cards.delete(id);
      }
    }
    const fresh: ChartCard[] = [];
    for (const spec of specs) {
      const id = cardId(spec);
      let card = this.cards.get(id);
      if (!card) {
        card = new ChartCard(spec, {
          api: this.api,
          runsFor: this.runsFor,
          selectedRuns: () => this.runs.map((r) => r.name).filter((r) => this.selectedRuns.has(r)),
          style: this.style,
          groupStyle: this.groupStyle,
          settings: () => ({
            x: this.s.x,
            xlog: this.s.xlog,
            ylog: this.s.ylog,
            smooth: { kind: this.s.smooth, weight: this.s.weight, window: this.s.window },
          }),
          xTags: () => this.sortedXTags(),
          onOpts: (c, o) => this.setCardOpts(c, o),
          onClose: (c) => this.removeCard(c),
          onPin: (c) => {
            const tag = c.tag;
            if (tag === null) return;
            const pins = this.s.pins.includes(tag) ? this.s.pins.filter((p) => p !== tag) : [...this.s.pins, tag];
            this.changeState({ pins });
          },
          isPinned: (c) => c.tag !== null && this.isPinnedTag(c.tag),
        });
        card.opts = spec.kind === "tag" ? { ...(this.s.tagOpts[spec.tag] ?? {}) } : { ...(spec.spec.o ?? {}) };
        this.cards.set(id, card);
        fresh.push(card);
      }
      this.layout.grid.appendChild(card.panel.root); // appending an existing node moves it: keeps order
    }
    this.layout.empty.hidden = specs.length > 0;
    this.renderMainBar();
    for (const card of fresh) {
      card.mount();
      if (this.runs.length) card.refresh();
    }
    // Pins changed: refresh the pin marks of the cards that stayed.
    for (const card of this.cards.values()) if (!fresh.includes(card) && card.tag !== null) card.panel.root.dataset.pinned = String(this.isPinnedTag(card.tag));
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
      this.s.custom = [];
      this.s.agg = [];
      this.s.cmp = [];
      this.afterChartsChanged();
    });
    this.layout.mainBar.replaceChildren(
      el("span", { text: `${n} chart${n === 1 ? "" : "s"} · ${this.selectedRuns.size} run${this.selectedRuns.size === 1 ? "" : "s"}` }),
      clear,
    );
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
    if (spec.kind === "tag") return this.runsFor(spec.tag).some((r) => runs.has(r));
    if (spec.kind === "custom") return spec.spec.series.some(([r]) => runs.has(r));
    if (spec.kind === "cmp") return runs.has(spec.spec.a[0]) || runs.has(spec.spec.b[0]);
    return [...runs].some((r) => this.selectedRuns.has(r));
  }
}
