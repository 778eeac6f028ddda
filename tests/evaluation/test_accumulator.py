"""The evaluation accumulator against exact, sort-based references; merge, weights, NaN, devices,
and the round trip through a real event file."""

import math

import numpy as np
import pytest

from tb_plus.evaluation import BinaryAccumulator, Scheme
from tb_plus.evaluation import curves


def exact_auc(s, y, w=None):
    """Mann-Whitney with tied scores counted 1/2 (weighted when w is given)."""
    s, y = np.asarray(s, np.float64), np.asarray(y, bool)
    w = np.ones(len(s)) if w is None else np.asarray(w, np.float64)
    uniq, inv = np.unique(s, return_inverse=True)
    neg = np.bincount(inv, weights=w * ~y, minlength=len(uniq))
    pos = np.bincount(inv, weights=w * y, minlength=len(uniq))
    below = np.cumsum(neg) - neg
    return float(np.dot(pos, below + 0.5 * neg) / (pos.sum() * neg.sum()))


def exact_ap(s, y):
    """Average precision over distinct score thresholds (scikit-learn's definition)."""
    s, y = np.asarray(s, np.float64), np.asarray(y, bool)
    uniq, inv = np.unique(s, return_inverse=True)
    pos = np.bincount(inv, weights=y, minlength=len(uniq))[::-1]
    tot = np.bincount(inv, minlength=len(uniq))[::-1]
    tp, n = np.cumsum(pos), np.cumsum(tot)
    recall = tp / y.sum()
    return float(np.dot(np.diff(recall, prepend=0.0), tp / n))


