"""Chart scales that never mislead: tick labels at any magnitude, outlier-robust y scaling, log y down to the
smallest double, one-point series.

The chart element (`.tbp-plot`) carries `data-yticks` (the y labels drawn last, JSON), `data-yoffset` (the
value added to every y label, absent when none; shown beside the axis as `chart-yoffset`), `data-ymin` /
`data-ymax` (the y scale), `data-outliers` ("ignored" / "shown") and `data-clipped` (points outside the y
range, marked at the plot's edge). The logs are written by torch's SummaryWriter (doubles where float32
cannot hold the values).
"""

import json
import math
import os
import urllib.parse

import pytest

from .conftest import run_tensorboard
from .test_views import chart_ready, wait_for

STANDALONE = "/data/plugin/tb_plus/standalone"
HEALTHY = ("healthy_a", "healthy_b")
DIVERGING = "diverging"
SCALES = "scales"
RUNS = (*HEALTHY, DIVERGING, SCALES)
STEPS = 200
DIVERGE_AT = 100
PEAK = 1.46e35


def healthy_loss(run, step):
    return 2.0 * math.exp(-step / 40.0) + 0.1 + (0.25 if run == "healthy_b" else 0.0)


def diverging_loss(step):
    if step < DIVERGE_AT:
        return healthy_loss("healthy_a", step)
    # geometric growth from ~0.2 to PEAK at the last step
    k = (step - DIVERGE_AT + 1) / (STEPS - DIVERGE_AT)
    return 0.2 * (PEAK / 0.2) ** k


# tag -> (values by step, written as doubles)
SERIES = {
    "grad/norm_1e-25": ([1e-25 * (1 + 2 * s / STEPS) for s in range(STEPS)], False),
    "grad/norm_1e-20": ([1e-20 * (1 + 0.5 * math.sin(s / 10)) for s in range(STEPS)], False),
    "opt/lr": ([3e-5 + (3e-4 - 3e-5) * 0.5 * (1 + math.cos(math.pi * s / STEPS)) for s in range(STEPS)], True),
    "eval/acc": ([1 - 1e-6 + 2e-6 * s / (STEPS - 1) for s in range(STEPS)], True),
    "big/counter": ([1e17 + 64.0 * s for s in range(STEPS)], True),
    "big/huge": ([1e35 * (1 + s / STEPS) for s in range(STEPS)], False),
    # 1e-300 down through the subnormals to the smallest positive double
    "tiny/double": ([1e-300 * 10.0 ** (-s / 8) for s in range(STEPS)][:190] + [5e-324], True),
}
ONE_POINT = ("single/point", 7, 0.5)  # tag, step, value
LONG = ("long/steps", range(0, 20_000_001, 100_000))  # tag, steps up to 20 M


def _write_logdir(root):
    from torch.utils.tensorboard import SummaryWriter

    for run in RUNS:
        w = SummaryWriter(os.path.join(root, run), flush_secs=1)
        if run == SCALES:
            for tag, (values, double) in SERIES.items():
                for step, v in enumerate(values):
                    w.add_scalar(tag, v, step, new_style=double, double_precision=double)
            tag, step, value = ONE_POINT
            w.add_scalar(tag, value, step)
            tag, steps = LONG
            for step in steps:
                w.add_scalar(tag, 1.0 / (1.0 + step / 1e6), step)
        else:
            for step in range(STEPS):
                v = diverging_loss(step) if run == DIVERGING else healthy_loss(run, step)
                w.add_scalar("train/loss", v, step)
        w.close()


@pytest.fixture(scope="module")
def scales_url(tmp_path_factory, browser):
    from .conftest import _require_bundle

    _require_bundle()
    root = str(tmp_path_factory.mktemp("scales_logdir"))
    _write_logdir(root)
    log_path = str(tmp_path_factory.mktemp("scales_tb") / "tensorboard.log")
    with run_tensorboard(root, log_path, RUNS) as base:
        yield base


def open_chart(page, base, tag, extra=()):
    params = [("tag", tag), *[("run", r) for r in RUNS], *extra]
    page.goto(base + STANDALONE + "?" + urllib.parse.urlencode(params))
    return chart_ready(page, tag)


def y_axis(p):
    """(labels, offset or None, scale min, scale max) of the plot's y axis, once labels are drawn."""
    wait_for(lambda: p.get_attribute("data-yticks") not in (None, "[]"), p.page, what="y tick labels")
    labels = json.loads(p.get_attribute("data-yticks"))
    off = p.get_attribute("data-yoffset")
    return labels, (float(off) if off is not None else None), float(p.get_attribute("data-ymin")), float(p.get_attribute("data-ymax"))


def _scale_meets(p, data_min, data_max, log=False):
    """Whether the drawn y scale covers the data and, on a linear axis, is near its size (not the empty
    chart's 0..1 drawn before them, which also overlaps data at 1e-25)."""
    lo, hi = p.get_attribute("data-ymin"), p.get_attribute("data-ymax")
    if p.get_attribute("data-yticks") in (None, "[]") or lo is None or hi is None:
        return False
    lo, hi = float(lo), float(hi)
    if not (lo <= data_max and hi >= data_min):
        return False
    span = (data_max - data_min) or abs(data_max) * 0.2 or 1.0
    return log or hi - lo <= max(span * 3, abs(data_max) * 1e-9)


