"""The chart routes per request (best of 5) on 50 runs x 10,000 points, and smoothing of 1M points.

    PYTHONPATH=. python bench/bench_chart_routes.py [--runs 50] [--points 10000] [--repeat 5] [--smooth 1000000] [--smoke]

Writes the runs with tensorboardX into a temporary directory (removed at the end): run `lr=<lr>,seed=<i>`
holds `loss` at every step, `epoch` every 100 steps, and an hparams summary. Then asks TensorBoard's WSGI
app (tb_plus loaded as a plugin, TensorBoard's Python loader; werkzeug's test client, no socket) for
/series (plain, EMA smoothing on an epoch axis, moving median), /series_batch (every run, JSON and
binary), /aggregate (plain, grouped by a hyperparameter), /compare and /hparams: the best of --repeat
after one warm-up request. Last, the smoothing kernels alone on --smooth points: EMA per weight, moving
median per window. --smoke: 4 runs x 300 points, 2 repeats, 10,000 points to smooth.
"""

import argparse
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _common import add_smoke_flag  # noqa: E402
from bench_render import machine  # noqa: E402

LRS = (0.1, 0.01)


def run_name(i):
    return f"lr={LRS[i % 2]},seed={i}"


def write_runs(logdir, runs, points, rng):
    import tensorboardX as tbx

    for i in range(runs):
        w = tbx.SummaryWriter(os.path.join(logdir, run_name(i)))
        for s in range(points):
            w.add_scalar("loss", float(rng.normal()), s)
            if s % 100 == 0:
                w.add_scalar("epoch", s / 100, s)
        w.add_hparams({"lr": LRS[i % 2], "seed": i}, {"hp/m": 1.0})
        w.close()


def make_app(logdir, cache):
    """TensorBoard's WSGI app with tb_plus, as `tensorboard --logdir LOGDIR --load_fast false` builds it."""
    from tensorboard import program
    from tensorboard.backend import application
    from tensorboard.plugins.core import core_plugin

    from tb_plus.plugin import TbPlusLoader

    tb = program.TensorBoard(plugins=[core_plugin.CorePluginLoader(), TbPlusLoader])
    tb.configure(argv=["", "--logdir", logdir, "--load_fast", "false", "--reload_interval", "0",
                       "--tb_plus_cache_dir", cache])
    provider, multiplexer = tb._make_data_provider()
    return application.TensorBoardWSGIApp(tb.flags, tb.plugin_loaders, provider, None, multiplexer)


def requests(runs):
    q = urllib.parse.quote
    r0, r1 = q(run_name(0), safe=""), q(run_name(1), safe="")
    every = "".join("&run=" + q(run_name(i), safe="") for i in range(runs))
    return [
        ("/series, 1,000 px", f"/series?run={r0}&tag=loss&width=1000"),
        ("/series, EMA 0.9 on an epoch axis", f"/series?run={r0}&tag=loss&width=1000&smooth=ema&weight=0.9&x=tag%3Aepoch"),
        ("/series, 21-point moving median", f"/series?run={r0}&tag=loss&width=1000&smooth=median&window=21"),
        ("/series_batch, every run, JSON", f"/series_batch?tag=loss&width=1000{every}"),
        ("/series_batch, every run, binary", f"/series_batch?tag=loss&width=1000&format=binary{every}"),
        ("/aggregate, every run, 500 points", "/aggregate?tag=loss&points=500"),
        ("/aggregate by hparam lr, median, std band, 2,000 points, epoch axis",
         "/aggregate?tag=loss&points=2000&group_by=hparam%3Alr&band=std&stat=median&x=tag%3Aepoch"),
        ("/compare, two runs", f"/compare?a_run={r0}&a_tag=loss&b_run={r1}&b_tag=loss&width=1000"),
        ("/hparams", "/hparams"),
    ]


def time_routes(client, runs, repeat):
    rows = []
    for label, url in requests(runs):
        r = client.get("/data/plugin/tb_plus" + url)  # warm-up
        assert r.status_code == 200, (url, r.status_code, r.get_data(as_text=True)[:500])
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = client.get("/data/plugin/tb_plus" + url)
            best = min(best, time.perf_counter() - t0)
        assert r.status_code == 200, (url, r.status_code, r.get_data(as_text=True)[:500])
        rows.append((label, url, best, len(r.get_data())))
    return rows


def time_smoothing(n, repeat, rng):
    from tb_plus.query.smooth import ema, moving_median

    v = rng.normal(size=n)
    v[::997] = np.nan
    xf = np.cumsum(rng.exponential(size=n))
    rows = []
    for w in (0.6, 0.9, 0.99, 0.999, 0.9999):
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            ema(xf, v, w)
            ts.append(time.perf_counter() - t0)
        rows.append(("EMA (x-distance), weight %g" % w, min(ts), float(np.median(ts))))
    for k in (5, 21):
        t0 = time.perf_counter()
        moving_median(v, k)
        dt = time.perf_counter() - t0
        rows.append(("moving median, window %d" % k, dt, dt))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--smooth", type=int, default=1_000_000, help="points of the smoothing-only timings")
    add_smoke_flag(ap)
    a = ap.parse_args()
    if a.smoke:
        a.runs, a.points, a.repeat, a.smooth = 4, 300, 2, 10_000
    a.runs = max(a.runs, 2)
    rng = np.random.default_rng(0)
    work = tempfile.mkdtemp(prefix="tbp_bench_chart_routes_")
    try:
        logdir, cache = os.path.join(work, "logs"), os.path.join(work, "cache")
        write_runs(logdir, a.runs, a.points, rng)
        from werkzeug.test import Client

        client = Client(make_app(logdir, cache))
        routes = time_routes(client, a.runs, a.repeat)
        # TensorBoard's own loader thread must not be running when the interpreter exits (it reads
        # through TensorFlow's C++ file system when TF is installed), nor during the smoothing timings
        for th in threading.enumerate():
            if th.name in ("Reloader", "tb_plus-indexer"):
                th.join(120)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    smoothing = time_smoothing(a.smooth, a.repeat, rng)

    print("### Chart routes: %d runs x %s points, best of %d (werkzeug test client, no socket)\n"
          % (a.runs, format(a.points, ","), a.repeat))
    print("Machine: %s; Python %s, numpy %s\n" % (machine(), platform.python_version(), np.__version__))
    print("| request | ms | body bytes |")
    print("|---|---:|---:|")
    for label, _, best, size in routes:
        print("| %s | %.1f | %s |" % (label, best * 1000, format(size, ",")))
    print("\n| smoothing %s points | best ms | median ms |" % format(a.smooth, ","))
    print("|---|---:|---:|")
    for label, best, med in smoothing:
        print("| %s | %.1f | %.1f |" % (label, best * 1000, med * 1000))


if __name__ == "__main__":
    main()
