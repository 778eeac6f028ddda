"""The diagnostics on the families corpus (demo/diagnostics_families.py), the CI subset: every family
(MLPs, a CNN, a GRU, a transformer; SGD, momentum, Adam, AdamW; step decay, warm-up + cosine; batches
4 to 1024; a summed loss; a 30-example validation set), healthy and broken scenarios, one seed, each
training written in five logging styles (scalars only, hand-logged norms, the tracer, Hugging Face
Trainer tags, Lightning tags), and a Keras family in the Keras callback's layout where TensorFlow
imports. Labels come from what each training measurably did.

The subset is written once per session by two child processes (two cores), into a temporary
directory. What it asserts is what the issue asks of the full corpus (bench/bench_diagnostics.py):
recall >= 0.90 and <= 5% of healthy runs with a warning or error on the held-out families, and on
the whole subset."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "demo"))

import diagnostics_families as fam  # noqa: E402


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    names = list(fam.FAMILIES)
    procs, outs = [], []
    env = dict(os.environ, PYTHONHASHSEED="0")
    for k in range(2):
        out = str(root / f"shard{k}")
        outs.append(out)
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(REPO, "demo", "diagnostics_families.py"), out,
             "--families", ",".join(names[k::2]), "--subset", "ci"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, stdin=subprocess.DEVNULL))
    logs = [p.communicate()[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-4000:]
    runs = {}
    for out in outs:
        runs.update(fam.evaluate(out)["runs"])
    return {"runs": runs}


def _report(result, keys):
    lines = []
    for k in sorted(keys):
        r = result["runs"][k]
        for e, f in r["found"]:
            if f is None:
                lines.append(f"missed {k}: {e}; found {[(x.rule, x.step) for x in r['severe']]}")
        if r["label"]["healthy"]:
            lines += [f"healthy alarm {k}: {x.rule} {x.step} {x.message}" for x in r["severe"]]
        lines += [f"outside the label {k}: {x.rule} {x.step} {x.message}" for x in r["unsupported"]]
    return "\n".join(lines)


def _row(result, pick):
    rows = fam.summarise(result, pick)
    return next(r for r in rows if r["group"])


@pytest.mark.parametrize("split", ["held_out", "all"])
def test_recall_and_false_alarms(subset, split):
    if split == "held_out":
        row = _row(subset, lambda lab: lab["held_out"])
        keys = [k for k, r in subset["runs"].items() if r["label"]["held_out"]]
    else:
        row = _row(subset, lambda lab: True)
        keys = list(subset["runs"])
    assert row["expected"] >= 40 and row["healthy"] >= 40, row  # the subset is not trivially small
    assert row["recall"] >= 0.90, f"{row}\n{_report(subset, keys)}"
    assert row["false_alarm_share"] <= 0.05, f"{row}\n{_report(subset, keys)}"


def test_every_style_and_family_is_scored(subset):
    styles = {r["label"]["style"] for r in subset["runs"].values()}
    families = {r["label"]["family"] for r in subset["runs"].values()}
    keras = fam.keras_available()  # the Keras family needs TensorFlow
    assert styles == set(fam.STYLES) | ({"keras"} if keras else set())
    assert families == set(fam.FAMILIES) - (set() if keras else {"keras_mlp"})
    for pick in (lambda lab: lab["style"], lambda lab: lab["family"]):
        for row in fam.summarise(subset, pick):
            assert row["healthy"] > 0, row


def test_no_findings_the_data_do_not_show(subset):
    outside = [(k, f.rule, f.step) for k, r in subset["runs"].items() for f in r["unsupported"]]
    assert len(outside) <= 0.05 * len(subset["runs"]), _report(subset, list(subset["runs"]))
