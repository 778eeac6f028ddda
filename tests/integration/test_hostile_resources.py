"""Resources recycled (issue 18 item 4; review findings P-13 and P-14) against a real `tensorboard`
process: log directories opened from the tab are closed beyond a cap and when idle, an event file
is indexed once whatever ancestor directory is opened, and cycling a cheap parameter (`sep=`) of
/tags never evicts the tag tree every user's first view reads. Each attack runs while another
client asks /runs.

Threads and memory are read from /proc/<pid>/status, so these tests run on Linux only.
"""

import json
import os
import shutil
import threading
import time
import urllib.parse

import pytest

from tests.integration.test_hostile import MB, _error, _status, _while_busy, _write_events
from tests.integration.test_tensorboard_process import TensorBoard, _get

tbx = pytest.importorskip("tensorboardX")

DIRS = 120  # log directories opened one after another: well beyond the 64 kept open
MAX_OPEN = 64  # tb_plus.access.Registry's max_open
SUB_RUNS = ("a", "b")  # runs of <root>/exp, the subdirectory opened beside its ancestor
TAGS = 20_000  # scalar tags of one run (P-14)
TREE = "X-TB-Plus-Tag-Tree"
MEMO_PER_KIND = 16  # tb_plus.store.logdir.MEMO_PER_KIND: trees kept beside the default one  # /tags: whether the tag tree was built for the request or found in memory


def _threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line in /proc/<pid>/status")


def _write_run(path, steps=5):
    w = tbx.SummaryWriter(path)
    for s in range(steps):
        w.add_scalar("train/loss", 1.0 / (s + 1), s)
    w.close()


def _runs(base, logdir=None):
    q = "" if logdir is None else "?" + urllib.parse.urlencode({"logdir": logdir})
    status, _, body = _get(f"{base}/runs{q}", timeout=60)
    assert status == 200
    return json.loads(body)


def _poll_runs(base, logdir, want, deadline_s=60):
    """/runs of a directory opened by request, asked again until its runs are `want` (a directory
    chosen in the tab answers within a second with the indexing progress, then the tab polls)."""
    end = time.monotonic() + deadline_s
    while True:
        body = _runs(base, logdir)
        if sorted(body["runs"]["name"]) == sorted(want) or time.monotonic() > end:
            assert sorted(body["runs"]["name"]) == sorted(want), body
            return body
        time.sleep(0.2)  # polling the server's indexing; bounded by the deadline


def _open_dirs(base):
    status, _, body = _get(f"{base}/logdirs", timeout=30)
    assert status == 200
    return json.loads(body)["open"]


def _manifests(cache):
    return [d for d, _, names in os.walk(cache) if "manifest.json" in names]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """<root>/healthy, <root>/exp/{a,b} and DIRS directories <root>/dNNN each holding one run."""
    d = str(tmp_path_factory.mktemp("resources"))
    _write_run(os.path.join(d, "healthy"), steps=50)
    for run in SUB_RUNS:
        _write_run(os.path.join(d, "exp", run))
    template = str(tmp_path_factory.mktemp("template"))
    _write_run(template)
    (name,) = os.listdir(template)
    for i in range(DIRS):
        os.makedirs(os.path.join(d, f"d{i:03d}", "run"))
        shutil.copy(os.path.join(template, name), os.path.join(d, f"d{i:03d}", "run", name))
    return os.path.realpath(d)


def _event_files(root):
    return sum(1 for _, _, names in os.walk(root) for n in names if "tfevents" in n)


@pytest.fixture(scope="module")
def server(root, tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("cache"))
    tb = TensorBoard(root, cache, "--load_fast", "false", "--tb_plus_roots", root)
    try:
        tb.wait_for_plugin()
        base = f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus"
        assert "healthy" in _runs(base)["runs"]["name"]  # the default --logdir, indexed
        yield tb, base, cache
    finally:
        tb.stop()


def test_p13_ancestor_and_subdirectory_share_one_index(server, root):
    """Opening <root> and <root>/exp indexes each event file once: one manifest per file in the cache,
    and the subdirectory opens from its ancestor's index without reading an event file."""
    _, base, cache = server
    whole = _poll_runs(base, root, ["healthy", "exp/a", "exp/b"] + [f"d{i:03d}/run" for i in range(DIRS)])
    sub = _poll_runs(base, os.path.join(root, "exp"), list(SUB_RUNS))
    assert sub["progress"]["files_total"] == 0  # nothing indexed again
    assert len(_manifests(cache)) == _event_files(root) == DIRS + 1 + len(SUB_RUNS)
    i = whole["runs"]["name"].index("exp/a")
    j = sub["runs"]["name"].index("a")
    for col in ("last_step", "size", "files", "tags"):
        assert whole["runs"][col][i] == sub["runs"][col][j], col


def test_p13_opened_directories_are_capped_with_their_threads(server, root):
    """Opening DIRS directories one after another keeps at most MAX_OPEN open (each holds an indexing
    thread and its index's mappings): threads do not grow with the number opened, /runs of another
    client answers meanwhile, and memory stays bounded."""
    tb, base, _ = server
    pid = tb.proc.pid
    baseline = _threads(pid)
    before = _status(pid)

    def open_all():
        for i in range(DIRS):
            body = _runs(base, os.path.join(root, f"d{i:03d}"))
            assert body["runs"]["name"] in ([], ["run"])  # [] while its first index is not ready
        return True

    assert _while_busy(open_all, base) is True
    bound = baseline + MAX_OPEN + 20
    end = time.monotonic() + 30
    while _threads(pid) > bound and time.monotonic() < end:
        time.sleep(0.2)  # a closed directory's thread ends after the refresh it is in; bounded by the deadline
    assert _threads(pid) <= bound, (baseline, _threads(pid))  # one thread per directory opened: baseline + DIRS
    assert len(_open_dirs(base)) <= MAX_OPEN
    after = _status(pid)
    assert after["VmHWM"] - before["VmRSS"] < 300 * MB, (before, after)
    assert _poll_runs(base, os.path.join(root, "d000"), ["run"])  # a closed directory reopens


