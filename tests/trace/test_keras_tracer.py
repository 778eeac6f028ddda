"""The Keras tracer callback (TensorFlow is installed in CI)."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tb_plus import metadata  # noqa: E402
from tb_plus.store import Logdir  # noqa: E402


class Snapshots(tf.keras.callbacks.Callback):
    """The weights before and after every batch, for the reference computation."""

    def __init__(self):
        super().__init__()
        self.before, self.after = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.before.append([v.numpy().copy() for v in self.model.trainable_variables])

    def on_train_batch_end(self, batch, logs=None):
        self.after.append([v.numpy().copy() for v in self.model.trainable_variables])


def test_keras_callback_statistics(tmp_path):
    from tb_plus.trace.keras import TracerCallback

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x[:, :1] * 2 + 0.1 * rng.normal(size=(256, 1))).astype("float32")
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(8, activation="relu"),
                                 tf.keras.layers.Dense(1)])
    model.compile(tf.keras.optimizers.SGD(0.05), "mse")
    tracer = TracerCallback(str(tmp_path / "logs"), every=1, histograms_every=4)
    snaps = Snapshots()
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[snaps, tracer])
    tracer.close()
    assert tracer.errors == []
    ld = Logdir(tmp_path / "logs", tmp_path / "cache")
    content = metadata.parse_content(ld.tag_info(".", "trace/params").plugin_content)
    layers = content["layers"]
    assert len(layers) == 4 and content["stats"] == list(metadata.PARAM_STATS)
    for k in (0, 3, 7):
        for i, layer in enumerate(layers):
            a, b = snaps.after[k][i].astype(np.float64), snaps.before[k][i].astype(np.float64)
            got = lambda stat: ld.scalars(".", f"trace/{stat}/{layer}").value[k]  # noqa: E731
            assert got("weight_norm") == pytest.approx(np.linalg.norm(a), rel=1e-5)
            assert got("update_norm") == pytest.approx(np.linalg.norm(a - b), rel=1e-4, abs=1e-7)
            assert got("update_ratio") == pytest.approx(np.linalg.norm(a - b) / np.linalg.norm(a), rel=1e-4, abs=1e-7)
            assert got("weight_max") == pytest.approx(np.abs(a).max(), rel=1e-6)
            assert got("weight_nan") == 0 and np.isnan(got("grad_norm"))  # callbacks cannot see gradients
    assert ld.scalars(".", f"trace/weight_norm/{layers[0]}").step.tolist() == list(range(8))
    assert [h.step for h in ld.histograms(".", f"trace/hist/weights/{layers[0]}")] == [0, 4]
