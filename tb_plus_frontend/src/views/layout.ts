// The page shell: a top bar (title, log-directory picker and upload, progress, reload), a left pane (the tag tree), and the main pane: the
// run table on top (its own resizable pane), then the scrolling chart area: the Diagnostics panel, the
// Evaluation panel (shown when the log directory has evaluation tags), the Layers panel, controls, the "Pinned" section, the group pager and the chart grid.

import { icon } from "./icons";
import { el, formatBytes } from "./dom";
import type { Progress } from "../api";

export interface Layout {
  root: HTMLElement;
  progress: HTMLElement;
  progressBar: HTMLElement;
  progressText: HTMLElement;
  reload: HTMLButtonElement;
  status: HTMLElement;
  /** The top bar (title, picker, status, reload, link). */
  top: HTMLElement;
  /** Where the log-directory picker goes (in the top bar). */
  logdirHost: HTMLElement;
  /** Where the tag pane goes. */
  tagsHost: HTMLElement;
  /** Where the run table goes. */
  runsHost: HTMLElement;
  mainBar: HTMLElement;
  /** Where the Diagnostics panel goes (top of the chart area). */
  diagHost: HTMLElement;
  /** Where the Evaluation panel goes (under the Diagnostics panel). */
  evalHost: HTMLElement;
  /** Where the Layers panel goes (under the Evaluation panel). */
  traceHost: HTMLElement;
  controlsHost: HTMLElement;
  pinned: HTMLElement;
  pinnedGrid: HTMLElement;
  groupBar: HTMLElement;
  grid: HTMLElement;
  empty: HTMLElement;
}

export function createLayout(parent: HTMLElement): Layout {
  const progressBar = el("div", { class: "tbp-progress-bar" });
  const progressText = el("span", { class: "tbp-progress-text", testid: "progress-text" });
  const progress = el("div", { class: "tbp-progress", testid: "progress", hidden: true, role: "progressbar" }, progressBar);
  const reload = el("button", { class: "tbp-button", testid: "reload", title: "Reload runs, tags and charts", text: " Reload" });
  reload.prepend(icon("reload"));
  const status = el("span", { class: "tbp-status", testid: "status" });
  const logdirHost = el("span", { class: "tbp-logdir-host" });
  const top = el("header", { class: "tbp-top" }, el("span", { class: "tbp-title", text: "TB+" }), logdirHost, progressText, status, reload);

  const tagsHost = el("div", { class: "tbp-tags-host" });
  const side = el("aside", { class: "tbp-side" }, el("h3", { text: "Tags" }), tagsHost);

  const runsHost = el("div", { class: "tbp-runs-host" });
  const mainBar = el("div", { class: "tbp-main-bar" });
  const empty = el("div", { class: "tbp-empty", testid: "empty", text: "Select a tag on the left (a group shows its charts page by page)." });
  const pinnedGrid = el("div", { class: "tbp-grid", testid: "pinned-grid" });
  const pinned = el(
    "section",
    { class: "tbp-pinned", testid: "pinned-section", hidden: true },
    el("h3", { class: "tbp-section-title", text: "Pinned" }),
    pinnedGrid,
  );
  const groupBar = el("div", { class: "tbp-group-bar", testid: "group-pager", hidden: true });
  const grid = el("div", { class: "tbp-grid", testid: "chart-grid" });
  const controlsHost = el("div", { class: "tbp-controls-host" });
  const diagHost = el("div", { class: "tbp-eval-host-outer" });
  const evalHost = el("div", { class: "tbp-eval-host-outer" });
  const traceHost = el("div", { class: "tbp-eval-host-outer" });
  const charts = el("div", { class: "tbp-charts" }, diagHost, evalHost, traceHost, controlsHost, mainBar, pinned, groupBar, empty, grid);
  const main = el("main", { class: "tbp-main" }, runsHost, charts);

  const root = el("div", { class: "tbp-root" }, progress, top, el("div", { class: "tbp-body" }, side, main));
  parent.appendChild(root);
  return { root, progress, progressBar, progressText, reload, status, top, logdirHost, tagsHost, runsHost, mainBar, diagHost, evalHost, traceHost, controlsHost, pinned, pinnedGrid, groupBar, grid, empty };
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
  layout.progressText.textContent =
    `indexing ${progress.files_done}/${progress.files_total} files, ${formatBytes(progress.bytes_done)} of ${formatBytes(progress.bytes_total)} (${(frac * 100).toFixed(0)}%)`;
}

