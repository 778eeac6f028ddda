// Typed access to the plugin's HTTP API (tb_plus/http_api.md) with a small cache.
//
// Every URL is relative ("runs", "series?..."): inside TensorBoard the iframe's <base href> is
// "plugin/tb_plus/", so this works under --path_prefix too, and a standalone page served from the
// plugin's route prefix resolves the same way (also inside an iframe of another site: its requests stay
// same-origin with TensorBoard).
//
// The log directory: `Api.logdir` (null: TensorBoard's --logdir). Every data URL is built by `Api.url`,
// which adds `logdir=` when one is chosen, so no request can forget it; the caches are keyed by URL (so
// by directory too) and are also emptied by `setLogdir`.

/** A hyperparameter value (number, string, bool) or null where the run lacks it. */
export type HparamValue = number | string | boolean | null;

/** What a run is doing: written within live_seconds, within stale_seconds, or idle longer. */
export type RunStatus = "live" | "stale" | "finished";

/** Column layout of /runs. The run-table columns after `tags` (path, first write, files, status, diagnostics)
 * are optional: an older backend lacks them. */
export interface RunsColumns {
  name: string[];
  last_step: (number | null)[];
  last_write: number[];
  size: number[];
  live: boolean[];
  tags: number[];
  path?: string[];
  first_write?: (number | null)[];
  /** The wall time of the run's newest event (null: none). */
  last_event?: (number | null)[];
  files?: number[];
  status?: RunStatus[];
  /** Per run: the counts of its diagnostics findings by severity, or null while not computed yet. */
  diagnostics?: (DiagCounts | null)[];
  /** Per run: the kind of training it was taken for (supervised, rl, lm_pretrain, finetune, unknown). */
  kind?: string[];
}

export interface Progress {
  files_done: number;
  files_total: number;
  bytes_done: number;
  bytes_total: number;
  indexing: boolean;
}

export interface RunsResponse {
  runs: RunsColumns;
  progress: Progress;
  live_seconds: number;
  stale_seconds?: number;
  /** hparam name -> values aligned with runs.name. */
  hparams?: Record<string, HparamValue[]>;
}

/** One run, as a row (what the views use). */
/** One key series of /keytags: its tag, role ("loss", "val_loss", "return", "val_metric", "metric", "lr",
 * "common") and the runs that have it. */
export interface KeyTag {
  tag: string;
  role: string;
  count: number;
  runs: string[];
}

export interface RunInfo {
  name: string;
  path: string | null;
  firstWrite: number | null;
  lastStep: number | null;
  lastWrite: number;
  /** The wall time of the newest event (null: none, or an older backend). */
  lastEvent: number | null;
  size: number;
  files: number | null;
  live: boolean;
  status: RunStatus;
  tags: number;
  /** Counts of the diagnostics findings by severity; null while not computed yet, or from an older backend. */
  diagnostics: DiagCounts | null;
  /** The kind of training the diagnostics took it for; null from an older backend. */
  kind: string | null;
  hparams: Record<string, HparamValue>;
}

/** Level mode of /tags: the children of one node. Columns aligned by index. */
export interface TagLevel {
  count: number;
  sep: string;
  parent: string;
  offset: number;
  total_children: number;
  children: {
    name: string[];
    path: string[];
    count: number[];
    group: boolean[];
    tag: boolean[];
    runs: number[];
  };
}

export type SearchMode = "substring" | "glob" | "regex";

/** Search mode of /tags: the matching tags (at most `limit`) and every group holding a match. */
export interface TagSearch {
  count: number;
  total: number;
  sep: string;
  truncated: boolean;
  matches: { tag: string[]; start: number[]; end: number[]; runs: number[] };
  groups: { path: string[]; count: number[] };
}

/** List mode of /tags: a page of the tags under a group, depth-first in natural order. */
export interface TagList {
  under: string;
  total: number;
  offset: number;
  tags: string[];
}

/** "step" | "wall_time" | "relative" | "tag:<TAG>" (another scalar tag of the same run as x). */
export type XAxis = string;

/** A wire number: JSON cannot hold non-finite values, so they come as strings. */
export type WireNumber = number | "NaN" | "Infinity" | "-Infinity";

export interface SeriesResponse {
  run: string;
  tag: string;
  x: XAxis;
  total: number;
  in_range: number;
  downsampled: boolean;
  step: WireNumber[];
  wall_time: WireNumber[];
  value: WireNumber[];
  /** The x values in the chosen axis (`x`: relative time, wall time or another tag); absent when x is the
   * step (the x values are then `step`) and from an older backend without x axes. */
  xs?: WireNumber[];
  /** Smoothed values aligned with `value`, when `smooth` was asked for. */
  smoothed?: WireNumber[];
}

/** /series with wire numbers turned into JS numbers (NaN, Infinity, -Infinity included). */
export interface Series {
  run: string;
  tag: string;
  x: XAxis;
  total: number;
  inRange: number;
  downsampled: boolean;
  step: Float64Array;
  wallTime: Float64Array;
  value: Float64Array;
  /** x values in the chosen axis (from `xs`, or derived from step / wall_time for older backends). */
  xs: Float64Array;
  smoothed: Float64Array | null;
}

