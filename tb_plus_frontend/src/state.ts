// The view state: every user choice, and its encoding in a URL.
//
// Where it is kept:
// - the standalone page (not framed): its own query string (history.replaceState), plus localStorage;
// - inside TensorBoard's iframe: the parent's location hash as `#tb_plus&p.tb_plus.KEY=VALUE` pairs when the
//   parent is reachable (same origin), else localStorage only.
// A URL that carries any state key restores the whole view from it (missing keys take their defaults);
// without one, the last state saved in localStorage applies.
//
// `logdir` (absent: TensorBoard's --logdir) is part of the view like every other key, so each browser
// (each URL) looks at its own log directory. Inside another site's iframe the standalone page takes
// everything from its own query string: localStorage may throw there (third-party storage blocked), so
// every access to it is wrapped, and the URL is not rewritten (the embedding page owns the iframe's src).

export type SmoothKind = "none" | "ema" | "median";
export type Stat = "mean" | "median";
export type Band = "minmax" | "std" | "ci95" | "none";
export type CompareOp = "diff" | "ratio";
export type TagMatchMode = "substring" | "glob" | "regex";

/** Separators the tag tree can nest on (each character splits). */
export const SEPARATOR_CHOICES = ["/", ".", "/."];

/** Per-chart overrides of the global axis settings; undefined means "use the global one". */
export interface ChartOpts {
  x?: string;
  xlog?: boolean;
  ylog?: boolean;
  /** Ignore outliers in the y scaling (undefined: the global setting). */
  outliers?: boolean;
}

export interface CustomSpec {
  id: string;
  title: string;
  series: [string, string][]; // (run, tag)
  o?: ChartOpts;
}

export interface AggSpec {
  id: string;
  tags: string[]; // tags or globs
  groupBy: string; // "none" | "run_regex:RE" | "tag_level:K" | "hparam:NAME"
  stat: Stat;
  band: Band;
  o?: ChartOpts;
}

export interface CmpSpec {
  id: string;
  a: [string, string];
  b: [string, string];
  op: CompareOp;
  o?: ChartOpts;
}

export interface ViewState {
  /** The log directory (a path inside the server's roots); null: TensorBoard's --logdir. */
  logdir: string | null;
  /** Selected runs; null: not chosen yet (the first 10 runs). */
  runs: string[] | null;
  tags: string[];
  x: string; // "step" | "relative" | "wall_time" | "tag:<TAG>"
  xlog: boolean;
  ylog: boolean;
  /** Fit y axes to the bulk of the values (outliers clipped and marked at the edge); URL "outliers=0" when off. */
  outliers: boolean;
  smooth: SmoothKind;
  weight: number; // EMA weight, 0..0.999
  window: number; // median window, odd >= 1
  /** Highlight dimension: "" | "run_regex:RE" | "run_split:I" | "tag_level:K" | "hparam:NAME". */
  dim: string;
  /** Highlighted value of the dimension, or null. */
  hl: string | null;
  pins: string[];
  /** Characters the tag tree nests on: "/", "." or "/.". */
  sep: string;
  /** The group whose charts are shown page by page (null: none), its page (from 0) and the search that
   * narrowed it when it was opened from search results ("" : none). */
  group: string | null;
  gpage: number;
  gfilter: string;
  gmode: TagMatchMode;
  /** Refresh interval in seconds; 0: off. */
  refresh: number;
  tagOpts: Record<string, ChartOpts>;
  custom: CustomSpec[];
  agg: AggSpec[];
  cmp: CmpSpec[];
  /** The Evaluation panel: whether it is open, the evaluation shown (run and tag; null: the first listed),
   * its step (null: the last, following new evaluations) and whether the score distributions use a log y. */
  eval: boolean;
  erun: string | null;
  etag: string | null;
  estep: number | null;
  elogy: boolean;
  /** The Layers panel (tracer heatmap): open, and the run, family tag and statistic shown (null: defaults). */
  trace: boolean;
  trun: string | null;
  ttag: string | null;
  tstat: string | null;
  /** The Diagnostics panel: open, the severities listed, the runs listed ("sel": the selected runs, or
   * every run when none is; "all"; "run:<name>": one run) and the finding whose chart is shown (its id). */
  diag: boolean;
  dsev: DiagSeverity[];
  dscope: string;
  dfind: string | null;
  /** Whether the ordinary charts mark findings (a line at the onset, a strip over the range, per run). */
  dover: boolean;
}

export type DiagSeverity = "error" | "warning" | "info";
export const DIAG_SEVERITIES: DiagSeverity[] = ["error", "warning", "info"];

