"""`tb-plus export` and `tb-plus query` on logs written by the real writers (PyTorch's and tensorboardX's)."""

import csv
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tb_plus import cli
from tb_plus.export import export_scalars
from tb_plus.store import Logdir

tbx = pytest.importorskip("tensorboardX")
torch_tb = pytest.importorskip("torch.utils.tensorboard")

ODD_RUN = 'odd, "quoted" ünï'
ODD_TAG = 'm,é"t'
NONFINITE = {3: math.nan, 4: math.inf, 5: -math.inf}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """(logdir, cache): torch/seed1 and torch/seed2 (PyTorch's writer: loss with NaN, +inf, -inf; acc;
    epoch), the odd-named run (tensorboardX: a duplicate step, a histogram), long (1000 points, 100 NaN)."""
    root = tmp_path_factory.mktemp("cli_export")
    logdir = root / "logs"
    for seed in (1, 2):
        w = torch_tb.SummaryWriter(str(logdir / "torch" / f"seed{seed}"))
        for s in range(12):
            w.add_scalar("loss", NONFINITE.get(s, 1.0 / (s + seed) + 0.1), s)
            w.add_scalar("acc", s / 7 * seed, s)
            w.add_scalar("epoch", s // 4, s)
        w.close()
    w = tbx.SummaryWriter(str(logdir / ODD_RUN))
    from tensorboardX.proto.summary_pb2 import Summary

    for s in range(9):  # add_scalar would clean the tag (',' and '"' become '_'): the summary as written
        w._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=ODD_TAG, simple_value=1e-30 * 3 ** s)]), s)
        w.add_scalar("loss", 2.0 ** -s, s)
    w.add_scalar("loss", 123.25, 8)  # a duplicate step: both points kept, in written order
    w.add_histogram("weights", np.arange(10.0), 0)
    w.close()
    w = tbx.SummaryWriter(str(logdir / "long"))
    for s in range(1000):
        w.add_scalar("loss", math.nan if s % 10 == 3 else math.sin(s / 50), s)
    w.close()
    return logdir, root / "cache"


def _ld(logs):
    logdir, cache = logs
    return Logdir(str(logdir), cache_dir=str(cache)).refresh()


def _main(logs, *args):
    logdir, cache = logs
    return cli.main([args[0], str(logdir), *map(str, args[1:]), "--cache-dir", str(cache)])


def _query(logs, capsys, *args):
    logdir, cache = logs
    rc = cli.main(["query", str(logdir), *map(str, args), "--cache-dir", str(cache)])
    cap = capsys.readouterr()
    return rc, json.loads(cap.out), cap.err


