"""Uploads through TensorBoard's WSGI app: valid runs appear, abuse is refused, and
nothing is ever written outside the upload directory."""

import io
import os
import tarfile
import time
import zipfile

import pytest

from tests.routes.conftest import get_json, make_app

tbx = pytest.importorskip("tensorboardX")

HEADER = {"X-TB-Plus-Upload": "1"}
MAX_MB = 1


def event_file_bytes(tmp_path, name="run", steps=20):
    d = tmp_path / ("src_" + name)
    w = tbx.SummaryWriter(str(d))
    for s in range(steps):
        w.add_scalar("loss", 1.0 / (s + 1), s)
    w.close()
    (path,) = [p for p in d.iterdir() if "tfevents" in p.name]
    return path.name, path.read_bytes()


def snapshot(root):
    out = set()
    for d, dirs, files in os.walk(root):
        for f in files + dirs:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


@pytest.fixture
def setup(tmp_path):
    from werkzeug import test as wtest

    logs = tmp_path / "logs"
    (logs / "existing").mkdir(parents=True)
    uploads = tmp_path / "uploads"
    app = make_app(logs, tmp_path / "cache", "--tb_plus_upload_dir", str(uploads),
                   "--tb_plus_upload_max_mb", str(MAX_MB))
    return wtest.Client(app), tmp_path, uploads


def post(client, data, *, run="", filename="", headers=HEADER):
    from urllib.parse import urlencode

    q = urlencode({"run": run, "filename": filename})
    return client.post("/data/plugin/tb_plus/upload?" + q, data=data, headers=headers,
                       content_type="application/octet-stream")


def uploaded_runs(client, uploads):
    from urllib.parse import quote

    deadline = time.monotonic() + 60
    while True:
        names = get_json(client, "/runs?logdir=" + quote(str(uploads), safe=""))["runs"]["name"]
        if names or time.monotonic() > deadline:
            return names


def test_event_file_upload_becomes_a_run(setup):
    client, tmp, uploads = setup
    name, data = event_file_bytes(tmp)
    r = post(client, data, run="my run", filename=name)
    assert r.status_code == 200, r.get_data(as_text=True)
    info = r.get_json()
    assert info["run"] == "my_run" and info["files"] == 1 and info["records"] == 21
    assert uploaded_runs(client, uploads) == ["my_run"]
    s = get_json(client, f"/series?logdir={uploads}&run=my_run&tag=loss")
    assert s["step"] == list(range(20))
    assert os.listdir(uploads / ".tb_plus_incoming") == []


def test_archives_of_a_run_folder(setup):
    client, tmp, uploads = setup
    name, data = event_file_bytes(tmp, "a")
    name2, data2 = event_file_bytes(tmp, "b", steps=5)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for member, payload in ((f"myrun/{name}", data), (f"myrun/eval/{name2}", data2), ("myrun/notes.txt", b"hi")):
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    r = post(client, buf.getvalue(), run="tarred", filename="myrun.tar.gz")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["files"] == 2
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    r = post(client, zbuf.getvalue(), run="zipped", filename="x.zip")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert sorted(os.listdir(uploads / "tarred")) == sorted([name, "eval"])  # the top folder is the run folder
    names = uploaded_runs(client, uploads)
    assert {"tarred", "tarred/eval", "zipped"} <= set(names)


def test_names_are_sanitised_and_never_overwrite(setup):
    client, tmp, uploads = setup
    name, data = event_file_bytes(tmp)
    runs = [post(client, data, run=r, filename=name).get_json()["run"] for r in ("../../etc", "../../etc", ".hidden", "")]
    assert runs[:3] == ["_.._etc", "_.._etc-2", "hidden"]
    assert runs[3].startswith("events.out.tfevents.")  # no run name: the file's name
    assert all("/" not in r and not r.startswith(".") for r in runs)
    assert set(os.listdir(uploads)) == set(runs) | {".tb_plus_incoming"}


