#!/usr/bin/env python
"""Benchmark of the `/series` data path: read one 10,000,000-point scalar series from the store and
downsample it for a chart.

1. generates (or reuses) with bench/gen_logdir.py a logdir of one run, one tag, ~10M steps, written
   as real torch-style TFRecord/Event bytes (~0.5 GB), under bench/data/;
2. indexes it once with `tb_plus.store.Logdir` (cache under bench/data/caches/, reused when fresh);
3. times, median of 7 after one warm-up, `ld.scalars(run, tag)` + `downsample(step, value, ...)`:
   the whole series at width 1000, the middle 1% of steps at width 1000, the whole series at
   width 4000, and `downsample` alone on in-memory arrays for comparison;
4. prints a markdown table with the machine (CPU model, cores) and the numpy version.

The target is <= 100 ms per response. The "HTTP /series" rows call the plugin's route through
werkzeug's test client (request parsing, store read, downsampling and JSON encoding; no socket).

Example::

    python bench/bench_series.py
    python bench/bench_series.py --points 1000000 --repeat 11
    python bench/bench_series.py --smoke    # 20,000 points in a temporary directory: seconds
"""

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import gen_logdir  # noqa: E402
from _common import add_smoke_flag, temp_dir  # noqa: E402

from tb_plus.query.downsample import downsample  # noqa: E402
from tb_plus.store import Logdir  # noqa: E402

BYTES_PER_POINT = 50.2  # torch-style scalar record, framing included (gen_logdir's sizing)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn, repeat):
    fn()  # warm-up: page faults of the mapped columns, first-use imports
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=10_000_000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    add_smoke_flag(p)
    a = p.parse_args()
    if a.smoke:
        a.points, a.repeat = 20_000, 3
    with temp_dir(prefix="tbp_bench_series_") as work:
        if a.smoke:
            a.data_dir = work
        run(a)


def run(a):
    size_gb = round(a.points * BYTES_PER_POINT / 1e9, 6)
    man = gen_logdir.generate(a.data_dir, size_gb=size_gb, runs=1, n_tags=1, n_hist=0, verify_torch=not a.smoke)
    logdir = man["logdir"]
    cache = os.path.join(a.data_dir, "caches", "series_" + os.path.basename(logdir))
    t0 = time.perf_counter()
    ld = Logdir(logdir, cache_dir=cache)
    run = ld.runs()[0]
    tag = ld.tags(run)[0]
    s = ld.scalars(run, tag)
    t_index = time.perf_counter() - t0
    n = len(s)
    print("series %s / %s: %d points (step %d..%d, %d non-finite values); index/open %.1f s" % (
        run, tag, n, s.step[0], s.step[-1], int(np.count_nonzero(~np.isfinite(s.value))), t_index))

    lo = int(s.step[0] + (s.step[-1] - s.step[0]) * 0.495)
    hi = int(s.step[0] + (s.step[-1] - s.step[0]) * 0.505)

    def through_store(width, xmin=None, xmax=None):
        def fn():
            ser = ld.scalars(run, tag)
            idx = downsample(ser.step, ser.value, width, xmin=xmin, xmax=xmax)
            return ser.step[idx], ser.wall_time[idx], ser.value[idx]
        return fn

    # The /series route itself: request parsing, store read, downsampling and JSON encoding,
    # through the plugin's WSGI app (werkzeug test client; no socket).
    import argparse as _ap
    from urllib.parse import urlencode

    from tensorboard.plugins import base_plugin
    from werkzeug.test import Client

    from tb_plus.plugin import TbPlusPlugin

    flags = _ap.Namespace(logdir=logdir, reload_interval=0, tb_plus_cache_dir=cache)
    plugin = TbPlusPlugin(base_plugin.TBContext(flags=flags, logdir=logdir))
    plugin.logdir.stop_background()
    client = Client(plugin.get_plugin_apps()["/series"])

    def through_http(**params):
        url = "/?" + urlencode(dict(run=run, tag=tag, **params))

        def fn():
            r = client.get(url)
            assert r.status_code == 200, r.get_data(as_text=True)
            body = r.get_json()
            return (body["step"],)
        return fn

    step, value = np.array(s.step), np.array(s.value)  # in-memory copies
    cases = [
        ("scalars + downsample, whole series, width 1000", through_store(1000)),
        ("scalars + downsample, middle 1%% (steps %d..%d), width 1000" % (lo, hi), through_store(1000, lo, hi)),
        ("scalars + downsample, whole series, width 4000", through_store(4000)),
        ("HTTP /series (route + JSON), whole series, width 1000", through_http(width=1000)),
        ("HTTP /series (route + JSON), middle 1%, width 1000", through_http(width=1000, xmin=lo, xmax=hi)),
        ("HTTP /series (route + JSON), whole series, width 4000", through_http(width=4000)),
        ("downsample only (in-memory arrays), width 1000", lambda: (downsample(step, value, 1000),)),
        ("downsample only (in-memory arrays), width 4000", lambda: (downsample(step, value, 4000),)),
    ]
    rows = []
    for name, fn in cases:
        t, out = timed(fn, a.repeat)
        rows.append((name, len(out[0]), t))
        print("  %-70s %8.1f ms" % (name, t * 1e3), flush=True)

    print()
    print("Machine: %s, %d logical cores; Python %s, numpy %s; %d points; median of %d" % (
        cpu_model(), os.cpu_count() or 0, platform.python_version(), np.__version__, n, a.repeat))
    print()
    print("| case | points returned | time (ms) | <= 100 ms |")
    print("|---|---:|---:|:---:|")
    for name, k, t in rows:
        print("| %s | %d | %.1f | %s |" % (name, k, t * 1e3, "yes" if t <= 0.1 else "NO"))


if __name__ == "__main__":
    main()
