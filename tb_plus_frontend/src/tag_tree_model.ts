// The tag tree's data: what the virtualised view (views/tag_tree.ts) draws, as a flat list of rows.
//
// Browse mode: the children of each node come from /tags level mode when the node is first expanded
// (or comes into the flattened list expanded), PAGE of them at a time; a "show more" row fetches the next
// page. Answers are kept per node; `invalidate()` marks them stale (new tags may have appeared) and they
// are refetched when next drawn, the old children staying on screen until the new ones arrive.
//
// Search mode: the tree is built from one /tags search answer (`matches` and the `groups` holding them);
// every group starts expanded, counts are matches per group, and match spans become highlights.

import type { Api, TagLevel, TagSearch } from "./api";

/** Children fetched per level request (the server's default limit). */
export const PAGE = 2000;
/** A first view with at most this many tags opens its top-level groups. */
const SMALL_TREE = 300;

export interface TreeRow {
  kind: "group" | "leaf" | "more" | "loading" | "info";
  /** The node's path; for "more" / "loading" / "info" rows, the path of the node they belong to. */
  path: string;
  name: string;
  depth: number;
  /** Tags at or below a group (browse) or matches below it (search). */
  count: number;
  /** Runs having a leaf's tag. */
  runs: number;
  open: boolean;
  /** A leaf standing for its group's own tag (a tag `a` beside tags `a/b`). */
  self: boolean;
  /** Highlighted character range of `name`, or null. */
  mark: [number, number] | null;
  /** Text of "more" / "loading" / "info" rows. */
  text: string;
}

interface Level {
  total: number;
  name: string[];
  path: string[];
  count: number[];
  group: boolean[];
  tag: boolean[];
  runs: number[];
  loading: boolean;
  error: string | null;
  /** The model generation the children were fetched in; older ones are refetched when drawn. */
  gen: number;
}

interface SearchNode {
  name: string;
  path: string;
  count: number;
  runs: number;
  /** The node is itself a matching tag. */
  isTag: boolean;
  /** The server listed it as a group holding matches. */
  isGroup: boolean;
  mark: [number, number] | null;
  children: SearchNode[];
}

export interface SearchInfo {
  count: number;
  total: number;
  truncated: boolean;
  shown: number;
}

/** The part of [start, end) that falls on the last segment `name` of `path`, relative to the name. */
function markIn(path: string, name: string, start: number, end: number): [number, number] | null {
  const from = path.length - name.length;
  const a = Math.max(start, from);
  const b = Math.min(end, path.length);
  return b > a ? [a - from, b - from] : null;
}

/** Index of the last separator character of `path`, or -1. */
function lastSep(path: string, sep: string): number {
  let i = -1;
  for (const c of sep) i = Math.max(i, path.lastIndexOf(c));
  return i;
}

function row(partial: Partial<TreeRow> & Pick<TreeRow, "kind" | "path" | "depth">): TreeRow {
  return { name: "", count: 0, runs: 0, open: false, self: false, mark: null, text: "", ...partial };
}

export class TagTreeModel {
  private sep = "/";
  private readonly levels = new Map<string, Level>();
  private gen = 0;
  /** Open groups in browse mode (paths under the current separator). */
  readonly expanded = new Set<string>();
  private firstView = true;
  /** Whether a small tree opens its top-level groups when first shown. Off while the app's first view
   * charts the key series: the tree then lists the groups collapsed by prefix, as TensorBoard does. */
  openSmallTree = true;
  /** Tags in the log directory, from the root's level answer. */
  totalTags: number | null = null;

  private search: { root: SearchNode; info: SearchInfo } | null = null;
  /** Groups the user closed in search mode (everything starts open there). */
  private readonly searchClosed = new Set<string>();

  constructor(
    private readonly api: Api,
    /** Called when fetched children arrived (t0: when the answer was received, for the tbp:tree measure). */
    private readonly onLoaded: (t0: number) => void,
    /** Called when a level request failed. */
    private readonly onError: (message: string) => void,
  ) {}

  get separator(): string {
    return this.sep;
  }

  get searching(): boolean {
    return this.search !== null;
  }

  get searchInfo(): SearchInfo | null {
    return this.search?.info ?? null;
  }

