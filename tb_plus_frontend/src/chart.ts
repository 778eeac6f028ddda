// The one uPlot wrapper: a line chart of several series over a shared numeric x axis.
//
// - All uPlot configuration lives in one options object built by `buildOptions`.
// - A ChartSeries is one legend entry. It becomes one uPlot series, or more: a faint raw curve under its
//   smoothed curve, and lo/hi series with a filled band between them (aggregation charts). Every uPlot
//   series carries `tbpRole` ("line" | "raw" | "lo" | "hi") and `tbpKey` (the legend label) in its options.
// - Series may have different x values; they are joined on the union of x values. A point that a series
//   does not have becomes `undefined` (uPlot spans it), a non-finite value becomes `null` (uPlot draws a
//   gap) while the legend still shows "NaN" / "Infinity" from the raw values, and small marks on the
//   top edge show where non-finite values are.
// - Emphasis: "emph" series are drawn wider and opaque, "dim" ones thin and faint (uPlot's `width` and
//   `alpha` series options). Hovering a chart emphasises the series nearest the cursor.
// - X axis kinds: "step" (integers), "float" (another tag as x: fractional labels), "time" (wall time as
//   dates), "relative" (seconds). Log scales for x and y (values <= 0 are not drawn on a log axis).
// - The legend (data-testid="chart-legend") shows, per series, the exact x and y of the point nearest
//   the cursor; without a cursor it shows each series' last point.
// - Dragging selects an x range and calls `onZoom(min, max)`; double-click calls `onResetZoom()`.
// - Markers (`setMarkers`): vertical lines at an x with an optional shaded band to a second x and a
//   label, drawn as DOM elements over the plot (inside uPlot's `.u-over`, placed with `valToPos` on every
//   redraw), so tests and people can find them; they take no pointer events.

import uPlot from "uplot";
import { themedAxis } from "./theme";
import {
  formatCompact, formatValue, linearSplits, linearTicks, logLabel, logRange, logTicks, niceIncrs, niceStep, quantile,
} from "./format";

export { formatValue } from "./format";

const SYNC_KEY = "tb_plus";

export type Emphasis = "normal" | "emph" | "dim";
export type XKind = "step" | "float" | "time" | "relative";

export interface ChartSeries {
  /** The series' full name (legend rows carry it as data-run, and as their tooltip). */
  label: string;
  /** A shorter name for the legend (e.g. a run name with its shared prefix elided); default: label. */
  short?: string;
  color: string;
  /** Ascending x values. */
  x: ArrayLike<number>;
  /** Raw y values: NaN and +-Infinity allowed. */
  y: ArrayLike<number>;
  /** Smoothed y values aligned with `y`: drawn as the main curve, the raw one faintly under it. */
  smoothed?: ArrayLike<number> | null;
  /** A band around the curve (aggregation): lower and upper values aligned with `y`. */
  band?: { lo: ArrayLike<number>; hi: ArrayLike<number> } | null;
  emphasis?: Emphasis;
  /** Aggregation: the number of series behind each point (aligned with `y`) out of `size`; the legend
   * says "n=2/3" (and the row's data-count "2/3") where fewer than `size` cover the point. */
  count?: ArrayLike<number> | null;
  size?: number;
}

export interface ChartOptions {
  width: number;
  height: number;
  xLabel: string;
  xKind: XKind;
  xLog: boolean;
  yLog: boolean;
  /** Fit the y axis to the bulk of the values (quantiles; a diverging series clipped): points outside are
   * marked at the plot's edge. False: fit every finite value. */
  ignoreOutliers?: boolean;
  onZoom?: (min: number, max: number) => void;
  onResetZoom?: () => void;
}

/** A vertical marker: a line at `x` (chart x units), a band to `xEnd` when given, a label at the top.
 * `data` becomes data-* attributes of the line element (data-testid = `testid`). */
export interface ChartMarker {
  x: number;
  xEnd: number | null;
  label: string;
  color: string;
  testid: string;
  data: Record<string, string>;
}

/** Line width and alpha of a main curve per emphasis (the raw curve under a smoothed one is fainter). */
export const STYLE: Record<Emphasis, { width: number; alpha: number }> = {
  normal: { width: 1.5, alpha: 1 },
  emph: { width: 3, alpha: 1 },
  dim: { width: 1, alpha: 0.2 },
};
const RAW_ALPHA = 0.25;
const HOVER_WIDTH = 1.5; // added to the nearest series' width while hovering
const HOVER_PROX = 30; // px

type Role = "line" | "raw" | "lo" | "hi";
interface Column {
  owner: number; // index into the ChartSeries list
  role: Role;
  y: ArrayLike<number>;
}

type Joined = { data: uPlot.AlignedData; nonFinite: number[][] };

function columnsOf(series: ChartSeries[]): Column[] {
  const cols: Column[] = [];
  series.forEach((s, i) => {
    if (s.band) {
      cols.push({ owner: i, role: "lo", y: s.band.lo }, { owner: i, role: "hi", y: s.band.hi });
    }
    if (s.smoothed) {
      cols.push({ owner: i, role: "raw", y: s.y }, { owner: i, role: "line", y: s.smoothed });
    } else {
      cols.push({ owner: i, role: "line", y: s.y });
    }
  });
  return cols;
}

