"""A labelled corpus of real short trainings, healthy and pathological, to measure and test the
rules of tb_plus.diagnostics (which pathologies they find, at which step, and how often they
warn on healthy runs).

    python demo/diagnostics_corpus.py OUTDIR [--runs healthy_mlp,nan_loss] [--no-keras] [--quiet]
                                             [--threads N] [--labels FILE]

    from demo.diagnostics_corpus import make_corpus
    labels = make_corpus("/tmp/corpus")          # {run: label} of the runs written (demo/diagnostics_labels.py)

Labels follow the run. While it trains, the generator measures what each run really did, with its
own code and in float64, independently of tb_plus: the training loss of every step, the global
gradient norm, the median update ratio ||dW||/||W|| of the weight tensors, each weight tensor's
norm, the first non-finite loss, gradient and weight, the validation losses (Keras: the History
of fit). diagnostics_labels.derive() turns each run's measurements into its label (the onsets and
the findings it expects or allows), so a chaotic run (a learning rate that blows up) that diverges
earlier, or overflows to NaN, on another CPU (another SIMD path of PyTorch, oneDNN or MKL, another
thread count) is labelled for what it did there. The labels and the measurements are written to
OUTDIR/corpus_labels.json (not an event file: TensorBoard and tb_plus do not read it);
diagnostics_labels.read(OUTDIR) reads them back.

Every run is a real training of a small model on scikit-learn's digits (load_digits: 1797 8x8 images,
10 classes, shipped with the package; nothing is downloaded), split once into 1397 training and 400
validation examples with a fixed seed. A run repeats exactly on one machine (fixed seeds, one torch
thread unless --threads says otherwise), not across machines (see above).

PyTorch runs (torch.utils.tensorboard.SummaryWriter(OUTDIR/<run>)) log at optimizer step s = 0, 1, ...:
train/loss, train/acc (the batch before the update of step s), lr, every step; val/loss, val/acc on the
held-out split after the update of step s, for s % 25 == 0 and the last step; meta/num_classes (10) at
step 0; and the tb_plus tracer (every=1, dead_window=50, no histograms) through the same writer, which
the store expands into trace/<stat>/<parameter> (e.g. trace/grad_norm/fc1.weight) and
trace/<stat>/<activation module> (e.g. trace/dead_fraction/act1). The tracer's step is the optimizer
step, the same s.

Keras runs (only when TensorFlow imports; keras=False leaves them out) write the Keras layout:
OUTDIR/<run>/train and OUTDIR/<run>/validation from tf.keras.callbacks.TensorBoard(update_freq="epoch")
(epoch_loss, epoch_accuracy, ..., step = epoch index), and OUTDIR/<run> itself holds the
tb_plus.trace.keras.TracerCallback summaries (step = batch index; no gradient statistics in Keras)
and meta/num_classes (also written into <run>/train).

The CLI prints per run its wall time and a summary of the key series, to tune the rules' thresholds.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:  # tb_plus from the checkout when run as a script
    sys.path.insert(0, os.path.dirname(HERE))
if __package__:  # imported as demo.diagnostics_corpus
    from .diagnostics_labels import LABELS, LABELS_FILE, CorpusError, derive, write_labels
else:  # run as a script, or imported with demo/ on sys.path
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    from diagnostics_labels import LABELS, LABELS_FILE, CorpusError, derive, write_labels  # noqa: E402

NUM_CLASSES = 10
VAL_EVERY = 25
DEAD_WINDOW = 50
NAN_STEP = 250  # nan_loss: the step whose batch carries an inf
LR_TOO_HIGH = 2.0  # lr_too_high: plain SGD
UNNORM_SCALE = 100.0  # unnormalised_inputs: raw pixels (0..16) times this
KERAS_RUNS = ("healthy_keras", "overfit_keras")
LR_GROWS = (0.01, 1.03)  # lr_grows: the learning rate of step s is 0.01 x 1.03^s (a schedule bug)
TINY_VAL = 8  # tiny_val_set: validation examples drawn at random for each evaluation
LR_SPIKE = 1.0  # lr_spikes: the learning rate of steps 60-79 of every 80
KERAS_OVERFIT_EPOCHS = 25


# ------------------------------------------------------------------ data

_DATA = {}


def digits(standardise=True, scale=1.0):
    """(x_train, y_train, x_val, y_val) as float32 / int64 numpy arrays, a fixed split of load_digits."""
    key = (standardise, scale)
    if key not in _DATA:
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.data.astype(np.float64), d.target.astype(np.int64)
        order = np.random.default_rng(0).permutation(len(x))
        x, y = x[order], y[order]
        xt, yt, xv, yv = x[:1397], y[:1397], x[1397:], y[1397:]
        if standardise:
            mu, sd = xt.mean(0), xt.std(0)
            sd[sd == 0] = 1.0
            xt, xv = (xt - mu) / sd, (xv - mu) / sd
        _DATA[key] = (np.float32(xt * scale), yt, np.float32(xv * scale), yv)
    return _DATA[key]


def noisy_subset(n=300, noise=0.4, seed=1):
    """The first n training examples with a fraction `noise` of their labels replaced by random ones."""
    xt, yt, xv, yv = digits()
    rng = np.random.default_rng(seed)
    x, y = xt[:n].copy(), yt[:n].copy()
    flip = rng.random(n) < noise
    y[flip] = rng.integers(0, NUM_CLASSES, int(flip.sum()))
    return x, y, xv, yv


# ------------------------------------------------------------------ PyTorch

def mlp(sizes, act="relu", bn=False, dropout=0.0):
    """Linear layers fc1..fcN with activations act1..act(N-1) between them (named, so the tracer's
    layers read fc1.weight, act1, ...); bn: BatchNorm bn1.. before each activation; dropout: drop1..
    after it."""
    from torch import nn

    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    layers = []
    for i in range(len(sizes) - 1):
        layers.append((f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1])))
        if i < len(sizes) - 2:
            if bn:
                layers.append((f"bn{i + 1}", nn.BatchNorm1d(sizes[i + 1])))
            layers.append((f"act{i + 1}", acts[act]()))
            if dropout:
                layers.append((f"drop{i + 1}", nn.Dropout(dropout)))
    return nn.Sequential(OrderedDict(layers))


def tiny_cnn(ncls=NUM_CLASSES):
    from torch import nn

    return nn.Sequential(OrderedDict([
        ("unflatten", nn.Unflatten(1, (1, 8, 8))),
        ("conv1", nn.Conv2d(1, 8, 3, padding=1)), ("act1", nn.ReLU()),
        ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("act2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)), ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(16 * 4 * 4, ncls)),
    ]))


def train_torch(run_dir, model, optimizer, data, *, steps=400, batch=64, seed=0, inject=None, lr_at=None,
                val_sample=None):
    """The plain training loop every PyTorch run shares; the tracer hooks optimizer.step.
    inject: {step: fn(xb) -> xb} alters the batch of those steps; lr_at(step): the learning rate;
    val_sample: evaluate on that many validation examples drawn at random each time."""
    import torch
    from torch.nn import functional as F
    from torch.utils.tensorboard import SummaryWriter

    from tb_plus.trace import Tracer

    xt, yt, xv, yv = (torch.from_numpy(a) for a in data)
    rng = np.random.default_rng(seed)
    meter = Meter(model)
    writer = SummaryWriter(run_dir)
    tracer = Tracer(model, optimizer, writer=writer, every=1, histograms_every=0, dead_window=DEAD_WINDOW)
    writer.add_scalar("meta/num_classes", NUM_CLASSES, 0)
    order, pos = rng.permutation(len(xt)), 0
    try:
        for s in range(steps):
            if pos + batch > len(order):
                order, pos = rng.permutation(len(xt)), 0
            idx = torch.from_numpy(order[pos:pos + batch])
            pos += batch
            xb, yb = xt[idx], yt[idx]
            if inject and s in inject:
                xb = inject[s](xb.clone())
            if lr_at is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(s)
            model.train()
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            model.zero_grad(set_to_none=False)  # the model's, not the optimizer's: frozen_layer
            loss.backward()
            meter.before_step(s, loss.item())
            optimizer.step()
            meter.after_step()
            writer.add_scalar("train/loss", loss.item(), s)
            writer.add_scalar("train/acc", float((logits.argmax(1) == yb).float().mean()), s)
            writer.add_scalar("lr", optimizer.param_groups[0]["lr"], s)
            if s % VAL_EVERY == 0 or s == steps - 1:
                model.eval()
                xe, ye = xv, yv
                if val_sample:
                    pick = torch.from_numpy(rng.choice(len(xv), val_sample, replace=False))
                    xe, ye = xv[pick], yv[pick]
                with torch.no_grad():
                    lv = model(xe)
                    meter.val_loss[s] = float(F.cross_entropy(lv, ye))
                    writer.add_scalar("val/loss", meter.val_loss[s], s)
                    writer.add_scalar("val/acc", float((lv.argmax(1) == ye).float().mean()), s)
    finally:
        tracer.close()
        writer.close()
    if tracer.errors:
        raise RuntimeError(f"tracer errors: {tracer.errors[:3]}")
    return meter.result()


class Meter:
    """The generator's own measurements of a PyTorch training, step by step, in float64, with no
    tb_plus code: what diagnostics_labels.derive() labels the run from.

    result() = {"loss": [train loss per step], "grad_norm": [global gradient norm per step, the
    root of the sum of squares over every parameter with a gradient], "update_ratio": [median over
    the weight tensors (2 or more dimensions) of ||W_after - W_before|| / ||W_before|| per step;
    NaN where every weight is 0], "weight_norm": {weight tensor: [norm after each step]},
    "weight_norm_start": {weight tensor: norm before step 0}, "val_loss": {step: loss},
    "first_nonfinite": {"loss"|"grad"|"weight": first step or None}}."""

    def __init__(self, model):
        self.model = model
        self.weights = [(n, p) for n, p in model.named_parameters() if p.dim() >= 2]
        self.loss, self.grad_norm, self.update_ratio = [], [], []
        self.weight_norm = {n: [] for n, _ in self.weights}
        self.weight_norm_start = {n: _norm(p) for n, p in self.weights}
        self.val_loss = {}
        self.first_nonfinite = {"loss": None, "grad": None, "weight": None}
        self._before, self._step = None, None

    def before_step(self, step, loss):
        self._step = step
        self.loss.append(float(loss))
        sq = sum(_norm(p.grad) ** 2 for p in self.model.parameters() if p.grad is not None)
        self.grad_norm.append(math.sqrt(sq) if math.isfinite(sq) else math.nan)
        self._note("loss", math.isfinite(loss))
        self._note("grad", math.isfinite(sq))
        self._before = [p.detach().clone() for _, p in self.weights]

    def after_step(self):
        import torch

        ratios, finite = [], True
        for (n, p), w0 in zip(self.weights, self._before):
            with torch.no_grad():
                d, n0, n1 = _norm(p - w0), _norm(w0), _norm(p)
            self.weight_norm[n].append(n1)
            finite = finite and math.isfinite(n1)
            if n0 > 0 and math.isfinite(d):
                ratios.append(d / n0)
        self._note("weight", finite)
        self.update_ratio.append(float(np.median(ratios)) if ratios else math.nan)
        self._before = None

    def _note(self, what, finite):
        if not finite and self.first_nonfinite[what] is None:
            self.first_nonfinite[what] = self._step

    def result(self) -> dict:
        return {"loss": self.loss, "grad_norm": self.grad_norm, "update_ratio": self.update_ratio,
                "weight_norm": self.weight_norm, "weight_norm_start": self.weight_norm_start,
                "val_loss": self.val_loss, "first_nonfinite": self.first_nonfinite}


def _norm(t) -> float:
    """The Euclidean norm of a tensor in float64 (inf or NaN when it holds one)."""
    return float(t.detach().double().norm())


def _torch_run(name, run_dir, lr_too_high=LR_TOO_HIGH, seed=0):
    import torch

    torch.manual_seed(seed)
    sgd, adam = torch.optim.SGD, torch.optim.Adam
    if name == "healthy_mlp":
        m = mlp([64, 64, 64, 10])
        return train_torch(run_dir, m, adam(m.parameters(), lr=1e-3), digits())
    if name == "healthy_cnn":
        m = tiny_cnn()
        return train_torch(run_dir, m, sgd(m.parameters(), lr=0.02, momentum=0.9), digits())
    if name == "lr_too_high":
        m = mlp([64, 64, 64, 10])
        return train_torch(run_dir, m, sgd(m.parameters(), lr=lr_too_high), digits())
    if name == "lr_too_low":
        m = mlp([64, 64, 64, 10])
        return train_torch(run_dir, m, sgd(m.parameters(), lr=1e-5), digits())
    if name == "zero_init":
        m = mlp([64, 64, 64, 10])
        with torch.no_grad():
            for p in m.parameters():
                p.zero_()
        return train_torch(run_dir, m, sgd(m.parameters(), lr=0.1, momentum=0.9), digits())
    if name == "deep_sigmoid":
        m = mlp([64] + [64] * 11 + [10], act="sigmoid")
        return train_torch(run_dir, m, sgd(m.parameters(), lr=0.1), digits())
    if name == "dying_relu":
        m = mlp([64, 128, 128, 10])
        with torch.no_grad():  # 3/4 of the hidden units start far below zero: they never fire
            for layer in (m.fc1, m.fc2):
                n = layer.bias.numel()
                layer.bias[: 3 * n // 4] = -4.0
        return train_torch(run_dir, m, adam(m.parameters(), lr=1e-3), digits())
    if name == "frozen_layer":
        m = mlp([64, 64, 64, 64, 10])
        params = [p for n, p in m.named_parameters() if not n.startswith("fc2.")]  # fc2 forgotten
        return train_torch(run_dir, m, adam(params, lr=1e-3), digits())
    if name == "unnormalised_inputs":
        m = mlp([64, 64, 64, 10])
        return train_torch(run_dir, m, sgd(m.parameters(), lr=1e-3), digits(standardise=False, scale=UNNORM_SCALE))
    if name == "label_noise_overfit":
        m = mlp([64, 256, 256, 10])
        return train_torch(run_dir, m, adam(m.parameters(), lr=5e-4), noisy_subset(), steps=600, batch=64)
    if name == "nan_loss":
        m = mlp([64, 64, 64, 10])

        def poison(xb):
            xb[0, 0] = float("inf")
            return xb

        return train_torch(run_dir, m, adam(m.parameters(), lr=1e-3), digits(), inject={NAN_STEP: poison})
    if name == "saturated_tanh":
        m = mlp([64, 64, 64, 10], act="tanh")
        with torch.no_grad():  # weights 8x too large: pre-activations of std ~8 sit in tanh's flat tails
            for layer in (m.fc1, m.fc2, m.fc3):
                layer.weight.normal_(0.0, 1.0)
        return train_torch(run_dir, m, sgd(m.parameters(), lr=0.01), digits())
    if name == "lr_spikes":
        m = mlp([64, 64, 64, 10], act="tanh")  # tanh: the bursts do not kill units for good
        opt = sgd(m.parameters(), lr=0.02, momentum=0.9)
        return train_torch(run_dir, m, opt, digits(), lr_at=lambda s: LR_SPIKE if s % 80 >= 60 else 0.02)
    if name == "lr_grows":
        m = mlp([64, 64, 64, 10])
        opt = sgd(m.parameters(), lr=LR_GROWS[0], momentum=0.9)
        return train_torch(run_dir, m, opt, digits(), lr_at=lambda s: LR_GROWS[0] * LR_GROWS[1] ** s)
    if name == "tiny_val_set":
        m = mlp([64, 64, 64, 10])  # a mediocre model (noisy labels) evaluated on 8 random examples each time
        return train_torch(run_dir, m, adam(m.parameters(), lr=1e-3), noisy_subset(), val_sample=TINY_VAL)
    raise KeyError(name)


# ------------------------------------------------------------------ Keras

def _keras_run(name, run_dir):
    import tensorflow as tf

    from tb_plus.trace.keras import TracerCallback

    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(0)
    if name == "healthy_keras":
        xt, yt, xv, yv = digits()
        hidden, epochs, batch = (64, 64), 20, 128
    else:  # overfit_keras
        xt, yt, xv, yv = noisy_subset()
        hidden, epochs, batch = (256, 256), KERAS_OVERFIT_EPOCHS, 32
    # explicit names: the tracer's layers read mlp/dense1/kernel whatever ran before in the process
    layers = [tf.keras.Input((64,))] + [tf.keras.layers.Dense(h, activation="relu", name=f"dense{i + 1}")
                                        for i, h in enumerate(hidden)]
    model = tf.keras.Sequential(layers + [tf.keras.layers.Dense(NUM_CLASSES, name=f"dense{len(hidden) + 1}")],
                                name="mlp")
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  jit_compile=False)  # XLA compilation costs seconds here and saves nothing
    for d in (run_dir, os.path.join(run_dir, "train")):
        w = tf.summary.create_file_writer(d, filename_suffix=".meta")
        with w.as_default():
            tf.summary.scalar("meta/num_classes", NUM_CLASSES, step=0)
        w.close()
    tracer = TracerCallback(run_dir, every=1, histograms_every=0)
    tb = tf.keras.callbacks.TensorBoard(log_dir=run_dir, update_freq="epoch", histogram_freq=0, write_graph=False)
    try:
        history = model.fit(xt, yt, batch_size=batch, epochs=epochs, validation_data=(xv, yv), shuffle=True,
                            verbose=0, validation_batch_size=len(xv), callbacks=[tb, tracer])
    finally:
        tracer.close()
    if tracer.errors:
        raise RuntimeError(f"tracer errors: {tracer.errors[:3]}")
    # what Keras itself measured, per epoch (the epoch series' steps are epoch indices)
    return {"epoch_loss": [float(v) for v in history.history["loss"]],
            "val_epoch_loss": [float(v) for v in history.history["val_loss"]]}


def keras_available() -> bool:
    try:
        import tensorflow  # noqa: F401
    except Exception:
        return False
    return True


# ------------------------------------------------------------------ corpus

def make_corpus(outdir, runs=None, keras=None, timings=None, threads=1, labels_path=None,
                lr_too_high=LR_TOO_HIGH, seed=0) -> dict:
    """Writes OUTDIR/<run> for each run (None: all) and returns the labels of the runs written,
    derived from what each run measurably did (diagnostics_labels.derive), and writes them with the
    measurements and the platform to labels_path (default OUTDIR/corpus_labels.json).
    keras=None: the Keras runs when TensorFlow imports; False: never; True: always (fails without TF).
    threads: torch's intra-op threads while training (restored after).
    seed: torch's seed for the PyTorch runs' initial weights (0: the corpus as documented; others give
    other trajectories of the chaotic runs, as another CPU would).
    lr_too_high: the learning rate of the lr_too_high run (other values give other trajectories, as
    another CPU would: the tests use them to check that the labels follow the run).
    timings: an optional dict that receives {run: wall seconds, run + ":cpu": CPU seconds of the process}."""
    names = list(LABELS) if runs is None else list(runs)
    unknown = [n for n in names if n not in LABELS]
    if unknown:
        raise ValueError(f"unknown runs {unknown}; known: {list(LABELS)}")
    if keras is None:
        keras = keras_available() if any(n in KERAS_RUNS for n in names) else False
    if not keras:
        names = [n for n in names if n not in KERAS_RUNS]
    os.makedirs(outdir, exist_ok=True)
    import torch

    saved_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    written = {}
    try:
        for name in names:
            run_dir = os.path.join(outdir, name)
            if os.path.exists(run_dir) and os.listdir(run_dir):
                raise FileExistsError(f"{run_dir} exists and is not empty")
            t0, c0 = time.perf_counter(), time.process_time()
            if name in KERAS_RUNS:
                measured = _keras_run(name, run_dir)
            else:
                measured = _torch_run(name, run_dir, lr_too_high=lr_too_high, seed=seed)
            if timings is not None:
                timings[name] = time.perf_counter() - t0
                timings[name + ":cpu"] = time.process_time() - c0
            written[name] = derive(name, measured)
        platform_info = platform_summary()
    finally:
        torch.set_num_threads(saved_threads)
    write_labels(labels_path or os.path.join(outdir, LABELS_FILE), written, platform_info)
    return written


def platform_summary() -> dict:
    """What decides a chaotic training's trajectory on this machine: torch's CPU kernels (the
    capability ATen dispatches to: DEFAULT, AVX2, AVX512), its thread count, MKL and oneDNN."""
    import platform

    import torch

    info = {"machine": platform.machine(), "processor": platform.processor() or None,
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "mkl": bool(torch.backends.mkl.is_available()), "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
            "MKL_CBWR": os.environ.get("MKL_CBWR")}
    try:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch < 2.1
        info["cpu_capability"] = None
    return info


# ------------------------------------------------------------------ summary

def _fmt(x):
    if x is None:
        return "-"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.3g}"


def _fml(series):
    v = np.asarray(series.value, dtype=np.float64) if series is not None else np.zeros(0)
    if not v.size:
        return "-"
    fin = v[np.isfinite(v)]
    mn = f"{_fmt(float(fin.min()))}@{int(np.asarray(series.step)[np.isfinite(v)][fin.argmin()])}" if fin.size else "-"
    nonfin = int((~np.isfinite(v)).sum())
    extra = f" nonfinite={nonfin}@{int(np.asarray(series.step)[~np.isfinite(v)][0])}" if nonfin else ""
    return f"first={_fmt(float(v[0]))} min={mn} last={_fmt(float(v[-1]))}{extra}"


def summarise(outdir, names, headers=None, out=None):
    """Reads the corpus back with the store and prints the key series of each run: first/min/last of
    the train and validation losses, and per layer the median over the run of the tracer's statistics."""
    from tb_plus.store import Logdir

    out = out or sys.stdout
    with tempfile.TemporaryDirectory() as cache:
        ld = Logdir(outdir, cache_dir=cache)
        ld.refresh()
        runs = set(ld.runs())

        def get(run, tag):
            return ld.scalars(run, tag) if run in runs and tag in ld.tags(run) else None

        for name in names:
            if headers:
                print(headers.get(name, name), file=out)
            if name in KERAS_RUNS:
                tr, va = get(f"{name}/train", "epoch_loss"), get(f"{name}/validation", "epoch_loss")
                print(f"  train/epoch_loss {_fml(tr)}\n  validation/epoch_loss {_fml(va)}", file=out)
            else:
                print(f"  train/loss {_fml(get(name, 'train/loss'))}\n  val/loss   {_fml(get(name, 'val/loss'))}",
                      file=out)
            tags = ld.tags(name) if name in runs else []
            for stat in ("grad_norm", "update_ratio", "dead_fraction", "saturated_fraction"):
                cells = []
                for tag in sorted(tags, key=_natural):
                    if tag.startswith(f"trace/{stat}/"):
                        v = np.asarray(ld.scalars(name, tag).value, dtype=np.float64)
                        v = v[np.isfinite(v)]
                        if v.size:
                            cells.append(f"{tag.split('/', 2)[2]}={_fmt(float(np.median(v)))}")
                if cells:
                    print(f"  median {stat}: " + " ".join(cells), file=out)