export interface Smoothing {
  kind: "none" | "ema" | "median";
  weight: number;
  window: number;
}

export interface SeriesQuery {
  run: string;
  tag: string;
  x?: XAxis;
  width?: number;
  xmin?: number;
  xmax?: number;
  full?: boolean;
  xlog?: boolean;
  smooth?: Smoothing;
}

export interface AggregateGroup {
  key: string;
  /** The group's tag when the selection has several tags (one aggregate per tag), else null. */
  tag: string | null;
  series: [string, string][];
  size: number;
  /** Per series of `series`: its [first x, last x] (null without points on this axis). */
  ranges: ([number, number] | null)[];
  xs: Float64Array;
  center: Float64Array;
  lo: Float64Array;
  hi: Float64Array;
  count: number[];
}

export interface AggregateQuery {
  runs: string[];
  tags: string[];
  groupBy: string;
  stat: string;
  band: string;
  x?: XAxis;
  xmin?: number;
  xmax?: number;
  points?: number;
  xlog?: boolean;
}

export interface CompareQuery {
  a: [string, string];
  b: [string, string];
  op: string;
  x?: XAxis;
  xmin?: number;
  xmax?: number;
  width?: number;
  xlog?: boolean;
}

export interface CompareResult {
  op: string;
  total: number;
  downsampled: boolean;
  xs: Float64Array;
  step: Float64Array;
  value: Float64Array;
}

export interface Hparams {
  runs: string[];
  hparams: Record<string, (string | number | boolean | null)[]>;
}

/** /logdirs: the picker's data. */
export interface LogdirsInfo {
  /** TensorBoard's --logdir (null when it has none usable). */
  default: string | null;
  roots: string[];
  open: string[];
  upload: boolean;
  upload_dir: string | null;
  upload_max_bytes: number;
  /** Directories completing the asked prefix. */
  dirs: string[];
}

/** /upload's answer: the new run and the directory it went into. */
export interface UploadResult {
  run: string;
  files: number;
  records: number;
  bytes: number;
  logdir: string;
  path: string;
}

/** The evaluation tags of the log directory (GET evaluation without run and tag), columns aligned by index.
 * kind: "tb_plus_eval" (tb_plus.evaluation bucket counts) or "pr_curves" (TensorBoard's own summaries). */
export interface EvaluationList {
  run: string[];
  tag: string[];
  kind: string[];
}

/** One evaluation's curves at one step (GET evaluation?run&tag&step), numbers as JS numbers (NaN kept). */
export interface Evaluation {
  run: string;
  tag: string;
  kind: string;
  step: number;
  wallTime: number;
  steps: number[];
  /** null when not finite (no positives or no negatives). */
  auc: number | null;
  /** null for pr_curves tags. */
  ap: number | null;
  aucErrorBound: number | null;
  count: { positives: number; negatives: number; nan: number };
  roc: { fpr: Float64Array; tpr: Float64Array; threshold: Float64Array };
  pr: { recall: Float64Array; precision: Float64Array; threshold: Float64Array };
  /** Counts of negatives and positives over equal bins (edges has one more entry); null for pr_curves. */
  distribution: { edges: Float64Array; negatives: Float64Array; positives: Float64Array; space: string } | null;
  /** Reliability per tenth of predicted probability; null for logit scores and pr_curves. */
  calibration: { meanPredicted: Float64Array; fractionPositive: Float64Array; count: Float64Array; ece: number } | null;
}

interface EvaluationResponse {
  run: string;
  tag: string;
  kind: string;
  step: number;
  wall_time: number;
  steps: number[];
  auc: WireNumber | null;
  ap: WireNumber | null;
  auc_error_bound: WireNumber | null;
  count: { positives: number; negatives: number; nan: number };
  roc: { fpr: WireNumber[]; tpr: WireNumber[]; threshold: WireNumber[] };
  pr: { recall: WireNumber[]; precision: WireNumber[]; threshold: WireNumber[] };
  distribution: { edges: WireNumber[]; negatives: WireNumber[]; positives: WireNumber[]; space: string } | null;
  calibration: { mean_predicted: WireNumber[]; fraction_positive: WireNumber[]; count: WireNumber[]; ece: WireNumber } | null;
}

function finiteOrNull(v: WireNumber | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  const n = toNumber(v);
  return Number.isFinite(n) ? n : null;
}

function parseEvaluation(r: EvaluationResponse): Evaluation {
  const d = r.distribution;
  const c = r.calibration;
  return {
    run: r.run,
    tag: r.tag,
    kind: r.kind,
    step: r.step,
    wallTime: r.wall_time,
    steps: r.steps,
    auc: finiteOrNull(r.auc),
    ap: finiteOrNull(r.ap),
    aucErrorBound: finiteOrNull(r.auc_error_bound),
    count: r.count,
    roc: { fpr: toFloat64(r.roc.fpr), tpr: toFloat64(r.roc.tpr), threshold: toFloat64(r.roc.threshold) },
    pr: { recall: toFloat64(r.pr.recall), precision: toFloat64(r.pr.precision), threshold: toFloat64(r.pr.threshold) },
    distribution: d
      ? { edges: toFloat64(d.edges), negatives: toFloat64(d.negatives), positives: toFloat64(d.positives), space: d.space }
      : null,
    calibration: c
      ? {
          meanPredicted: toFloat64(c.mean_predicted),
          fractionPositive: toFloat64(c.fraction_positive),
          count: toFloat64(c.count),
          ece: toNumber(c.ece),
        }
      : null,
  };
}

