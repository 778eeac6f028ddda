// A chart card: one tag, one series per selected run. Owns the fetching for its chart: /series with
// width = the chart's pixel width, xmin/xmax while zoomed; answers to superseded requests are dropped.

import { ApiError, type Api } from "./api";
import { Chart, type ChartSeries } from "./chart";
import { createChartPanel, type ChartPanel } from "./views/chart_panel";

export const CHART_HEIGHT = 220;

export interface ChartCardContext {
  api: Api;
  colorOf: (run: string) => string;
  onClose: (tag: string) => void;
}

export class ChartCard {
  readonly panel: ChartPanel;
  private chart: Chart | null = null;
  private runs: string[] = [];
  private zoom: [number, number] | null = null;
  private generation = 0;
  private fetchedWidth = 0;
  private resizeObserver: ResizeObserver | null = null;
  private resizeTimer = 0;

  constructor(
    readonly tag: string,
    private readonly ctx: ChartCardContext,
  ) {
    this.panel = createChartPanel(tag, {
      onClose: () => ctx.onClose(tag),
      onResetZoom: () => this.resetZoom(),
    });
  }

  /** Creates the chart once the card is in the document (its width is known then). */
  mount(): void {
    if (this.chart) return;
    this.chart = new Chart(this.panel.host, {
      width: this.hostWidth(),
      height: CHART_HEIGHT,
      xLabel: "step",
      onZoom: (min, max) => this.setZoom([min, max]),
      onResetZoom: () => this.resetZoom(),
    });
    this.resizeObserver = new ResizeObserver(() => {
      window.clearTimeout(this.resizeTimer);
      this.resizeTimer = window.setTimeout(() => this.onResize(), 100);
    });
    this.resizeObserver.observe(this.panel.host);
  }

  private hostWidth(): number {
    return Math.max(200, Math.floor(this.panel.host.clientWidth || 400));
  }

  private onResize(): void {
    if (!this.chart) return;
    const width = this.hostWidth();
    this.chart.setSize(width, CHART_HEIGHT);
    // Refetch when the chart became noticeably wider than the data was downsampled for.
    if (width > this.fetchedWidth * 1.2) void this.load();
  }

  /** Shows these runs (in this order); fetches what is not cached. */
  setRuns(runs: string[]): void {
    this.runs = runs.slice();
    this.panel.setExports(
      runs.map((run) => ({
        run,
        csv: this.ctx.api.exportUrl(run, this.tag, "csv"),
        json: this.ctx.api.exportUrl(run, this.tag, "json"),
      })),
    );
    void this.load();
  }

  private setZoom(range: [number, number]): void {
    this.zoom = range;
    this.panel.setZoomed(true);
    this.chart?.setXRange(range);
    void this.load();
  }

  resetZoom(): void {
    if (!this.zoom) return;
    this.zoom = null;
    this.panel.setZoomed(false);
    this.chart?.setXRange(null);
    void this.load();
  }

  /** Fetches every run's series for the current width and zoom; a newer call supersedes this one. */
  async load(): Promise<void> {
    if (!this.chart) return;
    const generation = ++this.generation;
    const runs = this.runs;
    const zoom = this.zoom;
    const width = this.chart.width;
    this.panel.root.dataset.state = "loading";
    const results = await Promise.allSettled(
      runs.map((run) =>
        this.ctx.api.series({
          run,
          tag: this.tag,
          width,
          xmin: zoom ? Math.floor(zoom[0]) : undefined,
          xmax: zoom ? Math.ceil(zoom[1]) : undefined,
        }),
      ),
    );
    if (generation !== this.generation || !this.chart) return; // out of date
    this.fetchedWidth = width;
    const series: ChartSeries[] = [];
    const errors: string[] = [];
    let shown = 0;
    let inRange = 0;
    results.forEach((r, i) => {
      if (r.status === "fulfilled") {
        series.push({ label: runs[i], color: this.ctx.colorOf(runs[i]), x: r.value.step, y: r.value.value });
        shown += r.value.step.length;
        inRange += r.value.inRange;
      } else if (!(r.reason instanceof ApiError && r.reason.status === 404)) {
        errors.push(`${runs[i]}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`);
      }
    });
    this.chart.setData(series, zoom);
    this.panel.root.dataset.state = errors.length ? "error" : "ready";
    this.panel.root.dataset.width = String(width);
    if (errors.length) this.panel.setStatus(errors.join("; "), true);
    else if (!series.length) this.panel.setStatus("no data in the selected runs");
    else this.panel.setStatus(shown < inRange ? `${shown.toLocaleString()} of ${inRange.toLocaleString()} pts` : `${shown.toLocaleString()} pts`);
  }

  destroy(): void {
    this.generation++;
    this.resizeObserver?.disconnect();
    window.clearTimeout(this.resizeTimer);
    this.chart?.destroy();
    this.chart = null;
    this.panel.root.remove();
  }
}
