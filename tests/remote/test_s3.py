"""Log directories on S3, against a real S3-compatible HTTP server on loopback (moto's), through
s3fs: listing, ranged reads of grown objects, request counts and budget, the roots boundary, a
shared index, a crashed index writer, and a real tensorboard process charting a run from S3."""

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")
tbx = pytest.importorskip("tensorboardX")

from tb_plus.store import Logdir  # noqa: E402
from tests.remote.s3server import S3Server  # noqa: E402

BUCKET = "tbplus"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The server, and an environment (this process's, inherited by the processes the tests start)
    where botocore sees only it: no AWS_* variable of the user's (a profile, a region, an
    AWS_ENDPOINT_URL_S3 that would win over AWS_ENDPOINT_URL, a session token) and no ~/.aws files."""
    server = S3Server().start()
    no_files = tmp_path_factory.mktemp("no_aws_config")
    with pytest.MonkeyPatch.context() as mp:
        for k in [k for k in os.environ if k.startswith("AWS_")]:
            mp.delenv(k)
        mp.setenv("AWS_CONFIG_FILE", str(no_files / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(no_files / "credentials"))
        for k, v in server.env().items():
            mp.setenv(k, v)
        server.fs().mkdir(BUCKET)
        yield server
        server.stop()


def write_run(local, run, steps, start=0, tag="train/loss"):
    """Real event bytes (tensorboardX); returns the file path."""
    w = tbx.SummaryWriter(os.path.join(local, run), flush_secs=3600)
    for s in range(start, start + steps):
        w.add_scalar(tag, 1.0 / (s + 1), s)
    w.close()
    (path,) = [os.path.join(os.path.join(local, run), f) for f in os.listdir(os.path.join(local, run))]
    return path


def values(ld, run, tag="train/loss"):
    s = ld.scalars(run, tag)
    return s.step.tolist(), s.value.tolist()


def test_listed_read_and_unchanged_polls_cost_one_listing(s3, tmp_path):
    local = tmp_path / "logs"
    for run in ("a", "b/c"):
        write_run(str(local), run, 500)
    s3.upload_tree(str(local), f"{BUCKET}/t1")
    ref = Logdir(str(local), cache_dir=str(tmp_path / "ref")).refresh()
    s3.reset()
    ld = Logdir(f"s3://{BUCKET}/t1", cache_dir=str(tmp_path / "cache")).refresh()
    assert ld.runs() == ref.runs() == ["a", "b/c"]
    for run in ld.runs():
        assert values(ld, run) == values(ref, run)
    got = s3.snapshot()
    assert got.get("list") == 1 and got.get("get") == 2, got  # one listing, one read per (small) object
    assert ld.remote.requests()["requests"] == got["requests"]
    s3.reset()
    ld.refresh()
    ld.refresh()
    assert s3.snapshot() == {"list": 2, "requests": 2}  # an idle poll: one listing, nothing read
    info = ld.run_info("b/c")
    assert info.path == f"s3://{BUCKET}/t1/b/c" and info.last_step == 499


def test_grown_object_read_from_its_last_offset(s3, tmp_path):
    local = tmp_path / "logs"
    w = tbx.SummaryWriter(str(local / "r"), flush_secs=3600)
    for s in range(300):
        w.add_scalar("loss", float(s), s)
    w.flush()
    (name,) = os.listdir(local / "r")
    s3.upload_tree(str(local), f"{BUCKET}/t2")
    ld = Logdir(f"s3://{BUCKET}/t2", cache_dir=str(tmp_path / "cache")).refresh()
    n0 = len(ld.scalars("r", "loss"))
    size0 = os.path.getsize(local / "r" / name)
    for s in range(300, 400):
        w.add_scalar("loss", float(s), s)
    w.close()
    s3.upload_tree(str(local), f"{BUCKET}/t2")  # object stores have no append: the writer re-uploads
    s3.reset()
    ld.refresh()
    assert ld.scalars("r", "loss").value.tolist() == [float(s) for s in range(400)] and n0 < 400
    got = s3.snapshot()
    assert got == {"list": 1, "get": 2, "requests": 3}, got  # the listing, the first bytes, the new bytes
    ranges = [r for _, r in s3.gets]
    assert ranges[0].startswith("bytes=0-")  # the first bytes' CRC: grown, or replaced?
    first, last = (int(x) for x in ranges[1].split("=")[1].split("-"))
    assert first == size0 and last == os.path.getsize(local / "r" / name) - 1  # the new bytes only


def test_replaced_object_is_indexed_again(s3, tmp_path):
    local = tmp_path / "logs"
    write_run(str(local), "r", 200)
    s3.upload_tree(str(local), f"{BUCKET}/t3")
    ld = Logdir(f"s3://{BUCKET}/t3", cache_dir=str(tmp_path / "cache")).refresh()
    fs = s3.fs()
    (key,) = fs.find(f"{BUCKET}/t3/r")
    # another writer's bytes under the same name, longer: the first bytes differ -> index from 0
    other = tmp_path / "other"
    path = write_run(str(other), "r", 400, tag="other/loss")
    fs.pipe_file(key, open(path, "rb").read())
    ld.refresh()
    assert ld.tags("r") == ["other/loss"] and len(ld.scalars("r", "other/loss")) == 400


def test_shared_index_second_server_reads_no_event_bytes(s3, tmp_path):
    local = tmp_path / "logs"
    for run in ("x", "y"):
        write_run(str(local), run, 1000)
    s3.upload_tree(str(local), f"{BUCKET}/t4")
    shared = str(tmp_path / "shared-cache")  # a shared filesystem both servers mount
    a = Logdir(f"s3://{BUCKET}/t4", cache_dir=shared).refresh()
    s3.reset()
    # another server process opens the same bucket with the same cache
    p = subprocess.run([sys.executable, "-m", "tb_plus.cli", "index", f"s3://{BUCKET}/t4", "--cache-dir", shared],
                       capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert p.returncode == 0, p.stderr
    assert s3.snapshot() == {"list": 1, "requests": 1}  # no event byte read
    assert "requests: requests 1, list 1, get 0" in p.stdout
    b = Logdir(f"s3://{BUCKET}/t4", cache_dir=shared).refresh()
    for run in ("x", "y"):
        assert values(b, run) == values(a, run)


def test_crashed_index_writer_leaves_a_usable_index(s3, tmp_path):
    local = tmp_path / "logs"
    w = tbx.SummaryWriter(str(local / "r"), flush_secs=3600)
    for s in range(500):
        w.add_scalar("loss", float(s), s)
    w.flush()
    s3.upload_tree(str(local), f"{BUCKET}/t5")
    cache = str(tmp_path / "cache")
    Logdir(f"s3://{BUCKET}/t5", cache_dir=cache).refresh()
    for s in range(500, 800):
        w.add_scalar("loss", float(s), s)
    w.close()
    s3.upload_tree(str(local), f"{BUCKET}/t5")
    # a second indexer process is killed while it reads the new bytes
    s3.gate = threading.Event()
    s3.held.clear()
    proc = subprocess.Popen([sys.executable, "-m", "tb_plus.cli", "index", f"s3://{BUCKET}/t5", "--cache-dir", cache],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        assert s3.held.wait(120), "the indexer never read"
        proc.kill()
        proc.wait(60)
    finally:
        s3.gate.set()
        s3.gate = None
    ld = Logdir(f"s3://{BUCKET}/t5", cache_dir=cache)
    ld.refresh()
    assert ld.scalars("r", "loss").value.tolist() == [float(s) for s in range(800)]


def test_request_budget_defers_polls_and_reads(s3, tmp_path):
    local = tmp_path / "logs"
    write_run(str(local), "r", 100)
    s3.upload_tree(str(local), f"{BUCKET}/t6")
    ld = Logdir(f"s3://{BUCKET}/t6", cache_dir=str(tmp_path / "cache"), budget_per_hour=2).refresh()
    assert len(ld.scalars("r", "train/loss")) == 100  # listing + read: 2 requests
    write_run(str(local), "r2", 50)
    s3.upload_tree(str(local / "r2"), f"{BUCKET}/t6/r2")
    s3.reset()
    ld.refresh()
    assert s3.snapshot() == {}  # over budget: no request; the last listing stands
    assert ld.runs() == ["r"] and ld.remote.requests()["deferred"] >= 1
    ld2 = Logdir(f"s3://{BUCKET}/t6", cache_dir=str(tmp_path / "cache"), poll_seconds=3600).refresh()
    assert ld2.runs() == ["r", "r2"]
    ld2.refresh()
    assert ld2.remote.requests()["list"] == 1  # within poll_seconds: the listing is reused


def test_roots_boundary_for_urls():
    from tb_plus.access import Refused, Roots

    roots = Roots(["s3://bkt/logs/", "/tmp"])
    assert roots.resolve("s3://bkt/logs/a//b/") == "s3://bkt/logs/a/b"
    assert roots.resolve("S3://bkt/logs") == "s3://bkt/logs"
    for raw, code in (("s3://bkt/other", 403), ("s3://bkt/logs/../secret", 400), ("gs://bkt/logs", 403),
                      ("s3://bkt/logsx", 403), ("s3://", 400), ("s3://bkt/logs/\x00", 400)):
        with pytest.raises(Refused) as e:
            roots.resolve(raw)
        assert e.value.code == code, raw
    assert roots.complete("s3://b") == ["s3://bkt/logs"]


def test_tensorboard_charts_a_run_from_s3(s3, tmp_path):
    from tests.integration.test_tensorboard_process import TensorBoard

    local = tmp_path / "logs"
    write_run(str(local), "exp", 300)
    s3.upload_tree(str(local), f"{BUCKET}/t7")
    (tmp_path / "empty").mkdir()
    tb = TensorBoard(str(tmp_path / "empty"), str(tmp_path), "--tb_plus_roots", f"s3://{BUCKET}/t7")
    try:
        tb.wait_for_plugin()
        q = urllib.parse.quote(f"s3://{BUCKET}/t7", safe="")
        base = f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus"
        for _ in range(600):  # the first index of a directory opened with logdir= is built in the background
            body = json.loads(urllib.request.urlopen(f"{base}/runs?logdir={q}", timeout=30).read())
            if body["runs"]["name"]:
                break
            threading.Event().wait(0.1)
        assert body["runs"]["name"] == ["exp"] and body["storage"]["url"] == f"s3://{BUCKET}/t7"
        assert body["storage"]["requests"]["list"] >= 1
        series = json.loads(urllib.request.urlopen(
            f"{base}/series?logdir={q}&run=exp&tag=train%2Floss&full=true", timeout=30).read())
        assert series["step"] == list(range(300))
        assert np.allclose(series["value"], [np.float32(1.0 / (s + 1)) for s in range(300)])
        try:
            urllib.request.urlopen(f"{base}/runs?logdir={urllib.parse.quote('s3://other/x', safe='')}", timeout=30)
            raise AssertionError("a URL outside the roots was served")
        except urllib.error.HTTPError as e:
            assert e.code == 403
    finally:
        tb.stop()


# ------------------------------------------------------------------ an index published in the bucket

def _index_env(tmp_path, name):
    """A server's own local working copy (as on another machine)."""
    return dict(os.environ, TB_PLUS_CACHE_DIR=str(tmp_path / name))


