"""tb_plus.query.hparams: session_start_info from tensorboardX's add_hparams (sub-runs) and TF-style (in the run)."""

import pytest

from tb_plus.query.hparams import parse_session_start, run_hparams

tbx = pytest.importorskip("tensorboardX")


def _session_start(hparams) -> bytes:
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData(version=0)
    for k, v in hparams.items():
        val = data.session_start_info.hparams[k]
        if isinstance(v, bool):
            val.bool_value = v
        elif isinstance(v, str):
            val.string_value = v
        else:
            val.number_value = v
    return data.SerializeToString()


def _write_tf_style(path, hparams):
    """session_start_info in the run itself, as TensorFlow's hparams API writes it (protos only, no TF)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    md = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="hparams", content=_session_start(hparams))
    )
    summ = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="_hparams_/session_start_info", metadata=md)])
    w = EventFileWriter(path)
    w.add_event(event_pb2.Event(wall_time=1.0, step=0, summary=summ))
    w.close()


def test_sub_runs_pass_hparams_to_their_parent_and_tf_style_runs_keep_theirs(tmp_path):
    from tb_plus.store import Logdir

    for run, hp in (("a", {"lr": 0.1, "opt": "adam", "bn": True}), ("b", {"lr": 0.01, "seed": 3})):
        w = tbx.SummaryWriter(str(tmp_path / run))
        w.add_scalar("loss", 1.0, 0)
        w.add_hparams(hp, {"hparam/m": 1.0})
        w.close()
    _write_tf_style(str(tmp_path / "c"), {"lr": 1.0, "opt": "sgd", "flag": False})
    w = tbx.SummaryWriter(str(tmp_path / "d"))  # no hparams
    w.add_scalar("loss", 1.0, 0)
    w.close()
    ld = Logdir(str(tmp_path), cache_dir=str(tmp_path.parent / (tmp_path.name + "_cache")))
    hp = run_hparams(ld)
    assert hp["a"] == {"lr": 0.1, "opt": "adam", "bn": True}
    assert hp["b"] == {"lr": 0.01, "seed": 3.0}
    assert hp["c"] == {"lr": 1.0, "opt": "sgd", "flag": False}
    assert "d" not in hp
    subs = [r for r in ld.runs() if r.startswith("a/")]
    assert len(subs) == 1 and hp[subs[0]] == hp["a"]


def test_parse_rejects_garbage_and_ignores_other_data():
    from tensorboard.plugins.hparams import plugin_data_pb2

    assert parse_session_start(plugin_data_pb2.HParamsPluginData().SerializeToString()) == {}
    with pytest.raises(ValueError):
        parse_session_start(b"\xff\xff\xff")


def _ld(tmp_path):
    from tb_plus.store import Logdir

    return Logdir(str(tmp_path / "logs"), cache_dir=str(tmp_path / "cache"))


def test_keras_layout_sub_runs_inherit_their_runs_hparams(tmp_path):
    from tb_plus.query.hparams import hparams_of
    from tests.query.keras_logs import write_keras_layout

    runs = {"lr=0.1,seed=1": {"lr": 0.1, "seed": 1, "opt": "adam"}, "lr=0.01,seed=1": {"lr": 0.01, "seed": 1}}
    write_keras_layout(tmp_path / "logs", runs)
    ld = _ld(tmp_path)
    hp = run_hparams(ld)
    for run, want in runs.items():
        want = {k: (float(v) if not isinstance(v, str) else v) for k, v in want.items()}
        for r in (run, f"{run}/train", f"{run}/validation"):
            assert hp[r] == want, r
            assert hparams_of(ld, r) == want, r  # what the diagnostics read: the same rule


def test_own_over_nearest_ancestor_over_farther_ancestor_over_sub_runs(tmp_path):
    logs = tmp_path / "logs"
    _write_tf_style(str(logs), {"scope": "root", "lr": 9.0, "a": "root"})  # the log directory's own run '.'
    _write_tf_style(str(logs / "x"), {"lr": 1.0, "a": "x", "b": "x"})
    _write_tf_style(str(logs / "x" / "y"), {"b": "y", "c": "y"})
    _write_tf_style(str(logs / "x" / "y" / "z"), {"c": "z"})
    _write_tf_style(str(logs / "x" / "y" / "z" / "123.5"), {"d": "sub", "c": "sub"})  # add_hparams-style sub-run
    _write_tf_style(str(logs / "x" / "w"), {"e": "w"})  # a sibling: passes nothing to x/y
    ld = _ld(tmp_path)
    hp = run_hparams(ld)
    assert hp["x/y/z"] == {"scope": "root", "lr": 1.0, "a": "x", "b": "y", "c": "z", "d": "sub"}
    assert hp["x/y"] == {"scope": "root", "lr": 1.0, "a": "x", "b": "y", "c": "y"}
    # x: its own values win over those of its direct sub-runs y and w (c from y, e from w)
    assert hp["x"] == {"scope": "root", "lr": 1.0, "a": "x", "b": "x", "c": "y", "e": "w"}
    assert hp["x/w"] == {"scope": "root", "lr": 1.0, "a": "x", "b": "x", "e": "w"}
    assert hp["."] == {"scope": "root", "lr": 9.0, "a": "root"}


def test_work_is_linear_in_the_runs(monkeypatch):
    """3,000 runs (1,000 runs with train and validation sub-runs): run_hparams reads each run's own
    values once; hparams_of for every run with one run list builds the structure once."""
    import tb_plus.query.hparams as H

    runs = [r for i in range(1000) for r in (f"r{i}", f"r{i}/train", f"r{i}/validation")]
    reads = []

    class FakeLd:
        def runs(self):
            return list(runs)

    def own(ld, run):
        reads.append(run)
        return {"lr": float(run.split("/")[0][1:])} if "/" not in run else {}

    monkeypatch.setattr(H, "own_hparams", own)
    built = []
    real = H._Tree.__init__

    def counting(self, r):
        built.append(len(r))
        real(self, r)

    monkeypatch.setattr(H._Tree, "__init__", counting)
    H._tree_of.cache_clear()
    hp = H.run_hparams(FakeLd())
    assert len(reads) == len(runs) and hp["r7/validation"] == {"lr": 7.0} and len(built) == 1
    every = list(runs)
    reads.clear()
    for r in every:
        assert H.hparams_of(FakeLd(), r, every)["lr"] == float(r.split("/")[0][1:])
    assert len(built) == 1 and len(reads) <= 3 * len(runs)  # the run, its ancestor, its sub-runs


def test_hparams_read_from_a_file_are_capped(tmp_path):
    """Issue 18 P-12: 200,000 hparams in one upload made every /runs answer 38 MB."""
    import json

    from tb_plus.query import hparams as hp_mod
    from tests.routes.conftest import get_json, make_app
    from werkzeug import test as wtest

    many = {f"h{i:06d}": float(i) for i in range(20_000)}  # 200,000 in the review: the same cap
    many["long_text"] = "x" * 50_000
    _write_tf_style(str(tmp_path / "logs" / "bomb"), many)
    _write_tf_style(str(tmp_path / "logs" / "ok"), {"lr": 0.1, "opt": "adam"})
    client = wtest.Client(make_app(tmp_path / "logs", tmp_path / "cache"))
    body = get_json(client, "/runs")
    assert len(json.dumps(body)) < 2 << 20
    runs, cols = body["runs"]["name"], body["hparams"]
    bomb = {n: v[runs.index("bomb")] for n, v in cols.items() if v[runs.index("bomb")] is not None}
    assert len(bomb) == hp_mod.MAX_PER_RUN and bomb["h000000"] == 0.0  # the first names, sorted
    assert cols["lr"][runs.index("ok")] == 0.1 and cols["opt"][runs.index("ok")] == "adam"
    text = hp_mod.parse_session_start(_session_start({"long_text": "x" * 50_000}))["long_text"]
    assert len(text) == hp_mod.MAX_TEXT
