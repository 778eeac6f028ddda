// The one uPlot wrapper: a line chart of several series over a shared numeric x axis.
//
// - All uPlot configuration lives in one options object built by `buildOptions`.
// - Series may have different x values; they are joined on the union of x values. A point that a series
//   does not have becomes `undefined` (uPlot spans it), a non-finite value becomes `null` (uPlot draws a
//   gap) while the legend still shows "NaN" / "Infinity" from the raw values, and small marks on the
//   top edge show where non-finite values are.
// - The legend (data-testid="chart-legend") shows, per series, the exact x and y of the point nearest
//   the cursor; without a cursor it shows each series' last point.
// - Dragging selects an x range and calls `onZoom(min, max)`; double-click calls `onResetZoom()`.
//   The caller decides what to fetch and calls `setData` / `setXRange`.

import uPlot from "uplot";

const SYNC_KEY = "tb_plus";

export interface ChartSeries {
  label: string;
  color: string;
  /** Ascending x values. */
  x: ArrayLike<number>;
  /** Raw y values: NaN and +-Infinity allowed. */
  y: ArrayLike<number>;
}

export interface ChartOptions {
  width: number;
  height: number;
  xLabel: string;
  onZoom?: (min: number, max: number) => void;
  onResetZoom?: () => void;
}

type Joined = { data: uPlot.AlignedData; nonFinite: number[][] };