export const REFRESH_CHOICES: [number, string][] = [
  [0, "off"], [1, "1 s"], [5, "5 s"], [15, "15 s"], [30, "30 s"], [60, "1 min"], [300, "5 min"], [600, "10 min"],
];
export const DEFAULT_REFRESH = 30;
const STORAGE_KEY = "tb_plus.state.v2";
const OLD_STORAGE_KEY = "tb_plus.state.v1";
const HASH_PREFIX = "p.tb_plus.";
/** Keys whose presence in a URL means "this URL describes a view". */
const STATE_KEYS = [
  "logdir", "run", "norun", "tag", "x", "xlog", "ylog", "outliers", "smooth", "dim", "hl", "pin", "refresh", "topt", "custom", "agg",
  "cmp", "sep", "group", "eval", "erun", "etag", "trace", "trun", "ttag", "tstat", "diag", "dsev", "dscope", "dfind", "dover",
];

export function defaultState(): ViewState {
  return {
    logdir: null, runs: null, tags: [], x: "step", xlog: false, ylog: false, outliers: true, smooth: "none", weight: 0.6, window: 5,
    dim: "", hl: null, pins: [], sep: "/", group: null, gpage: 0, gfilter: "", gmode: "substring", refresh: DEFAULT_REFRESH, tagOpts: {}, custom: [], agg: [], cmp: [],
    eval: false, erun: null, etag: null, estep: null, elogy: false,
    trace: false, trun: null, ttag: null, tstat: null,
    diag: false, dsev: DIAG_SEVERITIES.slice(), dscope: "sel", dfind: null, dover: true,
  };
}

export function newId(): string {
  return Math.random().toString(36).slice(2, 8);
}

