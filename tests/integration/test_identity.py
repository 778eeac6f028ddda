"""Who may see what (issue 18, item 5), against a real `tensorboard` process: the user named by a
trusted proxy's header opens only the roots the access file gives them, on every data route, in
the picker's completion and for uploads; the header counts only when a flag names it; every
refusal is logged with the user; a changed access file is applied without a restart."""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.integration.test_tensorboard_process import TensorBoard

tbx = pytest.importorskip("tensorboardX")

USER = "X-Forwarded-User"
GROUPS = "X-Forwarded-Groups"


def _write(path, tag="train/loss", steps=20):
    w = tbx.SummaryWriter(str(path))
    for s in range(steps):
        w.add_scalar(tag, 1.0 / (s + 1), s)
    w.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("identity")
    root = base / "root"
    _write(root / "alice" / "run_a")
    _write(root / "bob" / "run_b", tag="bob/secret")
    _write(root / "public" / "run_p")
    # a link inside alice's root leading to bob's run: alice must not read it through the link
    os.symlink(root / "bob" / "run_b", root / "alice" / "link_to_bob")
    (base / "uploads").mkdir()
    access = {
        "default": {"roots": []},
        "users": {
            "alice": {"roots": [str(root / "alice"), str(root / "public"), str(base / "uploads")], "upload": True},
            "admin": {"roots": ["*"], "upload": True},
        },
        "groups": {"team-b": {"roots": [str(root / "bob")]}},
    }
    (base / "access.json").write_text(json.dumps(access))
    return base


def _start(tree, tmp_path_factory, *flags):
    root = tree / "root"
    tb = TensorBoard(str(root / "public"), str(tmp_path_factory.mktemp("cache")), "--load_fast", "false",
                     "--tb_plus_roots", str(root), "--tb_plus_upload_dir", str(tree / "uploads"),
                     "--tb_plus_access_file", str(tree / "access.json"), *flags)
    tb.wait_for_plugin()
    return tb


@pytest.fixture(scope="module")
def server(tree, tmp_path_factory):
    tb = _start(tree, tmp_path_factory, "--tb_plus_user_header", USER, "--tb_plus_groups_header", GROUPS)
    try:
        yield tb, f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus"
    finally:
        tb.stop()


