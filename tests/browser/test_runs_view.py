"""Runs as the run table and the charts show them (issue 17, "charts that never mislead"): long nested run
names shown by their distinguishing part, colours stable per run and distinct among the selected runs,
a colour per series of one run in a custom chart, the run filter narrowing the charts, the run table's
columns (empty hyperparameters hidden, the column chooser, the pinned name column), its resize handle,
and a log-directory switch clearing the run filter.

One TensorBoard for the module over ROOT/main (20 runs a/very/long/common/prefix/exp_NN/train, each with
train/loss and val/loss and 50 hyperparameters of which 45 are empty), with ROOT/other (two short runs)
reachable through --tb_plus_roots.
"""

import json
import math
import os
import urllib.parse

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # conftest skips every test here with the reason
    expect = None

from .conftest import _require_bundle, run_tensorboard
from .test_tab import wait_points
from .test_views import STANDALONE, wait_for

PREFIX = "a/very/long/common/prefix"
N_RUNS = 20
RUNS = ["%s/exp_%02d/train" % (PREFIX, i) for i in range(N_RUNS)]
STEPS = 10
N_HPARAMS, FILLED = 50, 5  # hp00 .. hp49; hp00 .. hp04 have values, the rest are empty strings
OTHER = {"other_1": 5, "other_2": 5}


def _write(root):
    from torch.utils.tensorboard import SummaryWriter

    for i, run in enumerate(RUNS):
        w = SummaryWriter(os.path.join(root, "main", run), flush_secs=1)
        for step in range(STEPS):
            w.add_scalar("train/loss", math.exp(-step / 5.0) + 0.01 * i, step)
            w.add_scalar("val/loss", 1.2 * math.exp(-step / 5.0) + 0.01 * i, step)
        hp = {"hp%02d" % k: (0.1 * (i + 1) * (k + 1) if k < FILLED else "") for k in range(N_HPARAMS)}
        w.add_hparams(hp, {}, run_name=".")
        w.close()
    for run, n in OTHER.items():
        w = SummaryWriter(os.path.join(root, "other", run), flush_secs=1)
        for step in range(n):
            w.add_scalar("train/loss", 1.0 / (step + 1), step)
        w.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    _require_bundle()
    tmp = tmp_path_factory.mktemp("runs_view")
    root = str(tmp / "root")
    _write(root)
    args = ["--tb_plus_roots", root]
    with run_tensorboard(os.path.join(root, "main"), str(tmp / "tensorboard.log"), tuple(RUNS), extra_args=args) as base:
        yield base, root


def open_page(page, base, params=()):
    page.goto(base + STANDALONE + ("?" + urllib.parse.urlencode(list(params)) if params else ""))
    page.get_by_test_id("run-" + RUNS[0]).wait_for()
    return page


def all_selected(extra=()):
    return [("run", r) for r in RUNS] + list(extra)


def name_cells(page):
    """(full name, shown text, title) of every run row in the DOM."""
    return page.locator(".tbp-run-row[data-run]").evaluate_all(
        """els => els.map(e => {
            const c = e.querySelector('[data-col="name"]');
            return [e.dataset.run, c.textContent, c.title];
        })"""
    )


def legend(page, tag):
    """(data-run, shown name, swatch colour) of the chart's legend rows."""
    return page.get_by_test_id("chart-" + tag).get_by_test_id("chart-legend").locator(".tbp-legend-row").evaluate_all(
        """els => els.map(e => [e.dataset.run, e.querySelector('.tbp-legend-name').textContent,
                               getComputedStyle(e.querySelector('.tbp-swatch')).backgroundColor])"""
    )


def swatches(page):
    """run -> the colour of its swatch in the run table (rows in the DOM)."""
    return dict(
        page.locator(".tbp-run-row[data-run]").evaluate_all(
            """els => els.map(e => [e.dataset.run,
                getComputedStyle(e.querySelector('[data-col="color"] .tbp-swatch')).backgroundColor])"""
        )
    )


