"""A large, varied corpus of real short trainings to measure the diagnostics on runs they were not
written with: families of models, optimizers, schedules, batch sizes, reductions and data, each
trained healthy and broken, with several seeds, each training written in several logging styles.

    python demo/diagnostics_families.py OUTDIR [--families mlp_adam,gru] [--scenarios healthy,nan]
                                               [--seeds 0,1,2] [--subset ci] [--quiet]

    from demo.diagnostics_families import make_families
    labels = make_families("/tmp/families", seeds=[0])   # {style/run: label}; also OUTDIR/families_labels.json

Families (data from scikit-learn, shipped with it, nothing downloaded; or synthesised by it):

  mlp_adam         digits (10 classes), MLP 64-64-64-10 ReLU, Adam 1e-3, batch 64
  mlp_sgd_step     make_classification (20 features, 5 classes), MLP 20-128-64-5 ReLU, SGD momentum 0.9
                   lr 0.05 with step decay (x0.1 at 1/2 and 3/4), batch 32
  cnn_sgd          digits as 1x8x8 images, two 3x3 convolutions + linear, SGD momentum 0.9 lr 0.02, batch 128
  wine_b4          wine (3 classes, 148 training / 30 validation examples), MLP 13-32-32-3, SGD lr 0.01, batch 4
  bn_adamw_cosine  digits, MLP with BatchNorm and dropout 0.2, AdamW 3e-3 (weight decay 0.01), linear
                   warm-up over 10% of the steps then cosine decay, batch 256
  gru              digits read row by row (8 steps of 8 pixels), GRU(32) + linear, Adam 3e-3, batch 16
  transformer      digits rows as 8 tokens, one TransformerEncoder layer (d 32, 2 heads), AdamW 1e-3 with
                   warm-up + cosine, batch 64
  binary_sum       breast_cancer (2 classes), MLP 30-64-64-2, loss with reduction='sum', Adam 1e-3, batch 128
  keras_mlp        digits, Keras Dense 64-64-10, Adam 1e-3, batch 64, 20 epochs (only where TensorFlow imports;
                   its own scenarios: the healthy ones, lr_grows, lr_low, nan, overfit)

Scenarios: healthy variants (base; smaller and larger batches; learning rate x3 and /3; a 30-example
validation set; weight decay with gradient clipping; another optimizer; label smoothing 0.1; another
schedule; twice the batch at twice the rate; evaluation every 5 steps) and broken ones taken from
the literature (AUTOTRAINER, DeepDiagnosis, TheDeepChecker): learning rate x30 (lr_high) and /1e4
(lr_low), a growing learning-rate schedule (lr_grows), periodic learning-rate bursts (lr_spikes), an
inf in one batch (nan), noisy labels on a small subset (overfit), unnormalised inputs x100 (unnorm),
a layer missing from the optimizer (frozen), and for MLPs and the CNN: 3/4 of the hidden units
biased dead (dead_relu), all-zero initialisation (zero_init), a 10-layer sigmoid stack
(vanishing), tanh with weights 8x too large (saturation).

Logging styles: each training is written at once by five writers, so each style holds the same
training as its users log it:

  scalars    torch SummaryWriter: train/loss and lr every step, val/loss and val/acc every 20 steps (5
             for healthy_val_often),
             add_hparams (lr, batch_size, num_classes) at the end (a <run>/<timestamp> sub-run)
  norms      scalars (no hparams) + hand-logged grad_norm/<param> and weight_norm/<param> every step
  tracer     scalars (no hparams) + tb_plus.trace.Tracer(every=1, dead_window=50), meta/num_classes
  hf         the Hugging Face Trainer's tags (torch SummaryWriter): train/loss (mean of the last 10
             steps), train/learning_rate, train/grad_norm, train/epoch at global_step 10, 20, ...;
             eval/loss, eval/accuracy every 20 steps; a model_config text with id2label
  lightning  PyTorch Lightning's tags (tensorboardX): train_loss_step (the step's loss) every 10
             steps, lr-<Optimizer>, val_loss, val_acc, epoch; hparams (num_classes) in the run itself
  keras      (the keras_mlp family only) tf.keras.callbacks.TensorBoard(update_freq="epoch"):
             <run>/train and <run>/validation with epoch_loss, epoch_accuracy per epoch; labelled
             from Keras' History

Labels follow the run (as demo/diagnostics_labels.py does for the small corpus): the generator
measures the training with its own code in float64 (loss, gradient norm per parameter, update
ratios, weight norms, dead and saturated fractions from its own forward hooks, validation loss
and accuracy, first non-finite values), and label() turns those measurements, sampled as each
style logs them, into what a detector must find (`expect`, with onsets where a pathology has one)
and what it may find (`allow`). A run is healthy when its scenario is and nothing measured shows a
problem. A broken scenario whose training shows nothing that its style can see gets no
expectation (it still counts findings outside `allow`). OUTDIR/families_labels.json holds every
label with the family, scenario, seed, style and the measured figures; it is not an event file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))
if __package__:  # imported as demo.diagnostics_families
    from .diagnostics_corpus import _norm, mlp, tiny_cnn
    from .diagnostics_labels import turns
else:  # run as a script, or imported with demo/ on sys.path
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    from diagnostics_corpus import _norm, mlp, tiny_cnn  # noqa: E402
    from diagnostics_labels import turns  # noqa: E402

LABELS_FILE = "families_labels.json"
STEPS = 300
VAL_EVERY = 20
LOG_EVERY = 10  # hf and lightning styles
DEAD_WINDOW = 50
STYLES = ("scalars", "norms", "tracer", "hf", "lightning")

FAMILIES = {
    "mlp_adam": dict(data="digits", arch="mlp", hidden=(64, 64), opt="adam", lr=1e-3, batch=64),
    "mlp_sgd_step": dict(data="synth5", arch="mlp", hidden=(128, 64), opt="sgdm", lr=0.05, batch=32, sched="step"),
    "cnn_sgd": dict(data="digits", arch="cnn", opt="sgdm", lr=0.02, batch=128),
    "wine_b4": dict(data="wine", arch="mlp", hidden=(32, 32), opt="sgd", lr=0.01, batch=4),
    "bn_adamw_cosine": dict(data="digits", arch="mlp_bn", hidden=(128, 64), opt="adamw", lr=3e-3, batch=256,
                            sched="cosine"),
    "gru": dict(data="digits", arch="gru", opt="adam", lr=3e-3, batch=16),
    "transformer": dict(data="digits", arch="transformer", opt="adamw", lr=1e-3, batch=64, sched="cosine"),
    "binary_sum": dict(data="cancer", arch="mlp", hidden=(64, 64), opt="adam", lr=1e-3, batch=128, reduction="sum"),
    # Keras (only where TensorFlow imports): its TensorBoard callback's epoch series, the "keras" style
    "keras_mlp": dict(data="digits", arch="keras", hidden=(64, 64), opt="adam", lr=1e-3, batch=64),
}
KERAS_EPOCHS = 20
KERAS_SCENARIOS = ("healthy", "healthy_small_batch", "healthy_large_batch", "healthy_lr_x3", "healthy_lr_div3",
                   "healthy_val30", "lr_grows", "lr_low", "nan", "overfit")
# chosen to tune on / held out (an outside benchmark's families are none of these)
TUNE_FAMILIES = ("mlp_adam", "mlp_sgd_step", "cnn_sgd", "wine_b4")
HELD_OUT_FAMILIES = ("bn_adamw_cosine", "gru", "transformer", "binary_sum", "keras_mlp")

HEALTHY = ("healthy", "healthy_small_batch", "healthy_large_batch", "healthy_lr_x3", "healthy_lr_div3",
           "healthy_val30", "healthy_wd_clip", "healthy_other_opt", "healthy_label_smoothing", "healthy_decay",
           "healthy_linear_scaling", "healthy_val_often")
BROKEN_ALL = ("lr_high", "lr_low", "lr_grows", "lr_spikes", "nan", "overfit", "unnorm", "frozen")
BROKEN_MLP = ("dead_relu", "zero_init", "vanishing", "saturation")
SUBSETS = {  # the CI subset: one seed, every family, the scenarios that show their pathology in any run
    "ci": dict(seeds=(0,), scenarios=("healthy", "healthy_small_batch", "healthy_val30", "healthy_lr_x3",
                                      "lr_grows", "nan", "overfit", "dead_relu", "vanishing", "lr_low"),
               keras_scenarios=("healthy", "nan")),
}


def scenarios_of(family):
    arch = FAMILIES[family]["arch"]
    if arch == "keras":
        return list(KERAS_SCENARIOS)
    out = list(HEALTHY) + list(BROKEN_ALL)
    if arch in ("mlp", "mlp_bn"):
        out += list(BROKEN_MLP)
    elif arch == "cnn":
        out += ["dead_relu", "zero_init"]
    return out


# ------------------------------------------------------------------ data

_DATA = {}


def dataset(name):
    """(x_train, y_train, x_val, y_val, classes), standardised with the training split's statistics;
    also the raw (unstandardised) x for the unnorm scenario under name + ':raw'."""
    if name in _DATA:
        return _DATA[name]
    from sklearn import datasets

    base = name.split(":")[0]
    if base == "digits":
        d = datasets.load_digits()
        x, y, nval = d.data, d.target, 400
    elif base == "wine":
        d = datasets.load_wine()
        x, y, nval = d.data, d.target, 30
    elif base == "cancer":
        d = datasets.load_breast_cancer()
        x, y, nval = d.data, d.target, 169
    elif base == "synth5":
        x, y = datasets.make_classification(n_samples=2400, n_features=20, n_informative=10, n_redundant=4,
                                            n_classes=5, n_clusters_per_class=2, class_sep=1.2, random_state=0)
        nval = 400
    else:
        raise KeyError(name)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    xt, yt, xv, yv = x[nval:], y[nval:], x[:nval], y[:nval]
    if not name.endswith(":raw"):
        mu, sd = xt.mean(0), xt.std(0)
        sd[sd == 0] = 1.0
        xt, xv = (xt - mu) / sd, (xv - mu) / sd
    else:  # raw features, scaled so that their typical magnitude is 100x a standardised one
        scale = 100.0 / max(float(np.median(np.abs(xt[xt != 0]))), 1e-12)
        xt, xv = xt * scale, xv * scale
    _DATA[name] = (np.float32(xt), yt, np.float32(xv), yv, int(y.max()) + 1)
    return _DATA[name]


# ------------------------------------------------------------------ models

def _seq_models():
    from torch import nn

    class RowGRU(nn.Module):
        def __init__(self, ncls):
            super().__init__()
            self.gru = nn.GRU(8, 32, batch_first=True)
            self.head = nn.Linear(32, ncls)

        def forward(self, x):
            out, _ = self.gru(x.view(-1, 8, 8))
            return self.head(out[:, -1])

    class RowTransformer(nn.Module):
        def __init__(self, ncls):
            super().__init__()
            self.embed = nn.Linear(8, 32)
            self.pos = nn.Parameter(0.02 * __import__("torch").randn(8, 32))
            self.encoder = nn.TransformerEncoderLayer(32, 2, dim_feedforward=64, dropout=0.0, batch_first=True)
            self.head = nn.Linear(32, ncls)

        def forward(self, x):
            h = self.encoder(self.embed(x.view(-1, 8, 8)) + self.pos)
            return self.head(h.mean(1))

    return RowGRU, RowTransformer


def build_model(family, scenario, n_in, ncls):
    import torch

    spec = FAMILIES[family]
    arch = spec["arch"]
    if scenario == "vanishing":
        return mlp([n_in] + [64] * 9 + [ncls], act="sigmoid")
    if scenario == "saturation":
        m = mlp([n_in] + list(spec.get("hidden", (64, 64))) + [ncls], act="tanh")
        with torch.no_grad():  # weights of std 1: pre-activations of std ~sqrt(fan_in) sit in tanh's tails
            for mod in m:
                if isinstance(mod, torch.nn.Linear) and mod.out_features != ncls:
                    mod.weight.normal_(0.0, 1.0)
        return m
    if arch == "mlp":
        m = mlp([n_in] + list(spec["hidden"]) + [ncls])
    elif arch == "mlp_bn":
        m = mlp([n_in] + list(spec["hidden"]) + [ncls], bn=True, dropout=0.2)
    elif arch == "cnn":
        m = tiny_cnn(ncls)
    else:
        gru, transformer = _seq_models()
        m = (gru if arch == "gru" else transformer)(ncls)
    if scenario == "dead_relu":
        with torch.no_grad():  # 3/4 of the units of every hidden layer start far below zero
            hidden = [mod for mod in m if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d))][:-1]
            for mod in hidden:
                n = mod.bias.numel()
                mod.bias[: 3 * n // 4] = -4.0 * float(mod.weight.abs().sum(1).mean() if mod.weight.dim() == 2
                                                      else mod.weight.abs().flatten(1).sum(1).mean())
    if scenario == "zero_init":
        with torch.no_grad():
            for p in m.parameters():
                p.zero_()
    return m


def _optimizer(name, params, lr, wd=0.0):
    import torch

    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd or 0.01)
    if name == "sgdm":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, weight_decay=wd)


def _schedule(kind, base, steps):
    if kind == "step":
        return lambda s: base * (0.1 ** (int(s >= steps // 2) + int(s >= 3 * steps // 4)))
    if kind == "cosine":
        warm = max(1, steps // 10)
        return lambda s: base * ((s + 1) / warm if s < warm else
                                 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    return lambda s: base


def plan(family, scenario):
    """The training's settings for a scenario: {data, batch, lr_at, opt, lr, wd, clip, val_n, ...}."""
    spec = dict(FAMILIES[family])
    p = dict(data=spec["data"], batch=spec["batch"], opt=spec["opt"], lr=spec["lr"], wd=0.0, clip=None,
             sched=spec.get("sched"), reduction=spec.get("reduction", "mean"), steps=STEPS, val_n=None,
             inject=None, subset=None, exclude=None, smoothing=0.0, val_every=VAL_EVERY)
    if scenario == "healthy_small_batch":
        p["batch"] = max(1, p["batch"] // 4)
        p["lr"] = p["lr"] / 2
    elif scenario == "healthy_large_batch":
        p["batch"] = p["batch"] * 4
    elif scenario == "healthy_lr_x3":
        p["lr"] = p["lr"] * 3
    elif scenario == "healthy_lr_div3":
        p["lr"] = p["lr"] / 3
    elif scenario == "healthy_val30":
        p["val_n"] = 30
    elif scenario == "healthy_wd_clip":
        p["wd"], p["clip"] = 1e-4 if p["opt"] != "adamw" else 0.05, 1.0
    elif scenario == "healthy_label_smoothing":  # the loss cannot reach 0: it levels off above
        p["smoothing"] = 0.1
    elif scenario == "healthy_decay":  # another schedule: step decay, or warm-up + cosine for step-decay families
        p["sched"] = "cosine" if p["sched"] == "step" else "step"
    elif scenario == "healthy_linear_scaling":  # twice the batch at twice the rate
        p["batch"], p["lr"] = p["batch"] * 2, p["lr"] * 2
    elif scenario == "healthy_val_often":  # evaluated every 5 steps: 60 noisy validation points
        p["val_every"] = 5
    elif scenario == "healthy_other_opt":
        p["opt"], p["lr"] = ("sgdm", 0.02) if p["opt"] in ("adam", "adamw") else ("adam", 1e-3)
        p["sched"] = None
    elif scenario == "lr_high":
        p["lr"] = p["lr"] * 30
    elif scenario == "lr_low":
        p["lr"] = p["lr"] * 1e-4
    elif scenario == "lr_grows":
        base = p["lr"]
        p["sched"] = ("grows", base)
    elif scenario == "lr_spikes":
        p["sched"] = ("spikes", p["lr"])
    elif scenario == "nan":
        p["inject"] = int(0.6 * STEPS)
    elif scenario == "overfit":
        p["subset"], p["steps"] = 200, 2 * STEPS
        p["batch"] = min(p["batch"], 32)
    elif scenario == "unnorm":
        p["data"] = p["data"] + ":raw"
    elif scenario == "frozen":
        p["exclude"] = True
    return p


def _lr_fn(p):
    sched, base, steps = p["sched"], p["lr"], p["steps"]
    if isinstance(sched, tuple) and sched[0] == "grows":  # x1.03 a step from a tenth of the base
        return lambda s: 0.1 * sched[1] * 1.03 ** s
    if isinstance(sched, tuple) and sched[0] == "spikes":  # 30x the rate for 15 of every 60 steps
        return lambda s: sched[1] * (30.0 if s % 60 >= 45 else 1.0)
    return _schedule(sched, base, steps)


# ------------------------------------------------------------------ measurement

class FamilyMeter:
    """The generator's own measurements, in float64, with no tb_plus code: per step the loss (per
    example: a summed loss divided by the batch), the gradient norm of every parameter, the global
    gradient norm, the update ratio of every weight tensor, the weight norms; per window of
    DEAD_WINDOW steps the dead fraction of every ReLU module (units never positive in the window; a
    unit: a feature, or a convolution's channel); per step the saturated fraction of every tanh or
    sigmoid module's inputs (|x| > 2.5 for tanh, 4.6 for sigmoid: tanh' < 0.027, sigmoid' < 0.0099);
    the validation loss and accuracy; the first non-finite loss, gradient and weight."""

    def __init__(self, model):
        import torch

        self.model = model
        self.names = [n for n, p in model.named_parameters()]
        self.params = [p for _, p in model.named_parameters()]
        self.weight_idx = [i for i, p in enumerate(self.params) if p.dim() >= 2]
        self.loss, self.grad = [], []  # grad: [step][param]
        self.update, self.wnorm = [], []  # [step][weight tensor]
        self.wnorm_start = [_norm(self.params[i]) for i in self.weight_idx]
        self.val = {}  # step -> (loss, acc)
        self.first = {"loss": None, "grad": None, "weight": None}
        self.dead = {}  # module -> [fraction per window]
        self.sat = {}  # module -> [fraction per step]
        self._alive, self._in_window, self._step = {}, 0, 0
        self._hooks = []
        self.training = True
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.ReLU):
                self.dead[name] = []
                self._hooks.append(mod.register_forward_hook(self._relu_hook(name)))
            elif isinstance(mod, (torch.nn.Tanh, torch.nn.Sigmoid)):
                self.sat[name] = []
                lim = 2.5 if isinstance(mod, torch.nn.Tanh) else 4.6  # tanh' < 0.027, sigmoid' < 0.0099
                self._hooks.append(mod.register_forward_hook(self._sat_hook(name, lim)))

    def _relu_hook(self, name):
        def hook(mod, inp, out):
            if not self.training:
                return
            o = out.detach()
            # a unit is a feature (the last dimension), or a channel of a convolution's [B, C, H, W]
            o = o.transpose(1, -1) if o.dim() == 4 else o
            pos = (o > 0).reshape(-1, o.shape[-1]).any(0)
            prev = self._alive.get(name)
            self._alive[name] = pos if prev is None else prev | pos
        return hook

    def _sat_hook(self, name, lim):
        def hook(mod, inp, out):
            if not self.training:
                return
            x = inp[0].detach()
            self.sat[name].append(float((x.abs() > lim).double().mean()))
        return hook

    def before_step(self, step, loss):
        self._step = step
        self.loss.append(float(loss))
        g = [_norm(p.grad) if p.grad is not None else math.nan for p in self.params]
        self.grad.append(g)
        if not math.isfinite(loss) and self.first["loss"] is None:
            self.first["loss"] = step
        if not all(math.isfinite(x) for x in g if not math.isnan(x) or True) and self.first["grad"] is None:
            if any(not math.isfinite(x) for x, p in zip(g, self.params) if p.grad is not None):
                self.first["grad"] = step
        self._before = [self.params[i].detach().clone() for i in self.weight_idx]

    def after_step(self):
        import torch

        ups, norms = [], []
        for i, w0 in zip(self.weight_idx, self._before):
            with torch.no_grad():
                d, n0, n1 = _norm(self.params[i] - w0), _norm(w0), _norm(self.params[i])
            ups.append(d / n0 if n0 > 0 else (0.0 if d == 0 else math.inf))
            norms.append(n1)
        if any(not math.isfinite(n) for n in norms) and self.first["weight"] is None:
            self.first["weight"] = self._step
        self.update.append(ups)
        self.wnorm.append(norms)
        self._in_window += 1
        if self._in_window == DEAD_WINDOW:
            for name in self.dead:
                alive = self._alive.get(name)
                self.dead[name].append(math.nan if alive is None else float(1 - alive.double().mean()))
            self._alive, self._in_window = {}, 0

    def close(self):
        for h in self._hooks:
            h.remove()

    def result(self) -> dict:
        return {"loss": self.loss, "grad": self.grad, "names": self.names,
                "weights": [self.names[i] for i in self.weight_idx], "update": self.update, "wnorm": self.wnorm,
                "wnorm_start": self.wnorm_start, "val": {int(k): v for k, v in self.val.items()},
                "first": self.first, "dead": self.dead, "sat": self.sat}


