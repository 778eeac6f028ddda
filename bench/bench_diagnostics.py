#!/usr/bin/env python
"""Diagnostics: quality on the labelled corpus, and speed on a 2 GB log directory.

    python bench/bench_diagnostics.py [--seeds 0,1,2] [--jobs 2] [--families-only] [--relabel]
                                       [--size-gb 2.0] [--repeat 3] [--skip-scale] [--smoke]

1. Quality: writes the corpus of real short trainings (demo/diagnostics_corpus.py; healthy and
   pathological PyTorch and Keras runs) and prints, per rule, how many labelled pathologies it
   found at the documented onset (recall), how many of its warning/error findings fall outside
   the labels (precision), and the largest onset error in steps.
2. Real logs: every finding on ../shared/wild-logs (real log directories of other projects, beside
   the checkout; --wild PATH), warnings and errors listed one by one.
3. Speed: a generated 2 GB log directory (bench/gen_logdir.py: 8 runs x 300 scalar tags in real
   writers' bytes, per-layer gradient and weight norms among them) plus the corpus (tracer data),
   all its files hard-linked into one directory. Times, as child processes (what a CI pipeline
   runs), with the files in the page cache: `tb-plus index` with an empty cache (the store's cold
   index), `tb-plus diagnose` with an empty cache (index + every run diagnosed), and `tb-plus
   diagnose` again (index reopened). Targets: cold diagnose <= 1.2 x cold index; warm diagnose < 2 s.

0. Generalisation: the families corpus (demo/diagnostics_families.py: 8 PyTorch families of models,
   optimizers, schedules, batch sizes and reductions, and a Keras one where TensorFlow imports; healthy
   and broken scenarios, seeds 0-2, each PyTorch training written in five logging styles; labels from
   each run's own measurements), one directory per family, --jobs processes at a time.
   Prints recall, the share of healthy runs with a warning or error, findings outside the labels and
   the onset latency, for the families the thresholds were chosen on and for the held-out ones, per
   family, per logging style and per scenario; then the misses and false alarms one by one.
   --families-only stops there; --relabel labels the corpus again from its saved measurements.

--smoke: two PyTorch runs of the corpus, two families x two scenarios x one seed, and a 4 MB log
directory, once, in a temporary directory.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "demo"))

from _common import add_smoke_flag, left_out, temp_dir  # noqa: E402


SMOKE_RUNS = ("healthy_mlp", "nan_loss")  # one healthy and one pathological PyTorch run


def corpus_dir(data_dir, runs=None, keras=None):
    import diagnostics_corpus

    import diagnostics_labels

    out = os.path.join(data_dir, "diag_corpus")
    stamp = os.path.join(out, ".complete")
    # a corpus written before its labels were derived from the runs has no labels file: write it again
    if not (os.path.exists(stamp) and os.path.exists(os.path.join(out, diagnostics_labels.LABELS_FILE))):
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        labels = diagnostics_corpus.make_corpus(out, runs=runs, keras=keras)
        print("corpus written in %.1f s (%d labelled runs)" % (time.perf_counter() - t, len(labels)))
        open(stamp, "w").close()
    return out


def quality(corpus):
    import diagnostics_labels
    import diagnostics_score

    from tb_plus.diagnostics import diagnose
    from tb_plus.store import Logdir

    cache = tempfile.mkdtemp(prefix="diag_q_")
    try:
        ld = Logdir(corpus, cache_dir=cache)
        ld.refresh()
        # the labels of the runs as they went on this machine (demo/diagnostics_labels.py: derive)
        written = diagnostics_labels.read(corpus)
        labels = {k: v for k, v in written["labels"].items() if any(r in ld.runs() for r in v["runs"])}
        print("corpus written on: %s" % ", ".join("%s=%s" % kv for kv in sorted(written["platform"].items())))
        report = diagnose(ld)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    result = diagnostics_score.score(report.findings, labels)
    print("\n## Quality on the corpus: %d labelled runs (%d healthy), %d expected detections\n"
          % (len(labels), sum(v["healthy"] for v in labels.values()), len(result["expected"])))
    print("| rule | labelled | found at onset | false positives | precision | recall | max onset error (steps) |")
    print("|---|---|---|---|---|---|---|")
    tot = [0, 0, 0]
    for rule, n, tp, fp, p, r, err in diagnostics_score.table(result):
        tot[0] += n
        tot[1] += tp
        tot[2] += fp
        print("| %s | %d | %d | %d | %s | %s | %s |" % (rule, n, tp, fp, "-" if p is None else "%.2f" % p,
                                                      "-" if r is None else "%.2f" % r,
                                                      "-" if err is None else err))
    print("| all | %d | %d | %d | %.2f | %.2f | |" % (tot[0], tot[1], tot[2], tot[1] / max(tot[1] + tot[2], 1),
                                                    tot[1] / max(tot[0], 1)))
    healthy_bad = [f for n, f in result["false_positives"] if labels[n]["healthy"]]
    print("\nwarning/error findings on healthy runs: %d" % len(healthy_bad))
    for n, f in result["false_positives"]:
        print("  false positive: %s %s %s step %s: %s" % (n, f.severity, f.rule, f.step, f.message))
    for n, e, hit, same in result["expected"]:
        if hit is None:
            print("  missed: %s %s (found of that rule: %s)" % (n, e, [(f.step, f.tags) for f in same]))


def families_dir(data_dir, seeds, scenarios=None, jobs=2, families=None, keras_scenarios=None):
    """The families corpus (demo/diagnostics_families.py), one directory per family written by a
    child process, `jobs` at a time; a family's directory is reused when complete."""
    import diagnostics_families as fam

    tag = "s" + "-".join(str(s) for s in seeds) + ("" if scenarios is None else "_sub%d" % len(scenarios))
    root = os.path.join(data_dir, "diag_families_" + tag)
    names = [f for f in (families or fam.FAMILIES) if f != "keras_mlp" or fam.keras_available()]
    if len(names) < len(families or fam.FAMILIES):
        left_out("the keras_mlp family", "TensorFlow does not import")
    todo = [f for f in names if not os.path.exists(os.path.join(root, f, ".complete"))]
    running = []
    t = time.perf_counter()

    def start(f):
        out = os.path.join(root, f)
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, os.path.join(ROOT, "demo", "diagnostics_families.py"), out, "--families", f,
               "--seeds", ",".join(str(s) for s in seeds)]
        scen = keras_scenarios if fam.FAMILIES[f]["arch"] == "keras" and keras_scenarios else scenarios
        if scen is not None:
            cmd += ["--scenarios", ",".join(scen)]
        running.append((out, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))

    n = len(todo)
    while todo or running:
        while todo and len(running) < max(1, jobs):
            start(todo.pop(0))
        out, p = running.pop(0)
        err = p.communicate()[1]
        if p.returncode:
            for _, q in running:
                q.kill()
            raise SystemExit("families corpus failed (%s): %s" % (out, err[-3000:]))
        open(os.path.join(out, ".complete"), "w").close()
    if n:
        print("families corpus: %d families written in %.0f s, %d processes at a time"
              % (n, time.perf_counter() - t, jobs))
    return [os.path.join(root, f) for f in names]


