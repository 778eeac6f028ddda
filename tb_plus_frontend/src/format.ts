// Number formatting shared by chart axes, legends and tables. Pure functions (no DOM): unit-tested with
// `node --test` (format.test.mjs) and through the browser tests.
//
// - `formatValue`: exact and compact (the shortest text that reads back as the same float32 / float64).
// - `formatCompact`: a legend value: at most `sig` significant digits, exponent notation ("3e-5", "1.5e17")
//   for tiny and huge magnitudes.
// - `linearTicks`: labels of evenly spaced ticks: never more digits than distinguish the ticks, plain
//   decimals for ordinary magnitudes, exponents below 1e-3 and from 1e6, and, where the ticks differ only
//   far after their leading digits (accuracy 0.999999 .. 1.000001, 1e17 + small), an offset as matplotlib
//   does: labels "-5e-7, 0, 5e-7" and the offset "+1" written beside the axis.
// - `logTicks` / `logLabel`: decade ticks of a log axis, labelled "1e-20", "0.01", "1e3".
// - `niceIncrs`: tick increments 1, 2, 2.5, 5 x 10^k for every float64 magnitude.

/** The longest tick label wanted (characters). */
export const MAX_TICK_CHARS = 10;

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

/** `v` in exponent notation with `digits` mantissa decimals, trailing zeros dropped: 1.50e+17 -> "1.5e17". */
export function expo(v: number, digits: number): string {
  const s = v.toExponential(Math.max(0, Math.min(20, digits)));
  const [m, e] = s.split("e");
  const mant = m.includes(".") ? m.replace(/0+$/, "").replace(/\.$/, "") : m;
  return `${mant}e${e.replace(/^\+/, "")}`;
}

/** Whether a magnitude is written with an exponent (below 1e-3 or from 1e6; 0 never). */
function wantsExponent(abs: number): boolean {
  return abs !== 0 && (abs < 1e-3 || abs >= 1e6);
}

/**
 * A compact value for legends and tables: non-finite by name, at most `sig` significant digits, exponent
 * notation for magnitudes below 1e-4 or from 1e9 (integers below 1e9 in full).
 */
export function formatCompact(v: number, sig = 8): string {
  if (!Number.isFinite(v)) return formatValue(v);
  if (v === 0) return "0";
  const abs = Math.abs(v);
  if (abs < 1e-4 || abs >= 1e9) {
    const exact = formatValue(v);
    // the exact text when it is already short (3e-5, 1e+35 -> 1e35)
    const short = exact.replace("e+", "e");
    const digits = short.replace(/^-/, "").split("e")[0].replace(".", "").replace(/^0+/, "").length;
    if (short.includes("e") && digits <= sig) return short;
    return expo(v, sig - 1);
  }
  if (Number.isInteger(v)) return String(v);
  const exact = formatValue(v);
  const digits = exact.replace(/^-/, "").replace(".", "").replace(/^0+/, "").length;
  if (digits <= sig && !exact.includes("e")) return exact;
  return String(Number(v.toPrecision(sig)));
}

/** Decimal places needed to write `n` (0.25 -> 2, 2.5 -> 1, 10 -> 0, 5e-7 -> 7). */
export function decimalsOf(n: number): number {
  const s = String(Number(Math.abs(n).toPrecision(10)));
  const e = /e-(\d+)$/.exec(s);
  if (e) {
    const mant = s.split("e")[0];
    return Number(e[1]) + (mant.includes(".") ? mant.split(".")[1].length : 0);
  }
  if (s.includes("e")) return 0;
  return s.includes(".") ? s.split(".")[1].length : 0;
}

export interface TickLabels {
  labels: string[];
  /** The value added to every label (null: none), and its text ("+1", "+1e17", "-100"). */
  offset: number | null;
  offsetText: string;
}

/** Labels of ticks in exponent notation: the fewest mantissa digits that keep each within 1% of a step. */
function exponentLabels(splits: number[], step: number): string[] {
  for (let d = 0; d <= 16; d++) {
    const labels = splits.map((v) => (v === 0 || Math.abs(v) < step * 1e-9 ? "0" : expo(v, d)));
    if (labels.every((l, i) => Math.abs(Number(l) - splits[i]) <= step * 0.01)) return labels;
  }
  return splits.map((v) => String(v));
}

function plainLabels(splits: number[], step: number): string[] {
  const dec = Math.min(20, decimalsOf(step));
  return splits.map((v) => {
    const s = v.toFixed(dec);
    return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
  });
}

/**
 * Labels of the evenly spaced ticks `splits` (`incr` apart; 0: from the splits). With `allowOffset`, ticks
 * that share many leading digits are written as differences from an offset (returned with its text).
 */
export function linearTicks(splits: number[], incr: number, allowOffset = true): TickLabels {
  const none: TickLabels = { labels: [], offset: null, offsetText: "" };
  const vals = splits.filter((v) => v != null && Number.isFinite(v));
  if (!vals.length) return { ...none, labels: splits.map(() => "") };
  let step = incr > 0 && Number.isFinite(incr) ? incr : 0;
  if (!step && vals.length > 1) step = Math.abs(vals[1] - vals[0]);
  if (!step) step = Math.abs(vals[0]) || 1;
  let maxAbs = 0;
  for (const v of vals) maxAbs = Math.max(maxAbs, Math.abs(v));
  if (allowOffset && maxAbs / step >= 1e6) {
    const lo = Math.min(...vals);
    const hi = Math.max(...vals);
    const span = Math.max(hi - lo, step);
    const p = Math.pow(10, Math.floor(Math.log10(span)) + 1);
    const mid = (lo + hi) / 2;
    let offset = Math.round(mid / p) * p;
    offset = Number(offset.toPrecision(15));
    if (offset !== 0 && Number.isFinite(offset)) {
      const inner = linearTicks(splits.map((v) => (v == null ? v : v - offset)), step, false);
      const text = formatCompact(Math.abs(offset), 12);
      return { labels: inner.labels, offset, offsetText: `${offset < 0 ? "−" : "+"}${text}` };
    }
  }
  let labels: string[];
  if (wantsExponent(maxAbs)) labels = exponentLabels(splits, step);
  else {
    labels = plainLabels(splits, step);
    if (labels.some((l) => l.length > MAX_TICK_CHARS)) labels = exponentLabels(splits, step);
  }
  return { labels: splits.map((v, i) => (v == null ? "" : labels[i])), offset: null, offsetText: "" };
}