/** The traced families of one run (GET trace?run=R), columns aligned by index. */
export interface TraceFamilies {
  tag: string[];
  family: string[];
  layers: string[][];
  stats: string[][];
}

/** One statistic of a traced family as a layers x steps matrix (GET trace?run&tag&stat&width). */
export interface TraceMatrix {
  run: string;
  tag: string;
  stat: string;
  layers: string[];
  totalSteps: number;
  steps: number[];
  /** One row per layer, NaN / Infinity kept. */
  values: Float64Array[];
  min: number;
  max: number;
}

interface TraceResponse {
  run: string;
  tag: string;
  stat: string;
  layers: string[];
  total_steps: number;
  steps: number[];
  values: WireNumber[][];
  min: WireNumber | null;
  max: WireNumber | null;
}

/** The severities of diagnostics findings, worst first. */
export const SEVERITIES = ["error", "warning", "info"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Finding counts of one run by severity. */
export interface DiagCounts {
  error: number;
  warning: number;
  info: number;
}

/**
 * One diagnostics finding: a problem one rule found in one run, as GET diagnostics sends it
 * (tb_plus.diagnostics.rules.Finding.to_json; tb_plus/http_api.md, `/diagnostics`), parsed by parseFinding:
 * the rule's name and severity ("error", "warning" or "info"), the run, the series it concerns, where it
 * starts (`step`) and where the affected range ends (`step_end` on the wire, `stepEnd` here; both null when
 * the finding is not tied to a step), a title and a message for people, the numbers behind it (`evidence`:
 * rule-specific keys, floats rounded to 4 significant digits, non-finite ones sent as "NaN", "Infinity",
 * "-Infinity" and turned back into numbers here) and what to try (`prompt`).
 */
export interface Finding {
  /** "<run>|<rule>|<tags joined by ','>": stable while the finding holds. */
  id: string;
  rule: string;
  severity: Severity;
  run: string;
  /** Affected series (scalar tags, tracer tags like trace/grad_norm/fc1). */
  tags: string[];
  /** Onset step, or null when the finding is not tied to a step. */
  step: number | null;
  /** Last step of the affected range, or null. */
  stepEnd: number | null;
  title: string;
  message: string;
  /** Numbers behind the finding (NaN / Infinity kept); anything not a number as text. */
  evidence: Record<string, number | string>;
  prompt: string;
}

export interface DiagRule {
  name: string;
  severity: Severity;
  title: string;
  description: string;
}

/** GET diagnostics: the findings (worst first, then run, then step), counts per run asked for, the rules. */
export interface Diagnostics {
  findings: Finding[];
  runs: Record<string, DiagCounts>;
  rules: DiagRule[];
  /** True while some run's first diagnosis is still being computed (ask again later). */
  pending: boolean;
  /** False when the backend has no diagnostics route (an older server). */
  available: boolean;
}

interface FindingResponse {
  id: string;
  rule: string;
  severity: string;
  run: string;
  tags: string[];
  step: number | null;
  step_end: number | null;
  title: string;
  message: string;
  evidence: Record<string, unknown> | null;
  prompt: string;
}

interface DiagnosticsResponse {
  findings: FindingResponse[];
  runs: Record<string, unknown>;
  rules: DiagRule[];
  pending: boolean;
}

function severityOf(v: unknown): Severity {
  return v === "error" || v === "warning" ? v : "info";
}

function countOf(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0;
}

/** A /runs `diagnostics` cell (or a `runs` entry of GET diagnostics) as counts; null when not computed. */
export function diagCounts(v: unknown): DiagCounts | null {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  return { error: countOf(o.error), warning: countOf(o.warning), info: countOf(o.info) };
}

function intOrNull(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function parseEvidence(e: Record<string, unknown> | null | undefined): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  if (!e || typeof e !== "object") return out;
  for (const [k, v] of Object.entries(e)) {
    if (typeof v === "number" || v === "NaN" || v === "Infinity" || v === "-Infinity") out[k] = toNumber(v);
    else if (typeof v === "string") out[k] = v;
    else out[k] = JSON.stringify(v);
  }
  return out;
}

export function parseFinding(f: FindingResponse): Finding {
  const tags = Array.isArray(f.tags) ? f.tags.filter((t): t is string => typeof t === "string") : [];
  return {
    id: typeof f.id === "string" && f.id ? f.id : `${f.run}|${f.rule}|${tags.join(",")}`,
    rule: String(f.rule),
    severity: severityOf(f.severity),
    run: String(f.run),
    tags,
    step: intOrNull(f.step),
    stepEnd: intOrNull(f.step_end),
    title: String(f.title ?? f.rule),
    message: String(f.message ?? ""),
    evidence: parseEvidence(f.evidence),
    prompt: String(f.prompt ?? ""),
  };
}

function parseDiagnostics(r: DiagnosticsResponse): Diagnostics {
  const runs: Record<string, DiagCounts> = {};
  for (const [name, v] of Object.entries(r.runs ?? {})) {
    const c = diagCounts(v);
    if (c) runs[name] = c;
  }
  return {
    findings: (r.findings ?? []).map(parseFinding),
    runs,
    rules: Array.isArray(r.rules) ? r.rules : [],
    pending: Boolean(r.pending),
    available: true,
  };
}

/** An HTTP error with the server's message ({"error": ...} body when there is one). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Turns a wire number into a JS number: "NaN" -> NaN, "Infinity" -> Infinity, "-Infinity" -> -Infinity. */
export function toNumber(v: WireNumber | null | undefined): number {
  if (typeof v === "number") return v;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return NaN;
}

export function toFloat64(values: WireNumber[]): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toNumber(values[i]);
  return out;
}

