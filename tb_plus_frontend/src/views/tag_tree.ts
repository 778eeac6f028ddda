// The tag pane: a search box with its mode, the separator choice, and the tag tree as a virtualised
// list of fixed-height rows (only the rows in view are in the DOM). Rows come from TagTreeModel.
//
// Test ids: tag-search, tag-search-mode, tag-sep, tag-error, tag-search-info, tag-tree; per row
// group-<path> (a group's name: shows its charts), toggle-<path> (expand / collapse), tag-<path> (a leaf:
// toggles its chart), pin-toggle-<path> (pins / unpins a leaf), tree-more-<path> (next page of children).

import { caret, icon } from "./icons";
import { el } from "./dom";
import { VirtualList } from "./virtual_list";
import type { SearchMode } from "../api";
import type { TreeRow } from "../tag_tree_model";

export const TREE_ROW_HEIGHT = 22;
const INDENT = 12;

export const SEPARATORS: [string, string][] = [["/", "/"], [".", "."], ["/.", "/ and ."]];

export type PinState = "exact" | "pattern" | null;

export interface TagTreeHandlers {
  onToggleTag: (path: string) => void;
  onShowGroup: (path: string) => void;
  onToggleExpand: (path: string) => void;
  onMore: (parent: string) => void;
  onPin: (path: string) => void;
  /** The search text or mode changed (not debounced). */
  onSearch: (text: string, mode: SearchMode) => void;
  onSeparator: (sep: string) => void;
}

export interface TagTreeLook {
  selected: (path: string) => boolean;
  pinned: (path: string) => PinState;
}

/** `name` as text nodes, with `mark` (a character range) wrapped in <mark>. */
function marked(name: string, mark: [number, number] | null): (string | HTMLElement)[] {
  if (!mark) return [name];
  return [name.slice(0, mark[0]), el("mark", { text: name.slice(mark[0], mark[1]) }), name.slice(mark[1])];
}

export class TagTreeView {
  readonly root: HTMLElement;
  readonly search: HTMLInputElement;
  readonly mode: HTMLSelectElement;
  readonly sep: HTMLSelectElement;
  readonly error: HTMLElement;
  readonly info: HTMLElement;
  readonly tree: HTMLElement;
  private readonly list: VirtualList<TreeRow>;

  constructor(
    private readonly handlers: TagTreeHandlers,
    private readonly look: TagTreeLook,
  ) {
    this.search = el("input", {
      class: "tbp-filter",
      testid: "tag-search",
      type: "search",
      placeholder: "Search tags",
      title: "Search tags (any case, in every mode)",
      "aria-label": "Search tags",
    });
    this.mode = el("select", { class: "tbp-mini", testid: "tag-search-mode", title: "How the search text matches tags: substring (anywhere), glob (* ? [..], the whole tag) or regex; case is ignored in all three" });
    for (const [v, t] of [["substring", "substring"], ["glob", "glob"], ["regex", "regex"]]) this.mode.append(el("option", { value: v, text: t }));
    const emit = (): void => handlers.onSearch(this.search.value.trim(), this.mode.value as SearchMode);
    this.search.addEventListener("input", emit);
    this.mode.addEventListener("change", emit);
    this.sep = el("select", { class: "tbp-mini", testid: "tag-sep", title: "Separator the tag names nest on" });
    for (const [v, t] of SEPARATORS) this.sep.append(el("option", { value: v, text: t }));
    this.sep.addEventListener("change", () => handlers.onSeparator(this.sep.value));
    this.error = el("div", { class: "tbp-error", testid: "tag-error", hidden: true, role: "alert" });
    this.info = el("div", { class: "tbp-tree-info", testid: "tag-search-info" });
    this.tree = el("div", { class: "tbp-tag-tree", testid: "tag-tree", role: "tree" });
    this.list = new VirtualList<TreeRow>(this.tree, {
      rowHeight: TREE_ROW_HEIGHT,
      overscan: 15,
      renderRow: (r) => this.renderRow(r),
      fallbackHeight: 600,
    });
    this.root = el(
      "div",
      { class: "tbp-tag-pane" },
      el("div", { class: "tbp-filter-row" }, this.search, this.mode),
      el("div", { class: "tbp-filter-row tbp-sep-row" }, el("span", { class: "tbp-ctl-label", text: "nest on" }), this.sep, this.info),
      this.error,
      this.tree,
    );
  }