def check_labels(p, data_min, data_max, log=False):
    wait_for(lambda: _scale_meets(p, data_min, data_max, log), p.page, what="a y scale over the data")
    labels, offset, lo, hi = y_axis(p)
    assert len(labels) >= 2, labels
    assert all(labels), labels
    assert len(set(labels)) == len(labels), labels
    assert all(len(t) <= 10 for t in labels), labels
    assert not any("," in t for t in labels), labels
    values = [float(t) + (offset or 0.0) for t in labels]
    assert values == sorted(values) and len(set(values)) == len(values), (labels, offset)
    span = (data_max - data_min) or abs(data_max) * 0.2 or 1.0
    for v in values:
        assert lo - abs(lo) * 1e-12 <= v <= hi + abs(hi) * 1e-12, (labels, offset, lo, hi)
        if log:
            assert data_min / 10 ** 25 <= v <= data_max * 10 ** 25, (labels, data_min, data_max)
        else:
            assert data_min - span <= v <= data_max + span, (labels, offset, data_min, data_max)
    # the scale itself is near the data (not 0..100 around a flat line)
    if log:
        assert lo <= data_min and hi >= data_max, (lo, hi, data_min, data_max)
    else:
        assert lo <= data_min + span * 0.01 and hi >= data_max - span * 0.01, (lo, hi, data_min, data_max)
        assert hi - lo <= max(span * 3, abs(data_max) * 1e-9), (lo, hi, data_min, data_max)
    return labels, offset


def finite_range(values, log=False):
    vs = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    return min(vs), max(vs)


COLOUR_PIXELS = """(el, key) => {
    // pixels of the series' stroke colour on the canvas (inside the plot area)
    const u = el.uplot;
    const s = u.series.find((s) => s.tbpKey === key && s.tbpRole === "line");
    const probe = document.createElement("canvas").getContext("2d");
    probe.fillStyle = s.stroke instanceof Function ? s.stroke(u, 1) : s.stroke;
    const hex = probe.fillStyle;
    const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const { left, top, width, height } = u.bbox;
    const img = u.ctx.getImageData(left, top, width, height).data;
    let n = 0;
    for (let i = 0; i < img.length; i += 4) {
        if (img[i + 3] > 150 && Math.abs(img[i] - want[0]) < 40 && Math.abs(img[i + 1] - want[1]) < 40 &&
            Math.abs(img[i + 2] - want[2]) < 40) n++;
    }
    return n;
}"""

def pixel_extent(p, key):
    return p.evaluate(
        """(el, key) => {
            const u = el.uplot;
            const i = u.series.findIndex((s) => s.tbpKey === key && s.tbpRole === "line");
            const ys = Array.from(u.data[i]).filter((v) => v != null);
            const px = ys.map((v) => u.valToPos(v, "y"));
            const h = u.over.clientHeight;
            return {lo: Math.min(...px), hi: Math.max(...px), h};
        }""",
        key,
    )


@pytest.mark.parametrize("tag", ["grad/norm_1e-25", "grad/norm_1e-20", "opt/lr", "eval/acc", "big/counter", "big/huge"],
                         ids=lambda t: t.replace("/", "_"))
def test_y_tick_labels_at_every_magnitude(page, scales_url, tag):
    """Distinct, short labels that read back (with the offset) to values within the data's range."""
    p = open_chart(page, scales_url, tag)
    values = SERIES[tag][0]
    lo, hi = finite_range(values)
    labels, offset = check_labels(p, lo, hi)
    if tag == "opt/lr":
        assert any("e-" in t for t in labels), labels  # 1e-4, not 0.0001 / 0
    if tag == "eval/acc":
        # 0.999999 .. 1.000001: differences from the offset 1, the offset written on the chart
        assert offset == 1.0, (labels, offset)
        note = p.get_by_test_id("chart-yoffset")
        assert note.is_visible() and note.inner_text() == "+1"
    if tag == "big/counter":
        assert offset == 1e17, (labels, offset)
    if tag in ("grad/norm_1e-25", "grad/norm_1e-20", "big/huge"):
        assert offset is None and all("e" in t or t == "0" for t in labels), labels
    # the legend shows a compact value; the exact one is in its title
    row = p.get_by_test_id("chart-legend").locator('[data-run="%s"]' % SCALES)
    text = row.locator(".tbp-legend-y").inner_text()
    assert len(text) <= 14 and "," not in text, text
    assert float(row.locator(".tbp-legend-y").get_attribute("title")) == pytest.approx(values[-1], rel=1e-6)
    assert page.page_errors == []


