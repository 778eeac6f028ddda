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

/**
 * Formats a number exactly but compactly: non-finite values by name, integers in full, float32 values
 * with the fewest digits that read back as the same float32, other values with JS's shortest round trip.
 */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  if (Number.isInteger(v) && Math.abs(v) < 1e21) return String(v);
  const f = Math.fround(v);
  if (f === v) {
    for (let p = 1; p <= 9; p++) {
      const s = Number(v.toPrecision(p));
      if (Math.fround(s) === f) return String(s);
    }
  }
  return String(v);
}

/** Decimal places needed to write `n` (0.25 -> 2, 2.5 -> 1, 10 -> 0). */
function decimalsOf(n: number): number {
  const s = String(Number(Math.abs(n).toPrecision(10)));
  const e = /e-(\d+)$/.exec(s);
  if (e) {
    const mant = s.split("e")[0];
    return Number(e[1]) + (mant.includes(".") ? mant.split(".")[1].length : 0);
  }
  return s.includes(".") ? s.split(".")[1].length : 0;
}

/** Tick labels of a numeric axis: as many decimals as the tick spacing needs (epoch 1.5, lr 0.001). */
export function numericTicks(splits: number[], incr: number, log: boolean): string[] {
  if (log) return splits.map((v) => (v == null ? "" : String(Number(v.toPrecision(6)))));
  const dec = Math.min(12, decimalsOf(incr));
  return splits.map((v) => {
    if (v == null) return "";
    const s = v.toFixed(dec);
    return s === `-${(0).toFixed(dec)}` ? s.slice(1) : s;
  });
}

/** The x value as shown to people (dates for wall time). */
export function formatX(kind: XKind, v: number): string {
  if (kind === "time") {
    const d = new Date(v * 1000);
    return Number.isNaN(d.getTime()) ? formatValue(v) : d.toLocaleString();
  }
  return formatValue(v);
}

function axisSize(self: uPlot, values: string[] | null, axisIdx: number, cycleNum: number): number {
  const axis = self.axes[axisIdx];
  if (cycleNum > 1) return (axis as { _size?: number })._size ?? 50;
  let longest = 0;
  for (const v of values ?? []) longest = Math.max(longest, v.length);
  return Math.max(40, Math.ceil(longest * 6.5) + 18);
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
  }

  /** Changes axis kind, label or log scales; the chart is rebuilt on the next `setData`. */
  configure(changes: Partial<Pick<ChartOptions, "xLabel" | "xKind" | "xLog" | "yLog">>): void {
    this.opts = { ...this.opts, ...changes };
    this.shapeKey = ""; // force a rebuild
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
        points: { show: false },
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
    const xAxis: uPlot.Axis = { label: this.opts.xLabel, labelSize: 18, labelFont: "11px sans-serif", font: "11px sans-serif" };
    if (xKind !== "time") {
      xAxis.values = (_u, splits, _ax, _space, incr) => numericTicks(splits, incr, xLog);
    }
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
          range: (_u, dmin, dmax) => {
            if (dmin == null || dmax == null) return yLog ? [1, 10] : [0, 1];
            if (yLog) return uPlot.rangeLog(dmin, dmax, 10, true) as uPlot.Range.MinMax;
            if (dmin === dmax) {
              const pad = Math.abs(dmin) * 0.1 || 1;
              return [dmin - pad, dmax + pad];
            }
            return uPlot.rangeNum(dmin, dmax, 0.05, true);
          },
        },
      },
      axes: [xAxis, {
        size: axisSize,
        font: "11px sans-serif",
        // log y: uPlot's own labels round ticks below 1e-3 to "0"; name each decade exactly
        ...(yLog ? { values: (_u: uPlot, splits: number[], _ax: number, _space: number, incr: number) =>
          numericTicks(splits, incr, true) } : {}),
      }],
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
            this.placeMarkers(u);
            const ticks = (u.axes[0] as { _values?: string[] })._values;
            if (ticks) this.root.dataset.xticks = JSON.stringify(ticks);
          },
        ],
      },
    };
  }

  /** Replaces all series. `xRange` fixes the x scale (a zoom), null fits the data. */
  setData(series: ChartSeries[], xRange: [number, number] | null): void {
    this.xRange = xRange;
    const shape = JSON.stringify([
      this.opts.xKind, this.opts.xLabel, this.opts.xLog, this.opts.yLog,
      series.map((s) => [s.label, s.color, s.emphasis ?? "normal", Boolean(s.smoothed), Boolean(s.band)]),
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
      r.at.textContent = `${xLabel} ${xKind === "time" ? formatX(xKind, s.x[i]) : xs}`;
      let text = ys;
      if (s.smoothed) text = `${formatValue(Number(s.smoothed[i].toPrecision(5)))} (raw ${ys})`;
      if (s.band) text = `${ys} [${formatValue(Number(s.band.lo[i].toPrecision(5)))}, ${formatValue(Number(s.band.hi[i].toPrecision(5)))}]`;
      if (s.count && s.size !== undefined && i < s.count.length) {
        const c = s.count[i];
        if (c < s.size) text += ` n=${c}/${s.size}`;
        r.row.dataset.count = `${c}/${s.size}`;
      }
      r.val.textContent = text;
      r.val.title = String(s.y[i]);
      r.row.dataset.x = xs;
      r.row.dataset.y = ys;
      r.row.dataset.i = String(i);
      r.val.classList.toggle("non-finite", !Number.isFinite(s.y[i]));
    });
  }
}
