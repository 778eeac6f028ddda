"""Small numeric helpers the diagnostic rules share: cleaning a series, condensing a long one,
robust smoothing, and finding sustained runs of a condition (the rules' patience)."""

from __future__ import annotations

import math

import numpy as np

MAX_POINTS = 1000  # rules look at a series condensed to at most this many points


def clean(step, value, wall=None):
    """Sorted by step, one point per step (the last written wins, as after a restart from a
    checkpoint). Returns (step int64, value float64, wall float64 or None)."""
    step = np.asarray(step, np.int64)
    value = np.asarray(value, np.float64)
    if len(step) == 0:
        return step, value, (None if wall is None else np.asarray(wall, np.float64))
    if len(step) > 1 and not (np.all(step[1:] > step[:-1])):
        rev = np.arange(len(step) - 1, -1, -1)
        _, first = np.unique(step[rev], return_index=True)  # first in reverse = last written
        keep = rev[first]
        step, value = step[keep], value[keep]
        wall = None if wall is None else np.asarray(wall, np.float64)[keep]
    return step, value, (None if wall is None else np.asarray(wall, np.float64))


def condense(step, value, max_points=MAX_POINTS):
    """At most `max_points` points: consecutive equal-count bins, each the mean step and the mean
    of its finite values (NaN when it has none). Short series are returned as they are."""
    n = len(step)
    if n <= max_points:
        return np.asarray(step, np.float64), np.asarray(value, np.float64)
    edges = np.linspace(0, n, max_points + 1).astype(np.int64)
    finite = np.isfinite(value)
    v = np.where(finite, value, 0.0)
    csum = np.concatenate([[0.0], np.cumsum(v)])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    cstep = np.concatenate([[0.0], np.cumsum(np.asarray(step, np.float64))])
    count = ccount[edges[1:]] - ccount[edges[:-1]]
    width = edges[1:] - edges[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (csum[edges[1:]] - csum[edges[:-1]]) / count
        steps = (cstep[edges[1:]] - cstep[edges[:-1]]) / width
    return steps, np.where(count > 0, mean, np.nan)


def rolling_median(value, window):
    """Centred running median over `window` points (NaNs ignored; near the ends, the points that
    exist)."""
    v = np.asarray(value, np.float64)
    n = len(v)
    w = max(1, int(window) | 1)
    if w == 1 or n == 0:
        return v.copy()
    h = w // 2
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window is NaN
        med = np.nanmedian if np.isnan(v).any() else np.median
        if n < w:
            return np.array([med(v[max(0, i - h): i + h + 1]) for i in range(n)])
        out = np.empty(n)
        out[h: n - h] = med(np.lib.stride_tricks.sliding_window_view(v, w), axis=1)
        # the ends: windows cut short, as NaN-padded windows whose NaNs are ignored (two calls)
        head = np.concatenate([np.full(h, np.nan), v[: w - 1]])
        tail = np.concatenate([v[n - w + 1:], np.full(h, np.nan)])
        out[:h] = np.nanmedian(np.lib.stride_tricks.sliding_window_view(head, w), axis=1)
        out[n - h:] = np.nanmedian(np.lib.stride_tricks.sliding_window_view(tail, w), axis=1)
        return out


def trailing_median(value, window):
    """Median of the `window` points before each point (NaNs ignored); the first point gets its
    own value."""
    v = np.asarray(value, np.float64)
    n, w = len(v), max(1, int(window))
    if n == 0:
        return v.copy()
    import warnings

    padded = np.concatenate([np.full(w, np.nan), v])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the first window is all NaN
        out = np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded[:-1], w), axis=1)
    out[0] = v[0]
    return out


def smooth_window(n: int) -> int:
    """The running-median window for a series of n points: about 1/40th of it, 3 to 51 points."""
    return int(min(51, max(3, n // 40))) | 1


def streak(mask, patience: int, at_end_ok: bool = True):
    """Index where `mask` first holds for `patience` consecutive points (or, with at_end_ok, from
    some point to the end of the series, when fewer remain); None when it never does."""
    mask = np.asarray(mask, bool)
    n = len(mask)
    if n == 0:
        return None
    patience = max(1, int(patience))
    # run lengths of True, from each index forward
    idx = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    starts, ends = idx[::2], idx[1::2]
    for a, b in zip(starts.tolist(), ends.tolist()):
        if b - a >= patience or (at_end_ok and b == n and b - a >= max(1, min(patience, 3))):
            return a
    return None


def finite(x) -> bool:
    return x is not None and isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(float(x))


def num(x, digits=4):
    """A number for evidence and messages: ints stay ints, floats rounded to `digits` significant
    digits, non-finite ones as TensorBoard's JSON writes them."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return 0.0
    return float(f"{x:.{digits}g}")


def fmt(x) -> str:
    """A number for prose."""
    v = num(x)
    if isinstance(v, str) or isinstance(v, int):
        return str(v)
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{v:.2e}"
    return f"{v:.4g}"
