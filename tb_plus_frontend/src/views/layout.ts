// The page shell: a top bar (title, progress, reload), a left pane (runs, tags) and the chart grid.

import { el } from "./dom";
import type { Progress } from "../api";

export interface Layout {
  root: HTMLElement;
  progress: HTMLElement;
  progressBar: HTMLElement;
  progressText: HTMLElement;
  reload: HTMLButtonElement;
  status: HTMLElement;
  runList: HTMLElement;
  tagFilter: HTMLInputElement;
  tagRegex: HTMLInputElement;
  tagError: HTMLElement;
  tagTree: HTMLElement;
  mainBar: HTMLElement;
  controlsHost: HTMLElement;
  grid: HTMLElement;
  empty: HTMLElement;
}

export function createLayout(parent: HTMLElement): Layout {
  const progressBar = el("div", { class: "tbp-progress-bar" });
  const progressText = el("span", { class: "tbp-progress-text" });
  const progress = el("div", { class: "tbp-progress", testid: "progress", hidden: true, role: "progressbar" }, progressBar);
  const reload = el("button", { class: "tbp-button", testid: "reload", title: "Reload runs, tags and charts", text: "⟳ Reload" });
  const status = el("span", { class: "tbp-status", testid: "status" });
  const top = el("header", { class: "tbp-top" }, el("span", { class: "tbp-title", text: "TB+" }), progressText, status, reload);

  const runList = el("div", { class: "tbp-run-list", testid: "run-list" });
  const tagFilter = el("input", {
    class: "tbp-filter",
    testid: "tag-filter",
    type: "search",
    placeholder: "Filter tags",
    "aria-label": "Filter tags",
  });
  const tagRegex = el("input", { type: "checkbox", testid: "tag-regex" });
  const regexLabel = el("label", { class: "tbp-regex", title: "Read the filter as a regular expression" }, tagRegex, ".*");
  const tagError = el("div", { class: "tbp-error", testid: "tag-error", hidden: true });
  const tagTree = el("div", { class: "tbp-tag-tree", testid: "tag-tree", role: "tree" });
  const side = el(
    "aside",
    { class: "tbp-side" },
    el("h3", { text: "Runs" }),
    runList,
    el("h3", { text: "Tags" }),
    el("div", { class: "tbp-filter-row" }, tagFilter, regexLabel),
    tagError,
    tagTree,
  );

  const mainBar = el("div", { class: "tbp-main-bar" });
  const empty = el("div", { class: "tbp-empty", testid: "empty", text: "Select a tag on the left (a group shows its first 24 tags)." });
  const grid = el("div", { class: "tbp-grid", testid: "chart-grid" });
  const controlsHost = el("div", { class: "tbp-controls-host" });
  const main = el("main", { class: "tbp-main" }, controlsHost, mainBar, empty, grid);

  const root = el("div", { class: "tbp-root" }, progress, top, el("div", { class: "tbp-body" }, side, main));
  parent.appendChild(root);
  return { root, progress, progressBar, progressText, reload, status, runList, tagFilter, tagRegex, tagError, tagTree, mainBar, controlsHost, grid, empty };
}

export function showProgress(layout: Layout, progress: Progress | null): void {
  const indexing = Boolean(progress?.indexing);
  layout.progress.hidden = !indexing;
  layout.progress.dataset.indexing = String(indexing);
  if (!progress || !indexing) {
    layout.progressText.textContent = "";
    return;
  }
  const frac = progress.bytes_total > 0 ? progress.bytes_done / progress.bytes_total : 0;
  layout.progressBar.style.width = `${(Math.min(1, frac) * 100).toFixed(1)}%`;
  layout.progress.setAttribute("aria-valuenow", (frac * 100).toFixed(0));
  layout.progressText.textContent = `indexing ${progress.files_done}/${progress.files_total} files (${(frac * 100).toFixed(0)}%)`;
}