def test_index_on_object_storage_second_server_reads_no_event_bytes(s3, tmp_path, monkeypatch):
    local = tmp_path / "logs"
    for run in ("x", "y"):
        write_run(str(local), run, 1000)
    s3.upload_tree(str(local), f"{BUCKET}/t8")
    index = f"s3://{BUCKET}/index8"
    monkeypatch.setenv("TB_PLUS_CACHE_DIR", str(tmp_path / "server-a"))
    a = Logdir(f"s3://{BUCKET}/t8", cache_dir=index).refresh()
    assert a.shared.remote.requests()["put"] >= 4  # segments and manifests of two files published
    s3.reset()
    p = subprocess.run([sys.executable, "-m", "tb_plus.cli", "index", f"s3://{BUCKET}/t8", "--cache-dir", index],
                       capture_output=True, text=True, env=_index_env(tmp_path, "server-b"), timeout=300)
    assert p.returncode == 0, p.stderr
    event_reads = [g for g, _ in s3.gets if g.startswith(f"/{BUCKET}/t8/")]
    assert event_reads == []  # the second server downloaded the index, not the event files
    assert any(g.startswith(f"/{BUCKET}/index8/") for g, _ in s3.gets)
    monkeypatch.setenv("TB_PLUS_CACHE_DIR", str(tmp_path / "server-b"))
    b = Logdir(f"s3://{BUCKET}/t8", cache_dir=index).refresh()
    for run in ("x", "y"):
        assert values(b, run) == values(a, run)