def _same_floats(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


# ---------------------------------------------------------------------------------------------- export


def test_parquet_equals_the_arrow_frame_in_blocks_of_7(logs, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    ld = _ld(logs)
    out = tmp_path / "s.parquet"
    rows = export_scalars(ld, str(out), block_points=7)
    want = ld.frame(backend="pyarrow")
    assert rows == want.num_rows == 3 * 12 * 2 + 9 + 9 + 1 + 1000
    assert pq.ParquetFile(str(out)).metadata.num_row_groups > 4  # many blocks, never a series split
    got = pq.read_table(str(out))
    assert got.column_names == ["run", "tag", "step", "wall_time", "value"]
    import pyarrow as pa

    assert pa.types.is_dictionary(got.schema.field("run").type) and pa.types.is_dictionary(got.schema.field("tag").type)
    for c in ("run", "tag"):
        assert got.column(c).to_pylist() == want.column(c).to_pylist()
    assert got.column("step").to_numpy().tolist() == want.column("step").to_numpy().tolist()
    for c in ("wall_time", "value"):
        assert _same_floats(got.column(c).to_numpy(), want.column(c).to_numpy())  # NaN, +-inf bit for bit
    v = got.column("value").to_numpy()
    assert np.isnan(v).sum() == 2 + 100 and np.isposinf(v).sum() == 2 and np.isneginf(v).sum() == 2
    assert os.listdir(tmp_path) == ["s.parquet"]  # no temporary file left


def _csv_float(text):
    return math.nan if text == "" else float(text)


def test_csv_round_trips_exactly_with_odd_names(logs, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert _main(logs, "export", "-o", out) == 0
    assert capsys.readouterr().err == ""  # stderr is no terminal: no progress line
    df = _ld(logs).frame()
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["run", "tag", "step", "wall_time", "value"]
    rows = rows[1:]
    assert [r[0] for r in rows] == list(df["run"].astype(str))
    assert [r[1] for r in rows] == list(df["tag"].astype(str))
    assert ODD_RUN in {r[0] for r in rows} and ODD_TAG in {r[1] for r in rows}
    assert '\n"odd, ""quoted"" ünï","m,é""t",0,' in out.read_text(encoding="utf-8")  # RFC 4180 quoting, UTF-8
    assert [int(r[2]) for r in rows] == df["step"].tolist()
    for i, c in ((3, "wall_time"), (4, "value")):
        got = np.array([_csv_float(r[i]) for r in rows])
        want = df[c].to_numpy()
        fin = np.isfinite(want)
        assert got[fin].tobytes() == want[fin].tobytes()  # repr-exact
        assert np.isnan(got[~fin]).all() and all(r[i] == "" for r, ok in zip(rows, fin) if not ok)
    # floats in their shortest exact form
    odd = [r for r in rows if r[1] == ODD_TAG]
    assert [r[4] for r in odd] == [repr(float(np.float32(1e-30 * 3 ** s))) for s in range(9)]


def test_jsonl_round_trips_with_null_for_nonfinite(logs, tmp_path):
    ld = _ld(logs)
    out = tmp_path / "s.jsonl"
    assert export_scalars(ld, str(out), runs="torch/*", x="relative", block_points=7) == 3 * 12 * 2
    df = ld.frame("torch/*", x="relative")
    recs = [json.loads(line) for line in open(out, encoding="utf-8")]
    assert list(recs[0]) == ["run", "tag", "step", "wall_time", "value", "relative"]
    assert [(r["run"], r["tag"], r["step"]) for r in recs] == list(zip(df["run"].astype(str), df["tag"].astype(str),
                                                                      df["step"]))
    for c in ("wall_time", "value", "relative"):
        want = df[c].to_numpy()
        got = np.array([math.nan if r[c] is None else r[c] for r in recs])
        fin = np.isfinite(want)
        assert got[fin].tobytes() == want[fin].tobytes()
        assert all(r[c] is None for r, ok in zip(recs, fin) if not ok)
    assert sum(r["value"] is None for r in recs) == 6  # NaN, +inf, -inf in each torch run


def test_run_tag_and_x_options_choose_like_frame(logs, tmp_path):
    pd = pytest.importorskip("pandas")
    out = tmp_path / "s.csv"
    assert _main(logs, "export", "-o", out, "--run", "re:SEED", "--run", "long", "--tag", "lo*", "--tag", "acc",
                 "--x", "tag:epoch") == 0
    got = pd.read_csv(out, keep_default_na=False, na_values={"x": [""], "value": [""]})
    want = _ld(logs).frame(["re:SEED", "long"], ["lo*", "acc"], x="tag:epoch")
    assert list(got.columns) == ["run", "tag", "step", "wall_time", "value", "x"]
    assert got["run"].tolist() == list(want["run"].astype(str))
    assert set(got["run"]) == {"torch/seed1", "torch/seed2", "long"} and set(got["tag"]) == {"loss", "acc"}
    assert got["tag"].tolist() == list(want["tag"].astype(str))
    assert _same_floats(got["x"], want["x"])  # epoch at each step; NaN where the run has no epoch (long)
    assert np.isnan(got["x"][got["run"] == "long"]).all()
    assert got["x"][got["run"] == "torch/seed1"].tolist()[:12] == [s // 4 for s in range(12)]


def test_format_option_overrides_the_extension(logs, tmp_path):
    out = tmp_path / "points.txt"
    assert _main(logs, "export", "-o", out, "--format", "jsonl", "--run", "long") == 0
    assert len(open(out).read().splitlines()) == 1000
    pq = pytest.importorskip("pyarrow.parquet")
    assert _main(logs, "export", "-o", tmp_path / "p.pq", "--run", "long") == 0
    assert pq.read_table(str(tmp_path / "p.pq")).column("step").to_pylist() == list(range(1000))


def test_failure_leaves_no_file_and_keeps_an_old_output(logs, tmp_path, monkeypatch):
    from tb_plus import export

    out = tmp_path / "s.csv"
    out.write_text("old")
    calls = []

    def boom(self, cols):
        calls.append(len(cols["step"]))
        if len(calls) == 2:
            raise OSError("disk full")
        self.f.write(b"x\n")

    monkeypatch.setattr(export._CsvWriter, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        export_scalars(_ld(logs), str(out), block_points=7)
    assert os.listdir(tmp_path) == ["s.csv"] and out.read_text() == "old"


def test_progress_goes_to_the_given_stream(logs, tmp_path):
    buf = io.StringIO()
    export_scalars(_ld(logs), str(tmp_path / "s.csv"), block_points=7, progress=buf)
    text = buf.getvalue()
    assert "1,091 / 1,091 points (100%)" in text and text.endswith("\n") and text.count("\r") > 4


def test_export_exit_codes(logs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "s.csv"
    assert cli.main(["export", str(tmp_path / "nope"), "-o", str(out)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert _main(logs, "export", "-o", tmp_path / "s.xlsx") == 2
    assert "extension" in capsys.readouterr().err
    assert _main(logs, "export", "-o", out, "--format", "xml") == 2
    assert _main(logs, "export", "-o", out, "--tag", "re:(") == 2
    assert "regular expression" in capsys.readouterr().err
    assert _main(logs, "export", "-o", out, "--x", "epoch") == 2
    assert _main(logs, "export", "-o", tmp_path, "--format", "csv") == 2
    assert "is a directory" in capsys.readouterr().err
    assert _main(logs, "export", "-o", out, "--run", "nothing*") == 1
    assert "nothing written" in capsys.readouterr().err
    assert _main(logs, "export", "-o", out, "--tag", "weights") == 1  # a histogram, not a scalar
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert _main(logs, "export", "-o", tmp_path / "s.parquet") == 2
    assert "pyarrow" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------- query


def test_query_runs(logs, capsys):
    ld = _ld(logs)
    rc, rep, _ = _query(logs, capsys, "runs", "--live-seconds", 1e9)
    assert rc == 0 and rep["logdir"] == str(logs[0]) and rep["live_seconds"] == 1e9
    assert [r["name"] for r in rep["runs"]] == ld.runs()
    for r in rep["runs"]:
        info = ld.run_info(r["name"])
        assert r["status"] == "live"
        for k in ("last_step", "last_write", "first_write", "last_event", "size", "files", "scalar_tags"):
            assert r[k] == getattr(info, k), k
        tags = ld.tags(r["name"])
        assert list(r["last"]) == tags and r["last_left_out"] == 0
        for t in tags:
            s = ld.scalars(r["name"], t)
            v = float(s.value[-1])
            assert r["last"][t] == {"step": int(s.step[-1]), "value": v if math.isfinite(v) else None}
    odd = next(r for r in rep["runs"] if r["name"] == ODD_RUN)
    assert odd["last"]["loss"] == {"step": 8, "value": 123.25}  # the last written, not the first at step 8
    rc, rep, _ = _query(logs, capsys, "runs", "--run", "torch/*", "--max-tags", 1, "--live-seconds", 1e-9,
                        "--stale-seconds", 1e-9)
    assert rc == 0 and [r["name"] for r in rep["runs"]] == ["torch/seed1", "torch/seed2"]
    assert all(r["status"] == "finished" and list(r["last"]) == ["acc"] and r["last_left_out"] == 2
               for r in rep["runs"])


def test_query_tags(logs, capsys):
    rc, rep, _ = _query(logs, capsys, "tags")
    assert rc == 0 and rep["kind"] == "scalars"
    assert rep["runs"] == [{"run": "long", "tags": ["loss"]}, {"run": ODD_RUN, "tags": ["loss", ODD_TAG]},
                           {"run": "torch/seed1", "tags": ["acc", "epoch", "loss"]},
                           {"run": "torch/seed2", "tags": ["acc", "epoch", "loss"]}]
    rc, rep, _ = _query(logs, capsys, "tags", "re:^(acc|epoch)$", "--run", "*seed2")
    assert rep["runs"] == [{"run": "torch/seed2", "tags": ["acc", "epoch"]}]
    rc, rep, _ = _query(logs, capsys, "tags", "--kind", "histograms")
    assert rc == 0 and rep == {"logdir": str(logs[0]), "kind": "histograms",
                               "runs": [{"run": ODD_RUN, "tags": ["weights"]}]}


def test_query_stats_against_numpy(logs, capsys):
    ld = _ld(logs)
    rc, rep, _ = _query(logs, capsys, "stats", "--tag", "loss")
    assert rc == 0 and [(s["run"], s["tag"]) for s in rep["stats"]] == [(r, "loss") for r in ld.runs()]
    for st in rep["stats"]:
        s = ld.scalars(st["run"], "loss")
        v = s.value
        ok = ~np.isnan(v)
        i = int(np.flatnonzero(v == np.min(v[ok]))[0])
        j = int(np.flatnonzero(v == np.max(v[ok]))[0])
        fin = lambda x: float(x) if math.isfinite(x) else None  # noqa: E731
        assert st == {"run": st["run"], "tag": "loss", "points": len(s), "first_step": int(s.step[0]),
                      "last_step": int(s.step[-1]), "last": fin(v[-1]), "min": fin(v[i]), "min_step": int(s.step[i]),
                      "max": fin(v[j]), "max_step": int(s.step[j]), "nan": int((~ok).sum()),
                      "inf": int(np.isinf(v).sum())}
    seed1 = next(s for s in rep["stats"] if s["run"] == "torch/seed1")
    assert (seed1["nan"], seed1["inf"], seed1["min_step"], seed1["max_step"]) == (1, 2, 5, 4)  # -inf, +inf
    long = next(s for s in rep["stats"] if s["run"] == "long")
    assert long["nan"] == 100 and long["max"] == max(float(np.float32(math.sin(s / 50))) for s in range(1000) if s % 10 != 3)


def test_query_series_bound_and_values(logs, capsys):
    ld = _ld(logs)
    s = ld.scalars("long", "loss")
    for points in (1, 3, 8, 50, 100):
        rc, rep, _ = _query(logs, capsys, "series", "--tag", "loss", "--run", "long", "--points", points)
        (ser,) = rep["series"]
        assert rc == 0 and rep["points"] == points and ser["total"] == 1000
        assert 1 <= ser["shown"] == len(ser["x"]) == len(ser["y"]) <= points
        assert ser["x"] == sorted(ser["x"]) and ser["x"][-1] == 999  # the last point is kept
        for x, y in zip(ser["x"], ser["y"]):  # every shown point is the series' own
            want = float(s.value[x])
            assert y == (want if math.isfinite(want) else None)
    rc, rep, _ = _query(logs, capsys, "series", "--tag", "loss", "--run", "torch/seed1", "--x", "relative")
    (ser,) = rep["series"]
    t = ld.scalars("torch/seed1", "loss")
    assert ser["shown"] == 12 and ser["x"] == (t.wall_time - t.wall_time[0]).tolist()
    assert ser["y"][3:6] == [None, None, None] and ser["y"][:3] == t.value[:3].tolist()
    rc, rep, _ = _query(logs, capsys, "series", "--tag", "acc", "--x", "tag:epoch")
    assert [(r["run"], r["x"]) for r in rep["series"]] == [(f"torch/seed{i}", [s // 4 for s in range(12)])
                                                          for i in (1, 2)]


def test_query_errors_are_json_with_exit_codes(logs, tmp_path, capsys):
    for args, code, words in (
        (["series", "--tag", "loss", "--points", 0], 2, "points"),
        (["series", "--tag", "loss", "--points", 100_001], 2, "points"),
        (["series", "--tag", "loss", "--x", "epoch"], 2, "x must be"),
        (["stats", "--tag", "re:("], 2, "regular expression"),
        (["stats", "--tag", "nothing"], 1, "no tag matched"),
        (["tags", "nothing*"], 1, "no tag matched"),
        (["runs", "--run", "nothing"], 1, "no run matched"),
    ):
        rc, rep, err = _query(logs, capsys, *args)
        assert rc == code and list(rep) == ["error"] and words in rep["error"] and words in err, args
    assert cli.main(["query", str(tmp_path / "nope"), "runs"]) == 2
    assert "not a directory" in json.loads(capsys.readouterr().out)["error"]


def test_module_entry_point_in_a_child_process(logs):
    logdir, cache = logs
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "tb_plus.cli", "query", str(logdir), "stats", "--tag", "epoch",
                        "--cache-dir", str(cache)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert [(s["run"], s["points"], s["max"], s["max_step"]) for s in rep["stats"]] == [
        ("torch/seed1", 12, 2.0, 8), ("torch/seed2", 12, 2.0, 8)]
