"""Log directories chosen in the tab, in the browser (picker, autocompletion, recent list, back to
the default), per browser and without a restart; a directory's first index (progress, polling); uploads;
the standalone page embedded in another site's iframe; refusals shown without losing the view.

One TensorBoard for the module: `--logdir ROOT/a --tb_plus_roots ROOT --tb_plus_upload_dir UPLOADS`, where
ROOT holds three log directories written with tensorboardX, each with its own runs and tags.
"""

import http.server
import json
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # conftest skips every test here with the reason
    expect = None

from .conftest import _require_bundle, new_context, run_tensorboard
from .test_tab import PLUGIN_FRAME, wait_points
from .test_views import STANDALONE, wait_for

# directory -> run -> tag -> number of points (steps 0 .. n-1)
DIRS = {
    "a": {"alpha": {"train/loss": 50, "train/acc": 50}, "beta": {"train/loss": 50, "train/acc": 50}},
    "b": {"gamma": {"reward/mean": 30, "train/loss": 20}},
    "c": {"delta": {"val/score": 10}},
}
DATA_ROUTES = ("runs", "tags", "series", "series_batch", "export", "aggregate", "compare", "hparams")


def value(run, tag, step):
    return (len(run) + len(tag)) * 0.1 + step * 0.01


def write_run(path, tags):
    from tensorboardX import SummaryWriter

    w = SummaryWriter(path, flush_secs=1)
    for tag, n in tags.items():
        for step in range(n):
            w.add_scalar(tag, value(os.path.basename(path), tag, step), step)
    w.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """(base URL, {"root", "a", "b", "c", "uploads", "tmp"}): the server and its paths."""
    _require_bundle()
    tmp = tmp_path_factory.mktemp("logdirs")
    root = str(tmp / "root")
    paths = {"root": root, "uploads": str(tmp / "uploads"), "tmp": str(tmp)}
    for d, runs in DIRS.items():
        paths[d] = os.path.join(root, d)
        for run, tags in runs.items():
            write_run(os.path.join(root, d, run), tags)
    args = ["--tb_plus_roots", root, "--tb_plus_upload_dir", paths["uploads"]]
    with run_tensorboard(paths["a"], str(tmp / "tensorboard.log"), tuple(DIRS["a"]), extra_args=args) as base:
        yield base, paths


def standalone_url(base, params=()):
    return base + STANDALONE + ("?" + urllib.parse.urlencode(list(params)) if params else "")


def listed_runs(scope):
    """The run names the run table has rows for."""
    return sorted(scope.locator(".tbp-run-row[data-run]").evaluate_all("els => els.map(e => e.dataset.run)"))


def chart_points(scope, tag, expected, page):
    card = scope.get_by_test_id("chart-" + tag)
    card.wait_for()
    wait_points(card.locator(".tbp-plot"), expected, page)
    wait_for(lambda: card.get_attribute("data-state") == "ready", page, what=tag + " ready")
    return card


def open_picker(scope):
    if scope.get_by_test_id("logdir-panel").is_hidden():
        scope.get_by_test_id("logdir-current").click()
    scope.get_by_test_id("logdir-panel").wait_for()
    return scope.get_by_test_id("logdir-input")


def option(scope, testid, path):
    return scope.locator('[data-testid="%s"][data-path="%s"]' % (testid, path))


def route_of(url):
    """The tb_plus route a request URL names ("runs", "series", ...), or None."""
    m = re.search(r"/data/plugin/tb_plus/([a-z_]+)", url)
    return m.group(1) if m else None


