"""Logdir.frame against tbparse (the reference for a DataFrame of TensorBoard logs) and the store's own
series (TensorBoard's values: tests/store/test_writers_vs_multiplexer.py holds the store to the
multiplexer), on logs written by the real writers and on ../shared/wild-logs.

tbparse reads each event file with TensorBoard's EventAccumulator and sorts rows by (directory, tag, step)
stably; tb_plus keeps TensorBoard's written order. The comparisons therefore sort tb_plus's rows the same
stable way, which changes nothing where steps are written in increasing order (asserted separately)."""

import math
import os

import numpy as np
import pytest

from tests.store import writers as W

pd = pytest.importorskip("pandas")
tbparse = pytest.importorskip("tbparse")

WILD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                    "shared", "wild-logs")
BACKENDS = ("pandas", "polars", "pyarrow")


@pytest.fixture(scope="module")
def _written(tmp_path_factory):
    return {}


def _logs(name, _written, tmp_path_factory):
    if name in W.TF_WRITERS:
        pytest.importorskip("tensorflow")
    if name not in _written:
        logdir = tmp_path_factory.mktemp("frame_" + name)
        W.WRITERS[name](str(logdir))
        _written[name] = str(logdir)
    return _written[name]


def _open(logdir, tmp_path):
    from tb_plus.store import Logdir

    return Logdir(logdir, cache_dir=str(tmp_path / "cache"))


def _as_pandas(df):
    """A polars or pyarrow frame as pandas, categorical names as plain strings."""
    if not isinstance(df, pd.DataFrame):
        df = df.to_pandas()
    out = df.copy()
    for c in ("run", "tag"):
        if c in out:
            out[c] = out[c].astype(str)
    return out


def _run_of(dir_name):
    return "." if dir_name == "" else dir_name


def _reference_scalars(logdir, scalar_tags):
    """tbparse's scalar rows (run, tag, step, wall_time, value) sorted as tbparse sorts them. Scalars that
    tf.summary writes as rank-0 tensors are in tbparse's `tensors`; they are taken from there."""
    # not every event type: tbparse fails on text tensors of more than one string (a text matrix)
    r = tbparse.SummaryReader(logdir, extra_columns={"dir_name", "wall_time"}, event_types={"scalars", "tensors"})
    parts = []
    s = r.scalars
    if len(s):
        parts.append(pd.DataFrame({"run": s["dir_name"].map(_run_of), "tag": s["tag"], "step": s["step"],
                                   "wall_time": s["wall_time"], "value": s["value"].astype(float)}))
    try:
        t = r.tensors
    except Exception:  # noqa: BLE001 - tbparse without TensorFlow cannot read tensors
        t = pd.DataFrame()
    if len(t):
        runs = t["dir_name"].map(_run_of)
        keep = [(run, tag) in scalar_tags and np.ndim(v) == 0 for run, tag, v in zip(runs, t["tag"], t["value"])]
        t = t[keep]
        if len(t):
            parts.append(pd.DataFrame({"run": runs[keep], "tag": t["tag"], "step": t["step"],
                                       "wall_time": t["wall_time"], "value": [float(v) for v in t["value"]]}))
    if not parts:
        return pd.DataFrame({"run": [], "tag": [], "step": [], "wall_time": [], "value": []})
    ref = pd.concat(parts, ignore_index=True)
    return ref.sort_values(["run", "tag", "step"], kind="stable", ignore_index=True)


def _assert_rows_equal(ours, ref):
    ours = _as_pandas(ours).sort_values(["run", "tag", "step"], kind="stable", ignore_index=True)
    assert len(ours) == len(ref), (len(ours), len(ref))
    assert ours["run"].tolist() == ref["run"].tolist()
    assert ours["tag"].tolist() == ref["tag"].tolist()
    np.testing.assert_array_equal(ours["step"].to_numpy(np.int64), ref["step"].to_numpy(np.int64))
    np.testing.assert_array_equal(ours["wall_time"].to_numpy(np.float64), ref["wall_time"].to_numpy(np.float64))
    a, b = ours["value"].to_numpy(np.float64), ref["value"].to_numpy(np.float64)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    np.testing.assert_array_equal(a[ok], b[ok])
    np.testing.assert_array_equal(np.signbit(a[ok]), np.signbit(b[ok]))  # -0.0 stays -0.0


