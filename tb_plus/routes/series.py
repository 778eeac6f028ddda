"""/series (downsampled for a chart, or full resolution) and /export (CSV or JSON download)."""

import io
import json
import struct
import re

import numpy as np
from tensorboard import errors
from tensorboard.backend import http_util
from werkzeug import wrappers

from tb_plus.query.downsample import downsample, select_range
from tb_plus.query.smooth import ema, moving_median
from tb_plus.query.xaxis import keep_positive, parse_x, x_basic, x_from_tag
from tb_plus.routes import app, arg, column, data_key, flag, respond_cached, respond_json

X_AXES = ("step", "wall_time", "relative")  # and tag:<TAG>
MAX_WIDTH = 100_000
MAX_WINDOW = 1001
SMOOTHERS = ("none", "ema", "median")
DEFAULT_WEIGHT = 0.6
DEFAULT_WINDOW = 5
_EXPORT_BLOCK = 100_000


def load_series(ld, run, tag):
    if run not in ld.runs():
        raise errors.NotFoundError(f"no run {run!r}")
    try:
        return ld.scalars(run, tag)
    except KeyError:
        raise errors.NotFoundError(f"no scalar tag {tag!r} in run {run!r}")


def x_column(s, x):
    return x_basic(s.step, s.wall_time, x)


def parse_axis(x):
    """The parsed x axis ('step', ..., or ('tag', TAG)); 400 naming the input otherwise."""
    try:
        return parse_x(x)
    except ValueError as e:
        raise errors.InvalidArgumentError(f"parameter 'x': {e}")


def series_x(ld, run, s, axis, *, xlog=False, cache=None):
    """(idx, xs): the points of series `s` of `run` that have an x on `axis` (None: all of them, in
    order) and their x values. `axis` as parse_axis returns it; a tag axis reads that tag of the same
    run (404 if it is not a scalar tag there); `cache` ({run: tag series}) saves re-reading it.
    With xlog only points with x > 0 are kept."""
    if isinstance(axis, tuple):
        xtag = axis[1]
        key = (run, xtag)
        t = cache.get(key) if cache is not None else None
        if t is None:
            try:
                t = ld.scalars(run, xtag)
            except KeyError:
                raise errors.NotFoundError(f"no scalar tag {xtag!r} in run {run!r} for x='tag:{xtag}'")
            if cache is not None:
                cache[key] = t
        idx, xs = x_from_tag(s.step, t.step, t.value)
    else:
        idx, xs = None, x_basic(s.step, s.wall_time, axis)
    if xlog:
        pos = keep_positive(xs)
        if len(pos) < len(xs):
            idx = pos if idx is None else idx[pos]
            xs = xs[pos]
    return idx, xs


def smooth_values(xs, v, smooth, weight=DEFAULT_WEIGHT, window=DEFAULT_WINDOW):
    """The smoothed column for `smooth` ('ema' or 'median'), or None for 'none'/None."""
    if smooth in (None, "none"):
        return None
    if smooth == "ema":
        return ema(xs, v, weight)
    if smooth == "median":
        return moving_median(v, window)
    raise errors.InvalidArgumentError(f"parameter 'smooth' must be one of {list(SMOOTHERS)}, not {smooth!r}")


def series_impl(ld, run, tag, **kw):
    """The points of one series to draw, as the JSON body of /series (see series_arrays)."""
    meta, cols = series_arrays(ld, run, tag, **kw)
    meta.update((name, column(col)) for name, col in cols.items())
    return meta


def series_arrays(ld, run, tag, *, x="step", xmin=None, xmax=None, width=None, full=False, xlog=False,
                  smooth=None, weight=DEFAULT_WEIGHT, window=DEFAULT_WINDOW):
    """The points of one series to draw: all of them in [xmin, xmax] when `full` or no `width`,
    else the downsampled subset (see tb_plus/query/downsample.py). x is 'step', 'wall_time',
    'relative' or 'tag:<TAG>'; `smooth` adds a `smoothed` column computed on every point of the
    series (in x) before the range and the downsampling. -> (metadata dict, {column: array})."""
    axis = parse_axis(x)
    s = load_series(ld, run, tag)
    pidx, xs = series_x(ld, run, s, axis, xlog=False)
    values = s.value if pidx is None else s.value[pidx]
    smoothed = smooth_values(xs, values, smooth, weight, window)
    if xlog:
        pos = keep_positive(xs)
        if len(pos) < len(xs):
            pidx = pos if pidx is None else pidx[pos]
            xs, values = xs[pos], values[pos]
            smoothed = None if smoothed is None else smoothed[pos]
    if full or width is None:
        idx = select_range(xs, xmin, xmax)
        in_range = len(idx)
    else:
        idx, in_range = downsample(xs, values, width, xmin=xmin, xmax=xmax, with_count=True)
    src = idx if pidx is None else pidx[idx]
    meta = {
        "run": run,
        "tag": tag,
        "x": x,
        "total": int(len(s)),
        "in_range": int(in_range),
        "downsampled": bool(len(idx) < in_range),
    }
    cols = {"step": s.step[src], "wall_time": s.wall_time[src], "value": s.value[src]}
    if x != "step":  # for steps it would repeat the step column
        cols["xs"] = xs[idx]
    if smoothed is not None:
        cols["smoothed"] = smoothed[idx]
    return meta, cols