  setRows(rows: TreeRow[]): void {
    this.list.setItems(rows);
  }

  /** Redraws the rows in view (selection or pins changed). */
  redraw(): void {
    this.list.refresh();
  }

  setError(text: string | null): void {
    this.error.hidden = text === null;
    this.error.textContent = text ?? "";
  }

  private renderRow(r: TreeRow): HTMLElement {
    const pad = `${r.depth * INDENT}px`;
    if (r.kind === "group") {
      const twisty = el("button", {
        class: "tbp-twisty",
        testid: `toggle-${r.path}`,
        "aria-expanded": String(r.open),
        "aria-label": r.open ? "collapse" : "expand",
      });
      twisty.append(caret(r.open));
      twisty.addEventListener("click", (e) => {
        e.stopPropagation();
        this.handlers.onToggleExpand(r.path);
      });
      const label = el(
        "span",
        { class: "tbp-group-name", testid: `group-${r.path}`, title: `Show the charts of ${r.path}` },
        ...marked(r.name, r.mark),
      );
      label.addEventListener("click", () => this.handlers.onShowGroup(r.path));
      const head = el(
        "div",
        { class: "tbp-row tbp-group-head", role: "treeitem", "aria-expanded": String(r.open), "data-path": r.path },
        twisty,
        label,
        el("span", { class: "tbp-count", text: r.count.toLocaleString() }),
      );
      head.style.paddingLeft = pad;
      return head;
    }
    if (r.kind === "leaf") {
      const selected = this.look.selected(r.path);
      const pin = this.look.pinned(r.path);
      const pinButton = el("button", {
        class: `tbp-pin-toggle${pin ? ` pinned ${pin}` : ""}`,
        testid: `pin-toggle-${r.path}`,
        title: pin === "exact" ? "Unpin" : pin === "pattern" ? "Pinned by a pattern; click to pin this tag itself" : "Pin to the top",
        "aria-pressed": String(pin !== null),
        text: pin ? undefined : "pin",
      });
      if (pin) pinButton.append(icon("pin"));
      pinButton.addEventListener("click", (e) => {
        e.stopPropagation();
        this.handlers.onPin(r.path);
      });
      const leaf = el(
        "div",
        {
          class: `tbp-row tbp-leaf${selected ? " selected" : ""}`,
          testid: `tag-${r.path}`,
          role: "treeitem",
          "aria-selected": String(selected),
          title: `${r.path} (${r.runs} run${r.runs === 1 ? "" : "s"})`,
          "data-path": r.path,
          "data-pinned": String(pin !== null),
        },
        el("span", { class: "tbp-check" }, icon(selected ? "box-on" : "box-off")),
        el("span", { class: "tbp-leaf-name" }, ...marked(r.name, r.mark)),
        pinButton,
      );
      leaf.style.paddingLeft = `${r.depth * INDENT + 18}px`;
      leaf.addEventListener("click", () => this.handlers.onToggleTag(r.path));
      return leaf;
    }
    if (r.kind === "more") {
      const more = el("button", { class: "tbp-link tbp-more", testid: `tree-more-${r.path}`, text: r.text });
      more.addEventListener("click", () => this.handlers.onMore(r.path));
      const box = el("div", { class: "tbp-row tbp-more-row" }, more);
      box.style.paddingLeft = `${r.depth * INDENT + 18}px`;
      return box;
    }
    const note = el("div", {
      class: `tbp-row tbp-muted${r.kind === "loading" ? " tbp-loading" : ""}`,
      testid: r.kind === "info" && !r.path && r.text === "No scalar tags." ? "no-tags" : undefined,
      text: r.text,
    });
    note.style.paddingLeft = `${r.depth * INDENT + 18}px`;
    return note;
  }
}
