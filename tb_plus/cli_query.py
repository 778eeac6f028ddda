"""The reports of `tb-plus query` (runs, tags, stats, series): plain dicts, ready for json.dumps.

Runs and tags are chosen as `Logdir.frame` chooses them (tb_plus.frame.select: an exact name, a glob,
"re:REGEX"; a list takes the union). Scalar tags are those `Logdir.tags(run)` lists, the series tb_plus
reads out of tensor summaries included. Every float that is NaN, +inf or -inf is None (JSON null).
Each report holds a list (runs, tags, stats, series); an empty list means nothing matched.
"""

from __future__ import annotations

import math
import time

import numpy as np

from tb_plus.frame import select

__all__ = ["DEFAULT_LIVE_SECONDS", "DEFAULT_STALE_SECONDS", "MAX_POINTS", "KINDS",
           "runs_report", "tags_report", "stats_report", "series_report"]

DEFAULT_LIVE_SECONDS = 60.0  # the plugin's --tb_plus_live_seconds default
DEFAULT_STALE_SECONDS = 1800.0  # the plugin's --tb_plus_stale_seconds default
DEFAULT_POINTS = 500
MAX_POINTS = 100_000
KINDS = ("scalars", "histograms", "tensors", "blobs")


def num(v):
    """A JSON-ready number: None for NaN and +-inf; ints stay ints."""
    if v is None:
        return None
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else None


def column(a) -> list:
    """A numpy column as a list, non-finite floats as None."""
    a = np.asarray(a)
    out = a.tolist()
    if a.dtype.kind == "f":
        for i in np.flatnonzero(~np.isfinite(a)).tolist():
            out[i] = None
    return out


def runs_report(ld, runs=None, *, live_seconds=DEFAULT_LIVE_SECONDS, stale_seconds=DEFAULT_STALE_SECONDS,
                now=None, max_tags=50) -> dict:
    """Per chosen run: its /runs row (status computed as the /runs route does) and the last point of its
    first `max_tags` scalar tags by name (`last_left_out`: how many tags were not shown)."""
    from tb_plus.routes.runs import status

    now = time.time() if now is None else now
    stale_seconds = max(live_seconds, stale_seconds)
    out = []
    for run in select(ld.runs(), runs):
        info = ld.run_info(run)
        tags = ld.tags(run, "scalars")
        last = {}
        for t in tags[:max_tags]:
            s = ld.scalars(run, t)
            last[t] = {"step": int(s.step[-1]), "value": num(s.value[-1])} if len(s) else None
        out.append({
            "name": run,
            "status": status(now, info.last_write, live_seconds, stale_seconds, info.last_event),
            "last_step": info.last_step,
            "last_write": info.last_write,
            "first_write": info.first_write,
            "last_event": info.last_event,
            "size": info.size,
            "files": info.files,
            "scalar_tags": info.scalar_tags,
            "last": last,
            "last_left_out": max(0, len(tags) - max_tags),
        })
    return {"live_seconds": live_seconds, "stale_seconds": stale_seconds, "runs": out}


def tags_report(ld, pattern=None, runs=None, kind="scalars") -> dict:
    """Per chosen run with a matching tag of `kind`: its matching tags, sorted."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    out = []
    for run in select(ld.runs(), runs):
        tags = select(ld.tags(run, kind), pattern)
        if tags:
            out.append({"run": run, "tags": tags})
    return {"kind": kind, "runs": out}


def _series(ld, runs, tags):
    for run in select(ld.runs(), runs):
        for t in select(ld.tags(run, "scalars"), tags):
            yield run, t, ld.scalars(run, t)


def series_stats(s) -> dict:
    """points, first_step, last_step, last (the last point written), min and max over the non-NaN values
    (+-inf count) with the step of their first occurrence, and the NaN and +-inf counts."""
    v = s.value
    nan = np.isnan(v)
    ok = np.flatnonzero(~nan)
    out = {"points": int(len(v)), "first_step": None, "last_step": None, "last": None, "min": None, "min_step": None,
           "max": None, "max_step": None, "nan": int(nan.sum()), "inf": int(np.isinf(v).sum())}
    if len(v):
        out.update(first_step=int(s.step[0]), last_step=int(s.step[-1]), last=num(v[-1]))
    if len(ok):
        sub = v[ok]
        i, j = ok[int(np.argmin(sub))], ok[int(np.argmax(sub))]
        out.update(min=num(v[i]), min_step=int(s.step[i]), max=num(v[j]), max_step=int(s.step[j]))
    return out


def stats_report(ld, tags, runs=None) -> dict:
    """Per chosen (run, scalar tag): series_stats."""
    return {"stats": [{"run": run, "tag": t, **series_stats(s)} for run, t, s in _series(ld, runs, tags)]}


def thin(x, y, points: int):
    """Indices of at most `points` points of (x, y): the server's downsampler with points // 4 buckets
    (first, last, min and max of each, every non-finite y); when the non-finite points it always keeps
    make more than `points`, evenly spaced ones of those it chose, the first and the last included (the
    last alone for points=1)."""
    from tb_plus.query.downsample import downsample

    idx = downsample(x, y, max(1, points // 4))
    if len(idx) > points:
        pick = np.round(np.linspace(0, len(idx) - 1, points)).astype(np.int64) if points > 1 else [-1]
        idx = idx[np.unique(pick)]
    return idx


def series_report(ld, tags, runs=None, *, points=DEFAULT_POINTS, x="step") -> dict:
    """Per chosen (run, scalar tag): at most `points` points (see `thin`) as x and y lists. x: step,
    wall_time, relative, or tag:NAME (NAME's value at the point's step, interpolated; points outside
    NAME's steps, or every point when the run has no scalar NAME, are left out)."""
    from tb_plus.query import xaxis

    if not 1 <= points <= MAX_POINTS:
        raise ValueError(f"points must be in [1, {MAX_POINTS}], not {points!r}")
    axis = xaxis.parse_x(x)
    out = []
    for run, t, s in _series(ld, runs, tags):
        if isinstance(axis, tuple):
            try:
                e = ld.scalars(run, axis[1])
                pidx, xs = xaxis.x_from_tag(s.step, e.step, e.value)
            except KeyError:
                pidx, xs = np.empty(0, np.int64), np.empty(0)
            ys = s.value[pidx]
        else:
            xs, ys = xaxis.x_basic(s.step, s.wall_time, axis), s.value
        idx = thin(xs, ys, points) if len(xs) else np.empty(0, np.int64)
        out.append({"run": run, "tag": t, "total": int(len(s)), "shown": int(len(idx)),
                    "x": column(xs[idx]), "y": column(ys[idx])})
    return {"x": x, "points": points, "series": out}
