"""Issue 18's file-borne problems against a real `tensorboard` process: a run swapped for a symlink
after indexing (P-5), a file declaring 20,000 hparams (P-12), `..` after a path outside the roots
(P-15) and a file rewritten in place with as many tags (P-16)."""

import json
import os
import shutil
import time
import urllib.parse

import numpy as np
import pytest

from tests.integration.test_identity import _call, _runs
from tests.integration.test_tensorboard_process import TensorBoard

tbx = pytest.importorskip("tensorboardX")


def _pr_run(d, perfect: bool):
    """A run with one pr_curves value: scores that rank every positive first (AUC 1) or last (AUC 0).
    Both versions have the same records' sizes, so a file of one can stand in for the other."""
    labels = np.array([1] * 50 + [0] * 50)
    scores = np.linspace(0.99, 0.01, 100) if perfect else np.linspace(0.01, 0.99, 100)
    w = tbx.SummaryWriter(str(d), filename_suffix=".same")
    w.add_pr_curve("pr/x", labels, scores, 0, num_thresholds=101)
    w.add_scalar("loss", 1.0, 0)
    w.close()
    (name,) = os.listdir(d)
    return name


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("files")
    root = base / "root"
    (root / "a").mkdir(parents=True)
    w = tbx.SummaryWriter(str(root / "a" / "plain"))
    for s in range(10):
        w.add_scalar("loss", 1.0 / (s + 1), s)
    w.close()
    return base


@pytest.fixture(scope="module")
def server(tree, tmp_path_factory):
    # --reload_interval 0: each directory is indexed once when opened, so what a later request reads
    # from the event files is read by path, after discovery (the window P-5 used)
    tb = TensorBoard(str(tree / "root" / "a"), str(tmp_path_factory.mktemp("cache")), "--load_fast", "false",
                     "--reload_interval", "0", "--tb_plus_roots", str(tree / "root"))
    try:
        tb.wait_for_plugin()
        yield tb, f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus"
    finally:
        tb.stop()


def _q(**kw):
    return urllib.parse.urlencode({k: str(v) for k, v in kw.items()})


def test_p5_a_run_swapped_for_a_symlink_after_indexing_is_not_read_outside(server, tree):
    _, base = server
    root, outside = tree / "root" / "team", tree / "outside"
    name = _pr_run(root / "run", perfect=True)
    other = _pr_run(outside / "tmp", perfect=False)
    (outside / "run").mkdir()
    shutil.move(str(outside / "tmp" / other), str(outside / "run" / name))  # the same name, the same offsets
    assert _runs(base, root) == (200, ["run"])
    status, body = _call(f"{base}/evaluation?{_q(logdir=root, run='run', tag='pr/x')}")
    assert status == 200 and json.loads(body)["auc"] > 0.99
    os.rename(root / "run", root / "run_moved")  # swapped for a link leading out; no refresh follows
    os.symlink(outside / "run", root / "run")
    status, body = _call(f"{base}/evaluation?{_q(logdir=root, run='run', tag='pr/x')}")
    # the value outside (AUC 0) is never served: the open itself is checked
    assert status != 200 or json.loads(body)["auc"] > 0.99, body[:300]
    assert _call(f"{base}/runs")[0] == 200  # the server answers on


def test_p12_a_file_declaring_20000_hparams_is_capped(server, tree):
    from tb_plus.query import hparams as hp_mod
    from tests.query.test_hparams import _write_tf_style

    _, base = server
    d = tree / "root" / "hp"
    many = {f"h{i:06d}": float(i) for i in range(20_000)}
    many["long_text"] = "x" * 50_000
    _write_tf_style(str(d / "bomb"), many)
    _write_tf_style(str(d / "ok"), {"lr": 0.1})
    assert _runs(base, d)[1] == ["bomb", "ok"]
    status, body = _call(f"{base}/runs?{_q(logdir=d)}")
    assert status == 200 and len(body) < 2 << 20  # 38 MB before
    cols = json.loads(body)["hparams"]
    assert len([n for n, v in cols.items() if v[0] is not None]) == hp_mod.MAX_PER_RUN
    assert len(cols["long_text"][0]) <= hp_mod.MAX_TEXT if "long_text" in cols else True
    assert cols["lr"][1] == 0.1


def test_p15_dotdot_answers_the_same_whatever_exists_outside(server, tree):
    _, base = server
    outside = tree / "outside15"
    (outside / "plain").mkdir(parents=True)
    (outside / "deep" / "er").mkdir(parents=True)
    os.symlink(outside / "deep" / "er", outside / "sym")  # realpath would follow this before '..'
    codes = {}
    for x in ("plain", "sym", "missing"):
        codes[x] = _call(f"{base}/runs?{_q(logdir=f'{outside}/{x}/../../root/a')}")[0]
    assert set(codes.values()) == {200}, codes  # '..' on the text: the same directory, root/a, each time


def test_p16_a_file_rewritten_in_place_with_as_many_tags_shows_the_new_names(tree, tmp_path_factory):
    d = tree / "root" / "p16"
    (d / "run").mkdir(parents=True)
    src = {}
    for label in ("old", "new"):
        out = str(tmp_path_factory.mktemp(label))
        w = tbx.SummaryWriter(out, filename_suffix=".x")
        for s in range(50):
            w.add_scalar(f"{label}/loss", float(s), s)
        w.close()
        src[label] = os.path.join(out, os.listdir(out)[0])
    live = d / "run" / "events.out.tfevents.1.host"
    shutil.copyfile(src["old"], live)
    tb = TensorBoard(str(d), str(tmp_path_factory.mktemp("cache")), "--load_fast", "false",
                     "--reload_interval", "1")
    try:
        tb.wait_for_plugin()
        base = f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus"
        tags = lambda: json.loads(_call(f"{base}/tags?{_q(run='run', under='')}")[1])  # noqa: E731
        assert _runs(base, None) == (200, ["run"])
        assert "old/loss" in json.dumps(tags())
        ino = os.stat(live).st_ino
        with open(live, "r+b") as f:  # the same path, the same inode, as many tags, other names
            f.truncate(0)
            f.write(open(src["new"], "rb").read())
        assert os.stat(live).st_ino == ino
        deadline = time.monotonic() + 60
        while "new/loss" not in json.dumps(tags()):  # picked up by a refresh (every second)
            assert time.monotonic() < deadline, "the rewritten file's tags never showed"
            time.sleep(0.2)
        assert "old/loss" not in json.dumps(tags())
    finally:
        tb.stop()
