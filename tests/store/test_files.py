"""The store against files that change and files that are broken.

Event files are written by tensorboardX; broken ones are made by cutting and flipping bytes of
real files (the store itself never writes into a log directory).
"""

import os
import shutil
import struct

import numpy as np
import pytest

from tb_plus.store import Logdir
from tb_plus.store import indexer

tbx = pytest.importorskip("tensorboardX")


def write_scalars(logdir, steps, tag="loss", *, run=None):
    d = os.path.join(logdir, run) if run else logdir
    w = tbx.SummaryWriter(d, flush_secs=1)
    for s in steps:
        w.add_scalar(tag, float(s) * 0.5, s)
    w.close()
    (path,) = [os.path.join(d, f) for f in os.listdir(d) if "tfevents" in f]
    return path


def record_spans(data):
    """[(start, end)] of the TFRecords in `data` (framing only)."""
    spans, p = [], 0
    while p + 12 <= len(data):
        (n,) = struct.unpack_from("<Q", data, p)
        spans.append((p, p + 16 + n))
        p += 16 + n
    return spans


def snapshot(ld):
    return {
        run: {tag: ld.scalars(run, tag) for tag in ld.tags(run)}
        for run in ld.runs()
    }


@pytest.fixture
def dirs(tmp_path):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    return str(logdir), str(tmp_path / "cache")


def test_appended_records_are_picked_up_reading_only_new_bytes(dirs, tmp_path):
    logdir, cache = dirs
    full = write_scalars(str(tmp_path / "src"), range(100))
    data = open(full, "rb").read()
    spans = record_spans(data)
    cut = spans[40][1]
    live = os.path.join(logdir, os.path.basename(full))
    with open(live, "wb") as f:
        f.write(data[:cut])
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.scalars(".", "loss").step.tolist() == list(range(40))
    before = ld.stats["bytes_read"]
    with open(live, "ab") as f:  # the "writer" appends the rest
        f.write(data[cut:])
    ld.refresh()
    s = ld.scalars(".", "loss")
    assert s.step.tolist() == list(range(100))
    np.testing.assert_array_equal(s.value, np.arange(100) * 0.5)
    read = ld.stats["bytes_read"] - before
    assert len(data) - cut <= read <= len(data) - cut + indexer.HEAD_BYTES


def test_partial_trailing_record_waits_and_is_not_corruption(dirs, tmp_path):
    logdir, cache = dirs
    full = write_scalars(str(tmp_path / "src"), range(30))
    data = open(full, "rb").read()
    spans = record_spans(data)
    live = os.path.join(logdir, os.path.basename(full))
    for cut in (spans[20][0] + 5, spans[20][0] + 13, spans[20][1] - 1):  # header, payload, crc
        with open(live, "wb") as f:
            f.write(data[:cut])
        ld = Logdir(logdir, cache_dir=cache + str(cut))
        assert ld.scalars(".", "loss").step.tolist() == list(range(19))  # record 0 is file_version
        assert ld.problems() == []
        (st,) = ld.file_status()
        assert st["pending_bytes"] == cut - spans[20][0]
        with open(live, "ab") as f:
            f.write(data[cut:])
        ld.refresh()
        assert ld.scalars(".", "loss").step.tolist() == list(range(30))
        assert ld.problems() == []


def test_bad_payload_crc_skips_one_record_and_reports_it(dirs, tmp_path):
    logdir, cache = dirs
    full = write_scalars(str(tmp_path / "src"), range(50))
    data = bytearray(open(full, "rb").read())
    start, end = record_spans(data)[11]  # step 10
    data[start + 14] ^= 0xFF
    with open(os.path.join(logdir, os.path.basename(full)), "wb") as f:
        f.write(data)
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.scalars(".", "loss").step.tolist() == [s for s in range(50) if s != 10]
    (p,) = ld.problems()
    assert (p.kind, p.count, p.offset) == ("bad_crc", 1, start)


def test_corrupt_length_resynchronises_to_the_next_record(dirs, tmp_path):
    logdir, cache = dirs
    full = write_scalars(str(tmp_path / "src"), range(50))
    data = bytearray(open(full, "rb").read())
    spans = record_spans(data)
    start, end = spans[21]  # step 20
    data[start : start + 8] = struct.pack("<Q", 10**12)  # a huge, wrong length
    with open(os.path.join(logdir, os.path.basename(full)), "wb") as f:
        f.write(data)
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.scalars(".", "loss").step.tolist() == [s for s in range(50) if s != 20]
    (p,) = ld.problems()
    assert (p.kind, p.count, p.offset) == ("skipped_bytes", end - start, start)