# ------------------------------------------------------------------ writers (the logging styles)

class Styles:
    """Writes one training in every style at once (see the module's docstring)."""

    def __init__(self, root, run, model, optimizer, ncls, styles, hp):
        from torch.utils.tensorboard import SummaryWriter

        self.styles, self.ncls, self.hp, self.run = styles, ncls, hp, run
        self.w, self.tracer = {}, None
        self.model, self.opt = model, optimizer
        self.pnames = [n for n, _ in model.named_parameters()]
        for st in styles:
            d = os.path.join(root, st, run)
            if st == "lightning":
                import tensorboardX

                self.w[st] = tensorboardX.SummaryWriter(d)
            else:
                self.w[st] = SummaryWriter(d)
        if "tracer" in styles:
            from tb_plus.trace import Tracer

            self.tracer = Tracer(model, optimizer, writer=self.w["tracer"], every=1, histograms_every=0,
                                 dead_window=DEAD_WINDOW)
            self.w["tracer"].add_scalar("meta/num_classes", ncls, 0)
        if "hf" in styles:
            cfg = {"architectures": [type(model).__name__ + "ForSequenceClassification"],
                   "id2label": {str(i): f"LABEL_{i}" for i in range(ncls)},
                   "label2id": {f"LABEL_{i}": i for i in range(ncls)}, "model_type": "custom"}
            self.w["hf"].add_text("model_config", json.dumps(cfg, indent=2, sort_keys=True))
            self.w["hf"].add_text("args", json.dumps({"learning_rate": hp["lr"], "per_device_train_batch_size":
                                                      hp["batch_size"], "logging_steps": LOG_EVERY}, indent=2))
        if "lightning" in styles:
            from tensorboardX.summary import hparams

            for s in hparams({"num_classes": ncls, "lr": hp["lr"], "batch_size": hp["batch_size"]}, {}):
                self.w["lightning"]._get_file_writer().add_summary(s)
        self._hf_losses = []
        self.opt_name = type(optimizer).__name__

    def step(self, s, loss, lr, grads, wnorms, epoch):
        for st in ("scalars", "norms", "tracer"):
            if st in self.w:
                self.w[st].add_scalar("train/loss", loss, s)
                self.w[st].add_scalar("lr", lr, s)
        if "norms" in self.w:
            w = self.w["norms"]
            for n, g in zip(self.pnames, grads):
                if not math.isnan(g) or True:
                    w.add_scalar(f"grad_norm/{n}", g, s)
            for n, v in wnorms:
                w.add_scalar(f"weight_norm/{n}", v, s)
        self._hf_losses.append(loss)
        if (s + 1) % LOG_EVERY == 0:
            if "hf" in self.w:
                w = self.w["hf"]
                w.add_scalar("train/loss", float(np.mean(self._hf_losses)), s + 1)
                w.add_scalar("train/learning_rate", lr, s + 1)
                w.add_scalar("train/grad_norm", math.sqrt(sum(g * g for g in grads if not math.isnan(g))), s + 1)
                w.add_scalar("train/epoch", epoch, s + 1)
            self._hf_losses = []
        if s % LOG_EVERY == 0 and "lightning" in self.w:
            w = self.w["lightning"]
            w.add_scalar("train_loss_step", loss, s)
            w.add_scalar(f"lr-{self.opt_name}", lr, s)
            w.add_scalar("epoch", math.floor(epoch), s)

    def val(self, s, loss, acc):
        for st in ("scalars", "norms", "tracer"):
            if st in self.w:
                self.w[st].add_scalar("val/loss", loss, s)
                self.w[st].add_scalar("val/acc", acc, s)
        if "hf" in self.w:
            self.w["hf"].add_scalar("eval/loss", loss, s + 1)
            self.w["hf"].add_scalar("eval/accuracy", acc, s + 1)
        if "lightning" in self.w:
            self.w["lightning"].add_scalar("val_loss", loss, s)
            self.w["lightning"].add_scalar("val_acc", acc, s)

    def close(self, final_acc):
        errors = []
        if self.tracer is not None:
            self.tracer.close()
            errors = list(self.tracer.errors)
        if "scalars" in self.w:
            self.w["scalars"].add_hparams({"lr": self.hp["lr"], "batch_size": self.hp["batch_size"],
                                           "num_classes": self.ncls}, {"hparam/val_acc": final_acc},
                                          run_name="hparams")
        for w in self.w.values():
            w.close()
        if errors:
            raise RuntimeError(f"tracer errors: {errors[:3]}")


