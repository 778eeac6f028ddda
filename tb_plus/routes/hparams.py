"""/hparams: the hyperparameters of every run, as columns aligned with the run list."""

import math

from tb_plus.query.hparams import run_hparams
from tb_plus.routes import app, respond_json
from tb_plus.routes.tags import natural_key


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return v


def hparams_impl(ld):
    runs = ld.runs()
    hp = run_hparams(ld)
    names = sorted({n for d in hp.values() for n in d}, key=natural_key)
    return {
        "runs": runs,
        "hparams": {n: [_json_value(hp[r][n]) if n in hp.get(r, {}) else None for r in runs] for n in names},
    }


def route(plugin):
    def handler(request):
        return respond_json(request, hparams_impl(plugin.require_logdir()))

    return app(handler)