  /** A new separator nests the tags differently: every fetched level and open group is forgotten. */
  setSeparator(sep: string): void {
    if (sep === this.sep) return;
    this.sep = sep;
    this.levels.clear();
    this.expanded.clear();
    this.gen++;
  }

  /** Forgets everything (another log directory): levels, open groups, the search; while `waiting` is
   * set, rows() shows it instead of fetching (the directory's first index is being built). */
  reset(): void {
    this.levels.clear();
    this.expanded.clear();
    this.searchClosed.clear();
    this.search = null;
    this.firstView = true;
    this.totalTags = null;
    this.gen++;
  }

  /** Text shown instead of the tree, and no level fetched, while not null. */
  waiting: string | null = null;

  /** Marks every fetched level stale: they are refetched when next drawn. */
  invalidate(): void {
    this.gen++;
  }

  toggle(path: string): void {
    if (this.search) {
      if (this.searchClosed.has(path)) this.searchClosed.delete(path);
      else this.searchClosed.add(path);
      return;
    }
    if (this.expanded.has(path)) this.expanded.delete(path);
    else this.expanded.add(path);
  }

  expand(path: string): void {
    if (this.search) this.searchClosed.delete(path);
    else this.expanded.add(path);
  }

  /** Fetches the next page of `parent`'s children. */
  more(parent: string): void {
    const level = this.levels.get(parent);
    if (!level || level.loading) return;
    void this.load(parent, level.name.length, PAGE, false);
  }

  /** Shows a search answer (null: back to browsing). */
  setSearch(answer: TagSearch | null): void {
    this.searchClosed.clear();
    this.search = answer ? this.buildSearch(answer) : null;
  }

  /** The rows to draw, depth first; requests the levels that are missing or stale. */
  rows(): TreeRow[] {
    const out: TreeRow[] = [];
    if (this.waiting !== null) {
      out.push(row({ kind: "loading", path: "", depth: 0, text: this.waiting }));
      return out;
    }
    if (this.search) {
      if (!this.search.root.children.length) out.push(row({ kind: "info", path: "", depth: 0, text: "No tag matches." }));
      this.searchRows(this.search.root, 0, out);
      if (this.search.info.truncated) {
        const i = this.search.info;
        out.push(row({ kind: "info", path: "", depth: 0, text: `First ${i.shown.toLocaleString()} of ${i.count.toLocaleString()} matches shown` }));
      }
      return out;
    }
    this.levelRows("", 0, out);
    return out;
  }

  private levelRows(parent: string, depth: number, out: TreeRow[]): void {
    const level = this.levels.get(parent);
    if (!level || (level.gen < this.gen && !level.loading)) {
      // Missing, or stale: refetch what was loaded (at least one page), keep showing the old children.
      const limit = Math.min(10000, Math.max(PAGE, level ? level.name.length : 0));
      void this.load(parent, 0, limit, true);
    }
    const now = this.levels.get(parent);
    if (!now || (now.loading && !now.name.length)) {
      out.push(row({ kind: "loading", path: parent, depth, text: parent ? "Loading…" : "Loading tags…" }));
      return;
    }
    if (now.error && !now.name.length) {
      out.push(row({ kind: "info", path: parent, depth, text: now.error }));
      return;
    }
    if (!parent && !now.name.length) {
      out.push(row({ kind: "info", path: "", depth, text: "No scalar tags." }));
      return;
    }
    for (let i = 0; i < now.name.length; i++) {
      const path = now.path[i];
      const name = now.name[i];
      if (now.group[i]) {
        const open = this.expanded.has(path);
        out.push(row({ kind: "group", path, name, depth, count: now.count[i], runs: now.runs[i], open }));
        if (open) {
          if (now.tag[i]) out.push(row({ kind: "leaf", path, name: `${name} (tag)`, depth: depth + 1, runs: now.runs[i], self: true }));
          this.levelRows(path, depth + 1, out);
        }
      } else {
        out.push(row({ kind: "leaf", path, name, depth, count: 1, runs: now.runs[i] }));
      }
    }
    if (now.name.length < now.total) {
      out.push(
        row({
          kind: "more",
          path: parent,
          depth,
          text: now.loading ? "Loading…" : `Show more (${now.name.length.toLocaleString()} of ${now.total.toLocaleString()})`,
        }),
      );
    }
  }