def test_garbage_in_the_middle_is_skipped(dirs, tmp_path):
    logdir, cache = dirs
    full = write_scalars(str(tmp_path / "src"), range(50))
    data = open(full, "rb").read()
    start = record_spans(data)[30][0]
    junk = bytes(range(256)) * 3
    with open(os.path.join(logdir, os.path.basename(full)), "wb") as f:
        f.write(data[:start] + junk + data[start:])
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.scalars(".", "loss").step.tolist() == list(range(50))
    (p,) = ld.problems()
    assert (p.kind, p.count) == ("skipped_bytes", len(junk))


def test_unparsable_payload_with_valid_crc_is_reported(dirs, tmp_path):
    from tb_plus.store.scan import masked_crc

    logdir, cache = dirs
    full = write_scalars(str(tmp_path / "src"), range(5))
    data = open(full, "rb").read()
    bad = b"\xff\xff\xff"  # a truncated varint key: not an Event
    rec = struct.pack("<Q", len(bad))
    rec += struct.pack("<I", masked_crc(rec)) + bad + struct.pack("<I", masked_crc(bad))
    with open(os.path.join(logdir, os.path.basename(full)), "wb") as f:
        f.write(data + rec + data[record_spans(data)[1][0]:])
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.scalars(".", "loss").step.tolist() == list(range(5)) * 2
    (p,) = ld.problems()
    assert (p.kind, p.count, p.offset) == ("unparsable", 1, len(data))


def test_truncated_file_is_reindexed(dirs, tmp_path):
    logdir, cache = dirs
    full = write_scalars(str(tmp_path / "src"), range(60))
    data = open(full, "rb").read()
    live = os.path.join(logdir, os.path.basename(full))
    shutil.copy(full, live)
    ld = Logdir(logdir, cache_dir=cache)
    assert len(ld.scalars(".", "loss")) == 60
    with open(live, "r+b") as f:
        f.truncate(record_spans(data)[31][0])
    ld.refresh()
    assert ld.scalars(".", "loss").step.tolist() == list(range(30))


@pytest.mark.parametrize("how", ["rename", "in_place"])
def test_replaced_file_is_reindexed(dirs, tmp_path, how):
    logdir, cache = dirs
    a = write_scalars(str(tmp_path / "a"), range(10))
    b = write_scalars(str(tmp_path / "b"), range(100, 130))  # longer, other content
    live = os.path.join(logdir, "events.out.tfevents.1.host")
    shutil.copy(a, live)
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.scalars(".", "loss").step.tolist() == list(range(10))
    if how == "rename":
        shutil.copy(b, live + ".new")
        os.replace(live + ".new", live)
    else:
        with open(live, "r+b") as f:  # same inode, new bytes
            f.write(open(b, "rb").read())
    ld.refresh()
    assert ld.scalars(".", "loss").step.tolist() == list(range(100, 130))


def test_reopen_reads_only_the_cache(dirs):
    logdir, cache = dirs
    for run in ("a", "b/c"):
        write_scalars(logdir, range(200), run=run)
    first = Logdir(logdir, cache_dir=cache)
    want = snapshot(first)
    assert first.stats["bytes_read"] > 0
    again = Logdir(logdir, cache_dir=cache)
    got = snapshot(again)
    assert again.stats["bytes_read"] == 0
    assert again.stats["files_indexed"] == 0
    assert got.keys() == want.keys() == {"a", "b/c"}
    for run in want:
        for tag in want[run]:
            np.testing.assert_array_equal(got[run][tag].step, want[run][tag].step)
            np.testing.assert_array_equal(got[run][tag].value, want[run][tag].value)


def test_cache_is_invalidated_by_a_change(dirs, tmp_path):
    logdir, cache = dirs
    write_scalars(logdir, range(20), run="a")
    write_scalars(logdir, range(20), run="b")
    Logdir(logdir, cache_dir=cache).refresh()
    # new data in run a (a second file), a new run c; run b untouched
    write_scalars(str(tmp_path / "more"), range(20, 25))
    src = os.path.join(str(tmp_path / "more"), os.listdir(str(tmp_path / "more"))[0])
    shutil.copy(src, os.path.join(logdir, "a", "events.out.tfevents.9999999999.zz"))
    write_scalars(logdir, range(3), run="c")
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.runs() == ["a", "b", "c"]
    assert ld.scalars("a", "loss").step.tolist() == list(range(25))
    assert ld.stats["files_indexed"] == 2
    assert ld.stats["bytes_read"] == os.path.getsize(src) + os.path.getsize(
        os.path.join(logdir, "c", os.listdir(os.path.join(logdir, "c"))[0])
    )


