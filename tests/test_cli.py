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


def _diag_logs(tmp_path):
    import math

    logdir = tmp_path / "logs"
    for name, nan_from in (("good", None), ("bad", 30)):
        w = tbx.SummaryWriter(str(logdir / name))
        for s in range(100):
            v = 2.0 / (1 + s / 10)
            w.add_scalar("train/loss", math.nan if nan_from is not None and s >= nan_from else v, s)
        w.close()
    return logdir


def _tb_plus(*args):
    """The installed console script, in a child process: what a CI pipeline runs."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("tb-plus", path=os.path.dirname(sys.executable)) or shutil.which("tb-plus")
    assert exe, "the tb-plus console script is installed with the package"
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_diagnose_exit_codes_for_ci(tmp_path):
    import json

    logdir = _diag_logs(tmp_path)
    cache = tmp_path / "cache"
    p = _tb_plus("diagnose", logdir, "--cache-dir", cache)
    assert p.returncode == 1, p.stderr  # an error finding, --fail-on error by default
    assert "[E] bad: Loss is NaN or Inf @ step 30-99" in p.stdout and "try:" in p.stdout
    assert "no findings: good" in p.stdout and "taken for supervised: " in p.stdout
    p = _tb_plus("diagnose", logdir, "--cache-dir", cache, "--run", "good", "--fail-on", "info")
    assert p.returncode == 0, p.stdout
    p = _tb_plus("diagnose", logdir, "--cache-dir", cache, "--fail-on", "never", "--json")
    assert p.returncode == 0
    report = json.loads(p.stdout)
    assert report["worst"] == "error" and report["failed"] is False
    (f,) = report["findings"]
    assert (f["run"], f["rule"], f["step"], f["severity"]) == ("bad", "nonfinite_loss", 30, "error")
    assert report["runs"]["good"] == {"error": 0, "warning": 0, "info": 0}
    assert report["kinds"] == {"bad": "supervised", "good": "supervised"}


def test_diagnose_usage_errors(tmp_path):
    logdir = _diag_logs(tmp_path)
    cache = tmp_path / "cache"
    assert _tb_plus("diagnose", tmp_path / "nope", "--cache-dir", cache).returncode == 2
    p = _tb_plus("diagnose", logdir, "--cache-dir", cache, "--run", "nope")
    assert p.returncode == 2 and "no run 'nope'" in p.stderr
    bad = tmp_path / "c.json"
    bad.write_text('{"thresholds": {"nope": 1}}')
    p = _tb_plus("diagnose", logdir, "--cache-dir", cache, "--config", bad)
    assert p.returncode == 2 and "unknown threshold 'nope'" in p.stderr
    p = _tb_plus("diagnose", logdir, "--cache-dir", cache, "--fail-on", "fatal")
    assert p.returncode == 2


def test_diagnose_config_disables_a_rule(tmp_path):
    logdir = _diag_logs(tmp_path)
    cfg = tmp_path / "c.json"
    cfg.write_text('{"disable": ["nonfinite_loss"]}')
    p = _tb_plus("diagnose", logdir, "--cache-dir", tmp_path / "cache", "--config", cfg)
    assert p.returncode == 0 and "nonfinite_loss" not in p.stdout
