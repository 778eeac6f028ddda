// The tag tree from /tags: groups expand and collapse (children are built only when expanded),
// clicking a leaf toggles its chart, clicking a group's name shows its tags.

import { el } from "./dom";
import type { TagNode } from "../api";

export interface TagTreeState {
  expanded: ReadonlySet<string>;
  selectedTags: ReadonlySet<string>;
  selectedRuns: ReadonlySet<string>;
}

export interface TagTreeHandlers {
  onToggleTag: (path: string) => void;
  onShowGroup: (node: TagNode) => void;
  onToggleExpand: (path: string) => void;
}

/** A node is a tag when it carries `runs` (a tag can also be a group, like `a` beside `a/b`). */
export function isTag(node: TagNode): boolean {
  return Array.isArray(node.runs);
}

/** Tags under `node` (itself first when it is a tag), depth first, at most `limit`. */
export function tagsUnder(node: TagNode, limit: number): string[] {
  const out: string[] = [];
  const walk = (n: TagNode): void => {
    if (out.length >= limit) return;
    if (isTag(n) && n.path) out.push(n.path);
    for (const c of n.children) walk(c);
  };
  walk(node);
  return out.slice(0, limit);
}

function leafRow(node: TagNode, label: string, state: TagTreeState, handlers: TagTreeHandlers): HTMLElement {
  const selected = state.selectedTags.has(node.path);
  const inSelectedRuns = (node.runs ?? []).some((r) => state.selectedRuns.has(r));
  const row = el(
    "div",
    {
      class: `tbp-leaf${selected ? " selected" : ""}${inSelectedRuns ? "" : " dim"}`,
      testid: `tag-${node.path}`,
      role: "treeitem",
      "aria-selected": String(selected),
      title: `${node.path} (${(node.runs ?? []).length} runs)`,
      "data-path": node.path,
    },
    el("span", { class: "tbp-check", text: selected ? "☑" : "☐" }),
    el("span", { class: "tbp-leaf-name", text: label }),
  );
  row.addEventListener("click", () => handlers.onToggleTag(node.path));
  return row;
}

function groupNode(node: TagNode, state: TagTreeState, handlers: TagTreeHandlers): HTMLElement {
  const open = state.expanded.has(node.path);
  const twisty = el("button", {
    class: "tbp-twisty",
    testid: `toggle-${node.path}`,
    "aria-expanded": String(open),
    "aria-label": open ? "collapse" : "expand",
    text: open ? "▾" : "▸",
  });
  twisty.addEventListener("click", (e) => {
    e.stopPropagation();
    handlers.onToggleExpand(node.path);
  });
  const label = el(
    "span",
    { class: "tbp-group-name", testid: `group-${node.path}`, title: `Show the tags of ${node.path} (first 24)` },
    node.name,
  );
  label.addEventListener("click", () => handlers.onShowGroup(node));
  const head = el("div", { class: "tbp-group-head" }, twisty, label, el("span", { class: "tbp-count", text: String(node.count) }));
  const box = el("div", { class: "tbp-group", role: "group", "data-path": node.path }, head);
  if (open) box.appendChild(renderChildren(node, state, handlers));
  return box;
}

function renderChildren(node: TagNode, state: TagTreeState, handlers: TagTreeHandlers): HTMLElement {
  const list = el("div", { class: "tbp-children" });
  if (isTag(node) && node.path) list.appendChild(leafRow(node, `${node.name} (tag)`, state, handlers));
  for (const child of node.children) {
    list.appendChild(child.children.length ? groupNode(child, state, handlers) : leafRow(child, child.name, state, handlers));
  }
  return list;
}

export function renderTagTree(container: HTMLElement, tree: TagNode | null, state: TagTreeState, handlers: TagTreeHandlers): void {
  if (!tree) {
    container.replaceChildren(el("div", { class: "tbp-muted", text: "Loading tags…" }));
    return;
  }
  if (!tree.children.length) {
    container.replaceChildren(el("div", { class: "tbp-muted", testid: "no-tags", text: "No scalar tags." }));
    return;
  }
  const scroll = container.scrollTop;
  container.replaceChildren(renderChildren(tree, state, handlers));
  container.scrollTop = scroll;
}
