// The Layers panel's controller: the tracer's per-layer statistics (GET trace) of one run as a heatmap.
//
// - The runs with tracer data are found by asking trace?run=R for the selected runs (or the first run when
//   none is selected, plus the run in the URL); the panel is hidden while none has any.
// - The choice lives in the view state (state.ts): `trace` (open), `trun`, `ttag`, `tstat` (null: the
//   first run, the params family (else the first), and grad_norm for params / dead_fraction for activations / the first stat).
// - Open, it fetches trace?run&tag&stat&width=<heatmap pixel width> and draws it on a canvas: rows are the
//   layers in their order (names on the left), columns the steps. Norms, ratios and maxima are coloured on a
//   log10 scale; 0 is black, negative values (log scale) grey, NaN red and ±Inf magenta.

import { Api, type TraceFamilies, type TraceMatrix } from "./api";
import { type ViewState } from "./state";
import { createTracePanel, setOptions, setTraceOpen, type TracePanel } from "./views/trace_panel";
import { chartColors } from "./theme";

const MAX_CANDIDATES = 20;
const LABEL_FONT = "11px sans-serif";
const AXIS_H = 16;
const MAX_HEIGHT = 420;
const NAN_RGB: [number, number, number] = [255, 0, 0];
const INF_RGB: [number, number, number] = [255, 0, 255];
const ZERO_RGB: [number, number, number] = [0, 0, 0];
const NEG_RGB: [number, number, number] = [85, 85, 85];
/** Viridis, sampled. */
const STOPS: [number, number, number][] = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
];