def test_unreadable_empty_and_non_event_files_are_reported(dirs):
    logdir, cache = dirs
    write_scalars(logdir, range(5), run="good")
    os.makedirs(os.path.join(logdir, "bad"))
    open(os.path.join(logdir, "bad", "events.out.tfevents.1.empty"), "wb").close()
    with open(os.path.join(logdir, "bad", "events.out.tfevents.2.text"), "w") as f:
        f.write("this is not a TFRecord file\n" * 20)
    os.symlink("/nonexistent/target", os.path.join(logdir, "bad", "events.out.tfevents.3.gone"))
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.runs() == ["bad", "good"]
    assert ld.scalars("good", "loss").step.tolist() == list(range(5))
    kinds = {os.path.basename(p.path).split(".")[-1]: p.kind for p in ld.problems()}
    assert kinds == {"empty": "empty", "text": "not_event_file", "gone": "error"}
    assert ld.tags("bad") == []


def test_unreadable_by_permissions_is_reported(dirs):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    logdir, cache = dirs
    path = write_scalars(logdir, range(5))
    os.chmod(path, 0)
    try:
        ld = Logdir(logdir, cache_dir=cache)
        (p,) = ld.problems()
        assert p.kind == "error" and "Permission" in p.message
    finally:
        os.chmod(path, 0o644)


def test_small_chunks_and_records_larger_than_a_chunk(dirs, monkeypatch):
    logdir, cache = dirs
    w = tbx.SummaryWriter(logdir)
    rng = np.random.default_rng(0)
    for s in range(30):
        w.add_scalar("x", float(s), s)
        w.add_histogram("h", rng.normal(size=2000), s, bins=500)  # records of several KB
    w.close()
    whole = Logdir(logdir, cache_dir=cache + "1").refresh()  # before the patch
    monkeypatch.setattr(indexer, "CHUNK", 97)
    chunked = Logdir(logdir, cache_dir=cache + "2")
    for ld in (whole, chunked):
        assert ld.scalars(".", "x").step.tolist() == list(range(30))
        assert [t.step for t in ld.histograms(".", "h")] == list(range(30))
        assert ld.problems() == []
    assert len(chunked._run(".").files[0].m["segments"]) == 1


def test_many_tags_in_one_event(dirs):
    """100,000 tags written as one merged Summary (as TF1's merge_all does)."""
    from tensorboardX.proto.summary_pb2 import Summary

    logdir, cache = dirs
    n = 100_000
    w = tbx.SummaryWriter(logdir)
    for step in range(2):
        values = [Summary.Value(tag=f"layer{i % 100}/unit{i}/x", simple_value=i + step) for i in range(n)]
        w.file_writer.add_summary(Summary(value=values), step)
    w.close()
    ld = Logdir(logdir, cache_dir=cache)
    tags = ld.tags(".")
    assert len(tags) == n
    s = ld.scalars(".", "layer7/unit99907/x")
    assert s.step.tolist() == [0, 1] and s.value.tolist() == [99907.0, 99908.0]


def _restart_file(logdir):
    """tensorboardX events with SessionLog.START marks: the second START (at step 30) purges
    the points of the first session with step >= 30, as TensorBoard does."""
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    w = tbx.SummaryWriter(logdir)

    def start(step):
        w.file_writer.add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))

    start(0)
    for s in range(60):
        w.add_scalar("a", float(s), s)
        w.add_scalar("b", -float(s), s)
    start(30)
    for s in range(30, 80):
        w.add_scalar("a", float(s) + 0.5, s)
    w.close()
    (name,) = os.listdir(logdir)
    return os.path.join(logdir, name)


def _expected_after_restart():
    return list(range(30)) + list(range(30, 80)), [float(s) for s in range(30)] + [s + 0.5 for s in range(30, 80)]


@pytest.mark.parametrize("segment_values", [7, 1 << 20])
def test_session_restart_purges_and_compaction(dirs, monkeypatch, segment_values):
    logdir, cache = dirs
    monkeypatch.setattr(indexer, "SEGMENT_VALUES", segment_values)
    _restart_file(logdir)
    ld = Logdir(logdir, cache_dir=cache)
    steps, values = _expected_after_restart()
    s = ld.scalars(".", "a")
    assert s.step.tolist() == steps and s.value.tolist() == values
    assert ld.scalars(".", "b").step.tolist() == list(range(30))
    # cold indexing merges everything between the two START marks into one segment each
    assert len(ld._run(".").files[0].m["segments"]) <= 3