def zip_with(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, payload in members:
            zf.writestr(member, payload)
    return buf.getvalue()


def tar_with(add):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        add(tf)
    return buf.getvalue()


def symlink_tar(tf):
    info = tarfile.TarInfo("run/events.out.tfevents.1.x")
    info.type = tarfile.SYMTYPE
    info.linkname = "/etc/passwd"
    tf.addfile(info)


def hardlink_tar(tf):
    info = tarfile.TarInfo("run/events.out.tfevents.2.x")
    info.type = tarfile.LNKTYPE
    info.linkname = "../../outside"
    tf.addfile(info)


def traversal_tar(tf):
    payload = b"x" * 10
    info = tarfile.TarInfo("../../evil.tfevents.x")
    info.size = len(payload)
    tf.addfile(info, io.BytesIO(payload))


def abuse_cases(tmp):
    name, data = event_file_bytes(tmp, "abuse")
    bomb = zip_with([("run/events.out.tfevents.1.bomb", b"\0" * (5 * (MAX_MB << 20)))])  # ~5 KB packed, 5 MB unpacked
    many = zip_with([(f"run/events.out.tfevents.{i}.x", data) for i in range(1001)])
    return [
        ("oversize body", b"\0" * ((MAX_MB << 20) + 1), "big.tfevents", 413, "over the limit"),
        ("compression bomb", bomb, "bomb.zip", 413, "unpacks to more than"),
        ("too many files", many, "many.zip", 413, "more than 1000 event files" if len(many) <= (MAX_MB << 20) else ""),
        ("zip traversal", zip_with([("../../evil.tfevents.x", data)]), "t.zip", 400, "'..' refused"),
        ("zip absolute", zip_with([("/tmp/events.out.tfevents.1.x", data)]), "a.zip", 400, "absolute"),
        ("zip backslash", zip_with([("..\\..\\events.out.tfevents.1.x", data)]), "b.zip", 400, "Windows-style"),
        ("tar traversal", tar_with(traversal_tar), "t.tar.gz", 400, "'..' refused"),
        ("tar symlink", tar_with(symlink_tar), "s.tar.gz", 400, "links and devices"),
        ("tar hardlink", tar_with(hardlink_tar), "h.tar.gz", 400, "links and devices"),
        ("not an event file", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image.png", 400, "not a TFRecord event file"),
        ("text file", b"hello world, this is not an event file\n" * 10, "events.out.tfevents.1.txt", 400, "not a TFRecord"),
        ("truncated event file", data[:-7], name, 400, "truncated"),
        ("bad data CRC", data[:40] + bytes([data[40] ^ 1]) + data[41:], name, 400, "CRC"),
        ("archive without event files", zip_with([("run/readme.md", b"# hi")]), "r.zip", 400, "no event files"),
        ("damaged archive", b"\x1f\x8b" + b"\0" * 50, "d.tar.gz", 400, "archive"),
        ("empty body", b"", name, 400, "empty"),
    ]


def test_upload_abuse_is_refused_and_nothing_lands(setup):
    client, tmp, uploads = setup
    cases = abuse_cases(tmp)
    before = snapshot(tmp)
    for label, data, filename, code, text in cases:
        r = post(client, data, run=label, filename=filename)
        body = r.get_data(as_text=True)
        assert r.status_code == code, (label, r.status_code, body[:300])
        assert body.startswith("Upload refused:") and text in body, (label, body[:300])
    after = snapshot(tmp)
    new = {p for p in after - before if not p.startswith("cache")}
    assert new <= {"uploads", "uploads/.tb_plus_incoming"}, new  # no run, no file anywhere else
    assert os.listdir(uploads / ".tb_plus_incoming") == []


def test_interrupted_upload_never_shows_up(setup):
    client, tmp, uploads = setup
    name, data = event_file_bytes(tmp)
    half = data[: len(data) // 2]
    env = {"CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": "application/octet-stream", "HTTP_X_TB_PLUS_UPLOAD": "1",
           "wsgi.input": io.BytesIO(half)}
    r = client.open("/data/plugin/tb_plus/upload?run=cut", method="POST", environ_overrides=env)
    assert r.status_code == 400 and "interrupted" in r.get_data(as_text=True)
    assert sorted(os.listdir(uploads)) == [".tb_plus_incoming"]
    assert os.listdir(uploads / ".tb_plus_incoming") == []


def test_upload_needs_the_header_post_and_the_flag(setup, tmp_path):
    from werkzeug import test as wtest

    client, tmp, uploads = setup
    name, data = event_file_bytes(tmp)
    r = post(client, data, run="x", filename=name, headers={})
    assert r.status_code == 403 and "X-TB-Plus-Upload" in r.get_data(as_text=True)
    assert client.get("/data/plugin/tb_plus/upload", headers=HEADER).status_code == 400
    off = wtest.Client(make_app(tmp / "logs", tmp_path / "cache2"))
    r = post(off, data, run="x", filename=name)
    assert r.status_code == 403 and "uploads are off" in r.get_data(as_text=True)
    assert get_json(off, "/logdirs")["upload"] is False


def test_a_refused_file_is_named_as_the_user_sent_it(setup):
    client, tmp, uploads = setup
    r = post(client, b"just some notes\n" * 4, run="n", filename="notes.txt")
    assert r.status_code == 400
    assert r.get_data(as_text=True).startswith("Upload refused: notes.txt: not a TFRecord event file")
