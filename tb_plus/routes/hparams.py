"""/hparams: the hyperparameters of every run, as columns aligned with the run list."""

import math

from tb_plus.query.hparams import run_hparams
from tb_plus.query.tagtree import natural_key
from tb_plus.routes import app, respond_json


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return v


def hparams_columns(ld, runs) -> dict:
    """{name: [value or None per run of `runs`]}, names in natural order; rebuilt only when some
    run's tags (where hparams live) changed."""

    def build():
        hp = run_hparams(ld)
        names = sorted({n for d in hp.values() for n in d}, key=natural_key)
        return {n: [_json_value(hp[r][n]) if n in hp.get(r, {}) else None for r in runs] for n in names}

    version = tuple(runs), tuple(ld.tags_version(r) for r in runs)
    return ld.memo(("hparams",), version, build)


def hparams_impl(ld):
    runs = ld.runs()
    return {"runs": runs, "hparams": hparams_columns(ld, runs)}


def route(plugin):
    def handler(request):
        return respond_json(request, hparams_impl(plugin.logdir_for(request)))

    return app(handler)
