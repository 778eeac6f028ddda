"""The TB+ tab in a real TensorBoard, driven by headless Chromium.

The tab lives in TensorBoard's plugin iframe (data/plugin_entry.html?name=tb_plus). Each chart's
uPlot instance hangs off its `.tbp-plot` element (`el.uplot`), which also carries `data-points`
(JSON {run: points drawn}) and `data-xmin`/`data-xmax` (the x scale); each legend row carries
`data-run`, `data-x` and `data-y`.
"""

import json
import os
import time
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # conftest skips every test here with the reason
    expect = None

from .conftest import NAN_RUN, NAN_STEP, RUNS, SPIKE_RUN, SPIKE_STEP, SPIKE_VALUE, STEPS, loss_value

PLUGIN_FRAME = 'iframe[src*="plugin_entry.html"]'
STANDALONE_ROUTES = ("/data/plugin/tb_plus/standalone",)


def open_tab(page, base):
    page.goto(base + "/#tb_plus")
    frame = page.frame_locator(PLUGIN_FRAME)
    frame.get_by_test_id("run-list").wait_for()
    frame.get_by_test_id("run-" + RUNS[0]).wait_for()
    return frame


def plot_of(frame, tag):
    return frame.get_by_test_id("chart-" + tag).locator(".tbp-plot")


def wait_points(plot, expected, page, timeout_ms=15000):
    """Waits until the plot's data-points equals `expected` (a dict run -> count)."""
    deadline_steps = timeout_ms // 100
    last = None
    for _ in range(deadline_steps):
        raw = plot.get_attribute("data-points")
        last = json.loads(raw) if raw else None
        if last == expected:
            return last
        page.wait_for_timeout(100)
    raise AssertionError("data-points stayed %r, expected %r" % (last, expected))


def point_on_plot(plot, step, y_frac=0.5):
    """Page coordinates of x=step (at y_frac of the height) on the plot's .u-over."""
    over = plot.locator(".u-over")
    box = over.bounding_box()
    x = plot.evaluate("(el, step) => el.uplot.valToPos(step, 'x')", step)
    return box["x"] + x, box["y"] + box["height"] * y_frac, box


def legend_row(plot, run):
    return plot.get_by_test_id("chart-legend").locator('[data-run="%s"]' % run)


def open_chart(page, base, tag="train/loss"):
    frame = open_tab(page, base)
    frame.get_by_test_id("tag-" + tag).click()
    plot = plot_of(frame, tag)
    plot.locator("canvas").wait_for()
    return frame, plot


def test_runs_and_tag_tree_listed(page, tensorboard_url):
    frame = open_tab(page, tensorboard_url)
    for run in RUNS:
        box = frame.get_by_test_id("run-" + run)
        assert box.is_checked(), run  # all runs selected by default (up to 10)
        badge = frame.get_by_test_id("run-badge-" + run)
        # live within 60 s of the last write, stale after: the session's logdir may have been written
        # well before this test runs
        assert badge.inner_text() in ("live", "stale", "finished")
    tree = frame.get_by_test_id("tag-tree")
    tree.get_by_test_id("tag-train/loss").wait_for()
    for tag in ("train/loss", "train/acc", "eval/loss"):
        assert tree.get_by_test_id("tag-" + tag).is_visible(), tag
    for group in ("train", "eval"):
        assert tree.get_by_test_id("group-" + group).is_visible(), group
    # collapse and expand a group
    frame.get_by_test_id("toggle-train").click()
    assert tree.get_by_test_id("tag-train/loss").count() == 0
    frame.get_by_test_id("toggle-train").click()
    assert tree.get_by_test_id("tag-train/loss").is_visible()
    assert frame.get_by_test_id("empty").is_visible()
    assert frame.get_by_test_id("progress").is_hidden()  # not indexing
    assert page.page_errors == []


def test_chart_draws_every_point_of_both_runs(page, tensorboard_url):
    frame, plot = open_chart(page, tensorboard_url)
    wait_points(plot, {run: STEPS for run in RUNS}, page)
    info = plot.evaluate(
        """el => {
            const u = el.uplot;
            return {
                labels: u.series.slice(1).map(s => s.label),
                xs: u.data[0].length,
                counts: u.data.slice(1).map(col => col.filter(v => v !== undefined).length),
                nulls: u.data.slice(1).map(col => col.filter(v => v === null).length),
                width: u.width,
            };
        }"""
    )
    assert info["labels"] == list(RUNS)
    assert info["xs"] == STEPS
    assert info["counts"] == [STEPS, STEPS]
    # NaN is drawn as a gap (null), in run_b only
    assert info["nulls"] == [0, 1]
    # the canvas really has run_a's colour (its legend swatch's: colours come from the run name) on it
    rgb = legend_row(plot, RUNS[0]).locator(".tbp-swatch").evaluate(
        "el => getComputedStyle(el).backgroundColor.match(/\\d+/g).slice(0, 3).map(Number)"
    )
    painted = plot.evaluate(
        """(el, rgb) => {
            const c = el.querySelector('canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4)
                if (Math.abs(d[i] - rgb[0]) < 40 && Math.abs(d[i + 1] - rgb[1]) < 40 && Math.abs(d[i + 2] - rgb[2]) < 40 && d[i + 3] > 100) n++;
            return n;
        }""",
        rgb,
    )
    assert painted > 100, painted
    # the chart asked for its own pixel width
    assert frame.get_by_test_id("chart-train/loss").get_attribute("data-width") == str(info["width"])
    assert page.page_errors == []


