"""tb_plus.trace.evaluation.ClassifierScores: the integrations' scores -> evaluation accumulators
(binary from one logit or a two-class softmax, one versus rest per class, merged across ranks)."""

import numpy as np
import pytest

from tb_plus.trace.evaluation import ClassifierScores


def _bound(p, y):
    from tb_plus.evaluation import BinaryAccumulator

    return BinaryAccumulator().update(p, y).auc_error_bound() + 1e-12


def test_binary_from_one_logit_or_two_classes():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    z = rng.normal(size=500) + y
    p = 1 / (1 + np.exp(-z))
    one = ClassifierScores("eval/s")
    one.update(z[:, None], y, from_logits=True)
    two = ClassifierScores("eval/s")
    two.update(np.stack([np.zeros(500), z], 1), y, from_logits=True)  # softmax of (0, z) is sigmoid(z)
    for scores in (one, two):
        m = scores.metrics()
        assert list(scores.accs) == ["eval/s"]
        assert abs(m["auc_roc"] - sk.roc_auc_score(y, p)) <= _bound(p, y)
        assert m["average_precision"] == pytest.approx(sk.average_precision_score(y, p), abs=1e-4)


def test_classes_one_versus_rest_and_ignored_labels():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3)) + 1.5 * np.eye(3)[y]
    y_ignored = y.copy()
    y_ignored[:50] = -100  # left out
    scores = ClassifierScores("eval/s", class_names=["a", "b", "c"])
    scores.update(logits[:300], y_ignored[:300], from_logits=True)
    scores.update(logits[300:], y_ignored[300:], from_logits=True)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = scores.metrics()
    assert list(scores.accs) == ["eval/s/a", "eval/s/b", "eval/s/c"]
    want = [sk.roc_auc_score(y[50:] == k, p[50:, k]) for k in range(3)]
    for k, name in enumerate("abc"):
        assert abs(m[f"auc_roc_{name}"] - want[k]) <= _bound(p[50:, k], y[50:] == k)
    assert m["auc_roc"] == pytest.approx(np.mean([m[f"auc_roc_{n}"] for n in "abc"]), abs=1e-15)
    with pytest.raises(ValueError):
        scores.update(logits[:, :2], y, from_logits=True)  # another number of classes


def test_merge_gathered_adds_the_ranks_counts():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 400)
    p = rng.random(400) * 0.5 + 0.4 * y
    whole = ClassifierScores("eval/s")
    whole.update(p, y, from_logits=False)
    ranks = [ClassifierScores("eval/s"), ClassifierScores("eval/s"), ClassifierScores("eval/s")]
    ranks[0].update(p[:250], y[:250], from_logits=False)
    ranks[1].update(p[250:], y[250:], from_logits=False)  # ranks[2] saw nothing
    gathered = [r.to_tensors() for r in ranks]
    ranks[2].merge_gathered(gathered)
    assert ranks[2].metrics() == whole.metrics()
    np.testing.assert_array_equal(ranks[2].to_tensors()["eval/s"], whole.to_tensors()["eval/s"])
