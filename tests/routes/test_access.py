"""Log-directory access: the boundary (hostile paths, symlinks), switching per request, shared
directories and the LRU of open ones, through TensorBoard's WSGI app."""

import logging
import os

import pytest

from tests.routes.conftest import get_json, make_app

tbx = pytest.importorskip("tensorboardX")

SECRET = "secret_run"
SECRET_TAG = "only/outside/xyzzy"  # never in any answer


def write_run(path, tag="loss", steps=5, value=1.0):
    w = tbx.SummaryWriter(str(path))
    for s in range(steps):
        w.add_scalar(tag, value + s, s)
    w.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """root/{a,b,c} allowed; outside/ with a secret run; symlinks leading in and out."""
    base = tmp_path_factory.mktemp("access")
    root = base / "root"
    write_run(root / "a" / "run_a")
    write_run(root / "b" / "run_b", steps=7)
    write_run(root / "c" / "run_c", steps=3)
    write_run(base / "outside" / SECRET, tag=SECRET_TAG)
    os.symlink(base / "outside", root / "link_out")  # a directory link leading out of the root
    os.symlink(base / "outside" / SECRET, root / "b" / "linked_secret")  # a run link leading out, inside b
    os.symlink(root / "c", root / "link_in")  # a link staying inside
    (root / "a" / "plain.txt").write_text("not a directory")
    return base


@pytest.fixture(scope="module")
def client(tree, tmp_path_factory):
    from werkzeug import test as wtest

    app = make_app(tree / "root" / "a", tmp_path_factory.mktemp("access_cache"),
                   "--tb_plus_roots", str(tree / "root"))
    return wtest.Client(app)


def runs_of(client, logdir):
    from urllib.parse import quote

    body = get_json(client, "/runs?logdir=" + quote(str(logdir), safe=""))
    return body["runs"]["name"], body


def poll_runs(client, logdir):
    """Runs of a directory opened by request. /runs waits up to a second for its first index and
    then answers with the progress; ask again until the runs are there (each call blocks in the
    server on the index being built, not on a timer here)."""
    import time

    deadline = time.monotonic() + 120
    while True:
        names, _ = runs_of(client, logdir)
        if names or time.monotonic() > deadline:
            return names


def test_switching_directory_per_request(client, tree):
    root = tree / "root"
    assert get_json(client, "/runs")["runs"]["name"] == ["run_a"]  # the default --logdir
    assert poll_runs(client, root / "b") == ["run_b"]  # the link to outside/ is not followed
    assert poll_runs(client, "c") == ["run_c"]  # relative to the first root
    assert poll_runs(client, root / "link_in") == ["run_c"]  # a link that stays inside
    assert get_json(client, "/runs")["runs"]["name"] == ["run_a"]  # the default is untouched
    s = get_json(client, "/series?logdir=" + str(root / "b") + "&run=run_b&tag=loss")
    assert s["step"] == list(range(7))
    assert get_json(client, "/tags?logdir=" + str(root / "c") + "&under=")["tags"] == ["loss"]


def test_a_directory_is_opened_once_and_shared(client, tree):
    root = tree / "root"
    poll_runs(client, root / "b")
    opened = get_json(client, "/logdirs")["open"]
    assert opened.count(os.path.realpath(root / "b")) == 1
    poll_runs(client, root / "b")
    assert get_json(client, "/logdirs")["open"].count(os.path.realpath(root / "b")) == 1


def hostile(tree):
    root = str(tree / "root")
    out = str(tree / "outside")
    return [
        # (path, expected status)
        ("..", 403),
        ("../outside", 403),
        ("../../", 403),
        ("a/../../outside", 403),
        ("a/../../outside/" + SECRET, 403),
        (root + "/..", 403),
        (root + "/../outside", 403),
        (root + "/a/../../outside", 403),
        (out, 403),
        (out + "/" + SECRET, 403),
        ("/", 403),
        ("/etc", 403),
        ("/etc/passwd", 403),
        ("/proc/self", 403),
        ("/root", 403),
        ("/tmp", 403),
        (root + "/link_out", 403),  # symlink leading out
        (root + "/link_out/" + SECRET, 403),
        ("link_out", 403),
        (root + "/b/linked_secret", 403),  # symlinked run leading out
        (root + "2", 403),  # a sibling sharing the root's name as a prefix
        ("%2e%2e", 404),  # encoded once more than the URL layer decodes: a literal name inside the root
        ("%252e%252e%252f", 404),
        ("..%2f..%2f", 404),
        ("a\\..\\..\\outside", 400),  # Windows style
        ("C:\\Windows", 400),
        ("C:/Windows", 400),
        ("\\\\server\\share", 400),
        ("a\x00b", 400),  # NUL
        ("a\nb", 400),
        ("a\x7f", 400),
        ("a/" + "x" * 5000, 400),  # very long
        ("/" + "a/" * 3000, 400),
        (" ", 400),
        (root + "/a/plain.txt", 404),  # inside but a file
        (root + "/nope", 404),
    ]


