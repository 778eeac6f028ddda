"""tb_plus.query.aggregate against np.interp + np.mean/np.median/np.std per grid point, and the group keys."""

import math
import re
import zlib

import numpy as np
import pytest

from tb_plus.query.aggregate import (
    format_value, group_key, make_grid, on_grid, parse_group_by, prepare, reduce, sort_keys,
)


def aggregate(series, points, stat, band, xmin=None, xmax=None):
    knots = [prepare(x, v) for x, v in series]
    grid = make_grid([(kx[0], kx[-1]) for kx, _ in knots if len(kx)], points, xmin, xmax)
    return grid, reduce(on_grid(grid, knots), stat, band)


def reference(series, grid, stat, band):
    """One grid point at a time: interpolate each covering series with np.interp, then numpy's stats."""
    center, lo, hi, count = [], [], [], []
    for g in grid:
        vals = []
        for x, v in series:
            ok = np.isfinite(v)
            x, v = np.asarray(x, float)[ok], np.asarray(v, float)[ok]
            if len(x) and x.min() <= g <= x.max():
                vals.append(float(np.interp(g, x, v)))
        count.append(len(vals))
        if not vals:
            center.append(math.nan); lo.append(math.nan); hi.append(math.nan)
            continue
        c = np.mean(vals) if stat == "mean" else np.median(vals)
        center.append(c)
        if band == "minmax":
            lo.append(min(vals)); hi.append(max(vals))
        elif band == "std":
            lo.append(c - np.std(vals)); hi.append(c + np.std(vals))
        elif band == "ci95":
            half = 1.96 * np.std(vals) / math.sqrt(len(vals))
            lo.append(np.mean(vals) - half); hi.append(np.mean(vals) + half)
        else:
            lo.append(c); hi.append(c)
    return [np.array(a) for a in (center, lo, hi, count)]


def seeds(rng, n_series, lengths, nan=True):
    out = []
    for i in range(n_series):
        n = lengths[i % len(lengths)]
        x = np.sort(rng.choice(np.arange(n * 3), size=n, replace=False)).astype(np.int64) + 5 * i
        v = rng.normal(size=n).cumsum()
        if nan:
            v[rng.random(n) < 0.05] = np.nan
        out.append((x, v))
    return out


@pytest.mark.parametrize("stat", ["mean", "median"])
@pytest.mark.parametrize("band", ["minmax", "std", "ci95", "none"])
def test_against_numpy_per_grid_point(stat, band):
    # a seed of its own per case, the same in every run (hash() of strings changes with PYTHONHASHSEED)
    rng = np.random.default_rng(zlib.crc32(f"{stat}/{band}".encode()))
    series = seeds(rng, 5, [300, 200, 250])
    grid, got = aggregate(series, 101, stat, band)
    # the union of the ranges: [min first x, max last x] of the finite points, exactly
    firsts = [x[np.isfinite(v)].min() for x, v in series]
    lasts = [x[np.isfinite(v)].max() for x, v in series]
    assert grid[0] == min(firsts) and grid[-1] == max(lasts) and len(grid) == 101
    np.testing.assert_allclose(np.diff(grid), np.diff(grid)[0])
    want = reference(series, grid, stat, band)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, equal_nan=True)
    assert got[3].tolist() == want[3].tolist() and got[3].max() == 5 and got[3].min() < 5


def test_runs_of_different_lengths_span_the_longest_with_counts_3_2_1():
    # runs of 300, 800 and 1,500 steps: the grid spans 0..1,499 (not 0..299), the count drops where each ends
    series = [(np.arange(n), np.full(n, float(i))) for i, n in enumerate((300, 800, 1500))]
    grid, (center, lo, hi, count) = aggregate(series, 500, "mean", "minmax")
    assert grid[0] == 0 and grid[-1] == 1499 and len(grid) == 500
    want = np.where(grid <= 299, 3, np.where(grid <= 799, 2, 1))
    assert count.tolist() == want.tolist()
    np.testing.assert_allclose(center, np.where(want == 3, 1.0, np.where(want == 2, 1.5, 2.0)))
    np.testing.assert_allclose(lo, np.where(want == 3, 0.0, np.where(want == 2, 1.0, 2.0)))
    assert (hi == 2.0).all()
    # clipped: still the exact ends of the clip
    grid, (*_r, count) = aggregate(series, 11, "mean", "none", xmin=250, xmax=1000)
    assert grid[0] == 250 and grid[-1] == 1000 and count[0] == 3 and count[-1] == 1


