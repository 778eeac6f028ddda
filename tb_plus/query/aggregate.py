"""Aggregation of several series on a common x grid: grouping keys, grid, interpolation, center and band.

    knots = [prepare(xs, v) for xs, v in series]       # sorted, finite, one point per x
    grid = make_grid([(k[0][0], k[0][-1]) for k in knots if len(k[0])], 500)
    Y = on_grid(grid, knots)                            # (series, points), NaN where not covered
    center, lo, hi, count = reduce(Y, "mean", "std")

The rules (http_api.md, `/aggregate`): non-finite values are dropped before interpolation; a series whose x
goes back (steps after a restart) keeps, for each x, its last written point; the grid is `points` evenly spaced
x over the union of the group's x ranges, [min first x, max last x], clipped to [xmin, xmax], its first and last
points exactly those ends; a series is interpolated linearly inside its own x range only; the stat and band at a
grid point use the series that cover it, and `count` says how many do (runs of 300, 800 and 1,500 steps: 3 up
to step 299, 2 up to 799, 1 up to 1,499).

Groups hold one tag each when the selection has several tags and group_by is none, run_regex or hparam
(losses are not averaged with accuracies); tag_level:K groups tags by their K-th level as asked.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np

from .patterns import compile_regex

__all__ = [
    "STATS", "BANDS", "parse_group_by", "group_key", "splits_by_tag", "tag_group_key", "format_value", "sort_keys",
    "prepare", "make_grid", "on_grid", "reduce",
]

STATS = ("mean", "median")
BANDS = ("minmax", "std", "ci95", "none")
_DIGITS = re.compile(r"(\d+)")


# ----------------------------------------------------------------------------- grouping


def parse_group_by(text: str):
    """'none' | 'run_regex:<REGEX>' | 'tag_level:<K>' | 'hparam:<NAME>' -> (kind, argument).

    Raises ValueError (naming the input) for anything else, a regex that does not compile, a K that is
    not an integer >= 0, or an empty NAME."""
    if text is None or text == "none":
        return ("none", None)
    kind, sep, rest = text.partition(":")
    if sep and kind == "run_regex":
        # RE2 (patterns.py): linear time whatever the pattern, as the pattern comes from a request
        return ("run_regex", compile_regex(rest, what=f"group_by {text[:80]!r}:"))
    if sep and kind == "tag_level":
        if not rest.isdigit():
            raise ValueError(f"group_by {text!r}: the level must be an integer >= 0, not {rest!r}")
        return ("tag_level", int(rest))
    if sep and kind == "hparam" and rest:
        return ("hparam", rest)
    raise ValueError(f"group_by must be none, run_regex:<REGEX>, tag_level:<K> or hparam:<NAME>, not {text!r}")


def format_value(v) -> str:
    """An hparam value as a group key: strings as they are, booleans 'true'/'false', whole numbers
    without '.0' ('1', not '1.0'), other numbers by repr ('0.1', '1e-05')."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        f = float(v)
        if math.isfinite(f) and f.is_integer() and abs(f) < 2**53:
            return str(int(f))
        return repr(f)
    return str(v)


def group_key(spec, run: str, tag: str, hparams: dict | None = None):
    """The group of series (run, tag) under a parsed group_by, or None when it is left out.

    hparams: {run: {name: value}} (tb_plus.query.hparams.run_hparams), needed for 'hparam'."""
    kind, a = spec
    if kind == "none":
        return "all"
    if kind == "run_regex":
        m = a.search(run)
        if m is None:
            return None
        if a.groups:
            g = m.group(1)
            return "" if g is None else g
        return m.group(0)
    if kind == "tag_level":
        parts = tag.split("/")
        return parts[a] if a < len(parts) else None
    if kind == "hparam":
        hp = (hparams or {}).get(run, {})
        return format_value(hp[a]) if a in hp else None
    raise ValueError(f"unknown group_by kind {kind!r}")


def splits_by_tag(spec, tags) -> bool:
    """Whether groups hold one tag each: when the selected series have several tags and group_by is
    none, run_regex or hparam (a mean of a loss and an accuracy means nothing). tag_level:K groups
    tags by their K-th level (layers/*/grad_norm by layer), so it never splits."""
    return spec[0] != "tag_level" and len(set(tags)) > 1


TAG_SEPARATOR = " · "


def tag_group_key(tag: str, key: str, kind: str) -> str:
    """The key of a group split by tag: the tag alone for group_by none, else '<tag> · <key>'."""
    return tag if kind == "none" else f"{tag}{TAG_SEPARATOR}{key}"