def test_hostile_paths_are_refused(client, tree, caplog):
    from urllib.parse import quote

    cases = hostile(tree)
    assert len(cases) >= 30
    caplog.set_level(logging.WARNING, logger="tb_plus")
    for path, code in cases:
        for route in ("/runs", "/tags", "/series?run=run_a&tag=loss", "/hparams"):
            sep = "&" if "?" in route else "?"
            r = client.get("/data/plugin/tb_plus" + route + sep + "logdir=" + quote(path, safe=""))
            body = r.get_data(as_text=True)
            assert r.status_code == code, (path, route, r.status_code, body[:200])
            assert SECRET_TAG not in body and not body.startswith("{")
    assert sum("refused logdir" in rec.getMessage() for rec in caplog.records) >= len(cases)


def test_a_refusal_does_not_tell_whether_the_path_exists(client, tree):
    from urllib.parse import quote

    exists = client.get("/data/plugin/tb_plus/runs?logdir=" + quote(str(tree / "outside"), safe=""))
    missing = client.get("/data/plugin/tb_plus/runs?logdir=" + quote(str(tree / "nothing_here"), safe=""))
    assert exists.status_code == missing.status_code == 403


def test_picker_completes_only_inside_the_roots(client, tree):
    root = str(tree / "root")
    body = get_json(client, "/logdirs")
    assert body["roots"] == [root] and body["upload"] is False
    done = get_json(client, "/logdirs?prefix=" + root + "/")["dirs"]
    assert done == [root + "/a", root + "/b", root + "/c", root + "/link_in"]  # link_out leads out
    assert get_json(client, "/logdirs?prefix=" + root + "/l")["dirs"] == [root + "/link_in"]
    assert get_json(client, "/logdirs?prefix=" + str(tree / "outside") + "/")["dirs"] == []
    assert get_json(client, "/logdirs?prefix=/etc/")["dirs"] == []


class Fake:
    """A stand-in for an open Logdir: records whether the registry closed it."""

    def __init__(self, path):
        self.path, self.stopped = path, False

    def stop_background(self, timeout=None):
        self.stopped = True


def test_registry_closes_least_recently_used_within_the_budget():
    from tb_plus.access import Registry

    pinned = Fake("/p")
    reg = Registry(Fake, budget_bytes=250, pinned=("/p", pinned), size_of=lambda ld: 100)
    a = reg.get("/a")
    reg.get("/b")  # 300 > 250: /a (least recently used, not pinned) is closed
    assert a.stopped and reg.paths() == ["/p", "/b"]
    b = reg.get("/b")
    assert reg.get("/b") is b and not b.stopped
    reg.get("/c")
    assert b.stopped and reg.paths() == ["/p", "/c"] and not pinned.stopped and reg.evictions == 2


def test_registry_closes_idle_directories_and_caps_how_many_are_open():
    """Issue 18 P-13: 300 opened directories held 311 threads."""
    from tb_plus.access import Registry

    now = [0.0]
    pinned = Fake("/p")
    reg = Registry(Fake, budget_bytes=1 << 40, pinned=("/p", pinned), size_of=lambda ld: 1, idle_seconds=60,
                   max_open=5, clock=lambda: now[0])
    opened = [reg.get(f"/d{i}") for i in range(300)]
    assert len(reg.paths()) <= 6 and sum(not ld.stopped for ld in opened) <= 5  # 5 and the pinned one
    assert reg.paths()[-1] == "/d299" and not pinned.stopped
    now[0] = 30.0
    kept = reg.get("/d299")
    now[0] = 80.0  # /d295../d298 were last asked for at 0 (idle 80 s), /d299 at 30 (50 s)
    fresh = reg.get("/new")
    assert reg.paths() == ["/p", "/d299", "/new"] and not kept.stopped and not fresh.stopped
    assert reg.get("/d0") is not opened[0]  # a closed directory reopens