def families_quality(shards, relabel=False, show=40):
    """Recall, false alarms on healthy runs, findings outside the labels and onset latency, per split
    (families tuned on / held out), family, logging style and scenario."""
    import diagnostics_families as fam

    runs = {}
    for sh in shards:
        if relabel:
            fam.relabel(sh)
        runs.update(fam.evaluate(sh)["runs"])
    result = {"runs": runs}
    trainings = {k.split("/", 1)[1] for k in runs}
    healthy = sum(r["label"]["healthy"] for r in runs.values())
    ambiguous = sum(bool(r["label"].get("ambiguous")) for r in runs.values())
    unscored = sum(not r["label"]["healthy"] and not r["label"].get("ambiguous") and not r["label"]["expect"]
                   for r in runs.values())
    print("\n## Quality on the families corpus: %d trainings x %d logging styles = %d runs (%d healthy), "
          "%d expected detections\n" % (len(trainings), len({r["label"]["style"] for r in runs.values()}), len(runs),
                                         healthy, sum(len(r["found"]) for r in runs.values())))
    print("Thresholds were chosen on the families %s; %s are held out.\n"
          % (", ".join(fam.TUNE_FAMILIES), ", ".join(fam.HELD_OUT_FAMILIES)))
    print("Runs of a healthy scenario whose measurements come near a pathology (a slow start, a rise of the "
          "validation loss, swings, a gradient burst, ...) are not counted as healthy: %d such runs; broken "
          "scenarios whose run shows nothing its logging style can see have no expectation: %d runs (their "
          "findings outside the label still count).\n" % (ambiguous, unscored))

    def table(title, group):
        print("| %s | expected | found | recall | healthy runs | with warning/error | share | findings outside "
              "labels | onset latency median / worst (steps) |" % title)
        print("|---|---|---|---|---|---|---|---|---|")
        for row in fam.summarise(result, group):
            print("| %s | %d | %d | %s | %d | %d | %s | %d | %s |" % (
                row["group"], row["expected"], row["found"],
                "-" if row["recall"] is None else "%.2f" % row["recall"], row["healthy"], row["healthy_alarmed"],
                "-" if row["false_alarm_share"] is None else "%.1f%%" % (100 * row["false_alarm_share"]),
                row["unsupported"], "-" if row["latency_median"] is None else
                "%g / %+d" % (row["latency_median"], row["latency_worst"])))
        print()

    table("split", lambda lab: "held out" if lab["held_out"] else "tuned on")
    table("all", lambda lab: "all")
    table("family", lambda lab: lab["family"])
    table("logging style", lambda lab: lab["style"])
    table("scenario", lambda lab: lab["scenario"])
    missed = [(k, e) for k, r in sorted(runs.items()) for e, f in r["found"] if f is None]
    alarms = [(k, f) for k, r in sorted(runs.items()) if r["label"]["healthy"] for f in r["severe"]]
    outside = [(k, f) for k, r in sorted(runs.items()) for f in r["unsupported"]]
    print("missed: %d; warnings/errors on healthy runs: %d; findings outside the labels: %d (first %d of each)"
          % (len(missed), len(alarms), len(outside), show))
    for k, e in missed[:show]:
        at = "" if e.get("onset") is None else " @%s+-%s" % (e["onset"], e["tolerance"])
        print("  missed: %s %s%s" % (k, e["rule"], at))
    for k, f in alarms[:show]:
        print("  healthy alarm: %s %s %s step %s: %s" % (k, f.severity, f.rule, f.step, f.message[:160]))
    for k, f in outside[:show]:
        print("  outside labels: %s %s %s step %s: %s" % (k, f.severity, f.rule, f.step, f.message[:160]))
    held = fam.summarise(result, lambda lab: lab["held_out"])
    for row in held:
        if row["group"]:
            print("\nheld-out families: recall %.2f (target >= 0.90), healthy runs with a warning or error %.1f%% "
                  "(target <= 5%%)" % (row["recall"] or 0, 100 * (row["false_alarm_share"] or 0)))
    return result