export function query(path: string, params: Record<string, string | number | boolean | string[] | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) search.append(key, v);
    else search.append(key, String(value));
  }
  const qs = search.toString();
  return qs ? `${path}?${qs}` : path;
}

/** The x-axis parameters every series route shares (step is the default and is left out). */
function axisParams(q: { x?: string; xmin?: number; xmax?: number; xlog?: boolean }): Record<string, string | number | undefined> {
  return { x: q.x && q.x !== "step" ? q.x : undefined, xmin: q.xmin, xmax: q.xmax, xlog: q.xlog ? "true" : undefined };
}

/** The separator parameter; "/" is the default and is left out. */
/** The most series one /series_batch request may carry. */
const BATCH_MAX = 200;

function sepParam(sep: string): string | undefined {
  return sep && sep !== "/" ? sep : undefined;
}

function widthParam(width: number | undefined): number | undefined {
  return width !== undefined ? Math.max(1, Math.min(100000, Math.round(width))) : undefined;
}

type SeriesMeta = Pick<SeriesResponse, "run" | "tag" | "x" | "total" | "in_range" | "downsampled">;

interface BinaryColumns {
  step: Float64Array;
  wall_time: Float64Array;
  value: Float64Array;
  xs?: Float64Array;
  smoothed?: Float64Array;
}

type BinaryEntry = { meta: SeriesMeta; cols: BinaryColumns } | { run: string; tag: string; status: number; error: string };

/** Splits a /series_batch?format=binary answer: uint32 header length, JSON header, padding to 8,
 * then float64 columns at the offsets the header gives. */
function parseBinaryBatch(buf: ArrayBuffer): BinaryEntry[] {
  const hlen = new DataView(buf).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, hlen))) as {
    series: (SeriesMeta & { n: number; columns: Record<string, number> } | { run: string; tag: string; status: number; error: string })[];
  };
  const base = 4 + hlen + ((8 - ((4 + hlen) % 8)) % 8);
  return header.series.map((e) => {
    if ("error" in e) return e;
    const col = (name: string) => (name in e.columns ? new Float64Array(buf, base + e.columns[name], e.n) : undefined);
    const cols: BinaryColumns = { step: col("step")!, wall_time: col("wall_time")!, value: col("value")! };
    const xs = col("xs");
    const smoothed = col("smoothed");
    if (xs) cols.xs = xs;
    if (smoothed) cols.smoothed = smoothed;
    return { meta: e, cols };
  });
}

async function getBinary(url: string): Promise<ArrayBuffer> {
  const response = await fetch(url);
  if (!response.ok) throw new ApiError(response.status, await errorText(response));
  return response.arrayBuffer();
}

async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(url, { signal, headers: { Accept: "application/json" } });
  if (!response.ok) throw new ApiError(response.status, await errorText(response));
  return (await response.json()) as T;
}

/** The server's message: {"error": ...} in a JSON body, else the text body (TensorBoard answers its
 * errors as text/plain, e.g. "Invalid argument: ..."), else the status line. */
async function errorText(response: Response): Promise<string> {
  let text = "";
  try {
    text = (await response.text()).trim();
  } catch {
    // body unreadable: the status line
  }
  try {
    const body = JSON.parse(text) as unknown;
    if (body && typeof body === "object" && typeof (body as { error?: unknown }).error === "string") {
      return (body as { error: string }).error;
    }
  } catch {
    // not JSON
  }
  const html = (response.headers.get("Content-Type") ?? "").includes("html") || text.startsWith("<");
  return text && !html ? text.slice(0, 500) : `${response.status} ${response.statusText}`;
}

