// The tags: the tag tree (tag_tree_model.ts fetches it level by level, views/tag_tree.ts draws it
// virtualised), the tag search, pins, the tag sample, and group pages.
//
// - Tags are refetched when /runs shows runs or tag counts that moved (`takeRuns`): the tree's levels as
//   they are drawn, the search, pins, the sample and the open group's size.
// - Pins are fnmatch-style globs (or plain tags) that the server resolves, PIN_LIMIT tags at most per pin;
//   their charts form the Pinned section.
// - A group's charts come a page (GROUP_PAGE) at a time; the group, its page and its filter live in the
//   view state (`group`, `gpage`, `gfilter`, `gmode`).

import { type Api, ApiError, type RunInfo, type SearchMode } from "./api";
import { type ViewState } from "./state";
import { TagTreeModel } from "./tag_tree_model";
import { el } from "./views/dom";
import { TagTreeView, type PinState } from "./views/tag_tree";
import { WAITING_TEXT } from "./logdir_controller";

/** Charts per page of a group. */
export const GROUP_PAGE = 24;
/** Charts at most per pin in the Pinned section. */
export const PIN_LIMIT = 48;
/** Tags in the sample: the x-axis choices and the chart builders' lists. */
export const MAX_X_TAGS = 500;
/** Matches at most per search answer. */
const SEARCH_LIMIT = 1000;
const SEARCH_DEBOUNCE_MS = 250;