def test_long_names_show_their_distinguishing_part(page, env):
    base, _ = env
    open_page(page, base, all_selected([("tag", "train/loss")]))
    page.get_by_test_id("run-list").get_by_test_id("runs-resize").wait_for()
    wait_for(lambda: len(name_cells(page)) >= 8, page, what="rows")
    cells = name_cells(page)
    shown = [text for _, text, _ in cells]
    assert len(set(shown)) == len(shown), shown
    for full, text, title in cells:
        suffix = full[len(PREFIX) + 1:]  # exp_NN/train
        assert suffix in text and not text.startswith(PREFIX), (full, text)
        assert title.split("\n")[0] == full
    # the legends: the same short names, data-run and the tooltip keep the full names
    wait_points(page.get_by_test_id("chart-train/loss").locator(".tbp-plot"), {r: STEPS for r in RUNS}, page)
    rows = legend(page, "train/loss")
    assert sorted(r for r, _, _ in rows) == sorted(RUNS)
    for run, text, _ in rows:
        assert run[len(PREFIX) + 1:] in text and PREFIX not in text, (run, text)
    titles = page.get_by_test_id("chart-train/loss").locator(".tbp-legend-name").evaluate_all("els => els.map(e => e.title)")
    assert sorted(titles) == sorted(RUNS)
    assert page.page_errors == []


def test_colours_distinct_among_selected_and_stable_after_reload(page, env):
    base, _ = env
    open_page(page, base, all_selected([("tag", "train/loss")]))
    plot = page.get_by_test_id("chart-train/loss").locator(".tbp-plot")
    wait_points(plot, {r: STEPS for r in RUNS}, page)
    colours = {run: c for run, _, c in legend(page, "train/loss")}
    assert len(colours) == N_RUNS
    assert len(set(colours.values())) == N_RUNS, colours  # 20 selected runs, 20 colours
    table = swatches(page)
    for run, c in table.items():
        assert c == colours[run], run  # the table and the legend agree
    page.reload()
    page.get_by_test_id("run-" + RUNS[0]).wait_for()
    wait_points(plot, {r: STEPS for r in RUNS}, page)
    assert {run: c for run, _, c in legend(page, "train/loss")} == colours
    assert page.page_errors == []


def test_custom_chart_series_of_one_run_differ_in_colour(page, env):
    base, _ = env
    run = RUNS[3]
    custom = {"id": "c1", "title": "one run", "series": [[run, "train/loss"], [run, "val/loss"]]}
    open_page(page, base, [("run", run), ("custom", json.dumps(custom))])
    card = page.locator('[data-kind="custom"]')
    card.wait_for()
    wait_points(card.locator(".tbp-plot"), {"%s:train/loss" % run: STEPS, "%s:val/loss" % run: STEPS}, page)
    rows = card.get_by_test_id("chart-legend").locator(".tbp-legend-row").evaluate_all(
        """els => els.map(e => [e.dataset.run, e.querySelector('.tbp-legend-name').textContent,
                               getComputedStyle(e.querySelector('.tbp-swatch')).backgroundColor])"""
    )
    assert len(rows) == 2
    assert rows[0][2] != rows[1][2], rows
    assert rows[0][1].endswith(":train/loss") and "exp_03/train" in rows[0][1] and PREFIX not in rows[0][1]
    assert page.page_errors == []


def test_run_filter_narrows_the_charts(page, env):
    base, _ = env
    open_page(page, base, all_selected([("tag", "train/loss")]))
    plot = page.get_by_test_id("chart-train/loss").locator(".tbp-plot")
    wait_points(plot, {r: STEPS for r in RUNS}, page)
    page.get_by_test_id("run-filter").fill("exp_1")  # exp_10 .. exp_19
    matching = [r for r in RUNS if "exp_1" in r]
    wait_points(plot, {r: STEPS for r in matching}, page)
    assert sorted(r for r, _, _ in legend(page, "train/loss")) == sorted(matching)
    summary = page.get_by_test_id("run-summary")
    assert summary.get_attribute("data-drawn") == str(len(matching))
    assert "%d drawn" % len(matching) in summary.inner_text()
    expect(page.get_by_test_id("charts-filter-note")).to_contain_text("%d selected runs hidden" % (N_RUNS - len(matching)))
    page.get_by_test_id("run-filter").fill("")
    wait_points(plot, {r: STEPS for r in RUNS}, page)
    expect(page.get_by_test_id("charts-filter-note")).to_have_count(0)
    assert page.page_errors == []