def test_switch_directory_in_the_tab_and_back(page, env):
    """In TensorBoard's tab: autocomplete ROOT/, open b, see its runs and charts, every request naming it;
    back to the default and to b again from the recent list; no restart."""
    base, paths = env
    page.goto(base + "/#tb_plus")
    frame = page.frame_locator(PLUGIN_FRAME)
    frame.get_by_test_id("run-alpha").wait_for()
    current = frame.get_by_test_id("logdir-current")
    expect(current).to_have_attribute("data-default", "true")
    expect(current).to_have_attribute("data-path", paths["a"])
    frame.get_by_test_id("tag-train/loss").click()
    chart_points(frame, "train/loss", {"alpha": 50, "beta": 50}, page)

    # autocompletion: the directories of ROOT
    field = open_picker(frame)
    field.fill(paths["root"] + "/")
    wanted = [paths[d] for d in ("a", "b", "c")]
    options = frame.get_by_test_id("logdir-option")
    wait_for(lambda: options.evaluate_all("els => els.map(e => e.dataset.path)") == wanted, page, what="completions")

    seen = []
    page.on("request", lambda r: seen.append(r.url))
    option(frame, "logdir-option", paths["b"]).click()
    frame.get_by_test_id("run-gamma").wait_for()
    assert listed_runs(frame) == ["gamma"]
    expect(frame.get_by_test_id("logdir-panel")).to_be_hidden()
    expect(current).to_have_attribute("data-path", paths["b"])
    expect(current).to_have_attribute("data-default", "false")
    # the open tag stays and shows b's run; b's own tag opens from its tree
    chart_points(frame, "train/loss", {"gamma": 20}, page)
    frame.get_by_test_id("tag-reward/mean").click()
    card = chart_points(frame, "reward/mean", {"gamma": 30}, page)
    hrefs = card.locator(".tbp-export a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert hrefs and all("logdir=" in h for h in hrefs), hrefs
    # the choice is in the tab's URL (TensorBoard's hash)
    assert "p.tb_plus.logdir=" + urllib.parse.quote(paths["b"], safe="") in page.evaluate("() => location.hash")
    data = [u for u in seen if route_of(u) in DATA_ROUTES]
    assert data, "no data request after the switch"
    missing = [u for u in data if "logdir=" + urllib.parse.quote(paths["b"], safe="") not in u]
    assert not missing, missing

    # back to the default: a's runs and charts
    open_picker(frame)
    expect(option(frame, "logdir-recent-item", paths["b"])).to_be_visible()
    expect(option(frame, "logdir-recent-item", paths["a"])).to_be_visible()
    frame.get_by_test_id("logdir-default").click()
    frame.get_by_test_id("run-alpha").wait_for()
    assert listed_runs(frame) == ["alpha", "beta"]
    expect(current).to_have_attribute("data-default", "true")
    chart_points(frame, "train/loss", {"alpha": 50, "beta": 50}, page)
    chart_points(frame, "reward/mean", {}, page)  # a has no such tag: an empty chart, no error
    assert "logdir" not in page.evaluate("() => location.hash")

    # and to b again from the recent list
    open_picker(frame)
    frame.get_by_test_id("logdir-default").wait_for(state="hidden")
    option(frame, "logdir-recent-item", paths["b"]).click()
    frame.get_by_test_id("run-gamma").wait_for()
    chart_points(frame, "reward/mean", {"gamma": 30}, page)
    assert page.page_errors == []


def test_two_browsers_look_at_different_directories_at_once(browser, env):
    """Two browsers, two directories, one server. The first one's URL also builds an aggregation and a
    comparison chart and colours by a hyperparameter: every data request it makes names its directory."""
    base, paths = env
    contexts = [new_context(browser, viewport={"width": 1300, "height": 850}) for _ in range(2)]
    try:
        p1, p2 = (c.new_page() for c in contexts)
        errors = []
        for p in (p1, p2):
            p.set_default_timeout(15000)
            p.on("pageerror", lambda e: errors.append(str(e)))
        asked = []
        p1.on("request", lambda r: asked.append(r.url) if route_of(r.url) in DATA_ROUTES else None)
        agg = {"id": "g1", "tags": ["train/loss"], "groupBy": "none", "stat": "mean", "band": "minmax"}
        cmp = {"id": "c1", "a": ["gamma", "train/loss"], "b": ["gamma", "reward/mean"], "op": "diff"}
        p1.goto(standalone_url(base, [
            ("logdir", paths["b"]), ("tag", "train/loss"), ("agg", json.dumps(agg)), ("cmp", json.dumps(cmp)),
            ("dim", "hparam:lr"),
        ]))
        p2.goto(standalone_url(base, [("tag", "train/loss")]))
        p1.get_by_test_id("run-gamma").wait_for()
        p2.get_by_test_id("run-alpha").wait_for()
        chart_points(p1, "train/loss", {"gamma": 20}, p1)
        chart_points(p2, "train/loss", {"alpha": 50, "beta": 50}, p2)
        card = p1.get_by_test_id("chart-agg-g1")
        wait_for(lambda: card.get_attribute("data-state") == "ready", p1, what="aggregation drawn")
        points = json.loads(card.locator(".tbp-plot").get_attribute("data-points"))
        assert list(points) == ["all (n=1)"] and points["all (n=1)"] > 0, points  # one group: gamma
        chart_points(p1, "cmp-c1", {"A − B": 20}, p1)
        routes = {route_of(u) for u in asked}
        assert {"runs", "tags", "series", "aggregate", "compare", "hparams"} <= routes, routes
        quoted = "logdir=" + urllib.parse.quote(paths["b"], safe="")
        assert [u for u in asked if quoted not in u] == []

        # the second one switches to c with the picker (typed, Enter); the first stays on b
        field = open_picker(p2)
        field.fill(paths["c"])
        field.press("Enter")
        p2.get_by_test_id("run-delta").wait_for()
        assert "logdir=" + urllib.parse.quote(paths["c"], safe="") in p2.url
        with p1.expect_response(lambda r: route_of(r.url) == "runs"):
            p1.get_by_test_id("reload").click()
        chart_points(p1, "train/loss", {"gamma": 20}, p1)
        assert listed_runs(p1) == ["gamma"]
        assert listed_runs(p2) == ["delta"]
        p2.get_by_test_id("tag-val/score").click()
        chart_points(p2, "val/score", {"delta": 10}, p2)
        assert errors == []
    finally:
        for c in contexts:
            c.close()


class _EmbedHandler(http.server.BaseHTTPRequestHandler):
    src = ""

    def do_GET(self):  # noqa: N802 - http.server's name
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>portal</title></head><body>"
            "<h1>Another site</h1><iframe id='tb' src='%s' width='1300' height='800'></iframe></body></html>"
            % self.src.replace("&", "&amp;").replace("'", "&#39;")
        ).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_standalone_view_embedded_by_another_site(page, env):
    """A page on http://localhost:PORT (another site than TensorBoard's 127.0.0.1) frames the standalone
    view of directory c with a run and a tag: the chart draws its points inside the iframe."""
    base, paths = env
    src = standalone_url(base, [("logdir", paths["c"]), ("run", "delta"), ("tag", "val/score")])
    handler = type("Handler", (_EmbedHandler,), {"src": src})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page.goto("http://localhost:%d/" % server.server_address[1])
        frame = page.frame_locator("#tb")
        frame.get_by_test_id("run-delta").wait_for()
        card = chart_points(frame, "val/score", {"delta": 10}, page)
        ys = card.locator(".tbp-plot").evaluate("el => Array.from(el.uplot.data[1])")
        assert ys == pytest.approx([value("delta", "val/score", s) for s in range(10)], rel=1e-6)
        assert frame.get_by_test_id("run-delta").is_checked()
        inner = next(f for f in page.frames if "/standalone" in f.url)
        assert inner.evaluate("() => location.origin") != page.evaluate("() => location.origin")
        # the page's own URL is left alone, and so is the iframe's address
        assert "logdir=" in inner.url and page.url.startswith("http://localhost:")
        expect(frame.get_by_test_id("logdir-current")).to_have_attribute("data-path", paths["c"])
        assert page.page_errors == []
    finally:
        server.shutdown()
        server.server_close()


