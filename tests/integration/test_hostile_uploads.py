"""Hostile uploads against a real `tensorboard` process (issue 18, P-6 to P-8, P-10, P-11): each is
refused with a 400/408/413 that says why, its CPU is bounded, nothing of it lands in the upload
directory, and the server answers another client meanwhile.

CPU is read from /proc/<pid>/stat (user + system time of the whole process), so these run on Linux.
"""

import io
import json
import os
import socket
import struct
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib

import pytest

from tests.integration.test_tensorboard_process import TensorBoard, _get

tbx = pytest.importorskip("tensorboardX")

UPLOAD_MB, QUOTA_MB, IDLE_S = 64, 1, 2
HEADER = {"X-TB-Plus-Upload": "1", "Content-Type": "application/octet-stream"}


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _event_file(tmp, name, steps):
    d = tempfile.mkdtemp(prefix="src-" + name, dir=tmp)  # a writer of its own: one file in it
    w = tbx.SummaryWriter(d)
    for s in range(steps):
        w.add_scalar("loss", 1.0 / (s + 1), s)
    w.close()
    (f,) = [x for x in os.listdir(d) if "tfevents" in x]
    with open(os.path.join(d, f), "rb") as fh:
        return f, fh.read()


def _empty_records(n):
    """A file-version record then n empty records: valid framing, 16 bytes each, compressing ~1000:1."""
    from tensorboard.compat.proto import event_pb2

    from tb_plus.store.scan import masked_crc

    def record(data):
        head = struct.pack("<Q", len(data))
        return head + struct.pack("<I", masked_crc(head)) + data + struct.pack("<I", masked_crc(data))

    return record(event_pb2.Event(file_version="brain.Event:2").SerializeToString()) + record(b"") * n


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("uploads")
    logs, uploads = root / "logs", root / "up"
    w = tbx.SummaryWriter(str(logs / "healthy"))
    w.add_scalar("loss", 1.0, 0)
    w.close()
    (root / "cache").mkdir()
    tb = TensorBoard(str(logs), str(root / "cache"), "--load_fast", "false", "--tb_plus_upload_dir", str(uploads),
                     "--tb_plus_upload_max_mb", str(UPLOAD_MB), "--tb_plus_upload_quota_mb", str(QUOTA_MB),
                     "--tb_plus_upload_idle_seconds", str(IDLE_S))
    try:
        tb.wait_for_plugin()
        yield tb, f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus", str(uploads), str(root)
    finally:
        tb.stop()


