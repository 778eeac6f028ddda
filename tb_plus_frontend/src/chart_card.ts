// A chart card. Kinds:
// - "tag": one tag, one series per selected run (the tag tree's charts);
// - "custom": any (run, tag) series together;
// - "agg": /aggregate groups, each a centre line with a filled band, the group size in the legend;
// - "cmp": /compare, A - B or A / B of two series.
// Owns the fetching for its chart: width = the chart's pixel width, xmin/xmax while zoomed; answers to
// superseded requests are dropped. The x axis and log scales are global unless the card overrides them.
// Annotations (diagnostics findings, `ctx.annotations`) are drawn as chart markers on "tag" and "custom"
// cards: a finding's step is put on the x axis through the (run, tag) series drawn (any x axis works).

import { icon } from "./views/icons";
import { ApiError, type Api, type Smoothing } from "./api";
import { Chart, nearestIndex, type ChartMarker, type ChartSeries, type Emphasis, type XKind } from "./chart";
import type { AggSpec, ChartOpts, CmpSpec, CustomSpec } from "./state";
import { el } from "./views/dom";
import { createChartPanel, type ChartPanel } from "./views/chart_panel";

export const CHART_HEIGHT = 220;
/** An enlarged card's chart height: twice the usual, within the window's height. */
function enlargedHeight(): number {
  return Math.max(CHART_HEIGHT, Math.min(2 * CHART_HEIGHT + 40, Math.round(window.innerHeight * 0.7)));
}

export type CardSpec =
  | { kind: "tag"; tag: string }
  | { kind: "custom"; spec: CustomSpec }
  | { kind: "agg"; spec: AggSpec }
  | { kind: "cmp"; spec: CmpSpec };

export interface GlobalSettings {
  x: string;
  xlog: boolean;
  ylog: boolean;
  /** Ignore outliers in the y scaling. */
  outliers: boolean;
  smooth: Smoothing;
}

/** A step range to mark on the series of (run, tag) (tag null: any series of the run), e.g. a finding. */
export interface Annotation {
  /** Markers with the same key are drawn once per chart. */
  key: string;
  run: string;
  tag: string | null;
  step: number;
  stepEnd: number | null;
  label: string;
  color: string;
  testid: string;
  data: Record<string, string>;
}

export interface ChartCardContext {
  api: Api;
  /** Runs a tag chart asks for (the selected runs; those without the tag answer 404 and are left out). */
  runsFor: (tag: string) => string[];
  selectedRuns: () => string[];
  /** Colour and emphasis of one (run, tag) series. */
  style: (run: string, tag: string) => { color: string; emphasis: Emphasis };
  /** Colour and emphasis of an aggregation group. */
  groupStyle: (groupBy: string, key: string, index: number) => { color: string; emphasis: Emphasis };
  /** A run's name as the legend shows it (shortened); the full name stays the series' label. */
  runLabel?: (run: string) => string;
  settings: () => GlobalSettings;
  /** Tags that may serve as x axes. */
  xTags: () => string[];
  onOpts: (card: ChartCard, opts: ChartOpts) => void;
  onClose: (card: ChartCard) => void;
  onPin: (card: ChartCard) => void;
  isPinned: (card: ChartCard) => boolean;
  /** False while the log directory's first index is being built: nothing is fetched then (the server
   * would hold the request until the index is ready); the app refreshes the cards once it is. */
  ready?: () => boolean;
  /** Annotations for the (run, tag) series a card shows. */
  annotations?: (pairs: [string, string][]) => Annotation[];
}

/** Annotations drawn at most per chart. */
const MAX_MARKERS = 12;

interface DrawnSeries {
  run: string;
  tag: string;
  step: Float64Array;
  xs: Float64Array;
}

/** The chart kind of an x axis spec, and its label. */
export function xAxisInfo(x: string): { kind: XKind; label: string } {
  if (x === "wall_time") return { kind: "time", label: "wall time" };
  if (x === "relative") return { kind: "relative", label: "relative (s)" };
  if (x.startsWith("tag:")) return { kind: "float", label: x.slice(4) };
  return { kind: "step", label: "step" };
}

export function cardId(spec: CardSpec): string {
  if (spec.kind === "tag") return spec.tag;
  return `${spec.kind}-${spec.spec.id}`;
}