/** Joins series on the union of their x values. */
export function joinSeries(series: ChartSeries[]): Joined {
  const xs: number[] = [];
  for (const s of series) for (let i = 0; i < s.x.length; i++) xs.push(s.x[i]);
  xs.sort((a, b) => a - b);
  const x: number[] = [];
  for (const v of xs) if (x.length === 0 || x[x.length - 1] !== v) x.push(v);

  const columns: (number | null | undefined)[][] = [];
  const nonFinite: number[][] = [];
  for (const s of series) {
    const col: (number | null | undefined)[] = new Array(x.length);
    const bad: number[] = [];
    let j = 0;
    for (let i = 0; i < s.x.length; i++) {
      const xv = s.x[i];
      while (x[j] < xv) j++;
      const yv = s.y[i];
      if (Number.isFinite(yv)) col[j] = yv;
      else {
        col[j] = null;
        bad.push(xv);
      }
    }
    columns.push(col);
    nonFinite.push(bad);
  }
  return { data: [x, ...columns] as uPlot.AlignedData, nonFinite };
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

function axisSize(self: uPlot, values: string[] | null, axisIdx: number, cycleNum: number): number {
  const axis = self.axes[axisIdx];
  if (cycleNum > 1) return (axis as { _size?: number })._size ?? 50;
  let longest = 0;
  for (const v of values ?? []) longest = Math.max(longest, v.length);
  return Math.max(40, Math.ceil(longest * 6.5) + 18);
}

export class Chart {
  readonly root: HTMLDivElement;
  readonly legend: HTMLDivElement;
  private readonly plot: HTMLDivElement;
  private u: uPlot;
  private series: ChartSeries[] = [];
  private nonFinite: number[][] = [];
  private xRange: [number, number] | null = null;

  constructor(
    parent: HTMLElement,
    private readonly opts: ChartOptions,
  ) {
    this.root = document.createElement("div");
    this.root.className = "tbp-plot";
    this.plot = document.createElement("div");
    this.legend = document.createElement("div");
    this.legend.className = "tbp-legend";
    this.legend.dataset.testid = "chart-legend";
    this.root.append(this.plot, this.legend);
    parent.appendChild(this.root);
    this.u = new uPlot(this.buildOptions([]), [[]], this.plot);
    this.exposeInstance();
    this.plot.addEventListener("dblclick", (e) => {
      if ((e.target as HTMLElement).closest(".u-over")) this.opts.onResetZoom?.();
    });
    this.updateLegend(null);
  }

  private exposeInstance(): void {
    // Tests and debugging read the live instance from the DOM.
    (this.root as unknown as { uplot: uPlot }).uplot = this.u;
  }

  private buildOptions(series: ChartSeries[]): uPlot.Options {
    const onZoom = this.opts.onZoom;
    return {
      width: this.opts.width,
      height: this.opts.height,
      legend: { show: false },
      padding: [12, 12, 0, 0],
      scales: {
        x: {
          time: false,
          range: (_u, dmin, dmax) => {
            if (this.xRange) return this.xRange;
            if (dmin == null || dmax == null) return [0, 1];
            if (dmin === dmax) return [dmin - 1, dmax + 1];
            return [dmin, dmax];
          },
        },
        y: {
          range: (_u, dmin, dmax) => {
            if (dmin == null || dmax == null) return [0, 1];
            if (dmin === dmax) {
              const pad = Math.abs(dmin) * 0.1 || 1;
              return [dmin - pad, dmax + pad];
            }
            return uPlot.rangeNum(dmin, dmax, 0.05, true);
          },
        },
      },
      axes: [
        { label: this.opts.xLabel, labelSize: 18, labelFont: "11px sans-serif", font: "11px sans-serif" },
        { size: axisSize, font: "11px sans-serif" },
      ],
      series: [
        { label: this.opts.xLabel },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.5,
          spanGaps: false,
          points: { show: false },
        })),
      ],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        focus: { prox: 16 },
        points: { size: 7 },
        bind: { dblclick: () => null },
        // Linked cursors: hovering one chart shows the same step in every chart's legend.
        sync: { key: SYNC_KEY, setSeries: false, scales: ["x", null] },
      },
      focus: { alpha: 0.35 },
      hooks: {
        setCursor: [(u) => this.updateLegend(u.cursor.left ?? -1)],
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
        draw: [(u) => this.drawNonFinite(u)],
      },
    };
  }

  /** Replaces all series. `xRange` fixes the x scale (a zoom), null fits the data. */
  setData(series: ChartSeries[], xRange: [number, number] | null): void {
    this.xRange = xRange;
    const sameShape =
      series.length === this.series.length &&
      series.every((s, i) => s.label === this.series[i].label && s.color === this.series[i].color);
    this.series = series;
    const joined = joinSeries(series);
    this.nonFinite = joined.nonFinite;
    if (!sameShape) {
      const { width, height } = this.u;
      this.u.destroy();
      this.u = new uPlot({ ...this.buildOptions(series), width, height }, joined.data, this.plot);
      this.exposeInstance();
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

  destroy(): void {
    this.u.destroy();
    this.root.remove();
  }

  private drawNonFinite(u: uPlot): void {
    const ctx = u.ctx;
    const { top } = u.bbox;
    const xMin = u.scales.x.min ?? -Infinity;
    const xMax = u.scales.x.max ?? Infinity;
    const s = 5 * uPlot.pxRatio;
    ctx.save();
    this.nonFinite.forEach((xs, i) => {
      if (!xs.length || !u.series[i + 1]?.show) return;
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

  /** Legend rows: the point of each series nearest the cursor's x, or the last point without a cursor. */
  private updateLegend(left: number | null): void {
    const hovering = left != null && left >= 0 && this.series.length > 0;
    const cursorX = hovering ? this.u.posToVal(left as number, "x") : null;
    const rows: HTMLElement[] = [];
    const head = document.createElement("div");
    head.className = "tbp-legend-head";
    head.textContent =
      cursorX == null ? (this.series.length ? "last points" : "no data") : `${this.opts.xLabel} ≈ ${formatValue(Math.round(cursorX))}`;
    rows.push(head);
    this.series.forEach((s, si) => {
      const n = s.x.length;
      const row = document.createElement("div");
      row.className = "tbp-legend-row";
      row.dataset.run = s.label;
      if (!this.u.series[si + 1]?.show) row.classList.add("hidden-series");
      const swatch = document.createElement("span");
      swatch.className = "tbp-swatch";
      swatch.style.background = s.color;
      const name = document.createElement("span");
      name.className = "tbp-legend-name";
      name.textContent = s.label;
      name.title = s.label;
      const at = document.createElement("span");
      at.className = "tbp-legend-x";
      const val = document.createElement("span");
      val.className = "tbp-legend-y";
      if (n === 0) {
        at.textContent = "";
        val.textContent = "no points";
      } else {
        const i = cursorX == null ? n - 1 : nearestIndex(s.x, cursorX);
        const xs = formatValue(s.x[i]);
        const ys = formatValue(s.y[i]);
        at.textContent = `${this.opts.xLabel} ${xs}`;
        val.textContent = ys;
        val.title = String(s.y[i]);
        row.dataset.x = xs;
        row.dataset.y = ys;
        if (!Number.isFinite(s.y[i])) val.classList.add("non-finite");
      }
      row.title = "Click to hide or show this run";
      row.addEventListener("click", () => {
        const shown = this.u.series[si + 1]?.show !== false;
        this.u.setSeries(si + 1, { show: !shown });
        this.updateLegend(this.u.cursor.left ?? -1);
      });
      row.append(swatch, name, at, val);
      rows.push(row);
    });
    this.legend.replaceChildren(...rows);
  }
}
