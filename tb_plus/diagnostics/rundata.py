"""What the rules read of one run, gathered from the store: its losses (training and validation),
learning rates, validation metrics, per-layer statistics (from the tracer's packed summaries, or
from hand-logged per-layer norm tags) and the class count when it is known."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np

from tb_plus import metadata
from tb_plus.diagnostics.signals import clean


@dataclasses.dataclass
class Sig:
    """One scalar series, cleaned (sorted by step, one point per step)."""

    tag: str
    step: np.ndarray
    value: np.ndarray
    wall: np.ndarray
    run: str = ""  # the run it comes from when not the diagnosed run (a Keras validation run)


@dataclasses.dataclass
class Layers:
    """A per-layer statistic: one series per layer, layers in the model's order (input first)."""

    stat: str
    names: list
    tags: list
    step: list  # arrays, one per layer
    value: list

    def __len__(self):
        return len(self.names)


@dataclasses.dataclass
class RunData:
    run: str
    losses: list = dataclasses.field(default_factory=list)
    val_losses: list = dataclasses.field(default_factory=list)
    lrs: list = dataclasses.field(default_factory=list)
    metrics: list = dataclasses.field(default_factory=list)  # validation metrics
    layers: dict = dataclasses.field(default_factory=dict)  # stat -> Layers (params family / hand-logged)
    acts: dict = dataclasses.field(default_factory=dict)  # stat -> Layers (activations family)
    traced: bool = False
    num_classes: int | None = None
    batch_size: int | None = None  # when logged (hparams, the HF Trainer's args text)
    # "rl" when the run logs episode returns (reinforcement learning): its losses chase moving
    # targets (value, Q, policy losses), so they are kept apart and not judged as supervised losses
    # the kind of training (tb_plus.diagnostics.kinds: supervised, rl, lm_pretrain, finetune, unknown)
    kind: str | None = None
    rl_losses: list = dataclasses.field(default_factory=list)
    # {role: [tags]} from the writers' tag conventions (kinds.CONVENTIONS); series(role) reads them
    roles: dict = dataclasses.field(default_factory=dict)
    ld: object = None  # the Logdir, for series(); None in hand-built RunData
    last_wall: float | None = None
    walls: np.ndarray | None = None  # write times of its main series, for stall detection
    cache: dict = dataclasses.field(default_factory=dict)  # what several rules compute (smoothed losses)


    def series(self, role: str) -> list:
        """The run's series of a role (kinds.ROLES), read once: [Sig]."""
        key = ("role", role)
        if key not in self.cache:
            self.cache[key] = [_sig(self.ld, self.run, t) for t in self.roles.get(role, ())] if self.ld is not None \
                else []
        return self.cache[key]


def _sig(ld, run, tag, owner=""):
    s = ld.scalars(run, tag)
    step, value, wall = clean(s.step, s.value, s.wall_time)
    return Sig(tag, step, value, wall, owner)


def _is_validation(cfg, run, tag, siblings=None):
    return (cfg.matches("validation", tag) or cfg.matches("validation_run", run.rsplit("/", 1)[-1])
            or _scalars_part(cfg, run, tag, "validation_run", siblings))


def _scalars_part(cfg, run, tag, which, siblings=None):
    """Whether `tag` of `run` is one curve of torch's add_scalars(tag, {"train": ..., "val": ...}): the
    writer puts each key in a sibling run named <tag, '/' as '_'>_<key>, holding the tag itself. True
    when the run's key matches `which` (train_run or validation_run) and, for siblings given, a sibling
    holds the other kind's key."""
    parent, _, last = run.rpartition("/")
    head = tag.replace("/", "_") + "_"
    if not last.startswith(head) or not cfg.matches(which, last[len(head):]):
        return False
    if siblings is None:
        return True
    other = "train_run" if which == "validation_run" else "validation_run"
    for sib in siblings:
        p, _, l = sib.rpartition("/")
        if sib != run and p == parent and l.startswith(head) and cfg.matches(other, l[len(head):]):
            return True
    return False


def _loss_and_metric_tags(cfg, tags):
    return [t for t in tags if cfg.matches("loss", t) or cfg.matches("metric", t)]


def _natural(tags):
    from tb_plus.query.tagtree import natural_key

    return sorted(tags, key=natural_key)


def _tracer_layers(ld, run, tag, out: dict):
    from tb_plus.trace.series import cube

    c = cube(ld, run, tag)
    if not len(c.steps):
        return False
    prefix = tag.rpartition("/")[0] or tag
    for j, st in enumerate(c.stats):
        out[st] = Layers(st, list(c.layers), [f"{prefix}/{st}/{layer}" for layer in c.layers],
                         [c.steps] * len(c.layers), [c.values[:, i, j] for i in range(len(c.layers))])
    return True


