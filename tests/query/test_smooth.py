"""tb_plus.query.smooth against explicit loops: the x-distance debiased EMA and the moving median."""

import math
import sys

import numpy as np
import pytest

from tb_plus.query.smooth import ema, moving_median, reference_gap


def ema_loop(x, v, w):
    """The rule of http_api.md, one point at a time."""
    gaps = [b - a for a, b in zip(x[:-1], x[1:]) if b - a > 0 and math.isfinite(b - a)]
    ref = float(np.median(gaps)) if gaps else 1.0
    acc = norm = 0.0
    started = False
    last = math.nan
    out = []
    for i, (xi, vi) in enumerate(zip(x, v)):
        if not math.isfinite(vi):  # skipped: no update, no decay
            out.append(last)
            continue
        if not started:
            d = w
        else:
            g = (xi - x[i - 1]) / ref  # the gap from the point just before, finite or not
            d = w ** (g if g > 0 and math.isfinite(g) else 1.0)
        started = True
        acc = d * acc + (1 - d) * vi
        norm = d * norm + (1 - d)
        last = acc / norm
        out.append(last)
    return np.array(out)


def tensorboard_ema(v, w):
    """TensorBoard's debiased EMA (vz_line_chart2); a non-finite value keeps the previous smoothed one here
    (TensorBoard shows the raw value there), and is skipped."""
    last, num, out = 0.0, 0, []
    for val in v:
        if not math.isfinite(val):
            out.append(out[-1] if out else math.nan)
            continue
        last = last * w + (1 - w) * val
        num += 1
        out.append(last / (1 - w**num))
    return np.array(out)


@pytest.mark.parametrize("w", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_evenly_spaced_equals_tensorboard(w):
    rng = np.random.default_rng(0)
    v = rng.normal(size=3000).cumsum()
    v[[0, 100, 101, 2000]] = [np.nan, np.nan, np.inf, -np.inf]
    for x in (np.arange(3000), np.arange(3000) * 10 + 7, np.arange(3000) * 0.25):
        np.testing.assert_allclose(ema(x, v, w), tensorboard_ema(v, w), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("w", [0.0, 0.5, 0.9, 0.999])
def test_uneven_x_nonfinite_and_restart_against_loop(w):
    rng = np.random.default_rng(int(w * 1000))
    x = np.cumsum(rng.exponential(size=2000))
    x[1200:] -= 300  # x goes back (a restart): that gap counts as one reference gap
    v = rng.normal(size=2000)
    v[[0, 5, 6, 500]] = [np.nan, np.inf, -np.inf, np.nan]
    got = ema(x, v, w)
    want = ema_loop(x.tolist(), v.tolist(), w)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert math.isnan(got[0]) and got[5] == got[6] == got[4]


def test_decay_follows_x_distance():
    # a point far away in x has (almost) forgotten the past; evenly spaced points decay by W each
    x = np.array([0.0, 1.0, 2.0, 100.0])
    v = np.array([0.0, 0.0, 0.0, 1.0])
    got = ema(x, v, 0.5)
    assert abs(got[3] - 1.0) < 1e-12
    np.testing.assert_allclose(got, ema_loop(x.tolist(), v.tolist(), 0.5))


def test_edge_cases():
    assert ema(np.empty(0), np.empty(0), 0.6).shape == (0,)
    assert ema(np.array([5]), np.array([2.5]), 0.6).tolist() == [2.5]
    assert np.isnan(ema(np.arange(3), np.array([np.nan, np.inf, np.nan]), 0.6)).all()
    np.testing.assert_allclose(ema(np.zeros(4), np.ones(4), 0.9), 1.0)  # repeated x: one reference gap each
    assert reference_gap(np.array([3.0])) == 1.0 and reference_gap(np.array([0, 2, 2, 6])) == 3.0
    for bad in (-0.1, 1.0, 2.0):
        with pytest.raises(ValueError):
            ema(np.arange(3), np.arange(3.0), bad)
    ro = np.arange(10.0)
    ro.flags.writeable = False  # the store hands out read-only mapped columns
    ema(np.arange(10), ro, 0.5)
    moving_median(ro, 3)


def median_loop(v, k):
    h = k // 2
    out = []
    for i in range(len(v)):
        win = [a for a in v[max(0, i - h) : i + h + 1] if math.isfinite(a)]
        out.append(float(np.nanmedian(win)) if win else math.nan)
    return np.array(out)


@pytest.mark.parametrize("k", [1, 3, 5, 21])
def test_moving_median_against_loop(k):
    rng = np.random.default_rng(k)
    v = rng.normal(size=500)
    v[rng.random(500) < 0.1] = np.nan
    v[[3, 4, 10]] = [np.inf, -np.inf, np.inf]
    v[100:130] = np.nan  # a window with no finite value
    np.testing.assert_array_equal(moving_median(v, k), median_loop(v.tolist(), k))


def test_moving_median_edges_and_errors():
    assert moving_median(np.empty(0), 5).shape == (0,)
    assert moving_median(np.array([4.0]), 5).tolist() == [4.0]
    assert moving_median(np.array([1.0, 9.0, 2.0, 3.0]), 3).tolist() == [5.0, 2.0, 3.0, 2.5]
    for bad in (0, 2, -1):
        with pytest.raises(ValueError):
            moving_median(np.arange(3.0), bad)


def python_lines(fn, *args):
    """The number of Python lines executed while fn(*args) runs (numpy's own C loops count none)."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn(*args)
    finally:
        sys.settrace(old)
    return count


def test_one_million_points_is_vectorised():
    """No Python loop over the points: the Python lines ema runs on a million points are a few hundred
    (its doubling scan takes about log2(n) rounds), where a loop would run millions. Counted, not timed,
    so that neither a fast machine hides a loop nor a slow or busy one fails the test."""
    v = np.random.default_rng(0).normal(size=1_000_000)
    x = np.arange(1_000_000)
    ema(x[:10], v[:10], 0.999)  # first call: numpy's lazy imports, not ema's lines
    small = python_lines(ema, x[:1000], v[:1000], 0.999)
    big = python_lines(ema, x, v, 0.999)
    assert big < 5_000, big
    assert big < small + 1_000, (small, big)  # ~log2(n) growth, not n