@pytest.mark.parametrize("writer", list(W.WRITERS))
def test_scalars_equal_tbparse(writer, _written, tmp_path_factory, tmp_path):
    logdir = _logs(writer, _written, tmp_path_factory)
    ld = _open(logdir, tmp_path)
    from tb_plus.frame import scalar_tags

    tags = {(run, t) for run in ld.runs() for t in scalar_tags(ld, run)}
    ref = _reference_scalars(logdir, tags)
    assert len(ref) > 0
    for backend in BACKENDS:
        _assert_rows_equal(ld.frame(backend=backend), ref)


@pytest.mark.parametrize("writer", ["torch", "tensorboardx", "root_and_nested"])
def test_rows_follow_the_store_series_in_tensorboards_order(writer, _written, tmp_path_factory, tmp_path):
    logdir = _logs(writer, _written, tmp_path_factory)
    ld = _open(logdir, tmp_path)
    df = ld.frame()
    assert list(df.columns) == ["run", "tag", "step", "wall_time", "value"]
    assert str(df["run"].dtype) == "category" and str(df["tag"].dtype) == "category"
    at = 0
    from tb_plus.frame import scalar_tags

    for run in ld.runs():
        for tag in scalar_tags(ld, run):
            s = ld.scalars(run, tag)
            block = df.iloc[at:at + len(s)]
            assert (block["run"] == run).all() and (block["tag"] == tag).all()
            np.testing.assert_array_equal(block["step"].to_numpy(), s.step)
            np.testing.assert_array_equal(block["wall_time"].to_numpy(), s.wall_time)
            np.testing.assert_array_equal(block["value"].to_numpy(), s.value)
            at += len(s)
    assert at == len(df)


def test_choosing_runs_and_tags(_written, tmp_path_factory, tmp_path):
    import re

    logdir = _logs("root_and_nested", _written, tmp_path_factory)
    ld = _open(logdir, tmp_path)
    assert set(ld.frame(runs="a/*")["run"].astype(str)) == {"a/b", "a/c"}
    assert set(ld.frame(runs=["z", "."])["run"].astype(str)) == {"z", "."}
    assert set(ld.frame(tags="re:ONLY_in_[12]")["tag"].astype(str)) == {"only_in_1", "only_in_2"}
    assert set(ld.frame(tags=re.compile(r"^metric$"))["tag"].astype(str)) == {"metric"}
    # an exact name takes that name only: "metric" is not a substring filter
    assert set(ld.frame(tags="metri")["tag"].astype(str)) == set()
    empty = ld.frame(runs="nothing-like-this")
    assert len(empty) == 0 and list(empty.columns) == ["run", "tag", "step", "wall_time", "value"]
    with pytest.raises(ValueError):
        ld.frame(tags="re:(unclosed")
    with pytest.raises(ValueError):
        ld.frame(kind="images")
    with pytest.raises(ValueError):
        ld.frame(backend="excel")


def test_pivot_equals_tbparse_pivot(_written, tmp_path_factory, tmp_path):
    logdir = _logs("root_and_nested", _written, tmp_path_factory)
    ld = _open(logdir, tmp_path)
    ref = tbparse.SummaryReader(logdir, pivot=True, extra_columns={"dir_name"}, event_types={"scalars"}).scalars
    ref = ref.assign(run=ref["dir_name"].map(_run_of)).sort_values(["run", "step"], kind="stable", ignore_index=True)
    for backend in BACKENDS:
        wide = _as_pandas(ld.frame(pivot=True, backend=backend))
        tags = [c for c in wide.columns if c not in ("run", "step", "wall_time")]
        assert tags == sorted(tags) and set(tags) == set(ref.columns) - {"step", "dir_name", "run"}
        assert wide["run"].tolist() == ref["run"].tolist()
        np.testing.assert_array_equal(wide["step"].to_numpy(), ref["step"].to_numpy())
        for t in tags:
            np.testing.assert_array_equal(wide[t].to_numpy(np.float64), ref[t].to_numpy(np.float64))