KIND_CORPORA = {"rl": "diagnostics_rl", "lm": "diagnostics_lm"}  # --kinds NAME -> demo/<module>.py


def kind_corpus_quality(name, data_dir, seeds, jobs, smoke=False, show=30):
    """The corpus of one kind of training (reinforcement learning, language models), held-out families
    apart: recall, healthy runs with a warning or error, findings outside the labels, and whether each
    run was taken for its kind. The module (demo/diagnostics_<name>.py) writes real trainings and
    labels them from what they measurably did; its corpus is reused once complete."""
    import importlib

    import diagnostics_families as fam

    try:
        mod = importlib.import_module(KIND_CORPORA[name])
    except ImportError as e:
        left_out("the %s corpus" % name, "cannot import demo/%s.py: %s" % (KIND_CORPORA[name], e))
        return None
    tag = "s" + "-".join(str(s) for s in seeds) + ("_smoke" if smoke else "")
    out = os.path.join(data_dir, "diag_%s_%s" % (name, tag))
    stamp = os.path.join(out, ".complete")
    if not os.path.exists(stamp):
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        if smoke:  # one family, a healthy and a broken scenario, quick trainings
            left_out("the %s corpus but one family and two scenarios" % name, "smoke")
            mod.make(out, seeds=tuple(seeds), jobs=jobs, families=list(mod.TUNE_FAMILIES[:1]),
                     scenarios=list(getattr(mod, "SMOKE_SCENARIOS", ("healthy",))), quick=True)
        else:
            mod.make(out, seeds=tuple(seeds), jobs=jobs)
        open(stamp, "w").close()
        print("%s corpus written in %.0f s (%d processes)" % (name, time.perf_counter() - t, jobs))
    labels = mod.read_labels(out)
    result = fam.evaluate(out, labels)
    runs = result["runs"]
    print("\n## Quality on the %s corpus: %d runs (%d healthy), seeds %s\n"
          % (name, len(runs), sum(r["label"]["healthy"] for r in runs.values()), ",".join(map(str, seeds))))
    print("Thresholds were chosen on the families %s; %s are held out.\n"
          % (", ".join(mod.TUNE_FAMILIES), ", ".join(mod.HELD_OUT_FAMILIES)))
    print("| split | expected | found | recall | healthy runs | with warning/error | share | findings outside labels |")
    print("|---|---|---|---|---|---|---|---|")
    for group in (lambda lab: "held out" if lab["held_out"] else "tuned on", lambda lab: "family " + lab["family"],
                  lambda lab: "scenario " + lab["scenario"]):
        for row in fam.summarise(result, group):
            print("| %s | %d | %d | %s | %d | %d | %s | %d |" % (
                row["group"], row["expected"], row["found"],
                "-" if row["recall"] is None else "%.2f" % row["recall"], row["healthy"], row["healthy_alarmed"],
                "-" if row["false_alarm_share"] is None else "%.1f%%" % (100 * row["false_alarm_share"]),
                row["unsupported"]))
    from tb_plus.diagnostics import run_kind
    from tb_plus.store import Logdir

    cache = tempfile.mkdtemp(prefix="diag_k_")
    try:
        ld = Logdir(out, cache_dir=cache)
        ld.refresh()
        wrong = [(k, lab.get("kind"), run_kind(ld, k)) for k, lab in sorted(labels.items())
                 if lab.get("kind") and run_kind(ld, k) != lab["kind"]]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print("\nkind: %d of %d runs taken for the kind they are" % (len(labels) - len(wrong), len(labels)))
    for k, want, got in wrong[:show]:
        print("  taken for %s, is %s: %s" % (got, want, k))
    missed = [(k, e) for k, r in sorted(runs.items()) for e, f in r["found"] if f is None]
    alarms = [(k, f) for k, r in sorted(runs.items()) if r["label"]["healthy"] for f in r["severe"]]
    for k, e in missed[:show]:
        print("  missed: %s %s" % (k, e["rule"]))
    for k, f in alarms[:show]:
        print("  healthy alarm: %s %s %s step %s: %s" % (k, f.severity, f.rule, f.step, f.message[:160]))
    for row in fam.summarise(result, lambda lab: lab["held_out"]):
        if row["group"]:
            print("\n%s held-out families: recall %.2f (target >= 0.90), healthy runs with a warning or error %.1f%% "
                  "(target <= 5%%)" % (name, row["recall"] or 0, 100 * (row["false_alarm_share"] or 0)))
    return result


