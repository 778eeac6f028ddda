"""Smoothing of one scalar series at full resolution: x-distance debiased EMA, centred moving median.

    sm = ema(xs, s.value, 0.6)          # shape (n,), aligned with the input
    sm = moving_median(s.value, 9)

EMA (http_api.md, `/series`, `smooth=ema`): with dx_ref the median of the positive finite gaps between
consecutive x of the series (1 if there are none), every finite value i gets the decay
d_i = W ** ((x_i - x_{i-1}) / dx_ref), x_{i-1} the x of the point just before it in the series, and
acc_i = d_i*acc_p + (1-d_i)*v_i, norm_i = d_i*norm_p + (1-d_i), smoothed_i = acc_i / norm_i (p the previous
finite value), starting from acc = norm = 0 with d = W at the first finite value. A non-finite value is
skipped entirely, as TensorBoard does: it gets the previous smoothed value (NaN before the first finite
one) and no decay of its own. A gap that is not positive or not finite (steps going back after a restart,
a repeated x) counts as one reference gap, so the EMA always runs in the series' written order, like
TensorBoard's. For evenly spaced x every d_i is W: TensorBoard's debiased EMA exactly.

The recurrence is an inclusive scan over affine maps y -> d*y + b, done with numpy in log2(n) passes
(Hillis-Steele doubling) that stop as soon as the remaining decay products are below 1e-30, i.e. after
about log2(70 / -log(W)) passes: 7 for W=0.6, 14 for W=0.999. No Python loop over points.

Moving median: the median of the finite values among the K points centred on i (by index; the window is
cut at both ends of the series), NaN when there is none. O(n K log K), in row blocks of about 4M values.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ema", "moving_median", "reference_gap"]

_TINY = 1e-30  # decay products below this no longer change a float64 result
_BLOCK = 1 << 22  # values per moving-median block


def reference_gap(x: np.ndarray) -> float:
    """The median of the positive finite gaps between consecutive x values (1.0 if none)."""
    x = np.asarray(x, np.float64)
    if len(x) < 2:
        return 1.0
    g = np.diff(x)
    g = g[(g > 0) & np.isfinite(g)]
    return float(np.median(g)) if len(g) else 1.0


def ema(x: np.ndarray, v: np.ndarray, weight: float) -> np.ndarray:
    """Debiased EMA whose decay follows x distance (see the module docstring).

    Args:
      x: shape (n,), int or float, in the series' order (any order accepted).
      v: shape (n,), values, non-finite allowed.
      weight: 0 <= weight < 1.

    Returns:
      float64 array, shape (n,).
    """
    weight = float(weight)
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"weight must be in [0, 1), not {weight!r}")
    v = np.asarray(v, np.float64)
    x = np.asarray(x)
    if x.shape != v.shape or v.ndim != 1:
        raise ValueError(f"x and v must be 1-D of equal length, got {x.shape} and {v.shape}")
    n = len(v)
    fin = np.isfinite(v)
    all_finite = bool(fin.all())
    fpos = None if all_finite else np.flatnonzero(fin)
    m = n if all_finite else len(fpos)
    if m == 0:
        return np.full(n, np.nan)
    dx_ref = reference_gap(x)
    vf = v if all_finite else v[fpos]
    gaps = np.diff(np.asarray(x, np.float64)) / dx_ref  # gap i-1 -> i, whatever the values
    gaps[~((gaps > 0) & np.isfinite(gaps))] = 1.0
    if not all_finite:
        gaps = gaps[fpos[1:] - 1]  # the gap before each finite value but the first
    d = np.empty(m)
    d[0] = weight
    np.power(weight, gaps, out=d[1:])
    b = np.empty((2, m))
    np.subtract(1.0, d, out=b[1])  # norm's input: 1 - d
    np.multiply(b[1], vf, out=b[0])  # acc's input: (1 - d) * v
    _affine_scan(d, b)
    sm = b[0] / b[1]
    if all_finite:
        return sm
    k = np.cumsum(fin) - 1  # position in the finite subsequence of the last finite value at or before i
    out = np.full(n, np.nan)
    seen = k >= 0
    out[seen] = sm[k[seen]]
    return out


def _affine_scan(d: np.ndarray, b: np.ndarray) -> None:
    """In place: b[:, i] becomes y_i of y_i = d_i * y_{i-1} + b[:, i], y_{-1} = 0 (each row)."""
    m = len(d)
    k = 1
    while k < m:
        if d[k:].max() < _TINY:  # the maps reaching further back have (numerically) no effect
            break
        t = d[k:] * b[:, :-k]  # a new array: reads b before it is updated
        b[:, k:] += t
        d[k:] *= d[:-k]  # numpy buffers overlapping operands of a ufunc
        k *= 2


def moving_median(v: np.ndarray, window: int) -> np.ndarray:
    """Centred moving median over `window` points by index (odd, >= 1), ignoring non-finite values.

    Returns:
      float64 array, shape (n,): out[i] is the median of the finite values among
      v[max(0, i - h) : i + h + 1], h = window // 2 (mean of the two middle ones for an even count),
      NaN when there is none.
    """
    window = int(window)
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 1, not {window!r}")
    v = np.asarray(v, np.float64)
    n = len(v)
    h = window // 2
    padded = np.full(n + 2 * h, np.nan)
    padded[h : h + n] = v
    padded[h : h + n][~np.isfinite(v)] = np.nan
    if window == 1 or n == 0:
        return padded[h : h + n].copy()
    wins = np.lib.stride_tricks.sliding_window_view(padded, window)
    out = np.empty(n)
    rows = max(1, _BLOCK // window)
    for a in range(0, n, rows):
        blk = np.sort(wins[a : a + rows], axis=1)  # NaN sorts last
        c = window - np.isnan(blk).sum(axis=1)
        r = np.arange(len(blk))
        i_lo = np.maximum((c - 1) // 2, 0)
        i_hi = np.maximum(c // 2, i_lo)
        lo, hi = blk[r, i_lo], blk[r, i_hi]
        med = np.where(i_lo == i_hi, lo, (lo + hi) / 2)
        med[c == 0] = np.nan
        out[a : a + len(blk)] = med
    return out