def test_pivot_keeps_the_last_value_of_a_step_and_bounds_its_size(_written, tmp_path_factory, tmp_path):
    logdir = _logs("torch_restart", _written, tmp_path_factory)
    ld = _open(logdir, tmp_path)
    long = ld.frame()
    wide = ld.frame(pivot=True)
    for run in ld.runs():
        for tag in sorted(set(long[long["run"] == run]["tag"].astype(str))):
            s = ld.scalars(run, tag)
            last = {}
            for st, v in zip(s.step.tolist(), s.value.tolist()):
                last[st] = v  # written order: the last write of a step wins
            rows = wide[wide["run"] == run]
            got = dict(zip(rows["step"].tolist(), rows[tag].tolist()))
            assert {k: v for k, v in got.items() if not math.isnan(v)} == last
    from tb_plus import frame as F

    old = F.MAX_PIVOT_CELLS
    F.MAX_PIVOT_CELLS = 3
    try:
        with pytest.raises(ValueError, match="fewer tags"):
            ld.frame(pivot=True)
    finally:
        F.MAX_PIVOT_CELLS = old


def test_x_axes(_written, tmp_path_factory, tmp_path):
    logdir = _logs("torch", _written, tmp_path_factory)
    ld = _open(logdir, tmp_path)
    df = ld.frame(tags=["loss", "lr"], x="tag:lr")
    lr = ld.scalars(".", "lr")
    loss = df[df["tag"] == "loss"]
    # the x of a point is lr's value at the point's step (both are written at every step here)
    np.testing.assert_array_equal(loss["x"].to_numpy(), lr.value[np.searchsorted(lr.step, loss["step"].to_numpy())])
    rel = ld.frame(tags="loss", x="relative")
    s = ld.scalars(".", "loss")
    np.testing.assert_array_equal(rel["relative"].to_numpy(), s.wall_time - s.wall_time[0])
    with pytest.raises(ValueError):
        ld.frame(x="epochs")


@pytest.mark.parametrize("writer", ["torch", "tensorboardx", "tf1"])
def test_histograms_equal_tbparse(writer, _written, tmp_path_factory, tmp_path):
    logdir = _logs(writer, _written, tmp_path_factory)
    ld = _open(logdir, tmp_path)
    ref = tbparse.SummaryReader(logdir, extra_columns={"dir_name", "wall_time", "min", "max", "num", "sum",
                                                       "sum_squares"}, event_types={"histograms"}).histograms
    ref = ref.assign(run=ref["dir_name"].map(_run_of)).sort_values(["run", "tag", "step"], kind="stable",
                                                                    ignore_index=True)
    assert len(ref) > 0
    for backend in BACKENDS:
        ours = _as_pandas(ld.frame(kind="histograms", backend=backend))
        ours = ours.sort_values(["run", "tag", "step"], kind="stable", ignore_index=True)
        assert list(ours.columns) == ["run", "tag", "step", "wall_time", "left", "right", "count"]
        assert ours["run"].tolist() == ref["run"].tolist() and ours["tag"].tolist() == ref["tag"].tolist()
        np.testing.assert_array_equal(ours["step"].to_numpy(), ref["step"].to_numpy())
        np.testing.assert_array_equal(ours["wall_time"].to_numpy(), ref["wall_time"].to_numpy())
        for mine, theirs in zip(ours.itertuples(), ref.itertuples()):
            # tbparse gives the written buckets; the frame, TensorBoard's [left, right, count] of them
            expected = _tensorboard_buckets(theirs)
            np.testing.assert_array_equal(np.asarray(mine.left), expected[:, 0])
            np.testing.assert_array_equal(np.asarray(mine.right), expected[:, 1])
            np.testing.assert_array_equal(np.asarray(mine.count), expected[:, 2])