def test_appends_keep_few_segments_and_the_same_points(dirs, tmp_path, monkeypatch):
    logdir, cache = dirs
    src = _restart_file(str(tmp_path / "src"))
    data = open(src, "rb").read()
    live = os.path.join(logdir, os.path.basename(src))
    spans = record_spans(data)
    ld = Logdir(logdir, cache_dir=cache)
    open(live, "wb").close()
    for i in range(0, len(spans), 9):  # the writer appends 9 records at a time
        with open(live, "ab") as f:
            f.write(data[spans[i][0] : spans[min(i + 9, len(spans)) - 1][1]])
        ld.refresh()
    steps, values = _expected_after_restart()
    s = ld.scalars(".", "a")
    assert s.step.tolist() == steps and s.value.tolist() == values
    assert ld.scalars(".", "b").step.tolist() == list(range(30))
    nseg = len(ld._run(".").files[0].m["segments"])
    assert nseg <= 12, nseg  # ~25 refreshes, size-tiered merging keeps O(log n) segments
    files = [f for f in os.listdir(ld._run(".").files[0].cache) if f.startswith("seg-")]
    assert len(files) == nseg  # merged-away segments are deleted


def test_progress_and_background_indexing(dirs):
    logdir, cache = dirs
    paths = [write_scalars(logdir, range(300), run=r) for r in ("a", "b", "c")]
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.progress().files_total == 0  # nothing happens at construction
    seen = []
    ld._advance = (lambda orig: lambda n: (orig(n), seen.append(ld.progress())))(ld._advance)
    ld.start_background().join()
    p = ld.progress()
    total = sum(os.path.getsize(x) for x in paths)
    assert (p.files_done, p.files_total, p.bytes_done, p.bytes_total, p.indexing) == (3, 3, total, total, False)
    assert seen and all(q.indexing and q.bytes_total == total for q in seen)
    assert [q.bytes_done for q in seen] == sorted(q.bytes_done for q in seen)
    assert ld.runs() == ["a", "b", "c"]


def test_cache_built_without_crc_checks_is_rebuilt_when_checks_are_wanted(dirs):
    logdir, cache = dirs
    write_scalars(logdir, range(10))
    assert Logdir(logdir, cache_dir=cache, verify_crc=False).stats["bytes_read"] == 0
    fast = Logdir(logdir, cache_dir=cache, verify_crc=False)
    fast.refresh()
    again = Logdir(logdir, cache_dir=cache, verify_crc=False)
    again.refresh()
    assert again.stats["bytes_read"] == 0
    checked = Logdir(logdir, cache_dir=cache, verify_crc=True)
    checked.refresh()
    assert checked.stats["files_indexed"] == 1
    assert checked.scalars(".", "loss").step.tolist() == list(range(10))


def test_two_processes_indexing_one_cache_at_once(dirs):
    """Indexers in different processes that share a cache serialise per file (a file lock)."""
    import json
    import subprocess
    import sys

    logdir, cache = dirs
    for r in ("a", "b", "c"):
        write_scalars(logdir, range(3000), run=r)
    code = (
        "import json, sys; from tb_plus.store import Logdir; "
        "ld = Logdir(sys.argv[1], cache_dir=sys.argv[2], workers=1); ld.refresh(); "
        "print(json.dumps({r: ld.scalars(r, 'loss').step.tolist() for r in ld.runs()}))"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, logdir, cache], stdout=subprocess.PIPE, env=env, text=True)
        for _ in range(3)
    ]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    want = {r: list(range(3000)) for r in ("a", "b", "c")}
    assert outs == [want] * 3
    assert snapshot(Logdir(logdir, cache_dir=cache))["a"]["loss"].step.tolist() == list(range(3000))


def test_tensor_beyond_65536_values_in_one_event(dirs):
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.summary import histogram

    logdir, cache = dirs
    w = tbx.SummaryWriter(logdir)
    values = [Summary.Value(tag=f"s{i}", simple_value=i) for i in range(70_000)]
    values.append(histogram("last_hist", np.arange(10.0), "auto").value[0])
    w.file_writer.add_summary(Summary(value=values), 7)
    w.close()
    ld = Logdir(logdir, cache_dir=cache)
    (h,) = ld.histograms(".", "last_hist")
    assert h.step == 7 and h.numpy[:, 2].sum() == 10