function sameX(series: ChartSeries[]): boolean {
  const x0 = series[0].x;
  for (const s of series) {
    if (s.x === x0) continue;
    if (s.x.length !== x0.length) return false;
    for (let i = 0; i < x0.length; i++) if (s.x[i] !== x0[i]) return false;
  }
  return true;
}

/** Joins series on the union of their x values; on log axes, points <= 0 are left out (x) or gaps (y). */
export function joinSeries(series: ChartSeries[], xLog = false, yLog = false): Joined {
  let x: number[];
  if (series.length && sameX(series)) {
    x = Array.from(series[0].x);
  } else {
    const xs: number[] = [];
    for (const s of series) for (let i = 0; i < s.x.length; i++) xs.push(s.x[i]);
    xs.sort((a, b) => a - b);
    x = [];
    for (const v of xs) if (x.length === 0 || x[x.length - 1] !== v) x.push(v);
  }
  let x0 = 0;
  if (xLog) while (x0 < x.length && !(x[x0] > 0)) x0++;
  const xd = x0 ? x.slice(x0) : x;

  const columns: (number | null | undefined)[][] = [];
  const nonFinite: number[][] = series.map(() => []);
  for (const c of columnsOf(series)) {
    const s = series[c.owner];
    const col: (number | null | undefined)[] = new Array(xd.length);
    let j = 0;
    for (let i = 0; i < s.x.length; i++) {
      const xv = s.x[i];
      if (xLog && !(xv > 0)) continue;
      while (xd[j] < xv) j++;
      const yv = c.y[i];
      if (Number.isFinite(yv) && !(yLog && yv <= 0)) col[j] = yv;
      else {
        col[j] = null;
        if (c.role === "raw" || (c.role === "line" && !s.smoothed)) {
          if (!Number.isFinite(yv)) nonFinite[c.owner].push(xv);
        }
      }
    }
    columns.push(col);
  }
  return { data: [xd, ...columns] as uPlot.AlignedData, nonFinite };
}

/** Index of the element of ascending `xs` nearest to `x` (-1 when empty). */
export function nearestIndex(xs: ArrayLike<number>, x: number): number {
  const n = xs.length;
  if (n === 0) return -1;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) return lo - 1;
  return lo;
}

/** Tick labels of a numeric axis (kept for callers of the old helper): see format.ts's `linearTicks`. */
export function numericTicks(splits: number[], incr: number, log: boolean): string[] {
  if (log) return splits.map((v) => logLabel(v));
  return linearTicks(splits, incr, false).labels;
}

/** Quantiles that bound one series' robust range (the rest are spikes). */
const Q_LO = 0.005;
const Q_HI = 0.995;
/** A series whose own range would stretch the others' span more than this many times is clipped. */
const SPREAD_LIMIT = 30;

/**
 * The y extent to fit, from columns of values (non-finite, null and, on a log axis, values <= 0 left out).
 * Not robust: the full extent. Robust ("ignore outliers"): each column's 0.5%..99.5% quantiles; then a
 * column whose top (bottom) would stretch the span of the others more than SPREAD_LIMIT times (a
 * diverging run beside healthy ones) is clipped to them, never more than half the columns per side. On a
 * log axis the spans are measured in decades. Null when there is no value.
 */
export function yExtent(cols: ArrayLike<number | null | undefined>[], log: boolean, robust: boolean): [number, number] | null {
  const ranges: [number, number][] = [];
  for (const c of cols) {
    const vals: number[] = [];
    for (let i = 0; i < c.length; i++) {
      const v = c[i];
      if (v != null && Number.isFinite(v) && !(log && v <= 0)) vals.push(log ? Math.log10(v) : v);
    }
    if (!vals.length) continue;
    if (robust) {
      const sorted = Float64Array.from(vals).sort();
      ranges.push([quantile(sorted, Q_LO), quantile(sorted, Q_HI)]);
    } else {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of vals) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      ranges.push([lo, hi]);
    }
  }
  if (!ranges.length) return null;
  let his = ranges.map((r) => r[1]).sort((a, b) => a - b);
  let los = ranges.map((r) => r[0]).sort((a, b) => a - b);
  if (robust && ranges.length >= 2) {
    const maxDrop = Math.floor(ranges.length / 2);
    for (let d = 0; d < maxDrop; d++) {
      const hiRest = his[his.length - 2];
      const span = hiRest - los[0];
      if (!(span > 0) || his[his.length - 1] - los[0] <= SPREAD_LIMIT * span) break;
      his = his.slice(0, -1);
    }
    for (let d = 0; d < maxDrop; d++) {
      const loRest = los[1];
      const span = his[his.length - 1] - loRest;
      if (!(span > 0) || his[his.length - 1] - los[0] <= SPREAD_LIMIT * span) break;
      los = los.slice(1);
    }
  }
  let lo = los[0];
  let hi = his[his.length - 1];
  if (hi < lo) [lo, hi] = [hi, lo];
  return log ? [Math.pow(10, lo), Math.pow(10, hi)] : [lo, hi];
}