def test_memory_estimate_grows_with_the_index(tree, tmp_path):
    from tb_plus.store import Logdir

    small = Logdir(tree / "root" / "c", tmp_path / "c1")
    both = Logdir(tree / "root", tmp_path / "c2", confine=[tree / "root"])
    assert small.memory_estimate() == 0  # nothing indexed yet
    small.refresh()
    both.refresh()
    assert 0 < small.memory_estimate() < both.memory_estimate()
    assert SECRET not in " ".join(both.runs())  # confined: the links out of the root are not followed


def test_indexing_one_directory_blocks_no_other_request(tmp_path, monkeypatch):
    """While a newly opened directory's first index is stuck, its /runs answers with the progress,
    and every other directory (and the default one) answers normally."""
    import threading

    from werkzeug import test as wtest

    from tb_plus.store import indexer

    root = tmp_path / "root"
    slow = root / "slow"
    write_run(slow / "run_s", steps=4)
    write_run(root / "a" / "run_a")
    write_run(root / "b" / "run_b", steps=7)
    gate = threading.Event()
    real_index = indexer.index_file

    def gated(task, progress=None):
        if "/slow/" in task["path"]:
            assert gate.wait(120), "test gate never opened"
        return real_index(task, progress)

    monkeypatch.setattr(indexer, "index_file", gated)
    client = wtest.Client(make_app(root / "a", tmp_path / "cache", "--tb_plus_roots", str(root)))
    try:
        names, body = runs_of(client, slow)
        assert names == [] and body["progress"]["indexing"] is True  # answered, not blocked
        assert poll_runs(client, root / "b") == ["run_b"]
        assert get_json(client, "/series?run=run_a&tag=loss")["step"] == list(range(5))
        names, body = runs_of(client, slow)
        assert names == [] and body["progress"]["files_total"] == 1
    finally:
        gate.set()
    assert poll_runs(client, slow) == ["run_s"]


def test_cached_series_answers_follow_appended_data(tmp_path):
    """/series answers are cached per query and run version: an append changes the version."""
    from werkzeug import test as wtest

    root = tmp_path / "root"
    write_run(root / "live", steps=5, value=0.0)  # closed: every record is on disk
    app = make_app(root, tmp_path / "cache", "--reload_interval", "0")
    client = wtest.Client(app)
    assert get_json(client, "/series?run=live&tag=loss")["step"] == list(range(5))
    assert get_json(client, "/series?run=live&tag=loss")["step"] == list(range(5))  # from the cache
    w = tbx.SummaryWriter(str(root / "live"), filename_suffix=".more")  # the run grows: a second file
    for s in range(5, 9):
        w.add_scalar("loss", float(s), s)
    w.close()
    (plugin,) = [p for p in app._plugins if p.plugin_name == "tb_plus"]
    plugin.logdir.refresh()
    assert get_json(client, "/series?run=live&tag=loss")["step"] == list(range(9))
    batch = client.get("/data/plugin/tb_plus/series_batch?run=live&tag=loss&format=binary")
    assert batch.status_code == 200 and len(batch.get_data()) > 0


def test_dotdot_answers_the_same_whatever_exists_outside(client, tree):
    """Issue 18 P-15: '..' after a component outside the roots is taken on the text, so a symlink
    there (which realpath would follow first) gives the same answer as a plain directory or nothing."""
    from urllib.parse import quote

    outside = tree / "outside"
    (outside / "plain_dir").mkdir(exist_ok=True)
    if not (outside / "sym_dir").exists():
        os.symlink(tree / "outside" / SECRET, outside / "sym_dir")
    codes = {}
    for x in ("plain_dir", "sym_dir", "missing"):
        raw = f"{outside}/{x}/../../root/b"
        codes[x] = client.get("/data/plugin/tb_plus/runs?logdir=" + quote(raw, safe="")).status_code
    assert set(codes.values()) == {200}, codes