def _call(url, user=None, groups=None, data=None, headers=None, timeout=60):
    """(status, body) of a request as `user` (the proxy's header), whatever the status."""
    h = dict(headers or {})
    if user is not None:
        h[USER] = user
    if groups is not None:
        h[GROUPS] = groups
    req = urllib.request.Request(url, data=data, headers=h, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _runs(base, logdir, user=None, groups=None):
    """(status, run names) once the directory is indexed (/runs answers with progress meanwhile)."""
    q = "" if logdir is None else "?logdir=" + urllib.parse.quote(str(logdir), safe="")
    deadline = time.monotonic() + 120
    while True:
        status, body = _call(f"{base}/runs{q}", user, groups)
        if status != 200:
            return status, body.decode("utf-8", "replace")
        names = json.loads(body)["runs"]["name"]
        if names or time.monotonic() > deadline:
            return status, sorted(names)


def _routes(run, tag):
    """Every data route with parameters that answer 200 for a directory the user may open."""
    return [
        ("runs", {}),
        ("tags", {}),
        ("keytags", {}),
        ("series", {"run": run, "tag": tag}),
        ("series_batch", {"run": run, "tag": tag}),
        ("export", {"run": run, "tag": tag}),
        ("aggregate", {"tag": tag}),
        ("compare", {"a_run": run, "a_tag": tag, "b_run": run, "b_tag": tag}),
        ("hparams", {}),
        ("evaluation", {}),
        ("trace", {"run": run}),
        ("diagnostics", {}),
    ]


def test_a_user_opens_their_roots_and_nothing_else_on_every_route(server, tree):
    _, base = server
    root = tree / "root"
    assert _runs(base, root / "alice", "alice") == (200, ["run_a"])  # not link_to_bob: confined to her roots
    _, bob_runs = _runs(base, root / "bob", "bob", "team-b")
    assert bob_runs == ["run_b"]
    for route, params in _routes("run_a", "train/loss"):
        q = urllib.parse.urlencode(dict(params, logdir=str(root / "alice")))
        status, body = _call(f"{base}/{route}?{q}", "alice")
        assert status == 200, (route, body[:300])
    for route, params in _routes("run_b", "bob/secret"):
        for logdir in (root / "bob", root / "bob" / "run_b", root, root / "alice" / ".." / "bob",
                       root / "alice" / "link_to_bob"):
            q = urllib.parse.urlencode(dict(params, logdir=str(logdir)))
            status, body = _call(f"{base}/{route}?{q}", "alice")
            assert status == 403, (route, logdir, status, body[:300])
            assert b"bob/secret" not in body
        q = urllib.parse.urlencode(dict(params, logdir=str(root / "bob")))
        status, body = _call(f"{base}/{route}?{q}", "bob", "team-b")
        assert status == 200, (route, body[:300])


def test_a_refusal_does_not_tell_what_exists(server, tree):
    _, base = server
    root = tree / "root"
    answers = set()
    for logdir in (root / "bob", root / "bob" / "no_such_dir", root / "nothing_here"):
        status, body = _call(f"{base}/runs?logdir={urllib.parse.quote(str(logdir), safe='')}", "alice")
        answers.add(status)
    assert answers == {403}


def test_the_default_directory_follows_the_access_file(server, tree):
    _, base = server
    assert _runs(base, None, "alice") == (200, ["run_p"])  # --logdir is root/public: hers
    status, message = _runs(base, None, "bob", "team-b")
    assert status == 403 and "may not open the default log directory" in message
    assert _runs(base, None)[0] == 403  # no identity: the default access, which has no roots
    assert _runs(base, None, "admin") == (200, ["run_p"])


def test_the_picker_completes_only_the_users_roots(server, tree):
    _, base = server
    root = tree / "root"
    prefix = urllib.parse.quote(str(root) + "/", safe="")

    def picker(user, groups=None):
        status, body = _call(f"{base}/logdirs?prefix={prefix}", user, groups)
        assert status == 200
        return json.loads(body)

    alice = picker("alice")
    assert sorted(os.path.basename(d) for d in alice["dirs"]) == ["alice", "public"]
    assert alice["default"] and alice["upload"] and alice["user"] == "alice"
    bob = picker("bob", "team-b")
    assert [os.path.basename(d) for d in bob["dirs"]] == ["bob"]
    assert bob["default"] is None and not bob["upload"] and bob["upload_dir"] is None
    assert all(str(root / "alice") not in p for p in bob["open"] + bob["roots"])
    anonymous = picker(None)
    assert anonymous["dirs"] == [] and anonymous["roots"] == [] and anonymous["default"] is None


def test_uploads_follow_the_access_file(server, tree, tmp_path):
    _, base = server
    _write(tmp_path / "up")
    event = next(p for p in (tmp_path / "up").iterdir())
    data = event.read_bytes()
    q = urllib.parse.urlencode({"filename": event.name, "run": "from_alice"})
    header = {"X-TB-Plus-Upload": "1", "Content-Type": "application/octet-stream"}
    for user, groups in ((None, None), ("bob", "team-b"), ("mallory", "nobody")):
        status, body = _call(f"{base}/upload?{q}", user, groups, data=data, headers=header)
        assert status == 403 and b"may not upload" in body, (user, status, body[:200])
    status, body = _call(f"{base}/upload?{q}", "alice", data=data, headers=header)
    assert status == 200, body[:300]
    assert _runs(base, tree / "uploads", "alice") == (200, ["from_alice"])
    assert _runs(base, tree / "uploads", "bob", "team-b")[0] == 403


def test_refusals_are_logged_with_the_user(server, tree):
    tb, base = server
    _call(f"{base}/runs?logdir={urllib.parse.quote(str(tree / 'root' / 'alice'), safe='')}", "bob", "team-b")
    tb.log.flush()
    with open(tb.log_path) as f:
        text = f.read()
    assert "for user bob from 127.0.0.1" in text and str(tree / "root" / "alice") in text


def test_a_header_name_with_control_characters_is_no_identity(server, tree):
    _, base = server
    # urllib refuses to send a raw newline; a tab and DEL are sent as they are
    assert _runs(base, tree / "root" / "alice", "alice\x7f")[0] == 403


def test_a_changed_access_file_applies_without_restart(server, tree):
    _, base = server
    path = tree / "access.json"
    before = path.read_text()
    access = json.loads(before)
    access["groups"]["team-b"]["roots"].append(str(tree / "root" / "public"))
    path.write_text(json.dumps(access))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # another mtime even on a coarse clock
    try:
        deadline = time.monotonic() + 30
        while _runs(base, None, "bob", "team-b")[0] != 200:  # read again within 2 s of the change
            assert time.monotonic() < deadline, "the changed access file was never applied"
            time.sleep(0.2)
        assert _runs(base, None, "bob", "team-b") == (200, ["run_p"])
        path.write_text("{not json")  # a broken file keeps the last valid one
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
        assert _runs(base, None, "bob", "team-b") == (200, ["run_p"])
    finally:
        path.write_text(before)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 3 * 10**9))


def test_the_header_counts_only_when_a_flag_names_it(tree, tmp_path_factory):
    tb = _start(tree, tmp_path_factory)  # the same access file, no --tb_plus_user_header
    try:
        base = f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus"
        for user in ("alice", "admin"):
            assert _runs(base, tree / "root" / "alice", user)[0] == 403
            assert _runs(base, None, user)[0] == 403
    finally:
        tb.stop()


def test_a_bad_access_file_stops_the_start_with_the_reason(tree, tmp_path_factory, tmp_path):
    bad = tmp_path / "access.json"
    bad.write_text(json.dumps({"users": {"eve": {"roots": ["/etc"]}}}))
    root = tree / "root"
    tb = TensorBoard(str(root / "public"), str(tmp_path_factory.mktemp("cache")), "--tb_plus_roots", str(root),
                     "--tb_plus_access_file", str(bad))
    try:
        assert tb.proc.wait(120) != 0
        tb.log.seek(0)
        text = tb.log.read()
        assert "outside the allowed roots" in text and "eve" in text
    finally:
        tb.stop()
