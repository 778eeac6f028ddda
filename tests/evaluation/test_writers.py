"""The one-line write paths: PyTorch loop helper, Keras metric and callback (TensorFlow installed in CI)."""

import numpy as np
import pytest

from tb_plus.evaluation import BinaryAccumulator, log_evaluation
from tests.evaluation.test_accumulator import exact_ap, exact_auc, gaussians


def test_log_evaluation_from_a_torch_loop(tmp_path):
    torch = pytest.importorskip("torch")
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    from tb_plus.store import Logdir

    s, y = gaussians(400_000, 0.1, 1.0, "logit", seed=2)
    w = torch_tb.SummaryWriter(str(tmp_path / "logs"))
    for step in range(4):
        part = slice(step * 100_000, (step + 1) * 100_000)
        log_evaluation(w, "eval/ctr", step, torch.tensor(s[part]), torch.tensor(y[part]), kind="logit")
    w.close()
    ld = Logdir(tmp_path / "logs", tmp_path / "cache")
    auc = ld.scalars(".", "eval/ctr/auc_roc")
    assert auc.step.tolist() == [0, 1, 2, 3]
    for k in range(4):
        part = slice(k * 100_000, (k + 1) * 100_000)
        assert abs(auc.value[k] - exact_auc(s[part], y[part])) <= 1e-6
    ap = ld.scalars(".", "eval/ctr/average_precision")
    assert abs(ap.value[0] - exact_ap(s[:100_000], y[:100_000])) <= 1e-4
    vol = ld.scalars(".", "eval/ctr/auc_roc_volatility")
    assert np.isnan(vol.value[0]) and vol.value[3] == pytest.approx(np.std(auc.value), rel=1e-9)
    assert {"eval/ctr/auc_roc", "eval/ctr/average_precision"} <= set(ld.tags("."))


def test_keras_metric_and_callback(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from tb_plus.evaluation.keras import EvaluationCallback, StreamingAUC, bucket_index
    from tb_plus.store import Logdir

    s, y = gaussians(30_000, 0.2, 2.0, "probability", seed=4)
    acc = BinaryAccumulator().update(s, y)
    assert np.array_equal(bucket_index(acc.scheme, tf.constant(s)).numpy(), acc.scheme.index(s))
    m = StreamingAUC()
    for i in range(0, len(s), 10_000):
        m.update_state(y[i : i + 10_000], s[i : i + 10_000])
    assert abs(float(m.result()) - exact_auc(s, y)) <= 1e-6
    pr = StreamingAUC(curve="PR")
    pr.update_state(y, s)
    assert abs(float(pr.result()) - exact_ap(s, y)) <= 1e-4
    assert m.accumulator().auc() == pytest.approx(acc.auc(), abs=1e-12)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 4)).astype("float32")
    labels = (x[:, 0] + 0.5 * rng.normal(size=2000) > 0).astype("float32")
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=[StreamingAUC()])
    cb = EvaluationCallback(str(tmp_path / "logs"), "eval/val", (x[:500], labels[:500]))
    hist = model.fit(x, labels, epochs=2, batch_size=200, verbose=0, callbacks=[cb])
    assert 0.0 <= hist.history["auc_buckets"][-1] <= 1.0
    _, evaluated = model.evaluate(x, labels, batch_size=250, verbose=0)  # fixed weights: comparable
    # the same batches as evaluate's: other batch shapes may take other matmul kernels, whose last-bit
    # differences would move a score across a bucket edge now and then (machine-dependent)
    pred = model.predict(x, batch_size=250, verbose=0).reshape(-1)
    same = BinaryAccumulator().update(pred, labels)  # the same buckets, counted by numpy/C
    assert evaluated == pytest.approx(same.auc(), abs=1e-9)
    assert abs(evaluated - exact_auc(pred, labels > 0.5)) <= same.auc_error_bound() + 1e-12  # equal when every shared bucket holds one pair
    ld = Logdir(tmp_path / "logs", tmp_path / "cache")
    auc = ld.scalars(".", "eval/val/auc_roc")
    assert auc.step.tolist() == [0, 1]
    scores = model.predict(x[:500], batch_size=cb.batch_size, verbose=0).reshape(-1)  # the callback's batches
    same = BinaryAccumulator().update(scores, labels[:500])
    assert auc.value[-1] == pytest.approx(same.auc(), abs=1e-12) and cb.last.auc() == auc.value[-1]
    assert abs(auc.value[-1] - exact_auc(scores, labels[:500] > 0.5)) <= same.auc_error_bound() + 1e-12  # equal when every shared bucket holds one pair


def test_write_through_tensorboardx(tmp_path):
    tbx = pytest.importorskip("tensorboardX")
    from tb_plus.store import Logdir

    s, y = gaussians(10_000, 0.3, 1.0, "probability", seed=8)
    w = tbx.SummaryWriter(str(tmp_path / "logs"))
    acc = log_evaluation(w, "eval/x", 5, s, y)
    w.close()
    auc = Logdir(tmp_path / "logs", tmp_path / "cache").scalars(".", "eval/x/auc_roc")
    assert auc.step.tolist() == [5] and auc.value[0] == acc.auc()