def test_index_writer_killed_before_publishing_leaves_the_published_index(s3, tmp_path, monkeypatch):
    local = tmp_path / "logs"
    w = tbx.SummaryWriter(str(local / "r"), flush_secs=3600)
    for s in range(500):
        w.add_scalar("loss", float(s), s)
    w.flush()
    s3.upload_tree(str(local), f"{BUCKET}/t9")
    index = f"s3://{BUCKET}/index9"
    monkeypatch.setenv("TB_PLUS_CACHE_DIR", str(tmp_path / "server-a"))
    Logdir(f"s3://{BUCKET}/t9", cache_dir=index).refresh()
    for s in range(500, 700):
        w.add_scalar("loss", float(s), s)
    w.close()
    s3.upload_tree(str(local), f"{BUCKET}/t9")
    # server B indexes the new bytes, uploads its segment, and dies as it publishes the manifest
    s3.gate = threading.Event()
    s3.gate_when = lambda kind, path: kind == "put" and path.endswith("/manifest.json")
    s3.drop_gated = True  # the manifest never lands
    s3.held.clear()
    proc = subprocess.Popen([sys.executable, "-m", "tb_plus.cli", "index", f"s3://{BUCKET}/t9", "--cache-dir", index],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_index_env(tmp_path, "server-b"))
    try:
        assert s3.held.wait(120), "server B never published"
        proc.kill()
        proc.wait(60)
    finally:
        s3.gate.set()
        s3.gate = None
        s3.drop_gated = False
        s3.gate_when = lambda kind, path: kind == "get"
    # server C, from scratch: the published index (500 points) is usable, and it indexes the rest
    monkeypatch.setenv("TB_PLUS_CACHE_DIR", str(tmp_path / "server-c"))
    s3.reset()
    c = Logdir(f"s3://{BUCKET}/t9", cache_dir=index).refresh()
    assert c.scalars("r", "loss").value.tolist() == [float(s) for s in range(700)]
    # it read the event file's head (grown or replaced?) and then only the bytes after the published offset
    event_reads = [r for g, r in s3.gets if g.startswith(f"/{BUCKET}/t9/")]
    assert len(event_reads) == 2 and event_reads[0].startswith("bytes=0-")
    assert int(event_reads[1].split("=")[1].split("-")[0]) > 0