def link_tree(src, dst, prefix):
    for base, _, files in os.walk(src):
        for name in files:
            if name.startswith("."):
                continue
            rel = os.path.relpath(os.path.join(base, name), src)
            target = os.path.join(dst, prefix, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.exists(target):
                os.link(os.path.join(base, name), target)


def tree_bytes(path):
    return sum(os.path.getsize(os.path.join(b, f)) for b, _, fs in os.walk(path) for f in fs)


def timed(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode not in (0, 1):
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    return dt, p.stdout


def scale(data_dir, corpus, size_gb, repeat, smoke=False):
    import gen_logdir

    man = gen_logdir.generate(data_dir, size_gb, 8, 300, verify_torch=not smoke)
    big = os.path.join(data_dir, "diag_scale_%s" % os.path.basename(man["logdir"]))
    link_tree(man["logdir"], big, "synthetic")
    link_tree(corpus, big, "corpus")
    size = tree_bytes(big)
    for b, _, fs in os.walk(big):  # into the page cache, so every case below reads from memory
        for f in fs:
            with open(os.path.join(b, f), "rb") as fh:
                while fh.read(16 << 20):
                    pass
    exe = os.path.join(os.path.dirname(sys.executable), "tb-plus")
    rows = []
    cold_index, cold_diag, warm_diag, warm_index = [], [], [], []
    out = ""
    for _ in range(repeat):
        c1 = tempfile.mkdtemp(prefix="diag_idx_")
        c2 = tempfile.mkdtemp(prefix="diag_dx_")
        try:
            cold_index.append(timed([exe, "index", big, "--cache-dir", c1])[0])
            warm_index.append(timed([exe, "index", big, "--cache-dir", c1])[0])
            dt, out = timed([exe, "diagnose", big, "--cache-dir", c2, "--fail-on", "never"])
            cold_diag.append(dt)
            warm_diag.append(timed([exe, "diagnose", big, "--cache-dir", c2, "--fail-on", "never"])[0])
        finally:
            shutil.rmtree(c1, ignore_errors=True)
            shutil.rmtree(c2, ignore_errors=True)
    ci = statistics.median(cold_index)
    rows = [("tb-plus index, empty cache (cold index)", ci, None),
            ("tb-plus index, reopen", statistics.median(warm_index), None),
            ("tb-plus diagnose, empty cache", statistics.median(cold_diag), "<= %.2f s (1.2 x cold index)" % (1.2 * ci)),
            ("tb-plus diagnose, index reopened", statistics.median(warm_diag), "< 2 s")]
    from bench_render import machine

    print("\n## Speed on a %.2f GB log directory (%s)\n" % (size / 1e9, machine()))
    print("8 generated runs x 300 scalar tags + the %s corpus runs; child processes, files in the page cache, "
          "median of %d.\n" % (len([r for r in os.listdir(os.path.join(big, "corpus")) if os.path.isdir(os.path.join(big, "corpus", r))]), repeat))
    print("| case | seconds | ratio to cold index | target |")
    print("|---|---|---|---|")
    for name, s, target in rows:
        print("| %s | %.2f | %.2f | %s |" % (name, s, s / ci, target or ""))
    print("\nall timings: cold index %s, cold diagnose %s, warm diagnose %s"
          % ([round(x, 2) for x in cold_index], [round(x, 2) for x in cold_diag], [round(x, 2) for x in warm_diag]))
    print("\n" + "\n".join(out.splitlines()[:1]))


def wild(path):
    """Every finding on real log directories written by other projects, warnings and errors listed."""
    if not os.path.isdir(path):
        left_out("the real log directories", "none at %s" % path)
        return
    from tb_plus.diagnostics import diagnose
    from tb_plus.store import Logdir

    cache = tempfile.mkdtemp(prefix="diag_w_")
    try:
        ld = Logdir(path, cache_dir=cache)
        ld.refresh()
        report = diagnose(ld)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    counts = {sev: sum(f.severity == sev for f in report.findings) for sev in ("error", "warning", "info")}
    print("\n## Real logs: %s, %d runs: %d errors, %d warnings, %d info\n"
          % (path, len(report.runs), counts["error"], counts["warning"], counts["info"]))
    print("| severity | run | rule | step | message |")
    print("|---|---|---|---|---|")
    severe = [f for f in report.findings if f.severity in ("error", "warning")]
    for f in severe:
        print("| %s | %s | %s | %s | %s |" % (f.severity, f.run, f.rule, f.step, f.message.replace("|", "/")))
    if not severe:
        print("| - | - | - | - | no warning or error |")
    by_kind = {}
    for run, kind in sorted(report.kinds.items()):
        by_kind.setdefault(kind, []).append(run)
    print("\nkinds the runs were taken for: %s" % ", ".join("%s %d" % (k, len(v)) for k, v in sorted(by_kind.items())))
    for kind in ("rl", "lm_pretrain", "finetune"):
        for run in by_kind.get(kind, []):
            print("  %s: %s" % (kind, run))
    rules = sorted({f.rule for f in report.findings if f.severity == "info"})
    print("\ninfo findings by rule: %s" % (", ".join("%s %d" % (r, sum(f.rule == r for f in report.findings))
                                                    for r in rules) or "none"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    ap.add_argument("--wild", default=os.path.join(os.path.dirname(ROOT), "shared", "wild-logs"),
                    help="real log directories of other projects (default: ../shared/wild-logs beside the checkout)")
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the families corpus (default 0,1,2)")
    ap.add_argument("--jobs", type=int, default=2, help="processes writing the families corpus (default 2)")
    ap.add_argument("--families-only", action="store_true", help="only the families corpus's quality")
    ap.add_argument("--kinds", default="rl,lm",
                    help="corpora of other kinds of training to score (rl: Stable-Baselines3; lm: a small transformer)")
    ap.add_argument("--kinds-only", action="store_true", help="only the --kinds corpora's quality")
    ap.add_argument("--relabel", action="store_true",
                    help="label the families corpus again from its saved measurements before scoring")
    add_smoke_flag(ap)
    a = ap.parse_args()
    seeds = [int(x) for x in a.seeds.split(",")]
    fam_scenarios = fam_families = None
    runs = keras = None
    if a.smoke:
        a.size_gb, a.repeat, runs, keras = 0.004, 1, SMOKE_RUNS, False
        left_out("the corpus's other runs, Keras ones included", "smoke: %s only" % ", ".join(SMOKE_RUNS))
        seeds, fam_scenarios, fam_families = [0], ["healthy", "nan"], ["mlp_adam", "gru"]
        left_out("the families corpus but two families, two scenarios, one seed", "smoke")
    with temp_dir(prefix="tbp_bench_diag_") as work:
        if a.smoke:
            a.data_dir = work
        os.makedirs(a.data_dir, exist_ok=True)
        for name in [k for k in a.kinds.split(",") if k]:
            if name not in KIND_CORPORA:
                raise SystemExit("--kinds: unknown corpus %r (known: %s)" % (name, ", ".join(KIND_CORPORA)))
            kind_corpus_quality(name, a.data_dir, seeds, a.jobs, a.smoke)
        if a.kinds_only:
            wild(a.wild)
            return
        families_quality(families_dir(a.data_dir, seeds, fam_scenarios, a.jobs, fam_families), a.relabel)
        if a.families_only:
            return
        corpus = corpus_dir(a.data_dir, runs, keras)
        quality(corpus)
        wild(a.wild)
        if not a.skip_scale:
            scale(a.data_dir, corpus, a.size_gb, a.repeat, a.smoke)


if __name__ == "__main__":
    main()