def test_columns_hidden_chosen_pinned_and_resized(page, env):
    base, _ = env
    open_page(page, base, [("run", RUNS[0])])
    table = page.get_by_test_id("run-list")
    table.get_by_test_id("run-col-hp:hp00").wait_for()
    # empty hyperparameter columns are hidden; the chooser's button counts them
    assert table.get_by_test_id("run-col-hp:hp10").count() == 0
    button = table.get_by_test_id("run-columns")
    assert button.get_attribute("data-hidden") == str(N_HPARAMS - FILLED)
    scroller = table.locator(".tbp-run-table")
    width = scroller.evaluate("el => el.scrollWidth")
    assert width < 2500, width  # 5 hparam columns, not 50
    # the kind of training the diagnostics took each run for (losses only here: supervised)
    kind = page.get_by_test_id("run-row-" + RUNS[0]).locator('[data-col="kind"]')
    expect(kind).to_have_text("supervised")
    # hide a column, show an empty one: both persist after a reload
    button.click()
    table.get_by_test_id("run-colvis-size").uncheck()
    table.get_by_test_id("run-colvis-hp:hp10").check()
    expect(table.get_by_test_id("run-col-size")).to_have_count(0)
    table.get_by_test_id("run-col-hp:hp10").wait_for()
    page.reload()
    page.get_by_test_id("run-" + RUNS[0]).wait_for()
    table.get_by_test_id("run-col-hp:hp10").wait_for()
    expect(table.get_by_test_id("run-col-size")).to_have_count(0)
    assert table.get_by_test_id("run-columns").get_attribute("data-hidden") == str(N_HPARAMS - FILLED)  # 44 empty + size
    # show all: the table is wide; scrolled right, the name column stays in view
    table.get_by_test_id("run-columns").click()
    table.get_by_test_id("run-columns-all").click()
    assert table.get_by_test_id("run-columns").get_attribute("data-hidden") == "0"
    table.get_by_test_id("run-columns-close").click()
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth + 1000")
    scroller.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    name = page.get_by_test_id("run-row-" + RUNS[0]).locator('[data-col="name"]')
    wait_for(lambda: scroller.evaluate("el => el.scrollLeft") > 1000, page, what="scrolled right")
    box, pane = name.bounding_box(), scroller.bounding_box()
    assert box["x"] >= pane["x"] - 1 and box["x"] + box["width"] <= pane["x"] + pane["width"], (box, pane)
    assert box["width"] > 100
    assert name.evaluate("el => document.elementFromPoint(el.getBoundingClientRect().x + 40, el.getBoundingClientRect().y + 10) === el || el.contains(document.elementFromPoint(el.getBoundingClientRect().x + 40, el.getBoundingClientRect().y + 10))")
    # the name column's edge drags wider and narrower
    scroller.evaluate("el => { el.scrollLeft = 0; }")
    head = table.locator('.tbp-run-header [data-col="name"]')
    w0 = head.bounding_box()["width"]
    grip = table.get_by_test_id("run-name-resize").bounding_box()
    gx, gy = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2
    page.mouse.move(gx, gy)
    page.mouse.down()
    page.mouse.move(gx + 200, gy, steps=5)
    page.mouse.up()
    w1 = head.bounding_box()["width"]
    assert w1 > w0 + 150, (w0, w1)
    assert abs(name.bounding_box()["width"] - w1) < 2  # the rows follow the header
    grip = table.get_by_test_id("run-name-resize").bounding_box()
    gx = grip["x"] + grip["width"] / 2
    page.mouse.move(gx, gy)
    page.mouse.down()
    page.mouse.move(gx - 300, gy, steps=5)
    page.mouse.up()
    assert head.bounding_box()["width"] < w1 - 250
    # the resize handle grows the pane as well as shrinking it
    pane_el = table
    h0 = pane_el.bounding_box()["height"]
    handle = table.get_by_test_id("runs-resize").bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + 150, steps=5)
    page.mouse.up()
    h1 = pane_el.bounding_box()["height"]
    assert h1 > h0 + 100, (h0, h1)
    page.mouse.move(x, y + 150)
    page.mouse.down()
    page.mouse.move(x, y + 50, steps=5)
    page.mouse.up()
    assert pane_el.bounding_box()["height"] < h1 - 50
    assert page.page_errors == []


def test_logdir_switch_clears_the_run_filter(page, env):
    base, root = env
    open_page(page, base, [("tag", "train/loss")])
    page.get_by_test_id("run-filter").fill("exp_1")
    wait_for(lambda: "shown" in page.get_by_test_id("run-summary").inner_text(), page, what="filtered")
    page.get_by_test_id("logdir-current").click()
    field = page.get_by_test_id("logdir-input")
    field.fill(os.path.join(root, "other"))
    field.press("Enter")
    page.get_by_test_id("run-other_1").wait_for()
    expect(page.get_by_test_id("run-filter")).to_have_value("")
    assert sorted(page.locator(".tbp-run-row[data-run]").evaluate_all("els => els.map(e => e.dataset.run)")) == sorted(OTHER)
    wait_points(page.get_by_test_id("chart-train/loss").locator(".tbp-plot"), dict(OTHER), page)
    assert page.page_errors == []