def test_hover_shows_exact_values(page, tensorboard_url):
    frame, plot = open_chart(page, tensorboard_url)
    wait_points(plot, {run: STEPS for run in RUNS}, page)

    x, y, _ = point_on_plot(plot, SPIKE_STEP)
    page.mouse.move(x, y)
    row = legend_row(plot, SPIKE_RUN)
    expect(row).to_have_attribute("data-x", str(SPIKE_STEP))
    expect(row).to_have_attribute("data-y", "123.5")
    assert "123.5" in row.inner_text()
    other = legend_row(plot, "run_b")
    expected_b = loss_value("run_b", SPIKE_STEP)
    expect(other).to_have_attribute("data-x", str(SPIKE_STEP))
    assert float(other.get_attribute("data-y")) == pytest.approx(expected_b, rel=1e-6)

    x, y, _ = point_on_plot(plot, NAN_STEP)
    page.mouse.move(x, y)
    row = legend_row(plot, NAN_RUN)
    expect(row).to_have_attribute("data-x", str(NAN_STEP))
    expect(row).to_have_attribute("data-y", "NaN")
    expect(row).to_contain_text("NaN")
    assert SPIKE_VALUE == loss_value(SPIKE_RUN, SPIKE_STEP)
    assert page.page_errors == []


def test_drag_zooms_and_refetches_range(page, tensorboard_url):
    frame, plot = open_chart(page, tensorboard_url)
    wait_points(plot, {run: STEPS for run in RUNS}, page)
    assert float(plot.get_attribute("data-xmin")) == 0
    assert float(plot.get_attribute("data-xmax")) == STEPS - 1

    x0, y, _ = point_on_plot(plot, 50)
    x1, _, _ = point_on_plot(plot, 100)
    with page.expect_request(lambda r: "/data/plugin/tb_plus/series" in r.url and "xmin=" in r.url and "xmax=" in r.url) as req:
        page.mouse.move(x0, y)
        page.mouse.down()
        page.mouse.move((x0 + x1) / 2, y, steps=5)
        page.mouse.move(x1, y, steps=5)
        page.mouse.up()
    url = req.value.url
    xmin = int(re.search(r"xmin=(-?\d+)", url).group(1))
    xmax = int(re.search(r"xmax=(-?\d+)", url).group(1))
    assert 45 <= xmin <= 51 and 99 <= xmax <= 105, url
    assert "width=" in url

    # the drawn range shrank, and the chart holds exactly the points of the range
    lo, hi = float(plot.get_attribute("data-xmin")), float(plot.get_attribute("data-xmax"))
    assert 45 <= lo <= 51 and 99 <= hi <= 105, (lo, hi)
    n = xmax - xmin + 1
    wait_points(plot, {run: n for run in RUNS}, page)
    assert frame.get_by_test_id("chart-train/loss").get_attribute("data-zoomed") == "true"

    # double-click resets to the whole series
    ox, oy, _ = point_on_plot(plot, 75)
    page.mouse.dblclick(ox, oy)
    wait_points(plot, {run: STEPS for run in RUNS}, page)
    assert float(plot.get_attribute("data-xmin")) == 0
    assert float(plot.get_attribute("data-xmax")) == STEPS - 1
    assert page.page_errors == []


def test_group_click_filter_and_regex(page, tensorboard_url):
    frame = open_tab(page, tensorboard_url)
    frame.get_by_test_id("group-train").click()
    for tag in ("train/acc", "train/loss"):
        plot_of(frame, tag).locator("canvas").wait_for()
    assert frame.locator(".tbp-chart").count() == 2
    # clicking a selected leaf removes its chart
    frame.get_by_test_id("tag-train/acc").click()
    frame.get_by_test_id("chart-train/acc").wait_for(state="detached")

    tree = frame.get_by_test_id("tag-tree")
    with page.expect_response(lambda r: "/tags?" in r.url and "filter=eval" in r.url):
        frame.get_by_test_id("tag-search").fill("eval")
    tree.get_by_test_id("tag-train/loss").wait_for(state="detached")
    assert tree.get_by_test_id("tag-eval/loss").is_visible()

    frame.get_by_test_id("tag-search-mode").select_option("regex")
    with page.expect_response(lambda r: "/tags?" in r.url and "mode=regex" in r.url):
        frame.get_by_test_id("tag-search").fill("^train/(acc|loss)$")
    tree.get_by_test_id("tag-train/acc").wait_for()
    assert tree.get_by_test_id("tag-eval/loss").count() == 0

    with page.expect_response(lambda r: "/tags?" in r.url and r.status == 400):
        frame.get_by_test_id("tag-search").fill("(")
    expect(frame.get_by_test_id("tag-error")).to_be_visible()
    assert page.page_errors == []


