#!/usr/bin/env python
"""Streaming AUC / AP accuracy, speed and memory: tb_plus's accumulator beside scikit-learn (exact),
tf.keras.metrics.AUC (200 and 10,000 thresholds) and torchmetrics (200 thresholds).

    python bench/bench_evaluation.py [--sizes 1e5,1e6,1e7] [--big 1e8] [--skip-slow] [--smoke]

Data: two overlapping Gaussians in logit space (positives shifted by +1), scores = sigmoid(logit *
spread); "moderate" spread 1, "extreme" spread 8 (most probabilities within 1e-3 of 0 or 1);
"balanced" 1:1 and "1:100" positives. Each method runs in its own process, once per size; the
table gives |AUC - exact| and |AP - exact| (TF's PR curve AUC stands for AP), samples/s of
update + result, of the updates alone on a fresh accumulator (its first touches of the count pages
included), and, for tb_plus, of the updates on an accumulator reused after reset() (the steady
state of streaming evaluations), and the peak memory above the resident input arrays (RSS sampled every 2 ms).
The exact values are scikit-learn's roc_auc_score and average_precision_score (for --big, an
exact sort-based computation in numpy, since scikit-learn would need tens of GB there). A method whose
package is not installed is left out (a line says so); without scikit-learn the numpy computation is the
reference. --smoke: the first data case only, n = 1e4 (and 3e4 for the fast methods), tf.keras with 200
thresholds only.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CASES = {"balanced/moderate": (0.5, 1.0), "1:100/moderate": (0.01, 1.0),
         "balanced/extreme": (0.5, 8.0), "1:100/extreme": (0.01, 8.0)}
BATCH = 1_000_000


def data(n, case, seed=0):
    import numpy as np

    frac, spread = CASES[case]
    rng = np.random.default_rng(seed)
    y = rng.random(n) < frac
    z = rng.standard_normal(n, dtype=np.float32)
    z += y
    z *= spread
    s = 1 / (1 + np.exp(-z.astype(np.float64)))
    return s, y


def run_tbplus(s, y):
    from tb_plus.evaluation import BinaryAccumulator

    acc = BinaryAccumulator("probability")
    t0 = time.perf_counter()
    for i in range(0, len(s), 10 * BATCH):
        acc.update(s[i : i + 10 * BATCH], y[i : i + 10 * BATCH])
    counted = time.perf_counter() - t0
    return acc.auc(), acc.average_precision(), counted


def warm_rate(s, y):
    """M samples/s of update() on an accumulator reused after reset() (its count pages already
    mapped: the steady state of one accumulator per evaluation, step after step)."""
    from tb_plus.evaluation import BinaryAccumulator

    acc = BinaryAccumulator("probability").update(s, y)
    acc.reset()
    t0 = time.perf_counter()
    for i in range(0, len(s), 10 * BATCH):
        acc.update(s[i : i + 10 * BATCH], y[i : i + 10 * BATCH])
    return len(s) / (time.perf_counter() - t0) / 1e6


def run_sklearn(s, y):
    from sklearn.metrics import average_precision_score, roc_auc_score

    return roc_auc_score(y, s), average_precision_score(y, s), None


def run_exact(s, y):
    import numpy as np

    uniq, inv = np.unique(s, return_inverse=True)
    neg = np.bincount(inv, weights=~y, minlength=len(uniq))
    pos = np.bincount(inv, weights=y, minlength=len(uniq))
    below = np.cumsum(neg) - neg
    auc = float(np.dot(pos, below + 0.5 * neg) / (pos.sum() * neg.sum()))
    tp = np.cumsum(pos[::-1])
    n = np.cumsum((pos + neg)[::-1])
    ap = float(np.dot(np.diff(tp / pos.sum(), prepend=0.0), tp / n))
    return auc, ap, None


def run_tf(thresholds):
    def run(s, y):
        import tensorflow as tf

        roc = tf.keras.metrics.AUC(num_thresholds=thresholds, curve="ROC")
        pr = tf.keras.metrics.AUC(num_thresholds=thresholds, curve="PR")
        t0 = time.perf_counter()
        for i in range(0, len(s), BATCH):
            ys, ss = y[i : i + BATCH].astype("float32"), s[i : i + BATCH].astype("float32")
            roc.update_state(ys, ss)
            pr.update_state(ys, ss)
        counted = time.perf_counter() - t0
        return float(roc.result()), float(pr.result()), counted

    return run


def run_torchmetrics(s, y):
    import torch
    from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision

    roc = BinaryAUROC(thresholds=200)
    ap = BinaryAveragePrecision(thresholds=200)
    t0 = time.perf_counter()
    for i in range(0, len(s), BATCH):
        ss = torch.from_numpy(s[i : i + BATCH]).float()
        yy = torch.from_numpy(y[i : i + BATCH]).long()
        roc.update(ss, yy)
        ap.update(ss, yy)
    counted = time.perf_counter() - t0
    return float(roc.compute()), float(ap.compute()), counted


METHODS = {
    "exact": run_exact,
    "tb_plus": run_tbplus,
    "sklearn": run_sklearn,
    "tf200": run_tf(200),
    "tf10k": run_tf(10_000),
    "torchmetrics": run_torchmetrics,
}
LABELS = {"tb_plus": "tb_plus (float-bit buckets)", "sklearn": "scikit-learn (exact)",
          "tf200": "tf.keras AUC, 200 thresholds", "tf10k": "tf.keras AUC, 10,000 thresholds",
          "torchmetrics": "torchmetrics, 200 thresholds", "exact": "exact (numpy sort)"}


def child(method, case, sizes):
    import psutil

    proc = psutil.Process()
    fn = METHODS[method]
    s, y = data(1000, case)
    fn(s, y)  # imports and first-call costs out of the timings
    out = []
    for n in sizes:
        s, y = data(n, case)
        base = proc.memory_info().rss
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], proc.memory_info().rss)
                stop.wait(0.002)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        t0 = time.perf_counter()
        auc, ap, counted = fn(s, y)
        dt = time.perf_counter() - t0
        stop.set()
        th.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
        row = {"n": n, "auc": auc, "ap": ap, "seconds": dt, "update_seconds": counted,
               "peak_mb": (peak[0] - base) / 2**20}
        if method == "tb_plus":
            row["warm"] = warm_rate(s, y)
        out.append(row)
        del s, y
    print(json.dumps(out))


def spawn(method, case, sizes, timeout):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", method, case, ",".join(str(n) for n in sizes)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {n: {"error": "timeout"} for n in sizes}
    if r.returncode != 0:
        return {n: {"error": r.stderr.strip().splitlines()[-1][:80] if r.stderr.strip() else "failed"} for n in sizes}
    return {row["n"]: row for row in json.loads(r.stdout.strip().splitlines()[-1])}


NEEDS = {"sklearn": "sklearn", "tf200": "tensorflow", "tf10k": "tensorflow", "torchmetrics": "torchmetrics"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    ap.add_argument("--big", default="1e8", help="size for the fast methods only ('' to skip)")
    ap.add_argument("--skip-slow", action="store_true", help="leave out torchmetrics and tf 10k at 1e7")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    sys.path.insert(0, HERE)
    from _common import add_smoke_flag, left_out, missing

    add_smoke_flag(ap)
    args = ap.parse_args()
    if args.child:
        method, case, sizes = args.child
        child(method, case, [int(float(x)) for x in sizes.split(",")])
        return
    from bench_render import machine

    cases = list(CASES)
    if args.smoke:  # one data case: the others differ in the data only
        args.sizes, args.big, cases = "1e4", "3e4", cases[:1]
    sizes = [int(float(x)) for x in args.sizes.split(",") if x]
    big = [int(float(args.big))] if args.big else []
    absent = {}
    for method, module in NEEDS.items():
        if missing(module):
            absent[method] = "%s is not installed" % module
    if args.smoke and "tf10k" not in absent:  # a TensorFlow start costs seconds
        absent["tf10k"] = "smoke: the same code path as 200 thresholds"
    for method in sorted(absent, key=list(LABELS).index):
        left_out(LABELS[method], absent[method])
    reference = "exact" if "sklearn" in absent else "sklearn"
    print("machine:", machine())
    print("targets: |AUC error| <= 1e-6, |AP error| <= 1e-4, >= 50 M samples/s, memory independent of n\n")
    failed = []
    for case in cases:
        print(f"### {case}\n")
        print("| method | n | |AUC - exact| | |AP - exact| | M samples/s | update only, M samples/s | reused accumulator, M samples/s | peak MB |")
        print("|---|---|---|---|---|---|---|---|")
        ref = spawn(reference, case, sizes, 1800)
        if big:
            ref.update(spawn("exact", case, big, 1800))
        for method in ("tb_plus", "sklearn", "tf200", "tf10k", "torchmetrics"):
            ns = sizes + (big if method in ("tb_plus", "tf200") else [])
            if args.skip_slow and method in ("torchmetrics", "tf10k"):
                ns = [n for n in ns if n < 10_000_000]
            if method in absent:
                res = {n: {"error": "left out: " + absent[method]} for n in ns}
            else:
                res = ref if method == reference else spawn(method, case, ns, 3600)
            for n in ns:
                r, e = res.get(n, {"error": "missing"}), ref.get(n, {})
                if "error" in r or "auc" not in e:
                    print(f"| {LABELS[method]} | {n:.0e} | {r.get('error', 'no reference')} | | | | | |")
                    if method not in absent:
                        failed.append("%s n=%d: %s" % (method, n, r.get("error", "no reference")))
                    continue
                upd = r.get("update_seconds")
                print("| %s | %.0e | %.1e | %.1e | %.1f | %s | %s | %.0f |" % (
                    LABELS[method], n, abs(r["auc"] - e["auc"]), abs(r["ap"] - e["ap"]),
                    n / r["seconds"] / 1e6, "%.1f" % (n / upd / 1e6) if upd else "-",
                    "%.1f" % r["warm"] if "warm" in r else "-", r["peak_mb"]))
            sys.stdout.flush()
        print()
    if args.smoke and failed:
        print("failed: %s" % ", ".join(failed))
        return 1  # on tiny data every installed method must work
    return 0


if __name__ == "__main__":
    sys.exit(main())
