"""A real TensorBoard WSGI app with the tb_plus plugin, over event files written in the test."""

import math

import numpy as np
import pytest

tbx = pytest.importorskip("tensorboardX")

SPIKE_STEP = 1234
NAN_STEP = 777


def write_logs(logdir):
    rng = np.random.default_rng(0)
    w = tbx.SummaryWriter(f"{logdir}/lr=0.1")
    for s in range(3000):
        v = 50.0 if s == SPIKE_STEP else (math.nan if s == NAN_STEP else float(rng.normal()))
        w.add_scalar("train/loss", v, s)
        if s % 10 == 0:
            w.add_scalar("train/acc", s / 3000, s)
            w.add_scalar("eval/loss", 1.0 / (s + 1), s)
    w.close()
    w = tbx.SummaryWriter(f"{logdir}/lr=0.01")
    for s in range(0, 100):
        w.add_scalar("train/loss", float(s), s)
        w.add_scalar("layer10/w", 1.0, s)
        w.add_scalar("layer2/w", 2.0, s)
    w.close()
    write_sweep(logdir)


# For the chart routes (x from another tag, aggregation, comparison, hparams): a small sweep, lr x seed.
# Each run logs train/loss every step, epoch once per EPOCH_STEPS steps (from step 0),
# layers/<k>/grad_norm every 10 steps, and add_hparams writes its hparams into a sub-run <run>/<timestamp>.
SWEEP = {"lr=0.1,seed=1": 1000, "lr=0.1,seed=2": 1000, "lr=0.1,seed=3": 1000, "lr=0.01,seed=1": 600,
         "lr=0.01,seed=2": 600}
EPOCH_STEPS = 100


def sweep_loss(run, step):
    lr = float(run.split(",")[0][3:])
    seed = int(run.split("seed=")[1])
    return 1.0 / (1.0 + lr * step) + 0.01 * seed


def write_sweep(logdir):
    for run, steps in SWEEP.items():
        seed = int(run.split("seed=")[1])
        w = tbx.SummaryWriter(f"{logdir}/{run}")
        for s in range(steps):
            w.add_scalar("train/loss", sweep_loss(run, s), s)
            if s % EPOCH_STEPS == 0:
                w.add_scalar("epoch", s / EPOCH_STEPS, s)
            if s % 10 == 0:
                for k in range(2):
                    w.add_scalar(f"layers/{k}/grad_norm", float(k + 1) * seed, s)
        lr = float(run.split(",")[0][3:])
        hp = {"lr": lr, "seed": seed}
        if seed == 1:
            hp["opt"] = "adam"
        w.add_hparams(hp, {"hparam/final_loss": sweep_loss(run, steps - 1)})
        w.close()


def make_app(logdir, cache, *extra):
    from tensorboard import program
    from tensorboard.backend import application
    from tensorboard.plugins.core import core_plugin

    from tb_plus.plugin import TbPlusLoader

    tb = program.TensorBoard(plugins=[core_plugin.CorePluginLoader(), TbPlusLoader])
    tb.configure(argv=["", "--logdir", str(logdir), "--load_fast", "false", "--reload_interval", "0",
                       "--tb_plus_cache_dir", str(cache), *extra])
    provider, multiplexer = tb._make_data_provider()
    return application.TensorBoardWSGIApp(tb.flags, tb.plugin_loaders, provider, None, multiplexer)


@pytest.fixture(scope="session")
def logdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("logs")
    write_logs(str(d))
    return d


@pytest.fixture(scope="session")
def client(logdir, tmp_path_factory):
    import threading

    from werkzeug.test import Client

    yield Client(make_app(logdir, tmp_path_factory.mktemp("cache")))
    # TensorBoard's own loader thread (it reads through TensorFlow's C++ file system when TF is
    # installed) must not be running when the interpreter exits, or the process can abort.
    for th in threading.enumerate():
        if th.name in ("Reloader", "tb_plus-indexer"):
            th.join(120)


def get_json(client, url, code=200):
    r = client.get("/data/plugin/tb_plus" + url)
    assert r.status_code == code, (url, r.status_code, r.get_data(as_text=True)[:500])
    if code == 200:
        assert r.headers["Content-Type"].startswith("application/json")
        return r.get_json()
    return r.get_data(as_text=True)
