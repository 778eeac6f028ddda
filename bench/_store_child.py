#!/usr/bin/env python
"""Child process for bench_store.py: loads a logdir with tb_plus.store and reports.

Invoked as ``python bench/_store_child.py '<json args>'``.  Prints one line
``RESULT {json}`` to stdout, then blocks until stdin is closed, so that the parent can
sample the resident memory of the whole process tree "after load" before it exits.
"""

import json
import os
import sys
import time
import traceback


def _series_last_step(s):
    step = getattr(s, "step", None)
    if step is None or len(step) == 0:
        return None
    return int(step[-1])


def run(args):
    t0 = time.perf_counter()
    from tb_plus.store import Logdir  # noqa: E402  (import cost is part of the measurement)

    t_import = time.perf_counter()
    mode = args["mode"]
    expected_runs = set(args["runs"])
    expected_tags = set(args["tags"])
    last_step = args["last_step"]
    res = {"mode": mode, "verify_crc": args["verify_crc"], "problems": []}
    problems = res["problems"]

    ld = Logdir(args["logdir"], cache_dir=args["cache_dir"], verify_crc=args["verify_crc"])
    t_open = time.perf_counter()
    if mode == "cold":
        ld.refresh()
        t_refresh = time.perf_counter()
        runs = list(ld.runs())
        n_series = n_points = 0
        for run_name in runs:
            tags = list(ld.tags(run_name))
            if set(tags) != expected_tags:
                problems.append("run %s: %d tags, expected %d (missing e.g. %s)" % (
                    run_name, len(tags), len(expected_tags), sorted(expected_tags - set(tags))[:3]))
            for tag in tags:
                s = ld.scalars(run_name, tag)
                n_series += 1
                n_points += len(s.step)
                ls = _series_last_step(s)
                if ls != last_step and tag in expected_tags and len(problems) < 20:
                    problems.append("%s/%s: last step %r, expected %d" % (run_name, tag, ls, last_step))
        t_end = time.perf_counter()
        res.update(refresh_s=t_refresh - t_open, touch_s=t_end - t_refresh)
    else:  # warm reopen: no refresh, just what a UI needs to paint the run/tag list + one chart per run
        runs = list(ld.runs())
        if not runs:
            problems.append("warm: runs() empty before refresh(); called refresh()")
            ld.refresh()
            runs = list(ld.runs())
        n_series = n_points = 0
        for run_name in runs:
            tags = list(ld.tags(run_name))
            if set(tags) != expected_tags:
                problems.append("run %s: %d tags, expected %d" % (run_name, len(tags), len(expected_tags)))
            if tags:
                s = ld.scalars(run_name, tags[0])
                n_series += 1
                n_points += len(s.step)
                if _series_last_step(s) != last_step:
                    problems.append("%s/%s: last step %r, expected %d" % (run_name, tags[0], _series_last_step(s), last_step))
        t_end = time.perf_counter()
        # not part of the headline number: a no-op incremental refresh on the warm store
        tr = time.perf_counter()
        try:
            ld.refresh()
            res["warm_noop_refresh_s"] = time.perf_counter() - tr
        except Exception as e:  # noqa: BLE001
            res["warm_noop_refresh_error"] = repr(e)
    if set(runs) != expected_runs:
        problems.append("runs %s != expected %s" % (sorted(runs), sorted(expected_runs)))
    try:
        stats = dict(getattr(ld, "stats", {}) or {})
        res["stats"] = json.loads(json.dumps(stats, default=str))
    except Exception as e:  # noqa: BLE001
        res["stats_error"] = repr(e)
    res.update(
        import_s=t_import - t0, open_s=t_open - t_import, total_s=t_end - t_import,
        runs=len(runs), series=n_series, points=n_points,
    )
    return res


def main():
    arg = sys.argv[1]
    if arg.startswith("@"):  # a file holding the JSON (long tag lists exceed the argv limit)
        with open(arg[1:]) as f:
            arg = f.read()
    args = json.loads(arg)
    try:
        res = run(args)
        res["ok"] = not res["problems"]
    except Exception:  # noqa: BLE001
        res = {"ok": False, "error": traceback.format_exc()}
    sys.stdout.write("RESULT " + json.dumps(res) + "\n")
    sys.stdout.flush()
    # hold the process (and the store's state) until the parent has sampled RSS
    try:
        sys.stdin.read()
    except Exception:  # noqa: BLE001
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
