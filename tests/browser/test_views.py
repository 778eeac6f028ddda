"""Chart views in the browser: state in the URL, x axes, log scales, smoothing, refresh, highlight by
dimension, pins, custom / aggregation / comparison charts.

Every uPlot series carries `tbpRole` ("line", "raw", "lo", "hi") and `tbpKey` (its legend label) in its
options; `width` and `alpha` are uPlot's own series options. The chart element (`.tbp-plot`) carries
`data-xticks` (the x axis labels drawn last) and `data-xkind`.
"""

import json
import math
import os
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

from .conftest import EPOCH_EVERY, RUNS, STEPS, STEPS_PER_EPOCH, loss_value, new_context
from .test_tab import PLUGIN_FRAME, wait_points

STANDALONE = "/data/plugin/tb_plus/standalone"


def standalone(page, base, params):
    page.goto(base + STANDALONE + "?" + urllib.parse.urlencode(params))
    page.get_by_test_id("run-" + RUNS[0]).wait_for()
    return page


def plot(page_or_frame, chart_id):
    return page_or_frame.get_by_test_id("chart-" + chart_id).locator(".tbp-plot")


def read_chart(plot_locator):
    """The uPlot instance's x column and, per series, role, key, label, width, alpha and y column."""
    return plot_locator.evaluate(
        """el => {
            const u = el.uplot;
            return {
                x: Array.from(u.data[0]),
                bands: (u.bands || []).length,
                xdistr: u.scales.x.distr, ydistr: u.scales.y.distr,
                series: u.series.slice(1).map((s, i) => ({
                    role: s.tbpRole, key: s.tbpKey, label: s.label, width: s.width, alpha: s.alpha,
                    y: Array.from(u.data[i + 1], v => (v === undefined || v === null) ? null : v),
                })),
            };
        }"""
    )


