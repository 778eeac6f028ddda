"""The diagnostics on the labelled corpus of real short trainings (demo/diagnostics_corpus.py):
every pathology is found by the right rule at the documented onset, healthy runs get no finding of
warning or error severity, and pathological runs none outside what their label expects or allows."""

import os
import sys

import pytest

pytest.importorskip("torch")

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "demo")
sys.path.insert(0, DEMO)

import diagnostics_corpus  # noqa: E402
import diagnostics_score  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from tb_plus.diagnostics import diagnose
    from tb_plus.store import Logdir

    out = tmp_path_factory.mktemp("corpus")
    labels = diagnostics_corpus.make_corpus(str(out))
    ld = Logdir(str(out), cache_dir=str(tmp_path_factory.mktemp("corpus_cache")))
    ld.refresh()
    report = diagnose(ld)
    return labels, report, diagnostics_score.score(report.findings, labels), str(out)


def _describe(findings):
    return [f"{f.severity} {f.run} {f.rule} step={f.step} {f.message}" for f in findings]


def test_every_pathology_found_at_its_onset(corpus):
    labels, report, result, _ = corpus
    missed = [(name, e, _describe(same)) for name, e, hit, same in result["expected"] if hit is None]
    assert not missed, missed
    assert len(result["expected"]) >= 15


def test_healthy_runs_have_no_warning(corpus):
    labels, report, result, _ = corpus
    healthy = [n for n, lab in labels.items() if lab["healthy"]]
    assert len(healthy) >= 2
    bad = [f for f in report.findings
           if any(f.run in labels[n]["runs"] for n in healthy) and f.severity in ("warning", "error")]
    assert not bad, _describe(bad)


def test_no_finding_outside_the_labels(corpus):
    _, _, result, _ = corpus
    assert not result["false_positives"], [(n, _describe([f])) for n, f in result["false_positives"]]


def test_prompts_and_evidence(corpus):
    _, report, _, _ = corpus
    for f in report.findings:
        assert f.prompt and f.message and f.title and f.tags, f
        assert all(isinstance(v, (int, float, str)) for v in f.to_json()["evidence"].values()), f


def test_cli_fails_the_pipeline_on_the_broken_runs(corpus):
    import json
    import subprocess

    labels, _, _, logdir = corpus
    exe = os.path.join(os.path.dirname(sys.executable), "tb-plus")
    p = subprocess.run([exe, "diagnose", logdir, "--json", "--fail-on", "warning"], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 1, p.stderr
    report = json.loads(p.stdout)
    assert {f["run"] for f in report["findings"] if f["rule"] == "nonfinite_loss"} == {"nan_loss"}
    healthy = [r for n, lab in labels.items() if lab["healthy"] for r in lab["runs"] if r in report["runs"]]
    p = subprocess.run([exe, "diagnose", logdir, "--fail-on", "warning", *sum((["--run", r] for r in healthy), [])],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout
