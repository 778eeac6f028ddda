"""/keytags: the key series a first view charts (tb_plus/query/keytags.py), through TensorBoard's WSGI app."""

import os

import pytest

from tb_plus.query import keytags
from tests.routes.conftest import get_json, make_app

tbx = pytest.importorskip("tensorboardX")


@pytest.mark.parametrize("tag, role", [
    ("train/loss", "loss"), ("loss", "loss"), ("epoch_loss", "loss"), ("Loss/train", "loss"),
    ("val/loss", "val_loss"), ("eval/loss", "val_loss"), ("validation_loss", "val_loss"),
    ("rollout/ep_rew_mean", "return"), ("charts/episodic_return", "return"),
    ("val/accuracy", "val_metric"), ("test_acc", "val_metric"), ("train/acc", "metric"), ("epoch_accuracy", "metric"),
    ("lr", "lr"), ("train/learning_rate", "lr"), ("lr-Adam", "lr"),
    ("grad_norm/layer1", None), ("weights/fc1/norm", None), ("loss_scale", None), ("gpu/mem", None),
    ("a/b/c/d/loss", None),  # per-layer depth
])
def test_classify(tag, role):
    assert keytags.classify(tag) == role


def _write(root, run, tags, steps=5):
    w = tbx.SummaryWriter(os.path.join(root, run))
    for s in range(steps):
        for t in tags:
            w.add_scalar(t, float(s), s)
    w.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from werkzeug.test import Client

    root = tmp_path_factory.mktemp("keytags")
    for i in range(3):
        _write(str(root), f"exp{i}", ["train/loss", "val/loss", "val/acc", "lr", "gpu/mem", "train/aux_loss"])
    _write(str(root), "other", ["gpu/mem"])
    _write(str(root), "sweep/a", ["train/loss"])
    return Client(make_app(root, tmp_path_factory.mktemp("cache")))


def test_key_tags_ranked_with_their_runs(client):
    body = get_json(client, "/keytags")
    tags = [(t["tag"], t["role"], t["count"]) for t in body["tags"]]
    # training losses first (more runs first: train/loss is in 4 runs), then validation, metrics, rates;
    # at most two per role
    assert tags == [("train/loss", "loss", 4), ("train/aux_loss", "loss", 3), ("val/loss", "val_loss", 3),
                    ("val/acc", "val_metric", 3), ("lr", "lr", 3)]
    runs = {t["tag"]: sorted(t["runs"]) for t in body["tags"]}
    assert runs["train/loss"] == ["exp0", "exp1", "exp2", "sweep/a"]
    assert "other" not in {r for rs in runs.values() for r in rs}
    assert body["truncated"] is False
    assert [t["tag"] for t in get_json(client, "/keytags?limit=2")["tags"]] == ["train/loss", "train/aux_loss"]


@pytest.mark.parametrize("query", ["limit=0", "limit=13", "limit=x"])
def test_bad_limit_is_a_400(client, query):
    assert "limit" in get_json(client, "/keytags?" + query, code=400)


def test_without_key_series_the_most_common_tags(tmp_path):
    from werkzeug.test import Client

    _write(str(tmp_path / "logs"), "a", ["gpu/mem", "throughput"])
    _write(str(tmp_path / "logs"), "b", ["gpu/mem"])
    body = get_json(Client(make_app(tmp_path / "logs", tmp_path / "cache")), "/keytags")
    assert [(t["tag"], t["role"], sorted(t["runs"])) for t in body["tags"]] == [
        ("gpu/mem", "common", ["a", "b"]), ("throughput", "common", ["a"])]


def test_work_is_bounded(tmp_path, monkeypatch):
    """Past MAX_SCANNED (run, tag) pairs the rest is not looked at, and the answer says so."""
    from tb_plus.store import Logdir

    for i in range(4):
        _write(str(tmp_path / "logs"), f"r{i}", ["x/loss", "y/a", "y/b"], steps=1)
    monkeypatch.setattr(keytags, "MAX_SCANNED", 7)
    monkeypatch.setattr(keytags, "MAX_RUNS", 1)
    body = keytags.key_tags(Logdir(str(tmp_path / "logs"), cache_dir=str(tmp_path / "cache")))
    assert body["truncated"] is True
    assert [(t["tag"], t["count"], t["runs"]) for t in body["tags"]] == [("x/loss", 3, ["r0"])]
