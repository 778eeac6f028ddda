// The TB+ tab: state, polling and wiring between the API, the views and the chart cards.

import { Api, ApiError, runVersion, type Progress, type RunInfo, type TagNode } from "./api";
import { ChartCard } from "./chart_card";
import { connectHost } from "./host";
import { createLayout, showProgress, type Layout } from "./views/layout";
import { renderRunList } from "./views/run_list";
import { isTag, renderTagTree, tagsUnder } from "./views/tag_tree";
import { el } from "./views/dom";

export const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a",
];
export const DEFAULT_RUNS = 10;
export const GROUP_LIMIT = 24;
const POLL_INDEXING_MS = 2000;
const POLL_IDLE_MS = 30000;
const FOCUS_THROTTLE_MS = 2000;
const STORAGE_KEY = "tb_plus.state.v1";

interface SavedState {
  tags: string[];
  runs: string[] | null;
}

function loadState(): SavedState | null {
  try {
    const raw = window.localStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as SavedState) : null;
  } catch {
    return null; // storage blocked (e.g. cross-site iframe)
  }
}

function saveState(state: SavedState): void {
  try {
    window.localStorage.setItem(STORAGE_KEY, JSON.stringify(state));
  } catch {
    // ignore
  }
}

/** State given in the page URL (the standalone page: ?run=A&run=B&tag=x/y), or null. Inside
 * TensorBoard the iframe's URL carries none of these, so the saved state applies. */
function stateFromUrl(): SavedState | null {
  const params = new URLSearchParams(window.location.search);
  const runs = params.getAll("run");
  const tags = params.getAll("tag");
  if (!runs.length && !tags.length) return null;
  return { tags, runs: runs.length ? runs : null };
}

function groupPaths(node: TagNode, out: string[] = []): string[] {
  for (const c of node.children) {
    if (c.children.length) {
      out.push(c.path);
      groupPaths(c, out);
    }
  }
  return out;
}

export class App {
  private readonly api = new Api();
  private layout!: Layout;
  private runs: RunInfo[] = [];
  private progress: Progress | null = null;
  private readonly selectedRuns = new Set<string>();
  private runsTouched = false;
  private readonly colors = new Map<string, string>();
  private readonly versions = new Map<string, string>();
  private tree: TagNode | null = null;
  private readonly tagRuns = new Map<string, string[]>();
  private expanded = new Set<string>();
  private treeSeen = false;
  private selectedTags: string[] = [];
  private readonly cards = new Map<string, ChartCard>();
  private pollTimer = 0;
  private runsSeq = 0;
  private tagsSeq = 0;
  private filterTimer = 0;
  private lastFocusRefresh = 0;
  private focusTimer = 0;