function cardTitle(spec: CardSpec): string {
  switch (spec.kind) {
    case "tag":
      return spec.tag;
    case "custom":
      return spec.spec.title || spec.spec.series.map(([r, t]) => `${r}:${t}`).join(", ");
    case "agg":
      return `${spec.spec.stat} of ${spec.spec.tags.join(", ")}${spec.spec.groupBy && spec.spec.groupBy !== "none" ? ` by ${spec.spec.groupBy}` : ""}`;
    case "cmp": {
      const { a, b, op } = spec.spec;
      return `${a[0]}:${a[1]} ${op === "diff" ? "−" : "/"} ${b[0]}:${b[1]}`;
    }
  }
}

export class ChartCard {
  readonly panel: ChartPanel;
  readonly id: string;
  private chart: Chart | null = null;
  private zoom: [number, number] | null = null;
  private generation = 0;
  private fetchedWidth = 0;
  private resizeObserver: ResizeObserver | null = null;
  /** Charts fetch and draw only when on screen (or about to be): a page of 50 charts x 10 runs
   * shows its first screenful without waiting for the rest. */
  private visibilityObserver: IntersectionObserver | null = null;
  private visible = false;
  private loadWanted = false;
  private resizeTimer = 0;
  /** Spans the chart area's width, taller (the card's enlarge button). */
  private enlarged = false;
  private axisKey = "";
  private readonly xSelect: HTMLSelectElement;
  private readonly logSelect: HTMLSelectElement;
  private readonly outlierSelect: HTMLSelectElement;
  private readonly pinButton: HTMLButtonElement | null = null;
  /** The (run, tag) series of the last draw, to place annotations without fetching. */
  private drawn: DrawnSeries[] = [];
  /** Aggregates: where runs of a group stop before its end. */
  private aggMarkers: ChartMarker[] = [];
  opts: ChartOpts = {};

  constructor(
    readonly spec: CardSpec,
    private readonly ctx: ChartCardContext,
  ) {
    this.id = cardId(spec);
    this.panel = createChartPanel(cardTitle(spec), this.id, {
      onClose: () => ctx.onClose(this),
      onResetZoom: () => this.resetZoom(),
      onEnlarge: () => this.setEnlarged(!this.enlarged),
    });
    this.panel.root.dataset.kind = spec.kind;
    this.xSelect = el("select", { class: "tbp-mini", testid: "chart-x", title: "x axis of this chart" });
    this.xSelect.addEventListener("change", () => this.changeOpts({ ...this.opts, x: this.xSelect.value || undefined }));
    this.logSelect = el("select", { class: "tbp-mini", testid: "chart-log", title: "log scales of this chart" });
    for (const [v, t] of [["", "log: global"], ["none", "linear"], ["x", "log x"], ["y", "log y"], ["xy", "log x+y"]]) {
      this.logSelect.append(el("option", { value: v, text: t }));
    }
    this.logSelect.addEventListener("change", () => {
      const v = this.logSelect.value;
      const o: ChartOpts = { x: this.opts.x, outliers: this.opts.outliers };
      if (v) {
        o.xlog = v.includes("x");
        o.ylog = v.includes("y");
      }
      this.changeOpts(o);
    });
    this.outlierSelect = el("select", { class: "tbp-mini", testid: "chart-outliers", title: "y scaling of this chart: robust ignores outliers (clipped, marked at the edge), all fits every value" });
    for (const [v, t] of [["", "y: global"], ["1", "y: robust"], ["0", "y: all"]]) {
      this.outlierSelect.append(el("option", { value: v, text: t }));
    }
    this.outlierSelect.addEventListener("change", () => {
      const v = this.outlierSelect.value;
      this.changeOpts({ ...this.opts, outliers: v === "" ? undefined : v === "1" });
    });
    this.panel.tools.append(this.xSelect, this.logSelect, this.outlierSelect);
    if (spec.kind === "tag") {
      this.pinButton = el("button", { class: "tbp-link tbp-pin", testid: "chart-pin", title: "Pin this indicator to the top" });
      this.pinButton.addEventListener("click", () => ctx.onPin(this));
      this.panel.tools.append(this.pinButton);
    }
  }

  get tag(): string | null {
    return this.spec.kind === "tag" ? this.spec.tag : null;
  }

  private changeOpts(o: ChartOpts): void {
    const clean: ChartOpts = {};
    if (o.x) clean.x = o.x;
    if (o.xlog !== undefined) clean.xlog = o.xlog;
    if (o.ylog !== undefined) clean.ylog = o.ylog;
    if (o.outliers !== undefined) clean.outliers = o.outliers;
    this.opts = clean;
    this.ctx.onOpts(this, clean);
    this.refresh();
  }

