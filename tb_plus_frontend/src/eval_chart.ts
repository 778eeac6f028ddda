// A small uPlot wrapper for the Evaluation panel's curves (ROC, PR, score distributions, reliability, AUC
// over steps). Unlike chart.ts (time series joined on a shared, strictly increasing x), a curve is one x
// column that may repeat values (a ROC curve climbs vertically at a fixed false-positive rate): uPlot draws
// the points in order, so x only has to be non-decreasing. The chart is rebuilt on each `setData` (a few
// hundred points, five charts): no shape bookkeeping.
//
// Extras drawn on the canvas: the diagonal y = x (chance for ROC, perfect calibration for reliability) and
// a vertical marker (the chosen step on the AUC-over-steps chart). The live uPlot instance hangs off the
// root element (`el.uplot`) for tests, like chart.ts's.

import uPlot from "uplot";
import { themedAxis } from "./theme";
import { linearTicks, logLabel } from "./format";

/** Tick labels from the shared formatter (no offset note here: labels carry every digit they need). */
function tickLabels(splits: number[], incr: number, log: boolean): string[] {
  return log ? splits.map((v) => logLabel(v)) : linearTicks(splits, incr, false).labels;
}

export interface CurveSeries {
  label: string;
  color: string;
  /** y values aligned with the chart's x; null (or a non-finite number) is a gap. */
  y: ArrayLike<number | null>;
  width?: number;
  dash?: number[];
  /** Fill under the curve (a CSS colour with alpha). */
  fill?: string;
  /** Draw as steps: the value holds from its x to the next x (histogram bins over their edges). */
  stepped?: boolean;
  /** Show point markers (few points: reliability bins, evaluations over steps). */
  points?: boolean;
}

export interface CurveSpec {
  /** Non-decreasing x values. */
  x: ArrayLike<number>;
  series: CurveSeries[];
  xLabel: string;
  yLabel: string;
  /** Fixed ranges; absent: fitted to the data. */
  xRange?: [number, number];
  yRange?: [number, number];
  yLog?: boolean;
  /** Draw the diagonal y = x (dashed grey). */
  diagonal?: boolean;
  /** A band filled between two series (indices into `series`: lower, upper). */
  band?: { lo: number; hi: number; fill: string };
  /** x of a vertical marker line, or null. */
  marker?: number | null;
  /** x step ticks are integers (steps). */
  integerX?: boolean;
}

const DIAGONAL_COLOR = "#9e9e9e";
const MARKER_COLOR = "#c62828";

function columnOf(y: ArrayLike<number | null>, n: number, log: boolean): (number | null)[] {
  const out: (number | null)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const v = i < y.length ? y[i] : null;
    out[i] = v !== null && Number.isFinite(v) && !(log && v <= 0) ? v : null;
  }
  return out;
}

export class CurveChart {
  readonly root: HTMLDivElement;
  private u: uPlot | null = null;
  private spec: CurveSpec | null = null;
  private width: number;

  constructor(
    parent: HTMLElement,
    private readonly height: number,
    private readonly onClickX?: (x: number) => void,
  ) {
    this.root = document.createElement("div");
    this.root.className = "tbp-eval-plot";
    parent.appendChild(this.root);
    this.width = Math.max(200, Math.floor(parent.clientWidth || 320));
    this.root.addEventListener("click", (e) => {
      const u = this.u;
      if (!u || !this.onClickX || !(e.target as HTMLElement).closest(".u-over")) return;
      const left = u.cursor.left;
      if (left == null || left < 0) return;
      this.onClickX(u.posToVal(left, "x"));
    });
  }

  get instance(): uPlot | null {
    return this.u;
  }

  setData(spec: CurveSpec): void {
    this.spec = spec;
    this.build();
  }

  setWidth(width: number): void {
    const w = Math.max(200, Math.floor(width));
    if (w === this.width) return;
    this.width = w;
    this.u?.setSize({ width: w, height: this.height });
  }

  destroy(): void {
    this.u?.destroy();
    this.u = null;
    this.root.remove();
  }

