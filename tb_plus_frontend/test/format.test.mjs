// Unit tests of src/format.ts: node --test test/ (esbuild compiles the module to a temporary file).
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildSync } from "esbuild";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = buildSync({ entryPoints: [path.join(here, "..", "src", "format.ts")], bundle: true, format: "esm", write: false });
const file = path.join(mkdtempSync(path.join(tmpdir(), "tbp-format-")), "format.mjs");
writeFileSync(file, out.outputFiles[0].text);
const f = await import(pathToFileURL(file).href);

/** Ticks over [lo, hi] as the chart makes them: a nice step for ~5 ticks. */
function ticks(lo, hi, n = 5) {
  const incr = f.niceStep((hi - lo) / n);
  const splits = f.linearSplits(lo, hi, incr);
  return { splits, ...f.linearTicks(splits, incr) };
}

function checkTicks(lo, hi) {
  const t = ticks(lo, hi);
  assert.ok(t.splits.length >= 2, `${lo}..${hi}: ${t.splits}`);
  assert.equal(new Set(t.labels).size, t.labels.length, `distinct: ${t.labels}`);
  const step = t.splits[1] - t.splits[0];
  t.labels.forEach((l, i) => {
    assert.ok(l.length > 0 && l.length <= 10, `label ${l}`);
    const v = Number(l) + (t.offset ?? 0);
    assert.ok(Math.abs(v - t.splits[i]) <= step * 0.01 + Math.abs(t.splits[i]) * 1e-15, `${l} (+${t.offset}) vs ${t.splits[i]}`);
  });
  return t;
}

test("ticks at every magnitude are distinct, short and read back", () => {
  for (const [lo, hi] of [
    [3e-5, 3e-4], [1e-25, 3e-25], [1e-20, 1.5e-20], [-2e-30, 5e-30], [0.1, 2], [0, 1.46e35], [1e17, 1e17 + 64],
    [1 - 1e-6, 1 + 1e-6], [0.999999, 1], [1 - 2e-9, 1 - 1e-9], [0, 2e7], [-5, 5], [1e37, 3e38], [0, 1], [1e-300, 3e-300],
    [123456, 123457], [-1e35, 0],
  ]) checkTicks(lo, hi);
});

test("exponent labels and offsets", () => {
  assert.deepEqual(ticks(0, 3e-4, 3).labels.slice(0, 2), ["0", "1e-4"]);
  const acc = checkTicks(1 - 1e-6, 1 + 1e-6);
  assert.equal(acc.offset, 1);
  assert.equal(acc.offsetText, "+1");
  assert.ok(acc.labels.includes("0"), acc.labels);
  const big = checkTicks(1e17, 1e17 + 64);
  assert.equal(big.offsetText, "+1e17");
  assert.deepEqual(ticks(0, 2e7, 4).labels, ["0", "5e6", "1e7", "1.5e7", "2e7"]);
  assert.deepEqual(ticks(0, 1, 4).labels, ["0.00", "0.25", "0.50", "0.75", "1.00"]);
});

test("log labels, ranges and ticks", () => {
  assert.equal(f.logLabel(1e-20), "1e-20");
  assert.equal(f.logLabel(0.01), "0.01");
  assert.equal(f.logLabel(1e3), "1000");
  assert.equal(f.logLabel(1e20), "1e20");
  assert.deepEqual(f.logRange(1e-25, 3e-22), [1e-25, 1e-21]);
  const [lo, hi] = f.logRange(5e-324, 1);
  assert.ok(lo > 0 && lo <= 5e-324 && hi === 1);
  const t = f.logTicks(lo, hi, 8);
  assert.ok(t.length >= 2 && t.length <= 9 && t.every((v) => v > 0), String(t));
  assert.ok(t.map(f.logLabel).every((l) => l.length <= 10));
});

test("compact legend values", () => {
  assert.equal(f.formatCompact(123.5), "123.5");
  assert.equal(f.formatCompact(3e-5), "3e-5");
  assert.equal(f.formatCompact(1.46e35), "1.46e35");
  assert.equal(f.formatCompact(1e21), "1e21");
  assert.equal(f.formatCompact(0.123456789012), "0.12345679");
  assert.equal(f.formatCompact(NaN), "NaN");
  assert.equal(f.formatCompact(1.2345678901234e-20), "1.2345679e-20");
});

test("subnormal decades and big offsets", () => {
  assert.equal(f.logLabel(Number("1e-320")), "1e-320");
  const t = f.linearTicks([1e17, 1e17 + 5008, 1e17 + 10000], 5000);
  assert.equal(t.offset, 1e17);
  assert.deepEqual(t.labels, ["0", "5008", "10000"]);
});
