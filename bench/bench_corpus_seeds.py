#!/usr/bin/env python
"""Labels that follow the run, over many trajectories: the chaotic corpus runs under other seeds.

    python bench/bench_corpus_seeds.py [--seeds 0-15] [--runs lr_too_high,lr_grows,lr_spikes] [--smoke]

A chaotic training (a learning rate that blows up) follows another trajectory on another CPU (AVX2,
AVX-512, thread count); another seed of the initial weights does the same on this one. For each seed,
writes the chosen corpus runs (demo/diagnostics_corpus.py, make_corpus(seed=...)), derives their labels
from what they measurably did (demo/diagnostics_labels.py), diagnoses them with tb_plus and prints per
seed and run what the label expects, whether every expectation was found at its onset, and any finding
outside the label. The tests run the documented seed (0) under each CPU path; this shows the labels and
the rules agree on trajectories no test pins.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "demo"))

from _common import add_smoke_flag, temp_dir  # noqa: E402


def _seeds(text):
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0-15", help="seeds, e.g. 0-15 or 0,3,7 (default 0-15)")
    ap.add_argument("--runs", default="lr_too_high,lr_grows,lr_spikes", help="corpus runs (comma-separated)")
    add_smoke_flag(ap)
    a = ap.parse_args()
    seeds = [0, 1] if a.smoke else _seeds(a.seeds)
    runs = ["lr_too_high"] if a.smoke else [r for r in a.runs.split(",") if r]

    import diagnostics_corpus
    import diagnostics_labels
    import diagnostics_score

    from tb_plus.diagnostics import diagnose
    from tb_plus.store import Logdir

    print("| seed | run | expected (rule@onset+-tolerance) | found at onset | outside the label | seconds |")
    print("|---|---|---|---|---|---|")
    totals = {"expected": 0, "found": 0, "outside": 0, "premise": 0}
    with temp_dir(prefix="tbp_bench_seeds_") as work:
        for seed in seeds:
            out = tempfile.mkdtemp(dir=work)
            t0 = time.perf_counter()
            try:
                labels = diagnostics_corpus.make_corpus(out, runs, keras=False, seed=seed)
            except diagnostics_labels.CorpusError as e:
                totals["premise"] += 1
                print("| %d | - | premise failed: %s | | | |" % (seed, str(e).split(" (measured")[0]))
                continue
            cache = tempfile.mkdtemp(dir=work)
            ld = Logdir(out, cache_dir=cache)
            ld.refresh()
            result = diagnostics_score.score(diagnose(ld).findings, labels)
            secs = time.perf_counter() - t0
            for name in runs:
                exp = [(e, hit) for n, e, hit, _ in result["expected"] if n == name]
                fps = [f for n, f in result["false_positives"] if n == name]
                totals["expected"] += len(exp)
                totals["found"] += sum(hit is not None for _, hit in exp)
                totals["outside"] += len(fps)
                print("| %d | %s | %s | %d/%d | %s | %.1f |" % (
                    seed, name,
                    ", ".join("%s@%s+-%s" % (e["rule"], e["onset"], e["tolerance"]) if e["onset"] is not None
                              else e["rule"] for e, _ in exp) or "-",
                    sum(hit is not None for _, hit in exp), len(exp),
                    ", ".join("%s@%s" % (f.rule, f.step) for f in fps) or "-", secs))
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
    print("\n%d seeds x %d runs: %d of %d expectations found at their onset, %d findings outside the labels, "
          "%d seeds whose runs did not do what their scenario needs"
          % (len(seeds), len(runs), totals["found"], totals["expected"], totals["outside"], totals["premise"]))


if __name__ == "__main__":
    main()