/** Least-recently-used map with a fixed number of entries. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly capacity: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
    }
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}

function statusOf(cols: RunsColumns, i: number): RunStatus {
  const st = cols.status?.[i];
  if (st === "live" || st === "stale" || st === "finished") return st;
  return cols.live[i] ? "live" : "finished"; // an older backend: no stale state
}

export function runsFromColumns(cols: RunsColumns, hparams: Record<string, HparamValue[]> = {}): RunInfo[] {
  const names = Object.keys(hparams);
  return cols.name.map((name, i) => {
    const hp: Record<string, HparamValue> = {};
    for (const n of names) hp[n] = hparams[n][i] ?? null;
    return {
      name,
      path: cols.path?.[i] ?? null,
      firstWrite: cols.first_write?.[i] ?? null,
      lastStep: cols.last_step[i] ?? null,
      lastWrite: cols.last_write[i] ?? 0,
      lastEvent: cols.last_event?.[i] ?? null,
      size: cols.size[i] ?? 0,
      files: cols.files?.[i] ?? null,
      live: Boolean(cols.live[i]),
      status: statusOf(cols, i),
      tags: cols.tags[i] ?? 0,
      diagnostics: diagCounts(cols.diagnostics?.[i]),
      kind: cols.kind?.[i] ?? null,
      hparams: hp,
    };
  });
}

/** A run's data version: when it changes, cached series of that run are stale. */
export function runVersion(run: RunInfo): string {
  return `${run.lastWrite}|${run.size}|${run.lastStep}`;
}

export interface RunsAnswer {
  runs: RunInfo[];
  progress: Progress;
  liveSeconds: number;
  staleSeconds: number | null;
  hparamNames: string[];
}

/**
 * The client. Series responses are cached by URL plus the run's data version (taken from the last
 * /runs answer), so an unchanged run is never fetched twice and a run that grew is refetched.
 * Concurrent identical requests share one fetch.
 */
export class Api {
  private readonly seriesCache = new Lru<Promise<Series>>(2048);
  private readonly otherCache = new Lru<Promise<unknown>>(256);
  private readonly versions = new Map<string, string>();

  private readonly tagCache = new Lru<Promise<unknown>>(512);
  /** Changes when the set of tags may have changed (runs appeared or their tag counts moved): tag answers
   * cached under an older version are not reused. */
  tagsVersion = "";
  private dir: string | null = null;

  /** The chosen log directory (null: the server's default). */
  get logdir(): string | null {
    return this.dir;
  }

  /** Switches the log directory every later request names; the caches of the old one are dropped. */
  setLogdir(logdir: string | null): void {
    if (logdir === this.dir) return;
    this.dir = logdir;
    this.versions.clear();
    this.clear();
  }

  /** A data route's URL with its parameters, plus `logdir=` when one is chosen (or given). The one place
   * URLs of the data routes are made. */
  url(path: string, params: Record<string, string | number | boolean | string[] | undefined> = {}, logdir: string | null = this.dir): string {
    return query(path, { ...params, logdir: logdir ?? undefined });
  }

  /** Records the data version of each run (from a /runs answer taken outside `runs()`). */
  noteVersions(runs: RunInfo[]): void {
    for (const run of runs) this.versions.set(run.name, runVersion(run));
  }

  /** /runs of the current log directory, or of `logdir` when given (a directory about to be opened:
   * its refusal comes back as an ApiError before anything is switched). */
  async runs(logdir: string | null = this.dir): Promise<RunsAnswer> {
    const r = await getJson<RunsResponse>(this.url("runs", {}, logdir));
    const runs = runsFromColumns(r.runs, r.hparams ?? {});
    if (logdir === this.dir) this.noteVersions(runs);
    return {
      runs,
      progress: r.progress,
      liveSeconds: r.live_seconds,
      staleSeconds: r.stale_seconds ?? null,
      hparamNames: Object.keys(r.hparams ?? {}),
    };
  }

  /** Level mode: the children of `parent` ("" = the root), `limit` of them from `offset`. */
  tagLevel(q: { parent: string; sep: string; offset?: number; limit?: number }): Promise<TagLevel> {
    return this.tagGet<TagLevel>({ parent: q.parent || undefined, sep: sepParam(q.sep), offset: q.offset || undefined, limit: q.limit });
  }

  /** Search mode: tags matching `filter` and the groups that hold them. A bad regex rejects with ApiError 400. */
  tagSearch(q: { filter: string; mode: SearchMode; sep: string; limit?: number }): Promise<TagSearch> {
    return this.tagGet<TagSearch>({ filter: q.filter, mode: q.mode, sep: sepParam(q.sep), limit: q.limit });
  }

  /** List mode: a page of the tags under `under` ("" = every tag), optionally filtered, of some runs. */
  tagList(q: { under: string; sep: string; offset?: number; limit: number; filter?: string; mode?: SearchMode; runs?: string[] }): Promise<TagList> {
    return this.tagGet<TagList>({
      run: q.runs,
      under: q.under,
      sep: sepParam(q.sep),
      offset: q.offset || undefined,
      limit: q.limit,
      filter: q.filter || undefined,
      mode: q.filter && q.mode ? q.mode : undefined,
    });
  }

  private tagGet<T>(params: Record<string, string | number | string[] | undefined>): Promise<T> {
    const url = this.url("tags", params);
    const key = `${url}#${this.tagsVersion}`;
    const hit = this.tagCache.get(key) as Promise<T> | undefined;
    if (hit) return hit;
    const p = getJson<T>(url);
    this.tagCache.set(key, p);
    p.catch(() => this.tagCache.delete(key));
    return p;
  }