/** A linear y range around the extent [min, max]: 5% padding, not below 0 for non-negative data. */
export function linearRange(min: number, max: number): [number, number] {
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    return [min - pad, max + pad];
  }
  const pad = (max - min) * 0.05;
  let lo = min - pad;
  let hi = max + pad;
  if (min >= 0 && lo < 0) lo = 0;
  if (!Number.isFinite(lo)) lo = -Number.MAX_VALUE;
  if (!Number.isFinite(hi)) hi = Number.MAX_VALUE;
  return [lo, hi];
}

/** The x value as shown to people (dates for wall time). */
export function formatX(kind: XKind, v: number): string {
  if (kind === "time") {
    const d = new Date(v * 1000);
    return Number.isNaN(d.getTime()) ? formatValue(v) : d.toLocaleString();
  }
  return formatValue(v);
}

const INCRS = niceIncrs(false);
const INTEGER_INCRS = niceIncrs(true);

const Y_SPACE = 28;

/**
 * The tick increment for [min, max] over `dim` pixels with `space` pixels per tick. Chosen here, not by
 * uPlot: uPlot's own search gives up below 1e-16 (it keeps at most 17 decimals), which left tiny values
 * without labels; its result only serves to say the axis has room.
 */
function ownIncr(min: number, max: number, dim: number, space: number, integer: boolean): number {
  const ticks = Math.max(1, Math.floor(dim / space));
  const incr = niceStep((max - min) / ticks);
  return integer ? Math.max(1, incr) : incr;
}

/** Pixels wanted between x ticks: the longest label of the range's ends, plus a gap. */
function xTickSpace(min: number, max: number): number {
  const guess = linearTicks([min, max], Math.abs(max - min) / 5 || 1);
  let longest = guess.offsetText ? 6 : 0;
  for (const l of guess.labels) longest = Math.max(longest, l.length);
  return Math.max(50, Math.ceil(longest * 7) + 24);
}

function axisSize(self: uPlot, values: string[] | null, axisIdx: number, cycleNum: number): number {
  const axis = self.axes[axisIdx];
  if (cycleNum > 1) return (axis as { _size?: number })._size ?? 50;
  let longest = 0;
  for (const v of values ?? []) longest = Math.max(longest, v.length);
  return Math.max(40, Math.ceil(longest * 6.5) + 18);
}

/** Whether the drawn curve of `s` has exactly one point (finite, and positive on a log y axis). */
function singlePoint(s: ChartSeries, o: ChartOptions): boolean {
  const y = s.smoothed ?? s.y;
  let n = 0;
  for (let i = 0; i < y.length && n < 2; i++) {
    const v = y[i];
    if (Number.isFinite(v) && !(o.yLog && v <= 0) && !(o.xLog && !(s.x[i] > 0))) n++;
  }
  return n === 1;
}

function withAlpha(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return color;
  return color + Math.round(alpha * 255).toString(16).padStart(2, "0");
}

interface LegendRow {
  row: HTMLElement;
  at: HTMLElement;
  val: HTMLElement;
}

type TbpSeries = uPlot.Series & { tbpRole?: Role; tbpKey?: string; tbpOwner?: number; tbpWidth?: number; tbpAlpha?: number };

export class Chart {
  readonly root: HTMLDivElement;
  readonly legend: HTMLDivElement;
  private readonly plot: HTMLDivElement;
  private u: uPlot;
  private series: ChartSeries[] = [];
  private nonFinite: number[][] = [];
  private xRange: [number, number] | null = null;
  private shapeKey = "";
  private legendRows: LegendRow[] = [];
  private legendHead: HTMLElement | null = null;
  private hovered = false;
  private hoverOwner = -1;
  /** Whether the chart is on screen: linked cursors update the legends of visible charts only. */
  private visible = true;
  private legendStale = false;
  private readonly observer: IntersectionObserver | null = null;
  private markers: ChartMarker[] = [];
  private markerEls: { line: HTMLElement; band: HTMLElement | null }[] = [];
  private readonly markerLayer: HTMLDivElement;
  private readonly yOffsetEl: HTMLSpanElement;
  private xOffset: { value: number | null; text: string } = { value: null, text: "" };
  private yOffset: { value: number | null; text: string } = { value: null, text: "" };
  private extentCache: { data: unknown; key: string; ext: [number, number] | null } | null = null;

