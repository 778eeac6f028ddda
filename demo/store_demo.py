"""A tour of the tb_plus event store on a log directory it writes itself.

    python demo/store_demo.py [--logdir DIR] [--steps N]

It writes a few runs with tensorboardX (or torch's SummaryWriter), including a spike that
stock TensorBoard's 1000-point reservoir would most likely drop, then indexes them, reads every
point back, appends more data and refreshes, and reopens the index from its cache.
"""

import argparse
import os
import shutil
import tempfile
import time

import numpy as np


def _writer(path):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(path)


def write_runs(logdir, steps, start=0):
    rng = np.random.default_rng(start)
    for lr in ("lr=0.1", "lr=0.01"):
        w = _writer(os.path.join(logdir, lr))
        for s in range(start, start + steps):
            loss = 2.0 * np.exp(-s / (steps / 3)) + rng.normal(scale=0.02)
            if s == start + steps // 2 and lr == "lr=0.1":
                loss = 50.0  # a one-step spike
            w.add_scalar("train/loss", loss, s)
            w.add_scalar("train/grad_norm", abs(rng.normal()), s)
            if s % max(steps // 5, 1) == 0:
                w.add_histogram("weights/layer1", rng.normal(size=1000), s)
        w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logdir", help="where to write the demo logs (default: a temp dir)")
    ap.add_argument("--steps", type=int, default=20000)
    args = ap.parse_args()
    from tb_plus.store import Logdir

    logdir = args.logdir or tempfile.mkdtemp(prefix="tb_plus_demo_")
    cache = tempfile.mkdtemp(prefix="tb_plus_cache_")
    print(f"writing {args.steps} steps x 2 runs into {logdir}")
    write_runs(logdir, args.steps)

    t = time.perf_counter()
    ld = Logdir(logdir, cache_dir=cache)
    print(f"Logdir() returned in {1e3 * (time.perf_counter() - t):.2f} ms (nothing read yet)")
    t = time.perf_counter()
    runs = ld.runs()
    print(f"indexed in {time.perf_counter() - t:.3f} s: runs {runs}, progress {ld.progress()}")
    for run in runs:
        s = ld.scalars(run, "train/loss")
        print(
            f"  {run}: scalars {ld.tags(run)}, histograms {ld.tags(run, 'histograms')}; "
            f"train/loss has {len(s)} points (every one), max {s.value.max():.1f} at step {s.step[s.value.argmax()]}"
        )
    h = ld.histograms(runs[0], "weights/layer1")
    print(f"  first histogram of {runs[0]}: step {h[0].step}, {h[0].numpy.shape[0]} buckets, read on demand")

    write_runs(logdir, 1000, start=args.steps)
    ld.refresh()
    print(f"after appending 1000 steps: {len(ld.scalars(runs[0], 'train/loss'))} points")

    t = time.perf_counter()
    again = Logdir(logdir, cache_dir=cache)
    n = sum(len(again.scalars(r, tag)) for r in again.runs() for tag in again.tags(r))
    print(
        f"reopened from the cache in {time.perf_counter() - t:.3f} s, "
        f"{again.stats['bytes_read']} event-file bytes read, {n} points"
    )
    print(f"problems: {again.problems()}")
    if not args.logdir:
        shutil.rmtree(logdir)
    shutil.rmtree(cache)


if __name__ == "__main__":
    main()