# ------------------------------------------------------------------ training

def train(root, family, scenario, seed, styles=STYLES):
    """Trains one (family, scenario, seed), writes it in every style; returns the measurements."""
    import torch
    from torch.nn import functional as F

    p = plan(family, scenario)
    xt, yt, xv, yv, ncls = dataset(p["data"])
    rng = np.random.default_rng(1000 + seed)
    if p["subset"]:  # overfit: a small subset with 40% of its labels random
        pick = rng.choice(len(xt), min(p["subset"], len(xt) * 2 // 3), replace=False)
        xt, yt = xt[pick], yt[pick].copy()
        flip = rng.random(len(yt)) < 0.4
        yt[flip] = rng.integers(0, ncls, int(flip.sum()))
    torch.manual_seed(seed)
    model = build_model(family, scenario, xt.shape[1], ncls)
    params = list(model.parameters())
    if p["exclude"]:  # frozen: the second weight-bearing module is missing from the optimizer
        mods = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.GRU))]
        target = mods[1] if len(mods) > 1 else mods[0]
        skip = {id(q) for q in target.parameters()}
        params = [q for q in params if id(q) not in skip]
    opt = _optimizer(p["opt"], params, p["lr"], p["wd"])
    lr_at = _lr_fn(p)
    run = f"{family}-{scenario}-s{seed}"
    meter = FamilyMeter(model)
    out = Styles(root, run, model, opt, ncls, styles, {"lr": p["lr"], "batch_size": p["batch"]})
    Xt, Yt, Xv, Yv = (torch.from_numpy(a) for a in (xt, yt, xv, yv))
    order, pos, epoch = rng.permutation(len(xt)), 0, 0
    acc = math.nan
    try:
        for s in range(p["steps"]):
            if pos + p["batch"] > len(order):
                order, pos, epoch = rng.permutation(len(xt)), 0, epoch + 1
            idx = torch.from_numpy(order[pos:pos + p["batch"]])
            pos += p["batch"]
            xb, yb = Xt[idx], Yt[idx]
            if p["inject"] == s:
                xb = xb.clone()
                xb[0, 0] = float("inf")
            lr = lr_at(s)
            for g in opt.param_groups:
                g["lr"] = lr
            model.train()
            meter.training = True
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, reduction=p["reduction"], label_smoothing=p["smoothing"])
            opt.zero_grad(set_to_none=False)
            model.zero_grad(set_to_none=False)
            loss.backward()
            if p["clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), p["clip"])
            per_example = loss.item() / (len(yb) if p["reduction"] == "sum" else 1)
            meter.before_step(s, per_example)
            opt.step()
            meter.after_step()
            wn = [(meter.names[i], v) for i, v in zip(meter.weight_idx, meter.wnorm[-1])]
            out.step(s, loss.item(), lr, meter.grad[-1], wn, epoch + pos / len(xt))
            if s % p["val_every"] == 0 or s == p["steps"] - 1:
                model.eval()
                meter.training = False
                xe, ye = Xv, Yv
                if p["val_n"]:
                    xe, ye = Xv[: p["val_n"]], Yv[: p["val_n"]]
                with torch.no_grad():
                    lv = model(xe)
                    vl = float(F.cross_entropy(lv, ye))
                    acc = float((lv.argmax(1) == ye).double().mean())
                meter.val[s] = (vl, acc)
                out.val(s, vl, acc)
    finally:
        meter.close()
        out.close(acc)
    m = meter.result()
    m.update(family=family, scenario=scenario, seed=seed, ncls=ncls, steps=p["steps"],
             reduction=p["reduction"], batch=p["batch"])
    return m


def keras_available() -> bool:
    try:
        import tensorflow  # noqa: F401
    except Exception:
        return False
    return True


def train_keras(root, family, scenario, seed):
    """A Keras training (model.fit with tf.keras.callbacks.TensorBoard, update_freq="epoch": the
    layout <run>/train and <run>/validation with epoch_loss, epoch_accuracy, ... per epoch), in the
    "keras" style; the measurements are Keras' own History, per epoch. nan: from epoch 12 the
    training set carries an inf; overfit: a 256-256 MLP for 40 epochs on the noisy subset."""
    import tensorflow as tf

    p = plan(family, scenario)
    xt, yt, xv, yv, ncls = dataset(p["data"])
    rng = np.random.default_rng(1000 + seed)
    epochs = 2 * KERAS_EPOCHS if p["subset"] else KERAS_EPOCHS
    if p["subset"]:
        pick = rng.choice(len(xt), min(p["subset"], len(xt) * 2 // 3), replace=False)
        xt, yt = xt[pick], yt[pick].copy()
        flip = rng.random(len(yt)) < 0.4
        yt[flip] = rng.integers(0, ncls, int(flip.sum()))
    if p["val_n"]:
        xv, yv = xv[: p["val_n"]], yv[: p["val_n"]]
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(seed)
    layers = [tf.keras.Input((xt.shape[1],))] + [tf.keras.layers.Dense(h, activation="relu", name=f"dense{i + 1}")
                                                 for i, h in enumerate((256, 256) if p["subset"] else
                                                                       FAMILIES[family]["hidden"])]
    model = tf.keras.Sequential(layers + [tf.keras.layers.Dense(ncls, name="logits")], name="mlp")
    model.compile(optimizer=tf.keras.optimizers.Adam(p["lr"]),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  jit_compile=False)
    run = f"{family}-{scenario}-s{seed}"
    steps_per_epoch = max(1, len(xt) // p["batch"])
    lr_at = _lr_fn(dict(p, steps=epochs * steps_per_epoch))
    cbs = [tf.keras.callbacks.TensorBoard(log_dir=os.path.join(root, "keras", run), update_freq="epoch",
                                          histogram_freq=0, write_graph=False),
           tf.keras.callbacks.LearningRateScheduler(lambda e, lr: float(lr_at(e * steps_per_epoch)))]
    hist = {"loss": [], "val_loss": [], "val_accuracy": []}
    stages = [(0, 12, xt), (12, epochs, _poisoned(xt))] if p["inject"] is not None else [(0, epochs, xt)]
    for first, last, x in stages:
        h = model.fit(x, yt, batch_size=p["batch"], epochs=last, initial_epoch=first, validation_data=(xv, yv),
                      shuffle=True, verbose=0, callbacks=cbs)
        for k in hist:
            hist[k] += [float(v) for v in h.history[k]]
    loss = hist["loss"]
    bad = [i for i, v in enumerate(loss) if not math.isfinite(v)]
    e = len(loss)
    nan = [[math.nan]] * e
    return {"loss": loss, "grad": nan, "names": ["kernel"], "weights": ["kernel"], "update": nan, "wnorm": nan,
            "wnorm_start": [math.nan], "val": {i: (hist["val_loss"][i], hist["val_accuracy"][i]) for i in range(e)},
            "first": {"loss": bad[0] if bad else None, "grad": None, "weight": None}, "dead": {}, "sat": {},
            "family": family, "scenario": scenario, "seed": seed, "ncls": ncls, "steps": e,
            "reduction": "mean", "batch": p["batch"], "unit": "epoch"}


def _poisoned(x):
    x = x.copy()
    x[0, 0] = np.inf
    return x


# ------------------------------------------------------------------ labels from the measurements

CHANCE_HIGH, CHANCE_LOW = 2.5, 0.4  # a first loss outside [0.4, 2.5] x ln C: a margin over the rule's [0.5, 2]
BLOWN = ["nonfinite_loss", "nonfinite_tensor", "divergence", "exploding_gradients", "update_ratio", "weight_growth",
         "dead_relu", "saturation", "plateau", "constant_loss", "oscillation", "weights_not_updated",
         "vanishing_gradients", "metric_volatility", "overfitting"]


def _runmed(x, w):
    x = np.asarray(x, np.float64)
    h = w // 2
    return np.asarray([np.median(x[max(0, i - h): i + h + 1]) for i in range(len(x))])


def _sampled_loss(m, style):
    """(steps, values) of the training loss as the style logs it (per example)."""
    loss = np.asarray(m["loss"], np.float64)
    n = len(loss)
    if style == "hf":
        k = n // LOG_EVERY
        return (np.arange(1, k + 1) * LOG_EVERY, loss[: k * LOG_EVERY].reshape(k, LOG_EVERY).mean(1))
    if style == "lightning":
        s = np.arange(0, n, LOG_EVERY)
        return s, loss[s]
    return np.arange(n), loss


def _rank_corr(v):
    """Spearman's rank correlation of v with its index."""
    r = np.argsort(np.argsort(np.asarray(v, np.float64))).astype(np.float64)
    i = np.arange(len(v), dtype=np.float64)
    return float(np.corrcoef(i, r)[0, 1]) if len(v) >= 3 and r.std() > 0 else 0.0


def measure(m) -> dict:
    """The figures the labels rest on (style-independent ones)."""
    f = {}
    grad = np.asarray(m["grad"], np.float64)  # [steps, params]
    names, weights = m["names"], m["weights"]
    widx = [names.index(w) for w in weights]
    # per-layer gradient medians (finite prefix), first and last weight tensor in model order
    k = m["first"]["loss"] if m["first"]["loss"] is not None else len(grad)
    k = min([k] + [x for x in (m["first"]["grad"], m["first"]["weight"]) if x is not None])
    g = grad[:k][:, widx] if k else np.zeros((0, len(widx)))
    with np.errstate(invalid="ignore"):
        med = np.nanmedian(g, axis=0) if len(g) else np.full(len(widx), np.nan)
    f["grad_median_first_last"] = [float(med[0]), float(med[-1])] if len(med) else [math.nan, math.nan]
    f["grad_first_over_last"] = float(med[0] / med[-1]) if len(med) and med[-1] > 0 else math.nan
    gl = np.sqrt(np.nansum(grad[:, widx] ** 2, axis=1)) if len(widx) else np.zeros(len(grad))
    gl = np.where(np.isfinite(gl), gl, np.nan)
    ref = float(np.nanmedian(gl[:5])) if len(gl) else math.nan
    f["grad_ref"] = ref
    fin = np.isfinite(gl)
    f["grad_exploded_steps"] = int(np.sum(gl[fin] > 100 * ref)) if ref > 0 else 0
    e = np.flatnonzero(fin & (gl > 100 * ref)) if ref > 0 else []
    if len(e):
        j = int(e[0])
        while j > 0 and fin[j - 1] and gl[j - 1] > 10 * ref:
            j -= 1
        f["grad_onset"] = j
    f["grad_start_over_median"] = float(np.median(gl[:3]) / np.nanmedian(gl[:k])) if k >= 10 else math.nan
    # update ratios of the weights (finite prefix): per step the median over tensors; frozen tensors
    up = np.asarray(m["update"], np.float64)[:k]
    live = np.where((up > 1e-7) & np.isfinite(up), up, np.nan)  # tensors not updated at all are another matter
    with np.errstate(invalid="ignore"):
        per_step = np.nanmedian(live, axis=1) if len(live) else np.zeros(0)
    per_step = per_step[np.isfinite(per_step)]
    f["update_ratio_median"] = float(np.median(per_step)) if len(per_step) >= 10 else math.nan
    frozen = []
    if len(up) >= 20:
        zero = up == 0
        moving = [i for i in range(up.shape[1]) if np.median(up[len(up) // 2:, i]) > 1e-5]
        for i in range(up.shape[1]):
            if zero[len(up) // 2:, i].all() and moving:
                frozen.append(weights[i])
    f["frozen"] = frozen
    f["frozen_any"] = [weights[i] for i in range(up.shape[1])
                       if len(up) >= 20 and (up[len(up) // 2:, i] < 1e-7).all()] if up.ndim == 2 else []
    f["frozen_with_grad"] = [w for w in frozen if np.nanmedian(grad[:k, names.index(w)]) > 0]
    wn = np.asarray(m["wnorm"], np.float64)[:k]
    w0 = np.asarray(m["wnorm_start"], np.float64)
    f["weight_growth"] = float(np.nanmax(wn[-1] / np.where(w0 > 0, w0, np.nan))) if len(wn) else math.nan
    # dead and saturated fractions (the second half of the windows / steps)
    f["dead"] = {n: float(np.median(v[len(v) // 2:])) for n, v in m["dead"].items() if len(v) >= 2 and k == len(grad)}
    f["saturated"] = {n: float(np.median(v[len(v) // 2:])) for n, v in m["sat"].items() if len(v) >= 10}
    return f


def label(m, style, figures=None) -> dict:
    """The label of one training as `style` shows it (see the module's docstring)."""
    fam, scen = m["family"], m["scenario"]
    figures = figures or measure(m)
    ncls = m["ncls"]
    chance = math.log(ncls)
    healthy_scenario = scen.startswith("healthy")
    expect, allow = [], set()
    borderline = []  # measured conditions near a pathology: such a run is not clearly healthy
    interval = LOG_EVERY if style in ("hf", "lightning") else 1
    per_layer = style in ("norms", "tracer")
    steps, loss = _sampled_loss(m, style)
    first_nf = m["first"]["loss"]
    sig = {"family": fam, "scenario": scen, "style": style}

    def exp(rule, onset=None, tolerance=0, alternatives=(), **kw):
        expect.append(dict(rule=rule, onset=onset, tolerance=tolerance, **kw))
        if alternatives:  # findings of these rules match too
            expect[-1]["alternatives"] = list(alternatives)

    # non-finite loss
    if first_nf is not None:
        shown = int(steps[np.argmax(~np.isfinite(loss))]) if (~np.isfinite(loss)).any() else None
        if shown is not None:
            exp("nonfinite_loss", shown, interval)
        allow.update(BLOWN)
    if per_layer and any(x is not None for x in (m["first"]["grad"], m["first"]["weight"])):
        allow.add("nonfinite_tensor")
        if style == "tracer":
            ks = [x for x in (m["first"]["grad"], m["first"]["weight"]) if x is not None]
            exp("nonfinite_tensor", min(ks), 0)
    fin = np.isfinite(loss)
    kf = int(np.argmax(~fin)) if (~fin).any() else len(loss)
    lf = loss[:kf]
    if len(lf) >= 10:
        w = max(3, (len(lf) // 20) | 1)
        sm = _runmed(lf, w)
        first, best_i = float(sm[0]), int(np.argmin(sm))
        best = float(sm[best_i])
        final = float(np.median(sm[-max(3, len(sm) // 10):]))
        sig.update(loss_first=first, loss_best=best, loss_final=final)
        # divergence: the level lost for good (above best + half the progress, and 1.6x the best)
        runbest = np.fmin.accumulate(sm)
        up = sm > runbest + 0.5 * np.maximum(first - runbest, 0) + 0.5 * np.abs(runbest)
        lost = up & (np.arange(len(sm)) > best_i)
        if final > best + 0.5 * max(first - best, 0) and final > 1.6 * best and lost.any() and \
                len(sm) - int(np.argmax(lost)) >= 10:  # seen to stay up for 10 points (not cut by a NaN)
            i = int(np.argmax(up))
            b = int(np.argmin(sm[: i + 1]))
            lo, hi = int(steps[max(0, b - 3)]), int(steps[min(len(steps) - 1, i + 3)])
            exp("divergence", (lo + hi) // 2, max(15 * interval, (hi - lo) // 2 + interval))
            allow.update(BLOWN)
        elif up.any():
            allow.update(["divergence", "oscillation", "exploding_gradients", "update_ratio", "weight_growth"])
        # plateau: no progress, or stuck near chance on a mean loss
        improvement = (first - final) / abs(first) if first else 0.0
        sig["improvement"] = improvement
        at_chance = style not in ("norms", "keras") and final > 0.9 * chance and \
            CHANCE_LOW * chance < first < CHANCE_HIGH * chance
        if improvement < 0.03 or (at_chance and not any(e["rule"] == "divergence" for e in expect)):
            if not any(e["rule"] in ("divergence", "nonfinite_loss") for e in expect):
                # a loss that fell and came back up to where it started is also a divergence
                exp("plateau", alternatives=["divergence"] if best < 0.8 * final or up.any() or
                    float(np.max(sm)) > 1.5 * first else [])
            allow.update(["plateau", "constant_loss", "update_ratio", "vanishing_gradients", "weights_not_updated"])
        elif improvement < 0.15 or (final > 0.75 * chance and style not in ("norms", "keras")):
            allow.update(["plateau", "update_ratio"])
            borderline.append("slow")
        elif up.any():
            borderline.append("rise")
        # oscillation: the loss's running median swings by half its level and a quarter of the
        # progress from its first value to its best, 4 times or more (minibatch noise around a small
        # loss swings by its level, not by the progress)
        swings = turns(sm, 0.5, 0.3 * max(first - best, 0.0))
        small = turns(sm, 0.5, 0.15 * max(first - best, 0.0))
        sig.update(swings=swings, small_swings=small)
        if swings >= 4 and not any(e["rule"] == "divergence" for e in expect):
            exp("oscillation")
        if small >= 2:
            allow.update(["oscillation", "divergence", "exploding_gradients", "metric_volatility"])
            borderline.append("swings")
        # initial loss, where the style logs the class count (not norms), on the first point it logs
        # (hf: the mean of the first 10 steps)
        if style not in ("norms", "keras") and math.isfinite(loss[0]):  # keras: epoch means
            l0 = float(loss[0])
            sig["initial_over_chance"] = l0 / chance
            raw0 = float(m["loss"][0])
            if not (CHANCE_LOW * chance <= l0 <= CHANCE_HIGH * chance):
                exp("initial_loss", int(steps[0]), 0)
            elif not (0.5 * chance <= l0 <= 2.0 * chance) or not (0.5 * chance <= raw0 <= 2.0 * chance):
                allow.add("initial_loss")
                borderline.append("initial")
    # overfitting: the validation loss rises 20% above its minimum and stays up while training falls
    val = m["val"]
    vs = np.asarray(sorted(val), np.int64)
    vv = np.asarray([val[s][0] for s in vs], np.float64)
    va = np.asarray([val[s][1] for s in vs], np.float64)
    if len(vv) >= 6 and np.isfinite(vv).all():
        smv = _runmed(vv, 3)
        j = int(np.argmin(smv))
        tail = smv[j + 1:]
        tr = np.asarray(m["loss"], np.float64)
        win = 2 if style == "keras" else 10  # the training loss around the validation minimum (epochs / steps)
        # ... and rises as a trend (rank correlation of the points after the minimum with time),
        # not by the swings of an unstable training
        trend = _rank_corr(smv[j:]) if len(tail) >= 3 else 0.0
        sig["val_trend"] = trend
        noise = 1.4826 * float(np.median(np.abs(vv[j:] - smv[j:])))  # the evaluations' scatter
        sig["val_noise"] = noise
        if len(tail) >= 5 and (tail[-3:] > 1.2 * smv[j]).all() and trend >= 0.6 and \
                smv[-1] - smv[j] > 3 * noise and \
                np.median(tr[-2 * win:]) < 0.9 * np.median(tr[max(0, vs[j] - win): vs[j] + win]):
            shift = 1 if style == "hf" else 0
            exp("overfitting", int(vs[j]) + shift, 3 if style == "keras" else 3 * VAL_EVERY)
        if smv[-1] > 1.1 * smv[j]:
            allow.add("overfitting")
            borderline.append("val_rise")
        d = np.abs(np.diff(va[len(va) // 2:]))
        if len(d) and (np.median(d) > 0.05 or np.mean(d > 0.15) > 0.2):
            allow.add("metric_volatility")
            borderline.append("volatile")
    # per-layer pathologies, where the style shows per-layer data
    if per_layer:
        r = figures["grad_first_over_last"]
        if math.isfinite(r) and r < 1e-3:
            exp("vanishing_gradients")
        if math.isfinite(r) and r < 1e-1:
            allow.update(["vanishing_gradients", "weights_not_updated", "update_ratio", "plateau"])
            borderline.append("grad_ratio")
        if figures.get("frozen_any"):
            allow.add("weights_not_updated")
            borderline.append("frozen")
        if figures["frozen"]:
            exp("weights_not_updated", layer=figures["frozen"][0].rsplit(".", 1)[0])
            allow.update(["weights_not_updated", "update_ratio"])
        if figures["grad_exploded_steps"] >= 3 and "grad_onset" in figures:
            exp("exploding_gradients", figures["grad_onset"], 25)
        if figures["grad_exploded_steps"] >= 1 or figures["grad_start_over_median"] > 10:
            allow.add("exploding_gradients")
            borderline.append("grad_burst")
        if figures["weight_growth"] > 10:
            allow.add("weight_growth")
            borderline.append("weight_growth")
    if style == "hf":
        if figures["grad_exploded_steps"] >= 3 * LOG_EVERY:
            allow.add("exploding_gradients")
        if figures["grad_exploded_steps"] >= 1 or figures["grad_start_over_median"] > 10:
            allow.add("exploding_gradients")
    if style == "tracer":
        ur = figures["update_ratio_median"]
        if math.isfinite(ur) and (ur > 0.1 or ur < 5e-6):
            exp("update_ratio")
        if math.isfinite(ur) and (ur > 2e-2 or ur < 3e-5):
            allow.add("update_ratio")
            borderline.append("update_ratio")
        if first_nf is None:
            # (rule, measured fractions per layer, expected above, allowed above)
            for rule, fractions, high, near in (("dead_relu", figures["dead"], 0.6, 0.4),
                                                ("saturation", figures["saturated"], 0.5, 0.3)):
                over = [n for n, v in fractions.items() if v > high]
                if over:
                    exp(rule, layer=over[0])
                if any(v > near for v in fractions.values()):
                    allow.add(rule)
                    borderline.append(rule)
    # the scenario's own consequences
    allow.update({"lr_high": BLOWN, "lr_grows": BLOWN, "lr_spikes": BLOWN, "nan": BLOWN,
                  "unnorm": ["initial_loss", "exploding_gradients", "oscillation", "update_ratio", "metric_volatility",
                             "weight_growth", "dead_relu", "saturation"],
                  "zero_init": ["vanishing_gradients", "dead_relu", "weights_not_updated", "update_ratio", "plateau",
                                "constant_loss"],
                  "vanishing": ["weights_not_updated", "update_ratio", "plateau", "constant_loss", "saturation"],
                  "saturation": ["initial_loss", "plateau", "vanishing_gradients", "update_ratio",
                                 "exploding_gradients"],
                  "dead_relu": ["plateau", "weights_not_updated", "vanishing_gradients", "update_ratio"],
                  "frozen": ["update_ratio"], "lr_low": ["update_ratio", "constant_loss", "plateau"],
                  "overfit": ["metric_volatility", "oscillation"]}.get(scen, []))
    allow.update(r for e in expect for r in [e["rule"]] + e.get("alternatives", []))
    healthy = healthy_scenario and not expect and not borderline
    sig["borderline"] = borderline
    return {"healthy": healthy, "expect": expect, "allow": sorted(allow), "signals": sig,
            "ambiguous": healthy_scenario and not expect and bool(borderline),
            "family": fam, "scenario": scen, "seed": m["seed"], "style": style,
            "held_out": fam in HELD_OUT_FAMILIES}


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return _clean(x.item())
    return x


def make_families(outdir, families=None, scenarios=None, seeds=(0, 1, 2), styles=STYLES, threads=1,
                  timings=None, progress=None, resume=False, keras_scenarios=None) -> dict:
    """Trains every (family, scenario, seed) asked for and writes it in every style under
    OUTDIR/<style>/<family>-<scenario>-s<seed>; returns {"<style>/<run>": label} and writes them to
    OUTDIR/families_labels.json. scenarios=None: every scenario of each family; a scenario a family
    does not have is left out for it. resume: a training whose measurements an earlier call saved
    (OUTDIR/.measured) is not trained again. keras_scenarios: fewer scenarios for the Keras family (its
    trainings are the slowest)."""
    import logging

    import torch

    logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)  # "NaN or Inf found": the nan scenario's
    fams = list(FAMILIES) if families is None else list(families)
    bad = [f for f in fams if f not in FAMILIES]
    if bad:
        raise ValueError(f"unknown families {bad}; known: {list(FAMILIES)}")
    if "keras_mlp" in fams and not keras_available():
        fams.remove("keras_mlp")
        print("left out: the keras_mlp family (TensorFlow does not import)", file=sys.stderr)
    os.makedirs(outdir, exist_ok=True)
    saved = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    labels, figures_all = {}, {}
    try:
        for fam in fams:
            for scen in scenarios_of(fam):
                if scenarios is not None and scen not in scenarios:
                    continue
                if keras_scenarios is not None and FAMILIES[fam]["arch"] == "keras" and scen not in keras_scenarios:
                    continue
                for seed in seeds:
                    t0 = time.perf_counter()
                    run = f"{fam}-{scen}-s{seed}"
                    if resume and os.path.exists(os.path.join(outdir, MEASURED_DIR, run + ".json")):
                        m = load_measured(outdir, run)  # written by an earlier call that stopped later
                    elif FAMILIES[fam]["arch"] == "keras":
                        m = train_keras(outdir, fam, scen, int(seed))
                        save_measured(outdir, m)
                    else:
                        m = train(outdir, fam, scen, int(seed), styles)
                        save_measured(outdir, m)
                    figs = measure(m)
                    figures_all[run] = figs
                    for st in (("keras",) if FAMILIES[fam]["arch"] == "keras" else styles):
                        labels[f"{st}/{run}"] = label(m, st, figs)
                    if timings is not None:
                        timings[run] = time.perf_counter() - t0
                    if progress:
                        progress(run, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(saved)
    path = os.path.join(outdir, LABELS_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(_clean({"labels": labels, "figures": figures_all}), f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)
    return labels


MEASURED_DIR = ".measured"  # OUTDIR/.measured/<run>.json: the measurements, to label again without training


def save_measured(outdir, m):
    d = os.path.join(outdir, MEASURED_DIR)
    os.makedirs(d, exist_ok=True)
    run = f"{m['family']}-{m['scenario']}-s{m['seed']}"
    with open(os.path.join(d, run + ".json"), "w") as f:
        json.dump(_clean(m), f)


def load_measured(outdir, run) -> dict:
    with open(os.path.join(outdir, MEASURED_DIR, run + ".json")) as f:
        m = json.load(f)

    def unnull(x):
        if x is None:
            return math.nan
        if isinstance(x, list):
            return [unnull(v) for v in x]
        return x

    for k in ("loss", "grad", "update", "wnorm", "wnorm_start"):
        m[k] = unnull(m[k])
    m["val"] = {int(k): tuple(unnull(list(v))) for k, v in m["val"].items()}
    m["dead"] = {k: unnull(v) for k, v in m["dead"].items()}
    m["sat"] = {k: unnull(v) for k, v in m["sat"].items()}
    return m


def relabel(outdir) -> dict:
    """The labels of OUTDIR computed again from its saved measurements (after label() changed)."""
    runs = sorted(n[:-5] for n in os.listdir(os.path.join(outdir, MEASURED_DIR)) if n.endswith(".json"))
    styles = [st for st in STYLES + ("keras",) if os.path.isdir(os.path.join(outdir, st))]
    labels, figures_all = {}, {}
    for style, run in ((st, r) for r in runs for st in styles if os.path.isdir(os.path.join(outdir, st, r))):
        key = f"{style}/{run}"
        if run not in figures_all:
            m = load_measured(outdir, run)
            figures_all[run] = (m, measure(m))
        m, figs = figures_all[run]
        labels[key] = label(m, style, figs)
    path = os.path.join(outdir, LABELS_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(_clean({"labels": labels, "figures": {r: v[1] for r, v in figures_all.items()}}), f, indent=1,
                  sort_keys=True)
    os.replace(path + ".tmp", path)
    return labels


def read(outdir) -> dict:
    with open(os.path.join(outdir, LABELS_FILE)) as f:
        return json.load(f)


# ------------------------------------------------------------------ evaluation

SEVERE = ("warning", "error")


def _hit(f, e):
    if f.rule != e["rule"] and f.rule not in e.get("alternatives", ()):
        return False
    names = [t.rsplit("/", 1)[-1] for t in f.tags]
    if e.get("layer") and not any(n == e["layer"] or n.startswith(e["layer"] + ".") for n in names):
        return False
    if e.get("onset") is not None:
        return f.step is not None and abs(f.step - e["onset"]) <= e.get("tolerance", 0)
    return True


def evaluate(outdir, labels=None, cfg=None) -> dict:
    """Diagnoses OUTDIR (every style) and scores each run against its label. Returns {"runs": {key:
    {"label", "found": [(entry, finding or None)], "unsupported": [finding], "severe": [finding]}}}
    plus the table rows of summarise()."""
    import tempfile

    from tb_plus.diagnostics import diagnose
    from tb_plus.store import Logdir

    labels = labels or read(outdir)["labels"]
    with tempfile.TemporaryDirectory(prefix="fam_eval_") as cache:
        ld = Logdir(outdir, cache_dir=cache)
        ld.refresh()
        report = diagnose(ld, cfg=cfg)
    by = {}
    for f in report.findings:
        if f.severity not in SEVERE:
            continue
        key = f.run if f.run in labels else next((k for k in labels if f.run.startswith(k + "/")), None)
        if key is not None:
            by.setdefault(key, []).append(f)
    runs = {}
    for key, lab in labels.items():
        mine = by.get(key, [])
        found = [(e, next((f for f in mine if _hit(f, e)), None)) for e in lab["expect"]]
        ok = set(lab["allow"]) | {e["rule"] for e in lab["expect"]}
        unsupported = [f for f in mine if f.rule not in ok] if not lab["healthy"] else []
        runs[key] = {"label": lab, "found": found, "unsupported": unsupported, "severe": mine}
    return {"runs": runs}


def summarise(result, group) -> list:
    """Rows (group value, trainings with expectations, expected found / expected, recall, healthy runs,
    healthy with a warning or error, share, unsupported findings, onset latency median / worst)."""
    groups = {}
    for key, r in result["runs"].items():
        groups.setdefault(group(r["label"]), []).append(r)
    rows = []
    for g in sorted(groups):
        rs = groups[g]
        expected = [(e, f) for r in rs for e, f in r["found"]]
        hits = [(e, f) for e, f in expected if f is not None]
        healthy = [r for r in rs if r["label"]["healthy"]]
        alarmed = [r for r in healthy if r["severe"]]
        unsup = sum(len(r["unsupported"]) for r in rs)
        lat = [f.step - e["onset"] for e, f in hits if e.get("onset") is not None and f.step is not None]
        rows.append({"group": g, "expected": len(expected), "found": len(hits),
                     "recall": len(hits) / len(expected) if expected else None,
                     "healthy": len(healthy), "healthy_alarmed": len(alarmed),
                     "false_alarm_share": len(alarmed) / len(healthy) if healthy else None,
                     "unsupported": unsup,
                     "latency_median": float(np.median(np.abs(lat))) if lat else None,
                     "latency_worst": int(max(lat, key=abs)) if lat else None})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--families", help="comma-separated (default: all)")
    ap.add_argument("--scenarios", help="comma-separated (default: all of each family)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--subset", choices=sorted(SUBSETS), help="a named subset (seeds and scenarios)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true", help="keep the trainings an earlier call measured")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    scen = args.scenarios.split(",") if args.scenarios else None
    kscen = None
    if args.subset:
        seeds, scen = list(SUBSETS[args.subset]["seeds"]), list(SUBSETS[args.subset]["scenarios"])
        kscen = SUBSETS[args.subset].get("keras_scenarios")
    fams = args.families.split(",") if args.families else None
    t0 = time.perf_counter()
    labels = make_families(args.outdir, fams, scen, seeds, threads=args.threads, resume=args.resume,
                           keras_scenarios=kscen,
                           progress=lambda run, dt: print(f"{run}: {dt:.1f}s", flush=True))
    n = len({k.split("/", 1)[1] for k in labels})
    print(f"{n} trainings, {len(labels)} runs in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
