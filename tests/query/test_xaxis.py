"""tb_plus.query.xaxis: x from another tag (exact at its steps, linear in between, dropped outside)."""

import numpy as np
import pytest

from tb_plus.query.xaxis import keep_positive, parse_x, x_basic, x_from_tag


def reference(step, tag_step, tag_value):
    """Point by point: the last written finite TAG point at s, else interpolate between neighbours."""
    pts = {}
    for s, v in zip(tag_step.tolist(), tag_value.tolist()):
        if np.isfinite(v):
            pts[s] = v  # later writes win
    ks = sorted(pts)
    idx, xs = [], []
    for i, s in enumerate(step.tolist()):
        if not ks or s < ks[0] or s > ks[-1]:
            continue
        if s in pts:
            x = pts[s]
        else:
            lo = max(k for k in ks if k < s)
            hi = min(k for k in ks if k > s)
            x = pts[lo] + (pts[hi] - pts[lo]) * (s - lo) / (hi - lo)
        idx.append(i)
        xs.append(x)
    return np.array(idx, np.int64), np.array(xs)


def test_epoch_counter_gives_fractional_epochs_and_drops_points_outside():
    step = np.arange(0, 1000, dtype=np.int64)
    es = np.arange(0, 1000, 100, dtype=np.int64)  # 0, 100, ..., 900
    ev = (es / 100).astype(np.float64)
    idx, xs = x_from_tag(step, es, ev)
    assert idx.tolist() == list(range(901))  # steps 901..999 are after the last epoch point: dropped
    np.testing.assert_allclose(xs, step[:901] / 100)
    assert xs[100] == 1.0 and xs[150] == 1.5
    ri, rx = reference(step, es, ev)
    assert (idx == ri).all()
    np.testing.assert_allclose(xs, rx, rtol=0, atol=1e-12)


def test_exact_match_is_the_last_written_and_nonfinite_tag_values_are_ignored():
    tag_step = np.array([0, 10, 10, 20, 30], np.int64)
    tag_value = np.array([0.0, 5.0, 7.0, np.nan, 9.0])  # step 10 written twice: 7 wins; NaN at 20 ignored
    step = np.array([0, 5, 10, 20, 25, 30, 31, -1], np.int64)
    idx, xs = x_from_tag(step, tag_step, tag_value)
    ri, rx = reference(step, tag_step, tag_value)
    assert idx.tolist() == ri.tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(xs, rx)
    assert xs[2] == 7.0 and xs[1] == 3.5 and xs[3] == 8.0  # 20 interpolated between 10 (7) and 30 (9)


def test_random_against_reference():
    rng = np.random.default_rng(1)
    for _ in range(20):
        tag_step = rng.integers(0, 200, size=rng.integers(0, 30))
        tag_value = rng.normal(size=len(tag_step))
        tag_value[rng.random(len(tag_value)) < 0.1] = np.inf
        step = rng.integers(-10, 210, size=rng.integers(0, 100))
        idx, xs = x_from_tag(step, tag_step, tag_value)
        ri, rx = reference(step, tag_step, tag_value)
        assert idx.tolist() == ri.tolist()
        np.testing.assert_allclose(xs, rx, rtol=1e-12, atol=1e-12)


def test_restarted_series_keeps_its_order():
    step = np.array([0, 1, 2, 3, 1, 2, 3, 4], np.int64)  # steps going back after a restart
    idx, xs = x_from_tag(step, np.array([0, 4]), np.array([0.0, 8.0]))
    assert idx.tolist() == list(range(8)) and xs.tolist() == [0, 2, 4, 6, 2, 4, 6, 8]


@pytest.mark.parametrize("n_tag", [0, 1])
def test_empty_and_single_point_tags(n_tag):
    step = np.arange(5, dtype=np.int64)
    idx, xs = x_from_tag(step, np.array([2] * n_tag), np.array([3.0] * n_tag))
    assert idx.tolist() == ([2] if n_tag else []) and xs.tolist() == ([3.0] if n_tag else [])
    idx, xs = x_from_tag(np.empty(0, np.int64), np.array([2]), np.array([3.0]))
    assert len(idx) == len(xs) == 0


def test_parse_x_and_basic_axes():
    assert parse_x("step") == "step" and parse_x("tag:a/b") == ("tag", "a/b")
    for bad in ("epoch", "tag:", "Step", ""):
        with pytest.raises(ValueError, match=repr(bad)):
            parse_x(bad)
    step = np.array([3, 4]); wall = np.array([10.0, 12.5])
    assert x_basic(step, wall, "step") is step and x_basic(step, wall, "relative").tolist() == [0.0, 2.5]
    assert x_basic(step[:0], wall[:0], "relative").tolist() == []
    assert keep_positive(np.array([-1.0, 0.0, 0.5, np.nan, 2.0])).tolist() == [2, 4]
