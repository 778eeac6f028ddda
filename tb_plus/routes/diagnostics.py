"""/diagnostics: the findings of the diagnostic rules (tb_plus/diagnostics) for some or all runs."""

import time

from tensorboard import errors

from tb_plus.routes import app, data_key, respond_cached


def diagnostics_impl(ld, runs=None, cfg=None):
    from tb_plus.diagnostics import diagnose, rules_json

    every = ld.runs()
    if runs:
        unknown = [r for r in runs if r not in set(every)]
        if unknown:
            raise errors.NotFoundError(f"no run {unknown[0]!r} in {ld.path!r}")
    report = diagnose(ld, runs or None, cfg)
    out = report.to_json()
    out["rules"] = rules_json(cfg)
    out["pending"] = False
    return out


def warm(ld):
    """After a refresh: diagnose the runs that changed, so /runs can show their badges."""
    from tb_plus.diagnostics import diagnose

    diagnose(ld)


def route(plugin):
    def handle(request):
        ld = plugin.logdir_for(request)
        runs = request.args.getlist("run")
        if any(not r for r in runs):
            raise errors.InvalidArgumentError("parameter 'run' must not be empty")
        key = data_key("diagnostics", request, ld, runs or ld.runs())
        if key is not None:  # the stalled rule also depends on the time: answers are kept a minute
            key = key + (tuple(ld.runs()), int(time.time() // 60))
        return respond_cached(request, key, lambda: diagnostics_impl(ld, runs))

    return app(handle)
