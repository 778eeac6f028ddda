"""The plugin's routes through TensorBoard's own WSGI app (werkzeug test client)."""

import csv
import io
import math
import os
import re
import time

import pytest

from tests.routes.conftest import NAN_STEP, SPIKE_STEP, get_json


def assert_live_column(runs, live_seconds, asked, answered):
    """live: last written within live_seconds of the answer, which came between `asked` and `answered`
    (time.time()). Not "just written, so live": a slow machine may get to the test later than that."""
    for name, last_write, live in zip(runs["name"], runs["last_write"], runs["live"]):
        if answered - last_write < live_seconds:
            assert live, name
        elif asked - last_write >= live_seconds:
            assert not live, name


def test_runs(client):
    asked = time.time()
    body = get_json(client, "/runs")
    answered = time.time()
    first = [i for i, n in enumerate(body["runs"]["name"]) if "seed=" not in n]  # leave out the lr x seed sweep
    runs = {k: [v[i] for i in first] for k, v in body["runs"].items()}
    assert runs["name"] == ["lr=0.01", "lr=0.1"]
    assert runs["last_step"] == [99, 2999]
    assert runs["tags"] == [3, 3]
    assert runs["kind"] == ["supervised", "supervised"]  # losses, no RL or language-model tags
    assert all(s > 0 for s in runs["size"]) and all(t > 1e9 for t in runs["last_write"])
    assert_live_column(runs, body["live_seconds"], asked, answered)
    assert body["progress"]["indexing"] in (True, False)


def _level(client, query):
    body = get_json(client, "/tags?" + query)
    kids = body["children"]
    return body, [dict(zip(kids, row)) for row in zip(*kids.values())]


def test_tag_tree_counts_natural_order_and_runs(client):
    body, top = _level(client, "run=lr%3D0.01&run=lr%3D0.1")
    assert body["count"] == 5 and body["parent"] == "" and body["total_children"] == 4
    assert [c["name"] for c in top] == ["eval", "layer2", "layer10", "train"]
    assert (top[3]["path"], top[3]["count"], top[3]["group"], top[3]["tag"]) == ("train", 2, True, False)
    _, train = _level(client, "run=lr%3D0.01&run=lr%3D0.1&parent=train")
    loss = [c for c in train if c["name"] == "loss"][0]
    assert loss["path"] == "train/loss" and loss["runs"] == 2 and loss["tag"] and not loss["group"]
    listed = get_json(client, "/tags?run=lr%3D0.01&run=lr%3D0.1&under=")
    assert listed["tags"] == ["eval/loss", "layer2/w", "layer10/w", "train/acc", "train/loss"]


def test_tag_filters(client):
    assert get_json(client, "/tags?run=lr%3D0.01&run=lr%3D0.1&filter=LOSS")["count"] == 2
    assert get_json(client, "/tags?filter=%5Elayer%5Cd%2B%2Fw%24&regex=true")["count"] == 2
    only = get_json(client, "/tags?run=lr%3D0.1&under=")
    assert only["tags"] == ["eval/loss", "train/acc", "train/loss"]


def test_series_full_resolution_and_non_finite(client):
    body = get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss")
    assert body["total"] == body["in_range"] == 3000 and body["downsampled"] is False
    assert body["step"] == list(range(3000))
    assert body["value"][NAN_STEP] == "NaN"
    assert body["value"][SPIKE_STEP] == 50.0
    assert len(body["wall_time"]) == 3000


def test_series_downsampled_keeps_spike_nan_and_last_point(client):
    body = get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss&width=100")
    assert body["downsampled"] is True and len(body["step"]) <= 4 * 100 + 2
    steps = body["step"]
    assert SPIKE_STEP in steps and NAN_STEP in steps and steps[-1] == 2999
    assert body["value"][steps.index(SPIKE_STEP)] == 50.0
    assert body["value"][steps.index(NAN_STEP)] == "NaN"


def test_series_range_and_x_axes(client):
    body = get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss&xmin=1000&xmax=1999&width=10000")
    assert body["step"] == list(range(1000, 2000)) and body["in_range"] == 1000
    rel = get_json(client, "/series?run=lr%3D0.1&tag=eval%2Floss&x=relative")
    assert rel["x"] == "relative" and rel["step"][0] == 0
    wall = get_json(client, "/series?run=lr%3D0.1&tag=eval%2Floss&x=wall_time&xmax=0")
    assert wall["step"] == [] and wall["in_range"] == 0


