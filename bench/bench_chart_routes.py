"""Issue 4 routes per request (best of 5) on 50 runs x 10,000 points, and smoothing of 1M points.

    PYTHONPATH=. python bench/bench_issue4.py
"""
import tempfile, time, threading
import numpy as np
import tensorboardX as tbx
from werkzeug.test import Client
from tests.routes.conftest import make_app
from tb_plus.query.smooth import ema, moving_median

d = tempfile.mkdtemp(); c = tempfile.mkdtemp()
rng = np.random.default_rng(0)
N, S = 10_000, 50
for i in range(S):
    w = tbx.SummaryWriter(f"{d}/lr={[0.1,0.01][i%2]},seed={i}")
    for s in range(N):
        w.add_scalar("loss", float(rng.normal()), s)
        if s % 100 == 0: w.add_scalar("epoch", s/100, s)
    w.add_hparams({"lr": [0.1,0.01][i%2], "seed": i}, {"hp/m": 1.0})
    w.close()
cl = Client(make_app(d, c))
def t(u, rep=5):
    cl.get("/data/plugin/tb_plus"+u)
    best = 1e9
    for _ in range(rep):
        t0 = time.perf_counter(); r = cl.get("/data/plugin/tb_plus"+u); best = min(best, time.perf_counter()-t0)
    assert r.status_code == 200, r.get_data(as_text=True)
    print(f"{best*1000:7.1f} ms  {u}")
t("/series?run=lr%3D0.1%2Cseed%3D0&tag=loss&width=1000")
t("/series?run=lr%3D0.1%2Cseed%3D0&tag=loss&width=1000&smooth=ema&weight=0.9&x=tag%3Aepoch")
t("/series?run=lr%3D0.1%2Cseed%3D0&tag=loss&width=1000&smooth=median&window=21")
t("/aggregate?tag=loss&points=500")
t("/aggregate?tag=loss&points=2000&group_by=hparam%3Alr&band=std&stat=median&x=tag%3Aepoch")
t("/compare?a_run=lr%3D0.1%2Cseed%3D0&a_tag=loss&b_run=lr%3D0.01%2Cseed%3D1&b_tag=loss&width=1000")
t("/hparams")
for th in threading.enumerate():
    if th.name in ("Reloader", "tb_plus-indexer"): th.join(120)
x = np.arange(1_000_000); v = rng.normal(size=1_000_000); v[::997] = np.nan
xf = np.cumsum(rng.exponential(size=1_000_000))
for W in (0.6, 0.9, 0.99, 0.999, 0.9999):
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); ema(xf, v, W); ts.append(time.perf_counter() - t0)
    print(f"ema 1M points W={W}: best {min(ts)*1000:.0f} ms, median {np.median(ts)*1000:.0f} ms")
for K in (5, 21):
    t0 = time.perf_counter(); moving_median(v, K); print(f"median 1M K={K}: {(time.perf_counter()-t0)*1000:.0f} ms")