def upload(page, path, run=""):
    page.get_by_test_id("upload-button").click()
    page.get_by_test_id("upload-run").fill(run)
    page.get_by_test_id("upload-input").set_input_files(path)
    return page.get_by_test_id("upload-status")


def test_upload_of_a_run_shows_it_with_its_chart(page, env, tmp_path):
    base, paths = env
    write_run(str(tmp_path / "local"), {"upload/score": 25})
    (event_file,) = [str(p) for p in (tmp_path / "local").iterdir() if "tfevents" in p.name]
    page.goto(standalone_url(base))
    page.get_by_test_id("run-alpha").wait_for()
    status = upload(page, event_file, run="my upload")
    expect(status).to_contain_text("Uploaded run 'my_upload'")
    expect(status).not_to_have_class(re.compile(r"\berror\b"))
    # the tab switched to the upload directory, selected the new run and opened its chart
    page.get_by_test_id("run-my_upload").wait_for()
    assert page.get_by_test_id("run-my_upload").is_checked()
    expect(page.get_by_test_id("logdir-current")).to_have_attribute("data-path", paths["uploads"])
    assert "logdir=" + urllib.parse.quote(paths["uploads"], safe="") in page.url
    card = chart_points(page, "upload/score", {"my_upload": 25}, page)
    ys = card.locator(".tbp-plot").evaluate("el => Array.from(el.uplot.data[1])")
    assert ys == pytest.approx([value("local", "upload/score", s) for s in range(25)], rel=1e-6)
    assert os.path.isdir(os.path.join(paths["uploads"], "my_upload"))
    assert page.page_errors == []


