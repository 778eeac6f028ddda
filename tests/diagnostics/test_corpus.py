"""The diagnostics on the labelled corpus of real short trainings (demo/diagnostics_corpus.py):
every pathology is found by the right rule at its onset, healthy runs get no finding of warning or
error severity, and pathological runs none outside what their label expects or allows.

The labels follow the run (demo/diagnostics_labels.py: derive): they are computed from what the
generator measured on this machine, so a chaotic training that blows up earlier or overflows to NaN
on another CPU path is scored for what it did there. The corpus is therefore checked under each of
PyTorch's CPU kernel sets (ATEN_CPU_CAPABILITY=default, avx2 and, where the CPU has it, avx512) with
one and two threads, and with learning rates that give the lr_too_high run other trajectories (a
later divergence, NaN after a finite blow-up, NaN at once)."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "demo")
sys.path.insert(0, DEMO)

import diagnostics_corpus  # noqa: E402
import diagnostics_labels  # noqa: E402
import diagnostics_score  # noqa: E402


def _diagnose(logdir, cache_dir):
    from tb_plus.diagnostics import diagnose
    from tb_plus.store import Logdir

    ld = Logdir(str(logdir), cache_dir=str(cache_dir))
    ld.refresh()
    return diagnose(ld)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    labels = diagnostics_corpus.make_corpus(str(out))
    report = _diagnose(out, tmp_path_factory.mktemp("corpus_cache"))
    return labels, report, diagnostics_score.score(report.findings, labels), str(out)


def _describe(findings):
    return [f"{f.severity} {f.run} {f.rule} step={f.step} {f.message}" for f in findings]


def _problems(labels, report, result):
    """What a scored corpus gets wrong: missed expectations, findings outside the labels, warnings
    or errors on healthy runs (empty when all holds)."""
    out = [("missed", name, e, _describe(same), labels[name]["signals"])
           for name, e, hit, same in result["expected"] if hit is None]
    out += [("outside the label", n, _describe([f]), labels[n]["signals"]) for n, f in result["false_positives"]]
    healthy = {r for lab in labels.values() if lab["healthy"] for r in lab["runs"]}
    out += [("healthy run warned", _describe([f])) for f in report.findings
            if f.run in healthy and f.severity in ("warning", "error")]
    return out


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


def test_labels_are_written_beside_the_corpus(corpus):
    labels, _, _, logdir = corpus
    data = diagnostics_labels.read(logdir)
    assert set(data["labels"]) == set(labels)
    assert data["platform"]["threads"] == 1 and data["platform"]["torch"]
    for name, lab in data["labels"].items():
        assert lab["expect"] == labels[name]["expect"] and lab["allow"] == labels[name]["allow"]
        assert lab["signals"]["loss_first"] > 0


def test_cli_fails_the_pipeline_on_the_broken_runs(corpus):
    labels, _, _, logdir = corpus
    exe = os.path.join(os.path.dirname(sys.executable), "tb-plus")
    p = subprocess.run([exe, "diagnose", logdir, "--json", "--fail-on", "warning"], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 1, p.stderr
    report = json.loads(p.stdout)
    # the runs whose loss this machine measured non-finite: nan_loss always, lr_too_high on CPUs where it overflows
    broken = {r for lab in labels.values() if any(e["rule"] == "nonfinite_loss" for e in lab["expect"])
              for r in lab["runs"]}
    assert "nan_loss" in broken
    assert {f["run"] for f in report["findings"] if f["rule"] == "nonfinite_loss"} == broken
    healthy = [r for n, lab in labels.items() if lab["healthy"] for r in lab["runs"] if r in report["runs"]]
    p = subprocess.run([exe, "diagnose", logdir, "--fail-on", "warning", *sum((["--run", r] for r in healthy), [])],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout


# ------------------------------------------------------------------ across CPU paths and trajectories

def _cpu_flags():
    """The CPU's feature flags (Linux /proc/cpuinfo), or None where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


# the CPU features each of ATen's kernel sets needs (ATen's own check: cpuinfo, DispatchStub.cpp);
# ATEN_CPU_CAPABILITY=avx512 is accepted by torch even where the CPU lacks it, so check the CPU here
NEEDS = {"default": set(), "avx2": {"avx2", "fma"}, "avx512": {"avx512f", "avx512bw", "avx512vl", "avx512dq"}}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("capability", ["default", "avx2", "avx512"])
def test_corpus_holds_on_every_cpu_path(capability, threads, tmp_path):
    """The PyTorch corpus, written in a child process under ATEN_CPU_CAPABILITY=<capability> with
    <threads> torch threads, scored against the labels derived from that child's own measurements."""
    flags = _cpu_flags()
    if NEEDS[capability] and (flags is None or not NEEDS[capability] <= flags):
        pytest.skip(f"this CPU cannot run ATen's {capability} kernels (needs {sorted(NEEDS[capability])}; "
                    f"{'no /proc/cpuinfo' if flags is None else 'missing ' + str(sorted(NEEDS[capability] - flags))})")
    out = tmp_path / "corpus"
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    env.pop("MKL_CBWR", None)
    p = subprocess.run([sys.executable, os.path.join(DEMO, "diagnostics_corpus.py"), str(out), "--no-keras",
                        "--quiet", "--threads", str(threads)], env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:])
    data = diagnostics_labels.read(str(out))
    # the child really ran on the kernels and threads asked for
    assert data["platform"]["cpu_capability"] == capability.upper(), data["platform"]
    assert data["platform"]["threads"] == threads, data["platform"]
    labels = data["labels"]
    assert set(labels) == set(diagnostics_labels.LABELS) - set(diagnostics_corpus.KERAS_RUNS)
    report = _diagnose(out, tmp_path / "cache")
    result = diagnostics_score.score(report.findings, labels)
    assert not _problems(labels, report, result), _problems(labels, report, result)
    assert len(result["expected"]) >= 15


@pytest.mark.parametrize("lr", [1.8, 5.0, 30.0])
def test_labels_follow_the_run(lr, tmp_path):
    """lr_too_high at other learning rates stands in for the trajectories other CPUs give (here, on
    an AVX2 machine: a late divergence at 1.8, NaN ten steps after a finite blow-up at 5, NaN within a
    few steps at 30; elsewhere they may differ, and the labels with them). Its label says what the run
    did (a non-finite loss is expected where and only where one was measured) and the diagnostics
    agree with it."""
    out = tmp_path / "corpus"
    labels = diagnostics_corpus.make_corpus(str(out), ["lr_too_high"], lr_too_high=lr)
    lab = labels["lr_too_high"]
    sig = lab["signals"]
    rules = {e["rule"]: e for e in lab["expect"]}
    if sig["first_nonfinite_loss"] is None:
        assert "nonfinite_loss" not in rules and "nonfinite_loss" not in lab["allow"]
    else:
        assert rules["nonfinite_loss"]["onset"] == sig["first_nonfinite_loss"]
        assert "nonfinite_tensor" in lab["allow"]
    if "divergence" in rules:
        assert sig["best_step"] - 5 <= rules["divergence"]["onset"] <= sig["lost_from"] + 5
    report = _diagnose(out, tmp_path / "cache")
    result = diagnostics_score.score(report.findings, labels)
    assert not _problems(labels, report, result), _problems(labels, report, result)
    if lr >= 30:  # overflows within a few steps on any CPU
        assert "nonfinite_loss" in rules, sig
