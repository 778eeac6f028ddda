"""Writer-equivalence tests: for logs written by each real writer, the store
must serve exactly what stock TensorBoard's ``plugin_event_multiplexer`` (read
through ``MultiplexerDataProvider``, nothing downsampled) serves.

Each writer's log directory is written once per module (TensorFlow's import and
the Keras fit are slow) and never modified; tests that mutate logs write their
own.  Every store gets its own ``cache_dir`` under ``tmp_path``.
"""

import math
import os
import re
import time

import numpy as np
import pytest

from . import writers as W

ALL_WRITERS = list(W.WRITERS)


def _close(ld):
    close = getattr(ld, "close", None)
    if callable(close):
        close()


@pytest.fixture(scope="module")
def _written(tmp_path_factory):
    """Cache of {writer name: (logdir, multiplexer view)}, filled lazily."""
    return {}


@pytest.fixture(scope="module", params=ALL_WRITERS)
def logs(request, _written, tmp_path_factory):
    """(writer name, logdir, multiplexer view) for each real writer."""
    name = request.param
    if name in W.TF_WRITERS:
        pytest.importorskip("tensorflow")
    if name not in _written:
        logdir = tmp_path_factory.mktemp("logs_" + name)
        W.WRITERS[name](str(logdir))
        _written[name] = (str(logdir), W.multiplexer_view(logdir))
    logdir, view = _written[name]
    return name, logdir, view


@pytest.fixture
def cache_dir(tmp_path):
    path = tmp_path / "cache"
    path.mkdir()
    return str(path)


# --------------------------------------------------------------------------
# The fixtures themselves: do the writers produce what the tests rely on?
# (These run against the multiplexer alone, no store needed.)
# --------------------------------------------------------------------------


def _steps(view, run, tag):
    return view[run]["scalars"][tag][0].tolist()


def _values(view, run, tag):
    return view[run]["scalars"][tag][2].tolist()


def _check_special_scalars(view, run=".", signed_zero=True):
    vals = _values(view, run, "special/values")
    assert math.isnan(vals[0]) and vals[1] == math.inf and vals[2] == -math.inf
    if signed_zero:
        assert math.copysign(1.0, vals[4]) == -1.0
    assert _steps(view, run, "special/steps") == W.SPECIAL_STEPS


def _sanity_torch(view):
    runs = sorted(view)
    hp_runs = [r for r in runs if re.fullmatch(r"\d+\.\d+", r)]
    assert len(hp_runs) == 1, runs
    assert set(runs) == {
        ".",
        "scalars_group_train",
        "scalars_group_val",
        "scalars_group_test",
        hp_runs[0],
    }
    root = view["."]
    _check_special_scalars(view)
    for tag in W.UNICODE_TAGS + ["loss", "lr", "new/style", "new/double", "new/style_nan"]:
        assert tag in root["scalars"], tag
    assert len(root["scalars"]["loss"][0]) == 60
    assert root["histograms"] == ["hist/constant", "hist/ints", "hist/normal"]
    assert {"text/notes/text_summary", "pr/curve"} <= set(root["tensors"])
    assert root["blobs"] == ["image/tiny"]
    assert root["tensors"]["hist/normal"][0][2].dtype == np.float32  # migrated legacy
    hp = view[hp_runs[0]]
    assert {
        "_hparams_/experiment",
        "_hparams_/session_start_info",
        "_hparams_/session_end_info",
    } <= set(hp["tensors"])
    assert set(hp["scalars"]) == {"hparam/accuracy", "hparam/loss"}
    for run in ("scalars_group_train", "scalars_group_val", "scalars_group_test"):
        assert list(view[run]["scalars"]) == ["scalars/group"]


def _sanity_torch_restart(view):
    assert sorted(view) == ["."]
    expected = list(range(10)) + list(range(5, 15))  # stock keeps both sessions
    assert _steps(view, ".", "loss") == expected
    assert _steps(view, ".", "acc") == expected
    assert _values(view, ".", "loss")[10] == 105.0


