"""The Diagnostics panel in the browser, its annotated charts, chart markers and run badges.

One TensorBoard for the module over a log directory written here with torch's SummaryWriter: `healthy`
(a smoothly falling train/loss), `broken` (the same loss, NaN from step 60 on) and `diverging` (falls,
then climbs from step 100). Everything is checked against what the real server answers on
GET diagnostics: the panel lists the findings, a click charts one with a marker at its onset step placed
on the chart's x scale, the ordinary train/loss chart carries the same marker, and the run table's
badges show each run's counts and open the panel on that run.
"""

import json
import math
import time
import urllib.parse
import urllib.request

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # conftest skips every test here with the reason
    expect = None

from .conftest import _require_bundle, run_tensorboard
from .test_tab import PLUGIN_FRAME
from .test_views import wait_for

RUNS = ("broken", "diverging", "healthy")
STEPS = 200
NAN_FROM = 60
DIVERGE_FROM = 100
STANDALONE = "/data/plugin/tb_plus/standalone"
FINDING = '[data-testid="diag-finding"]'


def loss(run, step):
    base = 2.0 / (1.0 + step / 20.0)
    if run == "broken" and step >= NAN_FROM:
        return float("nan")
    if run == "diverging" and step > DIVERGE_FROM:
        return 2.0 / (1.0 + DIVERGE_FROM / 20.0) * math.exp((step - DIVERGE_FROM) / 20.0)
    return base


@pytest.fixture(scope="module")
def diag_env(tmp_path_factory):
    """(base URL, the server's diagnostics answer once no run is pending)."""
    _require_bundle()
    pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    tmp = tmp_path_factory.mktemp("diagnostics")
    root = tmp / "logs"
    for run in RUNS:
        writer = SummaryWriter(str(root / run), flush_secs=1)
        for step in range(STEPS):
            writer.add_scalar("train/loss", loss(run, step), step)
        writer.close()
    with run_tensorboard(str(root), str(tmp / "tensorboard.log"), RUNS) as base:
        answer = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = server_diag(base)
            if not answer["pending"]:
                break
            time.sleep(0.5)
        assert answer is not None and not answer["pending"], "diagnostics still pending after 60 s"
        yield base, answer


def server_diag(base, runs=()):
    url = base + "/data/plugin/tb_plus/diagnostics"
    if runs:
        url += "?" + urllib.parse.urlencode([("run", r) for r in runs])
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read().decode("utf-8"))


def nonfinite_finding(answer):
    found = [f for f in answer["findings"] if f["rule"] == "nonfinite_loss" and f["run"] == "broken"]
    assert found, "the server reports no nonfinite_loss finding for run broken: %r" % answer["findings"]
    return found[0]


def open_tab(page, base):
    page.goto(base + "/#tb_plus")
    frame = page.frame_locator(PLUGIN_FRAME)
    frame.get_by_test_id("run-broken").wait_for()
    return frame


def open_panel(frame):
    panel = frame.get_by_test_id("diag-panel")
    expect(panel).to_be_visible()
    if panel.get_attribute("data-open") != "true":
        frame.get_by_test_id("diag-toggle").click()
    expect(panel).to_have_attribute("data-open", "true")
    expect(panel).to_have_attribute("data-state", "ready")
    return panel


def marker_geometry(card, testid, step, rule):
    """Centre of the marker `testid` of `rule` at `step`, its plot's over box, x scale and uPlot's own position."""
    marker = card.locator('[data-testid="%s"][data-step="%d"][data-rule="%s"]' % (testid, step, rule))
    expect(marker).to_have_count(1)
    expect(marker).to_be_visible()
    box = marker.bounding_box()
    plot = card.locator(".tbp-plot")
    over = plot.locator(".u-over").bounding_box()
    scale = plot.evaluate(
        "(el, step) => ({min: el.uplot.scales.x.min, max: el.uplot.scales.x.max, pos: el.uplot.valToPos(step, 'x')})",
        step,
    )
    return marker, box["x"] + box["width"] / 2, over, scale


def assert_marker_at(card, testid, step, rule="nonfinite_loss"):
    marker, centre, over, scale = marker_geometry(card, testid, step, rule)
    assert scale["min"] <= step <= scale["max"], scale
    # on a linear step axis, the plot area maps [min, max] onto its width
    expected = over["x"] + over["width"] * (step - scale["min"]) / (scale["max"] - scale["min"])
    assert abs(centre - expected) <= 1.5, (centre, expected, scale)
    assert abs(centre - (over["x"] + scale["pos"])) <= 1.5
    assert over["x"] < centre < over["x"] + over["width"]
    return marker, centre