def _hand_layers(ld, run, tags, stat):
    names, steps, values = [], [], []
    for tag in _natural(tags):
        s = _sig(ld, run, tag)
        names.append(tag)
        steps.append(s.step)
        values.append(s.value)
    return Layers(stat, names, list(names), steps, values)


def gather(ld, run: str, cfg, runs=None) -> RunData:
    """The run's data for the rules. `runs`: every run of the log directory (to pair a Keras
    <x>/train run with its <x>/validation sibling)."""
    rd = RunData(run)
    derived = ld.derived_tags(run)
    scalar_tags = [t for t in ld.tags(run) if t not in derived]
    grad_tags, weight_tags = [], []
    traced_batch = None
    from tb_plus.diagnostics.kinds import classify

    rd.ld = ld
    rd.kind, rd.roles, _ = classify(scalar_tags, cfg)
    if any(cfg.matches("rl_return", t) for t in scalar_tags):
        rd.kind = "rl"
    for tag in scalar_tags:
        if rd.kind == "rl" and cfg.matches("loss", tag):
            rd.rl_losses.append(_sig(ld, run, tag))
            continue
        if cfg.matches("num_classes", tag):
            s = ld.scalars(run, tag)
            finite = s.value[np.isfinite(s.value)]
            if len(finite) and finite[-1] >= 2 and float(finite[-1]).is_integer():
                rd.num_classes = int(finite[-1])
            continue
        if cfg.matches("loss", tag):
            (rd.val_losses if _is_validation(cfg, run, tag, runs) else rd.losses).append(_sig(ld, run, tag))
        elif cfg.matches("lr", tag):
            rd.lrs.append(_sig(ld, run, tag))
        elif cfg.matches("metric", tag) and _is_validation(cfg, run, tag, runs):
            rd.metrics.append(_sig(ld, run, tag))
        elif cfg.matches("grad_norm", tag):
            grad_tags.append(tag)
        elif cfg.matches("weight_norm", tag):
            weight_tags.append(tag)
    # torch's add_scalars(T, {"train": ..., "val": ...}): the <T>_train run takes the tag T of its
    # <T>_val (valid, validation, test, ...) siblings as its validation
    if runs is not None:
        parent = run.rpartition("/")[0]
        for tag in [t for t in _loss_and_metric_tags(cfg, scalar_tags) if _scalars_part(cfg, run, t, "train_run")]:
            head = tag.replace("/", "_") + "_"
            for other in runs:
                op, _, olast = other.rpartition("/")
                if other != run and op == parent and olast.startswith(head) and \
                        cfg.matches("validation_run", olast[len(head):]) and tag in ld.tags(other):
                    (rd.val_losses if cfg.matches("loss", tag) else rd.metrics).append(_sig(ld, other, tag, other))
    # a Keras-style <x>/train run: its <x>/validation sibling's losses and metrics are its validation
    parent, _, last = run.rpartition("/")
    if runs is not None and cfg.matches("train_run", last):
        for other in runs:
            op, _, olast = other.rpartition("/")
            if other != run and op == parent and cfg.matches("validation_run", olast):
                for tag in ld.tags(other):
                    if cfg.matches("loss", tag):
                        rd.val_losses.append(_sig(ld, other, tag, other))
                    elif cfg.matches("metric", tag):
                        rd.metrics.append(_sig(ld, other, tag, other))
    # per-layer statistics: the tracer's, else hand-logged norms
    for tag in ld.tags(run, "tensors"):
        info = ld.tag_info(run, tag)
        if info.plugin_name != metadata.TRACE_PLUGIN:
            continue
        try:
            content = metadata.parse_content(info.plugin_content)
        except ValueError:
            continue
        family = content.get("family")
        batch = content.get("batch")
        if isinstance(batch, int) and not isinstance(batch, bool) and 1 <= batch <= 1 << 24:
            traced_batch = batch
        if family == "params" and not rd.traced:
            rd.traced = _tracer_layers(ld, run, tag, rd.layers)
        elif family == "activations" and not rd.acts:
            _tracer_layers(ld, run, tag, rd.acts)
    if not rd.traced:
        if grad_tags:
            rd.layers["grad_norm"] = _hand_layers(ld, run, grad_tags, "grad_norm")
        if weight_tags:
            rd.layers["weight_norm"] = _hand_layers(ld, run, weight_tags, "weight_norm")
    if rd.num_classes is None:
        rd.num_classes = _hparam_classes(ld, run, cfg, runs)
    if rd.num_classes is None:
        rd.num_classes = _config_text_classes(ld, run)
    if rd.num_classes is not None:
        rd.batch_size = _batch_size(ld, run, runs) or traced_batch
    _cut_at_breakage(rd)
    main = rd.losses[0] if rd.losses else (rd.rl_losses[0] if rd.rl_losses else None)
    if main is None and scalar_tags:
        main = _sig(ld, run, scalar_tags[0])
    if main is not None and len(main.wall):
        w = main.wall[np.isfinite(main.wall)]
        rd.walls = np.sort(w)
        rd.last_wall = float(rd.walls[-1]) if len(w) else None
    return rd