def _sanity_tensorboardx(view):
    assert sorted(view) == [".", "grp/a", "grp/b", "hp_session"]
    root = view["."]
    _check_special_scalars(view)
    # tensorboardX rewrites characters it considers illegal in tags.
    assert "émoji/_" in root["scalars"] and "损失/训练" in root["scalars"]
    assert root["histograms"] == ["hist/normal"]
    assert "text/notes/text_summary" in root["tensors"]
    assert "_hparams_/experiment" in view["hp_session"]["tensors"]


def _sanity_tf2(view):
    assert sorted(view) == [".", "restart", "second"]
    assert _steps(view, "restart", "loss") == list(range(10)) + list(range(5, 15))
    assert len(view["restart"]["tensors"]["h"]) == 20
    root = view["."]
    _check_special_scalars(view, signed_zero=False)
    for tag in W.UNICODE_TAGS + ["loss"]:
        assert tag in root["scalars"], tag
    assert len(root["scalars"]["loss"][0]) == 40
    assert root["histograms"] == ["hist/constant", "hist/empty", "hist/normal"]
    assert root["tensors"]["hist/normal"][0][2].dtype == np.float64
    assert {"text/notes", "text/matrix"} <= set(root["tensors"])
    # A tensor written without plugin metadata is invisible to TensorBoard.
    assert "raw/tensor" not in root["tensors"]
    assert _steps(view, "second", "loss") == list(range(10))


def _sanity_tf1(view):
    assert sorted(view) == [".", "restart"]
    root = view["."]
    _check_special_scalars(view)
    for tag in ("merged/a", "merged/b", "merged/c"):
        assert _steps(view, ".", tag) == list(range(10))
    assert root["histograms"] == ["histo/empty", "histo/legacy"]
    assert root["tensors"]["histo/legacy"][0][2].shape == (4, 3)
    assert root["tensors"]["histo/empty"][0][2].shape == (0, 3)
    # Second SessionLog.START at step 5 purges steps >= 5 of the first session.
    assert _steps(view, "restart", "loss") == list(range(15))
    assert _values(view, "restart", "loss")[4:6] == [4.0, 105.0]


def _sanity_keras(view):
    assert sorted(view) == ["train", "validation"]
    train = view["train"]
    assert {"epoch_loss", "epoch_mae"} <= set(train["scalars"])
    assert _steps(view, "train", "epoch_loss") == [0, 1]
    assert len(train["histograms"]) >= 2
    assert "keras" in train["blobs"]
    assert "evaluation_loss_vs_iterations" in view["validation"]["scalars"]


def _sanity_root_and_nested(view):
    assert sorted(view) == [".", "a/b", "a/c", "empty", "z"]
    assert view["empty"] == {"scalars": {}, "tensors": {}, "histograms": [], "blobs": []}
    assert set(view["."]["scalars"]) == {"metric", "only_in_0"}
    assert set(view["a/b"]["scalars"]) == {"metric", "only_in_1"}


SANITY = {
    "torch": _sanity_torch,
    "torch_restart": _sanity_torch_restart,
    "tensorboardx": _sanity_tensorboardx,
    "tf2": _sanity_tf2,
    "tf1": _sanity_tf1,
    "keras": _sanity_keras,
    "root_and_nested": _sanity_root_and_nested,
}


def test_fixture_writes_expected_series(logs):
    name, _, view = logs
    SANITY[name](view)


# --------------------------------------------------------------------------
# Store vs multiplexer
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "verify_crc, force_python",
    [(True, False), (False, False), (True, True)],
    ids=["crc", "nocrc", "pure-python"],
)
def test_store_matches_multiplexer(logs, cache_dir, verify_crc, force_python):
    """The pure-Python scanner (used when the C accelerator could not be built) must give the
    same answers as the C one."""
    name, logdir, expected = logs
    ld = W.assert_store_matches_multiplexer(
        logdir, cache_dir, expected=expected, verify_crc=verify_crc, force_python=force_python
    )
    _close(ld)


def test_reopen_from_cache_is_identical(logs, cache_dir):
    """A second store on the same logdir and cache_dir (reading back what the
    first one cached) must serve exactly the same data."""
    name, logdir, expected = logs
    first = W.open_store(logdir, cache_dir)
    first_view = W.store_view(first)
    _close(first)
    second = W.open_store(logdir, cache_dir)
    second_view = W.store_view(second)
    _close(second)
    W.assert_views_equal(expected, first_view, label="first open")
    W.assert_views_equal(first_view, second_view, label="reopen vs first open")
    W.assert_views_equal(expected, second_view, label="reopen")


