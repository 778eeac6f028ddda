"""Deterministic min/max/first/last downsampling of one scalar series, for a chart `width` pixels wide.

    idx = downsample(series.step, series.value, 1000, xmin=0, xmax=5000)
    step, value = series.step[idx], series.value[idx]

The rule (http_api.md, `/series`): take the points with xmin <= x <= xmax, split their x extent into
`width` buckets of equal x range, and keep, in each non-empty bucket, its first and last point (by
index), the points with the smallest and the largest finite y (lowest index on ties) and every point
whose y is NaN, +inf or -inf. The last selected point is always kept. Buckets go by x value, not by
position, so a series whose step goes back after a restart is handled by the same rule.

Cost: O(n) for non-decreasing x (one pass to check the order, one to find non-finite y, then one
argmin/argmax per bucket over contiguous slices); x made of a few non-decreasing runs (restarts) is
done run by run and merged; any other order falls back to a stable sort by bucket, O(n log n).
"""

from __future__ import annotations

import math
import operator

import numpy as np

__all__ = ["select_range", "downsample"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# Buckets averaging at least this many points take a Python loop of slice argmin/argmax (about 2 us
# a bucket, no temporaries); shorter buckets take the vectorised reduceat path (a few passes over n).
_LOOP_MIN_POINTS = 512
# Up to this many non-decreasing runs (training restarts) are downsampled run by run; more go
# through the sort-based fallback.
_MAX_RUNS = 64


def select_range(x: np.ndarray, xmin=None, xmax=None) -> np.ndarray:
    """Indices of the points with xmin <= x[i] <= xmax.

    Args:
      x: 1-D array of int64 steps or float64 times, in any order.
      xmin, xmax: inclusive bounds, or None for unbounded. Compared exactly for integer x (a
        fractional bound is rounded inwards); NaN bounds raise ValueError.

    Returns:
      int64 array of shape (k,), ascending: every i with xmin <= x[i] <= xmax. A NaN x is never
      selected; xmin > xmax selects nothing.
    """
    x = _as_x(x)
    lo, hi, empty = _bounds(x.dtype, xmin, xmax)
    if empty:
        return np.empty(0, np.int64)
    if lo is None and hi is None:
        if x.dtype.kind == "f":
            return np.flatnonzero(~np.isnan(x)).astype(np.int64, copy=False)
        return np.arange(len(x), dtype=np.int64)
    if lo is None:
        mask = x <= hi
    elif hi is None:
        mask = x >= lo
    else:
        mask = (x >= lo) & (x <= hi)
    return np.flatnonzero(mask).astype(np.int64, copy=False)


def downsample(x: np.ndarray, y: np.ndarray, width: int, *, xmin=None, xmax=None, with_count=False):
    """Indices of the points to draw for a chart `width` pixels wide.

    Args:
      x: 1-D array, shape (n,): int64 steps or float64 times. Usually non-decreasing, but any order
        is accepted (steps go back after a restart); NaN x is never selected.
      y: 1-D float array, shape (n,): the values; NaN and +-inf allowed.
      width: number of buckets, >= 1.
      xmin, xmax: keep only points with xmin <= x <= xmax (None: unbounded).

    Returns:
      int64 array of shape (k,), ascending, no duplicates, indices into x and y. If at most
      4 * width points are selected, all of them. Otherwise the selected points' x extent
      [min x, max x] -- or [xmin, xmax] when both are given and finite -- is split into `width`
      buckets of equal x range (bucket edges: exact integers ceil(x0 + j * span / width) for integer
      x, np.linspace(x0, x1, width + 1) for float x; the last bucket includes its upper edge), and
      each non-empty bucket contributes its first and last point (lowest and highest index), the
      point with the smallest finite y and the one with the largest finite y (lowest index on ties),
      and every point with a non-finite y. The highest selected index is always included. The same
      input always gives the same output.
      With `with_count=True`: (indices, number of selected points), the count at no extra pass.
    """
    idx, count = _downsample(x, y, width, xmin, xmax)
    return (idx, count) if with_count else idx


def _downsample(x, y, width, xmin, xmax):
    x = _as_x(x)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError("y must be 1-D with the length of x (%d), got shape %r" % (len(x), y.shape))
    if y.dtype.kind != "f":
        y = y.astype(np.float64)
    width = operator.index(width)
    if width < 1:
        raise ValueError("width must be >= 1, got %r" % (width,))
    lo, hi, empty = _bounds(x.dtype, xmin, xmax)
    if empty or len(x) == 0:
        return np.empty(0, np.int64), 0

    runs = _monotonic_runs(x)
    if runs is None:
        idx = _downsample_sorted(x, y, width, lo, hi)
        return idx, len(select_range(x, xmin, xmax))  # unordered x (rare): one more pass

    # Every run is non-decreasing (a NaN x forms a run of its own and is dropped): the selection
    # within a run is one contiguous slice.
    sel = []
    for a, b in runs:
        if b - a == 1 and x.dtype.kind == "f" and math.isnan(x[a]):
            continue
        xr = x[a:b]
        sa = a + (0 if lo is None else int(np.searchsorted(xr, lo, "left")))
        sb = a + (b - a if hi is None else int(np.searchsorted(xr, hi, "right")))
        if sb > sa:
            sel.append((sa, sb))
    total = sum(b - a for a, b in sel)
    if total == 0:
        return np.empty(0, np.int64), 0
    if total <= 4 * width:
        return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in sel]), total

    edges = _edges(x, width, lo, hi, [(x[a], x[b - 1]) for a, b in sel], sel)
    parts, nonfinite = [], []
    for a, b in sel:
        xr, yr = x[a:b], y[a:b]
        bnd = np.empty(width + 1, np.int64)
        bnd[0], bnd[width] = 0, b - a
        bnd[1:width] = np.searchsorted(xr, edges[1:width], "left")
        nfp = np.flatnonzero(~np.isfinite(yr))
        ks, first, last, mn, mx = _extremes(yr, bnd, nfp)
        parts.append((ks, first + a, last + a, np.where(mn >= 0, mn + a, -1), np.where(mx >= 0, mx + a, -1)))
        nonfinite.append(nfp + a)
    ks, first, last, mn, mx = parts[0] if len(parts) == 1 else _merge(parts, y)
    last_selected = np.array([max(b for _, b in sel) - 1], np.int64)
    return _assemble(first, last, mn, mx, *nonfinite, last_selected), total