  constructor(
    parent: HTMLElement,
    private opts: ChartOptions,
  ) {
    this.root = document.createElement("div");
    this.root.className = "tbp-plot";
    this.plot = document.createElement("div");
    this.legend = document.createElement("div");
    this.legend.className = "tbp-legend";
    this.legend.dataset.testid = "chart-legend";
    this.root.append(this.plot, this.legend);
    this.markerLayer = document.createElement("div");
    this.markerLayer.className = "tbp-markers";
    this.yOffsetEl = document.createElement("span");
    this.yOffsetEl.className = "tbp-axis-offset";
    this.yOffsetEl.dataset.testid = "chart-yoffset";
    this.yOffsetEl.title = "added to every y tick label";
    this.yOffsetEl.hidden = true;
    this.root.appendChild(this.yOffsetEl);
    parent.appendChild(this.root);
    this.u = new uPlot(this.buildOptions([]), [[]], this.plot);
    this.exposeInstance();
    this.plot.addEventListener("dblclick", (e) => {
      if ((e.target as HTMLElement).closest(".u-over")) this.opts.onResetZoom?.();
    });
    this.plot.addEventListener("mouseenter", () => (this.hovered = true));
    this.plot.addEventListener("mouseleave", () => {
      this.hovered = false;
      this.setHover(-1);
    });
    this.buildLegend();
    this.updateLegend(null);
    if (typeof IntersectionObserver !== "undefined") {
      this.observer = new IntersectionObserver((entries) => {
        this.visible = entries[entries.length - 1].isIntersecting;
        if (this.visible && this.legendStale) this.updateLegend(this.u.cursor.left ?? -1);
      });
      this.observer.observe(this.root);
    }
  }

  private exposeInstance(): void {
    // Tests and debugging read the live instance from the DOM.
    (this.root as unknown as { uplot: uPlot }).uplot = this.u;
    this.root.dataset.xkind = this.opts.xKind;
    this.root.dataset.xlog = String(this.opts.xLog);
    this.root.dataset.ylog = String(this.opts.yLog);
    this.root.dataset.outliers = this.opts.ignoreOutliers ? "ignored" : "shown";
  }

  /** The y extent of the shown series (within the zoomed x range), robust when outliers are ignored. */
  private yExtentOf(u: uPlot): [number, number] | null {
    const xs = u.data[0] as ArrayLike<number>;
    let i0 = 0;
    let i1 = xs.length;
    if (this.xRange) {
      i0 = nearestIndex(xs, this.xRange[0]);
      i1 = nearestIndex(xs, this.xRange[1]) + 1;
      if (i0 < 0) i0 = 0;
    }
    const shown = u.series.map((s, i) => (i > 0 && s.show !== false ? "1" : "0")).join("");
    const robust = Boolean(this.opts.ignoreOutliers);
    const key = `${shown}|${i0}|${i1}|${robust}|${this.opts.yLog}`;
    if (this.extentCache && this.extentCache.data === u.data && this.extentCache.key === key) return this.extentCache.ext;
    const cols: ArrayLike<number | null | undefined>[] = [];
    u.series.forEach((s, i) => {
      if (i === 0 || s.show === false) return;
      const col = u.data[i] as ArrayLike<number | null | undefined>;
      cols.push(i0 === 0 && i1 >= col.length ? col : Array.prototype.slice.call(col, i0, i1));
    });
    const ext = yExtent(cols, this.opts.yLog, robust);
    this.extentCache = { data: u.data, key, ext };
    return ext;
  }

  /** Tick labels, offsets and the y scale as data attributes (tests read them); the offset note. */
  private exposeAxes(u: uPlot): void {
    const xt = (u.axes[0] as { _values?: string[] })._values;
    if (xt) this.root.dataset.xticks = JSON.stringify(xt);
    const yt = (u.axes[1] as { _values?: string[] })._values;
    this.root.dataset.yticks = JSON.stringify(yt ?? []);
    const setOff = (name: "xoffset" | "yoffset", v: number | null): void => {
      if (v === null) delete this.root.dataset[name];
      else this.root.dataset[name] = String(v);
    };
    setOff("xoffset", this.xOffset.value);
    setOff("yoffset", this.yOffset.value);
    this.root.dataset.ymin = String(u.scales.y.min);
    this.root.dataset.ymax = String(u.scales.y.max);
    const text = this.yOffset.text;
    this.yOffsetEl.hidden = !text;
    if (this.yOffsetEl.textContent !== text) this.yOffsetEl.textContent = text;
  }

  /** Changes axis kind, label or log scales; the chart is rebuilt on the next `setData`. */
  configure(changes: Partial<Pick<ChartOptions, "xLabel" | "xKind" | "xLog" | "yLog" | "ignoreOutliers">>): void {
    const before = JSON.stringify(this.opts, ["xLabel", "xKind", "xLog", "yLog", "ignoreOutliers"]);
    this.opts = { ...this.opts, ...changes };
    if (JSON.stringify(this.opts, ["xLabel", "xKind", "xLog", "yLog", "ignoreOutliers"]) !== before) this.shapeKey = ""; // rebuild
  }

