"""/hparams: the hyperparameters of every run, as columns aligned with the run list."""

import math

from tb_plus.query.hparams import run_hparams
from tb_plus.query.tagtree import natural_key
from tb_plus.routes import app, respond_json

MAX_COLUMNS = 2000  # hparam columns sent (those most runs have), whatever the files hold


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return v


def hparams_columns(ld, runs) -> dict:
    """{name: [value or None per run of `runs`]}, names in natural order; rebuilt only when some
    run's tags (where hparams live) changed."""

    def build():
        hp = run_hparams(ld)
        names = {n for d in hp.values() for n in d}
        if len(names) > MAX_COLUMNS:  # the names most runs have
            count = {}
            for d in hp.values():
                for n in d:
                    count[n] = count.get(n, 0) + 1
            names = sorted(names, key=lambda n: (-count[n], natural_key(n)))[:MAX_COLUMNS]
        names = sorted(names, key=natural_key)
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