export interface TraceContext {
  api: Api;
  state: () => ViewState;
  patch: (p: Partial<ViewState>) => void;
  ready: () => boolean;
  /** The runs to ask for tracer data: the selected runs, else the first run. */
  candidates: () => string[];
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Whether a statistic is coloured on a log scale (norms, ratios, maxima). */
export function logScaled(stat: string): boolean {
  return /norm|ratio|^max/.test(stat);
}

function colorAt(t: number): [number, number, number] {
  const x = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const a = STOPS[i];
  const b = STOPS[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

interface Drawn {
  m: TraceMatrix;
  labelW: number;
  rowH: number;
  plotW: number;
}

export class TraceController {
  readonly panel: TracePanel;
  /** Run -> its families, for the runs with tracer data (in candidate order). */
  private families = new Map<string, TraceFamilies>();
  private listSeq = 0;
  private loadSeq = 0;
  private listError: string | null = null;
  private drawn: Drawn | null = null;
  private lastWidth = 0;
  private resizeTimer = 0;

  constructor(private readonly ctx: TraceContext) {
    this.panel = createTracePanel({
      onToggle: () => {
        this.ctx.patch({ trace: !this.s.trace });
        this.render();
        void this.load();
      },
      onRun: (run) => {
        this.ctx.patch({ trun: run, ttag: null, tstat: null });
        this.render();
        void this.load();
      },
      onFamily: (tag) => {
        this.ctx.patch({ trun: this.run(), ttag: tag, tstat: null });
        this.render();
        void this.load();
      },
      onStat: (stat) => {
        this.ctx.patch({ trun: this.run(), ttag: this.family()?.tag ?? null, tstat: stat });
        this.render();
        void this.load();
      },
    });
    const c = this.panel.canvas;
    c.addEventListener("mousemove", (e) => this.hover(e));
    c.addEventListener("mouseleave", () => {
      this.panel.tip.hidden = true;
    });
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => {
        window.clearTimeout(this.resizeTimer);
        this.resizeTimer = window.setTimeout(() => {
          const w = this.panel.plot.clientWidth;
          if (this.s.trace && w > 0 && Math.abs(w - this.lastWidth) > 8) void this.load();
        }, 150);
      }).observe(this.panel.plot);
    }
    this.render();
  }

  private get s(): ViewState {
    return this.ctx.state();
  }

  private run(): string | null {
    const runs = [...this.families.keys()];
    if (!runs.length) return null;
    return this.s.trun !== null && this.families.has(this.s.trun) ? this.s.trun : runs[0];
  }

  private family(): { tag: string; family: string; layers: string[]; stats: string[] } | null {
    const run = this.run();
    const f = run === null ? undefined : this.families.get(run);
    if (!f || !f.tag.length) return null;
    let i = this.s.ttag === null ? -1 : f.tag.indexOf(this.s.ttag);
    if (i < 0) i = Math.max(0, f.family.indexOf("params")); // params first: the gradients are what one looks at

    return { tag: f.tag[i], family: f.family[i], layers: f.layers[i] ?? [], stats: f.stats[i] ?? [] };
  }

  private stat(): string | null {
    const f = this.family();
    if (!f || !f.stats.length) return null;
    if (this.s.tstat !== null && f.stats.includes(this.s.tstat)) return this.s.tstat;
    const preferred = f.family === "params" ? "grad_norm" : f.family === "activations" ? "dead_fraction" : null;
    return preferred !== null && f.stats.includes(preferred) ? preferred : f.stats[0];
  }

  /** Forgets the old directory's runs (the caller clears trun/ttag/tstat in the state). */
  reset(): void {
    this.listSeq++;
    this.loadSeq++;
    this.families.clear();
    this.listError = null;
    this.drawn = null;
    this.render();
  }

  /** Asks the candidate runs for their traced families, then loads the open heatmap. */
  async loadList(): Promise<void> {
    if (!this.ctx.ready()) return;
    const seq = ++this.listSeq;
    const candidates = this.ctx.candidates().slice(0, MAX_CANDIDATES);
    if (this.s.trun !== null && !candidates.includes(this.s.trun)) candidates.unshift(this.s.trun);
    const answers = await Promise.allSettled(candidates.map((run) => this.ctx.api.traceFamilies(run)));
    if (seq !== this.listSeq) return;
    const families = new Map<string, TraceFamilies>();
    let error: string | null = null;
    answers.forEach((a, i) => {
      if (a.status === "fulfilled") {
        if (a.value.tag.length) families.set(candidates[i], a.value);
      } else if (error === null) {
        error = `trace ${candidates[i]}: ${errorText(a.reason)}`;
      }
    });
    this.families = families;
    this.listError = families.size ? null : error;
    this.render();
    void this.load();
  }

  /** Data of some runs changed (null: anything may have). */
  refresh(changed: Set<string> | null): void {
    const run = this.run();
    if (changed === null || run === null || changed.has(run)) void this.loadList();
  }

  private render(): void {
    const p = this.panel;
    p.root.hidden = this.families.size === 0 && this.listError === null;
    const run = this.run();
    const f = this.family();
    const stat = this.stat();
    setTraceOpen(p, this.s.trace, f?.layers.length ?? 0);
    setOptions(p.run, [...this.families.keys()], run);
    const fam = run === null ? undefined : this.families.get(run);
    setOptions(p.family, fam?.tag ?? [], f?.tag ?? null, fam?.tag.map((t, i) => `${fam.family[i]} (${t})`));
    setOptions(p.stat, f?.stats ?? [], stat);
    if (run !== null) p.root.dataset.run = run;
    else delete p.root.dataset.run;
    if (f) p.root.dataset.tag = f.tag;
    else delete p.root.dataset.tag;
    if (stat !== null) p.root.dataset.stat = stat;
    else delete p.root.dataset.stat;
    this.showError(this.listError);
  }

  private showError(text: string | null): void {
    this.panel.error.hidden = text === null;
    this.panel.error.textContent = text ?? "";
  }

  /** The label column's width for these layer names. */
  private labelWidth(layers: string[]): number {
    const g = this.panel.canvas.getContext("2d");
    if (!g) return 120;
    g.font = LABEL_FONT;
    let w = 0;
    for (const name of layers) w = Math.max(w, g.measureText(name).width);
    return Math.ceil(Math.min(240, Math.max(40, w + 10)));
  }

  /** Fetches and draws the chosen statistic. */
  async load(): Promise<void> {
    const run = this.run();
    const f = this.family();
    const stat = this.stat();
    if (!this.s.trace || run === null || !f || stat === null || !this.ctx.ready()) return;
    const seq = ++this.loadSeq;
    const p = this.panel;
    const total = p.plot.clientWidth || 600;
    this.lastWidth = total;
    const labelW = this.labelWidth(f.layers);
    const width = Math.max(1, Math.min(4000, Math.floor(total - labelW - 4)));
    p.root.dataset.state = "loading";
    p.root.dataset.width = String(width);
    let m: TraceMatrix;
    try {
      m = await this.ctx.api.trace(run, f.tag, stat, width);
    } catch (e) {
      if (seq !== this.loadSeq) return;
      p.root.dataset.state = "error";
      this.showError(`${run} · ${f.tag} · ${stat}: ${errorText(e)}`);
      return;
    }
    if (seq !== this.loadSeq) return;
    this.showError(this.listError);
    this.draw(m, this.labelWidth(m.layers), width);
    p.root.dataset.layers = String(m.layers.length);
    p.root.dataset.steps = String(m.steps.length);
    p.root.dataset.state = "ready";
  }

  private draw(m: TraceMatrix, labelW: number, plotW: number): void {
    const p = this.panel;
    p.tip.hidden = true;
    const rows = m.layers.length;
    const cols = m.steps.length;
    const rowH = rows ? Math.max(2, Math.min(22, Math.floor(MAX_HEIGHT / rows))) : 22;
    const cssW = labelW + plotW;
    const cssH = rows * rowH + AXIS_H;
    const dpr = window.devicePixelRatio || 1;
    const c = p.canvas;
    c.style.width = `${cssW}px`;
    c.style.height = `${cssH}px`;
    c.width = Math.round(cssW * dpr);
    c.height = Math.round(cssH * dpr);
    const g = c.getContext("2d");
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, cssW, cssH);

    // The colour range: finite values (positive ones on a log scale).
    const log = logScaled(m.stat);
    let lo = Infinity;
    let hi = -Infinity;
    for (const row of m.values) {
      for (const v of row) {
        if (!Number.isFinite(v) || (log && v <= 0)) continue;
        const x = log ? Math.log10(v) : v;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
    }
    const span = hi > lo ? hi - lo : 1;

    if (rows && cols) {
      const img = new ImageData(cols, rows);
      for (let i = 0; i < rows; i++) {
        const row = m.values[i];
        for (let j = 0; j < cols; j++) {
          const v = row[j];
          let rgb: [number, number, number];
          if (Number.isNaN(v)) rgb = NAN_RGB;
          else if (!Number.isFinite(v)) rgb = INF_RGB;
          else if (v === 0 && (log || lo >= 0)) rgb = ZERO_RGB;
          else if (log && v < 0) rgb = NEG_RGB;
          else rgb = colorAt(((log ? Math.log10(v) : v) - lo) / span);
          const k = 4 * (i * cols + j);
          img.data[k] = rgb[0];
          img.data[k + 1] = rgb[1];
          img.data[k + 2] = rgb[2];
          img.data[k + 3] = 255;
        }
      }
      const off = document.createElement("canvas");
      off.width = cols;
      off.height = rows;
      off.getContext("2d")?.putImageData(img, 0, 0);
      g.imageSmoothingEnabled = false;
      g.drawImage(off, labelW, 0, plotW, rows * rowH);
    }

    // Layer names, right-aligned next to their rows (every n-th when rows are thin).
    g.font = LABEL_FONT;
    g.fillStyle = chartColors().axis;
    g.textAlign = "right";
    g.textBaseline = "middle";
    const every = Math.max(1, Math.ceil(11 / rowH));
    for (let i = 0; i < rows; i += every) g.fillText(m.layers[i], labelW - 4, i * rowH + rowH / 2, labelW - 6);
    // Steps under the first, middle and last columns.
    if (cols) {
      g.textBaseline = "top";
      const y = rows * rowH + 2;
      const marks = cols > 2 ? [0, Math.floor(cols / 2), cols - 1] : [...Array(cols).keys()];
      marks.forEach((j, n) => {
        g.textAlign = n === 0 ? "left" : n === marks.length - 1 ? "right" : "center";
        const x = n === 0 ? labelW : n === marks.length - 1 ? labelW + plotW : labelW + ((j + 0.5) * plotW) / cols;
        g.fillText(String(m.steps[j]), x, y);
      });
    }

    // Legend.
    const lb = p.legendBar;
    const lg = lb.getContext("2d");
    if (lg) {
      for (let x = 0; x < lb.width; x++) {
        const [r, gg, b] = colorAt(x / (lb.width - 1));
        lg.fillStyle = `rgb(${r | 0},${gg | 0},${b | 0})`;
        lg.fillRect(x, 0, 1, lb.height);
      }
    }
    const has = Number.isFinite(lo);
    const minV = has ? (log ? 10 ** lo : lo) : NaN;
    const maxV = has ? (log ? 10 ** hi : hi) : NaN;
    p.legendMin.textContent = has ? fmt(minV) : "—";
    p.legendMax.textContent = has ? fmt(maxV) : "—";
    p.legendMin.dataset.value = String(minV);
    p.legendMax.dataset.value = String(maxV);
    p.legendNote.textContent = `${log ? "log10 scale" : "linear scale"} · ${m.stat} · ${cols} of ${m.totalSteps} steps`;
    p.legend.dataset.scale = log ? "log" : "linear";
    this.drawn = { m, labelW, rowH, plotW };
  }

  private hover(e: MouseEvent): void {
    const d = this.drawn;
    const tip = this.panel.tip;
    if (!d || !d.m.steps.length) return;
    const rect = this.panel.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    const rows = d.m.layers.length;
    const cols = d.m.steps.length;
    const col = Math.floor(((x - d.labelW) / d.plotW) * cols);
    const row = Math.floor(y / d.rowH);
    if (x < d.labelW || col < 0 || col >= cols || row < 0 || row >= rows) {
      tip.hidden = true;
      return;
    }
    const v = d.m.values[row][col];
    const layer = d.m.layers[row];
    const step = d.m.steps[col];
    tip.dataset.layer = layer;
    tip.dataset.step = String(step);
    tip.dataset.row = String(row);
    tip.dataset.col = String(col);
    tip.dataset.value = String(v);
    tip.textContent = `${layer} · step ${step} · ${d.m.stat} = ${String(v)}`;
    tip.hidden = false;
    const plotRect = this.panel.plot.getBoundingClientRect();
    const left = e.clientX - plotRect.left + 12;
    tip.style.left = `${Math.min(left, Math.max(0, plotRect.width - tip.offsetWidth - 4))}px`;
    tip.style.top = `${e.clientY - plotRect.top + 12}px`;
  }
}