/** A log axis tick label: plain from 1e-3 to below 1e6 ("0.01", "500"), else exponents ("1e-20", "2e7"). */
export function logLabel(v: number): string {
  if (v == null || !Number.isFinite(v)) return "";
  if (v === 0) return "0";
  const abs = Math.abs(v);
  if (!wantsExponent(abs)) return String(Number(v.toPrecision(6)));
  // the shortest text of the double when short (subnormal decades: 1e-320 is 9.99989e-321 to 6 digits)
  const short = String(v).replace("e+", "e");
  if (short.includes("e") && short.split("e")[0].replace(/[-.]/g, "").length <= 6) return short;
  return expo(v, 5);
}

/** Exact power of ten 10^e (clamped to the float64 range: 5e-324 .. 1e308). */
export function decade(e: number): number {
  if (e < -323) return Number.MIN_VALUE;
  if (e > 308) return 1e308;
  return Number(`1e${e}`);
}

/** The log range of positive values [min, max]: whole decades around them, within float64. */
export function logRange(min: number, max: number): [number, number] {
  if (!(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) return [1, 10];
  let lo = Math.floor(Math.log10(min));
  let hi = Math.ceil(Math.log10(max));
  // log10 may round: keep the data inside
  while (lo > -324 && decade(lo) > min) lo--;
  while (hi < 308 && decade(hi) < max) hi++;
  if (hi <= lo) {
    lo -= 1;
    hi += 1;
  }
  return [decade(lo), decade(Math.min(hi, 308))];
}

/** Ticks of a log axis over [min, max]: decades (every k-th one when there are more than `maxTicks`),
 * with 2 and 5 times each decade when there is room. */
export function logTicks(min: number, max: number, maxTicks: number): number[] {
  if (!(min > 0) || !(max > min)) return [];
  const e0 = Math.ceil(Math.log10(min) - 1e-9);
  const e1 = Math.floor(Math.log10(max) + 1e-9);
  const n = e1 - e0 + 1;
  const limit = Math.max(2, maxTicks);
  const out: number[] = [];
  if (n <= 0) {
    // within one decade: 1, 2, 5 multiples
    for (let e = e0 - 1; e <= e1 + 1; e++)
      for (const m of [1, 2, 5]) {
        const v = m * decade(e);
        if (v >= min * (1 - 1e-12) && v <= max * (1 + 1e-12)) out.push(Number(v.toPrecision(12)));
      }
    return out;
  }
  if (n * 3 <= limit) {
    for (let e = e0 - 1; e <= e1; e++)
      for (const m of [1, 2, 5]) {
        const v = e < -307 ? decade(e) * m : Number(`${m}e${e}`);
        if (v >= min * (1 - 1e-12) && v <= max * (1 + 1e-12)) out.push(v);
      }
    return out;
  }
  const k = Math.max(1, Math.ceil(n / limit));
  const first = Math.ceil(e0 / k) * k;
  for (let e = first; e <= e1; e += k) out.push(decade(e));
  return out;
}

/** Tick increments 1, 2, 2.5, 5 x 10^k for every float64 magnitude (ascending). */
export function niceIncrs(integer = false): number[] {
  const out: number[] = [];
  for (let e = integer ? 0 : -323; e <= 307; e++) {
    for (const m of [1, 2, 2.5, 5]) {
      if (integer && e === 0 && m === 2.5) continue;
      const v = Number(`${m}e${e}`);
      if (v > 0 && Number.isFinite(v)) out.push(v);
    }
  }
  return out;
}

/** The nice increment (1, 2, 2.5, 5 x 10^k) at least `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const e = Math.floor(Math.log10(raw));
  for (let k = e - 1; k <= e + 1; k++) {
    for (const m of [1, 2, 2.5, 5]) {
      const v = Number(`${m}e${k}`);
      if (v >= raw * (1 - 1e-12)) return v;
    }
  }
  return Number(`1e${e + 1}`);
}

/** Evenly spaced ticks k * incr inside [min, max] (k integer: no accumulated float error). */
export function linearSplits(min: number, max: number, incr: number): number[] {
  if (!(incr > 0) || !Number.isFinite(min) || !Number.isFinite(max) || max < min) return [];
  const k0 = Math.ceil(min / incr - 1e-9);
  const k1 = Math.floor(max / incr + 1e-9);
  const out: number[] = [];
  if (k1 - k0 > 1000) return out;
  for (let k = k0; k <= k1; k++) {
    const v = k * incr;
    out.push(v === 0 ? 0 : v);
  }
  return out;
}

/** The q-quantile (0..1) of ascending `sorted` (linear interpolation). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = (n - 1) * q;
  const i = Math.floor(pos);
  const f = pos - i;
  if (i + 1 >= n) return sorted[n - 1];
  return sorted[i] + (sorted[i + 1] - sorted[i]) * f;
}
