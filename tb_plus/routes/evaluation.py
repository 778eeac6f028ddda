"""/evaluation: the evaluation tags of a log directory, and one evaluation's curves: ROC, PR, the
score distributions of positives and negatives, the reliability (calibration) curve, AUC and AP.

Sources: tb_plus evaluation summaries (bucket counts, tb_plus.evaluation) and TensorBoard's own
pr_curves summaries (TP/FP/TN/FN per threshold), whose ROC is drawn from the same counts.
"""

import numpy as np
from tensorboard import errors

from tb_plus import metadata
from tb_plus.evaluation import curves
from tb_plus.evaluation.accumulator import BinaryAccumulator
from tb_plus.routes import app, arg, column, respond_json

MAX_POINTS = 1000  # curve points sent; the full curve is thinned evenly (its ends kept)
SOURCES = (metadata.EVAL_PLUGIN, "pr_curves")


def _thin(n, limit=MAX_POINTS):
    if n <= limit:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, limit)).astype(np.int64))


def list_impl(ld):
    rows = {"run": [], "tag": [], "kind": []}
    for run in ld.runs():
        for tag in ld.tags(run, "tensors"):
            plugin = ld.tag_info(run, tag).plugin_name
            if plugin in SOURCES:
                rows["run"].append(run)
                rows["tag"].append(tag)
                rows["kind"].append(plugin)
    return {"tags": rows}


def curves_impl(ld, run, tag, step=None, bins=50):
    try:
        info = ld.tag_info(run, tag)
    except KeyError:
        raise errors.NotFoundError(f"no tag {tag!r} in run {run!r}")
    if info.plugin_name not in SOURCES:
        raise errors.InvalidArgumentError(f"tag {tag!r} holds {info.plugin_name!r} data, not an evaluation")
    # One value per step (a restarted run, two event files): the one written last wins, as in
    # TensorBoard; the default is the largest step. Only the value shown is decoded.
    if step is None:
        written = ld.tensor_steps(run, tag)
        step = max(written) if written else None
    steps, d, problem = ld.tensor_at(run, tag, step)
    steps = sorted(set(steps))
    if d is None:
        if problem is not None:
            raise errors.InvalidArgumentError(f"the evaluation cannot be read: {problem}")
        if not steps:
            raise errors.NotFoundError("no values")
        raise errors.NotFoundError(f"no value at step {step}; steps are {steps[:50]}")
    out = {"run": run, "tag": tag, "kind": info.plugin_name, "step": d.step, "wall_time": d.wall_time,
           "steps": steps}
    if info.plugin_name == "pr_curves":
        t = np.asarray(d.numpy, dtype=np.float64)
        fpr, tpr, auc = curves.from_pr_curve_tensor(t)
        order = np.argsort(fpr, kind="stable")
        thresholds = np.linspace(0, 1, t.shape[1]) if t.ndim == 2 else np.zeros(0)
        out.update({
            "auc": auc, "ap": None, "auc_error_bound": None,
            "count": {"positives": float(t[0, 0] + t[3, 0]), "negatives": float(t[1, 0] + t[2, 0]), "nan": 0},
            "roc": {"fpr": column(fpr[order]), "tpr": column(tpr[order]), "threshold": column(thresholds[order])},
            "pr": {"recall": column(t[5]), "precision": column(t[4]), "threshold": column(thresholds)},
            "distribution": None, "calibration": None,
        })
        return out
    try:
        acc = BinaryAccumulator.from_tensor(d.numpy, metadata.parse_content(info.plugin_content))
    except (ValueError, KeyError) as e:
        raise errors.InvalidArgumentError(f"the evaluation at step {d.step} cannot be read: {e}")
    neg, pos = acc.counts()
    fpr, tpr, thr = acc.roc_curve()
    keep = _thin(len(fpr))
    prec, rec, pthr = acc.pr_curve()
    pkeep = _thin(len(prec))
    edges, dn, dp = curves.distributions(neg, pos, acc.scheme, bins=bins)
    out.update({
        "auc": acc.auc(), "ap": acc.average_precision(), "auc_error_bound": acc.auc_error_bound(),
        "count": {"positives": float(pos.sum()), "negatives": float(neg.sum()), "nan": acc.nan},
        "scheme": acc.scheme.fields(),
        "roc": {"fpr": column(fpr[keep]), "tpr": column(tpr[keep]), "threshold": column(thr[keep])},
        "pr": {"recall": column(rec[pkeep]), "precision": column(prec[pkeep]), "threshold": column(pthr[pkeep])},
        "distribution": {"edges": column(edges), "negatives": column(dn), "positives": column(dp),
                         "space": "probability" if acc.scheme.kind == "probability" else "logit"},
        "calibration": None,
    })
    if acc.scheme.kind == "probability":
        cal = curves.calibration(neg, pos, acc.scheme, bins=10)
        out["calibration"] = {"mean_predicted": column(cal["mean_predicted"]),
                              "fraction_positive": column(cal["fraction_positive"]),
                              "count": column(cal["count"]), "ece": cal["ece"]}
    return out


def route(plugin):
    def handler(request):
        ld = plugin.logdir_for(request)
        run, tag = arg(request, "run"), arg(request, "tag")
        if run is None and tag is None:
            return respond_json(request, list_impl(ld))
        if run is None or tag is None:
            raise errors.InvalidArgumentError("give both 'run' and 'tag', or neither (the list of evaluation tags)")
        if run not in ld.runs():
            raise errors.NotFoundError(f"no run {run!r}")
        bins = arg(request, "bins", 50, type=int)
        if not 2 <= bins <= 1000:
            raise errors.InvalidArgumentError(f"parameter 'bins' must be 2 to 1000, not {bins}")
        body = curves_impl(ld, run, tag, arg(request, "step", None, type=int), bins)
        for k in ("auc", "ap", "auc_error_bound"):
            if isinstance(body.get(k), float) and not np.isfinite(body[k]):
                body[k] = None
        return respond_json(request, body)

    return app(handler)
