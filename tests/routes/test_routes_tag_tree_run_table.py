"""The tag tree and the run table through TensorBoard's WSGI app: the lazy tag tree, search and
group lists of /tags, and the run table of /runs (status, first write, hparams columns from torch's
add_hparams and from the hparams plugin's own summaries)."""

import os
import time

import pytest

from tests.routes.conftest import get_json, make_app

torch_tb = pytest.importorskip("torch.utils.tensorboard")

LAYERS = 12
PARTS = ("attn/q", "attn/k", "mlp/fc1", "mlp/fc2")


def deep_tags():
    return [f"model/encoder/layer{i}/{p}/grad_norm" for i in range(LAYERS) for p in PARTS] + ["train/loss"]


def write_logs(logdir):
    # a run with deep tags, written by torch's SummaryWriter
    w = torch_tb.SummaryWriter(os.path.join(logdir, "deep"))
    for step in range(3):
        for t in deep_tags():
            w.add_scalar(t, 0.5 * step, step)
    w.close()
    # torch's add_hparams: hparams land in a sub-run <run>/<timestamp>, inherited by the run
    w = torch_tb.SummaryWriter(os.path.join(logdir, "torch_hp"))
    for step in range(5):
        w.add_scalar("train/loss", 1.0 / (step + 1), step)
    w.add_hparams({"lr": 0.01, "optimizer": "adam", "bn": True}, {"hparam/loss": 0.2})
    w.close()
    # the hparams plugin's own summary (what tensorboard.plugins.hparams writes), through a real writer
    from tensorboard.plugins.hparams import summary_v2

    w = torch_tb.SummaryWriter(os.path.join(logdir, "plugin_hp"))
    w.file_writer.add_summary(summary_v2.hparams_pb({"lr": 0.1, "layers": 4, "optimizer": "sgd"}, trial_id="t1"))
    for step in range(7):
        w.add_scalar("train/loss", 2.0 / (step + 1), step)
    w.close()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tag_tree_logs")
    write_logs(str(d))
    return d


@pytest.fixture(scope="module")
def client(logdir, tmp_path_factory):
    from werkzeug import test as wtest

    app = make_app(logdir, tmp_path_factory.mktemp("tag_tree_cache"))
    yield wtest.Client(app)


def level(client, query=""):
    body = get_json(client, "/tags?" + query)
    kids = body["children"]
    return body, [dict(zip(kids, r)) for r in zip(*kids.values())]


def test_deep_group_opens_level_by_level_in_natural_order(client):
    body, top = level(client, "run=deep")
    assert body["count"] == LAYERS * len(PARTS) + 1
    assert [r["name"] for r in top] == ["model", "train"]
    _, layers = level(client, "run=deep&parent=model%2Fencoder")
    assert [r["name"] for r in layers] == [f"layer{i}" for i in range(LAYERS)]  # layer2 before layer10
    assert all(r["count"] == len(PARTS) and r["group"] for r in layers)
    _, attn = level(client, "run=deep&parent=model%2Fencoder%2Flayer10%2Fattn")
    assert [r["name"] for r in attn] == ["k", "q"]
    _, leaf = level(client, "run=deep&parent=model%2Fencoder%2Flayer10%2Fattn%2Fq")
    assert leaf == [{"name": "grad_norm", "path": "model/encoder/layer10/attn/q/grad_norm", "count": 1,
                     "group": False, "tag": True, "runs": 1}]


def test_level_paging(client):
    body, first = level(client, "run=deep&parent=model%2Fencoder&limit=5")
    assert body["total_children"] == LAYERS and [r["name"] for r in first] == [f"layer{i}" for i in range(5)]
    _, rest = level(client, "run=deep&parent=model%2Fencoder&offset=10&limit=5")
    assert [r["name"] for r in rest] == ["layer10", "layer11"]


def test_search_by_regex_with_spans_and_ancestors(client):
    body = get_json(client, "/tags?run=deep&filter=layer1%5B01%5D%2Fattn&mode=regex")
    assert body["count"] == 4 and body["total"] == LAYERS * len(PARTS) + 1
    m = body["matches"]
    assert m["tag"] == [f"model/encoder/layer{i}/attn/{p}/grad_norm" for i in (10, 11) for p in ("k", "q")]
    assert all(t[s:e] in ("layer10/attn", "layer11/attn") for t, s, e in zip(m["tag"], m["start"], m["end"]))
    groups = dict(zip(body["groups"]["path"], body["groups"]["count"]))
    assert groups["model"] == groups["model/encoder"] == 4 and groups["model/encoder/layer10/attn"] == 2
    assert body["groups"]["path"][:2] == ["model", "model/encoder"]
    glob = get_json(client, "/tags?run=deep&filter=model%2F*%2Fmlp%2Ffc1%2F*&mode=glob")
    assert glob["count"] == LAYERS