# ----------------------------------------------------------------------------- helpers


def _as_x(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError("x must be 1-D, got shape %r" % (x.shape,))
    if x.dtype.kind in "iub":
        return x.astype(np.int64, copy=False)
    if x.dtype.kind == "f":
        return x.astype(np.float64, copy=False)
    raise ValueError("x must hold integers or floats, got dtype %r" % (x.dtype,))


def _bounds(dtype, xmin, xmax):
    """Normalised (lo, hi, empty): Python ints for integer x (rounded inwards, clipped to int64),
    floats for float x; None where unbounded; empty=True when nothing can be selected."""
    lo = hi = None
    empty = False
    for name, v, is_lo in (("xmin", xmin, True), ("xmax", xmax, False)):
        if v is None:
            continue
        if dtype.kind == "f":
            v = float(v)
            if math.isnan(v):
                raise ValueError("%s is NaN" % name)
            if math.isinf(v):
                if (v > 0) == is_lo:  # xmin=+inf or xmax=-inf
                    empty = True
                continue  # xmin=-inf or xmax=+inf: unbounded
        else:
            try:
                v = operator.index(v)
            except TypeError:
                v = float(v)
                if math.isnan(v):
                    raise ValueError("%s is NaN" % name) from None
                if math.isinf(v):
                    if (v > 0) == is_lo:
                        empty = True
                    continue
                v = math.ceil(v) if is_lo else math.floor(v)
            if is_lo and v > _INT64_MAX or not is_lo and v < _INT64_MIN:
                empty = True
                continue
            v = max(v, _INT64_MIN) if is_lo else min(v, _INT64_MAX)
        if is_lo:
            lo = v
        else:
            hi = v
    if lo is not None and hi is not None and lo > hi:
        empty = True
    return lo, hi, empty


def _monotonic_runs(x):
    """[(a, b), ...] covering x with non-decreasing runs, or None when there are more than
    _MAX_RUNS of them. A NaN always forms a run of its own."""
    n = len(x)
    if n < 2:
        return [(0, n)]
    down = x[1:] < x[:-1] if x.dtype.kind != "f" else ~(x[1:] >= x[:-1])
    if not down.any():
        return [(0, n)]
    breaks = np.flatnonzero(down) + 1
    if len(breaks) >= _MAX_RUNS:
        return None
    cuts = [0, *breaks.tolist(), n]
    return list(zip(cuts[:-1], cuts[1:]))


def _edges(x, width, lo, hi, ends, sel=None):
    """Bucket edges, shape (width + 1,), non-decreasing, dtype of x; point with value v belongs to
    bucket clip(searchsorted(edges, v, "right") - 1, 0, width - 1)."""
    if x.dtype.kind != "f":
        if lo is not None and hi is not None:
            x0, x1 = lo, hi
        else:
            x0 = min(int(a) for a, _ in ends)
            x1 = max(int(b) for _, b in ends)
        # edge j = x0 + ceil(j * span / width), exactly, in wrapping uint64 arithmetic (span < 2**64).
        q, r = divmod(x1 - x0, width)
        j = np.arange(width + 1, dtype=np.uint64)
        w = np.uint64(width)
        e = np.uint64(x0 % 2**64) + j * np.uint64(q) + (j * np.uint64(r) + (w - np.uint64(1))) // w
        return e.view(np.int64)
    if lo is not None and hi is not None:
        x0, x1 = lo, hi
    else:
        lows = [float(a) for a, _ in ends]
        highs = [float(b) for _, b in ends]
        if any(math.isinf(v) for v in lows + highs) and sel is not None:  # extent of the finite x
            lows, highs = [], []
            for a, b in sel:
                xr = x[a:b]
                fa, fb = np.searchsorted(xr, -np.inf, "right"), np.searchsorted(xr, np.inf, "left")
                if fb > fa:
                    lows.append(float(xr[fa]))
                    highs.append(float(xr[fb - 1]))
        x0 = min(lows) if lows else 0.0
        x1 = max(highs) if highs else 0.0
        if lo is not None:
            x0 = lo
        if hi is not None:
            x1 = hi
    e = np.linspace(x0, x1, width + 1)
    if not np.isfinite(e).all():  # span overflows float64
        t = np.arange(width + 1) / width
        e = x0 * (1 - t) + x1 * t
    return np.maximum.accumulate(e)


def _extremes(v, bnd, nfp):
    """First, last, argmin and argmax of finite values per segment.

    Args:
      v: values, shape (m,); segment k is v[bnd[k]:bnd[k+1]].
      bnd: int64 shape (w + 1,), non-decreasing, bnd[0] == 0, bnd[w] == m.
      nfp: ascending positions of the non-finite values of v.

    Returns:
      (ks, first, last, mn, mx): int64 arrays of shape (s,) over the s non-empty segments: segment
      numbers and positions in v; mn/mx are -1 where a segment has no finite value.
    """
    ks = np.flatnonzero(bnd[1:] > bnd[:-1])
    s, e = bnd[ks], bnd[ks + 1]
    dirty = nfp[:0]
    if len(nfp):  # buckets holding non-finite values
        mark = np.zeros(len(ks), bool)
        mark[np.searchsorted(s, nfp, "right") - 1] = True
        dirty = np.flatnonzero(mark)
    if len(dirty) > max(64, len(v) // 4096):  # non-finite values all over: mask them once, everywhere
        fin = np.isfinite(v)
        vmin, vmax = np.where(fin, v, np.inf), np.where(fin, v, -np.inf)
        dirty = dirty[:0]
    else:  # none or a few: reduce the raw values, then redo the few buckets that hold them
        vmin = vmax = v
    if len(v) >= _LOOP_MIN_POINTS * len(ks):
        mn = np.empty(len(ks), np.int64)
        mx = np.empty(len(ks), np.int64)
        for i, (a, b) in enumerate(zip(s.tolist(), e.tolist())):
            mn[i] = a + vmin[a:b].argmin()
            mx[i] = a + vmax[a:b].argmax()
    else:
        mn = _first_equal(vmin, np.minimum.reduceat(vmin, s), s, e)
        mx = _first_equal(vmax, np.maximum.reduceat(vmax, s), s, e)
    for i in dirty.tolist():
        a, b = int(s[i]), int(e[i])
        seg = v[a:b]
        fin = np.isfinite(seg)
        if fin.any():
            mn[i] = a + np.where(fin, seg, np.inf).argmin()
            mx[i] = a + np.where(fin, seg, -np.inf).argmax()
        else:
            mn[i] = mx[i] = -1
    return ks, s, e - 1, mn, mx


def _first_equal(v, best, s, e):
    """Per segment [s, e): the first position whose value equals best (-1 where best is not finite
    or not found)."""
    cand = np.flatnonzero(v == np.repeat(best, e - s))
    if len(cand) == 0:
        return np.full(len(s), -1, np.int64)
    pos = cand[np.minimum(np.searchsorted(cand, s, "left"), len(cand) - 1)]
    pos[~np.isfinite(best) | (pos >= e)] = -1  # no finite value (or a bucket redone by the caller)
    return pos


def _merge(parts, y):
    """Combine the per-bucket (ks, first, last, mn, mx) of several runs into one per bucket."""
    ks, first, last, mn, mx = (np.concatenate(c) for c in zip(*parts))
    order = np.argsort(ks, kind="stable")
    ks, first, last, mn, mx = ks[order], first[order], last[order], mn[order], mx[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    vmin = np.where(mn >= 0, y[mn], np.inf)
    vmax = np.where(mx >= 0, -y[mx], np.inf)
    out_mn = mn[np.lexsort((np.where(mn >= 0, mn, 2**62), vmin, ks))[starts]]
    out_mx = mx[np.lexsort((np.where(mx >= 0, mx, 2**62), vmax, ks))[starts]]
    return ks[starts], np.minimum.reduceat(first, starts), np.maximum.reduceat(last, starts), out_mn, out_mx


def _assemble(first, last, mn, mx, *rest):
    """Sorted, de-duplicated union (np.sort + a mask: np.unique hashes, and is far slower here)."""
    out = np.sort(np.concatenate([first, last, mn[mn >= 0], mx[mx >= 0], *rest]).astype(np.int64, copy=False))
    if len(out) > 1:
        out = out[np.r_[True, out[1:] != out[:-1]]]
    return out


def _downsample_sorted(x, y, width, lo, hi):
    """Any order of x: group the selected points by bucket with a stable sort, O(n log n)."""
    sel = select_range(x, lo, hi)
    if len(sel) <= 4 * width:
        return sel
    xs = x[sel]
    if x.dtype.kind == "f":
        fx = xs[np.isfinite(xs)]
        ends = [(fx.min(), fx.max())] if len(fx) else [(0.0, 0.0)]
    else:
        ends = [(xs.min(), xs.max())]
    edges = _edges(x, width, lo, hi, ends)
    bucket = np.clip(np.searchsorted(edges, xs, "right") - 1, 0, width - 1)
    order = np.argsort(bucket.astype(np.uint16 if width <= 2**16 else np.int64), kind="stable")
    bnd = np.zeros(width + 1, np.int64)
    np.cumsum(np.bincount(bucket, minlength=width), out=bnd[1:])
    idx = sel[order]
    v = y[idx]
    _, first, last, mn, mx = _extremes(v, bnd, np.flatnonzero(~np.isfinite(v)))
    mn, mx = np.where(mn >= 0, idx[mn], -1), np.where(mx >= 0, idx[mx], -1)
    nonfinite = sel[~np.isfinite(y[sel])]
    return _assemble(idx[first], idx[last], mn, mx, nonfinite, sel[-1:])
