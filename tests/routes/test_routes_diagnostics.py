"""/diagnostics and the run table's diagnostics column, through TensorBoard's WSGI app, over logs
written by tensorboardX: a healthy run, a run whose loss turns NaN, and a Keras-style
<x>/train + <x>/validation pair that overfits."""

import math

import numpy as np
import pytest

from tests.routes.conftest import get_json, make_app

tbx = pytest.importorskip("tensorboardX")

NAN_STEP = 60


def write(logdir):
    rng = np.random.default_rng(1)
    for name, broken in (("healthy", False), ("broken", True)):
        w = tbx.SummaryWriter(f"{logdir}/{name}")
        for s in range(200):
            v = 2.3 * math.exp(-s / 40) + 0.1 + 0.01 * rng.standard_normal()
            w.add_scalar("train/loss", math.nan if broken and s >= NAN_STEP else v, s)
        w.close()
    # Keras-like: epoch_loss in exp/train and exp/validation; validation is lowest at epoch 8
    for sub, f in (("train", lambda e: 2.0 * math.exp(-e / 5)),
                   ("validation", lambda e: 0.6 + 0.02 * (e - 8) ** 2 if e >= 8 else 0.6 + 0.1 * (8 - e))):
        w = tbx.SummaryWriter(f"{logdir}/exp/{sub}")
        for e in range(30):
            w.add_scalar("epoch_loss", f(e), e)
        w.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from werkzeug.test import Client

    logs = tmp_path_factory.mktemp("diag_logs")
    write(str(logs))
    return Client(make_app(logs, tmp_path_factory.mktemp("diag_cache"))), logs


def by_run(findings, run):
    return [f for f in findings if f["run"] == run]


def test_findings_of_every_run(client):
    c, _ = client
    body = get_json(c, "/diagnostics")
    assert set(body["runs"]) == {"healthy", "broken", "exp/train", "exp/validation"}
    assert body["pending"] is False
    (nan,) = [f for f in by_run(body["findings"], "broken") if f["rule"] == "nonfinite_loss"]
    assert nan["severity"] == "error" and nan["step"] == NAN_STEP and nan["tags"] == ["train/loss"]
    assert nan["evidence"]["first_value"] == "NaN" and nan["evidence"]["nonfinite_points"] == 200 - NAN_STEP
    assert nan["prompt"] and nan["message"] and nan["id"] == "broken|nonfinite_loss|train/loss"
    assert by_run(body["findings"], "healthy") == []
    assert body["runs"]["healthy"] == {"error": 0, "warning": 0, "info": 0}
    assert body["runs"]["broken"]["error"] >= 1
    (over,) = [f for f in by_run(body["findings"], "exp/train") if f["rule"] == "overfitting"]
    assert over["step"] == 8 and over["tags"] == ["epoch_loss", "epoch_loss"]
    assert "exp/validation" in over["message"]
    # most severe first
    ranks = [{"error": 2, "warning": 1, "info": 0}[f["severity"]] for f in body["findings"]]
    assert ranks == sorted(ranks, reverse=True)
    names = [r["name"] for r in body["rules"]]
    from tb_plus.diagnostics import RULES

    assert len(names) == len(RULES) >= 29 and "vanishing_gradients" in names and "rl_return_collapse" in names
    assert "lm_loss_spikes" in names and all(r["description"] for r in body["rules"])


def test_one_run_and_bad_queries(client):
    c, _ = client
    body = get_json(c, "/diagnostics?run=broken")
    assert set(body["runs"]) == {"broken"} and {f["run"] for f in body["findings"]} == {"broken"}
    assert "'nope'" in get_json(c, "/diagnostics?run=nope", 404)
    assert "run" in get_json(c, "/diagnostics?run=", 400)


def test_run_table_badges(client):
    c, _ = client
    get_json(c, "/diagnostics")
    table = get_json(c, "/runs")["runs"]
    col = dict(zip(table["name"], table["diagnostics"]))
    assert col["broken"]["error"] >= 1 and col["healthy"] == {"error": 0, "warning": 0, "info": 0}
    assert col["exp/train"]["warning"] >= 1


def test_findings_follow_new_data(tmp_path):
    """A run's findings are cached per run version: an append that breaks the loss is seen at the next refresh."""
    from tb_plus.diagnostics import diagnose
    from tb_plus.store import Logdir

    w = tbx.SummaryWriter(str(tmp_path / "logs" / "r"))
    for s in range(100):
        w.add_scalar("loss", 1.0 / (s + 1), s)
    w.flush()
    ld = Logdir(str(tmp_path / "logs"), cache_dir=str(tmp_path / "cache"))
    ld.refresh()
    assert diagnose(ld).findings == []
    assert diagnose(ld).runs == {"r": {"error": 0, "warning": 0, "info": 0}}
    w.add_scalar("loss", math.inf, 100)
    w.close()
    ld.refresh()
    (f,) = diagnose(ld).findings
    assert f.rule == "nonfinite_loss" and f.step == 100
