// The run selector: one checkbox per run with its colour and a live/finished badge.

import { el } from "./dom";
import type { RunInfo } from "../api";

/** A run written to within this many seconds carries the "live" badge. */
export const LIVE_SECONDS = 60;

export interface RunListHandlers {
  onToggle: (run: string, selected: boolean) => void;
  onAll: (selected: boolean) => void;
}

function ago(seconds: number): string {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function renderRunList(
  container: HTMLElement,
  runs: RunInfo[],
  selected: ReadonlySet<string>,
  colorOf: (run: string) => string,
  handlers: RunListHandlers,
): void {
  const now = Date.now() / 1000;
  const rows = runs.map((run) => {
    const box = el("input", { type: "checkbox", testid: `run-${run.name}` });
    box.checked = selected.has(run.name);
    box.addEventListener("change", () => handlers.onToggle(run.name, box.checked));
    const live = now - run.lastWrite <= LIVE_SECONDS;
    const badge = el("span", {
      class: `tbp-badge ${live ? "live" : "finished"}`,
      testid: `run-badge-${run.name}`,
      text: live ? "live" : "finished",
      title: live ? `written within the last ${LIVE_SECONDS} s` : "no write within the last minute",
    });
    const meta = el("span", {
      class: "tbp-run-meta",
      text: `${run.lastStep == null ? "no scalars" : `step ${run.lastStep}`} · ${ago(now - run.lastWrite)}`,
    });
    const swatch = el("span", { class: "tbp-swatch" });
    swatch.style.background = colorOf(run.name);
    return el(
      "label",
      { class: "tbp-run", title: run.name, "data-run": run.name },
      box,
      swatch,
      el("span", { class: "tbp-run-name", text: run.name === "." ? ". (logdir)" : run.name }),
      badge,
      meta,
    );
  });
  const all = el("button", { class: "tbp-link", testid: "runs-all", text: "all" });
  const none = el("button", { class: "tbp-link", testid: "runs-none", text: "none" });
  all.addEventListener("click", () => handlers.onAll(true));
  none.addEventListener("click", () => handlers.onAll(false));
  const head = el("div", { class: "tbp-run-head" }, el("span", { text: `${selected.size}/${runs.length} selected` }), all, none);
  container.replaceChildren(head, ...(runs.length ? rows : [el("div", { class: "tbp-muted", text: "No runs yet." })]));
}