def _tensorboard_buckets(row):
    """The buckets TensorBoard serves for a legacy histogram (data_compat), from tbparse's fields."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.data_compat import migrate_value
    from tensorboard.util import tensor_util

    histo = summary_pb2.HistogramProto(min=row.min, max=row.max, num=row.num, sum=row.sum,
                                       sum_squares=row.sum_squares, bucket_limit=list(row.limits),
                                       bucket=list(row.counts))
    value = migrate_value(summary_pb2.Summary.Value(tag=row.tag, histo=histo))
    return tensor_util.make_ndarray(value.tensor).reshape(-1, 3).astype(np.float64)


@pytest.mark.parametrize("writer", ["tf2", "torch"])
def test_tensors_equal_tbparse(writer, _written, tmp_path_factory, tmp_path):
    pytest.importorskip("tensorflow")  # tbparse reads tensors through TensorFlow
    logdir = _logs(writer, _written, tmp_path_factory)
    ld = _open(logdir, tmp_path)
    ref = tbparse.SummaryReader(logdir, extra_columns={"dir_name", "wall_time"}, event_types={"tensors"}).tensors
    ref = ref[[np.ndim(v) > 0 for v in ref["value"]]]  # rank-0 tensors are scalars: compared above
    ours = ld.frame(kind="tensors")
    hist = ld.frame(kind="histograms")
    mine = {}  # (run, tag, step) -> its values in written order (a restarted run writes a step twice)
    for r, t, s, v in zip(ours["run"].astype(str), ours["tag"].astype(str), ours["step"], ours["value"]):
        mine.setdefault((r, t, s), []).append(v)
    for r, t, s, a, b, c in zip(hist["run"].astype(str), hist["tag"].astype(str), hist["step"], hist["left"],
                                hist["right"], hist["count"]):
        if t in set(ref["tag"]):  # histograms written as tensors (tf.summary); tbparse has the legacy ones apart
            mine.setdefault((r, t, s), []).append(np.column_stack([a, b, c]))
    if writer == "tf2":
        # a tensor written without plugin metadata: TensorBoard serves it nowhere, the store does not index it
        assert "raw/tensor" in set(ref["tag"]) and "raw/tensor" not in set(ours["tag"].astype(str))
        ref = ref[ref["tag"] != "raw/tensor"]
    assert len(ref) > 0
    for d, t, s, v in zip(ref["dir_name"], ref["tag"], ref["step"], ref["value"]):
        key = (_run_of(d), t, s)
        assert mine.get(key), key
        np.testing.assert_array_equal(np.asarray(mine[key].pop(0), np.float64), np.asarray(v, np.float64))
    # what is left: text, which tbparse keeps apart from tensors (its `text` event type)
    assert {k[1] for k, v in mine.items() if v} <= {t for t in ours["tag"].astype(str) if t.startswith("text/")}


def test_tensor_frames_of_every_backend(_written, tmp_path_factory, tmp_path):
    pytest.importorskip("tensorflow")
    ld = _open(_logs("tf2", _written, tmp_path_factory), tmp_path)
    ours = ld.frame(kind="tensors")
    notes = ours[ours["tag"] == "text/notes"]
    assert [v.item().decode() for v in notes["value"]] == ["tf2 text %d 🙂" % i for i in range(3)]
    for backend in ("polars", "pyarrow"):
        other = _as_pandas(ld.frame(kind="tensors", backend=backend))
        assert len(other) == len(ours)
        text = other[other["tag"] == "text/matrix"].iloc[0]
        assert list(text["text"]) == ["a", "b", "c", "ü"] and list(text["shape"]) == [2, 2]


def test_hparams_equal_tbparse(_written, tmp_path_factory, tmp_path):
    pytest.importorskip("tensorflow")
    hp_dir = _logs("tensorboardx", _written, tmp_path_factory)
    hld = _open(hp_dir, tmp_path)
    ref = tbparse.SummaryReader(hp_dir, extra_columns={"dir_name"}, event_types={"hparams"}).hparams
    assert len(ref) == 3
    for backend in BACKENDS:
        table = _as_pandas(hld.frame(kind="hparams", backend=backend)).set_index("run")
        for d, name, value in zip(ref["dir_name"], ref["tag"], ref["value"]):
            assert table.loc[_run_of(d), name] == value


def test_a_missing_backend_names_the_package(monkeypatch, tmp_path):
    import builtins

    from tb_plus.store import Logdir

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "polars" or name.startswith("polars."):
            raise ImportError("no polars here")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    (tmp_path / "logs").mkdir()
    ld = Logdir(str(tmp_path / "logs"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ImportError, match="pip install polars"):
        ld.frame(backend="polars")


def test_wild_logs_equal_tbparse(tmp_path):
    if not os.path.isdir(WILD):
        pytest.skip(f"no real log directories at {WILD} (they live beside the checkout, not in it)")
    from tb_plus.frame import scalar_tags

    for name in sorted(os.listdir(WILD)):
        path = os.path.join(WILD, name)
        if not os.path.isdir(path):
            continue
        ld = _open(path, tmp_path / name)
        tags = {(run, t) for run in ld.runs() for t in scalar_tags(ld, run)}
        ref = _reference_scalars(path, tags)
        for backend in BACKENDS:
            try:
                _assert_rows_equal(ld.frame(backend=backend), ref)
            except AssertionError as e:
                raise AssertionError(f"{name} ({backend}): {e}") from None
