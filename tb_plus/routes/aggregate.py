"""/aggregate: several series, grouped, interpolated onto a grid, reduced to a center and a band."""


import numpy as np
from tensorboard import errors

from tb_plus.query.aggregate import (
    BANDS, STATS, group_key, make_grid, on_grid, parse_group_by, prepare, reduce, sort_keys, splits_by_tag, tag_group_key,
)
from tb_plus.query.hparams import run_hparams
from tb_plus.query.patterns import compile_glob
from tb_plus.routes import app, arg, column, respond_json
from tb_plus.routes.series import load_series, parse_axis, series_x, x_args

DEFAULT_POINTS = 500
MAX_POINTS = 10_000
MAX_SERIES = 2_000
_GLOB = set("*?[")


def select_series(ld, runs, tags):
    """Every existing (run, tag) pair: runs in the store's order (404 for an unknown run), tags
    exact or fnmatch globs ('*' also matches '/'), each tag pattern must match in some run (404)."""
    known = ld.runs()
    if runs:
        known_set = set(known)
        for r in runs:
            if r not in known_set:
                raise errors.NotFoundError(f"no run {r!r}")
        runs = list(dict.fromkeys(runs))
    else:
        runs = known
    matched = dict.fromkeys(tags, False)
    globs = {}
    for pat in matched:
        if _GLOB & set(pat):
            try:
                globs[pat] = compile_glob(pat, ignore_case=False, what="tag pattern")  # RE2: linear time
            except ValueError as e:
                raise errors.InvalidArgumentError(f"parameter 'tag': {e}")
    pairs = []
    for r in runs:
        have = ld.tags(r)
        have_set = set(have)
        picked = set()
        for pat in tags:
            rx = globs.get(pat)
            hits = [t for t in have if rx.fullmatch(t)] if rx is not None else ([pat] if pat in have_set else [])
            if hits:
                matched[pat] = True
                picked.update(hits)
        pairs.extend((r, t) for t in have if t in picked)
    for pat, ok in matched.items():
        if not ok:
            raise errors.NotFoundError(f"no scalar tag matches {pat!r} in the selected runs")
    return pairs


def aggregate_impl(ld, runs, tags, *, group_by="none", stat="mean", band="minmax", x="step", xlog=False,
                   xmin=None, xmax=None, points=DEFAULT_POINTS):
    try:
        spec = parse_group_by(group_by)
    except ValueError as e:
        raise errors.InvalidArgumentError(f"parameter 'group_by': {e}")
    axis = parse_axis(x)
    pairs = select_series(ld, runs, tags)
    if len(pairs) > MAX_SERIES:
        raise errors.InvalidArgumentError(
            f"{len(pairs)} series match run={runs!r} tag={tags!r}; at most {MAX_SERIES} can be aggregated"
        )
    hp = run_hparams(ld) if spec[0] == "hparam" else None
    by_tag = splits_by_tag(spec, [t for _, t in pairs])
    groups = {}  # (tag or None, key) -> [(run, tag)]
    for r, t in pairs:
        key = group_key(spec, r, t, hp)
        if key is not None:
            groups.setdefault((t if by_tag else None, key), []).append((r, t))
    order = []
    for tag in sort_keys({t for t, _ in groups}) if by_tag else [None]:
        order.extend((tag, k) for k in sort_keys(k for t, k in groups if t == tag))
    xcache = {}
    out = []
    for tag, key in order:
        members = groups[(tag, key)]
        knots = []
        for r, t in members:
            s = load_series(ld, r, t)
            idx, xs = series_x(ld, r, s, axis, xlog=xlog, cache=xcache)
            knots.append(prepare(xs, s.value if idx is None else s.value[idx]))
        ranges = [(kx[0], kx[-1]) for kx, _ in knots if len(kx)]
        grid = make_grid(ranges, points, xmin, xmax, log=xlog)
        center, lo, hi, count = reduce(on_grid(grid, knots), stat, band)
        out.append({
            "key": key if tag is None else tag_group_key(tag, key, spec[0]),
            "tag": tag,
            "series": [[r, t] for r, t in members],
            "size": len(members),
            "ranges": [[float(kx[0]), float(kx[-1])] if len(kx) else None for kx, _ in knots],
            "xs": column(grid),
            "center": column(center),
            "lo": column(lo),
            "hi": column(hi),
            "count": column(count),
        })
    return {"x": x, "groups": out}


def route(plugin):
    def handler(request):
        tags = [t for t in request.args.getlist("tag") if t != ""]
        if not tags:
            raise errors.InvalidArgumentError("missing required parameter 'tag'")
        points = arg(request, "points", DEFAULT_POINTS, type=int)
        if not 2 <= points <= MAX_POINTS:
            raise errors.InvalidArgumentError(f"parameter 'points' must be in [2, {MAX_POINTS}], not {points!r}")
        body = aggregate_impl(
            plugin.logdir_for(request),
            [r for r in request.args.getlist("run") if r != ""] or None,
            tags,
            group_by=arg(request, "group_by", "none"),
            stat=arg(request, "stat", "mean", choices=STATS),
            band=arg(request, "band", "minmax", choices=BANDS),
            points=points,
            **x_args(request),
        )
        return respond_json(request, body)

    return app(handler)
