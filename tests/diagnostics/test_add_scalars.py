"""torch's add_scalars("Loss", {"train": ..., "val": ...}) writes each curve into a sibling run of its own
(<run>/Loss_train, <run>/Loss_val, both holding the tag "Loss"). The diagnostics pair them as they pair
Keras' <run>/train and <run>/validation: the validation curve is validation, and overfitting shows on
the training run. Written by the real writer."""

import math

import numpy as np
import pytest

torch_tb = pytest.importorskip("torch.utils.tensorboard")


def write(logdir, val_rises, key="val", main="Loss"):
    w = torch_tb.SummaryWriter(logdir)
    rng = np.random.default_rng(0)
    for epoch in range(40):
        train = 2.3 * math.exp(-epoch / 8) + 0.05 + 0.01 * rng.standard_normal()
        val = 2.3 * math.exp(-epoch / 8) + 0.3 + 0.01 * rng.standard_normal()
        if val_rises and epoch > 15:
            val += 0.04 * (epoch - 15)  # the model memorises: validation rises while training falls
        w.add_scalars(main, {"train": train, key: val}, epoch)
    w.close()


def findings(logdir, tmp_path):
    from tb_plus.diagnostics import diagnose
    from tb_plus.store import Logdir

    ld = Logdir(str(logdir), cache_dir=str(tmp_path / "cache"))
    return ld, diagnose(ld)


@pytest.mark.parametrize("key", ["val", "validation", "test"])
def test_overfitting_shows_on_the_training_curve(tmp_path, key):
    write(tmp_path / "logs" / "run1", val_rises=True, key=key)
    ld, report = findings(tmp_path / "logs", tmp_path)
    assert sorted(ld.runs()) == sorted(["run1", "run1/Loss_train", f"run1/Loss_{key}"])
    warn = [(f.run, f.rule) for f in report.findings if f.severity in ("warning", "error")]
    assert warn == [("run1/Loss_train", "overfitting")], warn
    (f,) = [f for f in report.findings if f.rule == "overfitting"]
    assert 14 <= f.step <= 20, f.step


def test_a_healthy_pair_gets_nothing_and_the_validation_curve_is_not_a_training_loss(tmp_path):
    write(tmp_path / "logs" / "run1", val_rises=False)
    _, report = findings(tmp_path / "logs", tmp_path)
    assert [f for f in report.findings if f.severity in ("warning", "error")] == []
    # a run that merely ends in _val, without its _train sibling, is a training run like any other
    write(tmp_path / "solo" / "x", val_rises=False, main="Loss")
    import shutil

    shutil.rmtree(tmp_path / "solo" / "x" / "Loss_train")
    from tb_plus.diagnostics.config import Config
    from tb_plus.diagnostics.rundata import gather
    from tb_plus.store import Logdir

    ld = Logdir(str(tmp_path / "solo"), cache_dir=str(tmp_path / "cache2"))
    rd = gather(ld, "x/Loss_val", Config(), ld.runs())
    assert [s.tag for s in rd.losses] == ["Loss"] and rd.val_losses == []