  private uSeries(series: ChartSeries[]): TbpSeries[] {
    const out: TbpSeries[] = [];
    for (const c of columnsOf(series)) {
      const s = series[c.owner];
      const st = STYLE[s.emphasis ?? "normal"];
      let width = st.width;
      let alpha = st.alpha;
      if (c.role === "raw") {
        width = 1;
        alpha = st.alpha * RAW_ALPHA;
      } else if (c.role === "lo" || c.role === "hi") {
        width = 0.5;
        alpha = st.alpha * 0.6;
      }
      out.push({
        label: c.role === "line" ? s.label : `${s.label} (${c.role})`,
        stroke: s.color,
        width,
        alpha,
        spanGaps: false,
        // a series of one point has no line to draw: a dot
        points: c.role === "line" && singlePoint(s, this.opts) ? { show: true, size: 7, width: 1, fill: s.color, stroke: s.color } : { show: false },
        tbpRole: c.role,
        tbpKey: s.label,
        tbpOwner: c.owner,
        tbpWidth: width,
        tbpAlpha: alpha,
      });
    }
    return out;
  }

  private buildOptions(series: ChartSeries[]): uPlot.Options {
    const onZoom = this.opts.onZoom;
    const { xKind, xLog, yLog } = this.opts;
    const uSeries = this.uSeries(series);
    const bands: uPlot.Band[] = [];
    series.forEach((s, i) => {
      if (!s.band) return;
      const lo = uSeries.findIndex((u) => u.tbpOwner === i && u.tbpRole === "lo");
      if (lo >= 0) bands.push({ series: [lo + 2, lo + 1], fill: withAlpha(s.color, 0.18 * STYLE[s.emphasis ?? "normal"].alpha) });
    });
    const xAxis: uPlot.Axis = {
      ...themedAxis(),
      label: () => this.opts.xLabel + (this.xOffset.text ? `  (${this.xOffset.text})` : ""),
      labelSize: 18,
      labelFont: "11px sans-serif",
      font: "11px sans-serif",
    };
    if (xKind !== "time") {
      const incrs = xKind === "step" && !xLog ? INTEGER_INCRS : INCRS;
      xAxis.incrs = incrs;
      xAxis.space = (_u, _ax, min, max) => xTickSpace(min, max);
      xAxis.splits = (u, _ax, min, max) => {
        const dim = u.bbox.width / uPlot.pxRatio || this.opts.width;
        const space = xTickSpace(min, max);
        if (xLog) return logTicks(min, max, Math.floor(dim / space));
        return linearSplits(min, max, ownIncr(min, max, dim, space, xKind === "step"));
      };
      xAxis.filter = (_u, splits) => splits;
      xAxis.values = (_u, splits, _ax, _space, incr) => {
        if (xLog) {
          this.xOffset = { value: null, text: "" };
          return splits.map((v) => logLabel(v));
        }
        const t = linearTicks(splits, splits.length > 1 ? splits[1] - splits[0] : incr);
        this.xOffset = { value: t.offset, text: t.offsetText };
        return t.labels;
      };
    }
    const yAxis: uPlot.Axis = {
      ...themedAxis(),
      size: axisSize,
      font: "11px sans-serif",
      incrs: INCRS,
      space: Y_SPACE,
      splits: (u, _ax, min, max) => {
        const dim = u.bbox.height / uPlot.pxRatio || this.opts.height - 40;
        if (yLog) return logTicks(min, max, Math.floor(dim / 24));
        return linearSplits(min, max, ownIncr(min, max, dim, Y_SPACE, false));
      },
      filter: (_u, splits) => splits,
      values: (_u, splits, _ax, _space, incr) => {
        if (yLog) {
          this.yOffset = { value: null, text: "" };
          return splits.map((v) => logLabel(v));
        }
        const t = linearTicks(splits, splits.length > 1 ? splits[1] - splits[0] : incr);
        this.yOffset = { value: t.offset, text: t.offsetText };
        return t.labels;
      },
    };
    return {
      width: this.opts.width,
      height: this.opts.height,
      legend: { show: false },
      padding: [12, 12, 0, 0],
      scales: {
        x: {
          time: xKind === "time",
          distr: xLog ? 3 : 1,
          log: 10,
          range: (_u, dmin, dmax) => {
            if (this.xRange) return this.xRange;
            if (dmin == null || dmax == null) return xLog ? [1, 10] : [0, 1];
            if (xLog) return dmin === dmax ? [dmin / 2, dmax * 2] : [dmin, dmax];
            if (dmin === dmax) return [dmin - 1, dmax + 1];
            return [dmin, dmax];
          },
        },
        y: {
          distr: yLog ? 3 : 1,
          log: 10,
          range: (u) => {
            const ext = this.yExtentOf(u);
            if (!ext) return yLog ? [1, 10] : [0, 1];
            return yLog ? logRange(ext[0], ext[1]) : linearRange(ext[0], ext[1]);
          },
        },
      },
      axes: [xAxis, yAxis],
      series: [{ label: this.opts.xLabel }, ...uSeries],
      bands,
      cursor: {
        drag: { x: true, y: false, setScale: false },
        points: { show: false },
        bind: { dblclick: () => null },
        // Linked cursors: hovering one chart shows the same x in every chart's legend.
        sync: { key: SYNC_KEY, setSeries: false, scales: ["x", null] },
      },
      hooks: {
        setCursor: [(u) => this.onCursor(u)],
        setSelect: [
          (u) => {
            const { left, width } = u.select;
            if (width < 3) return;
            const min = u.posToVal(left, "x");
            const max = u.posToVal(left + width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            if (onZoom && max > min) onZoom(min, max);
          },
        ],
        setScale: [
          (u, key) => {
            if (key !== "x") return;
            this.root.dataset.xmin = String(u.scales.x.min);
            this.root.dataset.xmax = String(u.scales.x.max);
          },
        ],
        draw: [
          (u) => {
            this.drawNonFinite(u);
            this.drawClipped(u);
            this.placeMarkers(u);
            this.exposeAxes(u);
          },
        ],
      },
    };
  }

  /** Replaces all series. `xRange` fixes the x scale (a zoom), null fits the data. */
  setData(series: ChartSeries[], xRange: [number, number] | null): void {
    this.xRange = xRange;
    const shape = JSON.stringify([
      this.opts.xKind, this.opts.xLabel, this.opts.xLog, this.opts.yLog, Boolean(this.opts.ignoreOutliers),
      series.map((s) => [s.label, s.color, s.emphasis ?? "normal", Boolean(s.smoothed), Boolean(s.band), singlePoint(s, this.opts)]),
    ]);
    const sameShape = shape === this.shapeKey;
    this.shapeKey = shape;
    this.series = series;
    const joined = joinSeries(series, this.opts.xLog, this.opts.yLog);
    this.nonFinite = joined.nonFinite;
    this.hoverOwner = -1;
    if (!sameShape) {
      const { width, height } = this.u;
      this.u.destroy();
      this.u = new uPlot({ ...this.buildOptions(series), width, height }, joined.data, this.plot);
      this.exposeInstance();
      this.buildLegend();
    } else {
      this.u.setData(joined.data, true);
    }
    const points: Record<string, number> = {};
    series.forEach((s) => (points[s.label] = s.x.length));
    this.root.dataset.points = JSON.stringify(points);
    this.root.dataset.series = String(series.length);
    this.updateLegend(this.u.cursor.left ?? -1);
  }

  /** Sets the x scale now (before zoomed data arrives); null fits the data again. */
  setXRange(range: [number, number] | null): void {
    this.xRange = range;
    const x = this.u.data[0] as ArrayLike<number>;
    if (range) this.u.setScale("x", { min: range[0], max: range[1] });
    else if (x.length) this.u.setScale("x", { min: x[0], max: x[x.length - 1] });
  }

  setSize(width: number, height: number): void {
    if (width === this.u.width && height === this.u.height) return;
    this.u.setSize({ width, height });
  }

  get width(): number {
    return this.u.width;
  }

  get instance(): uPlot {
    return this.u;
  }

  /** Replaces the markers (an empty list removes them). */
  setMarkers(markers: ChartMarker[]): void {
    this.markers = markers;
    this.markerEls = markers.map((m) => {
      const line = document.createElement("div");
      line.className = "tbp-marker";
      line.dataset.testid = m.testid;
      for (const [k, v] of Object.entries(m.data)) line.dataset[k] = v;
      line.dataset.x = String(m.x);
      line.style.setProperty("--tbp-marker", m.color);
      const label = document.createElement("span");
      label.className = "tbp-marker-label";
      label.textContent = m.label;
      line.appendChild(label);
      let band: HTMLElement | null = null;
      if (m.xEnd !== null && m.xEnd !== m.x) {
        band = document.createElement("div");
        band.className = "tbp-marker-band";
        band.dataset.testid = `${m.testid}-band`;
        if (m.data.row !== undefined) band.dataset.row = m.data.row;
        band.style.setProperty("--tbp-marker", m.color);
        band.style.background = withAlpha(m.color, 0.12);
      }
      return { line, band };
    });
    this.markerLayer.replaceChildren(...this.markerEls.flatMap((e) => (e.band ? [e.band, e.line] : [e.line])));
    this.root.dataset.markers = String(markers.length);
    this.placeMarkers(this.u);
  }

  /** Puts the marker elements where their x values are on the current scale (hidden when off scale). */
  private placeMarkers(u: uPlot): void {
    if (u !== this.u) return;
    if (this.markerLayer.parentElement !== u.over) u.over.appendChild(this.markerLayer);
    const min = u.scales.x.min;
    const max = u.scales.x.max;
    const width = u.over.clientWidth || u.bbox.width / uPlot.pxRatio;
    const on = (v: number): boolean => min != null && max != null && Number.isFinite(v) && !(this.opts.xLog && v <= 0);
    this.markers.forEach((m, i) => {
      const { line, band } = this.markerEls[i];
      const inRange = on(m.x) && m.x >= (min as number) && m.x <= (max as number);
      line.hidden = !inRange;
      if (inRange) {
        const left = u.valToPos(m.x, "x");
        line.style.left = `${left}px`;
        line.dataset.left = String(left);
      }
      if (band) {
        const a = on(m.x) ? u.valToPos(Math.max(m.x, min as number), "x") : NaN;
        const b = m.xEnd !== null && on(m.xEnd) ? u.valToPos(Math.min(m.xEnd, max as number), "x") : NaN;
        const lo = Math.max(0, Math.min(a, b));
        const hi = Math.min(width, Math.max(a, b));
        band.hidden = !(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo);
        if (!band.hidden) {
          band.style.left = `${lo}px`;
          band.style.width = `${hi - lo}px`;
        }
      }
    });
  }

  destroy(): void {
    this.observer?.disconnect();
    this.u.destroy();
    this.root.remove();
  }

  private onCursor(u: uPlot): void {
    if (!this.visible && !this.hovered) {
      this.legendStale = true;
      return;
    }
    this.updateLegend(u.cursor.left ?? -1);
    if (!this.hovered) return;
    // Emphasise the series whose line is nearest the cursor (in pixels, at the cursor's x).
    const idx = u.cursor.idx;
    const top = u.cursor.top ?? -1;
    let best = -1;
    let bestDist = HOVER_PROX;
    if (idx != null && top >= 0) {
      u.series.forEach((s, i) => {
        const ts = s as TbpSeries;
        if (i === 0 || !s.show || ts.tbpRole !== "line") return;
        const v = u.data[i][idx];
        if (v == null) return;
        const d = Math.abs(u.valToPos(v, "y") - top);
        if (d < bestDist) {
          bestDist = d;
          best = ts.tbpOwner ?? -1;
        }
      });
    }
    this.setHover(best);
  }

  private setHover(owner: number): void {
    if (owner === this.hoverOwner) return;
    this.hoverOwner = owner;
    for (const s of this.u.series as TbpSeries[]) {
      if (s.tbpRole !== "line") continue;
      const on = s.tbpOwner === owner;
      s.width = (s.tbpWidth ?? 1.5) + (on ? HOVER_WIDTH : 0);
      s.alpha = on ? 1 : s.tbpAlpha ?? 1;
    }
    if (owner >= 0) this.root.dataset.hover = this.series[owner]?.label ?? "";
    else delete this.root.dataset.hover;
    this.legendRows.forEach((r, i) => r.row.classList.toggle("hovered", i === owner));
    this.u.redraw(false);
  }

  private drawNonFinite(u: uPlot): void {
    const ctx = u.ctx;
    const { top } = u.bbox;
    const xMin = u.scales.x.min ?? -Infinity;
    const xMax = u.scales.x.max ?? Infinity;
    const s = 5 * uPlot.pxRatio;
    ctx.save();
    this.nonFinite.forEach((xs, i) => {
      if (!xs.length || !this.ownerShown(i)) return;
      ctx.fillStyle = this.series[i].color;
      for (const xv of xs) {
        if (xv < xMin || xv > xMax) continue;
        const px = u.valToPos(xv, "x", true);
        ctx.beginPath();
        ctx.moveTo(px - s, top);
        ctx.lineTo(px + s, top);
        ctx.lineTo(px, top + s * 1.6);
        ctx.closePath();
        ctx.fill();
      }
    });
    ctx.restore();
  }

  /** Marks points outside the y range (outliers ignored in the scaling) at the top or bottom edge: small
   * open triangles pointing out of the plot, one per pixel column. Their count is data-clipped. */
  private drawClipped(u: uPlot): void {
    const yMin = u.scales.y.min;
    const yMax = u.scales.y.max;
    const xMin = u.scales.x.min ?? -Infinity;
    const xMax = u.scales.x.max ?? Infinity;
    let count = 0;
    if (yMin == null || yMax == null) {
      this.root.dataset.clipped = "0";
      return;
    }
    const xs = u.data[0] as ArrayLike<number>;
    const { top, height } = u.bbox;
    const bottom = top + height;
    const s = 3.5 * uPlot.pxRatio;
    const ctx = u.ctx;
    ctx.save();
    ctx.lineWidth = 1.25 * uPlot.pxRatio;
    (u.series as TbpSeries[]).forEach((ser, i) => {
      if (i === 0 || ser.show === false || ser.tbpRole !== "line") return;
      const col = u.data[i] as ArrayLike<number | null | undefined>;
      ctx.strokeStyle = (this.series[ser.tbpOwner ?? 0]?.color) ?? "#000";
      let lastHi = -1;
      let lastLo = -1;
      for (let j = 0; j < col.length; j++) {
        const v = col[j];
        if (v == null) continue;
        const above = v > yMax;
        const below = v < yMin;
        if (!above && !below) continue;
        const xv = xs[j];
        if (xv < xMin || xv > xMax) continue;
        count++;
        const px = Math.round(u.valToPos(xv, "x", true));
        if (above) {
          if (px - lastHi < s * 1.5 && lastHi >= 0) continue;
          lastHi = px;
          ctx.beginPath();
          ctx.moveTo(px - s, top + s * 1.6);
          ctx.lineTo(px, top + 1);
          ctx.lineTo(px + s, top + s * 1.6);
          ctx.stroke();
        } else {
          if (px - lastLo < s * 1.5 && lastLo >= 0) continue;
          lastLo = px;
          ctx.beginPath();
          ctx.moveTo(px - s, bottom - s * 1.6);
          ctx.lineTo(px, bottom - 1);
          ctx.lineTo(px + s, bottom - s * 1.6);
          ctx.stroke();
        }
      }
    });
    ctx.restore();
    this.root.dataset.clipped = String(count);
  }

  private ownerShown(owner: number): boolean {
    return (this.u.series as TbpSeries[]).some((s, i) => i > 0 && s.tbpOwner === owner && s.show !== false);
  }

  private toggleOwner(owner: number): void {
    const show = !this.ownerShown(owner);
    (this.u.series as TbpSeries[]).forEach((s, i) => {
      if (i > 0 && s.tbpOwner === owner) this.u.setSeries(i, { show });
    });
    this.legendRows[owner]?.row.classList.toggle("hidden-series", !show);
  }

  /** Builds one legend row per ChartSeries; `updateLegend` fills in the values. */
  private buildLegend(): void {
    this.legendHead = document.createElement("div");
    this.legendHead.className = "tbp-legend-head";
    this.legendRows = this.series.map((s, si) => {
      const row = document.createElement("div");
      row.className = "tbp-legend-row";
      row.dataset.run = s.label;
      row.dataset.emphasis = s.emphasis ?? "normal";
      const swatch = document.createElement("span");
      swatch.className = "tbp-swatch";
      swatch.style.background = s.color;
      const name = document.createElement("span");
      name.className = "tbp-legend-name";
      name.textContent = s.short ?? s.label;
      name.title = s.label;
      const at = document.createElement("span");
      at.className = "tbp-legend-x";
      const val = document.createElement("span");
      val.className = "tbp-legend-y";
      row.title = "Click to hide or show this series";
      row.addEventListener("click", () => this.toggleOwner(si));
      row.append(swatch, name, at, val);
      if (!this.ownerShown(si) && this.u.series.length > 1) row.classList.add("hidden-series");
      return { row, at, val };
    });
    this.legend.replaceChildren(this.legendHead, ...this.legendRows.map((r) => r.row));
  }

  /** Legend values: the point of each series nearest the cursor's x, or the last point without a cursor. */
  private updateLegend(left: number | null): void {
    this.legendStale = false;
    if (this.legendRows.length !== this.series.length || !this.legendHead) this.buildLegend();
    const hovering = left != null && left >= 0 && this.series.length > 0;
    const cursorX = hovering ? this.u.posToVal(left as number, "x") : null;
    const { xKind, xLabel } = this.opts;
    let head: string;
    if (cursorX == null) head = this.series.length ? "last points" : "no data";
    else if (xKind === "step") head = `${xLabel} ≈ ${formatValue(Math.round(cursorX))}`;
    else if (xKind === "time") head = `${xLabel} ≈ ${formatX(xKind, cursorX)}`;
    else head = `${xLabel} ≈ ${formatValue(Number(cursorX.toPrecision(4)))}`;
    if (this.legendHead!.textContent !== head) this.legendHead!.textContent = head;
    this.series.forEach((s, si) => {
      const r = this.legendRows[si];
      const n = s.x.length;
      if (n === 0) {
        r.at.textContent = "";
        r.val.textContent = "no points";
        return;
      }
      const i = cursorX == null ? n - 1 : nearestIndex(s.x, cursorX);
      const xs = formatValue(s.x[i]);
      if (r.row.dataset.x === xs && r.row.dataset.i === String(i)) return;
      const ys = formatValue(s.y[i]);
      const yc = formatCompact(s.y[i]);
      r.at.textContent = `${xLabel} ${xKind === "time" ? formatX(xKind, s.x[i]) : formatCompact(s.x[i], 10)}`;
      let text = yc;
      if (s.smoothed) text = `${formatCompact(s.smoothed[i], 5)} (raw ${yc})`;
      if (s.band) text = `${yc} [${formatCompact(s.band.lo[i], 5)}, ${formatCompact(s.band.hi[i], 5)}]`;
      if (s.count && s.size !== undefined && i < s.count.length) {
        const c = s.count[i];
        if (c < s.size) text += ` n=${c}/${s.size}`;
        r.row.dataset.count = `${c}/${s.size}`;
      }
      r.val.textContent = text;
      // the exact values on hover
      let title = ys;
      if (s.smoothed) title = `smoothed ${formatValue(s.smoothed[i])}, raw ${ys}`;
      if (s.band) title = `${ys} [${formatValue(s.band.lo[i])}, ${formatValue(s.band.hi[i])}]`;
      r.val.title = title;
      r.row.dataset.x = xs;
      r.row.dataset.y = ys;
      r.row.dataset.i = String(i);
      r.val.classList.toggle("non-finite", !Number.isFinite(s.y[i]));
    });
  }
}