  seriesUrl(q: SeriesQuery): string {
    return this.url("series", { run: q.run, tag: q.tag, ...this.seriesParams(q) });
  }

  /** The /series parameters other than run and tag. */
  private seriesParams(q: SeriesQuery): Record<string, string | number | undefined> {
    return {
      ...axisParams(q),
      width: widthParam(q.width),
      full: q.full ? "true" : undefined,
      smooth: q.smooth && q.smooth.kind !== "none" ? q.smooth.kind : undefined,
      weight: q.smooth?.kind === "ema" ? q.smooth.weight : undefined,
      window: q.smooth?.kind === "median" ? q.smooth.window : undefined,
    };
  }

  /**
   * Several series at once: cached ones come from the cache, the others travel in one
   * /series_batch request (one HTTP round trip per chart instead of one per run). Each promise
   * settles on its own (a run without the tag rejects with ApiError 404, the others resolve).
   */
  seriesMany(qs: SeriesQuery[]): Promise<Series>[] {
    const out: Promise<Series>[] = [];
    const missing: { q: SeriesQuery; key: string; resolve: (s: Series) => void; reject: (e: unknown) => void }[] = [];
    for (const q of qs) {
      const key = `${this.seriesUrl(q)}#${this.versions.get(q.run) ?? ""}`;
      const hit = this.seriesCache.get(key);
      if (hit) {
        out.push(hit);
        continue;
      }
      let resolve!: (s: Series) => void;
      let reject!: (e: unknown) => void;
      const p = new Promise<Series>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.seriesCache.set(key, p);
      p.catch(() => this.seriesCache.delete(key));
      missing.push({ q, key, resolve, reject });
      out.push(p);
    }
    if (missing.length === 1) {
      const m = missing[0];
      this.seriesCache.delete(m.key);
      this.series(m.q).then(m.resolve, m.reject);
    } else if (missing.length > 1) {
      // One request per group of identical parameters (a chart's series share them), answered as
      // plain float64 columns (no JSON number formatting or parsing on either side); the server takes
      // at most BATCH_MAX series per request.
      for (let i = 0; i < missing.length; i += BATCH_MAX) this.fetchBatch(missing.slice(i, i + BATCH_MAX));
    }
    return out;
  }

  private fetchBatch(missing: { q: SeriesQuery; resolve: (s: Series) => void; reject: (e: unknown) => void }[]): void {
    const url = this.url("series_batch", {
      run: missing.map((m) => m.q.run),
      tag: missing.map((m) => m.q.tag),
      ...this.seriesParams(missing[0].q),
      format: "binary",
    });
    getBinary(url).then(
      (buf) => {
        const entries = parseBinaryBatch(buf);
        missing.forEach((m, i) => {
          const entry = entries[i];
          if (!entry) m.reject(new ApiError(500, "missing from the batch answer"));
          else if ("error" in entry) m.reject(new ApiError(entry.status, entry.error));
          else m.resolve(this.seriesFromColumns(entry.meta, entry.cols, m.q));
        });
      },
      (e) => missing.forEach((m) => m.reject(e)),
    );
  }

  series(q: SeriesQuery): Promise<Series> {
    const url = this.seriesUrl(q);
    const key = `${url}#${this.versions.get(q.run) ?? ""}`;
    const hit = this.seriesCache.get(key);
    if (hit) return hit;
    const p = getJson<SeriesResponse>(url).then((r) => this.parseSeries(r, q));
    this.seriesCache.set(key, p);
    p.catch(() => this.seriesCache.delete(key));
    return p;
  }

  private parseSeries(r: SeriesResponse, q: SeriesQuery): Series {
    const cols: BinaryColumns = {
      step: toFloat64(r.step),
      wall_time: toFloat64(r.wall_time),
      value: toFloat64(r.value),
    };
    if (r.xs) cols.xs = toFloat64(r.xs);
    if (r.smoothed) cols.smoothed = toFloat64(r.smoothed);
    return this.seriesFromColumns(r, cols, q);
  }

  private seriesFromColumns(r: SeriesMeta, cols: BinaryColumns, q: SeriesQuery): Series {
      const step = cols.step;
      const wallTime = cols.wall_time;
      const value = cols.value;
      let xs: Float64Array;
      if (cols.xs) xs = cols.xs;
      else if (r.x === "wall_time") xs = wallTime;
      else if (r.x === "relative") xs = wallTime.map((w) => w - (wallTime[0] ?? 0));
      else xs = step; // step (or an older backend that ignored x)
      let smoothed = cols.smoothed ?? null;
      if (!smoothed && q.smooth && q.smooth.kind !== "none") smoothed = smoothLocally(xs, value, q.smooth);
      return { run: r.run, tag: r.tag, x: r.x, total: r.total, inRange: r.in_range, downsampled: r.downsampled, step, wallTime, value, xs, smoothed };
  }

