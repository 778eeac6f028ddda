"""The Keras tracer: a callback writing the same packed summaries as the PyTorch tracer.

    model.fit(..., callbacks=[tb_plus.trace.keras.TracerCallback("runs/exp1", every=1)])

Per trainable variable (family "params", metadata.PARAM_STATS): weight norm, max |W|, the update over
the batch (||W_after - W_before||, the ratios ||dW||/||W|| and mean|dW|/mean|W|) and NaN/Inf counts
of the weights. Keras callbacks do not see gradients, so the gradient statistics (grad_norm,
grad_max, grad_nan, grad_inf) are NaN here; the update statistics show what the optimizer did with
them. Statistics are computed with TensorFlow ops on the variables' device and written by the same
background writer as the PyTorch tracer. Histograms of the weights every `histograms_every` steps.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from tb_plus import metadata
from tb_plus.trace.writer import EventWriter, histogram_event, tensor_event

HIST_BINS = 30


class TracerCallback(tf.keras.callbacks.Callback):
    def __init__(self, logdir, every=1, histograms_every=100, prefix="trace"):
        super().__init__()
        if every < 1:
            raise ValueError("every must be >= 1")
        self.logdir, self.every, self.histograms_every, self.prefix = logdir, int(every), int(histograms_every or 0), prefix
        self.global_step = 0
        self._writer = None
        self._before = None
        self._sent_meta = False

    def _vars(self):
        return list(self.model.trainable_variables)

    def on_train_begin(self, logs=None):
        if self._writer is None:
            self._writer = EventWriter(self.logdir)

    def on_train_batch_begin(self, batch, logs=None):
        if self.global_step % self.every == 0:
            self._before = [tf.identity(v) for v in self._vars()]

    def on_train_batch_end(self, batch, logs=None):
        s = self.global_step
        if s % self.every == 0:
            self._record(s)
        self.global_step = s + 1

    def _record(self, s):
        variables = self._vars()
        names = [getattr(v, "path", None) or v.name for v in variables]
        rows = []
        nan = float("nan")
        for i, v in enumerate(variables):
            w = tf.cast(tf.convert_to_tensor(v), tf.float32)
            wn = tf.norm(tf.reshape(w, [-1]))
            w1 = tf.reduce_mean(tf.abs(w))
            wmax = tf.reduce_max(tf.abs(w))
            if self._before is not None and i < len(self._before):
                d = w - tf.cast(self._before[i], tf.float32)
                un = tf.norm(tf.reshape(d, [-1]))
                ratio, ratio_mean = un / wn, tf.reduce_mean(tf.abs(d)) / w1
            else:
                un = ratio = ratio_mean = tf.constant(nan)
            wnan = tf.reduce_sum(tf.cast(tf.math.is_nan(w), tf.float32))
            winf = tf.reduce_sum(tf.cast(tf.math.is_inf(w), tf.float32))
            rows.append([wn, tf.constant(nan), un, ratio, ratio_mean, wmax, tf.constant(nan), tf.constant(nan),
                         tf.constant(nan), wnan, winf])
        self._before = None
        matrix = np.array([[float(x) for x in r] for r in rows], dtype=np.float32).reshape(len(rows),
                                                                                             len(metadata.PARAM_STATS))
        tag = f"{self.prefix}/params"
        md = None
        if not self._sent_meta:
            md = metadata.summary_metadata(metadata.TRACE_PLUGIN, {
                "version": metadata.TRACE_VERSION, "family": "params", "layers": names,
                "stats": list(metadata.PARAM_STATS),
            })
            self._sent_meta = True
        wall = time.time()
        events = [tensor_event(tag, s, matrix, md, wall)]
        if self.histograms_every and s % self.histograms_every == 0:
            for name, v in zip(names, variables):
                x = np.asarray(v.numpy(), dtype=np.float64).reshape(-1)
                x = x[np.isfinite(x)]
                if x.size:
                    counts, edges = np.histogram(x, bins=HIST_BINS)
                    events.append(histogram_event(f"{self.prefix}/hist/weights/{name}", s, edges, counts, wall))
        self._writer.put(None, lambda: events)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @property
    def errors(self) -> list:
        return list(self._writer.errors) if self._writer is not None else []
