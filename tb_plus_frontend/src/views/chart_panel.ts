// One chart card: title, status, zoom reset and export links around a chart host element.

import { el } from "./dom";
import { icon } from "./icons";

export interface ChartPanel {
  root: HTMLElement;
  host: HTMLElement;
  setStatus: (text: string, isError?: boolean) => void;
  setZoomed: (zoomed: boolean) => void;
  /** Says which of the `total` runs asked for have no such series (none: nothing shown). */
  setMissing: (runs: string[], total: number) => void;
  setExports: (links: { run: string; csv: string; json: string }[]) => void;
  /** Per-chart controls (x axis, log scales, pin) go here. */
  tools: HTMLElement;
  /** Shows the card enlarged (the chart area's full width) or not. */
  setEnlarged: (enlarged: boolean) => void;
}

export interface ChartPanelHandlers {
  onClose: () => void;
  onResetZoom: () => void;
  /** The enlarge / restore button (absent: no button). */
  onEnlarge?: () => void;
}

/** A card titled `title`; its data-testid is `chart-${id}` (a tag chart's id is its tag). */
export function createChartPanel(title: string, id: string, handlers: ChartPanelHandlers): ChartPanel {
  const status = el("span", { class: "tbp-chart-status", testid: "chart-status" });
  const missing = el("span", { class: "tbp-chart-missing", testid: "chart-missing", hidden: true });
  const reset = el("button", { class: "tbp-link", testid: "chart-reset", text: "reset zoom", hidden: true });
  reset.addEventListener("click", () => handlers.onResetZoom());
  const close = el("button", { class: "tbp-link", testid: "chart-close", title: "Remove this chart", text: "×" });
  close.addEventListener("click", () => handlers.onClose());
  const enlarge = el("button", { class: "tbp-link tbp-enlarge", testid: "chart-enlarge", hidden: !handlers.onEnlarge });
  enlarge.addEventListener("click", () => handlers.onEnlarge?.());
  const tools = el("span", { class: "tbp-chart-tools" });
  const exportMenu = el("div", { class: "tbp-export-menu" });
  const exportBox = el("details", { class: "tbp-export" }, el("summary", { text: "export" }), exportMenu);
  const head = el(
    "div",
    { class: "tbp-chart-head" },
    el("span", { class: "tbp-chart-title", title, text: title }),
    status,
    missing,
    tools,
    reset,
    exportBox,
    enlarge,
    close,
  );
  const host = el("div", { class: "tbp-chart-host" });
  const root = el("section", { class: "tbp-chart", testid: `chart-${id}`, "data-tag": id }, head, host);
  const setEnlarged = (enlarged: boolean): void => {
    root.classList.toggle("tbp-enlarged", enlarged);
    root.dataset.enlarged = String(enlarged);
    enlarge.replaceChildren(icon(enlarged ? "restore" : "enlarge"));
    enlarge.title = enlarged ? "Restore this chart's size" : "Enlarge this chart (the full width, taller)";
    enlarge.setAttribute("aria-pressed", String(enlarged));
  };
  setEnlarged(false);
  return {
    root,
    host,
    tools,
    setEnlarged,
    setStatus(text, isError = false) {
      status.textContent = text;
      status.title = text; // the head may cut a long status short
      status.classList.toggle("error", isError);
    },
    setMissing(runs, total) {
      missing.hidden = runs.length === 0;
      const shown = runs.slice(0, 20).join("\n") + (runs.length > 20 ? `\n… and ${runs.length - 20} more` : "");
      missing.textContent = `${runs.length} of ${total} runs lack it`;
      missing.title = runs.length ? `Selected runs without this series:\n${shown}` : "";
      root.dataset.missing = String(runs.length);
    },
    setZoomed(zoomed) {
      reset.hidden = !zoomed;
      root.dataset.zoomed = String(zoomed);
    },
    setExports(links) {
      exportMenu.replaceChildren(
        ...links.map((l) =>
          el(
            "div",
            { class: "tbp-export-row" },
            el("span", { text: l.run }),
            el("a", { href: l.csv, download: true, text: "csv" }),
            el("a", { href: l.json, download: true, text: "json" }),
          ),
        ),
      );
    },
  };
}