def test_panel_lists_the_findings(page, diag_env):
    base, answer = diag_env
    f = nonfinite_finding(answer)
    assert f["severity"] == "error" and f["step"] == NAN_FROM
    frame = open_tab(page, base)
    panel = open_panel(frame)

    # every run is selected (fewer than 10): the panel lists the findings of all of them, worst first
    expect(frame.locator(FINDING)).to_have_count(len(answer["findings"]))
    assert panel.get_attribute("data-count") == str(len(answer["findings"]))
    row = frame.locator(FINDING + '[data-rule="nonfinite_loss"][data-run="broken"]').first
    expect(row).to_have_attribute("data-severity", "error")
    expect(row).to_have_attribute("data-step", str(NAN_FROM))
    assert str(NAN_FROM) in row.inner_text()
    assert f["title"] in row.inner_text()
    severities = frame.locator(FINDING).evaluate_all("els => els.map(e => e.dataset.severity)")
    rank = {"error": 0, "warning": 1, "info": 2}
    assert severities == sorted(severities, key=rank.get)
    for sev in ("error", "warning"):
        expect(frame.locator(FINDING + '[data-run="healthy"][data-severity="%s"]' % sev)).to_have_count(0)
    # the evidence numbers, non-finite ones included, as the server gives them
    for key, value in f["evidence"].items():
        cell = row.get_by_test_id("diag-evidence").locator('td[data-key="%s"]' % key)
        assert float(cell.get_attribute("data-value")) == pytest.approx(float(value), rel=1e-9, nan_ok=True)

    # the severity filter
    errors = sum(1 for x in answer["findings"] if x["severity"] == "error")
    frame.get_by_test_id("diag-filter-error").uncheck()
    expect(frame.locator(FINDING + '[data-severity="error"]')).to_have_count(0)
    expect(frame.locator(FINDING)).to_have_count(len(answer["findings"]) - errors)
    frame.get_by_test_id("diag-filter-error").check()
    expect(frame.locator(FINDING + '[data-severity="error"]')).to_have_count(errors)
    assert not page.page_errors


def test_click_shows_the_annotated_chart(page, diag_env):
    base, answer = diag_env
    f = nonfinite_finding(answer)
    frame = open_tab(page, base)
    open_panel(frame)
    frame.get_by_test_id("run-broken").uncheck()
    expect(frame.get_by_test_id("diag-chart")).to_be_hidden()
    # "selected runs" are now the two others: list every run to find broken's finding
    frame.get_by_test_id("diag-scope").select_option("all")
    frame.locator(FINDING + '[data-rule="nonfinite_loss"][data-run="broken"]').first.click()

    chart = frame.get_by_test_id("diag-chart")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("data-run", "broken")
    expect(chart).to_have_attribute("data-step", str(NAN_FROM))
    expect(frame.get_by_test_id("run-broken")).to_be_checked()  # the finding's run is selected
    card = chart.locator(".tbp-diag-card")
    wait_for(lambda: card.get_attribute("data-state") == "ready", page, what="diagnostics chart drawn")
    marker, centre = assert_marker_at(card, "diag-annotation", NAN_FROM)
    assert marker.get_attribute("data-rule") == "nonfinite_loss"
    assert f["title"] in marker.inner_text()
    if f["step_end"] is not None and f["step_end"] != f["step"]:
        band = card.get_by_test_id("diag-annotation-band").bounding_box()
        assert abs(band["x"] - centre) <= 1.5 and band["width"] > 0
    assert "dfind=" in page.url  # the finding charted is part of the view
    # the chart's series is broken's train/loss: NaN from the onset on (uPlot gaps there)
    ys = card.locator(".tbp-plot").evaluate("el => Array.from(el.uplot.data[1], v => v == null ? null : v)")
    xs = card.locator(".tbp-plot").evaluate("el => Array.from(el.uplot.data[0])")
    assert all(y is None for x, y in zip(xs, ys) if x >= NAN_FROM)
    assert all(y is not None for x, y in zip(xs, ys) if x < NAN_FROM)
    assert not page.page_errors


def test_run_badges_and_their_filter(page, diag_env):
    base, answer = diag_env
    frame = open_tab(page, base)
    counts = answer["runs"]
    assert counts["broken"]["error"] >= 1 and counts["healthy"]["error"] == 0 == counts["healthy"]["warning"]
    broken = frame.get_by_test_id("run-diag-broken")
    healthy = frame.get_by_test_id("run-diag-healthy")
    expect(broken).to_have_attribute("data-worst", "error")
    expect(broken).to_have_attribute("data-error", str(counts["broken"]["error"]))
    expect(broken).to_contain_text("error")
    assert "%d error" % counts["broken"]["error"] in broken.get_attribute("title")
    expect(healthy).to_have_attribute("data-error", "0")
    assert healthy.get_attribute("data-worst") in ("ok", "info")
    assert "error" not in healthy.inner_text()

    # sortable by the worst severity: worst first on the first click
    frame.get_by_test_id("run-col-diagnostics").click()
    order = frame.locator('[data-testid^="run-row-"]').evaluate_all("els => els.map(e => e.dataset.run)")
    assert order[0] == "broken" and order[-1] == "healthy"

    # a badge opens the panel on its run
    panel = frame.get_by_test_id("diag-panel")
    expect(panel).to_have_attribute("data-open", "false")
    broken.click()
    expect(panel).to_have_attribute("data-open", "true")
    expect(panel).to_have_attribute("data-scope", "run:broken")
    assert frame.get_by_test_id("diag-scope").input_value() == "run:broken"
    own = [x for x in answer["findings"] if x["run"] == "broken"]
    expect(frame.locator(FINDING)).to_have_count(len(own))
    assert set(frame.locator(FINDING).evaluate_all("els => els.map(e => e.dataset.run)")) == {"broken"}

    healthy.click()
    expect(panel).to_have_attribute("data-scope", "run:healthy")
    own = [x for x in answer["findings"] if x["run"] == "healthy"]
    expect(frame.locator(FINDING)).to_have_count(len(own))
    if not own:
        expect(frame.get_by_test_id("diag-empty")).to_be_visible()
    assert not page.page_errors


