"""The tag tree and the run table in the browser: the lazily expanded, virtualised tag tree (levels,
search, separator), group charts page by page, pins in their own section, and the run table (sort,
filter, multi-select, hparams).

The logdir is written here with torch's SummaryWriter (hyperparameters with add_hparams): more than 300
tags, so the tree opens closed and is walked level by level.
"""

import math
import os
import urllib.parse

import pytest

from .conftest import _require_bundle, run_tensorboard
from .test_tab import PLUGIN_FRAME, wait_points
from .test_views import STANDALONE, wait_for

# run -> (hparams, last step); names chosen so that natural order (exp2 < exp10) differs from text order
RUNS = {
    "exp1": ({"lr": 0.1, "optimizer": "adam"}, 30),
    "exp2": ({"lr": 0.01, "optimizer": "sgd"}, 10),
    "exp10": ({"lr": 0.001, "optimizer": "adam"}, 20),
}
LAYERS = 12  # model/encoder/layer0 .. layer11: layer2 before layer10
BIG_GROUP, BIG_COUNT = "grads", 300  # grads/p0 .. grads/p299, in exp1 only
GROUP_PAGE = 24
DEEP_TAG = "model/encoder/layer3/attn/q"


def encoder_tags():
    return ["model/encoder/layer%d/%s" % (i, part) for i in range(LAYERS) for part in ("attn/q", "attn/k", "attn/v", "mlp/fc1")]


def _write(root):
    from torch.utils.tensorboard import SummaryWriter

    for run, (hparams, last) in RUNS.items():
        w = SummaryWriter(os.path.join(root, run), flush_secs=1)
        offset = 0.1 * list(RUNS).index(run)
        for step in range(0, last + 1, 10):
            w.add_scalar("train/loss", math.exp(-step / 10.0) + offset, step)
            w.add_scalar("eval/loss", 2 * math.exp(-step / 10.0) + offset, step)
            w.add_scalar("opt.lr", hparams["lr"], step)
            w.add_scalar("opt.momentum", 0.9, step)
            for i, tag in enumerate(encoder_tags()):
                w.add_scalar(tag, i + step + offset, step)
        if run == "exp1":
            for i in range(BIG_COUNT):
                w.add_scalar("%s/p%d" % (BIG_GROUP, i), float(i), 0)
        w.add_hparams(hparams, {}, run_name=".")  # into the run itself, not a timestamped sub-run
        w.close()


@pytest.fixture(scope="module")
def big_tb(tmp_path_factory):
    _require_bundle()
    root = str(tmp_path_factory.mktemp("tree_table_logdir"))
    _write(root)
    log_path = str(tmp_path_factory.mktemp("tree_table_tb") / "tensorboard.log")
    with run_tensorboard(root, log_path, tuple(RUNS)) as base:
        yield base


def open_standalone(page, base, params=()):
    page.goto(base + STANDALONE + ("?" + urllib.parse.urlencode(list(params)) if params else ""))
    page.get_by_test_id("run-exp1").wait_for()
    return page


def tree_rows(page):
    """The rows the tree has in the DOM, top to bottom: (kind, path, text)."""
    return page.get_by_test_id("tag-tree").evaluate(
        """el => [...el.querySelectorAll('.tbp-row')]
            .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
            .map(r => [r.classList.contains('tbp-leaf') ? 'leaf' : r.classList.contains('tbp-group-head') ? 'group' : 'other',
                       r.dataset.path || '', r.textContent])"""
    )


def measures(page, name):
    return page.evaluate("n => performance.getEntriesByName(n).map(e => e.duration)", name)


def chart_order(page):
    return page.locator(".tbp-chart").evaluate_all("els => els.map(e => e.dataset.tag)")


def run_order(page):
    return page.locator(".tbp-run-row[data-run]").evaluate_all(
        "els => els.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top)).map(e => e.dataset.run)"
    )