def test_refresh_without_changes_is_stable(logs, cache_dir):
    name, logdir, expected = logs
    ld = W.open_store(logdir, cache_dir)
    before = W.store_view(ld)
    ld.refresh()
    after = W.store_view(ld)
    _close(ld)
    W.assert_views_equal(expected, after, label="after refresh()")
    W.assert_views_equal(before, after, label="refresh() vs before")


@pytest.mark.parametrize("workers", [1, 4])
def test_worker_count_does_not_change_results(workers, tmp_path, _written):
    if "torch" not in _written:
        logdir = tmp_path / "logs"
        W.write_torch(str(logdir))
        _written["torch"] = (str(logdir), W.multiplexer_view(logdir))
    logdir, expected = _written["torch"]
    cache = tmp_path / ("cache_w%d" % workers)
    cache.mkdir()
    ld = W.assert_store_matches_multiplexer(
        logdir, str(cache), expected=expected, workers=workers
    )
    _close(ld)


def test_refresh_picks_up_appended_data_and_new_runs(tmp_path):
    """Data appended after the store opened (a restarted writer in an existing
    run, and a brand-new run) is served after refresh(), as TensorBoard would
    serve it after a Reload()."""
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path / "logs"
    cache = tmp_path / "cache"
    cache.mkdir()
    W.write_root_and_nested(str(logdir))
    ld = W.open_store(str(logdir), str(cache))
    W.assert_views_equal(W.multiplexer_view(logdir), W.store_view(ld), "initial")

    time.sleep(1.05)  # new event files must sort after the existing ones
    w = SummaryWriter(log_dir=str(logdir / "a" / "b"), flush_secs=1)
    try:
        for s in range(6, 20):
            w.add_scalar("metric", -float(s), s)
        w.add_scalar("added_later", 3.5, 0)
    finally:
        w.close()
    w = SummaryWriter(log_dir=str(logdir / "new" / "run"), flush_secs=1)
    try:
        for s in range(5):
            w.add_scalar("metric", float(s), s)
    finally:
        w.close()
    ld.refresh()
    W.assert_views_equal(W.multiplexer_view(logdir), W.store_view(ld), "after refresh")
    _close(ld)


def test_live_writer_appending_to_same_file(tmp_path):
    """A writer still open: the store opened on flushed-but-unclosed files, then
    more records appended to the same files; refresh() must serve exactly what
    a fresh multiplexer serves."""
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path / "logs"
    cache = tmp_path / "cache"
    cache.mkdir()
    w = SummaryWriter(log_dir=str(logdir), flush_secs=1)
    try:
        for s in range(30):
            w.add_scalar("live/loss", 1.0 / (s + 1), s)
        w.add_histogram("live/hist", np.arange(10.0), 0)
        w.flush()
        ld = W.open_store(str(logdir), str(cache))
        W.assert_views_equal(W.multiplexer_view(logdir), W.store_view(ld), "open")
        for round_ in range(3):
            for s in range(30 + 10 * round_, 40 + 10 * round_):
                w.add_scalar("live/loss", 1.0 / (s + 1), s)
                w.add_scalar("live/new_tag_%d" % round_, float(s), s)
            w.add_histogram("live/hist", np.arange(10.0) * round_, round_ + 1)
            w.flush()
            ld.refresh()
            W.assert_views_equal(
                W.multiplexer_view(logdir), W.store_view(ld), "round %d" % round_
            )
    finally:
        w.close()
    ld.refresh()
    W.assert_views_equal(W.multiplexer_view(logdir), W.store_view(ld), "closed")
    _close(ld)
    # And a fresh store reading the (now complete) files back from the cache.
    ld2 = W.open_store(str(logdir), str(cache))
    W.assert_views_equal(W.multiplexer_view(logdir), W.store_view(ld2), "reopen")
    _close(ld2)