def _natural(tag):
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", tag)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--runs", help="comma-separated run names (default: all)")
    ap.add_argument("--no-keras", action="store_true", help="leave out the Keras runs")
    ap.add_argument("--quiet", action="store_true", help="no summary of the series")
    ap.add_argument("--threads", type=int, default=1, help="torch's intra-op threads while training (default 1)")
    ap.add_argument("--lr-too-high", type=float, default=LR_TOO_HIGH,
                    help=f"learning rate of the lr_too_high run (default {LR_TOO_HIGH})")
    ap.add_argument("--labels", default=None,
                    help=f"where to write the derived labels (default OUTDIR/{LABELS_FILE})")
    args = ap.parse_args(argv)
    runs = [r for r in args.runs.split(",") if r] if args.runs else None
    timings = {}
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        labels = make_corpus(args.outdir, runs, keras=False if args.no_keras else None, timings=timings,
                             threads=args.threads, labels_path=args.labels, lr_too_high=args.lr_too_high)
    except (ValueError, FileExistsError, CorpusError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    for name in labels:
        print(f"{name}: {timings[name]:.1f}s wall, {timings[name + ':cpu']:.1f}s cpu")
    print(f"total: {total:.1f}s wall, {cpu:.1f}s cpu for {len(labels)} runs (imports included)")
    if not args.quiet:
        headers = {}
        for name, lab in labels.items():
            exp = ", ".join(e["rule"] + (f"[{e['layer']}]" if e.get("layer") else "") +
                            (f"@{e['onset']}" if e.get("onset") is not None else "") for e in lab["expect"])
            headers[name] = f"{name} ({timings[name]:.1f}s) healthy={lab['healthy']} expect: {exp or '-'}"
        summarise(args.outdir, list(labels), headers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
