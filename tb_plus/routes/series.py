"""/series (downsampled for a chart, or full resolution) and /export (CSV or JSON download)."""

import io
import json
import re

import numpy as np
from tensorboard import errors
from werkzeug import wrappers

from tb_plus.query.downsample import downsample, select_range
from tb_plus.routes import app, arg, column, flag, respond_json

X_AXES = ("step", "wall_time", "relative")
MAX_WIDTH = 100_000
_EXPORT_BLOCK = 100_000


def load_series(ld, run, tag):
    if run not in ld.runs():
        raise errors.NotFoundError(f"no run {run!r}")
    try:
        return ld.scalars(run, tag)
    except KeyError:
        raise errors.NotFoundError(f"no scalar tag {tag!r} in run {run!r}")


def x_column(s, x):
    if x == "step":
        return s.step
    if x == "wall_time":
        return s.wall_time
    return s.wall_time - s.wall_time[0] if len(s.wall_time) else s.wall_time


def series_impl(ld, run, tag, *, x="step", xmin=None, xmax=None, width=None, full=False):
    """The points of one series to draw: all of them in [xmin, xmax] when `full` or no `width`,
    else the downsampled subset (see tb_plus/query/downsample.py)."""
    s = load_series(ld, run, tag)
    xs = x_column(s, x)
    if full or width is None:
        idx = select_range(xs, xmin, xmax)
        in_range = len(idx)
    else:
        idx, in_range = downsample(xs, s.value, width, xmin=xmin, xmax=xmax, with_count=True)
    return {
        "run": run,
        "tag": tag,
        "x": x,
        "total": int(len(s)),
        "in_range": int(in_range),
        "downsampled": bool(len(idx) < in_range),
        "step": column(s.step[idx]),
        "wall_time": column(s.wall_time[idx]),
        "value": column(s.value[idx]),
    }


def _series_args(request):
    return dict(
        x=arg(request, "x", "step", choices=X_AXES),
        xmin=arg(request, "xmin", type=float),
        xmax=arg(request, "xmax", type=float),
    )


def series_route(plugin):
    def handler(request):
        run = arg(request, "run", required=True)
        tag = arg(request, "tag", required=True)
        width = arg(request, "width", type=int)
        if width is not None and not 1 <= width <= MAX_WIDTH:
            raise errors.InvalidArgumentError(f"parameter 'width' must be in [1, {MAX_WIDTH}], not {width!r}")
        body = series_impl(
            plugin.require_logdir(), run, tag, width=width, full=flag(request, "full"), **_series_args(request)
        )
        return respond_json(request, body)

    return app(handler)


def _filename(run, tag, ext):
    safe = re.sub(r"[^A-Za-z0-9._=-]+", "_", f"{run}__{tag}").strip("_") or "series"
    return f"{safe[:150]}.{ext}"


def csv_chunks(s):
    """The series as CSV text, in blocks (nan, inf, -inf for non-finite values; values exact)."""
    yield "step,wall_time,value\n"
    for a in range(0, len(s), _EXPORT_BLOCK):
        b = a + _EXPORT_BLOCK
        buf = io.StringIO()
        block = np.empty(min(b, len(s)) - a, dtype=[("s", "i8"), ("w", "f8"), ("v", "f8")])
        block["s"], block["w"], block["v"] = s.step[a:b], s.wall_time[a:b], s.value[a:b]
        np.savetxt(buf, block, fmt=("%d", "%.17g", "%.17g"), delimiter=",")
        yield buf.getvalue()


def json_chunks(run, tag, s):
    head = json.dumps({"run": run, "tag": tag, "x": "step", "total": int(len(s))})[:-1]
    yield head
    for name, col in (("step", s.step), ("wall_time", s.wall_time), ("value", s.value)):
        yield f',"{name}":['
        for a in range(0, len(col), _EXPORT_BLOCK):
            part = json.dumps(column(col[a : a + _EXPORT_BLOCK]), allow_nan=False)[1:-1]
            yield ("," if a else "") + part
        yield "]"
    yield "}"


def export_route(plugin):
    def handler(request):
        run = arg(request, "run", required=True)
        tag = arg(request, "tag", required=True)
        fmt = arg(request, "format", "csv", choices=("csv", "json"))
        s = load_series(plugin.require_logdir(), run, tag)
        if fmt == "csv":
            body, mimetype = csv_chunks(s), "text/csv"
        else:
            body, mimetype = json_chunks(run, tag, s), "application/json"
        resp = wrappers.Response(
            (chunk.encode("utf-8") for chunk in body), mimetype=mimetype, direct_passthrough=True
        )
        resp.headers["Content-Disposition"] = f'attachment; filename="{_filename(run, tag, fmt)}"'
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    return app(handler)
