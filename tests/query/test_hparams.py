"""tb_plus.query.hparams: session_start_info from tensorboardX's add_hparams (sub-runs) and TF-style (in the run)."""

import pytest

from tb_plus.query.hparams import parse_session_start, run_hparams

tbx = pytest.importorskip("tensorboardX")


def _write_tf_style(path, hparams):
    """session_start_info in the run itself, as TensorFlow's hparams API writes it (protos only, no TF)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    data = plugin_data_pb2.HParamsPluginData(version=0)
    for k, v in hparams.items():
        val = data.session_start_info.hparams[k]
        if isinstance(v, bool):
            val.bool_value = v
        elif isinstance(v, str):
            val.string_value = v
        else:
            val.number_value = v
    md = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="hparams", content=data.SerializeToString())
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
