"""/evaluation through TensorBoard's WSGI app: the list, one evaluation's curves, pr_curves ROC."""

import numpy as np
import pytest

from tests.evaluation.test_accumulator import exact_auc, gaussians
from tests.routes.conftest import get_json, make_app

torch_tb = pytest.importorskip("torch.utils.tensorboard")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from werkzeug import test as wtest

    from tb_plus.evaluation import log_evaluation

    logs = tmp_path_factory.mktemp("eval_logs")
    w = torch_tb.SummaryWriter(str(logs / "model"))
    data = {}
    for step in (100, 200, 300):
        s, y = gaussians(50_000, 0.3, 1.0 + step / 300, "probability", seed=step)
        log_evaluation(w, "eval/ctr", step, s, y)
        data[step] = (s, y)
        w.add_pr_curve("pr/val", y, s, step, num_thresholds=101)
        w.add_scalar("loss", 1.0 / step, step)
    w.close()
    client = wtest.Client(make_app(logs, tmp_path_factory.mktemp("eval_cache")))
    return client, data


def test_list_of_evaluation_tags(setup):
    client, _ = setup
    tags = get_json(client, "/evaluation")["tags"]
    assert sorted(zip(tags["run"], tags["tag"], tags["kind"])) == [
        ("model", "eval/ctr", "tb_plus_eval"), ("model", "pr/val", "pr_curves")]


def test_curves_of_one_evaluation(setup):
    client, data = setup
    body = get_json(client, "/evaluation?run=model&tag=eval%2Fctr&step=200&bins=20")
    s, y = data[200]
    assert body["steps"] == [100, 200, 300] and body["step"] == 200
    assert abs(body["auc"] - exact_auc(s, y)) <= 1e-6
    assert body["count"] == {"positives": float(y.sum()), "negatives": float((~y).sum()), "nan": 0}
    roc = body["roc"]
    assert roc["fpr"][0] == 0 and roc["tpr"][0] == 0 and len(roc["fpr"]) <= 1000
    assert roc["fpr"][-1] == pytest.approx(1) and roc["threshold"][0] == "Infinity"
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(body["auc"], abs=2e-3)  # thinned curve
    dist = body["distribution"]
    assert len(dist["edges"]) == 21 and sum(dist["positives"]) == y.sum()
    assert body["calibration"]["count"][0] + sum(body["calibration"]["count"][1:]) == len(s)
    last = get_json(client, "/evaluation?run=model&tag=eval%2Fctr")
    assert last["step"] == 300


def test_roc_from_pr_curves(setup):
    client, data = setup
    body = get_json(client, "/evaluation?run=model&tag=pr%2Fval&step=100")
    s, y = data[100]
    assert body["kind"] == "pr_curves" and body["distribution"] is None
    assert abs(body["auc"] - exact_auc(s, y)) < 5e-3  # 101 thresholds
    series = get_json(client, "/series?run=model&tag=pr%2Fval%2Froc_auc")
    assert series["step"] == [100, 200, 300]


def test_auc_over_steps_is_a_series(setup):
    client, data = setup
    body = get_json(client, "/series?run=model&tag=eval%2Fctr%2Fauc_roc")
    assert body["step"] == [100, 200, 300]
    for v, step in zip(body["value"], (100, 200, 300)):
        assert abs(v - exact_auc(*data[step])) <= 1e-6
    tree = get_json(client, "/tags?under=eval")["tags"]
    assert tree == ["eval/ctr/auc_roc", "eval/ctr/auc_roc_volatility", "eval/ctr/average_precision"]


@pytest.mark.parametrize("query, code, shown", [
    ("/evaluation?run=model", 400, "both"),
    ("/evaluation?run=nope&tag=eval%2Fctr", 404, "'nope'"),
    ("/evaluation?run=model&tag=nope", 404, "'nope'"),
    ("/evaluation?run=model&tag=eval%2Fctr&step=7", 404, "step 7"),
    ("/evaluation?run=model&tag=eval%2Fctr&bins=1", 400, "bins"),
])
def test_bad_evaluation_queries(setup, query, code, shown):
    client, _ = setup
    r = client.get("/data/plugin/tb_plus" + query)
    assert r.status_code == code and shown in r.get_data(as_text=True)


def test_a_step_logged_twice_is_listed_once_with_its_last_value(tmp_path):
    """A resumed run logs steps again: each step once in "steps", the value written last at it."""
    from werkzeug import test as wtest

    from tb_plus.evaluation import log_evaluation

    w = torch_tb.SummaryWriter(str(tmp_path / "logs" / "model"))
    counts = {}
    for n, step in [(1000, 100), (1000, 200), (1000, 300), (700, 200), (700, 300)]:
        s, y = gaussians(n, 0.3, 1.0, "probability", seed=n + step)
        log_evaluation(w, "eval/ctr", step, s, y)
        counts[step] = float(len(y))
    w.close()
    client = wtest.Client(make_app(tmp_path / "logs", tmp_path / "cache"))
    for step in (None, 100, 200, 300):
        body = get_json(client, "/evaluation?run=model&tag=eval%2Fctr" + ("" if step is None else "&step=%d" % step))
        assert body["steps"] == [100, 200, 300]
        assert body["step"] == (300 if step is None else step)
        c = body["count"]
        assert c["positives"] + c["negatives"] == counts[body["step"]]
