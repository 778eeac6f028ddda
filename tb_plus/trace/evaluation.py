"""Classifier scores from a training framework's evaluation, counted in tb_plus evaluation
accumulators (tb_plus.evaluation.BinaryAccumulator) for the integrations (tb_plus.trace.hf,
tb_plus.trace.lightning). Needs numpy only; torch tensors are copied to the host.

Shapes: logits or probabilities of shape [n] or [n, 1] are a binary classifier's (the positive
class); [n, 2] is a two-class softmax (class 1 is the positive one); [n, C] with C > 2 is counted one
versus rest, one accumulator per class. Logits are turned into probabilities in float64 (sigmoid, or
softmax over the last dimension). Labels are 0/1 (binary) or class indices; samples labelled below 0
(the -100 of an ignored token) are left out.
"""

from __future__ import annotations

import numpy as np

from tb_plus.evaluation.accumulator import BinaryAccumulator

METRICS = ("auc_roc", "average_precision")


def to_numpy(x) -> np.ndarray:
    if type(x).__module__.startswith("torch"):
        x = x.detach()
        if x.is_floating_point():
            x = x.double()
        return x.cpu().numpy()
    return np.asarray(x)


def probabilities(values, from_logits: bool) -> np.ndarray:
    """[n] (binary) or [n, C] (C > 2) float64 probabilities from logits or probabilities."""
    v = to_numpy(values).astype(np.float64)
    if v.ndim == 0:
        v = v.reshape(1)
    if v.ndim > 2 or (v.ndim == 2 and v.shape[1] == 0):
        raise ValueError(f"scores of shape {list(v.shape)}: expected [n], [n, 1] or [n, classes]")
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim == 1:
        if from_logits:
            with np.errstate(over="ignore"):
                v = 1.0 / (1.0 + np.exp(-v))
        return v
    if from_logits:
        v = np.exp(v - v.max(axis=1, keepdims=True))
        v /= v.sum(axis=1, keepdims=True)
    return v[:, 1] if v.shape[1] == 2 else v


class ClassifierScores:
    """Accumulators of one evaluation: one for a binary classifier, one per class (one versus rest)
    for more classes. `tag` names the binary summary; class k's is `<tag>/<class name or k>`."""

    def __init__(self, tag: str, class_names=None, bits: int = 13):
        self.tag = tag
        self.class_names = list(class_names) if class_names is not None else None
        self.bits = bits
        self.accs = None  # {summary tag: BinaryAccumulator}; None before the first batch
        self._classes = None

    def update(self, scores, labels, from_logits: bool) -> None:
        p = probabilities(scores, from_logits)
        y = to_numpy(labels).reshape(-1)
        if len(y) != len(p):
            raise ValueError(f"{len(p)} scores but {len(y)} labels")
        keep = y >= 0
        if not keep.all():
            p, y = p[keep], y[keep]
        classes = 0 if p.ndim == 1 else p.shape[1]
        if self._classes is None:
            self._classes = classes
            if classes:
                names = self.class_names or [str(k) for k in range(classes)]
                if len(names) != classes:
                    raise ValueError(f"{len(names)} class names for {classes} classes")
                tags = [f"{self.tag}/{n}" for n in names]
            else:
                tags = [self.tag]
            self.accs = {t: BinaryAccumulator("probability", self.bits) for t in tags}
        elif classes != self._classes:
            raise ValueError(f"scores of {classes or 'a binary classifier'} classes after {self._classes or 'binary'}")
        if not classes:
            self.accs[self.tag].update(p, y > 0.5)
            return
        y = y.astype(np.int64)
        for k, acc in enumerate(self.accs.values()):
            acc.update(p[:, k], y == k)

    def __bool__(self):
        return bool(self.accs) and any(len(a) for a in self.accs.values())

    def merge_gathered(self, gathered) -> None:
        """Replaces the counts by the sum of every rank's to_tensors() (a list with one entry per
        rank, this one's included), as all_gather_object returns them."""
        from tb_plus.evaluation.buckets import Scheme

        fields = dict(Scheme("probability", self.bits).fields())
        merged = {}
        for tensors in gathered:
            for tag, t in (tensors or {}).items():
                acc = BinaryAccumulator.from_tensor(t, fields)
                merged[tag] = acc if tag not in merged else merged[tag].merge(acc)
        if merged:
            self.accs = merged
            self._classes = 0 if list(merged) == [self.tag] else len(merged)

    def to_tensors(self) -> dict:
        return {t: a.to_tensor() for t, a in (self.accs or {}).items()}

    def metrics(self, prefix: str = "") -> dict:
        """{prefix + auc_roc, prefix + average_precision}: the binary classifier's, or with classes
        the mean over the classes that have both labels (macro), and per class <metric>_<class>."""
        out = {}
        if not self.accs:
            return out
        if not self._classes:
            acc = self.accs[self.tag]
            return {prefix + "auc_roc": acc.auc(), prefix + "average_precision": acc.average_precision()}
        per = {m: [] for m in METRICS}
        for tag, acc in self.accs.items():
            name = tag[len(self.tag) + 1:]
            for m, v in (("auc_roc", acc.auc()), ("average_precision", acc.average_precision())):
                out[f"{prefix}{m}_{name}"] = v
                if np.isfinite(v):
                    per[m].append(v)
        for m in METRICS:
            out[prefix + m] = float(np.mean(per[m])) if per[m] else float("nan")
        return out

    def events(self, step: int) -> list:
        """One evaluation event per accumulator at `step`."""
        import time

        from tensorboard.compat.proto import event_pb2

        wall = time.time()
        return [event_pb2.Event(wall_time=wall, step=int(step), summary=acc.summary(tag))
                for tag, acc in (self.accs or {}).items()]

    def write(self, target, step: int) -> None:
        """One evaluation summary per accumulator at `step` to `target` (a SummaryWriter or a directory)."""
        for tag, acc in (self.accs or {}).items():
            acc.write(target, tag, step)
        if hasattr(target, "flush"):
            target.flush()