  /** Effective axis settings: the card's overrides over the global ones. */
  private axes(): { x: string; xlog: boolean; ylog: boolean; outliers: boolean } {
    const g = this.ctx.settings();
    return {
      x: this.opts.x ?? g.x,
      xlog: this.opts.xlog ?? g.xlog,
      ylog: this.opts.ylog ?? g.ylog,
      outliers: this.opts.outliers ?? g.outliers ?? true,
    };
  }

  /** Refills the per-chart controls (the x choices change with the tags). */
  private renderTools(): void {
    const choices = ["step", "relative", "wall_time", ...this.ctx.xTags().map((t) => `tag:${t}`)];
    if (this.opts.x && !choices.includes(this.opts.x)) choices.push(this.opts.x);
    const key = choices.join("\n");
    if (this.xSelect.dataset.key !== key) {
      this.xSelect.dataset.key = key;
      this.xSelect.replaceChildren(
        el("option", { value: "", text: "x: global" }),
        ...choices.map((c) => el("option", { value: c, text: `x: ${xAxisInfo(c).label}` })),
      );
    }
    this.xSelect.value = this.opts.x ?? "";
    const o = this.opts;
    this.logSelect.value =
      o.xlog === undefined && o.ylog === undefined ? "" : o.xlog && o.ylog ? "xy" : o.xlog ? "x" : o.ylog ? "y" : "none";
    this.outlierSelect.value = o.outliers === undefined ? "" : o.outliers ? "1" : "0";
    this.renderPin();
  }

  private renderPin(): void {
    if (this.pinButton) {
      const pinned = this.ctx.isPinned(this);
      this.pinButton.replaceChildren(pinned ? icon("pin") : "pin");
      this.pinButton.classList.toggle("pinned", pinned);
      this.panel.root.dataset.pinned = String(pinned);
    }
  }

  /** Called once the card is in the document. The uPlot chart is created, and its data fetched,
   * only when the card comes on screen (or near it): a page of many charts draws its first
   * screenful without building and filling the rest. */
  mount(): void {
    if (this.chart || this.visibilityObserver) return;
    this.panel.host.style.minHeight = `${this.chartHeight()}px`;
    if (typeof IntersectionObserver === "undefined") {
      this.visible = true;
      this.createChart();
      return;
    }
    this.visibilityObserver = new IntersectionObserver(
      (entries) => {
        this.visible = entries[entries.length - 1].isIntersecting;
        if (!this.visible) return;
        if (!this.chart) {
          this.createChart();
          this.loadWanted = false;
          this.refresh(); // tools, export links and data, now that the card is on screen
          return;
        }
        if (this.loadWanted) {
          this.loadWanted = false;
          void this.load();
        }
      },
      { rootMargin: "0px" },
    );
    this.visibilityObserver.observe(this.panel.root);
  }

  private createChart(): void {
    const a = this.axes();
    const info = xAxisInfo(a.x);
    this.axisKey = JSON.stringify({ x: a.x, xlog: a.xlog, ylog: a.ylog });
    this.chart = new Chart(this.panel.host, {
      width: this.hostWidth(),
      height: this.chartHeight(),
      xLabel: info.label,
      xKind: info.kind,
      xLog: a.xlog,
      yLog: a.ylog,
      ignoreOutliers: a.outliers,
      onZoom: (min, max) => this.setZoom([min, max]),
      onResetZoom: () => this.resetZoom(),
    });
    this.resizeObserver = new ResizeObserver(() => {
      window.clearTimeout(this.resizeTimer);
      this.resizeTimer = window.setTimeout(() => this.onResize(), 100);
    });
    this.resizeObserver.observe(this.panel.host);
  }

  /** Enlarges the card (the full width of the chart area, taller) or restores it. */
  setEnlarged(enlarged: boolean): void {
    if (enlarged === this.enlarged) return;
    this.enlarged = enlarged;
    this.panel.setEnlarged(enlarged);
    this.panel.host.style.minHeight = `${this.chartHeight()}px`;
    if (this.chart) this.onResize();
    this.panel.root.scrollIntoView({ block: "nearest" });
  }

  private chartHeight(): number {
    return this.enlarged ? enlargedHeight() : CHART_HEIGHT;
  }