def test_log_y_ticks_for_tiny_values(page, scales_url):
    """Log y at 1e-25 (uPlot's own log splits failed there): decade labels in exponent notation."""
    p = open_chart(page, scales_url, "grad/norm_1e-25", [("ylog", "1")])
    lo, hi = finite_range(SERIES["grad/norm_1e-25"][0])
    labels, _ = check_labels(p, lo, hi, log=True)
    assert all(t.startswith("1e-2") or t.startswith("2e-2") or t.startswith("5e-2") for t in labels), labels
    assert p.evaluate(COLOUR_PIXELS, SCALES) > 50
    assert page.page_errors == []


def test_log_y_down_to_the_smallest_double(page, scales_url):
    """1e-300 down to 5e-324 (subnormals) on a log y axis: the line is drawn, labels are decades."""
    tag = "tiny/double"
    p = open_chart(page, scales_url, tag, [("ylog", "1")])
    lo, hi = finite_range(SERIES[tag][0], log=True)
    assert lo == 5e-324
    labels, offset = check_labels(p, lo, hi, log=True)
    assert offset is None and all(t.startswith("1e-3") for t in labels), labels
    assert float(p.get_attribute("data-ymin")) <= 5e-324
    # every point is on the scale: the line is drawn
    ext = pixel_extent(p, SCALES)
    assert ext["hi"] - ext["lo"] > 0.5 * ext["h"], ext
    assert p.evaluate(COLOUR_PIXELS, SCALES) > 100
    assert page.page_errors == []


def test_outliers_ignored_keep_healthy_lines_readable(page, scales_url):
    """A run diverging to 1.46e35 beside healthy ones: by default the y axis fits the healthy lines and
    the diverging points are clipped (marked at the top edge); without ignoring outliers every value fits
    and the labels are exponents; a chart can override the global setting."""
    p = open_chart(page, scales_url, "train/loss")
    assert p.get_attribute("data-outliers") == "ignored"
    assert page.get_by_test_id("outliers").is_checked()
    for run in HEALTHY:
        ext = pixel_extent(p, run)
        assert ext["hi"] - ext["lo"] > 0.5 * ext["h"], (run, ext)
    healthy = [healthy_loss(r, s) for r in HEALTHY for s in range(STEPS)]
    check_labels(p, min(healthy), max(healthy))
    assert float(p.get_attribute("data-ymax")) < 10
    assert int(p.get_attribute("data-clipped")) > 50

    # the global toggle off: every value fits, y labels readable
    page.get_by_test_id("outliers").uncheck()
    wait_for(lambda: p.get_attribute("data-outliers") == "shown", page, what="outliers shown")
    wait_for(lambda: float(p.get_attribute("data-ymax")) >= PEAK, page, what="y fits the peak")
    labels, offset = check_labels(p, 0.1, PEAK)
    assert offset is None and any("e3" in t for t in labels), labels
    assert p.get_attribute("data-clipped") == "0"
    assert "outliers=0" in page.url

    # the chart's own override: ignore outliers on this chart only
    page.get_by_test_id("chart-train/loss").get_by_test_id("chart-outliers").select_option("1")
    wait_for(lambda: p.get_attribute("data-outliers") == "ignored", page, what="per-chart override")
    wait_for(lambda: float(p.get_attribute("data-ymax")) < 10, page, what="healthy y range")
    assert "topt=" in page.url and "outliers" in urllib.parse.unquote(page.url)
    assert page.page_errors == []


def test_outliers_setting_restored_from_the_url(page, scales_url):
    p = open_chart(page, scales_url, "train/loss", [("outliers", "0")])
    assert p.get_attribute("data-outliers") == "shown"
    assert not page.get_by_test_id("outliers").is_checked()
    assert float(p.get_attribute("data-ymax")) >= PEAK


def test_one_point_series_is_a_dot(page, scales_url):
    tag, step, value = ONE_POINT
    p = open_chart(page, scales_url, tag)
    assert json.loads(p.get_attribute("data-points")) == {SCALES: 1}
    assert p.evaluate(COLOUR_PIXELS, SCALES) >= 12
    check_labels(p, value, value)
    assert page.page_errors == []


def test_x_ticks_up_to_20m_steps_do_not_collide(page, scales_url):
    tag, steps = LONG
    p = open_chart(page, scales_url, tag)
    wait_for(lambda: p.get_attribute("data-xticks") not in (None, "[]"), page, what="x tick labels")
    labels = json.loads(p.get_attribute("data-xticks"))
    offset = float(p.get_attribute("data-xoffset") or 0)
    assert len(labels) >= 3 and all(labels) and len(set(labels)) == len(labels), labels
    assert all(len(t) <= 10 and "," not in t for t in labels), labels
    values = [float(t) + offset for t in labels]
    assert all(steps[0] <= v <= steps[-1] for v in values), labels
    # enough room per label: ~7 px per character at 11 px, plus a gap
    pos = [p.evaluate("(el, v) => el.uplot.valToPos(v, 'x')", v) for v in values]
    widest = max(len(t) for t in labels) * 7
    assert all(b - a >= widest + 8 for a, b in zip(pos, pos[1:])), (labels, pos)
    assert page.page_errors == []