def test_union_range_when_no_common_range_and_partial_coverage():
    series = [(np.arange(0, 10), np.arange(10.0)), (np.arange(20, 30), np.arange(10.0) * 2)]
    grid, (center, lo, hi, count) = aggregate(series, 30, "mean", "minmax")
    assert grid[0] == 0 and grid[-1] == 29
    want = reference(series, grid, "mean", "minmax")
    np.testing.assert_allclose(center, want[0], equal_nan=True)
    assert count.tolist() == want[3].tolist() and 0 in count.tolist()  # the gap between them
    assert np.isnan(center[count == 0]).all()


def test_xmin_xmax_clip_the_grid():
    series = [(np.arange(100), np.arange(100.0)), (np.arange(100), np.arange(100.0) + 1)]
    grid, (center, *_rest) = aggregate(series, 11, "mean", "none", xmin=10, xmax=20)
    assert grid.tolist() == list(range(10, 21))
    np.testing.assert_allclose(center, grid + 0.5)
    grid, _ = aggregate(series, 11, "mean", "none", xmin=200)
    assert len(grid) == 0


def test_edge_cases_single_point_empty_and_all_nonfinite():
    grid, (c, lo, hi, n) = aggregate([(np.array([5]), np.array([2.0])), (np.array([5]), np.array([4.0]))], 10,
                                     "mean", "std")
    assert grid.tolist() == [5.0] and c.tolist() == [3.0] and lo.tolist() == [2.0] and n.tolist() == [2]
    grid, (c, lo, hi, n) = aggregate([(np.arange(3), np.full(3, np.nan))], 10, "mean", "minmax")
    assert len(grid) == 0 and len(c) == len(n) == 0
    grid, (c, lo, hi, n) = aggregate([], 10, "median", "ci95")
    assert len(grid) == 0


def test_duplicate_steps_after_a_restart_keep_the_last_written():
    # steps 0..9, then a restart from step 5: 5..12 are written again with other values
    x = np.r_[np.arange(10), np.arange(5, 13)]
    v = np.r_[np.zeros(10), np.ones(8)]
    kx, kv = prepare(x, v)
    assert kx.tolist() == list(range(13)) and kv.tolist() == [0.0] * 5 + [1.0] * 8


def test_group_keys():
    spec = parse_group_by(r"run_regex:lr=([^,]+)")
    assert group_key(spec, "lr=0.1,seed=2", "loss") == "0.1" and group_key(spec, "base", "loss") is None
    assert group_key(parse_group_by("run_regex:seed=\\d"), "lr=0.1,seed=2", "x") == "seed=2"
    assert group_key(parse_group_by("run_regex:a(b)?"), "a", "x") == ""
    assert group_key(parse_group_by("tag_level:1"), "r", "layers/3/grad") == "3"
    assert group_key(parse_group_by("tag_level:3"), "r", "layers/3/grad") is None
    assert group_key(parse_group_by("none"), "r", "t") == "all"
    hp = {"r1": {"lr": 0.1, "seed": 1.0, "bn": True, "opt": "adam"}}
    assert [group_key(parse_group_by(f"hparam:{n}"), "r1", "t", hp) for n in ("lr", "seed", "bn", "opt")] == [
        "0.1", "1", "true", "adam"]
    assert group_key(parse_group_by("hparam:lr"), "r2", "t", hp) is None
    for bad in ("run_regex:(", "tag_level:x", "tag_level:-1", "hparam:", "by_run", "tag_level"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_group_by(bad)


def test_key_order_and_formatting():
    assert sort_keys(["0.1", "0.01", "1e-3", "1"]) == ["1e-3", "0.01", "0.1", "1"]
    assert sort_keys(["s10", "s2", "S1"]) == ["S1", "s2", "s10"]
    assert format_value(1e-5) == "1e-05" and format_value(3.0) == "3" and format_value(False) == "false"
    assert format_value(float("nan")) == "nan"