def binary_batch(entries) -> bytes:
    """/series_batch?format=binary: uint32 (little-endian) header length, the JSON header, zero
    padding to a multiple of 8, then every column as little-endian float64 (NaN and infinities
    as themselves; steps above 2**53 lose precision, as they do in JavaScript numbers anyway).
    Each header entry gives `n` and, per column, its byte offset after the padding."""
    header, parts, off = [], [], 0
    for e in entries:
        if isinstance(e, dict):  # an error entry
            header.append(e)
            continue
        meta, cols = e
        entry = dict(meta, n=int(len(cols["step"])), columns={})
        for name, col in cols.items():
            data = np.ascontiguousarray(col, dtype="<f8").tobytes()
            entry["columns"][name] = off
            parts.append(data)
            off += len(data)
        header.append(entry)
    head = json.dumps({"series": header}, allow_nan=False, separators=(",", ":")).encode("utf-8")
    pad = -(4 + len(head)) % 8
    return struct.pack("<I", len(head)) + head + b"\0" * pad + b"".join(parts)


def width_arg(request):
    width = arg(request, "width", type=int)
    if width is not None and not 1 <= width <= MAX_WIDTH:
        raise errors.InvalidArgumentError(f"parameter 'width' must be in [1, {MAX_WIDTH}], not {width!r}")
    return width


def x_args(request):
    """x (validated, as given), xlog, xmin, xmax: the x parameters every series route shares."""
    x = arg(request, "x", "step")
    parse_axis(x)
    return dict(
        x=x,
        xlog=flag(request, "xlog"),
        xmin=arg(request, "xmin", type=float),
        xmax=arg(request, "xmax", type=float),
    )


def smooth_args(request):
    smooth = arg(request, "smooth", "none", choices=SMOOTHERS)
    weight = arg(request, "weight", DEFAULT_WEIGHT, type=float)
    if not 0.0 <= weight < 1.0:
        raise errors.InvalidArgumentError(f"parameter 'weight' must be in [0, 1), not {request.args.get('weight')!r}")
    window = arg(request, "window", DEFAULT_WINDOW, type=int)
    if not (1 <= window <= MAX_WINDOW and window % 2 == 1):
        raise errors.InvalidArgumentError(
            f"parameter 'window' must be an odd integer in [1, {MAX_WINDOW}], not {request.args.get('window')!r}"
        )
    return dict(smooth=smooth, weight=weight, window=window)


def series_route(plugin):
    def handler(request):
        run = arg(request, "run", required=True)
        tag = arg(request, "tag", required=True)
        width = width_arg(request)
        kw = dict(width=width, full=flag(request, "full"), **x_args(request), **smooth_args(request))
        ld = plugin.logdir_for(request)
        return respond_cached(request, data_key("series", request, ld, [run]),
                              lambda: series_impl(ld, run, tag, **kw))

    return app(handler)


MAX_BATCH = 200


def series_batch_route(plugin):
    """Several series in one request (a chart's worth): `run` and `tag` repeated in pairs, or one
    `tag` for every `run`. Each entry is the /series body, or {run, tag, status, error} for a
    series that cannot be served (404: a run without that tag), so one miss spoils nothing."""

    def handler(request):
        runs, tags = request.args.getlist("run"), request.args.getlist("tag")
        if not runs or not tags:
            raise errors.InvalidArgumentError("parameters 'run' and 'tag' are required")
        if len(tags) == 1:
            tags = tags * len(runs)
        if len(runs) != len(tags):
            raise errors.InvalidArgumentError(
                f"give one 'tag' or as many as 'run' ({len(runs)} runs, {len(tags)} tags)"
            )
        if len(runs) > MAX_BATCH:
            raise errors.InvalidArgumentError(f"at most {MAX_BATCH} series per request, not {len(runs)}")
        fmt = arg(request, "format", "json", choices=("json", "binary"))
        ld = plugin.logdir_for(request)
        kw = dict(width=width_arg(request), full=flag(request, "full"), **x_args(request), **smooth_args(request))
        impl = series_arrays if fmt == "binary" else series_impl

        def build():
            out = []
            for run, tag in zip(runs, tags):
                try:
                    out.append(impl(ld, run, tag, **kw))
                except errors.PublicError as e:
                    out.append({"run": run, "tag": tag, "status": e.http_code, "error": str(e)})
            return binary_batch(out) if fmt == "binary" else {"series": out}

        known = [r for r in dict.fromkeys(runs) if r in set(ld.runs())]  # unknown runs answer per entry
        return respond_cached(request, data_key("series_batch", request, ld, known), build, binary=fmt == "binary")

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
        s = load_series(plugin.logdir_for(request), run, tag)
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