def test_run_toggle_and_reload(page, tensorboard_url):
    frame, plot = open_chart(page, tensorboard_url)
    wait_points(plot, {run: STEPS for run in RUNS}, page)
    frame.get_by_test_id("run-run_b").uncheck()
    wait_points(plot, {"run_a": STEPS}, page)
    frame.get_by_test_id("run-run_b").check()
    wait_points(plot, {run: STEPS for run in RUNS}, page)

    # reload refetches runs and, with the cache dropped, the series
    with page.expect_request(lambda r: r.url.endswith("/data/plugin/tb_plus/runs")):
        with page.expect_request(lambda r: "/data/plugin/tb_plus/series" in r.url):
            frame.get_by_test_id("reload").click()
    wait_points(plot, {run: STEPS for run in RUNS}, page)
    assert page.page_errors == []


def test_standalone_page(page, tensorboard_url):
    route = None
    for candidate in STANDALONE_ROUTES:
        try:
            with urllib.request.urlopen(tensorboard_url + candidate, timeout=5) as r:
                if r.status == 200 and "html" in r.headers.get("Content-Type", ""):
                    route = candidate
                    break
        except urllib.error.HTTPError:
            continue
    if route is None:
        pytest.skip("the backend serves no standalone page (tried %s)" % ", ".join(STANDALONE_ROUTES))
    page.goto(tensorboard_url + route)
    page.get_by_test_id("run-" + RUNS[0]).wait_for()
    page.get_by_test_id("tag-train/loss").click()
    plot = page.get_by_test_id("chart-train/loss").locator(".tbp-plot")
    wait_points(plot, {run: STEPS for run in RUNS}, page)
    assert page.page_errors == []


def test_standalone_page_takes_its_state_from_the_url(page, tensorboard_url):
    """The embeddable page opens the runs and charts named in its URL, nothing else."""
    query = urllib.parse.urlencode([("run", RUNS[1]), ("tag", "eval/loss"), ("tag", "train/acc")])
    page.goto(f"{tensorboard_url}/data/plugin/tb_plus/standalone?{query}")
    for tag, points in (("eval/loss", STEPS // 10), ("train/acc", STEPS)):
        wait_points(page.get_by_test_id(f"chart-{tag}").locator(".tbp-plot"), {RUNS[1]: points}, page)
    assert page.get_by_test_id("chart-train/loss").count() == 0
    assert page.get_by_test_id("run-" + RUNS[1]).is_checked()
    assert not page.get_by_test_id("run-" + RUNS[0]).is_checked()
    assert page.page_errors == []


def test_new_points_appear_on_focus(page, live_tensorboard):
    """Appending to a run shows up after the window regains focus (no 30 s poll wait)."""
    from tensorboardX import SummaryWriter

    base, root = live_tensorboard
    frame, plot = open_chart(page, base)
    wait_points(plot, {run: STEPS for run in RUNS}, page)

    extra = 50
    writer = SummaryWriter(os.path.join(root, "run_a"), flush_secs=1)
    for step in range(STEPS, STEPS + extra):
        writer.add_scalar("train/loss", 0.5, step)
    writer.close()
    # wait until the server has read the new file
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(base + "/data/plugin/tb_plus/runs", timeout=5) as r:
            answer = json.loads(r.read())
        if answer["runs"]["last_step"][answer["runs"]["name"].index("run_a")] == STEPS + extra - 1:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the server never saw the appended points")

    with page.expect_request(lambda r: "/data/plugin/tb_plus/series" in r.url and "run=run_a" in r.url):
        plot.evaluate("el => el.ownerDocument.defaultView.dispatchEvent(new Event('focus'))")
    wait_points(plot, {"run_a": STEPS + extra, "run_b": STEPS}, page)
    assert float(plot.get_attribute("data-xmax")) == STEPS + extra - 1
    assert page.page_errors == []


def test_tensorboard_reload_button_reaches_the_tab(page, tensorboard_url):
    """TensorBoard's own reload button talks to the tab over the host channel (DataReloaded)."""
    open_tab(page, tensorboard_url)
    page.wait_for_timeout(500)  # let the tab's first requests settle
    button = page.locator("button.reload-button")
    if button.count() == 0:
        pytest.skip("this TensorBoard has no button.reload-button")
    with page.expect_request(lambda r: r.url.endswith("/data/plugin/tb_plus/runs")):
        button.first.click()
    assert page.page_errors == []