  start(parent: HTMLElement): void {
    this.layout = createLayout(parent);
    const fromUrl = stateFromUrl();
    const saved = fromUrl ?? loadState();
    if (saved) {
      this.selectedTags = Array.isArray(saved.tags) ? saved.tags.filter((t) => typeof t === "string") : [];
      if (Array.isArray(saved.runs)) {
        this.runsTouched = true;
        for (const r of saved.runs) this.selectedRuns.add(r);
      }
    }
    this.layout.reload.addEventListener("click", () => void this.reload(true));
    this.layout.tagFilter.addEventListener("input", () => {
      window.clearTimeout(this.filterTimer);
      this.filterTimer = window.setTimeout(() => void this.refreshTags(), 250);
    });
    this.layout.tagRegex.addEventListener("change", () => void this.refreshTags());
    window.addEventListener("focus", () => this.onFocus());
    connectHost(() => void this.reload(false));
    this.renderCards();
    void this.reload(false);
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

  private colorOf = (run: string): string => {
    let c = this.colors.get(run);
    if (!c) {
      c = PALETTE[this.colors.size % PALETTE.length];
      this.colors.set(run, c);
    }
    return c;
  };

  private schedulePoll(): void {
    window.clearTimeout(this.pollTimer);
    const delay = this.progress?.indexing ? POLL_INDEXING_MS : POLL_IDLE_MS;
    this.pollTimer = window.setTimeout(() => void this.refreshRuns(false), delay);
  }

  /** Fetches /runs; refetches tags and charts when runs appeared, vanished or grew (or when `all`). */
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
    for (const r of this.runs) this.colorOf(r.name);
    const names = new Set(this.runs.map((r) => r.name));
    if (!this.runsTouched) {
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
    const touchesSelection = [...changed].some((r) => this.selectedRuns.has(r));
    if (all || runsChanged || touchesSelection) this.updateCards();
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
      this.updateCards();
    } catch (e) {
      if (seq !== this.tagsSeq) return;
      this.layout.tagError.hidden = false;
      this.layout.tagError.textContent =
        e instanceof ApiError && e.status === 400 ? `Bad filter: ${e.message}` : `tags: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  private indexTagRuns(node: TagNode): void {
    if (isTag(node) && node.path) this.tagRuns.set(node.path, node.runs ?? []);
    for (const c of node.children) this.indexTagRuns(c);
  }

  private save(): void {
    saveState({ tags: this.selectedTags, runs: this.runsTouched ? [...this.selectedRuns] : null });
  }

  private renderRuns(): void {
    renderRunList(this.layout.runList, this.runs, this.selectedRuns, this.colorOf, {
      onToggle: (run, on) => {
        this.runsTouched = true;
        if (on) this.selectedRuns.add(run);
        else this.selectedRuns.delete(run);
        this.afterRunSelection();
      },
      onAll: (on) => {
        this.runsTouched = true;
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
    this.updateCards();
  }

  private renderTree(): void {
    renderTagTree(
      this.layout.tagTree,
      this.tree,
      { expanded: this.expanded, selectedTags: new Set(this.selectedTags), selectedRuns: this.selectedRuns },
      {
        onToggleTag: (path) => {
          const i = this.selectedTags.indexOf(path);
          if (i >= 0) this.selectedTags.splice(i, 1);
          else this.selectedTags.push(path);
          this.afterTagSelection();
        },
        onShowGroup: (node) => {
          this.selectedTags = tagsUnder(node, GROUP_LIMIT);
          this.expanded.add(node.path);
          this.afterTagSelection();
        },
        onToggleExpand: (path) => {
          if (this.expanded.has(path)) this.expanded.delete(path);
          else this.expanded.add(path);
          this.renderTree();
        },
      },
    );
  }

  private afterTagSelection(): void {
    this.save();
    this.renderTree();
    this.renderCards();
  }

  /** Runs to draw for a tag: the selected runs (in run order) that have it, when that is known. */
  private runsFor(tag: string): string[] {
    const has = this.tagRuns.get(tag);
    const hasSet = has ? new Set(has) : null;
    return this.runs.map((r) => r.name).filter((r) => this.selectedRuns.has(r) && (!hasSet || hasSet.has(r)));
  }

  /** Makes the grid hold one card per selected tag, in selection order. */
  private renderCards(): void {
    const wanted = new Set(this.selectedTags);
    for (const [tag, card] of this.cards) {
      if (!wanted.has(tag)) {
        card.destroy();
        this.cards.delete(tag);
      }
    }
    const fresh: ChartCard[] = [];
    for (const tag of this.selectedTags) {
      let card = this.cards.get(tag);
      if (!card) {
        card = new ChartCard(tag, {
          api: this.api,
          colorOf: this.colorOf,
          onClose: (t) => {
            this.selectedTags = this.selectedTags.filter((x) => x !== t);
            this.afterTagSelection();
          },
        });
        this.cards.set(tag, card);
        fresh.push(card);
      }
      this.layout.grid.appendChild(card.panel.root); // appending an existing node moves it: keeps order
    }
    this.layout.empty.hidden = this.selectedTags.length > 0;
    this.renderMainBar();
    for (const card of fresh) {
      card.mount();
      if (this.runs.length) card.setRuns(this.runsFor(card.tag));
    }
  }

  private renderMainBar(): void {
    const n = this.selectedTags.length;
    if (!n) {
      this.layout.mainBar.replaceChildren();
      return;
    }
    const clear = el("button", { class: "tbp-link", testid: "charts-clear", text: "clear all" });
    clear.addEventListener("click", () => {
      this.selectedTags = [];
      this.afterTagSelection();
    });
    this.layout.mainBar.replaceChildren(
      el("span", { text: `${n} chart${n === 1 ? "" : "s"} · ${this.selectedRuns.size} run${this.selectedRuns.size === 1 ? "" : "s"}` }),
      clear,
    );
  }

  private updateCards(): void {
    this.renderMainBar();
    if (!this.runs.length) return;
    for (const card of this.cards.values()) card.setRuns(this.runsFor(card.tag));
  }
}
