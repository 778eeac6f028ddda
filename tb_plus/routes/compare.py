"""/compare: A - B or A / B of two series on A's x values, downsampled like /series."""

from tensorboard import errors

from tb_plus.query.compare import OPS, compare
from tb_plus.query.downsample import downsample, select_range
from tb_plus.routes import app, arg, column, respond_json
from tb_plus.routes.series import load_series, parse_axis, series_x, width_arg, x_args


def compare_impl(ld, a_run, a_tag, b_run, b_tag, *, op="diff", x="step", xlog=False, xmin=None, xmax=None,
                 width=None):
    if op not in OPS:
        raise errors.InvalidArgumentError(f"parameter 'op' must be one of {list(OPS)}, not {op!r}")
    axis = parse_axis(x)
    a = load_series(ld, a_run, a_tag)
    b = load_series(ld, b_run, b_tag)
    aidx, xa = series_x(ld, a_run, a, axis, xlog=xlog)
    bidx, xb = series_x(ld, b_run, b, axis, xlog=xlog)
    va = a.value if aidx is None else a.value[aidx]
    vb = b.value if bidx is None else b.value[bidx]
    keep, values = compare(xa, va, xb, vb, op)
    xs = xa[keep]
    steps = (a.step if aidx is None else a.step[aidx])[keep]
    if width is None:
        idx = select_range(xs, xmin, xmax)
        in_range = len(idx)
    else:
        idx, in_range = downsample(xs, values, width, xmin=xmin, xmax=xmax, with_count=True)
    return {
        "x": x,
        "op": op,
        "total": int(len(keep)),
        "in_range": int(in_range),
        "downsampled": bool(len(idx) < in_range),
        "xs": column(xs[idx]),
        "step": column(steps[idx]),
        "value": column(values[idx]),
    }


def route(plugin):
    def handler(request):
        body = compare_impl(
            plugin.logdir_for(request),
            arg(request, "a_run", required=True),
            arg(request, "a_tag", required=True),
            arg(request, "b_run", required=True),
            arg(request, "b_tag", required=True),
            op=arg(request, "op", "diff", choices=OPS),
            width=width_arg(request),
            **x_args(request),
        )
        return respond_json(request, body)

    return app(handler)