def wait_for(predicate, page, timeout_s=15.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        page.wait_for_timeout(100)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def chart_ready(page, chart_id):
    card = page.get_by_test_id("chart-" + chart_id)
    wait_for(lambda: card.get_attribute("data-state") in ("ready", "error"), page, what=chart_id + " loaded")
    assert card.get_attribute("data-state") == "ready", card.get_by_test_id("chart-status").inner_text()
    return plot(page, chart_id)


def float32(v):
    return float(np.float32(v))


def test_fractional_epoch_labels_on_the_x_axis(page, tensorboard_url):
    """x = the run's `epoch` tag (logged every 10 steps, step/40): fractional x values and tick labels."""
    standalone(page, tensorboard_url, [("tag", "train/loss"), ("x", "tag:epoch")])
    p = chart_ready(page, "train/loss")
    assert p.get_attribute("data-xkind") == "float"
    data = read_chart(p)
    xs = np.array(data["x"])
    last_epoch_step = (STEPS - 1) // EPOCH_EVERY * EPOCH_EVERY
    # x at step s is s/40 (interpolated between the epoch points); steps past the last epoch point dropped
    np.testing.assert_allclose(xs, np.arange(0, last_epoch_step + 1) / STEPS_PER_EPOCH, rtol=1e-6)
    assert all(float(t) >= 0 for t in json.loads(p.get_attribute("data-xticks")) if t)
    # zoom to epochs 1..2.5 by dragging: the data is refetched for that x range, the ticks are fractional
    box = p.locator(".u-over").bounding_box()
    x0 = box["x"] + p.evaluate("el => el.uplot.valToPos(1.0, 'x')")
    x1 = box["x"] + p.evaluate("el => el.uplot.valToPos(2.5, 'x')")
    y = box["y"] + box["height"] / 2
    with page.expect_request(lambda r: "/data/plugin/tb_plus/series" in r.url and "xmin=" in r.url):
        page.mouse.move(x0, y)
        page.mouse.down()
        page.mouse.move((x0 + x1) / 2, y, steps=4)
        page.mouse.move(x1, y, steps=4)
        page.mouse.up()
    wait_for(lambda: 0.9 < float(p.get_attribute("data-xmin")) < 1.1, page, what="zoomed x range")
    ticks = json.loads(p.get_attribute("data-xticks"))
    fractional = [t for t in ticks if t and float(t) != int(float(t))]
    assert fractional, ticks
    for t in ticks:
        assert t == "" or float(t) * 1000 == pytest.approx(round(float(t) * 1000)), t  # no float noise like 0.30000000000000004
    # the refetched points replace the whole range's once their answer is in (it may trail the new scale)
    wait_for(lambda: all(1.0 <= x <= 2.5 for x in read_chart(p)["x"]), page, what="only points inside the zoomed epochs")
    page.mouse.move(box["x"] + 5, box["y"] - 20)
    # the legend shows the exact fractional epoch under the cursor
    over = p.locator(".u-over")
    box = over.bounding_box()
    x = p.evaluate("el => el.uplot.valToPos(1.5, 'x')")
    page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
    row = p.get_by_test_id("chart-legend").locator('[data-run="%s"]' % RUNS[0])
    wait_for(lambda: row.get_attribute("data-x") == "1.5", page, what="legend x 1.5")
    assert float(row.get_attribute("data-y")) == pytest.approx(loss_value(RUNS[0], 60), rel=1e-6)
    assert page.page_errors == []


def test_wall_time_axis_is_dates_and_log_scales(page, tensorboard_url):
    standalone(page, tensorboard_url, [("tag", "train/acc"), ("x", "wall_time"), ("ylog", "1")])
    p = chart_ready(page, "train/acc")
    assert p.get_attribute("data-xkind") == "time"
    data = read_chart(p)
    assert data["ydistr"] == 3 and data["xdistr"] == 1
    # wall time in seconds since the epoch, labelled as times of day / dates (never as 1.7e9)
    assert data["x"][0] > 1e9
    ticks = [t for t in json.loads(p.get_attribute("data-xticks")) if t]
    assert ticks and all(":" in t or "/" in t for t in ticks), ticks
    # per-chart override: log x on this chart only
    page.get_by_test_id("chart-train/acc").get_by_test_id("chart-log").select_option("xy")
    wait_for(lambda: read_chart(p)["xdistr"] == 3, page, what="log x")
    assert "topt=" in page.url
    assert page.page_errors == []


def test_n_series_overlaid_in_a_custom_chart(page, tensorboard_url):
    """A custom chart built in the UI from three (run, tag) series, two tags mixed."""
    standalone(page, tensorboard_url, [("run", r) for r in RUNS])
    page.get_by_test_id("builders").locator("summary").click()
    pairs = [(RUNS[0], "train/loss"), (RUNS[1], "train/loss"), (RUNS[0], "eval/loss")]
    for run, tag in pairs:
        page.get_by_test_id("custom-run").select_option(run)
        page.get_by_test_id("custom-tag").select_option(tag)
        page.get_by_test_id("custom-add").click()
    page.get_by_test_id("custom-create").click()
    card = page.locator('[data-kind="custom"]')
    card.wait_for()
    p = card.locator(".tbp-plot")
    expected = {"%s:%s" % pair: (STEPS // 10 if pair[1] == "eval/loss" else STEPS) for pair in pairs}
    wait_points(p, expected, page)
    data = read_chart(p)
    lines = [s for s in data["series"] if s["role"] == "line"]
    assert [s["key"] for s in lines] == list(expected)
    assert len(set(data["x"])) == STEPS  # joined on the union of steps
    # values on the chart are the written ones
    i = data["x"].index(100)
    assert lines[0]["y"][i] == pytest.approx(loss_value(RUNS[0], 100), rel=1e-6)
    assert lines[1]["y"][i] == pytest.approx(loss_value(RUNS[1], 100), rel=1e-6)
    assert lines[2]["y"][i] == pytest.approx(1.5 * math.exp(-100 / 50.0), rel=1e-6)
    assert "custom=" in page.url
    assert page.page_errors == []


def test_aggregation_band_matches_numpy(page, tensorboard_url):
    spec = {"id": "t1", "tags": ["train/loss"], "groupBy": "none", "stat": "mean", "band": "minmax"}
    standalone(page, tensorboard_url, [("agg", json.dumps(spec))])
    p = chart_ready(page, "agg-t1")
    data = read_chart(p)
    assert data["bands"] == 1
    roles = {s["role"]: s for s in data["series"]}
    assert set(roles) == {"lo", "hi", "line"}
    assert roles["line"]["key"].endswith("(n=%d)" % len(RUNS))
    grid = np.array(data["x"])
    assert grid[0] == 0 and grid[-1] == STEPS - 1 and len(grid) > 100
    np.testing.assert_allclose(np.diff(grid), grid[1] - grid[0], rtol=1e-9)
    # expected: each run's series (NaN dropped) interpolated on the grid, then mean / min / max
    steps = np.arange(STEPS, dtype=float)
    curves = []
    for run in RUNS:
        v = np.array([float32(loss_value(run, s)) for s in range(STEPS)])
        ok = np.isfinite(v)
        curves.append(np.interp(grid, steps[ok], v[ok]))
    curves = np.array(curves)
    np.testing.assert_allclose(roles["line"]["y"], curves.mean(axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(roles["lo"]["y"], curves.min(axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(roles["hi"]["y"], curves.max(axis=0), rtol=1e-6, atol=1e-9)
    assert page.page_errors == []


def test_comparison_chart_is_a_minus_b(page, tensorboard_url):
    spec = {"id": "c1", "a": [RUNS[1], "train/acc"], "b": [RUNS[0], "train/loss"], "op": "diff"}
    standalone(page, tensorboard_url, [("cmp", json.dumps(spec))])
    p = chart_ready(page, "cmp-c1")
    data = read_chart(p)
    y = data["series"][0]["y"]
    for step in (0, 50, 199):
        i = data["x"].index(step)
        expected = float32(1.0 - step / (2.0 * STEPS)) - float32(loss_value(RUNS[0], step))
        assert y[i] == pytest.approx(expected, rel=1e-5, abs=1e-6), step
    assert page.page_errors == []


def test_emphasised_and_dimmed_series_differ_in_width_and_alpha(page, tensorboard_url):
    standalone(page, tensorboard_url, [("tag", "train/loss")])
    p = chart_ready(page, "train/loss")
    before = read_chart(p)["series"]
    assert len({(s["width"], s["alpha"]) for s in before}) == 1  # no highlight yet: all alike
    page.get_by_test_id("dim-kind").select_option("run_regex")
    page.get_by_test_id("dim-arg").fill(r"run_(\w)")
    page.get_by_test_id("dim-arg").press("Enter")
    page.get_by_test_id("dim-value-b").wait_for()  # colour legend of the dimension's values
    page.get_by_test_id("dim-value-a").wait_for()
    page.get_by_test_id("hl-value").select_option("b")

    def styles():
        return {s["key"]: (s["width"], s["alpha"]) for s in read_chart(p)["series"] if s["role"] == "line"}

    got = wait_for(lambda: (lambda st: st if st.get("run_b", (0, 0))[0] > st.get("run_a", (9, 9))[0] else None)(styles()), page,
                   what="run_b emphasised")
    (wb, ab), (wa, aa) = got["run_b"], got["run_a"]
    assert wb > wa and ab > aa and ab == 1 and aa < 0.5, got
    assert "dim=run_regex" in page.url and "hl=b" in page.url
    # hovering emphasises the series nearest the cursor (zoomed to steps 10..60 first: the spike at
    # step 137 would squeeze both curves into a few pixels)
    box = p.locator(".u-over").bounding_box()
    y0 = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + p.evaluate("el => el.uplot.valToPos(10, 'x')"), y0)
    page.mouse.down()
    page.mouse.move(box["x"] + p.evaluate("el => el.uplot.valToPos(60, 'x')"), y0, steps=6)
    page.mouse.up()
    wait_for(lambda: read_chart(p)["x"][-1] <= 61, page, what="zoomed to 10..60")
    page.mouse.move(box["x"] - 50, box["y"] - 50)
    px = p.evaluate("el => el.uplot.valToPos(20, 'x')")
    py = p.evaluate("(el, v) => el.uplot.valToPos(v, 'y')", loss_value("run_a", 20))
    page.mouse.move(box["x"] + px, box["y"] + py)
    wait_for(lambda: p.get_attribute("data-hover") == "run_a", page, what="hover on run_a")
    assert styles()["run_a"][0] > wa
    assert page.page_errors == []


def test_smoothing_draws_raw_curve_faintly(page, tensorboard_url):
    standalone(page, tensorboard_url, [("tag", "train/acc"), ("smooth", "ema:0.9")])
    p = chart_ready(page, "train/acc")
    series = read_chart(p)["series"]
    raw = [s for s in series if s["role"] == "raw"]
    line = [s for s in series if s["role"] == "line"]
    assert len(raw) == len(line) == len(RUNS)
    assert all(r["alpha"] < 0.5 and r["alpha"] < l["alpha"] for r, l in zip(raw, line))
    # train/acc falls linearly: the debiased EMA lags above the raw values after the start
    i = 100
    assert line[0]["y"][i] > raw[0]["y"][i]
    assert raw[0]["y"][i] == pytest.approx(1.0 - i / (2.0 * STEPS), rel=1e-6)
    # the median window control switches the smoothing and lands in the URL
    page.get_by_test_id("smooth-kind").select_option("median")
    page.get_by_test_id("median-window").fill("9")
    page.get_by_test_id("median-window").press("Enter")
    wait_for(lambda: "smooth=median%3A9" in page.url, page, what="median in the URL")
    assert page.page_errors == []


def test_pins_go_first_and_persist(page, tensorboard_url):
    standalone(page, tensorboard_url, [("tag", "train/loss"), ("tag", "eval/loss")])
    order = lambda: page.locator(".tbp-chart").evaluate_all("els => els.map(e => e.dataset.tag)")  # noqa: E731
    wait_for(lambda: order() == ["train/loss", "eval/loss"], page, what="initial order")
    page.get_by_test_id("pin-input").fill("eval/*")
    page.get_by_test_id("pin-add").click()
    wait_for(lambda: order() == ["eval/loss", "train/loss"], page, what="pinned first")
    assert page.get_by_test_id("chart-eval/loss").get_attribute("data-pinned") == "true"
    page.reload()
    page.get_by_test_id("run-" + RUNS[0]).wait_for()
    wait_for(lambda: order() == ["eval/loss", "train/loss"], page, what="pinned first after reload")
    assert page.get_by_test_id("pin-eval/*").is_visible()


def test_url_restores_the_view_in_a_fresh_browser(browser, tensorboard_url):
    """Choices made in the UI land in the URL; the URL in a new context (empty storage) shows the same."""
    ctx = new_context(browser, viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    try:
        page.goto(tensorboard_url + STANDALONE)
        page.get_by_test_id("run-" + RUNS[0]).wait_for()
        page.get_by_test_id("run-" + RUNS[0]).uncheck()
        page.get_by_test_id("tag-eval/loss").click()
        page.get_by_test_id("tag-train/loss").click()
        page.get_by_test_id("x-axis").select_option("tag:epoch")
        page.get_by_test_id("ylog").check()
        page.get_by_test_id("smooth-kind").select_option("ema")
        page.get_by_test_id("refresh").select_option("5")
        page.get_by_test_id("dim-kind").select_option("run_split")
        page.get_by_test_id("dim-arg").fill("0")
        page.get_by_test_id("dim-arg").press("Enter")
        page.get_by_test_id("hl-value").select_option(RUNS[1])
        page.get_by_test_id("chart-train/loss").get_by_test_id("chart-pin").click()
        wait_for(lambda: "pin=" in page.url, page, what="state in the URL")
        url = page.url
    finally:
        ctx.close()

    ctx = new_context(browser, viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    try:
        page.goto(url)
        page.get_by_test_id("run-" + RUNS[0]).wait_for()
        assert not page.get_by_test_id("run-" + RUNS[0]).is_checked()
        assert page.get_by_test_id("run-" + RUNS[1]).is_checked()
        order = page.locator(".tbp-chart").evaluate_all("els => els.map(e => e.dataset.tag)")
        assert order == ["train/loss", "eval/loss"]  # pinned first
        assert page.get_by_test_id("x-axis").input_value() == "tag:epoch"
        assert page.get_by_test_id("ylog").is_checked()
        assert page.get_by_test_id("smooth-kind").input_value() == "ema"
        assert page.get_by_test_id("refresh").input_value() == "5"
        assert page.get_by_test_id("dim-kind").input_value() == "run_split"
        assert page.get_by_test_id("hl-value").input_value() == RUNS[1]
        p = chart_ready(page, "train/loss")
        assert p.get_attribute("data-xkind") == "float"
        series = read_chart(p)["series"]
        assert {s["key"] for s in series} == {RUNS[1]}
        assert {s["role"] for s in series} == {"raw", "line"}
        assert page.url == url
    finally:
        ctx.close()


def test_tensorboard_tab_keeps_state_in_the_parent_hash(browser, tensorboard_url):
    ctx = new_context(browser, viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    try:
        page.goto(tensorboard_url + "/#tb_plus")
        frame = page.frame_locator(PLUGIN_FRAME)
        frame.get_by_test_id("tag-train/acc").click()
        frame.get_by_test_id("x-axis").select_option("relative")
        wait_for(lambda: "p.tb_plus.x=relative" in page.url, page, what="hash state")
        url = page.url
        assert url.split("#")[1].startswith("tb_plus&")
    finally:
        ctx.close()
    ctx = new_context(browser, viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    try:
        page.goto(url)
        frame = page.frame_locator(PLUGIN_FRAME)
        frame.get_by_test_id("chart-train/acc").locator(".tbp-plot").wait_for()
        assert frame.get_by_test_id("x-axis").input_value() == "relative"
        wait_for(lambda: frame.get_by_test_id("chart-train/acc").get_attribute("data-state") == "ready", page, what="chart")
        assert frame.get_by_test_id("chart-train/acc").locator(".tbp-plot").get_attribute("data-xkind") == "relative"
    finally:
        ctx.close()


def test_appended_data_appears_within_the_refresh_interval(page, live_tensorboard):
    """Refresh = 1 s: new points show up without a reload or focus event; the unchanged run is not refetched."""
    from tensorboardX import SummaryWriter

    base, root = live_tensorboard
    standalone(page, base, [("tag", "train/loss")])
    p = chart_ready(page, "train/loss")
    wait_points(p, {run: STEPS for run in RUNS}, page)
    page.get_by_test_id("refresh").select_option("1")
    assert "refresh=1" in page.url
    page.evaluate("window.__tbpMarker = 1")  # gone if the page reloads

    requested = []
    page.on("request", lambda r: requested.append(r.url) if "/data/plugin/tb_plus/series" in r.url else None)
    extra = 30
    writer = SummaryWriter(os.path.join(root, RUNS[0]), flush_secs=1)
    for step in range(STEPS, STEPS + extra):
        writer.add_scalar("train/loss", 0.5, step)
    writer.close()
    # the server re-reads every 1 s, the page polls every 1 s: allow both plus slack (the wait is the
    # bound; how long it took on this machine is not asserted)
    wait_points(p, {RUNS[0]: STEPS + extra, RUNS[1]: STEPS}, page, timeout_ms=20000)
    assert page.evaluate("window.__tbpMarker") == 1
    assert float(p.get_attribute("data-xmax")) == STEPS + extra - 1
    assert any("run=%s" % RUNS[0] in u for u in requested)
    assert not any("run=%s" % RUNS[1] in u for u in requested), requested
    assert page.get_by_test_id("run-badge-" + RUNS[0]).inner_text() == "live"
    # the interval is kept across reloads (URL and localStorage)
    page.goto(base + STANDALONE)
    page.get_by_test_id("run-" + RUNS[0]).wait_for()
    assert page.get_by_test_id("refresh").input_value() == "1"
    assert page.page_errors == []