@pytest.mark.parametrize(
    "url, code, needle",
    [
        ("/series?tag=train%2Floss", 400, "'run'"),
        ("/series?run=lr%3D0.1", 400, "'tag'"),
        ("/series?run=nope&tag=train%2Floss", 404, "'nope'"),
        ("/series?run=lr%3D0.1&tag=no%2Fsuch", 404, "'no/such'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&width=wide", 400, "'wide'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&width=0", 400, "width"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&x=epoch", 400, "'epoch'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&xmin=abc", 400, "'abc'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&xmin=nan", 400, "'nan'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&full=maybe", 400, "'maybe'"),
        ("/tags?filter=%28&regex=true", 400, "'('"),
        ("/tags?run=nope", 404, "'nope'"),
        ("/export?run=lr%3D0.1&tag=train%2Floss&format=xml", 400, "'xml'"),
        ("/export?run=lr%3D0.1&tag=nope", 404, "'nope'"),
    ],
)
def test_bad_requests_get_public_errors_naming_the_input(client, url, code, needle):
    text = get_json(client, url, code)
    assert needle in text


def test_error_body_shape(client):
    r = client.get("/data/plugin/tb_plus/series?run=nope&tag=x")
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.get_data(as_text=True) == "Not found: no run 'nope'"


def test_export_csv_is_every_point_exactly(client):
    r = client.get("/data/plugin/tb_plus/export?run=lr%3D0.1&tag=train%2Floss&format=csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"] and ".csv" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == ["step", "wall_time", "value"] and len(rows) == 3001
    full = get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss&full=true")
    for i, (step, wall, value) in enumerate(rows[1:]):
        assert int(step) == full["step"][i] and float(wall) == full["wall_time"][i]
        want = full["value"][i]
        assert math.isnan(float(value)) if want == "NaN" else float(value) == want


def test_export_json_equals_full_series(client):
    r = client.get("/data/plugin/tb_plus/export?run=lr%3D0.1&tag=train%2Floss&format=json")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    got = r.get_json()
    full = get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss&full=true")
    assert got["step"] == full["step"] and got["value"] == full["value"] and got["wall_time"] == full["wall_time"]


def test_every_route_is_documented():
    from tb_plus import plugin

    doc = open(os.path.join(os.path.dirname(plugin.__file__), "http_api.md"), encoding="utf-8").read()
    documented = set(re.findall(r"^## `(/[^`]*)`", doc, flags=re.M))
    documented |= {p.strip() for h in re.findall(r"^## (`/[^\n]*)", doc, flags=re.M) for p in re.findall(r"`(/[^`]*)`", h)}
    routes = set(plugin.TbPlusPlugin.__new__(plugin.TbPlusPlugin).get_plugin_apps())
    assert routes <= documented, f"undocumented routes: {sorted(routes - documented)}"


def test_static_bundle_route_says_what_to_build_when_missing(client):
    r = client.get("/data/plugin/tb_plus/index.js")
    if r.status_code == 200:
        assert r.headers["Content-Type"].startswith("text/javascript")
        assert b"render" in r.get_data()
    else:
        assert r.status_code == 404 and "npm run build" in r.get_data(as_text=True)


def test_standalone_page_loads_the_bundle_without_inline_script(client):
    r = client.get("/data/plugin/tb_plus/standalone?run=lr%3D0.1&tag=train%2Floss")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    html = r.get_data(as_text=True)
    assert '<script type="module" src="standalone.js"></script>' in html
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    js = client.get("/data/plugin/tb_plus/standalone.js")
    assert js.headers["Content-Type"].startswith("text/javascript")
    assert 'from "./index.js"' in js.get_data(as_text=True) and "render()" in js.get_data(as_text=True)


def test_series_batch_equals_single_requests_and_reports_misses(client):
    batch = get_json(client, "/series_batch?run=lr%3D0.1&run=lr%3D0.01&run=nope&tag=train%2Floss&width=100")
    a, b, miss = batch["series"]
    assert a == get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss&width=100")
    assert b == get_json(client, "/series?run=lr%3D0.01&tag=train%2Floss&width=100")
    assert miss == {"run": "nope", "tag": "train/loss", "status": 404, "error": "Not found: no run 'nope'"}
    pairs = get_json(client, "/series_batch?run=lr%3D0.1&tag=eval%2Floss&run=lr%3D0.01&tag=layer2%2Fw")
    assert [(x["run"], x["tag"], x["total"]) for x in pairs["series"]] == [("lr=0.1", "eval/loss", 300), ("lr=0.01", "layer2/w", 100)]
    assert "tag" in get_json(client, "/series_batch?run=a&run=b&tag=x&tag=y&tag=z", 400)
    assert "required" in get_json(client, "/series_batch?tag=x", 400)


def test_series_batch_binary_carries_the_same_columns(client):
    import json as _json
    import struct

    import numpy as np

    url = "/data/plugin/tb_plus/series_batch?run=lr%3D0.1&run=nope&tag=train%2Floss&width=100&format=binary"
    r = client.get(url)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/octet-stream")
    data = r.get_data()
    (hlen,) = struct.unpack_from("<I", data, 0)
    header = _json.loads(data[4 : 4 + hlen])
    base = 4 + hlen + (-(4 + hlen) % 8)
    good, miss = header["series"]
    assert miss["status"] == 404 and "'nope'" in miss["error"]
    want = get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss&width=100")
    for name in ("step", "wall_time", "value"):
        col = np.frombuffer(data, "<f8", count=good["n"], offset=base + good["columns"][name])
        expect = np.array([float(v) if not isinstance(v, str) else float(v.replace("Infinity", "inf")) for v in want[name]])
        np.testing.assert_array_equal(col, expect)
    assert {k: good[k] for k in ("run", "tag", "total", "in_range", "downsampled")} == {
        k: want[k] for k in ("run", "tag", "total", "in_range", "downsampled")}
    assert "'xml'" in get_json(client, url.replace("binary", "xml").replace("/data/plugin/tb_plus", ""), 400)