export interface TagsContext {
  api: Api;
  /** The current view state (read on every use: the app replaces the object). */
  state: () => ViewState;
  /** Saves the view state to the URL. */
  save: () => void;
  /** False while the log directory's first index is being built. */
  ready: () => boolean;
  /** The top bar's status line (the tree's errors) and the group pager's bar. */
  status: HTMLElement;
  groupBar: HTMLElement;
  /** A change of the view state that other parts follow (pins). */
  changeState: (patch: Partial<ViewState>) => void;
  /** The open tags changed (a tag toggled, a group page shown). */
  afterChartsChanged: () => void;
  /** Pins were resolved: the chart cards follow. */
  renderCards: () => void;
  /** The tag sample arrived: the controls follow. */
  renderControls: () => void;
  /** Tags may have changed: the side panels refetch their lists. */
  tagsChanged: () => void;
}

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

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class TagsController {
  readonly tree: TagTreeModel;
  readonly view: TagTreeView;
  /** Run names and tag counts of the last /runs answer: when it changes, tags may have appeared. */
  private tagsKey: string | null = null;
  private tagsGen = 0;
  private searchTimer = 0;
  private searchSeq = 0;
  /** The first tags of the log directory (x-axis choices and the chart builders' lists). */
  private sample: string[] = [];
  private sampleSeq = 0;
  /** Tags each pin resolves to on the server (a pin not yet resolved is absent). */
  private pinned = new Map<string, string[]>();
  private pinsSeq = 0;
  private pinRegexes = new Map<string, RegExp>();
  private groupTotal: number | null = null;
  private groupError: string | null = null;
  private groupSeq = 0;

  /** `firstView`: the groups are listed collapsed (a first view charts the key series, as TensorBoard does). */
  constructor(private readonly ctx: TagsContext, firstView: boolean) {
    this.tree = new TagTreeModel(
      ctx.api,
      (t0) => {
        this.renderTree();
        performance.measure("tbp:tree", { start: t0, end: performance.now() });
      },
      (message) => {
        this.ctx.status.textContent = `tags: ${message}`;
      },
    );
    this.tree.setSeparator(this.s.sep);
    this.tree.openSmallTree = !firstView;
    if (!ctx.ready()) this.tree.waiting = WAITING_TEXT;
    this.view = new TagTreeView(
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
    this.view.sep.value = this.s.sep;
  }

  /** The view state of the moment (the app replaces the object on a change). */
  private get s(): ViewState {
    return this.ctx.state();
  }

  /** The first tags of the log directory (x-axis choices and the chart builders' lists). */
  tagSample(): string[] {
    return this.sample;
  }

  /** Takes the runs of a /runs answer: tags are refetched when run names or tag counts moved. `indexed`:
   * the directory's first index just came in (the tree stops waiting and everything is fetched). */
  takeRuns(runs: RunInfo[], indexed: boolean): void {
    const tagsKey = runs.map((r) => `${r.name}\u0000${r.tags}`).join("\n");
    if (indexed) {
      this.tree.waiting = null;
      this.tagsKey = tagsKey;
      this.refresh();
    } else {
      if (this.tagsKey !== null && tagsKey !== this.tagsKey) this.refresh();
      this.tagsKey = tagsKey;
    }
  }

  /** Tags may have changed: refetch the tree's levels as they are drawn, the search, pins, the sample
   * and the open group's size. */
  refresh(): void {
    this.ctx.api.tagsVersion = String(++this.tagsGen);
    this.tree.invalidate();
    this.renderTree();
    if (this.view.search.value.trim()) void this.runSearch();
    void this.loadTagSample();
    void this.resolvePins();
    this.ctx.tagsChanged();
    if (this.s.group !== null) void this.loadGroupPage(false);
  }

  /** Forgets the old directory's tags, search, pins and group (the caller saves and redraws). */
  reset(): void {
    this.tagsKey = null;
    // The group and the search mean nothing in the new directory; open tags and pins stay.
    this.s.group = null;
    this.s.gpage = 0;
    this.s.gfilter = "";
    this.groupTotal = null;
    this.groupError = null;
    this.sample = [];
    this.pinned = new Map();
    this.searchSeq++;
    this.groupSeq++;
    this.pinsSeq++;
    this.sampleSeq++;
    window.clearTimeout(this.searchTimer);
    this.tree.reset();
    this.tree.waiting = WAITING_TEXT;
    this.view.search.value = "";
    this.view.setError(null);
    this.view.info.textContent = "";
  }

  async loadTagSample(): Promise<void> {
    if (!this.ctx.ready()) return;
    const seq = ++this.sampleSeq;
    try {
      const answer = await this.ctx.api.tagList({ under: "", sep: this.s.sep, limit: MAX_X_TAGS });
      if (seq !== this.sampleSeq) return;
      this.sample = answer.tags;
    } catch {
      return; // the tree shows tag errors
    }
    this.ctx.renderControls();
  }

  // ---- the tag tree

  renderTree(): void {
    this.view.setRows(this.tree.rows());
    if (this.tree.totalTags !== null) this.view.tree.dataset.count = String(this.tree.totalTags);
    this.view.tree.dataset.mode = this.tree.searching ? "search" : "browse";
  }

  private async runSearch(): Promise<void> {
    window.clearTimeout(this.searchTimer);
    const seq = ++this.searchSeq;
    const text = this.view.search.value.trim();
    const mode = this.view.mode.value as SearchMode;
    if (!text) {
      this.view.setError(null);
      this.view.info.textContent = "";
      this.tree.setSearch(null);
      this.renderTree();
      return;
    }
    try {
      const answer = await this.ctx.api.tagSearch({ filter: text, mode, sep: this.s.sep, limit: SEARCH_LIMIT });
      if (seq !== this.searchSeq) return; // out of date
      const t0 = performance.now();
      this.view.setError(null);
      this.tree.setSearch(answer);
      this.renderTree();
      this.view.info.textContent = `${answer.count.toLocaleString()} of ${answer.total.toLocaleString()} tags match`;
      performance.measure("tbp:search", { start: t0, end: performance.now() });
    } catch (e) {
      if (seq !== this.searchSeq) return;
      const what = mode === "regex" ? "Invalid regular expression" : mode === "glob" ? "Invalid pattern" : "Bad search";
      this.view.setError(e instanceof ApiError && e.status === 400 ? `${what}: ${e.message.replace(/^Invalid argument: /, "")}` : `tags: ${errorMessage(e)}`);
      this.view.info.textContent = "";
    }
  }

  private setSeparator(sep: string): void {
    if (sep === this.s.sep) return;
    this.s.sep = sep;
    this.tree.setSeparator(sep);
    // A group path means another group (or nothing) under another separator: leave the group view.
    this.s.group = null;
    this.groupTotal = null;
    this.ctx.save();
    this.renderGroupBar();
    this.renderTree();
    if (this.view.search.value.trim()) void this.runSearch();
  }

  private toggleTag(path: string): void {
    const i = this.s.tags.indexOf(path);
    if (i >= 0) this.s.tags.splice(i, 1);
    else this.s.tags.push(path);
    this.ctx.afterChartsChanged();
  }

  // ---- group pages

  /** Shows the first page of a group's charts (narrowed by the search when the tree shows one). */
  private showGroup(path: string): void {
    const text = this.tree.searching ? this.view.search.value.trim() : "";
    this.s.group = path;
    this.s.gpage = 0;
    this.s.gfilter = text;
    this.s.gmode = text ? (this.view.mode.value as SearchMode) : "substring";
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
  async loadGroupPage(show: boolean): Promise<void> {
    const group = this.s.group;
    if (group === null || !this.ctx.ready()) return;
    const seq = ++this.groupSeq;
    try {
      const answer = await this.ctx.api.tagList({
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
        this.ctx.afterChartsChanged();
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
    this.ctx.save();
    this.renderGroupBar();
    void this.loadGroupPage(true);
  }

  /** Leaves the group view (its charts stay; the caller saves). */
  leaveGroup(): void {
    this.s.group = null;
    this.groupTotal = null;
    this.renderGroupBar();
  }

  renderGroupBar(): void {
    const bar = this.ctx.groupBar;
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
      this.ctx.save();
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

  /** Whether a tag is pinned, by name or by a pattern. */
  isPinnedTag(tag: string): boolean {
    return this.s.pins.some((p) => p === tag || this.pinRegex(p).test(tag));
  }

  private pinState(tag: string): PinState {
    if (this.s.pins.includes(tag)) return "exact";
    return this.isPinnedTag(tag) ? "pattern" : null;
  }

  togglePin(tag: string): void {
    const pins = this.s.pins.includes(tag) ? this.s.pins.filter((p) => p !== tag) : [...this.s.pins, tag];
    this.ctx.changeState({ pins });
  }

  /** Asks the server which tags each pin names (list mode, the pin as a glob), PIN_LIMIT at most per pin. */
  async resolvePins(): Promise<void> {
    const seq = ++this.pinsSeq;
    const pins = this.s.pins.slice();
    if (!pins.length) {
      this.pinned = new Map();
      return;
    }
    if (!this.ctx.ready()) return; // resolved once the directory is indexed
    const answers = await Promise.allSettled(
      pins.map((pin) => this.ctx.api.tagList({ under: "", sep: this.s.sep, limit: PIN_LIMIT, filter: pin, mode: "glob" })),
    );
    if (seq !== this.pinsSeq) return;
    const pinned = new Map<string, string[]>();
    answers.forEach((a, i) => {
      if (a.status === "fulfilled") pinned.set(pins[i], a.value.tags);
    });
    this.pinned = pinned;
    this.ctx.renderCards();
  }

  /** Tags of the Pinned section, pin by pin: what the server resolved, else the charts open that match. */
  pinnedTags(): string[] {
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
}