def _hparam_classes(ld, run, cfg, runs=None):
    """The class count from the run's hparams (its own, or those add_hparams wrote into a
    <run>/<timestamp> sub-run): the first key matching the num_classes pattern (num_classes,
    num_labels, n_classes, ..., also under a prefix such as model/num_labels) with a whole value >= 2."""
    from tb_plus.query.hparams import hparams_of

    hp = hparams_of(ld, run, runs)
    for k in sorted(hp):
        v = hp[k]
        if not cfg.matches("num_classes", k) or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v) and v >= 2 and float(v).is_integer():
            return int(v)
    return None


_CLASSIFIER = re.compile(r"For(Sequence|Token|Image|Audio|Video)Classification$")
MAX_CONFIG_TEXT = 1 << 20  # bytes of a model_config text read at most


_BATCH_KEYS = re.compile(r"(^|/)(batch_size|batch|train_batch_size|per_device_train_batch_size|bs)$", re.I)


def _batch_size(ld, run, runs=None):
    """The batch size from the run's hparams (batch_size, train_batch_size, ...), else from the
    Hugging Face Trainer's args text (per_device_train_batch_size x gradient_accumulation_steps is
    not the batch the loss is reduced over: the per-device size is)."""
    from tb_plus.query.hparams import hparams_of

    hp = hparams_of(ld, run, runs)
    for k in sorted(hp):
        v = hp[k]
        if _BATCH_KEYS.search(k) and isinstance(v, (int, float)) and not isinstance(v, bool) and \
                math.isfinite(v) and 1 <= v <= 1 << 24 and float(v).is_integer():
            return int(v)
    conf = _text_json(ld, run, r"(.*/)?args(/text_summary)?")
    v = conf.get("per_device_train_batch_size") if conf else None
    if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1 << 24:
        return v
    return None


def _text_json(ld, run, pattern):
    """The first text summary whose tag matches `pattern`, parsed as a JSON object (None when there
    is none, it is larger than MAX_CONFIG_TEXT or not a JSON object)."""
    for tag in [t for t in ld.tags(run, "tensors") if re.fullmatch(pattern, t)][:2]:
        if ld.tag_info(run, tag).plugin_name != "text":
            continue
        try:
            data = ld.tensors(run, tag)[:1]
            raw = data[0].numpy.ravel()[0] if data and data[0].numpy.size else b""
        except Exception:  # a damaged record is no configuration
            continue
        if not isinstance(raw, bytes) or len(raw) > MAX_CONFIG_TEXT:
            continue
        try:
            conf = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            continue
        if isinstance(conf, dict):
            return conf
    return None


def _config_text_classes(ld, run):
    """The class count from the Hugging Face Trainer's model_config text summary (the model's
    config as JSON): num_labels, else the size of id2label, for a model whose architecture is a
    classifier (...ForSequenceClassification and the like; every config has a default id2label,
    a masked or causal language model's too, which is no class count)."""
    conf = _text_json(ld, run, r"(.*/)?model_config(/text_summary)?")
    if conf is None:
        return None
    archs = conf.get("architectures")
    if not isinstance(archs, list) or not any(isinstance(a, str) and _CLASSIFIER.search(a) for a in archs):
        return None
    n = conf.get("num_labels")
    if not (isinstance(n, int) and not isinstance(n, bool)):
        labels = conf.get("id2label")
        n = len(labels) if isinstance(labels, dict) else None
    return int(n) if n is not None and 2 <= n <= 10**7 else None


NONFINITE_STATS = ("grad_nan", "grad_inf", "weight_nan", "weight_inf")


def _cut_at_breakage(rd):
    """Once the training loss is NaN or Inf every later statistic is garbage (NaN activations look
    like dead units, NaN weights like frozen ones): per-layer statistics stop there, except the
    non-finite counts that say where the breakage entered."""
    broken = None
    for sig in rd.losses:
        bad = np.flatnonzero(~np.isfinite(sig.value))
        if len(bad):
            s = int(sig.step[bad[0]])
            broken = s if broken is None else min(broken, s)
    if broken is None:
        return
    for group in (rd.layers, rd.acts):
        for stat, lay in group.items():
            if stat in NONFINITE_STATS:
                continue
            for i in range(len(lay)):
                keep = lay.step[i] < broken
                lay.step[i], lay.value[i] = lay.step[i][keep], lay.value[i][keep]
