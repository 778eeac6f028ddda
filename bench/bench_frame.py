#!/usr/bin/env python
"""Every scalar of a log directory as one pandas DataFrame: tb_plus's Logdir.frame beside tbparse.

For the generated 500 MB and 2 GB log directories of the store benchmark (bench/gen_logdir.py: 8 runs x
300 scalar tags in torch, tensorboardX and tf.summary styles, plus histograms), each case runs in a child
process of its own, and prints its seconds, rows and peak resident memory (ru_maxrss: the interpreter
and pandas included, the same for both):

  tbparse       SummaryReader(LOGDIR, extra_columns={"dir_name", "wall_time"}, event_types={"scalars",
                "tensors"}): tf.summary writes scalars as rank-0 tensors, which tbparse puts in
                `tensors`, so its `scalars` and the rank-0 rows of its `tensors` are concatenated into one
                frame (the least a user must read to get every scalar). tbparse keeps no index: it is
                as fast the second time.
  tb_plus cold  Logdir(LOGDIR, cache_dir=<empty>).frame(): indexing included.
  tb_plus warm  the same again, the index already built (a new process: nothing held in memory).

The event files are in the page cache for every case (each size is read once before). Both sides'
row counts are printed; they must agree. Targets (issue 21): cold >= 10x faster than tbparse, warm >=
100x, peak memory <= 1/4 of tbparse's.

    python bench/bench_frame.py                 # 500 MB and 2 GB (tbparse takes minutes on each)
    python bench/bench_frame.py --sizes 0.5     # the 500 MB directory only
    python bench/bench_frame.py --smoke         # tiny sizes, seconds; the figures mean nothing
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import _common  # noqa: E402

CHILD = r"""
import json, os, resource, sys, time
kind, logdir, cache = sys.argv[1:4]
import numpy as np
import pandas as pd
if kind == "tbparse":
    from tbparse import SummaryReader  # imports TensorFlow when it is installed: outside the timing
else:
    from tb_plus.store import Logdir
t0 = time.perf_counter()
if kind == "tbparse":
    r = SummaryReader(logdir, extra_columns={"dir_name", "wall_time"}, event_types={"scalars", "tensors"})
    parts = [r.scalars]
    t = r.tensors
    if len(t):
        t = t[[np.ndim(v) == 0 for v in t["value"]]]
        t = t.assign(value=[float(v) for v in t["value"]])
        parts.append(t)
    df = pd.concat([p for p in parts if len(p)], ignore_index=True)
else:
    df = Logdir(logdir, cache_dir=cache).frame()
seconds = time.perf_counter() - t0
rows = len(df)
print(json.dumps({"seconds": seconds, "rows": rows,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
"""


def run_child(kind, logdir, cache, timeout):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p),
               TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    p = subprocess.run([sys.executable, "-c", CHILD, kind, logdir, cache], env=env, capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s" % (kind, p.returncode, p.stderr[-3000:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def read_through(logdir):
    """Reads every file once, so every case finds the files in the page cache."""
    for root, _, files in os.walk(logdir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                while f.read(16 << 20):
                    pass


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, Python %s" % (cpu, os.cpu_count() or 1, platform.python_version())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="0.5,2", help="log directory sizes in GB, comma-separated (default 0.5,2)")
    ap.add_argument("--data-dir", default=os.path.join(HERE, "data"), help="where generated log directories are kept")
    ap.add_argument("--warm-repeats", type=int, default=3, help="warm runs per size (the median is printed)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds one case may take")
    _common.add_smoke_flag(ap)
    a = ap.parse_args(argv)
    missing = {m for m in ("pandas", "tbparse") if _common.missing(m)}
    if a.smoke:
        with _common.temp_dir() as d:
            return run(a, d, [0.003], runs=2, tags=10, warm_repeats=1, missing=missing)
    return run(a, a.data_dir, [float(s) for s in a.sizes.split(",")], runs=8, tags=300,
               warm_repeats=a.warm_repeats, missing=missing)


def run(a, data_dir, sizes, runs, tags, warm_repeats, missing):
    import gen_logdir

    if "pandas" in missing:
        _common.left_out("every case", "pandas is not installed")
        print("| size | case | seconds | rows | peak MB |\n|---|---|---:|---:|---:|\n| - | - | - | - | - |")
        return 0
    print("machine: %s" % machine())
    rows_out = []
    for size in sizes:
        man = gen_logdir.generate(data_dir, size, runs, tags, verify_torch=not a.smoke, verbose=False)
        logdir = man["logdir"]
        read_through(logdir)
        label = "%g MB" % round(man["bytes"] / 1e6)
        results = {}
        if "tbparse" in missing:
            _common.left_out("tbparse at %s" % label, "tbparse is not installed")
        else:
            results["tbparse"] = run_child("tbparse", logdir, "", a.timeout)
            print("[%s] tbparse: %s" % (label, results["tbparse"]), flush=True)
        cache = tempfile.mkdtemp(prefix="tbp_frame_cache_")
        try:
            results["tb_plus cold (index built)"] = run_child("tb_plus", logdir, cache, a.timeout)
            print("[%s] cold: %s" % (label, results["tb_plus cold (index built)"]), flush=True)
            warm = sorted((run_child("tb_plus", logdir, cache, a.timeout) for _ in range(warm_repeats)),
                          key=lambda r: r["seconds"])
            results["tb_plus warm (index reopened)"] = warm[len(warm) // 2]
            print("[%s] warm: %s" % (label, [w["seconds"] for w in warm]), flush=True)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        ref = results.get("tbparse")
        for case, r in results.items():
            speed = mem = "-"
            if ref is not None and case != "tbparse":
                if r["rows"] != ref["rows"]:
                    raise SystemExit("row counts differ at %s: tbparse %d, %s %d" % (label, ref["rows"], case, r["rows"]))
                speed = "%.0fx" % (ref["seconds"] / max(r["seconds"], 1e-9))
                mem = "%.2f" % (r["peak_mb"] / ref["peak_mb"])
            rows_out.append((label, case, "%.2f" % r["seconds"], "{:,}".format(r["rows"]), "%.0f" % r["peak_mb"],
                             speed, mem))
    print()
    print("| log directory | case | seconds | rows | peak MB | faster than tbparse | memory / tbparse's |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows_out:
        print("| %s |" % " | ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