  /** /aggregate, cached per URL and the data versions of every run. */
  aggregate(q: AggregateQuery): Promise<{ x: string; groups: AggregateGroup[] }> {
    const url = this.url("aggregate", {
      run: q.runs,
      tag: q.tags,
      group_by: q.groupBy && q.groupBy !== "none" ? q.groupBy : undefined,
      stat: q.stat,
      band: q.band,
      ...axisParams(q),
      points: q.points !== undefined ? Math.max(2, Math.min(10000, Math.round(q.points))) : undefined,
    });
    return this.cached(url, q.runs, () =>
      getJson<{ x: string; groups: (Omit<AggregateGroup, "xs" | "center" | "lo" | "hi"> & Record<"xs" | "center" | "lo" | "hi", WireNumber[]>)[] }>(url).then((r) => ({
        x: r.x,
        groups: r.groups.map((g) => ({
          ...g,
          xs: toFloat64(g.xs),
          center: toFloat64(g.center),
          lo: toFloat64(g.lo),
          hi: toFloat64(g.hi),
        })),
      })),
    );
  }

  /** /compare (A - B or A / B), cached per URL and the versions of both runs. */
  compare(q: CompareQuery): Promise<CompareResult> {
    const url = this.url("compare", {
      a_run: q.a[0],
      a_tag: q.a[1],
      b_run: q.b[0],
      b_tag: q.b[1],
      op: q.op,
      ...axisParams(q),
      width: widthParam(q.width),
    });
    return this.cached(url, [q.a[0], q.b[0]], () =>
      getJson<{ op: string; total: number; downsampled: boolean; xs: WireNumber[]; step: WireNumber[]; value: WireNumber[] }>(url).then((r) => ({
        op: r.op,
        total: r.total,
        downsampled: r.downsampled,
        xs: toFloat64(r.xs),
        step: toFloat64(r.step),
        value: toFloat64(r.value),
      })),
    );
  }

  /** /keytags: the key series of the log directory (losses, returns, metrics, rates) with the runs that have
   * them, for the first view. An empty list when the backend has no such route. Cached until a run changes. */
  keyTags(): Promise<KeyTag[]> {
    const url = this.url("keytags");
    return this.cached(url, [...this.versions.keys()], () =>
      getJson<{ tags: KeyTag[] }>(url).then(
        (r) => r.tags,
        (e) => {
          if (e instanceof ApiError && e.status === 404) return [];
          throw e;
        },
      ),
    );
  }

  /** /hparams; an empty table when the backend has no such route. Cached until `clear()` or a run change. */
  hparams(): Promise<Hparams> {
    const all = [...this.versions.keys()];
    const url = this.url("hparams");
    return this.cached(url, all, () =>
      getJson<Hparams>(url).catch((e) => {
        if (e instanceof ApiError && e.status === 404) return { runs: [], hparams: {} };
        throw e;
      }),
    );
  }

  /** The evaluation tags (an empty list when the backend has no /evaluation route). Cached until a run
   * changes or `clear()`. */
  evaluations(): Promise<EvaluationList> {
    const url = this.url("evaluation");
    return this.cached(url, [...this.versions.keys()], () =>
      getJson<{ tags: EvaluationList }>(url).then(
        (r) => r.tags,
        (e) => {
          if (e instanceof ApiError && e.status === 404) return { run: [], tag: [], kind: [] };
          throw e;
        },
      ),
    );
  }

  /** One evaluation's curves at `step` (null: the last), cached per URL and the run's data version. */
  evaluation(run: string, tag: string, step: number | null, bins?: number): Promise<Evaluation> {
    const url = this.url("evaluation", { run, tag, step: step ?? undefined, bins });
    return this.cached(url, [run], () => getJson<EvaluationResponse>(url).then(parseEvaluation));
  }

  /** The traced families of `run` (empty when the run has none or the backend has no /trace route). */
  traceFamilies(run: string): Promise<TraceFamilies> {
    const url = this.url("trace", { run });
    return this.cached(url, [run], () =>
      getJson<{ families: TraceFamilies }>(url).then(
        (r) => r.families,
        (e) => {
          if (e instanceof ApiError && (e.status === 404 || e.status === 400)) return { tag: [], family: [], layers: [], stats: [] };
          throw e;
        },
      ),
    );
  }

  /** One statistic of a traced family, at most `width` columns. */
  trace(run: string, tag: string, stat: string, width: number): Promise<TraceMatrix> {
    const url = this.url("trace", { run, tag, stat, width });
    return this.cached(url, [run], () =>
      getJson<TraceResponse>(url).then((r) => ({
        run: r.run,
        tag: r.tag,
        stat: r.stat,
        layers: r.layers,
        totalSteps: r.total_steps,
        steps: r.steps,
        values: r.values.map((row) => toFloat64(row)),
        min: r.min === null ? NaN : toNumber(r.min),
        max: r.max === null ? NaN : toNumber(r.max),
      })),
    );
  }

