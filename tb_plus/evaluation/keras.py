"""Keras side of the evaluation accumulator (needs TensorFlow; nothing else in tb_plus does).

    from tb_plus.evaluation.keras import StreamingAUC, EvaluationCallback

    model.compile(..., metrics=[StreamingAUC()])               # AUC from bucket counts, in fit's logs
    model.fit(..., callbacks=[EvaluationCallback(logdir, "eval/val", (x_val, y_val))])
                                                               # counts written each epoch: ROC, PR,
                                                               # distributions and AUC over epochs in TB+

Both use the same float-bit buckets as `BinaryAccumulator` (tb_plus.evaluation.buckets), so a
metric's counts, a callback's summary and a PyTorch job's summary can be merged.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tb_plus.evaluation.accumulator import BinaryAccumulator
from tb_plus.evaluation.buckets import Scheme


def bucket_index(scheme: Scheme, scores):
    """The scheme's global bucket index of each score, in TF ops (same values as Scheme.index)."""
    s = tf.cast(tf.reshape(scores, [-1]), tf.float64)
    if scheme.kind == "probability":
        hi = s > 0.5
        c = tf.where(hi, 1.0 - s, s)
    else:
        hi = s >= 0
        c = tf.abs(s)
    c = tf.maximum(tf.cast(c, tf.float32), 0.0)
    b = tf.cast(tf.bitwise.right_shift(tf.bitcast(c, tf.int32), 23 - scheme.bits), tf.int64)
    b = tf.clip_by_value(b - ((scheme.emin + 127) << scheme.bits), 0, scheme.nside - 1)
    if scheme.kind == "probability":
        return tf.where(hi, scheme.size - 1 - b, b)
    return tf.where(hi, scheme.nside + b, scheme.nside - 1 - b)


class StreamingAUC(tf.keras.metrics.Metric):
    """AUC-ROC (or average precision, curve="PR") from bucket counts: accurate to about 1e-8 where
    200 thresholds give 1e-3 to 1e-2 (see bench/bench_evaluation.py). NaN scores are ignored."""

    def __init__(self, name="auc_buckets", kind="probability", bits=13, curve="ROC", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scheme = Scheme(kind, bits)
        self.curve = curve.upper()
        if self.curve not in ("ROC", "PR"):
            raise ValueError(f"curve must be ROC or PR, not {curve!r}")
        self.counts = self.add_weight(name="counts", shape=(2 * self.scheme.size,), initializer="zeros",
                                      dtype="float64")

    def update_state(self, y_true, y_pred, sample_weight=None):
        s = tf.reshape(tf.cast(y_pred, tf.float64), [-1])
        y = tf.reshape(tf.cast(y_true, tf.float64), [-1]) > 0.5
        w = tf.ones_like(s) if sample_weight is None else tf.reshape(tf.cast(sample_weight, tf.float64), [-1])
        keep = tf.logical_not(tf.math.is_nan(s))
        s, y, w = tf.boolean_mask(s, keep), tf.boolean_mask(y, keep), tf.boolean_mask(w, keep)
        g = bucket_index(self.scheme, s) + tf.cast(y, tf.int64) * self.scheme.size
        var = getattr(self.counts, "value", self.counts)  # Keras 3 wraps a tf.Variable
        if hasattr(var, "scatter_nd_add"):
            var.scatter_nd_add(tf.expand_dims(g, 1), w)  # touches only the counted buckets
        else:
            self.counts.assign_add(tf.math.unsorted_segment_sum(w, g, 2 * self.scheme.size))

    def result(self):
        n = self.scheme.size
        neg, pos = self.counts[:n], self.counts[n:]
        N, P = tf.reduce_sum(neg), tf.reduce_sum(pos)
        if self.curve == "ROC":
            below = tf.cumsum(neg, exclusive=True)
            return tf.math.divide_no_nan(tf.reduce_sum(pos * (below + 0.5 * neg)), P * N)
        tp = tf.cumsum(pos, reverse=True)
        fp = tf.cumsum(neg, reverse=True)
        used = (pos + neg) > 0
        precision = tf.math.divide_no_nan(tp, tp + fp)
        return tf.math.divide_no_nan(tf.reduce_sum(tf.where(used, pos * precision, 0.0)), P)

    def reset_state(self):
        self.counts.assign(tf.zeros_like(self.counts))

    def accumulator(self) -> BinaryAccumulator:
        """The counts as a BinaryAccumulator (to write, merge or draw curves)."""
        c = self.counts.numpy()
        n = self.scheme.size
        idx = np.flatnonzero(c[:n] + c[n:])
        return BinaryAccumulator.from_tensor(np.stack([idx.astype(np.float64), c[:n][idx], c[n:][idx]]),
                                             dict(self.scheme.fields()))


class EvaluationCallback(tf.keras.callbacks.Callback):
    """At the end of every `every`-th epoch, scores `data` ((x, y) or a tf.data.Dataset of (x, y))
    with the model and writes the bucket counts as one tb_plus evaluation summary at that epoch
    (or at the global step when `step="batches"`) to `target` (a log directory or a writer)."""

    def __init__(self, target, tag, data, kind="probability", every=1, batch_size=1024, step="epochs"):
        super().__init__()
        self.target, self.tag, self.data = target, tag, data
        self.kind, self.every, self.batch_size, self.step_kind = kind, int(every), batch_size, step
        self.seen_batches = 0
        self.last = None  # the last BinaryAccumulator written

    def on_train_batch_end(self, batch, logs=None):
        self.seen_batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        acc = BinaryAccumulator(self.kind)
        if isinstance(self.data, tf.data.Dataset):
            for x, y in self.data:
                acc.update(self.model(x, training=False).numpy(), np.asarray(y))
        else:
            x, y = self.data
            acc.update(self.model.predict(x, batch_size=self.batch_size, verbose=0), np.asarray(y))
        step = self.seen_batches if self.step_kind == "batches" else epoch
        acc.write(self.target, self.tag, step)
        self.last = acc