  private hostWidth(): number {
    return Math.max(200, Math.floor(this.panel.host.clientWidth || 400));
  }

  private onResize(): void {
    if (!this.chart) return;
    const width = this.hostWidth();
    this.chart.setSize(width, this.chartHeight());
    // Refetch when the chart became noticeably wider than the data was downsampled for.
    if (width > this.fetchedWidth * 1.2) void this.load();
  }

  /** Applies the current settings (axes, runs, smoothing, styles) and fetches what is not cached. */
  refresh(): void {
    if (!this.chart) {
      // Off screen: only the pin state now; the rest when the card comes into view.
      this.renderPin();
      this.loadWanted = true;
      return;
    }
    this.renderTools();
    if (this.spec.kind === "tag") {
      const tag = this.spec.tag;
      this.panel.setExports(
        this.ctx.runsFor(tag).map((run) => ({
          run,
          csv: this.ctx.api.exportUrl(run, tag, "csv"),
          json: this.ctx.api.exportUrl(run, tag, "json"),
        })),
      );
    } else if (this.spec.kind === "custom") {
      this.panel.setExports(
        this.spec.spec.series.map(([run, tag]) => ({
          run: `${run}:${tag}`,
          csv: this.ctx.api.exportUrl(run, tag, "csv"),
          json: this.ctx.api.exportUrl(run, tag, "json"),
        })),
      );
    }
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

  private pairs(): [string, string][] {
    if (this.spec.kind === "tag") {
      const tag = this.spec.tag;
      return this.ctx.runsFor(tag).map((r) => [r, tag]);
    }
    if (this.spec.kind === "custom") return this.spec.spec.series;
    return [];
  }

  /** Fetches the card's data for the current width, zoom and settings; a newer call supersedes this one. */
  async load(): Promise<void> {
    if (!this.chart || !this.visible || (this.ctx.ready && !this.ctx.ready())) {
      this.loadWanted = true; // created and fetched when scrolled into view (and the directory is indexed)
      return;
    }
    const generation = ++this.generation;
    const a = this.axes();
    const key = JSON.stringify({ x: a.x, xlog: a.xlog, ylog: a.ylog });
    this.chart.configure({ ignoreOutliers: a.outliers }); // applied by setData below (a rebuild when it changed)
    if (key !== this.axisKey) {
      // A new x axis or log scale: the zoom range means nothing there.
      this.axisKey = key;
      const info = xAxisInfo(a.x);
      this.chart.configure({ xLabel: info.label, xKind: info.kind, xLog: a.xlog, yLog: a.ylog });
      if (this.zoom) {
        this.zoom = null;
        this.panel.setZoomed(false);
      }
    }
    const zoom = this.zoom;
    const width = this.chart.width;
    const isStep = a.x === "step";
    const xmin = zoom ? (isStep ? Math.floor(zoom[0]) : zoom[0]) : undefined;
    const xmax = zoom ? (isStep ? Math.ceil(zoom[1]) : zoom[1]) : undefined;
    this.panel.root.dataset.state = "loading";
    const series: ChartSeries[] = [];
    const errors: string[] = [];
    let status = "";
    if (this.spec.kind === "tag" || this.spec.kind === "custom") {
      const pairs = this.pairs();
      const smooth = this.ctx.settings().smooth;
      const results = await Promise.allSettled(
        this.ctx.api.seriesMany(pairs.map(([run, tag]) => ({ run, tag, width, xmin, xmax, x: a.x, xlog: a.xlog, smooth }))),
      );
      if (generation !== this.generation || !this.chart) return; // out of date
      let shown = 0;
      let inRange = 0;
      const missing: string[] = [];
      this.drawn = [];
      results.forEach((r, i) => {
        const [run, tag] = pairs[i];
        if (r.status === "fulfilled") {
          this.drawn.push({ run, tag, step: r.value.step, xs: r.value.xs });
          const st = this.ctx.style(run, tag);
          series.push({
            label: this.spec.kind === "tag" ? run : `${run}:${tag}`,
            short: this.ctx.runLabel ? (this.spec.kind === "tag" ? this.ctx.runLabel(run) : `${this.ctx.runLabel(run)}:${tag}`) : undefined,
            color: st.color,
            emphasis: st.emphasis,
            x: r.value.xs,
            y: r.value.value,
            smoothed: smooth.kind !== "none" ? r.value.smoothed : null,
          });
          shown += r.value.xs.length;
          inRange += r.value.inRange;
        } else if (r.reason instanceof ApiError && r.reason.status === 404 && this.spec.kind === "tag" && !/for x=/.test(r.reason.message)) {
          missing.push(run); // a selected run without the tag: named beside the status, not an error
        } else {
          // A tag chart draws every selected run: a run without the tag (404) is left out silently; a run
          // without the x-axis tag is reported.
          errors.push(`${run}${this.spec.kind === "custom" ? `:${tag}` : ""}: ${message(r.reason)}`);
        }
      });
      // Runs without the series are named beside the status, unless none has it (the status says so).
      this.panel.setMissing(series.length ? missing : [], pairs.length);
      if (!errors.length && !series.length) status = this.noDataReason(pairs);
      else status = shown < inRange ? `${shown.toLocaleString()} of ${inRange.toLocaleString()} pts` : `${shown.toLocaleString()} pts`;
    } else if (this.spec.kind === "agg") {
      const spec = this.spec.spec;
      try {
        const r = await this.ctx.api.aggregate({
          runs: this.ctx.selectedRuns(),
          tags: spec.tags,
          groupBy: spec.groupBy,
          stat: spec.stat,
          band: spec.band,
          x: a.x,
          xmin,
          xmax,
          xlog: a.xlog,
          points: Math.min(2000, width),
        });
        if (generation !== this.generation || !this.chart) return;
        const ends: { key: string; size: number; ends: [number, number][] }[] = [];
        this.aggMarkers = [];
        r.groups.forEach((g, i) => {
          // one aggregate per tag (several tags): the key is "<tag> · <key>"; highlight by the key itself
          const sep = g.tag != null ? `${g.tag} · ` : "";
          const st = this.ctx.groupStyle(spec.groupBy, sep && g.key.startsWith(sep) ? g.key.slice(sep.length) : g.key, i);
          series.push({
            label: `${g.key === "" ? "all" : g.key} (n=${g.size})`,
            color: st.color,
            emphasis: st.emphasis,
            x: g.xs,
            y: g.center,
            band: spec.band === "none" ? null : { lo: g.lo, hi: g.hi },
            count: g.count,
            size: g.size,
          });
          const e = runEnds(g.ranges ?? []);
          ends.push({ key: g.key, size: g.size, ends: e });
          // a marker where runs stop: "n=2/3 after" (the runs left past that x)
          let left = g.ranges ? g.ranges.filter((x) => x !== null).length : g.size;
          for (const [x, k] of e) {
            left -= k;
            this.aggMarkers.push({
              x,
              xEnd: null,
              label: `n=${left}/${g.size} after`,
              color: st.color,
              testid: "agg-run-end",
              data: { key: g.key, left: String(left), size: String(g.size) },
            });
          }
        });
        // Where runs stop before the group's end: [x, runs stopping there]; the legend then says n=k/size.
        this.panel.root.dataset.aggEnds = JSON.stringify(ends);
        const stops = ends
          .filter((e) => e.ends.length)
          .map((e) => `${ends.length > 1 ? `${e.key === "" ? "all" : e.key}: ` : ""}${e.ends.map(([x, k]) => `${formatX(a.x, x)}${k > 1 ? ` (${k})` : ""}`).join(", ")}`);
        status = r.groups.length
          ? `${r.groups.length} group${r.groups.length === 1 ? "" : "s"} · ${r.groups.reduce((n, g) => n + g.size, 0)} series` +
            (stops.length ? ` · runs end at ${stops.join("; ")}` : "")
          : this.noAggReason(spec.tags, spec.groupBy);
      } catch (e) {
        if (generation !== this.generation || !this.chart) return;
        errors.push(message(e));
      }
    } else {
      const spec = this.spec.spec;
      try {
        const r = await this.ctx.api.compare({ a: spec.a, b: spec.b, op: spec.op, x: a.x, xmin, xmax, width, xlog: a.xlog });
        if (generation !== this.generation || !this.chart) return;
        const st = this.ctx.style(spec.a[0], spec.a[1]);
        series.push({ label: spec.op === "diff" ? "A − B" : "A / B", color: st.color, x: r.xs, y: r.value });
        status = `${r.xs.length.toLocaleString()} pts`;
      } catch (e) {
        if (generation !== this.generation || !this.chart) return;
        errors.push(message(e));
      }
    }
    this.fetchedWidth = width;
    if (this.spec.kind === "agg" || this.spec.kind === "cmp") this.drawn = [];
    if (this.spec.kind !== "agg" || errors.length) this.aggMarkers = [];
    this.chart.setData(series, zoom);
    this.redrawAnnotations();
    this.panel.root.dataset.state = errors.length ? "error" : "ready";
    this.panel.root.dataset.width = String(width);
    if (errors.length) this.panel.setStatus(errors.join("; "), true);
    else this.panel.setStatus(status);
  }

  /** Why a tag or custom chart shows nothing (no 404 errors were reported). */
  private noDataReason(pairs: [string, string][]): string {
    if (this.spec.kind === "tag") {
      const n = this.ctx.selectedRuns().length;
      if (!n) return "no run selected";
      return n === 1 ? `the selected run has no tag ${this.spec.tag}` : `none of the ${n} selected runs has tag ${this.spec.tag}`;
    }
    return pairs.length ? "no points in the x range" : "no series in this chart";
  }

  /** Why an aggregate has no group (the server answered, with none). */
  private noAggReason(tags: string[], groupBy: string): string {
    const what = tags.join(", ");
    const [kind, ...rest] = (groupBy || "none").split(":");
    const arg = rest.join(":");
    if (kind === "hparam") return `none of the runs with ${what} has the hyperparameter ${arg}`;
    if (kind === "run_regex") return `no run with ${what} matches /${arg}/`;
    if (kind === "tag_level") return `no tag ${what} has a level ${arg}`;
    return `none of the selected runs has tag ${what}`;
  }

  /** Places the context's annotations on the series drawn (no fetch): call when the findings change. */
  redrawAnnotations(): void {
    if (!this.chart) return;
    const wanted = this.ctx.annotations && this.drawn.length ? this.ctx.annotations(this.drawn.map((d) => [d.run, d.tag])) : [];
    const isStep = this.axes().x === "step";
    const markers: ChartMarker[] = this.aggMarkers.slice(0, MAX_MARKERS);
    const seen = new Set<string>();
    for (const a of wanted) {
      if (markers.length >= MAX_MARKERS) break;
      if (seen.has(a.key)) continue;
      const d = this.drawn.find((s) => s.run === a.run && (a.tag === null || s.tag === a.tag));
      if (!d || !d.step.length) continue;
      seen.add(a.key);
      const toX = (step: number): number => (isStep ? step : d.xs[nearestIndex(d.step, step)]);
      markers.push({
        x: toX(a.step),
        xEnd: a.stepEnd === null ? null : toX(a.stepEnd),
        label: a.label,
        color: a.color,
        testid: a.testid,
        // row: labels (and range strips) of several findings stack instead of covering each other
        data: { ...a.data, run: a.run, step: String(a.step), row: String(seen.size - 1), ...(a.stepEnd !== null ? { stepEnd: String(a.stepEnd) } : {}) },
      });
    }
    this.chart.setMarkers(markers);
  }

  destroy(): void {
    this.generation++;
    this.resizeObserver?.disconnect();
    this.visibilityObserver?.disconnect();
    window.clearTimeout(this.resizeTimer);
    this.chart?.destroy();
    this.chart = null;
    this.panel.root.remove();
  }
}

/** The x values where series stop before the last one does, with how many stop there, ascending. */
function runEnds(ranges: ([number, number] | null)[]): [number, number][] {
  const lasts = ranges.filter((r): r is [number, number] => r !== null).map((r) => r[1]);
  if (lasts.length < 2) return [];
  const end = Math.max(...lasts);
  const counts = new Map<number, number>();
  for (const x of lasts) if (x < end) counts.set(x, (counts.get(x) ?? 0) + 1);
  return [...counts.entries()].sort((p, q) => p[0] - q[0]);
}

/** An x value in a status line: steps as integers with separators, wall time as a date, others rounded. */
function formatX(axis: string, x: number): string {
  if (axis === "wall_time") return new Date(x * 1000).toISOString().replace("T", " ").slice(0, 19);
  if (axis === "step") return Math.round(x).toLocaleString();
  return String(Number(x.toPrecision(4)));
}

function message(e: unknown): string {
  if (e instanceof ApiError && e.status === 404 && /^404 /.test(e.message)) return "not supported by this server (404)";
  return e instanceof Error ? e.message : String(e);
}
