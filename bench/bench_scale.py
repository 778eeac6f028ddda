#!/usr/bin/env python
"""Scale check for the event store: 100,000 tags in one run, and one series of 50,000,000 points.

    python bench/bench_scale.py [--tags 100000] [--points 50000000] [--out results_scale.json] [--smoke]

Generates both logdirs with bench/gen_logdir.py (the bytes real writers produce), then, each in a
fresh subprocess: cold index + every series read (last step checked), and warm reopen. Prints
seconds, MB/s, peak RSS summed over the process tree (the store's workers included) and RSS after
load, plus the time to list the tags and to read the whole 50 M-point series (a memory-mapped view).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_store  # noqa: E402
import gen_logdir  # noqa: E402
from _common import add_smoke_flag, temp_dir  # noqa: E402

_READ_ALL = r"""
import json, sys, time, resource
from tb_plus.store import Logdir
a = json.loads(sys.argv[1])
ld = Logdir(a["logdir"], cache_dir=a["cache"])
t0 = time.perf_counter()
run = ld.runs()[0]
tags = ld.tags(run)
t1 = time.perf_counter()
s = ld.scalars(run, tags[0])
t2 = time.perf_counter()
total = float(s.value.sum())  # touches every page of the value column (a mapped view)
t3 = time.perf_counter()
print(json.dumps({"list_tags_s": t1 - t0, "ntags": len(tags), "read_series_s": t2 - t1,
                  "sum_all_values_s": t3 - t2, "points": len(s), "last_step": int(s.step[-1]),
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def case(label, man, cache_root):
    cache = os.path.join(cache_root, label)
    cold = bench_store.run_tbplus(man, "cold", cache, label=label + " cold")
    warm = bench_store.run_tbplus(man, "warm", cache, label=label + " warm")
    env = dict(os.environ, PYTHONPATH=bench_store.REPO)
    out = subprocess.run([sys.executable, "-c", _READ_ALL, json.dumps({"logdir": man["logdir"], "cache": cache})],
                         capture_output=True, text=True, env=env, timeout=900)
    read = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-2000:]}
    return {"label": label, "bytes": man["bytes"], "records": man["records"], "cold": cold, "warm": warm, "read": read}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=int, default=100_000)
    ap.add_argument("--tag-steps", type=int, default=20, help="points per tag in the many-tags logdir")
    ap.add_argument("--points", type=int, default=50_000_000)
    ap.add_argument("--data", default=os.path.join(HERE, "data"))
    ap.add_argument("--out", default=None)
    add_smoke_flag(ap)
    args = ap.parse_args(argv)
    if args.smoke:
        args.tags, args.tag_steps, args.points = 300, 5, 20_000
    print(bench_store.machine_info(), flush=True)
    results = []
    with temp_dir(prefix="tbp_scale_") as work:
        data = os.path.join(work, "data") if args.smoke else args.data
        # ~47 bytes per torch-style scalar record (tag names of ~25 characters)
        many = gen_logdir.generate(data, size_gb=round(args.tags * args.tag_steps * 75 / 1e9, 6), runs=1,
                                   n_tags=args.tags, n_hist=0, verify_torch=not args.smoke)
        long = gen_logdir.generate(data, size_gb=round(args.points * 50.2 / 1e9, 6), runs=1, n_tags=1, n_hist=0,
                                   verify_torch=not args.smoke)
        for label, man in (("%d tags" % len(many["scalar_tags"]), many), ("%d points" % long["records"], long)):
            results.append(case(label, man, os.path.join(work, "caches")))
    print()
    print("| logdir | size MB | records | cold index + read all, s | MB/s | peak RSS MB (all procs) | warm reopen s | RSS after warm MB | list tags s | read 1 series s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        c, w, rd = r["cold"], r["warm"], r["read"]
        secs = c.get("seconds") or float("nan")
        print("| %s | %.0f | %d | %.2f | %.0f | %.0f | %.3f | %.0f | %.3f | %.3f |" % (
            r["label"], r["bytes"] / 1e6, r["records"], secs, r["bytes"] / 1e6 / secs, c.get("peak_rss", 0) / 2**20,
            w.get("seconds") or float("nan"), w.get("rss_after", 0) / 2**20,
            rd.get("list_tags_s", float("nan")), rd.get("read_series_s", float("nan"))))
        if not c.get("ok") or not w.get("ok") or "error" in rd:
            print("  problems:", c.get("problems") or c.get("error"), w.get("problems") or w.get("error"), rd.get("error"))
    for r in results:
        print("%s: whole-series read %s" % (r["label"], json.dumps(r["read"])))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, default=str)
    bad = [r["label"] for r in results if not r["cold"].get("ok") or not r["warm"].get("ok") or "error" in r["read"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
