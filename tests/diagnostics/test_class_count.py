"""The class count where users leave it: torch's add_hparams writes its hparams into a
<run>/<timestamp> sub-run, Hugging Face names it num_labels. With it, a first loss 10x ln(C) is an
initial_loss finding; without it there is nothing to compare with."""

import math

import numpy as np
import pytest

torch_tb = pytest.importorskip("torch.utils.tensorboard")


def _write(logdir, run, hparams=None, run_name=None):
    w = torch_tb.SummaryWriter(str(logdir / run))
    for s, v in enumerate(np.linspace(10 * math.log(10), 0.1, 200)):
        w.add_scalar("train/loss", float(v), s)
    if hparams is not None:
        w.add_hparams(hparams, {"hparam/final_loss": 0.1}, run_name=run_name)
    w.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from tb_plus.diagnostics import diagnose
    from tb_plus.store import Logdir

    logdir = tmp_path_factory.mktemp("class_count")
    _write(logdir, "sub_run", {"num_classes": 10, "lr": 0.1})  # into sub_run/<time.time()>
    _write(logdir, "own", {"model/num_labels": 10, "lr": 0.1}, run_name=".")  # into the run itself
    _write(logdir, "unknown")
    ld = Logdir(str(logdir), cache_dir=str(tmp_path_factory.mktemp("cache")))
    ld.refresh()
    assert any(r.startswith("sub_run/") for r in ld.runs())  # add_hparams made its timestamped sub-run
    return diagnose(ld)


def _initial(report, run):
    return [f for f in report.findings if f.run == run and f.rule == "initial_loss"]


def test_add_hparams_sub_run_gives_the_class_count(report):
    (f,) = _initial(report, "sub_run")
    assert f.evidence["num_classes"] == 10 and f.step == 0


def test_num_labels_key_under_a_prefix_gives_the_class_count(report):
    (f,) = _initial(report, "own")
    assert f.evidence["num_classes"] == 10


def test_no_class_count_no_comparison(report):
    assert _initial(report, "unknown") == []


def test_the_hparams_metric_is_no_training_curve(report):
    # add_hparams writes its metric dict (hparam/final_loss: one value) as scalars: no initial loss to judge
    assert not [f for f in report.findings if f.tags == ["hparam/final_loss"]], report.findings