def test_p13_idle_directories_are_closed_and_reopen_from_their_index(root, tmp_path):
    tb = TensorBoard(root, str(tmp_path), "--load_fast", "false", "--tb_plus_roots", root,
                     "--tb_plus_idle_close_seconds", "1")
    try:
        tb.wait_for_plugin()
        base = f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus"
        a, b = os.path.join(root, "exp"), os.path.join(root, "d001")
        first = _poll_runs(base, a, list(SUB_RUNS))
        assert a in _open_dirs(base)
        end = time.monotonic() + 30
        while True:  # directories idle for a second are closed when another one is asked for
            assert _runs(base, b)["runs"]["name"] in ([], ["run"])
            if a not in _open_dirs(base) or time.monotonic() > end:
                break
            time.sleep(0.2)  # polling the server's state; bounded by the deadline
        assert a not in _open_dirs(base)
        assert root in _open_dirs(base)  # the default --logdir is never closed
        again = _poll_runs(base, a, list(SUB_RUNS))
        assert a in _open_dirs(base)
        assert again["progress"]["files_total"] == 0  # reopened from its index: no event file read again
        for col in ("name", "path", "last_step", "size", "files", "tags", "first_write", "last_event"):
            assert again["runs"][col] == first["runs"][col], col
    finally:
        tb.stop()


@pytest.fixture(scope="module")
def many_tags(tmp_path_factory):
    """A run with TAGS scalar tags (one step each, crafted in 20 events) beside a healthy run."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    d = str(tmp_path_factory.mktemp("many_tags"))
    _write_run(os.path.join(d, "healthy"))
    tags = [f"g{i % 40}/l{i % 7}.p{i % 11}-q{i % 13}:t{i}" for i in range(TAGS)]
    events = [event_pb2.Event(step=0, wall_time=1.0e9, summary=summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=t, simple_value=1.0) for t in tags[k:k + 1000]]))
        for k in range(0, TAGS, 1000)]
    _write_events(os.path.join(d, "many"), events)
    return d


SEPS = ["-", "_", ".", ":", "|", "+", "~", "=", ",", ";", "!", "@", "#", "%", "^", "&", "*", "(", ")",
        "[", "]", "{", "}", "<", ">", "?", "/.", "/-", "/:", ".-", ".:", "-:", "/.-", "/.:", "/-:", ".-:",
        "/.-:", "$", "'", "`"]


def test_p14_cycling_separators_keeps_the_shared_tag_tree(many_tags, tmp_path):
    """One client asks /tags with 40 separators (each a tree of TAGS tags, more than are kept) while
    another asks the default /tags and /runs: every answer is 200 and the default tree is answered
    from memory throughout; a separator beyond its bounds is refused."""
    tb = TensorBoard(many_tags, str(tmp_path), "--load_fast", "false")
    try:
        tb.wait_for_plugin()
        base = f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus"
        assert sorted(_runs(base)["runs"]["name"]) == ["healthy", "many"]

        def default_tags():
            status, headers, body = _get(f"{base}/tags", timeout=60)
            assert status == 200 and json.loads(body)["count"] == TAGS + 1  # train/loss of healthy
            return headers[TREE]

        end = time.monotonic() + 60
        while default_tags() != "memory" and time.monotonic() < end:
            time.sleep(0.2)  # built in the background after the first refresh; bounded by the deadline
        assert default_tags() == "memory"

        done = threading.Event()
        others = []

        def meanwhile():  # another client: the default tree and the run table, until the cycling ends
            while not done.is_set():
                others.append(default_tags())
                assert "healthy" in _runs(base)["runs"]["name"]
            return True

        result = {}
        t = threading.Thread(target=lambda: result.update(other=_catch(meanwhile)))
        t.start()
        built = []
        try:
            for sep in SEPS:
                status, headers, body = _get(f"{base}/tags?" + urllib.parse.urlencode({"sep": sep}), timeout=60)
                assert status == 200 and json.loads(body)["sep"] == sep
                built.append(headers[TREE])
        finally:
            done.set()
            t.join(120)
        assert not t.is_alive()
        assert result["other"] is True, result["other"]
        assert built == ["built"] * len(SEPS)  # each a new tree
        assert len(SEPS) > MEMO_PER_KIND
        assert others and set(others) == {"memory"}, others  # the shared tree never evicted
        # the same without the other client's requests keeping the default tree recently used
        for sep in SEPS[: MEMO_PER_KIND + 4]:
            assert _get(f"{base}/tags?" + urllib.parse.urlencode({"sep": sep}), timeout=60)[0] == 200
        assert default_tags() == "memory"

        for sep, shown in (("/////", "'/////'"), ("ab", "'ab'"), ("x" * 10_000, "separator characters"),
                           (" ", "' '")):
            code, text = _error(f"{base}/tags?" + urllib.parse.urlencode({"sep": sep}))
            assert code == 400 and shown in text, (sep, text[:300])
    finally:
        tb.stop()


def _catch(fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 (reported by the caller's assertion)
        return e