def test_group_list_pages_and_filters(client):
    page = get_json(client, "/tags?run=deep&under=model%2Fencoder&offset=4&limit=4")
    assert page["total"] == LAYERS * len(PARTS)
    assert page["tags"] == [f"model/encoder/layer1/{p}/grad_norm" for p in ("attn/k", "attn/q", "mlp/fc1", "mlp/fc2")]
    only = get_json(client, "/tags?run=deep&under=model&filter=fc2&limit=100")
    assert only["total"] == LAYERS and all("fc2" in t for t in only["tags"])


def test_separator_choice(client):
    body, top = level(client, "run=deep&sep=%2F.")
    assert [r["name"] for r in top] == ["model", "train"]
    assert get_json(client, "/tags?run=deep&sep=%2F&parent=model")["total_children"] == 1


def test_tag_tree_header_says_whether_the_tree_was_built(client):
    def tree(query):
        r = client.get("/data/plugin/tb_plus/tags?" + query)
        assert r.status_code == 200
        return r.headers["X-TB-Plus-Tag-Tree"]

    assert tree("sep=%3A%3A") == "built" and tree("sep=%3A%3A") == "memory"
    tree("")  # the default tree: built at most once (in the background after the first refresh)
    assert tree("") == tree("parent=model&limit=3") == "memory"


@pytest.mark.parametrize(
    "query, code, shown",
    [
        ("/tags?parent=nope", 404, "'nope'"),
        ("/tags?under=nope", 404, "'nope'"),
        ("/tags?parent=train%2Floss&run=deep", 404, "'train/loss'"),  # a tag, not a group
        ("/tags?sep=a", 400, "'a'"),
        ("/tags?sep=%2F%2F%2F%2F%2F", 400, "'/////'"),
        ("/tags?limit=0", 400, "0"),
        ("/tags?limit=many", 400, "'many'"),
        ("/tags?offset=-1", 400, "-1"),
        ("/tags?filter=x&mode=fuzzy", 400, "'fuzzy'"),
        ("/tags?filter=%5B&mode=regex", 400, "'['"),
        ("/tags?run=nope", 404, "'nope'"),
    ],
)
def test_bad_tag_queries(client, query, code, shown):
    r = client.get("/data/plugin/tb_plus" + query)
    assert r.status_code == code
    assert shown in r.get_data(as_text=True)


def test_run_table_columns_and_hparams(client, logdir):
    asked = time.time()
    body = get_json(client, "/runs")
    answered = time.time()
    runs = body["runs"]
    names = runs["name"]
    assert {"deep", "torch_hp", "plugin_hp"} <= set(names)
    n = len(names)
    for col in ("path", "first_write", "last_write", "last_step", "size", "files", "tags", "status", "live",
                "diagnostics"):
        assert len(runs[col]) == n, col
    i = names.index("plugin_hp")
    assert runs["path"][i] == os.path.join(str(logdir), "plugin_hp")
    assert runs["last_step"][i] == 6 and runs["tags"][i] == 1 and runs["files"][i] == 1
    assert 1e9 < runs["first_write"][i] <= runs["last_write"][i]
    # live while written within live_seconds of the answer (not asserted from "just written": a slow
    # machine may get here later than that), stale for stale_seconds after
    age = (asked - runs["last_write"][i], answered - runs["last_write"][i])
    if age[1] < body["live_seconds"]:
        assert runs["status"][i] == "live"
    elif age[0] >= body["live_seconds"] and age[1] < body["stale_seconds"]:
        assert runs["status"][i] == "stale"
    # counts of its findings once the background diagnosis has run (this run has no loss: none), else null
    assert runs["diagnostics"][i] in (None, {"error": 0, "warning": 0, "info": 0})
    hp = body["hparams"]
    assert set(hp) >= {"lr", "optimizer", "layers", "bn"}
    assert hp["lr"][i] == 0.1 and hp["optimizer"][i] == "sgd" and hp["layers"][i] == 4
    j = names.index("torch_hp")
    assert hp["lr"][j] == 0.01 and hp["optimizer"][j] == "adam"
    assert hp["bn"][j] == 1.0  # torch writes a bool as number_value (bool is an int), as stock TensorBoard shows it
    assert hp["layers"][j] is None and hp["lr"][names.index("deep")] is None
    assert body["stale_seconds"] >= body["live_seconds"]


def test_status_turns_stale_then_finished_and_live_again_when_written(tmp_path):
    from tb_plus.routes.runs import runs_impl
    from tb_plus.store import Logdir

    logs = tmp_path / "logs"
    a = torch_tb.SummaryWriter(str(logs / "a"))
    b = torch_tb.SummaryWriter(str(logs / "b"))
    for step in range(3):
        a.add_scalar("loss", 1.0, step)
        b.add_scalar("loss", 1.0, step)
    a.flush()
    b.close()
    ld = Logdir(logs, tmp_path / "cache")

    def status_at(now):
        body = runs_impl(ld, live_seconds=60, stale_seconds=600, now=now)
        return dict(zip(body["runs"]["name"], body["runs"]["status"]))

    t0 = max(ld.run_info(r).last_write for r in ld.runs())
    assert status_at(t0 + 1) == {"a": "live", "b": "live"}
    assert status_at(t0 + 61) == {"a": "stale", "b": "stale"}  # nothing written for a minute
    assert status_at(t0 + 601) == {"a": "finished", "b": "finished"}
    for step in range(3, 6):  # a is written again
        a.add_scalar("loss", 1.0, step)
    a.close()
    ld.refresh()
    t1 = ld.run_info("a").last_write
    assert t1 >= t0 and ld.run_info("a").last_step == 5
    assert status_at(t1 + 1)["a"] == "live"  # the new write counts from the refreshed index
    assert status_at(t1 + 61)["a"] == "stale"


