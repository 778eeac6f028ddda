"""`tb-plus index` on a real log directory."""

import os

import pytest

from tb_plus import cli

tbx = pytest.importorskip("tensorboardX")


def test_index_prints_runs_tags_and_problems(tmp_path, capsys):
    logdir = tmp_path / "logs"
    w = tbx.SummaryWriter(str(logdir / "run1"))
    for s in range(5):
        w.add_scalar("a/b", s, s)
        w.add_scalar("c", s, s)
    w.close()
    (logdir / "run2").mkdir()
    (logdir / "run2" / "events.out.tfevents.1.x").write_bytes(b"not a record file at all")
    def contents():
        return {str(p): p.read_bytes() for p in sorted(logdir.rglob("*")) if p.is_file()}

    before = contents()
    rc = cli.main(["index", str(logdir), "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "runs: 2" in out
    assert "run1" in out and " 2 tags" in out
    assert "problems: 1" in out and "not_event_file" in out
    assert os.listdir(tmp_path / "cache")  # the index went to the cache dir
    assert contents() == before  # nothing written into the log directory


def test_index_rejects_a_missing_directory(tmp_path, capsys):
    assert cli.main(["index", str(tmp_path / "nope"), "--cache-dir", str(tmp_path)]) == 2
    assert "not a directory" in capsys.readouterr().err
