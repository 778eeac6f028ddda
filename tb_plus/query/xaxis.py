"""X axes for series: step, wall time, time since the first point, or the value of another scalar tag.

    axis = parse_x("tag:epoch")                  # ("tag", "epoch")
    idx, xs = x_from_tag(s.step, e.step, e.value)  # epoch at each point of s, points outside dropped

The rule for `tag:<TAG>` (http_api.md, "X axes"): the x of a point at step s is TAG's value at step s
when TAG has a point there (the last one written when it has several), else the linear interpolation in
step between TAG's nearest points before and after s; points outside TAG's step range are dropped,
never extrapolated. TAG's non-finite values are left out first, as if they had not been logged.
Cost: O(m log m) for TAG's m points (a stable sort), O(n) for the series' n points (np.interp).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BASIC_AXES", "parse_x", "x_basic", "tag_knots", "x_from_tag", "keep_positive"]

BASIC_AXES = ("step", "wall_time", "relative")


def parse_x(text: str):
    """'step' | 'wall_time' | 'relative' -> that string; 'tag:<TAG>' -> ('tag', TAG).

    Raises ValueError for anything else (an empty TAG included)."""
    if text in BASIC_AXES:
        return text
    if isinstance(text, str) and text.startswith("tag:") and len(text) > 4:
        return ("tag", text[4:])
    raise ValueError(f"x must be step, wall_time, relative or tag:<TAG>, not {text!r}")


def x_basic(step: np.ndarray, wall_time: np.ndarray, axis: str) -> np.ndarray:
    """The x column of a series for a basic axis: the int64 steps, the wall times, or the wall
    times minus the first point's (the first written, not the smallest). Shape (n,)."""
    if axis == "step":
        return step
    if axis == "wall_time":
        return wall_time
    if axis == "relative":
        return wall_time - wall_time[0] if len(wall_time) else np.asarray(wall_time, np.float64)
    raise ValueError(f"not a basic x axis: {axis!r}")


def tag_knots(step: np.ndarray, value: np.ndarray):
    """TAG's points as interpolation knots: (steps, values), float64, shape (k,), steps strictly
    increasing; non-finite values left out; of several points at one step the last written wins."""
    step = np.asarray(step)
    value = np.asarray(value, np.float64)
    fin = np.isfinite(value)
    if not fin.all():
        step, value = step[fin], value[fin]
    order = np.argsort(step, kind="stable")  # equal steps stay in written order
    ss, vv = step[order], value[order]
    if len(ss) > 1:
        last = np.r_[ss[1:] != ss[:-1], True]  # the last written of each run of equal steps
        ss, vv = ss[last], vv[last]
    return ss.astype(np.float64), vv


def x_from_tag(step: np.ndarray, tag_step: np.ndarray, tag_value: np.ndarray):
    """X values taken from another scalar tag of the same run.

    Args:
      step: the series' steps, shape (n,), any order.
      tag_step, tag_value: the x tag's columns, shape (m,), any order, duplicates allowed.

    Returns:
      (idx, xs): int64 indices (ascending) of the series' points inside TAG's step range, and their
      float64 x values, shape (k,). Exact at TAG's steps, linear in step between them.
    """
    ks, kv = tag_knots(tag_step, tag_value)
    step = np.asarray(step)
    if len(ks) == 0 or len(step) == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    sf = step.astype(np.float64)
    idx = np.flatnonzero((sf >= ks[0]) & (sf <= ks[-1])).astype(np.int64, copy=False)
    sf = sf[idx]
    xs = np.interp(sf, ks, kv)
    # np.interp is exact at a knot already; pin it anyway, so "exact match" never depends on rounding
    pos = np.minimum(np.searchsorted(ks, sf), len(ks) - 1)
    hit = ks[pos] == sf
    xs[hit] = kv[pos[hit]]
    return idx, xs


def keep_positive(xs: np.ndarray) -> np.ndarray:
    """Indices of the points a log-scale x axis can show (x > 0)."""
    return np.flatnonzero(np.asarray(xs) > 0).astype(np.int64, copy=False)
