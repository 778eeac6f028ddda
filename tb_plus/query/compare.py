"""A - B or A / B of two series on A's x values.

    idx, out = compare(xa, va, xb, vb, "diff")   # A's points inside B's x range, and the result there

The rule (http_api.md, `/compare`): B's knots are its points with finite x and value, one per x (the last
written wins, as in aggregate.prepare); B is interpolated linearly at A's x values inside [first, last]
knot; A's points outside are dropped; A's non-finite values pass through numpy's arithmetic (NaN - b is NaN),
and a ratio with B == 0 gives +-inf or NaN as numpy does. A's order is kept.
"""

from __future__ import annotations

import numpy as np

from tb_plus.query.aggregate import prepare

__all__ = ["OPS", "compare"]

OPS = ("diff", "ratio")


def compare(xa, va, xb, vb, op: str = "diff"):
    """Args: A's and B's x and values (shape (n,) and (m,), any order). Returns (idx, values): int64
    indices into A (ascending) of the points inside B's x range, and float64 A - B or A / B there."""
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, not {op!r}")
    xa = np.asarray(xa, np.float64)
    va = np.asarray(va, np.float64)
    kx, kv = prepare(xb, vb)
    if len(kx) == 0 or len(xa) == 0:
        return np.empty(0, np.int64), np.empty(0)
    idx = np.flatnonzero((xa >= kx[0]) & (xa <= kx[-1])).astype(np.int64, copy=False)
    b = np.interp(xa[idx], kx, kv)
    a = va[idx]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = a - b if op == "diff" else a / b
    return idx, out