def test_markers_on_the_ordinary_chart(page, diag_env):
    base, answer = diag_env
    f = nonfinite_finding(answer)
    assert "train/loss" in f["tags"]
    page.goto(base + STANDALONE + "?" + urllib.parse.urlencode([("tag", "train/loss"), ("run", "broken"), ("run", "diverging")]))
    card = page.get_by_test_id("chart-train/loss")
    wait_for(lambda: card.get_attribute("data-state") == "ready", page, what="train/loss drawn")
    marker, centre = assert_marker_at(card, "chart-annotation", NAN_FROM)
    assert marker.get_attribute("data-rule") == "nonfinite_loss"
    assert marker.get_attribute("data-run") == "broken"
    # one marker per finding of a drawn run listing train/loss with a step
    wanted = {
        (x["run"], x["rule"], x["step"]) for x in answer["findings"]
        if x["run"] in ("broken", "diverging") and "train/loss" in x["tags"] and x["step"] is not None
    }
    drawn = card.locator('[data-testid="chart-annotation"]').evaluate_all(
        "els => els.map(e => [e.dataset.run, e.dataset.rule, Number(e.dataset.step)])"
    )
    assert {tuple(d) for d in drawn} == wanted
    # a later onset sits further right
    later = [d for d in drawn if d[2] > NAN_FROM]
    if later:
        _, x2 = assert_marker_at(card, "chart-annotation", later[0][2], later[0][1])
        assert x2 > centre

    # healthy alone: no error or warning marker
    page.goto(base + STANDALONE + "?" + urllib.parse.urlencode([("tag", "train/loss"), ("run", "healthy")]))
    card = page.get_by_test_id("chart-train/loss")
    wait_for(lambda: card.get_attribute("data-state") == "ready", page, what="train/loss drawn")
    page.wait_for_timeout(500)
    for sev in ("error", "warning"):
        expect(card.locator('[data-testid="chart-annotation"][data-severity="%s"]' % sev)).to_have_count(0)
    assert not page.page_errors


def test_findings_on_charts_say_whose_they_are_and_can_be_switched_off(page, diag_env):
    """Markers of two runs' findings: each in its run's colour (the legend's swatch), labelled with the run's
    name, their labels stacked (not drawn over each other), range strips along the bottom; the controls'
    "findings on charts" removes them, and the choice is part of the view (URL)."""
    base, answer = diag_env
    page.goto(base + STANDALONE + "?" + urllib.parse.urlencode([("tag", "train/loss"), ("run", "broken"), ("run", "diverging")]))
    card = page.get_by_test_id("chart-train/loss")
    wait_for(lambda: card.get_attribute("data-state") == "ready", page, what="train/loss drawn")
    markers = card.locator('[data-testid="chart-annotation"]')
    wait_for(lambda: {m.get_attribute("data-run") for m in markers.all()} == {"broken", "diverging"}, page,
             what="markers of both runs")
    swatch = {
        r.get_attribute("data-run"): r.locator(".tbp-swatch").evaluate("e => getComputedStyle(e).backgroundColor")
        for r in card.locator(".tbp-legend-row").all()
    }
    assert swatch["broken"] != swatch["diverging"]
    tops = []
    for m in markers.all():
        run = m.get_attribute("data-run")
        assert m.evaluate("e => getComputedStyle(e).backgroundColor") == swatch[run]
        label = m.locator(".tbp-marker-label")
        assert run in label.inner_text()
        tops.append(label.bounding_box()["y"])
    assert len(set(tops)) == len(tops), "labels drawn over each other: %r" % tops
    plot = card.locator(".u-over").bounding_box()
    for band in card.locator('[data-testid="chart-annotation-band"]').all():
        if band.is_visible():
            box = band.bounding_box()
            assert box["height"] <= 0.2 * plot["height"]  # a strip, not a shade over the plot

    page.get_by_test_id("diag-overlays").uncheck()
    expect(markers).to_have_count(0)
    wait_for(lambda: "dover=0" in page.url, page, what="the choice in the URL")
    page.reload()
    page.get_by_test_id("chart-train/loss").wait_for()
    expect(page.get_by_test_id("diag-overlays")).not_to_be_checked()
    page.get_by_test_id("diag-overlays").check()
    expect(page.get_by_test_id("chart-train/loss").locator('[data-testid="chart-annotation"]').first).to_be_attached()
    assert not page.page_errors
