"""Hyperparameters in the Keras layout (hparams written into <run>/ with the hparams API, epoch scalars
in <run>/train and <run>/validation) reach the sub-runs everywhere: /hparams, /runs, /aggregate
group_by=hparam and the diagnostics' reading of a run's hparams."""

import pytest

from tests.query.keras_logs import epoch_loss, write_keras_layout
from tests.routes.conftest import get_json, make_app

RUNS = {
    "lr=0.1,seed=1": {"lr": 0.1, "seed": 1, "num_classes": 10},
    "lr=0.1,seed=2": {"lr": 0.1, "seed": 2, "num_classes": 10},
    "lr=0.01,seed=1": {"lr": 0.01, "seed": 1, "num_classes": 10},
}
EPOCHS = 5


@pytest.fixture(scope="module")
def keras(tmp_path_factory):
    from werkzeug.test import Client

    logs = tmp_path_factory.mktemp("keras_logs")
    write_keras_layout(logs, RUNS, EPOCHS)
    return Client(make_app(logs, tmp_path_factory.mktemp("keras_cache"))), logs


def test_sub_runs_have_their_runs_hparams_in_hparams_and_runs(keras):
    c, _ = keras
    body = get_json(c, "/hparams")
    assert len(body["runs"]) == 9
    for i, r in enumerate(body["runs"]):
        top = r.split("/")[0]
        assert body["hparams"]["lr"][i] == RUNS[top]["lr"] and body["hparams"]["seed"][i] == RUNS[top]["seed"], r
    table = get_json(c, "/runs")
    assert table["hparams"] == {k: v for k, v in body["hparams"].items()}
    assert table["runs"]["name"] == body["runs"]


def test_aggregate_of_epoch_loss_by_hparam_groups_the_sub_runs(keras):
    c, _ = keras
    body = get_json(c, "/aggregate?tag=epoch_loss&group_by=hparam%3Alr&points=5")
    assert [g["key"] for g in body["groups"]] == ["0.01", "0.1"]
    g01 = body["groups"][1]
    assert sorted(r for r, _ in g01["series"]) == [f"lr=0.1,seed={s}/{sp}" for s in (1, 2) for sp in
                                                 ("train", "validation")]
    assert g01["xs"] == [0.0, 1.0, 2.0, 3.0, 4.0] and g01["count"] == [4] * 5
    want = [sum(epoch_loss(0.1, s, sp, e) for s in (1, 2) for sp in ("train", "validation")) / 4 for e in range(EPOCHS)]
    assert g01["center"] == pytest.approx(want, rel=1e-6)
    # with the two tags, one aggregate per tag and lr
    body = get_json(c, "/aggregate?tag=epoch_*&group_by=hparam%3Alr&points=5")
    assert [g["key"] for g in body["groups"]] == [
        "epoch_accuracy · 0.01", "epoch_accuracy · 0.1", "epoch_loss · 0.01", "epoch_loss · 0.1"]


def test_diagnostics_read_the_inherited_hparams(keras):
    from tb_plus.diagnostics import rundata
    from tb_plus.diagnostics.config import Config
    from tb_plus.query.hparams import hparam_sources, run_hparams
    from tb_plus.store import Logdir

    _, logs = keras
    ld = Logdir(str(logs), cache_dir=str(logs) + "_ld_cache")
    runs = ld.runs()
    hp = run_hparams(ld)
    assert rundata._hparam_classes(ld, "lr=0.1,seed=1/train", Config(), runs) == 10
    assert hp["lr=0.1,seed=1/train"]["num_classes"] == 10
    # a sub-run's diagnosis is redone when its run's hparams change: the run is among its sources
    assert "lr=0.1,seed=1" in hparam_sources("lr=0.1,seed=1/validation", runs)