@pytest.mark.parametrize("piece", [1, 37, 1 << 20])
def test_merged_segments_equal_one_segment(dirs, monkeypatch, piece):
    """Cold indexing in tiny segments, merged in blocks of `piece` values, reads back the same
    as indexing everything in one segment: tags of very different sizes, values and refs."""
    logdir, cache = dirs
    rng = np.random.default_rng(3)
    w = tbx.SummaryWriter(logdir)
    tags = [f"t{i}" for i in range(60)]
    for step in range(40):
        for tag in rng.choice(tags, size=rng.integers(1, 30), replace=False):
            for _ in range(1 if tag != "t0" else 5):  # t0 is much bigger than the others
                w.add_scalar(str(tag), float(rng.normal()), step)
        if step % 7 == 0:
            w.add_histogram("h", rng.normal(size=20), step)
    w.close()
    one = Logdir(logdir, cache_dir=cache + "one").refresh()  # before the patches: one segment
    monkeypatch.setattr(indexer, "SEGMENT_VALUES", 23)
    monkeypatch.setattr(indexer, "CHUNK", 300)
    monkeypatch.setattr(indexer, "PIECE", piece)
    many = Logdir(logdir, cache_dir=cache + "many")
    assert len(many._run(".").files[0].m["segments"]) == 1
    assert many.tags(".") == one.tags(".") and len(one.tags(".")) == 60
    for tag in one.tags("."):
        a, b = one.scalars(".", tag), many.scalars(".", tag)
        np.testing.assert_array_equal(a.step, b.step)
        np.testing.assert_array_equal(a.wall_time, b.wall_time)
        np.testing.assert_array_equal(a.value, b.value)
    assert [h.step for h in many.histograms(".", "h")] == list(range(0, 40, 7))


def test_background_refresh_loop_picks_up_appends_and_stops(dirs, tmp_path):
    import threading

    logdir, cache = dirs
    full = write_scalars(str(tmp_path / "src"), range(50))
    data = open(full, "rb").read()
    cut = record_spans(data)[20][1]
    live = os.path.join(logdir, os.path.basename(full))
    with open(live, "wb") as f:
        f.write(data[:cut])
    ld = Logdir(logdir, cache_dir=cache)
    first = threading.Event()  # a refresh has completed
    appended = threading.Event()  # the test has appended
    after_append = threading.Event()  # a refresh that started after the append has completed
    orig = ld.refresh

    def refresh():
        started_after_append = appended.is_set()
        out = orig()
        first.set()
        if started_after_append:
            after_append.set()
        return out

    ld.refresh = refresh
    ld.start_background(interval=0.01)
    assert first.wait(60)
    assert len(ld.scalars(".", "loss")) == 20
    with open(live, "ab") as f:
        f.write(data[cut:])
    # not "the next two refreshes": on a slow or busy machine several may finish between the first
    # one and the append, and be counted before the append was seen
    appended.set()
    assert after_append.wait(60)
    assert len(ld.scalars(".", "loss")) == 50
    ld.stop_background(timeout=60)
    assert ld._bg is None


def test_a_fifo_named_like_an_event_file_does_not_hang(dirs):
    logdir, cache = dirs
    write_scalars(logdir, range(3), run="ok")
    os.makedirs(os.path.join(logdir, "odd"))
    os.mkfifo(os.path.join(logdir, "odd", "events.out.tfevents.1.fifo"))
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.scalars("ok", "loss").step.tolist() == [0, 1, 2]
    (p,) = ld.problems()
    assert (p.run, p.kind, p.message) == ("odd", "error", "not a regular file")


def test_a_cache_inside_the_log_directory_is_refused(dirs):
    logdir, _ = dirs
    with pytest.raises(ValueError, match="inside the log directory"):
        Logdir(logdir, cache_dir=os.path.join(logdir, ".tb_plus_cache"))
    with pytest.raises(ValueError, match="inside the log directory"):
        Logdir(logdir, cache_dir=logdir)