def test_a_run_swapped_for_a_symlink_after_discovery_is_not_read_outside(tmp_path):
    """Issue 18 P-5: the files are opened by path after discovery; the open itself is checked."""
    import shutil

    from tb_plus.store import Logdir
    from tb_plus.store.confine import open_confined

    root, outside = tmp_path / "root", tmp_path / "outside"

    def write_text_run(d, text):
        w = tbx.SummaryWriter(str(d), filename_suffix=".same")
        w.add_text("note", text, 0)
        w.add_scalar("loss", 1.0, 0)
        w.close()
        (name,) = [p.name for p in d.iterdir()]
        return name

    name = write_text_run(root / "run", "inside")
    other = write_text_run(outside / "tmp", "SECRET")  # as long as "inside": the same record offsets
    (outside / "run").mkdir()
    shutil.move(str(outside / "tmp" / other), str(outside / "run" / name))  # the same file name
    ld = Logdir(root, tmp_path / "cache", confine=[root])
    tag = [t for t in ld.tags("run", "tensors") if "note" in t][0]
    assert b"inside" in ld.tensors("run", tag)[0].numpy.ravel()[0]
    os.rename(root / "run", root / "run_moved")  # swapped for a link leading out (no refresh between)
    os.symlink(outside / "run", root / "run")
    assert [d.numpy for d in ld.tensors("run", tag)] == []  # the value outside is not served
    with pytest.raises(PermissionError):
        open_confined(str(root / "run" / name), [os.path.realpath(root)])
    with open_confined(str(root / "run_moved" / name), [os.path.realpath(root)]) as f:
        assert f.read(4)


def _access_file(tmp_path, data):
    p = tmp_path / "access.json"
    p.write_text(data if isinstance(data, str) else __import__("json").dumps(data))
    return str(p)


@pytest.mark.parametrize("data, words", [
    ("{not json", "cannot read the access file"),
    ([], "expected a JSON object"),
    ({"admins": {}}, "unknown keys ['admins']"),
    ({"users": {"u": {"roots": ["relative/dir"]}}}, "is not an absolute path"),
    ({"users": {"u": {"roots": "/x"}}}, "'roots' is a list of paths"),
    ({"users": {"u": {"roots": [], "upload": "yes"}}}, "'upload' true or false"),
    ({"groups": {"g": {"roots": [], "admin": True}}}, "must be an object with 'roots' and 'upload'"),
    ({"default": {"roots": ["/"]}}, "outside the allowed roots"),
])
def test_an_access_file_that_cannot_apply_is_refused_with_the_reason(tree, tmp_path, data, words):
    from tb_plus.access import Access, AccessFileError, Roots

    with pytest.raises(AccessFileError, match=None) as e:
        Access(Roots([str(tree / "root")]), _access_file(tmp_path, data), user_header="X-User")
    assert words in str(e.value)


def test_identity_comes_only_from_the_named_headers(tree, tmp_path):
    from tb_plus.access import MAX_GROUPS, Access, Roots

    root = tree / "root"
    path = _access_file(tmp_path, {"default": {"roots": [str(root / "c")]},
                                   "users": {"u": {"roots": [str(root / "a")], "upload": True}},
                                   "groups": {"g": {"roots": [str(root / "b")]}, "all": {"roots": ["*"]}}})
    roots = Roots([str(root)])
    access = Access(roots, path, user_header="X-User", groups_header="X-Groups")
    g = access.grant({"X-User": "u", "X-Groups": "g"})
    assert g.user == "u" and g.upload and sorted(os.path.basename(r) for r in g.roots.real) == ["a", "b", "c"]
    assert not g.roots.allows(str(root)) and g.roots.allows(str(root / "a" / "run_a"))
    anonymous = access.grant({"X-Groups": "g"})  # groups without a user count for nothing
    assert anonymous.user is None and not anonymous.upload and [os.path.basename(r) for r in anonymous.roots.real] == ["c"]
    assert access.grant({"X-User": "x" * 300}).user is None  # too long: no identity
    assert access.grant({"X-User": "u\x01"}).user is None
    assert access.grant({"X-User": "v", "X-Groups": "all"}).roots is roots  # "*": every server root
    many = access.grant({"X-User": "v", "X-Groups": ",".join(["h"] * 5000 + ["all"])})
    assert len(many.groups) == MAX_GROUPS and many.roots is not roots  # groups past the cap are not read
    no_flag = Access(roots, path)  # the header is not trusted unless a flag names it
    assert no_flag.grant({"X-User": "u"}).user is None
    everyone = Access(roots, None, user_header="X-User", uploads=False).grant({"X-User": "u"})
    assert everyone.everything and everyone.roots is roots and not everyone.upload and everyone.user == "u"
