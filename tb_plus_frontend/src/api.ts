// Typed access to the plugin's HTTP API (tb_plus/http_api.md) with a small cache.
//
// Every URL is relative ("runs", "series?..."): inside TensorBoard the iframe's <base href> is
// "plugin/tb_plus/", so this works under --path_prefix too, and a standalone page served from the
// plugin's route prefix resolves the same way.

/** Column layout of /runs. */
export interface RunsColumns {
  name: string[];
  last_step: (number | null)[];
  last_write: number[];
  size: number[];
  live: boolean[];
  tags: number[];
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
}

/** One run, as a row (what the views use). */
export interface RunInfo {
  name: string;
  lastStep: number | null;
  lastWrite: number;
  size: number;
  live: boolean;
  tags: number;
}

export interface TagNode {
  name: string;
  path: string;
  count: number;
  children: TagNode[];
  /** Present on leaves: the runs that have this tag. */
  runs?: string[];
}

export interface TagsResponse {
  count: number;
  tree: TagNode;
}

export type XAxis = "step" | "wall_time" | "relative";

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
}

export interface SeriesQuery {
  run: string;
  tag: string;
  x?: XAxis;
  width?: number;
  xmin?: number;
  xmax?: number;
  full?: boolean;
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

function toFloat64(values: WireNumber[]): Float64Array {
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

async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(url, { signal, headers: { Accept: "application/json" } });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && typeof body.error === "string") message = body.error;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message);
  }
  return (await response.json()) as T;
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

export function runsFromColumns(cols: RunsColumns): RunInfo[] {
  return cols.name.map((name, i) => ({
    name,
    lastStep: cols.last_step[i] ?? null,
    lastWrite: cols.last_write[i] ?? 0,
    size: cols.size[i] ?? 0,
    live: Boolean(cols.live[i]),
    tags: cols.tags[i] ?? 0,
  }));
}

/** A run's data version: when it changes, cached series of that run are stale. */
export function runVersion(run: RunInfo): string {
  return `${run.lastWrite}|${run.size}|${run.lastStep}`;
}

/**
 * The client. Series responses are cached by URL plus the run's data version (taken from the last
 * /runs answer), so an unchanged run is never fetched twice and a run that grew is refetched.
 * Concurrent identical requests share one fetch.
 */
export class Api {
  private readonly seriesCache = new Lru<Promise<Series>>(256);
  private readonly versions = new Map<string, string>();

  async runs(): Promise<{ runs: RunInfo[]; progress: Progress; liveSeconds: number }> {
    const r = await getJson<RunsResponse>("runs");
    const runs = runsFromColumns(r.runs);
    for (const run of runs) this.versions.set(run.name, runVersion(run));
    return { runs, progress: r.progress, liveSeconds: r.live_seconds };
  }

  tags(opts: { runs?: string[]; filter?: string; regex?: boolean }, signal?: AbortSignal): Promise<TagsResponse> {
    const url = query("tags", {
      run: opts.runs,
      filter: opts.filter ? opts.filter : undefined,
      regex: opts.filter && opts.regex ? "true" : undefined,
    });
    return getJson<TagsResponse>(url, signal);
  }

  seriesUrl(q: SeriesQuery): string {
    return query("series", {
      run: q.run,
      tag: q.tag,
      x: q.x && q.x !== "step" ? q.x : undefined,
      width: q.width !== undefined ? Math.max(1, Math.min(100000, Math.round(q.width))) : undefined,
      xmin: q.xmin,
      xmax: q.xmax,
      full: q.full ? "true" : undefined,
    });
  }

  series(q: SeriesQuery): Promise<Series> {
    const url = this.seriesUrl(q);
    const key = `${url}#${this.versions.get(q.run) ?? ""}`;
    const hit = this.seriesCache.get(key);
    if (hit) return hit;
    const p = getJson<SeriesResponse>(url).then((r) => ({
      run: r.run,
      tag: r.tag,
      x: r.x,
      total: r.total,
      inRange: r.in_range,
      downsampled: r.downsampled,
      step: toFloat64(r.step),
      wallTime: toFloat64(r.wall_time),
      value: toFloat64(r.value),
    }));
    this.seriesCache.set(key, p);
    p.catch(() => this.seriesCache.delete(key));
    return p;
  }

  exportUrl(run: string, tag: string, format: "csv" | "json"): string {
    return query("export", { run, tag, format });
  }

  /** Forget every cached series (the reload button). */
  clear(): void {
    this.seriesCache.clear();
  }
}