def gaussians(n, pos_frac, spread, kind, seed=0):
    """Two overlapping Gaussians in logit space; spread scales the logits (8: probabilities pile up
    near 0 and 1)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < pos_frac
    z = (rng.normal(size=n) + np.where(y, 1.0, 0.0)) * spread
    return (1 / (1 + np.exp(-z)) if kind == "probability" else z), y


@pytest.mark.parametrize("kind", ["probability", "logit"])
@pytest.mark.parametrize("pos_frac, spread", [(0.5, 1.0), (0.01, 1.0), (0.5, 8.0), (0.01, 8.0)])
def test_auc_and_ap_match_exact_values(kind, pos_frac, spread):
    s, y = gaussians(200_000, pos_frac, spread, kind)
    acc = BinaryAccumulator(kind).update(s, y)
    ex = exact_auc(s, y)
    assert abs(acc.auc() - ex) <= 1e-6
    assert abs(acc.auc() - ex) <= acc.auc_error_bound() + 1e-15
    assert abs(acc.average_precision() - exact_ap(s, y)) <= 1e-4
    assert len(acc) == len(s)


def test_exact_when_every_score_has_its_own_bucket():
    # scores on a grid coarser than the buckets: no two classes share a bucket unless their scores are equal
    rng = np.random.default_rng(1)
    s = rng.integers(1, 999, size=5000) / 1000.0
    y = rng.random(5000) < 0.3 + 0.4 * s
    acc = BinaryAccumulator().update(s, y)
    assert acc.auc() == pytest.approx(exact_auc(s, y), abs=1e-12)
    assert acc.average_precision() == pytest.approx(exact_ap(s, y), abs=1e-12)


def test_c_counter_numpy_and_torch_give_identical_counts():
    torch = pytest.importorskip("torch")
    for kind in ("probability", "logit"):
        s, y = gaussians(50_000, 0.2, 4.0, kind, seed=3)
        s[::97] = np.nan
        s[5] = 0.5 if kind == "probability" else 0.0
        s[6] = 1.0 if kind == "probability" else 1e30
        s[7] = 0.0 if kind == "probability" else -1e30
        a = BinaryAccumulator(kind, nan="skip").update(s, y)
        b = BinaryAccumulator(kind, nan="skip")
        b.force_numpy = True
        b.update(s, y)
        c = BinaryAccumulator(kind, nan="skip").update(torch.tensor(s), torch.tensor(y))
        d = BinaryAccumulator(kind, nan="skip").update(torch.tensor(s, dtype=torch.float32), torch.tensor(y))
        e = BinaryAccumulator(kind, nan="skip").update(s.astype(np.float32), y)
        for other in (b, c):
            assert np.array_equal(a.counts()[0], other.counts()[0]) and np.array_equal(a.counts()[1], other.counts()[1])
            assert other.nan == a.nan == int(np.isnan(s).sum())
        assert np.array_equal(d.counts()[1], e.counts()[1]) and d.nan == e.nan


def test_bucket_order_follows_the_scores():
    for kind, xs in (("probability", [0.0, 1e-30, 1e-9, 0.1, 0.4999, 0.5, 0.5001, 0.9, 1 - 1e-9, 1.0]),
                     ("logit", [-1e30, -50, -1, -1e-6, 0.0, 1e-6, 1, 50, 1e30])):
        sc = Scheme(kind)
        idx = sc.index(np.array(xs))
        assert (np.diff(idx) >= 0).all(), (kind, idx)
        assert len(set(idx.tolist())) >= len(xs) - 1
        edges = sc.edges()
        assert (np.diff(edges) >= 0).all()  # near 1, 1 - c rounds to 1.0 in float64 for tiny c
        for x, g in zip(xs, idx):
            assert edges[g] <= x <= edges[g + 1] or math.isclose(x, edges[g + 1], rel_tol=1e-6), (kind, x, g)


def test_merge_across_batches_and_workers_is_exact():
    s, y = gaussians(30_000, 0.1, 2.0, "probability", seed=5)
    whole = BinaryAccumulator().update(s, y)
    parts = [BinaryAccumulator().update(s[i::3], y[i::3]) for i in range(3)]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert np.array_equal(whole.counts()[0], merged.counts()[0])
    assert merged.auc() == whole.auc()
    with pytest.raises(ValueError, match="cannot merge"):
        whole.merge(BinaryAccumulator("logit"))


def test_sample_weights():
    s, y = gaussians(20_000, 0.3, 1.0, "probability", seed=7)
    w = np.random.default_rng(7).random(len(s)) * 3
    acc = BinaryAccumulator().update(s, y, w)
    assert acc.weighted and acc.counts()[0].dtype == np.float64
    assert abs(acc.auc() - exact_auc(s, y, w)) <= 1e-6
    plus_one = BinaryAccumulator().update(s, y, w + 1)
    merged = acc.merge(BinaryAccumulator().update(s, y))  # unweighted counts add as weight 1
    assert np.allclose(merged.counts()[0], plus_one.counts()[0]) and np.allclose(merged.counts()[1], plus_one.counts()[1])
    with pytest.raises(ValueError, match="weights"):
        BinaryAccumulator().update(s, y, -w)


def test_nan_scores_are_refused_with_a_clear_error_or_skipped_on_request():
    for force_numpy in (False, True):
        acc = BinaryAccumulator()
        acc.force_numpy = force_numpy
        acc.update([0.2, 0.7], [0, 1])
        with pytest.raises(ValueError, match=r"2 NaN scores in this batch \(the first at index 1\)"):
            acc.update([0.1, float("nan"), 0.9, float("nan")], [0, 1, 1, 0])
        assert len(acc) == 2 and acc.nan == 0  # the refused batch was not counted
    skip = BinaryAccumulator(nan="skip").update([0.1, float("nan"), 0.9, float("nan")], [0, 1, 1, 0])
    assert skip.nan == 2 and len(skip) == 2 and skip.auc() == 1.0
    torch = pytest.importorskip("torch")
    t = BinaryAccumulator().update(torch.tensor([0.1, float("nan")]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="1 NaN scores were given to update"):
        t.auc()  # torch batches are checked when the counts are read (no device sync per batch)


def test_adversarial_score_distributions():
    rng = np.random.default_rng(21)
    y = rng.random(200_000) < 0.3
    # every score within 1e-6 of 1.0, positives slightly higher
    s = 1.0 - 1e-6 * rng.random(len(y)) ** np.where(y, 3.0, 1.0)
    acc = BinaryAccumulator().update(s, y)
    assert abs(acc.auc() - exact_auc(s, y)) <= 1e-6 and acc.auc() > 0.6
    assert abs(acc.average_precision() - exact_ap(s, y)) <= 1e-4
    # logits within 1e-6 of 0 (an untrained model)
    z = 1e-6 * (rng.random(len(y)) - 0.5 + 0.2 * y)
    accz = BinaryAccumulator("logit").update(z, y)
    assert abs(accz.auc() - exact_auc(z, y)) <= 1e-6
    # heavy ties: 7 distinct scores only, counted exactly as tied
    t = rng.integers(0, 7, len(y)) / 7.0
    acct = BinaryAccumulator().update(t, y)
    assert acct.auc() == pytest.approx(exact_auc(t, y), abs=1e-12)
    assert acct.average_precision() == pytest.approx(exact_ap(t, y), abs=1e-12)
    # all scores equal: AUC 1/2, the bound says so too
    same = BinaryAccumulator().update(np.full(1000, 0.3), y[:1000])
    assert same.auc() == 0.5 and same.auc_error_bound() == 0.5
    # the bound holds on every case above
    for a, sc in ((acc, s), (accz, z), (acct, t)):
        assert abs(a.auc() - exact_auc(sc, y)) <= a.auc_error_bound() + 1e-12


def test_curves_and_distributions():
    s, y = gaussians(100_000, 0.4, 1.0, "probability", seed=11)
    acc = BinaryAccumulator().update(s, y)
    fpr, tpr, thr = acc.roc_curve()
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == pytest.approx(1) and tpr[-1] == pytest.approx(1)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all() and (np.diff(thr) < 0).all()
    assert np.trapezoid(tpr, fpr) == pytest.approx(acc.auc(), abs=1e-6)
    prec, rec, _ = acc.pr_curve()
    assert rec[-1] == pytest.approx(1) and prec[-1] == pytest.approx(y.mean())
    edges, n_neg, n_pos = curves.distributions(*acc.counts(), acc.scheme, bins=20)
    assert n_neg.sum() == (~y).sum() and n_pos.sum() == y.sum() and len(edges) == 21
    hist_pos, _ = np.histogram(s[y], bins=edges)
    assert np.abs(hist_pos - n_pos).max() <= 0.001 * y.sum()  # bins agree up to buckets straddling an edge
    cal = curves.calibration(*acc.counts(), acc.scheme, bins=10)
    # the scores are calibrated by construction only approximately; check the bookkeeping instead
    assert cal["count"].sum() == len(s)
    in_bin = (s >= 0.5) & (s < 0.6)
    assert cal["fraction_positive"][5] == pytest.approx(y[in_bin].mean(), abs=1e-3)
    assert cal["mean_predicted"][5] == pytest.approx(s[in_bin].mean(), abs=1e-3)


def test_roc_of_torch_add_pr_curve_matches_scikit_learn(tmp_path):
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    metrics = pytest.importorskip("sklearn.metrics")
    from tb_plus.store import Logdir

    s, y = gaussians(20_000, 0.4, 1.0, "probability", seed=19)
    w = torch_tb.SummaryWriter(str(tmp_path / "logs"))
    w.add_pr_curve("pr", y, s, 0, num_thresholds=51)
    w.close()
    (d,) = Logdir(tmp_path / "logs", tmp_path / "cache").tensors(".", "pr")
    fpr, tpr, auc = curves.from_pr_curve_tensor(d.numpy)
    thresholds = np.linspace(0, 1, 51)  # torch's: i / (num_thresholds - 1), a score counts when >= threshold
    for t, f, r in zip(thresholds, fpr, tpr):
        pred = s >= t
        tn, fp, fn, tp = metrics.confusion_matrix(y, pred, labels=[False, True]).ravel()
        assert r == pytest.approx(tp / (tp + fn), abs=2e-4) and f == pytest.approx(fp / (fp + tn), abs=2e-4)
    order = np.argsort(fpr)
    ref = metrics.auc(np.concatenate([[0], fpr[order], [1]]), np.concatenate([[0], tpr[order], [1]]))
    assert auc == pytest.approx(ref, abs=1e-6)
    assert abs(auc - metrics.roc_auc_score(y, s)) < 5e-3  # 51 thresholds: coarse, as TensorBoard's own


def test_roc_from_tensorboard_pr_curve_counts():
    s, y = gaussians(50_000, 0.5, 1.0, "probability", seed=13)
    thresholds = np.linspace(0, 1, 201)
    tp = np.array([(y & (s >= t)).sum() for t in thresholds], float)
    fp = np.array([(~y & (s >= t)).sum() for t in thresholds], float)
    fn, tn = y.sum() - tp, (~y).sum() - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.stack([tp, fp, tn, fn, tp / (tp + fp), tp / (tp + fn)])
    fpr, tpr, auc = curves.from_pr_curve_tensor(t)
    assert abs(auc - exact_auc(s, y)) < 2e-3  # 201 thresholds: coarse, as TensorBoard's own
    assert len(fpr) == len(tpr) == 201


def test_round_trip_through_an_event_file(tmp_path):
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    from tb_plus import metadata
    from tb_plus.store import Logdir

    s, y = gaussians(10_000, 0.2, 1.0, "probability", seed=17)
    w = torch_tb.SummaryWriter(str(tmp_path / "logs" / "run"))
    accs = []
    for step in range(3):
        acc = BinaryAccumulator().update(s[step::3], y[step::3])
        acc.write(w, "eval/auc_counts", step)
        accs.append(acc)
    w.close()
    BinaryAccumulator("logit").update([-1.0, 2.0], [0, 1]).write(str(tmp_path / "logs" / "dir"), "eval/z", 7)
    ld = Logdir(tmp_path / "logs", tmp_path / "cache")
    info = ld.tag_info("run", "eval/auc_counts")
    assert info.plugin_name == metadata.EVAL_PLUGIN and info.data_class == "tensors"
    fields = metadata.parse_content(info.plugin_content)
    data = ld.tensors("run", "eval/auc_counts")
    assert [d.step for d in data] == [0, 1, 2]
    for d, acc in zip(data, accs):
        back = BinaryAccumulator.from_tensor(d.numpy, fields)
        assert np.array_equal(back.counts()[1], acc.counts()[1]) and back.auc() == acc.auc()
    (z,) = ld.tensors("dir", "eval/z")
    assert z.step == 7 and BinaryAccumulator.from_tensor(z.numpy, metadata.parse_content(
        ld.tag_info("dir", "eval/z").plugin_content)).auc() == 1.0


def test_reset_keeps_memory_and_forgets_counts():
    s, y = gaussians(50_000, 0.3, 3.0, "probability", seed=23)
    acc = BinaryAccumulator().update(s, y)
    counts = acc._counts
    acc.reset()
    assert len(acc) == 0 and acc._counts is counts  # same memory, zeroed
    acc.update(s[:20_000], y[:20_000])
    fresh = BinaryAccumulator().update(s[:20_000], y[:20_000])
    assert np.array_equal(acc.counts()[0], fresh.counts()[0]) and acc.auc() == fresh.auc()
    w = BinaryAccumulator().update(s, y, np.ones(len(s)))
    w.reset()
    assert not w.weighted and w.update(s[:10], y[:10]).counts()[0].dtype == np.int64
