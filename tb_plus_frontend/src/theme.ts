// The tab's colour theme: light or dark. In TensorBoard's tab (a same-origin iframe) it follows
// TensorBoard's dark mode, the class `dark-mode` on the TensorBoard page's body (its settings toggle, or
// the system's preference when set to follow it), watched with a MutationObserver; on the standalone
// page (or when the parent page cannot be read) it follows `prefers-color-scheme`. The palette is CSS
// variables under html.tbp-dark (style.css); chart axes and grids take their colours from `chartColors`
// when drawn, and every chart is redrawn when the theme changes.

export type Theme = "light" | "dark";

let current: Theme = "light";
let started = false;

/** The current theme. */
export function theme(): Theme {
  return current;
}

/** Colours of chart axes (labels, ticks) and grid lines, for the current theme. */
export function chartColors(): { axis: string; grid: string; ticks: string } {
  return current === "dark"
    ? { axis: "#c4c7cc", grid: "rgba(255,255,255,0.10)", ticks: "rgba(255,255,255,0.22)" }
    : { axis: "#000000", grid: "rgba(0,0,0,0.07)", ticks: "rgba(0,0,0,0.07)" };
}

/** The TensorBoard page's body when this page is framed by a page it may read, else null. */
function parentBody(): HTMLElement | null {
  try {
    if (window.parent === window) return null;
    return window.parent.document.body ?? null;
  } catch {
    return null; // another origin: the system's preference
  }
}

function apply(next: Theme): void {
  const root = document.documentElement;
  root.classList.toggle("tbp-dark", next === "dark");
  root.dataset.theme = next;
  if (next === current) return;
  current = next;
  // uPlot reads axis and grid colours when it draws: draw every chart again.
  for (const node of document.querySelectorAll<HTMLElement>(".tbp-plot, .tbp-eval-plot")) {
    (node as unknown as { uplot?: { redraw: (rebuildPaths?: boolean, recalcAxes?: boolean) => void } }).uplot?.redraw(false, false);
  }
}

/** Starts following the theme (once); call before the first chart is drawn. */
export function initTheme(): void {
  if (started) return;
  started = true;
  const body = parentBody();
  const media = typeof window.matchMedia === "function" ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  const update = (): void => {
    let dark: boolean;
    try {
      dark = body ? body.classList.contains("dark-mode") : !!media?.matches;
    } catch {
      dark = !!media?.matches;
    }
    apply(dark ? "dark" : "light");
  };
  update();
  if (body) {
    new MutationObserver(update).observe(body, { attributes: true, attributeFilter: ["class"] });
  } else {
    media?.addEventListener?.("change", update);
  }
}

/** uPlot axis options drawing labels, ticks and grid lines in the theme's colours (read at each draw). */
export function themedAxis(): { stroke: () => string; grid: { stroke: () => string }; ticks: { stroke: () => string } } {
  return {
    stroke: () => chartColors().axis,
    grid: { stroke: () => chartColors().grid },
    ticks: { stroke: () => chartColors().ticks },
  };
}
