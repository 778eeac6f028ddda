"""The diagnostics on real log directories written by other projects (../shared/wild-logs beside the
checkout: detectron2, HF Trainer, Keras, Lightning, Stable-Baselines3, Ray Tune, TF1, tensorboardX,
YOLOv8; provenance in its SOURCES.md), read exactly as TensorBoard reads them. They are not part of
this project, so the test skips where they are absent. Of their 91 runs, one shows a problem: the
Keras IMDB model overfits from epoch 4. Nothing else may be raised at warning or error, in particular
not on the reinforcement-learning runs (Stable-Baselines3, RLlib), whose losses chase moving targets."""

import os

import pytest

WILD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                    "shared", "wild-logs")


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    if not os.path.isdir(WILD):
        pytest.skip(f"no real log directories at {WILD} (they live beside the checkout, not in it)")
    from tb_plus.store import Logdir

    ld = Logdir(WILD, cache_dir=str(tmp_path_factory.mktemp("wild_cache")))
    ld.refresh()
    return ld


@pytest.fixture(scope="module")
def report(logdir):
    from tb_plus.diagnostics import diagnose

    return diagnose(logdir)


def test_the_imdb_overfitting_is_found(report):
    hits = [f for f in report.findings if f.rule == "overfitting" and "imdb-model" in f.run]
    assert hits and hits[0].severity == "warning" and hits[0].step == 4, report.findings


def test_nothing_else_at_warning_or_error(report):
    severe = [f"{f.severity} {f.run} {f.rule} {f.message}" for f in report.findings
              if f.severity in ("warning", "error") and not (f.rule == "overfitting" and "imdb-model" in f.run)]
    assert not severe, severe


def test_reinforcement_learning_runs_are_recognised(logdir):
    from tb_plus.diagnostics import Config
    from tb_plus.diagnostics.rundata import gather

    rl = [r for r in logdir.runs() if r.startswith(("sb3-airsim/", "raytune-rllib-hanabi/")) and logdir.tags(r)]
    assert len(rl) >= 5
    for run in rl:
        rd = gather(logdir, run, Config(), logdir.runs())
        assert rd.kind == "rl" and rd.rl_losses and not rd.losses, run
    assert gather(logdir, [r for r in logdir.runs() if "imdb-model" in r][0], Config()).kind == "supervised"
    hf = [r for r in logdir.runs() if r.startswith("hf-trainer-distilbert/")]
    assert [gather(logdir, r, Config()).kind for r in hf] == ["finetune"]


def test_rl_rules_raise_nothing_on_the_real_rl_runs(logdir, report):
    """The RL rules (rules_rl.py) run on the SB3 and Ray Tune runs (their kind is rl) and give no
    warning or error there: the A2C runs' explained variance, negative for the whole first run
    (A2C's 5-step rollouts), is an info since their return improves."""
    rl = [r for r in logdir.runs() if r.startswith(("sb3-airsim/", "raytune-rllib-")) and logdir.tags(r)]
    mine = [f for f in report.findings if f.run in rl]
    assert not [f for f in mine if f.severity in ("warning", "error")], [f.message for f in mine]
    ev = [f for f in mine if f.rule == "rl_explained_variance"]
    assert ev and all(f.severity == "info" for f in ev)
