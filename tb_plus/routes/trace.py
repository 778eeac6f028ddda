"""/trace: the tracer's packed summaries of a run as heatmaps (layers x steps) of one statistic."""

import numpy as np
from tensorboard import errors

from tb_plus import metadata
from tb_plus.store.logdir import SeriesTooLarge
from tb_plus.routes import app, arg, column, data_key, respond_cached, respond_json

MAX_WIDTH = 4000


def list_impl(ld, run):
    rows = {"tag": [], "family": [], "layers": [], "stats": []}
    for tag in ld.tags(run, "tensors"):
        info = ld.tag_info(run, tag)
        if info.plugin_name != metadata.TRACE_PLUGIN:
            continue
        try:
            c = metadata.parse_content(info.plugin_content)
        except ValueError:
            continue
        rows["tag"].append(tag)
        rows["family"].append(c.get("family"))
        rows["layers"].append(c.get("layers", []))
        rows["stats"].append(c.get("stats", []))
    return {"run": run, "families": rows}


def heatmap_impl(ld, run, tag, stat, width=1000):
    try:
        info = ld.tag_info(run, tag)
    except KeyError:
        raise errors.NotFoundError(f"no tag {tag!r} in run {run!r}")
    if info.plugin_name != metadata.TRACE_PLUGIN:
        raise errors.InvalidArgumentError(f"tag {tag!r} holds {info.plugin_name!r} data, not tracer statistics")
    c = metadata.parse_content(info.plugin_content)
    layers, stats = c["layers"], c["stats"]
    if stat not in stats:
        raise errors.NotFoundError(f"no statistic {stat!r} in {tag!r}; there are {stats}")
    j = stats.index(stat)
    try:
        data = ld.tensors(run, tag)
    except SeriesTooLarge as e:
        raise errors.InvalidArgumentError(str(e))
    data = [d for d in data if np.ndim(d.numpy) == 2 and d.numpy.shape == (len(layers), len(stats))]
    steps = np.array([d.step for d in data], dtype=np.int64)
    values = np.array([d.numpy[:, j] for d in data], dtype=np.float64).reshape(len(data), len(layers))
    total = len(steps)
    if total > width:  # one column per bucket of steps: the last traced step in it
        edges = np.linspace(0, total, width + 1).astype(np.int64)
        keep = edges[1:] - 1
        steps, values = steps[keep], values[keep]
    finite = values[np.isfinite(values)]
    return {
        "run": run, "tag": tag, "stat": stat, "layers": layers, "total_steps": total,
        "steps": steps.tolist(),
        "values": [column(values[:, i]) for i in range(len(layers))],  # one row per layer
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
    }


def route(plugin):
    def handler(request):
        ld = plugin.logdir_for(request)
        run = arg(request, "run", required=True)
        if run not in ld.runs():
            raise errors.NotFoundError(f"no run {run!r}")
        tag, stat = arg(request, "tag"), arg(request, "stat")
        if tag is None and stat is None:
            return respond_json(request, list_impl(ld, run))
        if tag is None or stat is None:
            raise errors.InvalidArgumentError("give both 'tag' and 'stat', or neither (the list of traced families)")
        width = arg(request, "width", 1000, type=int)
        if not 1 <= width <= MAX_WIDTH:
            raise errors.InvalidArgumentError(f"parameter 'width' must be 1 to {MAX_WIDTH}, not {width}")
        return respond_cached(request, data_key("trace", request, ld, [run]),
                              lambda: heatmap_impl(ld, run, tag, stat, width))

    return app(handler)