function parseJson<T>(raw: string, check: (v: unknown) => v is T): T | null {
  try {
    const v = JSON.parse(raw) as unknown;
    return check(v) ? v : null;
  } catch {
    return null;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isPair = (v: unknown): v is [string, string] =>
  Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string";
const isCustom = (v: unknown): v is CustomSpec =>
  isObj(v) && typeof v.id === "string" && typeof v.title === "string" && Array.isArray(v.series) && v.series.every(isPair);
const isAgg = (v: unknown): v is AggSpec =>
  isObj(v) && typeof v.id === "string" && Array.isArray(v.tags) && v.tags.every((t) => typeof t === "string") &&
  typeof v.groupBy === "string" && (v.stat === "mean" || v.stat === "median") &&
  ["minmax", "std", "ci95", "none"].includes(String(v.band));
const isCmp = (v: unknown): v is CmpSpec =>
  isObj(v) && typeof v.id === "string" && isPair(v.a) && isPair(v.b) && (v.op === "diff" || v.op === "ratio");
const isOptsMap = (v: unknown): v is Record<string, ChartOpts> => isObj(v) && Object.values(v).every(isObj);

/** Encodes the state as (key, value) pairs; defaults are left out. */
export function encodeState(s: ViewState): [string, string][] {
  const out: [string, string][] = [];
  if (s.logdir) out.push(["logdir", s.logdir]);
  if (s.runs) {
    if (s.runs.length === 0) out.push(["norun", "1"]);
    for (const r of s.runs) out.push(["run", r]);
  }
  for (const t of s.tags) out.push(["tag", t]);
  if (s.x !== "step") out.push(["x", s.x]);
  if (s.xlog) out.push(["xlog", "1"]);
  if (s.ylog) out.push(["ylog", "1"]);
  if (!s.outliers) out.push(["outliers", "0"]);
  if (s.smooth === "ema") out.push(["smooth", `ema:${s.weight}`]);
  if (s.smooth === "median") out.push(["smooth", `median:${s.window}`]);
  if (s.dim) out.push(["dim", s.dim]);
  if (s.dim && s.hl !== null) out.push(["hl", s.hl]);
  for (const p of s.pins) out.push(["pin", p]);
  if (s.sep !== "/") out.push(["sep", s.sep]);
  if (s.group !== null) {
    out.push(["group", s.group]);
    if (s.gpage > 0) out.push(["gpage", String(s.gpage)]);
    if (s.gfilter) {
      out.push(["gfilter", s.gfilter]);
      if (s.gmode !== "substring") out.push(["gmode", s.gmode]);
    }
  }
  if (s.refresh !== DEFAULT_REFRESH) out.push(["refresh", String(s.refresh)]);
  const topt = Object.fromEntries(Object.entries(s.tagOpts).filter(([, o]) => Object.keys(o).length));
  if (Object.keys(topt).length) out.push(["topt", JSON.stringify(topt)]);
  for (const c of s.custom) out.push(["custom", JSON.stringify(c)]);
  for (const a of s.agg) out.push(["agg", JSON.stringify(a)]);
  for (const c of s.cmp) out.push(["cmp", JSON.stringify(c)]);
  if (s.eval) out.push(["eval", "1"]);
  if (s.erun !== null && s.etag !== null) {
    out.push(["erun", s.erun], ["etag", s.etag]);
    if (s.estep !== null) out.push(["estep", String(s.estep)]);
  }
  if (s.elogy) out.push(["elogy", "1"]);
  if (s.trace) out.push(["trace", "1"]);
  if (s.trun !== null) out.push(["trun", s.trun]);
  if (s.ttag !== null) out.push(["ttag", s.ttag]);
  if (s.tstat !== null) out.push(["tstat", s.tstat]);
  if (s.diag) out.push(["diag", "1"]);
  if (DIAG_SEVERITIES.some((v) => !s.dsev.includes(v))) out.push(["dsev", DIAG_SEVERITIES.filter((v) => s.dsev.includes(v)).join(",") || "none"]);
  if (s.dscope !== "sel") out.push(["dscope", s.dscope]);
  if (s.dfind !== null) out.push(["dfind", s.dfind]);
  if (!s.dover) out.push(["dover", "0"]);
  return out;
}

/** Decodes state from URL parameters; null when they carry no state key. */
export function decodeState(params: URLSearchParams): ViewState | null {
  if (!STATE_KEYS.some((k) => params.has(k))) return null;
  const s = defaultState();
  s.logdir = normalizeLogdir(params.get("logdir") ?? "");
  const runs = params.getAll("run");
  if (runs.length || params.has("norun")) s.runs = runs;
  s.tags = params.getAll("tag");
  const x = params.get("x");
  if (x && (x === "step" || x === "relative" || x === "wall_time" || (x.startsWith("tag:") && x.length > 4))) s.x = x;
  s.xlog = params.get("xlog") === "1";
  s.ylog = params.get("ylog") === "1";
  s.outliers = params.get("outliers") !== "0";
  const smooth = params.get("smooth") ?? "";
  const m = /^(ema|median):(.*)$/.exec(smooth);
  if (m) {
    const v = Number(m[2]);
    if (m[1] === "ema" && v >= 0 && v < 1) {
      s.smooth = "ema";
      s.weight = v;
    } else if (m[1] === "median" && Number.isInteger(v) && v >= 1) {
      s.smooth = "median";
      s.window = v % 2 ? v : v + 1;
    }
  }
  s.dim = params.get("dim") ?? "";
  s.hl = s.dim ? params.get("hl") : null;
  s.pins = params.getAll("pin").filter((p) => p);
  const sep = params.get("sep");
  if (sep !== null && SEPARATOR_CHOICES.includes(sep)) s.sep = sep;
  if (params.has("group")) {
    s.group = params.get("group") ?? "";
    const page = Number(params.get("gpage"));
    s.gpage = Number.isInteger(page) && page > 0 ? page : 0;
    s.gfilter = params.get("gfilter") ?? "";
    const mode = params.get("gmode");
    if (mode === "glob" || mode === "regex") s.gmode = mode;
  }
  const refresh = Number(params.get("refresh"));
  if (params.has("refresh") && REFRESH_CHOICES.some(([v]) => v === refresh)) s.refresh = refresh;
  s.tagOpts = parseJson(params.get("topt") ?? "", isOptsMap) ?? {};
  s.custom = params.getAll("custom").map((v) => parseJson(v, isCustom)).filter((v): v is CustomSpec => v !== null);
  s.agg = params.getAll("agg").map((v) => parseJson(v, isAgg)).filter((v): v is AggSpec => v !== null);
  s.cmp = params.getAll("cmp").map((v) => parseJson(v, isCmp)).filter((v): v is CmpSpec => v !== null);
  s.eval = params.get("eval") === "1";
  const erun = params.get("erun");
  const etag = params.get("etag");
  if (erun !== null && etag !== null) {
    s.erun = erun;
    s.etag = etag;
    const estep = Number(params.get("estep") ?? "");
    if (params.get("estep") && Number.isInteger(estep)) s.estep = estep;
  }
  s.elogy = params.get("elogy") === "1";
  s.trace = params.get("trace") === "1";
  s.trun = params.get("trun") || null;
  s.ttag = params.get("ttag") || null;
  s.tstat = params.get("tstat") || null;
  s.diag = params.get("diag") === "1";
  const dsev = params.get("dsev");
  if (dsev !== null) s.dsev = DIAG_SEVERITIES.filter((v) => dsev.split(",").includes(v));
  const dscope = params.get("dscope") ?? "";
  if (dscope === "all" || (dscope.startsWith("run:") && dscope.length > 4)) s.dscope = dscope;
  s.dfind = params.get("dfind") || null;
  s.dover = params.get("dover") !== "0";
  return s;
}

/** The parent's window when it is TensorBoard on the same origin (its location is readable), else null. */
function reachableParent(): Window | null {
  if (window.parent === window) return null;
  try {
    void window.parent.location.hash; // throws across origins
    return window.parent;
  } catch {
    return null;
  }
}

/** Parameters of the hash "#tb_plus&p.tb_plus.run=a&..." with the prefix removed. */
function hashParams(hash: string): URLSearchParams {
  const out = new URLSearchParams();
  const raw = new URLSearchParams(hash.replace(/^#/, ""));
  for (const [k, v] of raw) if (k.startsWith(HASH_PREFIX)) out.append(k.slice(HASH_PREFIX.length), v);
  return out;
}

function fromStorage(): ViewState | null {
  try {
    const raw = window.localStorage.getItem(STORAGE_KEY);
    if (raw) return decodeState(new URLSearchParams(raw));
    const old = window.localStorage.getItem(OLD_STORAGE_KEY);
    if (old) {
      const v = JSON.parse(old) as { tags?: unknown; runs?: unknown };
      const s = defaultState();
      if (Array.isArray(v.tags)) s.tags = v.tags.filter((t): t is string => typeof t === "string");
      if (Array.isArray(v.runs)) s.runs = v.runs.filter((t): t is string => typeof t === "string");
      return s;
    }
  } catch {
    // storage blocked (cross-site iframe) or garbage
  }
  return null;
}

/** Loads the state: from the URL (own query string, or the parent's hash), else localStorage, else defaults.
 * The refresh interval falls back to the saved one when the URL does not name it. */
export function loadState(): ViewState {
  const parent = reachableParent();
  const params = parent ? hashParams(parent.location.hash) : new URLSearchParams(window.location.search);
  const stored = fromStorage();
  const fromUrl = decodeState(params);
  if (fromUrl) {
    if (!params.has("refresh") && stored) fromUrl.refresh = stored.refresh;
    return fromUrl;
  }
  return stored ?? defaultState();
}

/** Whether a view was saved or linked: the URL names any state key other than the log directory and the
 * refresh interval, or localStorage holds a state. Without one, the app opens its first view (the key
 * series). Call before the first `saveState`. */
export function hasSavedState(): boolean {
  const parent = reachableParent();
  const params = parent ? hashParams(parent.location.hash) : new URLSearchParams(window.location.search);
  if (STATE_KEYS.some((k) => k !== "logdir" && k !== "refresh" && params.has(k))) return true;
  try {
    return Boolean(window.localStorage.getItem(STORAGE_KEY) || window.localStorage.getItem(OLD_STORAGE_KEY));
  } catch {
    return false;
  }
}

/** Keys whose change alone replaces the current history entry instead of adding one (a slider's steps,
 * the refresh interval, the evaluation's step, a group search being typed). */
const REPLACE_KEYS = new Set(["smooth", "refresh", "estep", "gfilter", "gmode", "gpage"]);
/** The state as last written to (or read from) the URL; null before the first write. */
let lastPairs: [string, string][] | null = null;

/** Whether going from `a` to `b` is worth a history entry (Back returns to `a`). */
function isStep(a: [string, string][], b: [string, string][]): boolean {
  const keys = new Set([...a, ...b].map(([k]) => k));
  const joined = (pairs: [string, string][], k: string): string => pairs.filter(([kk]) => kk === k).map(([, v]) => v).join("\u0000");
  for (const k of keys) if (!REPLACE_KEYS.has(k) && joined(a, k) !== joined(b, k)) return true;
  return false;
}

/** The URL the view is linked by: TensorBoard's page (with the state in its hash) inside its tab, else this
 * page's own URL (the standalone page, also inside another site's iframe). */
export function viewLink(): string {
  const parent = reachableParent();
  return parent ? parent.location.href : window.location.href;
}

/**
 * Writes the state to localStorage and to the URL: TensorBoard's hash inside its tab, else this page's
 * query string (also inside another site's iframe, where only the iframe's own address changes). A change
 * of what is shown (charts, runs, axes, panels, ...) adds a history entry, so Back returns to the view
 * before it and stays inside TensorBoard; a change of a REPLACE_KEYS setting, the first write of a page
 * and a `replace` write (the app's own choices, e.g. the first view's charts) replace the current entry.
 */
export function saveState(s: ViewState, replace = false): void {
  const pairs = encodeState(s);
  const qs = new URLSearchParams(pairs).toString();
  try {
    window.localStorage.setItem(STORAGE_KEY, qs);
  } catch {
    // ignore
  }
  const push = !replace && lastPairs !== null && isStep(lastPairs, pairs);
  const parent = reachableParent();
  try {
    if (parent) {
      // Keep TensorBoard's own hash keys (the first is the active plugin), replace ours.
      const keep = parent.location.hash
        .replace(/^#/, "")
        .split("&")
        .filter((p) => p && !p.startsWith(HASH_PREFIX) && !p.startsWith(encodeURIComponent(HASH_PREFIX)));
      if (!keep.length) keep.push("tb_plus");
      const ours = new URLSearchParams(pairs.map(([k, v]) => [HASH_PREFIX + k, v])).toString();
      const hash = "#" + [...keep, ours].filter((p) => p).join("&");
      if (parent.location.hash !== hash) {
        if (push) parent.history.pushState(null, "", hash);
        else parent.history.replaceState(parent.history.state, "", hash);
      }
    } else {
      const url = `${window.location.pathname}${qs ? "?" + qs : ""}${window.location.hash}`;
      if (url !== `${window.location.pathname}${window.location.search}${window.location.hash}`) {
        // Inside another site's iframe an entry would be the embedding page's Back: replace only.
        if (push && window.parent === window) window.history.pushState(null, "", url);
        else window.history.replaceState(window.history.state, "", url);
      }
    }
  } catch {
    // history blocked: localStorage still has it
  }
  lastPairs = pairs;
}

/**
 * Calls `onChange` when the URL comes to name another view than the one last written: Back or Forward,
 * a pasted link, a hash edited by hand (TensorBoard's hash inside its tab, this page's URL standalone).
 * Not inside another site's iframe (its address belongs to the embedding page).
 */
export function watchUrl(onChange: () => void): void {
  const parent = reachableParent();
  if (!parent && window.parent !== window) return;
  const target: Window = parent ?? window;
  const check = (): void => {
    if (lastPairs === null) return;
    let params: URLSearchParams;
    try {
      params = parent ? hashParams(parent.location.hash) : new URLSearchParams(window.location.search);
    } catch {
      return;
    }
    const linked = decodeState(params);
    if (!linked) return; // no view named (e.g. TensorBoard's bare "#tb_plus"): keep this one
    if (!params.has("refresh")) linked.refresh = decodeState(new URLSearchParams(lastPairs))?.refresh ?? linked.refresh;
    const a = new URLSearchParams(encodeState(linked)).toString();
    if (a !== new URLSearchParams(lastPairs).toString()) onChange();
  };
  const events = ["hashchange", "popstate"];
  for (const e of events) target.addEventListener(e, check);
  // A listener on the parent outlives this document: remove it when the frame goes.
  if (parent) window.addEventListener("pagehide", () => events.forEach((e) => target.removeEventListener(e, check)));
}

const RECENT_KEY = "tb_plus.logdirs.recent";
/** Recently used log directories kept at most. */
export const RECENT_MAX = 10;

/** A typed log directory without trailing slashes ("/" stays); null when empty. */
export function normalizeLogdir(raw: string): string | null {
  const t = raw.trim();
  if (!t) return null;
  const stripped = t.replace(/\/+$/, "");
  return stripped || "/";
}

/** Recently opened log directories, newest first ([] when storage is blocked or holds garbage). */
export function loadRecentLogdirs(): string[] {
  try {
    const raw = window.localStorage.getItem(RECENT_KEY);
    const v = raw ? (JSON.parse(raw) as unknown) : [];
    return Array.isArray(v) ? v.filter((p): p is string => typeof p === "string" && p.length > 0).slice(0, RECENT_MAX) : [];
  } catch {
    return [];
  }
}

/** Puts `path` first in the recent list (kept to RECENT_MAX); returns the new list. */
export function rememberLogdir(path: string): string[] {
  const list = [path, ...loadRecentLogdirs().filter((p) => p !== path)].slice(0, RECENT_MAX);
  try {
    window.localStorage.setItem(RECENT_KEY, JSON.stringify(list));
  } catch {
    // storage blocked (another site's iframe): the list lives for this page only
  }
  return list;
}