def test_file_replaced_in_place_with_as_many_tags_shows_the_new_names(dirs, tmp_path):
    """Issue 18 P-16: the same path, the same inode, the same number of tags, other names."""
    logdir, cache = dirs
    old = write_scalars(str(tmp_path / "old"), range(50), tag="old/loss")
    new = write_scalars(str(tmp_path / "new"), range(60), tag="new/loss")
    live = os.path.join(logdir, "events.out.tfevents.1.host")
    shutil.copyfile(old, live)
    ld = Logdir(logdir, cache_dir=cache)
    assert ld.tags(".") == ["old/loss"]
    ino = os.stat(live).st_ino
    with open(live, "r+b") as f:  # rewritten through the same inode
        f.truncate(0)
        f.write(open(new, "rb").read())
    assert os.stat(live).st_ino == ino
    ld.refresh()
    assert ld.tags(".") == ["new/loss"]
    assert ld.scalars(".", "new/loss").step.tolist() == list(range(60))
    with pytest.raises(KeyError):
        ld.scalars(".", "old/loss")


def _manifests(cache):
    return sorted(os.path.relpath(d, cache) for d, _, names in os.walk(cache) if indexer.MANIFEST in names)


def test_a_file_opened_through_an_ancestor_is_indexed_once(dirs):
    """Issue 18 P-13: a log directory and its subdirectory, opened with one cache, share the index of
    each event file (keyed by where the file is, not by which directory was opened)."""
    logdir, cache = dirs
    for run in ("exp/a", "exp/b/c", "other"):
        write_scalars(logdir, range(50), run=run)
    root = Logdir(logdir, cache_dir=cache)
    want = snapshot(root)
    assert root.stats["files_indexed"] == 3
    os.symlink(os.path.join(logdir, "exp"), os.path.join(os.path.dirname(logdir), "exp_link"))
    for sub in (os.path.join(logdir, "exp"), os.path.join(os.path.dirname(logdir), "exp_link")):
        ld = Logdir(sub, cache_dir=cache)
        got = snapshot(ld)
        assert ld.stats["files_indexed"] == 0 and ld.stats["bytes_read"] == 0  # the ancestor's index
        assert sorted(got) == ["a", "b/c"]
        for run in got:
            np.testing.assert_array_equal(got[run]["loss"].step, want[f"exp/{run}"]["loss"].step)
            np.testing.assert_array_equal(got[run]["loss"].value, want[f"exp/{run}"]["loss"].value)
    assert len(_manifests(cache)) == 3  # one per event file


def test_ancestor_and_subdirectory_see_each_others_appends(dirs, tmp_path):
    logdir, cache = dirs
    full = write_scalars(str(tmp_path / "src"), range(100))
    data = open(full, "rb").read()
    cut = record_spans(data)[40][1]
    os.makedirs(os.path.join(logdir, "exp", "run"))
    live = os.path.join(logdir, "exp", "run", os.path.basename(full))
    with open(live, "wb") as f:
        f.write(data[:cut])
    root, sub = Logdir(logdir, cache_dir=cache), Logdir(os.path.join(logdir, "exp"), cache_dir=cache)
    assert root.scalars("exp/run", "loss").step.tolist() == list(range(40))
    assert sub.scalars("run", "loss").step.tolist() == list(range(40))
    with open(live, "ab") as f:
        f.write(data[cut:])
    sub.refresh()  # indexes the appended records; the ancestor then reads them from the shared index
    read = root.stats["bytes_read"]
    root.refresh()
    assert root.stats["files_indexed"] == 1  # the first index only: the append was indexed by sub
    assert root.scalars("exp/run", "loss").step.tolist() == sub.scalars("run", "loss").step.tolist() == list(range(100))
    assert root.stats["bytes_read"] == read and len(_manifests(cache)) == 1


def test_a_reset_planned_before_another_indexer_wrote_the_index_keeps_it(dirs):
    """Two directories holding one event file, both opened before it was indexed: the second
    indexer finds the first one's index (under the per-file lock) and goes on from it, rather
    than discarding segments the first directory may already read."""
    logdir, cache = dirs
    path = write_scalars(logdir, range(300), run="exp/run")
    root, sub = Logdir(logdir, cache_dir=cache), Logdir(os.path.join(logdir, "exp"), cache_dir=cache)
    sub._discover()
    task, m = sub._plan("run", "run/" + os.path.basename(path), path)
    assert m is None and task["reset"]  # planned against no index
    assert root.scalars("exp/run", "loss").step.tolist() == list(range(300))  # indexed meanwhile
    (f,) = root._run("exp/run").files
    segments = [s[0] for s in f.m["segments"]]
    res = indexer.index_file(task)
    assert res["bytes_read"] == 0
    assert all(os.path.exists(os.path.join(f.cache, s)) for s in segments)
    assert sub.scalars("run", "loss").step.tolist() == list(range(300))