def sort_keys(keys) -> list:
    """Natural order: all numeric keys by value; otherwise digit runs compare as numbers ('s2' < 's10')."""
    keys = list(keys)

    def num(k):
        try:
            f = float(k)
        except ValueError:
            return None
        return f if math.isfinite(f) else None

    if keys and all(num(k) is not None for k in keys):
        return sorted(keys, key=lambda k: (num(k), k))
    return sorted(
        keys, key=lambda k: [(0, int(p), p) if p.isdigit() else (1, 0, p.lower()) for p in _DIGITS.split(k) if p]
    )


# ----------------------------------------------------------------------------- numbers


def prepare(xs: np.ndarray, v: np.ndarray):
    """Interpolation knots of one series: (x, value), float64, shape (k,), x strictly increasing.

    Points with a non-finite x or value are left out; of several points at one x (a restart that
    logs steps again) the last written wins."""
    xs = np.asarray(xs, np.float64)
    v = np.asarray(v, np.float64)
    ok = np.isfinite(xs) & np.isfinite(v)
    if not ok.all():
        xs, v = xs[ok], v[ok]
    if len(xs) > 1 and not (xs[1:] > xs[:-1]).all():
        order = np.argsort(xs, kind="stable")
        xs, v = xs[order], v[order]
        last = np.r_[xs[1:] != xs[:-1], True]
        xs, v = xs[last], v[last]
    return xs, v


def make_grid(ranges, points: int, xmin=None, xmax=None, log=False) -> np.ndarray:
    """The grid of one group: over the union of its series' x ranges, so that no series is cut short
    (where some have ended, `reduce`'s count says how many series are left).

    Args:
      ranges: [(first x, last x)] of the group's non-empty series.
      points: grid size, >= 2.
      xmin, xmax: clip the range (None: unbounded).
      log: space the points evenly in log x (the range must be > 0, as with xlog=true).

    Returns:
      float64 array: `points` values from lo to hi; [lo] when lo == hi; empty when the range is empty.
    """
    if not ranges:
        return np.empty(0)
    lo = min(float(a) for a, _ in ranges)
    hi = max(float(b) for _, b in ranges)

    def clip(lo, hi):
        if xmin is not None:
            lo = max(lo, float(xmin))
        if xmax is not None:
            hi = min(hi, float(xmax))
        return lo, hi

    lo, hi = clip(lo, hi)
    if lo > hi:
        return np.empty(0)
    if lo == hi:
        return np.array([lo])
    if log and lo > 0:
        g = np.geomspace(lo, hi, points)
    else:
        g = np.linspace(lo, hi, points)
    g[0], g[-1] = lo, hi
    return g


def on_grid(grid: np.ndarray, knots) -> np.ndarray:
    """(len(knots), len(grid)) float64: each series' knots interpolated linearly onto the grid inside
    the series' own x range, NaN outside it (no extrapolation)."""
    Y = np.full((len(knots), len(grid)), np.nan)
    for i, (kx, kv) in enumerate(knots):
        if len(kx) == 0:
            continue
        a, b = np.searchsorted(grid, kx[0], "left"), np.searchsorted(grid, kx[-1], "right")
        if b > a:
            Y[i, a:b] = np.interp(grid[a:b], kx, kv)
    return Y


def reduce(Y: np.ndarray, stat: str = "mean", band: str = "minmax"):
    """Center, band and count per grid point over the finite entries of each column of Y.

    center: mean or median; band 'minmax': [min, max]; 'std': center -/+ the standard deviation
    (np.std, ddof=0); 'ci95': mean -/+ 1.96 * std / sqrt(count); 'none': lo = hi = center. Columns
    with no series are NaN (count 0). Returns four arrays of shape (points,); count is int64.
    """
    if stat not in STATS:
        raise ValueError(f"stat must be one of {STATS}, not {stat!r}")
    if band not in BANDS:
        raise ValueError(f"band must be one of {BANDS}, not {band!r}")
    p = Y.shape[1]
    have = ~np.isnan(Y)
    count = have.sum(axis=0)
    if Y.shape[0] == 0 or p == 0:
        nan = np.full(p, np.nan)
        return nan, nan.copy(), nan.copy(), count.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean = np.where(count > 0, np.where(have, Y, 0.0).sum(axis=0) / count, np.nan)
        center = mean if stat == "mean" else np.nanmedian(Y, axis=0)
        if band == "minmax":
            lo, hi = np.nanmin(Y, axis=0), np.nanmax(Y, axis=0)
        elif band == "none":
            lo, hi = center.copy(), center.copy()
        else:
            dev = np.where(have, Y - mean, 0.0)
            std = np.sqrt((dev * dev).sum(axis=0) / count)
            if band == "std":
                lo, hi = center - std, center + std
            else:
                half = 1.96 * std / np.sqrt(count)
                lo, hi = mean - half, mean + half
    return center, lo, hi, count.astype(np.int64)
