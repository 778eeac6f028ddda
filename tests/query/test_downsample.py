"""Behaviour of tb_plus.query.downsample: the rule of http_api.md `/series`, checked against a
brute-force reference, plus the cases a chart must never lose (spikes, NaN, the last point)."""

import math

import numpy as np
import pytest

from tb_plus.query import downsample as ds
from tb_plus.query.downsample import downsample, select_range

# ----------------------------------------------------------------------------- reference


def _ref_buckets(xs, width, xmin, xmax, is_int):
    """Bucket number of each selected x, by the documented edges, one point at a time."""
    if xmin is not None and xmax is not None and (is_int or (math.isfinite(xmin) and math.isfinite(xmax))):
        x0, x1 = (math.ceil(xmin), math.floor(xmax)) if is_int else (float(xmin), float(xmax))
    else:
        fin = [v for v in xs if is_int or math.isfinite(v)]
        x0, x1 = (min(fin), max(fin)) if fin else (0.0, 0.0)
    if is_int:  # exact rational arithmetic: bucket = floor((x - x0) * width / span)
        span = x1 - x0
        return [0 if span == 0 else min(width - 1, (v - x0) * width // span) for v in xs]
    edges = np.maximum.accumulate(np.linspace(x0, x1, width + 1)).tolist()
    out = []
    for v in xs:
        b = 0
        for j in range(width + 1):
            if edges[j] <= v:
                b = j
        out.append(min(b, width - 1))
    return out


def reference(x, y, width, xmin=None, xmax=None):
    """Brute force: a loop over points and buckets, in plain Python numbers."""
    is_int = x.dtype.kind != "f"
    xl = [int(v) for v in x] if is_int else [float(v) for v in x]
    yl = [float(v) for v in y]
    sel = [
        i
        for i, v in enumerate(xl)
        if not (not is_int and math.isnan(v)) and (xmin is None or v >= xmin) and (xmax is None or v <= xmax)
    ]
    if len(sel) <= 4 * width:
        return sel
    buckets = _ref_buckets([xl[i] for i in sel], width, xmin, xmax, is_int)
    keep = {sel[-1]}
    for k in range(width):
        members = [i for i, b in zip(sel, buckets) if b == k]
        if not members:
            continue
        keep.add(members[0])
        keep.add(members[-1])
        finite = [i for i in members if math.isfinite(yl[i])]
        if finite:
            keep.add(min(finite, key=lambda i: (yl[i], i)))
            keep.add(min(finite, key=lambda i: (-yl[i], i)))
        keep.update(i for i in members if not math.isfinite(yl[i]))
    return sorted(keep)


def check(x, y, width, xmin=None, xmax=None):
    got = downsample(x, y, width, xmin=xmin, xmax=xmax)
    assert got.dtype == np.int64
    assert np.all(np.diff(got) > 0), "ascending, no duplicates"
    assert got.tolist() == reference(x, y, width, xmin, xmax)
    assert np.array_equal(got, downsample(x, y, width, xmin=xmin, xmax=xmax)), "deterministic"
    return got


@pytest.fixture(params=["loop", "reduceat"])
def path(request, monkeypatch):
    """Run a test through both per-bucket strategies (slice loop and vectorised reduceat)."""
    monkeypatch.setattr(ds, "_LOOP_MIN_POINTS", 0 if request.param == "loop" else 10**18)
    return request.param


@pytest.fixture(params=["runs", "sort"])
def order_path(request, monkeypatch):
    """Run a test through the run-by-run path and the sort-based fallback for unordered x."""
    if request.param == "sort":
        monkeypatch.setattr(ds, "_MAX_RUNS", 1)
    return request.param


def _y(rng, n, ties):
    y = rng.integers(0, 4, n).astype(float) if ties else rng.standard_normal(n)
    special = rng.random(n)
    y[special < 0.03] = np.nan
    y[(special >= 0.03) & (special < 0.05)] = np.inf
    y[(special >= 0.05) & (special < 0.07)] = -np.inf
    return y


# ----------------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_monotonic_matches_reference(seed, ties, path):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 400))
    x = np.cumsum(rng.integers(0, 3, n))  # non-decreasing, with duplicate steps
    y = _y(rng, n, ties)
    for width in (1, 2, 3, 7, 10, 25):
        check(x, y, width)
        lo, hi = sorted(rng.integers(x[0] - 5, x[-1] + 5, 2).tolist())
        check(x, y, width, xmin=lo, xmax=hi)
        check(x, y, width, xmin=lo)
        check(x, y, width, xmax=hi)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["restart", "shuffled"])
def test_unordered_matches_reference(seed, kind, path, order_path):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(60, 400))
    if kind == "restart":  # a run, then a restart from an earlier step
        cut = n // 2
        x = np.r_[np.arange(cut), np.arange(cut // 2, cut // 2 + n - cut)]
    else:
        x = rng.integers(0, n // 2, n)
    y = _y(rng, n, ties=bool(seed % 2))
    for width in (1, 3, 8, 13):
        check(x, y, width)
        check(x, y, width, xmin=int(x.max()) // 4, xmax=int(x.max()) * 3 // 4)


@pytest.mark.parametrize("seed", range(4))
def test_float_x_matches_reference(seed, path, order_path):
    rng = np.random.default_rng(200 + seed)
    n = 300
    x = 1.7e9 + np.cumsum(rng.exponential(0.5, n))
    if seed % 2:
        x = x[rng.permutation(n)]
    x[rng.integers(0, n, 3)] = np.nan  # NaN x: never selected
    y = _y(rng, n, ties=True)
    for width in (1, 4, 9, 30):
        check(x, y, width)
        check(x, y, width, xmin=float(np.nanmin(x)) + 10.25, xmax=float(np.nanmax(x)) - 7.5)
        check(x, y, width, xmin=-np.inf, xmax=np.inf)


def test_int64_steps_near_2_62_are_bucketed_exactly(path):
    # Float64 cannot tell these steps apart (spacing 1024 near 2**62): the buckets must come from
    # integer arithmetic, or everything collapses into one bucket.
    base = 2**62
    x = np.arange(base, base + 1000, dtype=np.int64)
    rng = np.random.default_rng(7)
    y = rng.standard_normal(1000)
    got = check(x, y, 10)
    assert len(got) > 4 * 5  # many buckets, not one
    check(x, y, 10, xmin=base + 101, xmax=base + 899)
    check(x, y, 7, xmin=base + 3.5, xmax=float(base + 1000))
    x2 = np.r_[np.arange(base, base + 600), np.arange(base + 300, base + 900)].astype(np.int64)
    check(x2, rng.standard_normal(1200), 9)
    wide = np.array([-(2**62), -5, 0, 2**62, 2**63 - 1] * 20, np.int64)  # span > int64
    check(np.sort(wide), rng.standard_normal(100), 3)


# ----------------------------------------------------------------------------- specific behaviour


def test_width_one_keeps_first_last_min_max():
    x = np.arange(100)
    y = np.linspace(0.0, 1.0, 100)
    y[40], y[60] = -5.0, 9.0
    assert downsample(x, y, 1).tolist() == [0, 40, 60, 99]


def test_ties_take_the_lowest_index(path):
    x = np.arange(50)
    y = np.zeros(50)
    assert downsample(x, y, 1).tolist() == [0, 49]
    y[[10, 20, 30]] = -1.0
    y[[15, 25]] = 2.0
    assert downsample(x, y, 1).tolist() == [0, 10, 15, 49]


def test_non_finite_values_are_all_kept(path):
    x = np.arange(10_000)
    y = np.sin(x / 100.0)
    special = {123: np.nan, 4567: np.inf, 8901: -np.inf, 8902: np.nan}
    for i, v in special.items():
        y[i] = v
    got = set(downsample(x, y, 20).tolist())
    assert set(special) <= got
    # min/max ignore them: the finite extremes are still kept
    assert int(np.argmin(np.where(np.isfinite(y[:500]), y[:500], np.inf))) in got


def test_all_non_finite_bucket():
    x = np.arange(100)
    y = np.full(100, np.nan)
    assert downsample(x, y, 2).tolist() == list(range(100))


def test_small_selection_comes_back_whole():
    x = np.arange(1000)
    y = np.random.default_rng(0).standard_normal(1000)
    assert downsample(x, y, 250).tolist() == list(range(1000))
    assert downsample(x, y, 10, xmin=100, xmax=139).tolist() == list(range(100, 140))
    assert len(downsample(x, y, 249)) < 1000


def test_empty_and_inverted_ranges():
    x = np.arange(1000)
    y = np.ones(1000)
    for kw in ({"xmin": 2000}, {"xmax": -1}, {"xmin": 10, "xmax": 9}, {"xmin": 10.2, "xmax": 10.8}):
        assert downsample(x, y, 5, **kw).tolist() == []
        assert select_range(x, **kw).tolist() == []
    assert downsample(np.empty(0, np.int64), np.empty(0), 5).tolist() == []
    assert downsample(x, y, 5, xmin=-np.inf, xmax=np.inf).tolist() == downsample(x, y, 5).tolist()
    assert downsample(x, y, 5, xmin=np.inf).tolist() == []


def test_range_is_respected():
    x = np.arange(100_000)
    y = np.random.default_rng(1).standard_normal(100_000)
    got = downsample(x, y, 100, xmin=25_000, xmax=74_999)
    assert got[0] == 25_000 and got[-1] == 74_999
    assert np.all((x[got] >= 25_000) & (x[got] <= 74_999))


def test_select_range():
    x = np.array([5, 1, 3, 3, 9, 2], np.int64)
    assert select_range(x).tolist() == [0, 1, 2, 3, 4, 5]
    assert select_range(x, 2, 5).tolist() == [0, 2, 3, 5]
    assert select_range(x, xmin=3.5).tolist() == [0, 4]
    assert select_range(x, xmax=2**70).tolist() == [0, 1, 2, 3, 4, 5]
    xf = np.array([0.5, np.nan, 2.0, -1.0])
    assert select_range(xf).tolist() == [0, 2, 3]
    assert select_range(xf, 0, 2).tolist() == [0, 2]
    assert select_range(x, 2**62, 2**62).dtype == np.int64
    with pytest.raises(ValueError):
        select_range(xf, float("nan"))


def test_restart_spike_in_second_pass_is_kept(order_path):
    # steps 0..999, then a restart re-logs 500..1499: a spike in the second pass is kept even
    # though its bucket also holds points from the first pass.
    x = np.r_[np.arange(1000), np.arange(500, 1500)]
    y = np.random.default_rng(3).standard_normal(2000) * 0.01
    spike = 1000 + 123  # step 623, second pass
    y[spike] = 100.0
    got = downsample(x, y, 50)
    assert spike in got.tolist()
    assert got[-1] == 1999
    assert np.all(np.diff(got) > 0)
    assert got.tolist() == reference(x, y, 50)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        downsample(np.arange(3), np.ones(4), 1)
    with pytest.raises(ValueError):
        downsample(np.arange(3), np.ones(3), 0)
    with pytest.raises(ValueError):
        downsample(np.arange(3), np.ones(3), 1, xmin=float("nan"))


# ----------------------------------------------------------------------------- 10M points


N_BIG = 10_000_000


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(2024)
    x = np.arange(N_BIG, dtype=np.int64)
    y = np.cumsum(rng.standard_normal(N_BIG) * 0.01)
    spike, dip, nan = (int(i) for i in rng.choice(N_BIG, 3, replace=False))
    y[spike] = y.max() + 1000.0
    y[dip] = y.min() - 1000.0
    y[nan] = np.nan
    return x, y, spike, dip, nan


def test_big_series_keeps_spike_nan_and_last_at_every_width(big):
    x, y, spike, dip, nan = big
    for width in range(100, 4001, 100):
        got = downsample(x, y, width)
        assert got[-1] == N_BIG - 1, width
        assert np.all(np.diff(got) > 0), width
        for i in (0, spike, dip, nan):
            assert got[np.searchsorted(got, i)] == i, (width, i)
        assert len(got) <= 4 * width + 1, width


def test_big_series_zoom_and_determinism(big):
    x, y, spike, _, nan = big
    lo, hi = min(spike, nan), max(spike, nan)
    got = downsample(x, y, 1000, xmin=lo, xmax=hi)
    assert got[0] == lo and got[-1] == hi
    assert np.array_equal(got, downsample(x, y, 1000, xmin=lo, xmax=hi))
    odd = downsample(x, y, 137)
    assert np.array_equal(odd, downsample(x.copy(), y.copy(), 137))


def test_with_count_gives_the_number_of_selected_points():
    rng = np.random.default_rng(11)
    x = np.concatenate([np.arange(1000), np.arange(500, 1500)])  # a restart
    y = rng.normal(size=len(x))
    for xmin, xmax in [(None, None), (100, 900), (600, None), (None, 50), (2000, None)]:
        idx, count = downsample(x, y, 10, xmin=xmin, xmax=xmax, with_count=True)
        assert count == len(select_range(x, xmin, xmax))
        np.testing.assert_array_equal(idx, downsample(x, y, 10, xmin=xmin, xmax=xmax))
    shuffled = rng.permutation(5000)
    idx, count = downsample(shuffled, rng.normal(size=5000), 7, xmin=10, xmax=4000, with_count=True)
    assert count == 3991