def test_upload_of_an_invalid_file_is_refused_with_the_servers_message(page, env, tmp_path):
    base, paths = env
    bad = tmp_path / "notes.txt"
    bad.write_text("these are notes, not an event file\n")
    # what the server says about this file
    request = urllib.request.Request(
        base + "/data/plugin/tb_plus/upload?filename=notes.txt", data=bad.read_bytes(), method="POST",
        headers={"X-TB-Plus-Upload": "1", "Content-Type": "application/octet-stream"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    message = refused.value.read().decode("utf-8").strip()
    assert refused.value.code == 400 and message.startswith("Upload refused: "), message

    page.goto(standalone_url(base, [("tag", "train/loss")]))
    chart_points(page, "train/loss", {"alpha": 50, "beta": 50}, page)
    status = upload(page, str(bad), run="notes")
    # the server names the staged file with the time it arrived: that number may differ
    expect(status).to_have_text(re.compile("^" + re.sub(r"\d+", r"\\d+", re.escape(message)) + "$"))
    expect(status).to_have_class(re.compile(r"\berror\b"))
    # nothing else moved
    expect(page.get_by_test_id("logdir-current")).to_have_attribute("data-default", "true")
    assert listed_runs(page) == ["alpha", "beta"]
    assert "logdir" not in page.url
    assert not os.path.exists(os.path.join(paths["uploads"], "notes"))
    assert page.page_errors == []


def test_refused_directories_are_shown_and_the_view_stays(page, env):
    base, paths = env
    page.goto(standalone_url(base, [("tag", "train/loss")]))
    card = chart_points(page, "train/loss", {"alpha": 50, "beta": 50}, page)
    field = open_picker(page)
    error = page.get_by_test_id("logdir-error")
    cases = [
        ("/etc", "Permission denied: log directory '/etc' is outside the allowed roots"),
        ("../../etc", "Permission denied: log directory '../../etc' is outside the allowed roots"),
        (paths["root"] + "/nope", "Not found: no log directory '%s/nope'" % paths["root"]),
    ]
    for typed, message in cases:
        with page.expect_response(lambda r: route_of(r.url) == "runs" and "logdir=" in r.url and r.status >= 400):
            field.fill(typed)
            field.press("Enter")
        expect(error).to_have_text(message)
        expect(page.get_by_test_id("logdir-panel")).to_be_visible()
        # the current view is untouched
        expect(page.get_by_test_id("logdir-current")).to_have_attribute("data-default", "true")
        assert listed_runs(page) == ["alpha", "beta"]
        assert card.get_attribute("data-state") == "ready"
        assert json.loads(card.locator(".tbp-plot").get_attribute("data-points")) == {"alpha": 50, "beta": 50}
        assert "logdir" not in page.url
    # a good directory clears the error
    field.fill(paths["c"])
    field.press("Enter")
    page.get_by_test_id("run-delta").wait_for()
    expect(error).to_be_hidden()

    # a refused directory in the URL itself: the message, no runs, no crash
    page.goto(standalone_url(base, [("logdir", "/etc")]))
    expect(page.get_by_test_id("logdir-error")).to_have_text(
        "Permission denied: log directory '/etc' is outside the allowed roots"
    )
    assert listed_runs(page) == []
    assert page.page_errors == []


def test_first_index_shows_progress_and_polls_until_runs_appear(page, env):
    """While /runs says the directory is being indexed (faked here, the real index is too quick to catch),
    the tab shows the progress, polls about once a second and asks for nothing else; then it loads."""
    base, paths = env
    state = {"indexing": True, "faked": 0}
    empty = {k: [] for k in ("name", "path", "first_write", "last_write", "last_step", "size", "files", "tags",
                             "status", "live", "diagnostics")}

    def handle(route):
        if state["indexing"]:
            state["faked"] += 1
            route.fulfill(status=200, content_type="application/json", body=json.dumps({
                "runs": empty, "hparams": {}, "live_seconds": 60, "stale_seconds": 1800,
                "progress": {"files_done": 1, "files_total": 4, "bytes_done": 1024, "bytes_total": 4096, "indexing": True},
            }))
        else:
            route.continue_()

    page.route(re.compile(r".*/data/plugin/tb_plus/runs\?.*logdir=.*"), handle)
    asked = []
    page.on("request", lambda r: asked.append(r.url) if route_of(r.url) in DATA_ROUTES else None)
    page.goto(standalone_url(base, [("logdir", paths["c"]), ("tag", "val/score")]))
    expect(page.get_by_test_id("progress")).to_be_visible()
    expect(page.get_by_test_id("progress-text")).to_contain_text("1/4 files")
    expect(page.get_by_test_id("run-summary")).to_contain_text("Indexing")
    wait_for(lambda: state["faked"] >= 3, page, timeout_s=10, what="three polls of /runs")
    assert [u for u in asked if route_of(u) != "runs"] == []  # no tags, series or hparams meanwhile

    state["indexing"] = False
    page.get_by_test_id("run-delta").wait_for()
    expect(page.get_by_test_id("progress")).to_be_hidden()
    page.get_by_test_id("tag-tree").get_by_test_id("tag-val/score").wait_for()
    chart_points(page, "val/score", {"delta": 10}, page)
    assert page.page_errors == []


def test_without_upload_dir_there_is_no_upload_button(page, tensorboard_url):
    """The session's TensorBoard has no --tb_plus_upload_dir: /logdirs says so and the tab hides Upload."""
    from .conftest import RUNS

    page.goto(standalone_url(tensorboard_url))
    page.get_by_test_id("run-" + RUNS[0]).wait_for()
    current = page.get_by_test_id("logdir-current")
    wait_for(lambda: current.get_attribute("data-path"), page, what="the default directory shown")
    expect(current).to_have_attribute("data-default", "true")
    expect(page.get_by_test_id("upload-button")).to_be_hidden()
    assert page.page_errors == []