def test_two_servers_publishing_at_once_never_corrupt_the_index(s3, tmp_path, monkeypatch):
    local = tmp_path / "logs"
    write_run(str(local), "r", 3000)
    s3.upload_tree(str(local), f"{BUCKET}/t10")
    index = f"s3://{BUCKET}/index10"
    procs = [subprocess.Popen([sys.executable, "-m", "tb_plus.cli", "index", f"s3://{BUCKET}/t10", "--cache-dir",
                               index], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=_index_env(tmp_path, f"server-{i}")) for i in range(2)]
    for p in procs:
        assert p.wait(300) == 0, p.stderr.read()
    names = [k.rsplit("/", 1)[-1] for k in s3.fs().find(f"{BUCKET}/index10")]
    segs = [n for n in names if n.startswith("seg-")]
    assert len(set(segs)) == len(segs) and names.count("manifest.json") == 1
    monkeypatch.setenv("TB_PLUS_CACHE_DIR", str(tmp_path / "server-c"))
    s3.reset()
    c = Logdir(f"s3://{BUCKET}/t10", cache_dir=index).refresh()
    assert [g for g, _ in s3.gets if g.startswith(f"/{BUCKET}/t10/")] == []
    assert len(c.scalars("r", "train/loss")) == 3000


def test_a_bucket_that_cannot_be_listed_is_a_problem_not_a_crash(s3, tmp_path):
    ld = Logdir("s3://no-such-bucket/logs", cache_dir=str(tmp_path / "cache")).refresh()
    assert ld.runs() == []
    (p,) = ld.problems()
    assert p.kind == "error" and "no-such-bucket" in p.path and "cannot list" in p.message
    out = subprocess.run([sys.executable, "-m", "tb_plus.cli", "index", "s3://no-such-bucket/logs", "--cache-dir",
                          str(tmp_path / "c2")], capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert out.returncode == 0 and "cannot list the log directory" in out.stdout


def test_worker_processes_index_objects_and_their_requests_are_counted(s3, tmp_path, monkeypatch):
    from tb_plus.store import logdir as logdir_mod

    local = tmp_path / "logs"
    for run in ("a", "b", "c"):
        write_run(str(local), run, 2000)
    s3.upload_tree(str(local), f"{BUCKET}/t11")
    ref = Logdir(str(local), cache_dir=str(tmp_path / "ref")).refresh()
    monkeypatch.setattr(logdir_mod, "_IN_PROCESS_BYTES", 0)  # these small files through the worker pool too
    s3.reset()
    ld = Logdir(f"s3://{BUCKET}/t11", cache_dir=str(tmp_path / "cache"), workers=2).refresh()
    for run in ("a", "b", "c"):
        assert values(ld, run) == values(ref, run)
    got = s3.snapshot()
    assert got == {"list": 1, "get": 3, "requests": 4}, got
    assert ld.remote.requests()["requests"] == 4 and ld.remote.requests()["get"] == 3
    assert ld.stats["files_indexed"] == 3