  private build(): void {
    const spec = this.spec;
    if (!spec) return;
    const n = spec.x.length;
    const log = Boolean(spec.yLog);
    const data: uPlot.AlignedData = [Array.from(spec.x), ...spec.series.map((s) => columnOf(s.y, n, log))] as uPlot.AlignedData;
    const series: uPlot.Series[] = [
      { label: spec.xLabel },
      ...spec.series.map(
        (s): uPlot.Series => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 1.5,
          dash: s.dash,
          fill: s.fill,
          spanGaps: false,
          paths: s.stepped ? uPlot.paths.stepped!({ align: 1 }) : undefined,
          points: s.points ? { show: true, size: 6, fill: s.color } : { show: false },
        }),
      ),
    ];
    const bands: uPlot.Band[] = spec.band ? [{ series: [spec.band.hi + 1, spec.band.lo + 1], fill: spec.band.fill }] : [];
    const xAxis: uPlot.Axis = {
      ...themedAxis(),
      label: spec.xLabel,
      labelSize: 16,
      labelFont: "11px sans-serif",
      font: "11px sans-serif",
      size: 30,
      values: (_u, splits, _ax, _space, incr) => tickLabels(splits, spec.integerX ? Math.max(1, incr) : incr, false),
    };
    if (spec.integerX) xAxis.incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8, 1e9];
    const yAxis: uPlot.Axis = {
      ...themedAxis(),
      label: spec.yLabel,
      labelSize: 16,
      labelFont: "11px sans-serif",
      font: "11px sans-serif",
      size: 46,
      values: (_u, splits, _ax, _space, incr) => tickLabels(splits, incr, log),
    };
    const opts: uPlot.Options = {
      width: this.width,
      height: this.height,
      padding: [10, 10, 0, 0],
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false, setScale: false }, points: { show: false } },
      scales: {
        x: {
          time: false,
          range: (_u, dmin, dmax) => {
            if (spec.xRange) return spec.xRange;
            if (dmin == null || dmax == null) return [0, 1];
            if (dmin === dmax) return [dmin - 1, dmax + 1];
            return [dmin, dmax];
          },
        },
        y: {
          distr: log ? 3 : 1,
          log: 10,
          range: (_u, dmin, dmax) => {
            if (spec.yRange && !log) return spec.yRange;
            if (dmin == null || dmax == null) return log ? [1, 10] : [0, 1];
            if (log) return uPlot.rangeLog(dmin, dmax, 10, true) as uPlot.Range.MinMax;
            if (dmin === dmax) {
              const pad = Math.abs(dmin) * 0.1 || 1;
              return [dmin - pad, dmax + pad];
            }
            return uPlot.rangeNum(dmin, dmax, 0.05, true);
          },
        },
      },
      axes: [xAxis, yAxis],
      series,
      bands,
      hooks: { draw: [(u) => this.drawExtras(u)] },
    };
    this.u?.destroy();
    this.root.replaceChildren();
    this.u = new uPlot(opts, data, this.root);
    (this.root as unknown as { uplot: uPlot }).uplot = this.u;
  }

  private drawExtras(u: uPlot): void {
    const spec = this.spec;
    if (!spec) return;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    ctx.lineWidth = uPlot.pxRatio;
    if (spec.diagonal) {
      const lo = Math.max(u.scales.x.min ?? 0, u.scales.y.min ?? 0);
      const hi = Math.min(u.scales.x.max ?? 1, u.scales.y.max ?? 1);
      if (hi > lo) {
        ctx.strokeStyle = DIAGONAL_COLOR;
        ctx.setLineDash([5 * uPlot.pxRatio, 4 * uPlot.pxRatio]);
        ctx.beginPath();
        ctx.moveTo(u.valToPos(lo, "x", true), u.valToPos(lo, "y", true));
        ctx.lineTo(u.valToPos(hi, "x", true), u.valToPos(hi, "y", true));
        ctx.stroke();
      }
    }
    if (spec.marker != null && Number.isFinite(spec.marker)) {
      const px = u.valToPos(spec.marker, "x", true);
      ctx.strokeStyle = MARKER_COLOR;
      ctx.setLineDash([3 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
      ctx.beginPath();
      ctx.moveTo(px, top);
      ctx.lineTo(px, top + height);
      ctx.stroke();
    }
    ctx.restore();
  }
}