  /**
   * GET diagnostics of `runs` (none: every run), cached per URL and the data versions of those runs (of
   * every run when none is named), so a refresh asks again only when a run changed. A `pending` answer
   * (a first diagnosis still running) is not kept: the next call asks again. An older backend without
   * the route answers an empty, unavailable result.
   */
  diagnostics(runs?: string[]): Promise<Diagnostics> {
    const url = this.url("diagnostics", { run: runs && runs.length ? runs : undefined });
    const names = runs && runs.length ? runs : [...this.versions.keys()];
    const key = `${url}#${names.map((r) => this.versions.get(r) ?? "").join(",")}`;
    const hit = this.otherCache.get(key) as Promise<Diagnostics> | undefined;
    if (hit) return hit;
    const p = getJson<DiagnosticsResponse>(url).then(parseDiagnostics, (e) => {
      // Without runs named, a 404 means the route itself is missing (an unknown run is a 404 too).
      if (e instanceof ApiError && e.status === 404 && !(runs && runs.length)) {
        return { findings: [], runs: {}, rules: [], pending: false, available: false };
      }
      throw e;
    });
    this.otherCache.set(key, p);
    p.then(
      (d) => {
        if (d.pending) this.otherCache.delete(key);
      },
      () => this.otherCache.delete(key),
    );
    return p;
  }

  private cached<T>(url: string, runs: string[], fetcher: () => Promise<T>): Promise<T> {
    const key = `${url}#${runs.map((r) => this.versions.get(r) ?? "").join(",")}`;
    const hit = this.otherCache.get(key) as Promise<T> | undefined;
    if (hit) return hit;
    const p = fetcher();
    this.otherCache.set(key, p);
    p.catch(() => this.otherCache.delete(key));
    return p;
  }

  exportUrl(run: string, tag: string, format: "csv" | "json"): string {
    return this.url("export", { run, tag, format });
  }

  /** /logdirs: roots, default, upload settings and the directories completing `prefix`. */
  logdirs(prefix = "", signal?: AbortSignal): Promise<LogdirsInfo> {
    return getJson<LogdirsInfo>(query("logdirs", { prefix: prefix || undefined }), signal);
  }

  /**
   * Uploads a file (an event file, or a .zip / .tar.gz of a run folder) as the raw request body. XHR, not
   * fetch, for the upload progress. The custom header is what the server requires (a page of another
   * origin cannot send it without a CORS preflight). Refusals reject with ApiError carrying the server's
   * text ("Upload refused: ...").
   */
  upload(file: File, run: string, onProgress?: (sent: number, total: number) => void): Promise<UploadResult> {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", query("upload", { run: run || undefined, filename: file.name }));
      xhr.setRequestHeader("X-TB-Plus-Upload", "1");
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.responseType = "text";
      if (onProgress) xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
      xhr.addEventListener("load", () => {
        const text = String(xhr.responseText ?? "").trim();
        if (xhr.status >= 200 && xhr.status < 300) {
          try {
            resolve(JSON.parse(text) as UploadResult);
          } catch {
            reject(new ApiError(xhr.status, `unreadable answer from the server: ${text.slice(0, 200)}`));
          }
          return;
        }
        const html = text.startsWith("<");
        reject(new ApiError(xhr.status, text && !html ? text.slice(0, 1000) : `${xhr.status} ${xhr.statusText}`));
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, "Upload failed: the connection to the server was lost")));
      xhr.addEventListener("abort", () => reject(new ApiError(0, "Upload cancelled")));
      xhr.send(file);
    });
  }

  /** Forget every cached series (the reload button). */
  clear(): void {
    this.seriesCache.clear();
    this.otherCache.clear();
    this.tagCache.clear();
  }
}

/**
 * Smoothing of already fetched points, for a backend that did not send `smoothed`: the same rules as the
 * server's (EMA decaying with x distance, debiased; centred median over `window` points), but on the
 * downsampled points the chart holds.
 */
export function smoothLocally(xs: ArrayLike<number>, v: ArrayLike<number>, sm: Smoothing): Float64Array {
  const n = v.length;
  const out = new Float64Array(n);
  if (sm.kind === "ema") {
    const gaps: number[] = [];
    for (let i = 1; i < n; i++) if (xs[i] - xs[i - 1] > 0) gaps.push(xs[i] - xs[i - 1]);
    gaps.sort((a, b) => a - b);
    const ref = gaps.length ? gaps[gaps.length >> 1] : 1;
    let acc = 0;
    let norm = 0;
    let last = NaN;
    for (let i = 0; i < n; i++) {
      if (Number.isFinite(v[i])) {
        const d = i === 0 ? sm.weight : Math.pow(sm.weight, (xs[i] - xs[i - 1]) / ref);
        acc = d * acc + (1 - d) * v[i];
        norm = d * norm + (1 - d);
        last = norm > 0 ? acc / norm : v[i];
      }
      out[i] = last;
    }
  } else {
    const h = Math.floor(Math.max(1, sm.window) / 2);
    for (let i = 0; i < n; i++) {
      const w: number[] = [];
      for (let j = Math.max(0, i - h); j <= Math.min(n - 1, i + h); j++) if (Number.isFinite(v[j])) w.push(v[j]);
      w.sort((a, b) => a - b);
      out[i] = w.length ? (w.length % 2 ? w[w.length >> 1] : (w[w.length / 2 - 1] + w[w.length / 2]) / 2) : NaN;
    }
  }
  return out;
}