def test_deep_group_opens_level_by_level_in_natural_order(page, big_tb):
    open_standalone(page, big_tb)
    tree = page.get_by_test_id("tag-tree")
    tree.get_by_test_id("group-model").wait_for()
    assert tree.get_attribute("data-count") == str(len(encoder_tags()) + BIG_COUNT + 4)
    # more than 300 tags: the first view is closed
    assert tree.get_by_test_id("group-model/encoder").count() == 0
    path = ""
    for part in DEEP_TAG.split("/")[:-1]:
        path = part if not path else path + "/" + part
        with page.expect_response(lambda r, p=path: "/tags?" in r.url and "parent=" + urllib.parse.quote(p, safe="") in r.url):
            tree.get_by_test_id("toggle-" + path).click()
        if path == "model/encoder":
            tree.get_by_test_id("group-model/encoder/layer11").wait_for()
            groups = [p for kind, p, _ in tree_rows(page) if kind == "group" and p.startswith("model/encoder/layer")]
            assert groups == ["model/encoder/layer%d" % i for i in range(LAYERS)]  # layer2 before layer10
    leaf = tree.get_by_test_id("tag-" + DEEP_TAG)
    leaf.wait_for()
    assert tree.get_by_test_id("toggle-model/encoder/layer3/attn").get_attribute("aria-expanded") == "true"
    leaf.click()
    plot = page.get_by_test_id("chart-" + DEEP_TAG).locator(".tbp-plot")
    wait_points(plot, {run: last // 10 + 1 for run, (_, last) in RUNS.items()}, page)
    assert leaf.get_attribute("aria-selected") == "true"
    # collapsing a level drops its rows from the DOM
    tree.get_by_test_id("toggle-model/encoder").click()
    assert tree.get_by_test_id("tag-" + DEEP_TAG).count() == 0
    assert measures(page, "tbp:tree"), "no tbp:tree measure"
    assert page.page_errors == []


def test_big_group_is_virtualised_and_pages_its_charts(page, big_tb):
    open_standalone(page, big_tb)
    tree = page.get_by_test_id("tag-tree")
    tree.get_by_test_id("toggle-" + BIG_GROUP).click()
    tree.get_by_test_id("tag-%s/p0" % BIG_GROUP).wait_for()
    # 300 children, but only the rows in view (plus overscan) are in the DOM
    in_dom = tree.locator('[data-testid^="tag-%s/"]' % BIG_GROUP).count()
    assert 5 < in_dom < 100, in_dom
    tree.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    tree.get_by_test_id("tag-%s/p%d" % (BIG_GROUP, BIG_COUNT - 1)).wait_for()
    assert tree.get_by_test_id("tag-%s/p0" % BIG_GROUP).count() == 0
    tree.evaluate("el => { el.scrollTop = 0; }")

    pages = math.ceil(BIG_COUNT / GROUP_PAGE)
    page.get_by_test_id("group-" + BIG_GROUP).click()
    pager = page.get_by_test_id("group-pager")
    wait_for(lambda: pager.get_by_test_id("group-page").inner_text() == "page 1 of %d" % pages, page, what="pager")
    expected = ["%s/p%d" % (BIG_GROUP, i) for i in range(GROUP_PAGE)]
    wait_for(lambda: chart_order(page) == expected, page, what="first page of charts")
    assert pager.get_by_test_id("group-prev").is_disabled()
    # the group's tags exist in exp1 only: the other runs are left out without an error
    first = page.get_by_test_id("chart-%s/p0" % BIG_GROUP)
    wait_for(lambda: first.get_attribute("data-state") == "ready", page, what="first chart drawn")
    wait_points(first.locator(".tbp-plot"), {"exp1": 1}, page)

    pager.get_by_test_id("group-next").click()
    expected = ["%s/p%d" % (BIG_GROUP, i) for i in range(GROUP_PAGE, 2 * GROUP_PAGE)]
    wait_for(lambda: chart_order(page) == expected, page, what="second page of charts")
    assert pager.get_by_test_id("group-page").inner_text() == "page 2 of %d" % pages
    assert "gpage=1" in page.url and "group=" + BIG_GROUP in page.url
    pager.get_by_test_id("group-prev").click()
    wait_for(lambda: chart_order(page)[:1] == ["%s/p0" % BIG_GROUP], page, what="back to page 1")
    # the last page holds the rest
    for _ in range(pages - 1):
        pager.get_by_test_id("group-next").click()
    last = BIG_COUNT - (pages - 1) * GROUP_PAGE
    wait_for(lambda: len(chart_order(page)) == last, page, what="last page")
    assert pager.get_by_test_id("group-next").is_disabled()
    assert page.page_errors == []


def test_regex_search_highlights_matches_with_ancestors_open(page, big_tb):
    open_standalone(page, big_tb)
    tree = page.get_by_test_id("tag-tree")
    tree.get_by_test_id("group-model").wait_for()
    page.get_by_test_id("tag-search-mode").select_option("regex")
    with page.expect_response(lambda r: "/tags?" in r.url and "mode=regex" in r.url and r.status == 200):
        page.get_by_test_id("tag-search").fill(r"layer1[01]/attn/q$")
    wanted = ["model/encoder/layer10/attn/q", "model/encoder/layer11/attn/q"]
    tree.get_by_test_id("tag-" + wanted[1]).wait_for()
    rows = tree_rows(page)
    assert [p for kind, p, _ in rows if kind == "leaf"] == wanted
    assert [p for kind, p, _ in rows if kind == "group"] == [
        "model", "model/encoder", "model/encoder/layer10", "model/encoder/layer10/attn",
        "model/encoder/layer11", "model/encoder/layer11/attn",
    ]
    for g in ("model", "model/encoder/layer10", "model/encoder/layer11/attn"):
        assert tree.get_by_test_id("toggle-" + g).get_attribute("aria-expanded") == "true", g
    # counts are matches per group
    assert tree.locator('[data-path="model"] .tbp-count').inner_text() == "2"
    assert tree.locator('[data-path="model/encoder/layer10"] .tbp-count').inner_text() == "1"
    # the match span is marked on the names it covers
    assert tree.get_by_test_id("group-model/encoder/layer10").locator("mark").inner_text() == "layer10"
    assert tree.get_by_test_id("group-model/encoder/layer10/attn").locator("mark").inner_text() == "attn"
    assert tree.get_by_test_id("tag-" + wanted[0]).locator("mark").inner_text() == "q"
    assert tree.get_by_test_id("group-model").locator("mark").count() == 0
    assert "2 of" in page.get_by_test_id("tag-search-info").inner_text()
    assert measures(page, "tbp:search"), "no tbp:search measure"
    # a leaf of the search results toggles its chart
    tree.get_by_test_id("tag-" + wanted[0]).click()
    page.get_by_test_id("chart-" + wanted[0]).wait_for()

    # an invalid regex: a clear message, from the server's 400
    with page.expect_response(lambda r: "/tags?" in r.url and r.status == 400):
        page.get_by_test_id("tag-search").fill("layer[")
    error = page.get_by_test_id("tag-error")
    wait_for(error.is_visible, page, what="error shown")
    assert "Invalid regular expression" in error.inner_text() and "layer[" in error.inner_text()
    # clearing the search goes back to the lazily loaded tree
    page.get_by_test_id("tag-search").fill("")
    wait_for(lambda: tree.get_attribute("data-mode") == "browse", page, what="browse mode")
    assert error.is_hidden()
    assert page.page_errors == []


def test_separator_switch_changes_the_tree(page, big_tb):
    open_standalone(page, big_tb)
    tree = page.get_by_test_id("tag-tree")
    tree.get_by_test_id("tag-opt.lr").wait_for()  # "/" separator: opt.lr is a top-level tag
    assert tree.get_by_test_id("group-opt").count() == 0
    with page.expect_response(lambda r: "/tags?" in r.url and "sep=." in r.url):
        page.get_by_test_id("tag-sep").select_option(".")
    # "/" no longer splits: grads/p0 .. are top-level leaves, and the opt group comes after them
    tree.get_by_test_id("tag-%s/p0" % BIG_GROUP).wait_for()
    assert tree.get_by_test_id("group-" + BIG_GROUP).count() == 0
    tree.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    tree.get_by_test_id("group-opt").wait_for()
    assert tree.get_by_test_id("tag-opt.lr").count() == 0
    assert tree.locator('[data-path="opt"] .tbp-count').inner_text() == "2"
    tree.get_by_test_id("toggle-opt").click()
    leaf = tree.get_by_test_id("tag-opt.lr")
    leaf.wait_for()
    assert leaf.locator(".tbp-leaf-name").inner_text() == "lr"
    assert tree.get_by_test_id("group-model").count() == 0
    assert "sep=." in page.url
    page.reload()
    tree = page.get_by_test_id("tag-tree")
    tree.get_by_test_id("tag-%s/p0" % BIG_GROUP).wait_for()
    tree.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    tree.get_by_test_id("group-opt").wait_for()
    assert page.get_by_test_id("tag-sep").input_value() == "."
    assert page.page_errors == []


def test_pins_survive_a_reload_on_top_of_any_group(page, big_tb):
    open_standalone(page, big_tb)
    tree = page.get_by_test_id("tag-tree")
    tree.get_by_test_id("toggle-train").click()
    pin = tree.get_by_test_id("pin-toggle-train/loss")
    pin.click()  # pins the tag without opening it: the Pinned section shows it anyway
    section = page.get_by_test_id("pinned-section")
    section.get_by_test_id("chart-train/loss").wait_for()
    assert tree.get_by_test_id("tag-train/loss").get_attribute("data-pinned") == "true"
    assert tree.get_by_test_id("tag-train/loss").get_attribute("aria-selected") == "false"
    # a pattern: every matching tag joins the section
    page.get_by_test_id("pin-input").fill("model/encoder/layer1?/attn/q")
    page.get_by_test_id("pin-add").click()
    pinned = ["train/loss", "model/encoder/layer10/attn/q", "model/encoder/layer11/attn/q"]
    wait_for(lambda: chart_order(page) == pinned, page, what="pinned charts")
    # a group's page of charts comes after the pinned ones
    page.get_by_test_id("group-" + BIG_GROUP).click()
    wait_for(lambda: chart_order(page)[:4] == pinned + ["%s/p0" % BIG_GROUP], page, what="group below pins")
    page.reload()
    page.get_by_test_id("run-exp1").wait_for()
    wait_for(lambda: chart_order(page)[:4] == pinned + ["%s/p0" % BIG_GROUP], page, what="pins after reload")
    assert page.get_by_test_id("pinned-section").is_visible()
    card = page.get_by_test_id("pinned-section").get_by_test_id("chart-train/loss")
    assert card.get_attribute("data-pinned") == "true"
    wait_points(card.locator(".tbp-plot"), {run: last // 10 + 1 for run, (_, last) in RUNS.items()}, page)
    # unpinning from the tree takes the chart out of the section
    page.get_by_test_id("tag-tree").get_by_test_id("toggle-train").click()
    page.get_by_test_id("pin-toggle-train/loss").click()
    wait_for(lambda: "train/loss" not in chart_order(page), page, what="unpinned")
    assert page.page_errors == []


def test_run_table_sorts_filters_and_selects(page, big_tb):
    open_standalone(page, big_tb, [("tag", "train/loss")])
    table = page.get_by_test_id("run-list")
    plot = page.get_by_test_id("chart-train/loss").locator(".tbp-plot")
    points = {run: last // 10 + 1 for run, (_, last) in RUNS.items()}
    wait_points(plot, points, page)
    assert measures(page, "tbp:table"), "no tbp:table measure"
    # columns: status badge, last step, first write, hparams, diagnostics
    for run in RUNS:
        assert page.get_by_test_id("run-badge-" + run).inner_text() in ("live", "stale", "finished")
        row = page.get_by_test_id("run-row-" + run)
        assert row.locator('[data-col="last_step"]').inner_text() == str(RUNS[run][1])
        # the diagnostics badge (the rules' finding counts; test_diagnostics.py checks them)
        badge = row.locator('[data-col="diagnostics"]').get_by_test_id("run-diag-" + run)
        assert badge.get_attribute("data-worst") in ("none", "ok", "info", "warning", "error")
        assert row.locator('[data-col="first_write"]').inner_text().startswith("20")

    # sort by last step, then descending; by name in natural order
    table.get_by_test_id("run-col-last_step").click()
    assert run_order(page) == ["exp2", "exp10", "exp1"]
    assert table.get_by_test_id("run-col-last_step").get_attribute("aria-sort") == "ascending"
    table.get_by_test_id("run-col-last_step").click()
    assert run_order(page) == ["exp1", "exp10", "exp2"]
    table.get_by_test_id("run-col-name").click()
    assert run_order(page) == ["exp1", "exp2", "exp10"]
    assert measures(page, "tbp:table-filter"), "no tbp:table-filter measure"

    # filter by name: substring, then /regex/
    page.get_by_test_id("run-filter").fill("exp1")
    assert run_order(page) == ["exp1", "exp10"]
    page.get_by_test_id("run-filter").fill("/^exp1$/")
    assert run_order(page) == ["exp1"]
    page.get_by_test_id("run-filter").fill("/[/")
    assert page.get_by_test_id("run-filter-error").is_visible()
    page.get_by_test_id("run-filter").fill("")
    # the status filter keeps the runs in that state only
    for status in ("live", "stale", "finished"):
        page.get_by_test_id("run-status-filter").select_option(status)
        assert all(page.get_by_test_id("run-badge-" + r).inner_text() == status for r in run_order(page))
    page.get_by_test_id("run-status-filter").select_option("")
    assert len(run_order(page)) == len(RUNS)

    # selection drives the charts: none, then a shift-click range, then "none" on the filtered rows
    table.get_by_test_id("runs-none").click()
    wait_points(plot, {}, page)
    page.get_by_test_id("run-exp1").click()
    wait_points(plot, {"exp1": points["exp1"]}, page)
    page.get_by_test_id("run-exp10").click(modifiers=["Shift"])  # rows are exp1, exp2, exp10
    wait_points(plot, points, page)
    assert all(page.get_by_test_id("run-" + r).is_checked() for r in RUNS)
    page.get_by_test_id("run-filter").fill("exp1")
    table.get_by_test_id("runs-none").click()
    # the charts draw the selected runs the filter leaves: exp2 is selected but filtered out
    wait_points(plot, {}, page)
    assert "1/3 selected" in page.get_by_test_id("run-summary").inner_text()
    page.get_by_test_id("run-filter").fill("")
    wait_points(plot, {"exp2": points["exp2"]}, page)
    assert page.get_by_test_id("run-exp2").is_checked() and not page.get_by_test_id("run-exp1").is_checked()
    assert page.page_errors == []


def test_hparams_columns_show_and_sort(page, big_tb):
    open_standalone(page, big_tb)
    table = page.get_by_test_id("run-list")
    table.get_by_test_id("run-col-hp:lr").wait_for()
    assert table.get_by_test_id("run-col-hp:optimizer").is_visible()
    for run, (hp, _) in RUNS.items():
        row = page.get_by_test_id("run-row-" + run)
        assert float(row.locator('[data-col="hp:lr"]').inner_text()) == pytest.approx(hp["lr"])
        assert row.locator('[data-col="hp:optimizer"]').inner_text() == hp["optimizer"]
        assert row.locator('[data-col="path"]').inner_text().endswith(run)  # the run's directory
    table.get_by_test_id("run-col-hp:lr").click()
    assert run_order(page) == ["exp10", "exp2", "exp1"]
    table.get_by_test_id("run-col-hp:optimizer").click()
    assert run_order(page)[-1] == "exp2"  # adam, adam, sgd
    assert page.page_errors == []


def test_run_table_in_the_tensorboard_tab(page, big_tb):
    page.goto(big_tb + "/#tb_plus")
    frame = page.frame_locator(PLUGIN_FRAME)
    frame.get_by_test_id("run-exp10").wait_for()
    frame.get_by_test_id("run-col-name").click()
    order = frame.locator(".tbp-run-row[data-run]").evaluate_all(
        "els => els.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top)).map(e => e.dataset.run)"
    )
    assert order == ["exp1", "exp2", "exp10"]
    frame.get_by_test_id("tag-tree").get_by_test_id("group-model").wait_for()
    assert page.page_errors == []