  private async load(parent: string, offset: number, limit: number, replace: boolean): Promise<void> {
    const existing = this.levels.get(parent);
    const gen = this.gen;
    const level: Level = existing ?? {
      total: 0, name: [], path: [], count: [], group: [], tag: [], runs: [], loading: false, error: null, gen,
    };
    level.loading = true;
    level.error = null;
    this.levels.set(parent, level);
    let answer: TagLevel;
    try {
      answer = await this.api.tagLevel({ parent, sep: this.sep, offset, limit });
    } catch (e) {
      if (this.levels.get(parent) !== level) return; // separator changed meanwhile
      level.loading = false;
      level.gen = gen;
      level.error = e instanceof Error ? e.message : String(e);
      this.onError(level.error);
      this.onLoaded(performance.now());
      return;
    }
    const t0 = performance.now();
    if (this.levels.get(parent) !== level) return;
    const c = answer.children;
    if (replace) {
      level.name = c.name.slice();
      level.path = c.path.slice();
      level.count = c.count.slice();
      level.group = c.group.slice();
      level.tag = c.tag.slice();
      level.runs = c.runs.slice();
    } else {
      level.name.push(...c.name);
      level.path.push(...c.path);
      level.count.push(...c.count);
      level.group.push(...c.group);
      level.tag.push(...c.tag);
      level.runs.push(...c.runs);
    }
    level.total = answer.total_children;
    level.loading = false;
    level.gen = gen;
    if (!parent) {
      this.totalTags = answer.count;
      if (this.firstView) {
        this.firstView = false;
        // A small tree opens its top-level groups on first view.
        if (this.openSmallTree && answer.count <= SMALL_TREE) c.path.forEach((p, i) => c.group[i] && this.expanded.add(p));
      }
    }
    this.onLoaded(t0);
  }

  // ---- search

  private parentOf(path: string): string {
    const i = lastSep(path, this.sep);
    return i < 0 ? "" : path.slice(0, i);
  }

  private buildSearch(a: TagSearch): { root: SearchNode; info: SearchInfo } {
    const root: SearchNode = { name: "", path: "", count: a.count, runs: 0, isTag: false, isGroup: true, mark: null, children: [] };
    const nodes = new Map<string, SearchNode>([["", root]]);
    const ensure = (path: string): SearchNode => {
      let node = nodes.get(path);
      if (node) return node;
      const parent = ensure(this.parentOf(path));
      const i = lastSep(path, this.sep);
      node = { name: path.slice(i + 1), path, count: 0, runs: 0, isTag: false, isGroup: false, mark: null, children: [] };
      nodes.set(path, node);
      parent.children.push(node);
      return node;
    };
    const m = a.matches;
    for (let k = 0; k < m.tag.length; k++) {
      const tag = m.tag[k];
      const node = ensure(tag);
      node.isTag = true;
      node.runs = m.runs[k];
      node.mark = markIn(tag, node.name, m.start[k], m.end[k]);
      // Ancestors show the part of the first match that falls on their own name.
      for (let p = this.parentOf(tag); p; p = this.parentOf(p)) {
        const g = nodes.get(p);
        if (g && !g.mark) g.mark = markIn(p, g.name, m.start[k], m.end[k]);
      }
    }
    const g = a.groups;
    for (let k = 0; k < g.path.length; k++) {
      const node = ensure(g.path[k]);
      node.isGroup = true;
      node.count = g.count[k];
    }
    return { root, info: { count: a.count, total: a.total, truncated: a.truncated, shown: m.tag.length } };
  }

  private searchRows(node: SearchNode, depth: number, out: TreeRow[]): void {
    for (const n of node.children) {
      if (n.children.length || (n.isGroup && !n.isTag)) {
        const open = !this.searchClosed.has(n.path);
        out.push(row({ kind: "group", path: n.path, name: n.name, depth, count: n.count, open, mark: n.mark }));
        if (!open) continue;
        if (n.isTag) out.push(row({ kind: "leaf", path: n.path, name: `${n.name} (tag)`, depth: depth + 1, runs: n.runs, self: true, mark: n.mark }));
        if (!n.children.length) out.push(row({ kind: "info", path: n.path, depth: depth + 1, text: "matches beyond the shown ones" }));
        this.searchRows(n, depth + 1, out);
      } else {
        out.push(row({ kind: "leaf", path: n.path, name: n.name, depth, count: 1, runs: n.runs, mark: n.mark }));
      }
    }
  }
}