@pytest.mark.parametrize("cut", [1, 5, 13])
def test_truncated_last_record(cut, tmp_path):
    """A file whose last record is incomplete (writer killed mid-write, or
    caught mid-flush): TensorBoard serves every complete record before it.
    Only data is compared; whether the store also reports a problem is not
    asserted here."""
    logdir = tmp_path / "logs"
    W.write_root_and_nested(str(logdir))
    victim = [
        os.path.join(logdir, "a", "b", f)
        for f in os.listdir(logdir / "a" / "b")
        if "tfevents" in f
    ][0]
    size = os.path.getsize(victim)
    with open(victim, "r+b") as f:
        f.truncate(size - cut)
    cache = tmp_path / "cache"
    cache.mkdir()
    ld = W.open_store(str(logdir), str(cache))
    expected = W.multiplexer_view(logdir)
    # The cut record was the last one, the only record of tag "only_in_1".
    assert "only_in_1" not in expected["a/b"]["scalars"]
    assert len(expected["a/b"]["scalars"]["metric"][0]) == 12
    W.assert_views_equal(expected, W.store_view(ld))
    _close(ld)


def test_nothing_written_outside_cache_dir(tmp_path, monkeypatch, _written):
    """With an explicit cache_dir the store must not write under $HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    logdir = tmp_path / "logs"
    W.write_root_and_nested(str(logdir))
    cache = tmp_path / "cache"
    cache.mkdir()
    ld = W.open_store(str(logdir), str(cache))
    W.store_view(ld)
    ld.refresh()
    _close(ld)
    leaked = [os.path.join(r, f) for r, _, fs in os.walk(home) for f in fs]
    assert leaked == []


# --------------------------------------------------------------------------
# The comparison itself must be able to fail.
# --------------------------------------------------------------------------


def _copy_view(view):
    return {
        run: {
            "scalars": {t: tuple(a.copy() for a in v) for t, v in e["scalars"].items()},
            "tensors": {t: list(v) for t, v in e["tensors"].items()},
            "histograms": list(e["histograms"]),
            "blobs": list(e["blobs"]),
        }
        for run, e in view.items()
    }


def _mutations():
    def nan_to_zero(v):
        v["."]["scalars"]["special/values"][2][0] = 0.0

    def neg_zero_to_pos(v):
        v["."]["scalars"]["special/values"][2][4] = 0.0

    def drop_point(v):
        v["."]["scalars"]["loss"] = tuple(a[:-1] for a in v["."]["scalars"]["loss"])

    def shift_wall(v):
        v["."]["scalars"]["loss"][1][3] += 1e-6

    def step_off(v):
        v["."]["scalars"]["special/steps"][0][-1] -= 1

    def hist_dtype(v):
        data = v["."]["tensors"]["hist/normal"]
        data[0] = (data[0][0], data[0][1], data[0][2].astype(np.float64))

    def hist_value(v):
        data = v["."]["tensors"]["hist/normal"]
        arr = data[1][2].copy()
        arr[2, 2] += 1
        data[1] = (data[1][0], data[1][1], arr)

    def text_as_str(v):
        data = v["."]["tensors"]["text/notes/text_summary"]
        arr = np.array([x.decode("utf-8") for x in data[0][2]], dtype=object)
        data[0] = (data[0][0], data[0][1], arr)

    def extra_run(v):
        v["extra"] = v["."]

    def missing_tag(v):
        del v["."]["scalars"]["损失/训练"]

    def blob_missing(v):
        v["."]["blobs"] = []

    return [
        nan_to_zero,
        neg_zero_to_pos,
        drop_point,
        shift_wall,
        step_off,
        hist_dtype,
        hist_value,
        text_as_str,
        extra_run,
        missing_tag,
        blob_missing,
    ]


@pytest.mark.parametrize("mutate", _mutations(), ids=lambda f: f.__name__)
def test_comparison_detects(mutate, tmp_path, _written):
    if "torch" not in _written:
        logdir = tmp_path / "logs"
        W.write_torch(str(logdir))
        _written["torch"] = (str(logdir), W.multiplexer_view(logdir))
    expected = _written["torch"][1]
    assert W.compare_views(expected, _copy_view(expected)) == []
    mutated = _copy_view(expected)
    mutate(mutated)
    assert W.compare_views(expected, mutated) != []