def test_copied_old_logs_are_finished_not_live(tmp_path):
    """A run whose events were written in 2021 but whose file was written (copied) just now: its newest
    event's wall time decides, not the file's modification time; a run written now stays live."""
    from tb_plus.routes.runs import runs_impl
    from tb_plus.store import Logdir

    logs = tmp_path / "logs"
    old_wall = 1_620_000_000.0  # May 2021
    w = torch_tb.SummaryWriter(str(logs / "copied_2021"))
    for step in range(5):
        w.add_scalar("loss", 1.0, step, walltime=old_wall + step)
    w.close()
    w = torch_tb.SummaryWriter(str(logs / "fresh"))
    for step in range(5):
        w.add_scalar("loss", 1.0, step)
    w.close()
    ld = Logdir(logs, tmp_path / "cache")
    assert ld.run_info("copied_2021").last_event == old_wall + 4
    fresh = ld.run_info("fresh")
    assert abs(fresh.last_event - fresh.last_write) < 60
    now = max(ld.run_info(r).last_write for r in ld.runs()) + 1
    body = runs_impl(ld, live_seconds=60, stale_seconds=600, now=now)
    table = body["runs"]
    st = dict(zip(table["name"], table["status"]))
    assert st == {"copied_2021": "finished", "fresh": "live"}
    assert dict(zip(table["name"], table["live"])) == {"copied_2021": False, "fresh": True}
    assert table["last_event"][table["name"].index("copied_2021")] == old_wall + 4
    # the modification time still shows as last_write
    assert table["last_write"][table["name"].index("copied_2021")] > old_wall + 3600


def test_runs_stay_listed_while_their_files_exist(tmp_path):
    from tb_plus.store import Logdir

    logs = tmp_path / "logs"
    for name in ("keep", "gone"):
        w = torch_tb.SummaryWriter(str(logs / name))
        w.add_scalar("loss", 1.0, 0)
        w.close()
    ld = Logdir(logs, tmp_path / "cache")
    assert ld.runs() == ["gone", "keep"]
    for f in os.listdir(logs / "gone"):
        os.remove(logs / "gone" / f)  # files this test wrote itself
    assert ld.refresh().runs() == ["keep"]


def test_tree_and_table_come_from_the_index_alone(logdir, tmp_path, monkeypatch):
    """Once indexed, /runs and every /tags mode open no event file (payloads are never read)."""
    import builtins

    from tb_plus.routes.runs import runs_impl
    from tb_plus.routes.tags import tags_impl
    from tb_plus.store import Logdir

    ld = Logdir(logdir, tmp_path / "cache")
    ld.refresh()
    real_open = builtins.open

    def guarded(path, *a, **k):
        assert "tfevents" not in os.fspath(path), f"event file opened: {path}"
        return real_open(path, *a, **k)

    real_os_open = os.open

    def guarded_os(path, *a, **k):
        assert "tfevents" not in os.fspath(path), f"event file opened: {path}"
        return real_os_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(os, "open", guarded_os)
    body = runs_impl(ld, 60, 600)
    assert body["hparams"]["optimizer"][body["runs"]["name"].index("plugin_hp")] == "sgd"
    assert tags_impl(ld, ["deep"])["count"] == LAYERS * len(PARTS) + 1
    assert tags_impl(ld, pattern="grad", mode="substring")["count"] == LAYERS * len(PARTS)
    assert tags_impl(ld, under="model", limit=5)["total"] == LAYERS * len(PARTS)


def test_cycling_separators_and_run_subsets_keeps_the_shared_tree_and_other_memos(logdir, tmp_path):
    """Issue 18 P-14: each separator or run subset builds its own tree; they evict only each other,
    never the tree every user's first view reads, nor other kinds (the run table's columns)."""
    from tb_plus.routes.tags import tag_tree
    from tb_plus.store import Logdir

    ld = Logdir(logdir, tmp_path / "cache")
    shared = tag_tree(ld)
    columns = ld.memo(("run_columns",), ld.generation, lambda: object())
    names = ld.runs()
    for i, sep in enumerate(["-", "_", ".", ":", "|", "+", "~", "=", ",", ";", "!", "@", "#", "%", "^", "&",
                             "*", "(", ")", "[", "]", "{", "}", "<", ">", "?", "--", "..", "::", "//"]):
        tag_tree(ld, sep=sep)
        tag_tree(ld, names[: 1 + i % len(names)], sep="/")
    assert tag_tree(ld) is shared
    assert ld.memo(("run_columns",), ld.generation, lambda: object()) is columns