def _upload(base, data, filename, run="x"):
    q = urllib.parse.urlencode({"filename": filename, "run": run})
    req = urllib.request.Request(f"{base}/upload?{q}", data=data, headers=HEADER, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def _runs_in(uploads):
    return sorted(x for x in os.listdir(uploads) if not x.startswith("."))


def _refused(server, data, filename, code, words):
    tb, base, uploads, _ = server
    before, cpu0 = _runs_in(uploads), _cpu_seconds(tb.proc.pid)
    status, text = _upload(base, data, filename)
    assert status == code and all(w in text for w in words), (status, text)
    assert _cpu_seconds(tb.proc.pid) - cpu0 < 30  # unbounded, these took minutes
    assert _runs_in(uploads) == before
    assert not os.listdir(os.path.join(uploads, ".tb_plus_incoming"))  # staging cleaned
    status, _, body = _get(f"{base}/runs", timeout=30)
    assert status == 200 and json.loads(body)["runs"]["name"] == ["healthy"]


def _zip(members, method=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def test_p6_bomb_of_valid_empty_records_stops_at_the_ratio_cap(server):
    data = _zip([("run/events.out.tfevents.1.bomb", _empty_records(100 << 20 >> 4))])  # 100 MB of records
    assert len(data) < 1 << 20
    _refused(server, data, "bomb.zip", 413, ["unpacks to more than"])


def test_p7_members_walked_past_count_against_the_cap(server):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tf:
        junk = tarfile.TarInfo("run/data.bin")
        junk.size = 300 << 20
        tf.addfile(junk, io.BytesIO(bytes(junk.size)))  # 300 MB of zeros, ~300 KB compressed
        name, ev = _event_file(server[3], "p7", 10)
        info = tarfile.TarInfo("run/" + name)
        info.size = len(ev)
        tf.addfile(info, io.BytesIO(ev))
    _refused(server, buf.getvalue(), "skip.tar.gz", 413, ["unpacks to more than"])


def test_p8_archives_of_many_members_are_refused_while_listing(server):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for i in range(12000):
            tf.addfile(tarfile.TarInfo(f"run/f{i}"), io.BytesIO(b""))
    _refused(server, buf.getvalue(), "many.tar", 413, ["more than 10000 members"])
    zipped = _zip([(f"run/f{i}", b"") for i in range(12000)], zipfile.ZIP_STORED)
    _refused(server, zipped, "many.zip", 413, ["12000 members"])


def _damaged_zips(tmp):
    name, ev = _event_file(tmp, "p10", 200)
    good = _zip([("run/" + name, ev)])
    # The local header's and the central directory's fields, patched: the general-purpose flags
    # (encrypted: bit 0) and the compression method (9: deflate64, which zipfile cannot read).
    local = good.index(b"PK\x03\x04")
    central = good.index(b"PK\x01\x02")

    def patch(data, at, fmt, value):
        b = bytearray(data)
        struct.pack_into(fmt, b, at, value)
        return bytes(b)

    encrypted = patch(patch(good, local + 6, "<H", 1), central + 8, "<H", 1)
    deflate64 = patch(patch(good, local + 8, "<H", 9), central + 10, "<H", 9)
    start = local + 30 + len("run/" + name)
    corrupt = good[:start + 10] + bytes(b ^ 0x5A for b in good[start + 10:start + 200]) + good[start + 200:]
    deep = "/".join(["d" * 100] * 45) + "/" + name  # > 4096 bytes of path once unpacked
    too_long = _zip([(deep, ev)])
    return {"encrypted": encrypted, "deflate64": deflate64, "corrupt": corrupt, "too_long": too_long,
            "truncated": good[:len(good) // 2], "garbage": b"PK\x03\x04" + os.urandom(64)}


@pytest.mark.parametrize("kind", ["encrypted", "deflate64", "corrupt", "too_long", "truncated", "garbage"])
def test_p10_damaged_zips_answer_400(server, kind):
    data = _damaged_zips(server[3])[kind]
    _refused(server, data, f"{kind}.zip", 400, [])


def test_p11_stalled_upload_is_dropped_and_cleaned(server):
    tb, base, uploads, _ = server
    q = urllib.parse.urlencode({"filename": "slow.tfevents", "run": "slow"})
    with socket.create_connection(("127.0.0.1", tb.port), timeout=60) as s:
        s.sendall((f"POST /data/plugin/tb_plus/upload?{q} HTTP/1.1\r\nHost: 127.0.0.1:{tb.port}\r\n"
                   "X-TB-Plus-Upload: 1\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Length: 1000000\r\n\r\n").encode() + b"x" * 1000)
        answer = b""
        while True:  # the server answers, and closes, once the body has stopped for IDLE_S
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") and b"sent nothing for 2 s" in answer, answer[:300]
    assert not os.listdir(os.path.join(uploads, ".tb_plus_incoming"))
    assert "slow" not in _runs_in(uploads)


def test_quota_refuses_what_would_exceed_it(server):
    tb, base, uploads, tmp = server
    name, ev = _event_file(tmp, "quota", 15000)  # ~0.65 MB: one fits a 1 MB quota, two do not
    assert 0.52 * (1 << 20) < len(ev) < 0.95 * (1 << 20)
    status, text = _upload(base, ev, name, run="first")
    assert status == 200, text
    status, text = _upload(base, ev, name, run="second")
    assert status == 413 and "quota" in text and "--tb_plus_upload_quota_mb" in text
    assert _runs_in(uploads) == ["first"]
    os.remove(os.path.join(uploads, "first", name))  # the other tests expect an empty upload directory
    os.rmdir(os.path.join(uploads, "first"))
