"""Small fixes from issue 17's "Lower" list, each checked in the browser: one step listed once in the
Evaluation panel when it was logged twice, the chart enlarge button, filters over the tag selects, the
dark theme (the page's preference standalone, TensorBoard's dark mode in its tab), glyphs every common
font has, and no "ok" diagnostics badge on a run without data.

The log directories are written here with real writers (torch's SummaryWriter, tb_plus.evaluation).
"""

import os
import re
import urllib.parse

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # conftest skips every test here with the reason
    expect = None

from .conftest import RUNS, _require_bundle, new_context, run_tensorboard
from .test_tab import PLUGIN_FRAME
from .test_views import STANDALONE, chart_ready, standalone, wait_for

# ---------------------------------------------------------------- evaluations logged twice at a step

EVAL_RUN = "model"
EVAL_TAG = "eval/ctr"
PR_TAG = "pr/val"
FIRST_STEPS = (100, 200, 300)
AGAIN_STEPS = (200, 300)  # logged again (a resumed run): the second values win
FIRST_N, AGAIN_N = 2000, 1500  # samples per evaluation: the counts tell which one is shown


def _scores(rng, n, shift):
    import numpy as np

    labels = rng.random(n) < 0.3
    logits = rng.normal(0.0, 1.0, n) + labels * shift
    return np.clip(np.round(1.0 / (1.0 + np.exp(-logits)), 3), 0.001, 0.999), labels


@pytest.fixture(scope="module")
def repeated_eval(tmp_path_factory):
    """(base URL, {step: positives shown}): evaluations at 100, 200, 300, then 200 and 300 again, for a
    tb_plus evaluation tag in one event file (a resumed run) and a pr_curves tag in a second event file."""
    _require_bundle()
    np = pytest.importorskip("numpy")
    pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    from tb_plus.evaluation import log_evaluation

    tmp = tmp_path_factory.mktemp("repeated_eval")
    run_dir = os.path.join(str(tmp / "logs"), EVAL_RUN)
    rng = np.random.default_rng(17)
    positives = {}
    first = SummaryWriter(run_dir, flush_secs=1)
    for i, step in enumerate(FIRST_STEPS):
        s, y = _scores(rng, FIRST_N, 0.8 + 0.3 * i)
        log_evaluation(first, EVAL_TAG, step, s, y)
        first.add_pr_curve(PR_TAG, y, s, step)
        positives[step] = int(y.sum())
    for i, step in enumerate(AGAIN_STEPS):  # the same file, the same steps again
        s, y = _scores(rng, AGAIN_N, 1.5 + 0.3 * i)
        log_evaluation(first, EVAL_TAG, step, s, y)
        positives[step] = int(y.sum())
    first.close()
    pr_positives = {s: positives[s] for s in FIRST_STEPS}
    second = SummaryWriter(run_dir, flush_secs=1)  # a second event file with the pr_curves steps again
    for i, step in enumerate(AGAIN_STEPS):
        s, y = _scores(rng, AGAIN_N, 1.5 + 0.3 * i)
        second.add_pr_curve(PR_TAG, y, s, step)
        pr_positives[step] = int(y.sum())
    second.close()
    # Event files are read in name order: name them so that the second one sorts last.
    files = sorted(f for f in os.listdir(run_dir) if "tfevents" in f)
    assert len(files) == 2
    by_age = sorted(files, key=lambda f: os.path.getmtime(os.path.join(run_dir, f)))
    for n, f in enumerate(by_age):
        os.rename(os.path.join(run_dir, f), os.path.join(run_dir, "events.out.tfevents.%d.host.%d" % (1700000000 + n, n)))
    with run_tensorboard(str(tmp / "logs"), str(tmp / "tensorboard.log"), (EVAL_RUN,)) as base:
        yield base, {EVAL_TAG: positives, PR_TAG: pr_positives}


def _eval_shown(page, tag, step, positives):
    panel = page.get_by_test_id("eval-panel")
    wait_for(
        lambda: (panel.get_attribute("data-tag"), panel.get_attribute("data-step"), panel.get_attribute("data-state"))
        == (tag, str(step), "ready"),
        page,
        what="%s at step %s drawn" % (tag, step),
    )
    expect(page.get_by_test_id("eval-count")).to_contain_text("%s positives" % format(positives, ","))


@pytest.mark.parametrize("tag", [EVAL_TAG, PR_TAG])
def test_evaluation_steps_logged_twice_are_listed_once(page, repeated_eval, tag):
    base, positives = repeated_eval
    params = [("eval", "1"), ("erun", EVAL_RUN), ("etag", tag)]
    page.goto(base + STANDALONE + "?" + urllib.parse.urlencode(params))
    expect(page.get_by_test_id("eval-panel")).to_have_attribute("data-open", "true")
    # the last step, as written last
    _eval_shown(page, tag, FIRST_STEPS[-1], positives[tag][FIRST_STEPS[-1]])
    steps = page.get_by_test_id("eval-step").locator("option")
    assert steps.evaluate_all("els => els.map(e => e.value)") == [str(s) for s in FIRST_STEPS]
    # a step logged twice: the value written last
    page.get_by_test_id("eval-step").select_option(str(AGAIN_STEPS[0]))
    _eval_shown(page, tag, AGAIN_STEPS[0], positives[tag][AGAIN_STEPS[0]])
    # prev / next walk each step once
    page.get_by_test_id("eval-step-prev").click()
    _eval_shown(page, tag, FIRST_STEPS[0], positives[tag][FIRST_STEPS[0]])
    page.get_by_test_id("eval-step-next").click()
    _eval_shown(page, tag, FIRST_STEPS[1], positives[tag][FIRST_STEPS[1]])
    page.get_by_test_id("eval-step-next").click()
    _eval_shown(page, tag, FIRST_STEPS[2], positives[tag][FIRST_STEPS[2]])
    expect(page.get_by_test_id("eval-step-next")).to_be_disabled()
    assert page.page_errors == []


# ---------------------------------------------------------------- enlarge a chart


def test_enlarge_button_widens_and_heightens_the_card_and_restores_it(page, tensorboard_url):
    standalone(page, tensorboard_url, [("tag", "train/loss"), ("tag", "train/acc"), *[("run", r) for r in RUNS]])
    p = chart_ready(page, "train/loss")
    chart_ready(page, "train/acc")
    card = page.get_by_test_id("chart-train/loss")
    other = page.get_by_test_id("chart-train/acc")
    before, other_before = card.bounding_box(), other.bounding_box()
    assert other_before["y"] == pytest.approx(before["y"], abs=2)  # side by side at first
    height_before = p.evaluate("el => el.uplot.height")
    button = card.get_by_test_id("chart-enlarge")
    expect(button).to_have_attribute("aria-pressed", "false")

    button.click()
    expect(card).to_have_attribute("data-enlarged", "true")
    expect(button).to_have_attribute("aria-pressed", "true")
    wait_for(lambda: p.evaluate("el => el.uplot.height") > height_before, page, what="a taller chart")
    wait_for(lambda: card.bounding_box()["width"] > before["width"] * 1.6, page, what="a wider card")
    grid = card.locator("xpath=..").bounding_box()
    big = card.bounding_box()
    assert big["width"] == pytest.approx(grid["width"], abs=2)  # the chart area's full width
    assert big["height"] > before["height"] + 100
    assert p.evaluate("el => el.uplot.width") > before["width"] * 1.5  # the plot drawn at the new size
    # the other card moved below it
    assert other.bounding_box()["y"] >= big["y"] + big["height"] - 1

    button.click()
    expect(card).to_have_attribute("data-enlarged", "false")
    wait_for(lambda: p.evaluate("el => el.uplot.height") == height_before, page, what="the usual height")
    wait_for(lambda: abs(card.bounding_box()["width"] - before["width"]) < 2, page, what="the usual width")
    assert card.bounding_box()["height"] == pytest.approx(before["height"], abs=2)
    assert page.page_errors == []


# ---------------------------------------------------------------- filters over the tag selects


def option_values(select):
    return select.locator("option").evaluate_all("els => els.map(e => e.value)")


def option_texts(select):
    return select.locator("option").evaluate_all("els => els.map(e => e.textContent)")


def matching(pairs, query, keep):
    q = query.lower()
    return [v for v, t in pairs if v == keep or q in v.lower() or q in t.lower()]


def test_filters_narrow_the_x_axis_and_tag_selects_keeping_the_choice(page, tensorboard_url):
    standalone(page, tensorboard_url, [("tag", "train/loss"), *[("run", r) for r in RUNS]])
    chart_ready(page, "train/loss")

    # the x axis: every choice, then those holding "EPO" (any case) and the current one
    x = page.get_by_test_id("x-axis")
    wait_for(lambda: "tag:epoch" in option_values(x), page, what="epoch among the x choices")
    every = list(zip(option_values(x), option_texts(x)))
    assert len(every) > 3
    expect(x).to_have_value("step")
    page.get_by_test_id("x-axis-filter").fill("EPO")
    wait_for(lambda: option_values(x) == matching(every, "EPO", "step"), page, what="x choices narrowed")
    assert option_values(x) == ["step", "tag:epoch"]
    expect(x).to_have_value("step")
    x.select_option("tag:epoch")
    wait_for(lambda: "x=tag%3Aepoch" in page.url or "x=tag:epoch" in page.url, page, what="x in the URL")
    expect(page.get_by_test_id("chart-train/loss").locator(".tbp-plot")).to_have_attribute("data-xkind", "float")
    page.get_by_test_id("x-axis-filter").fill("wall")
    wait_for(lambda: option_values(x) == ["wall_time", "tag:epoch"], page, what="the choice kept in a new filter")
    expect(x).to_have_value("tag:epoch")
    page.get_by_test_id("x-axis-filter").fill("")
    wait_for(lambda: option_values(x) == [v for v, _ in every], page, what="every x choice back")
    expect(x).to_have_value("tag:epoch")

    # the custom chart's tag select
    page.get_by_test_id("builders").locator("summary").click()
    tag = page.get_by_test_id("custom-tag")
    tags = option_values(tag)
    assert {"train/loss", "train/acc", "eval/loss"} <= set(tags)
    current = tag.input_value()
    page.get_by_test_id("custom-tag-filter").fill("LOSS")
    want = matching([(t, t) for t in tags], "LOSS", current)
    wait_for(lambda: option_values(tag) == want, page, what="custom tags narrowed")
    assert "train/acc" not in want
    tag.select_option("train/loss")
    page.get_by_test_id("custom-tag-filter").fill("acc")
    wait_for(lambda: option_values(tag) == [t for t in tags if t in ("train/acc", "train/loss")], page, what="train/loss kept")
    expect(tag).to_have_value("train/loss")
    page.get_by_test_id("custom-run").select_option(RUNS[0])
    page.get_by_test_id("custom-create").click()
    card = page.locator('[data-kind="custom"]')
    expect(card.locator(".tbp-chart-title")).to_have_text("%s:train/loss" % RUNS[0])

    # the comparison's A and B tag selects, each its own filter
    a, b = page.get_by_test_id("cmp-a-tag"), page.get_by_test_id("cmp-b-tag")
    a_current, b_current = a.input_value(), b.input_value()
    page.get_by_test_id("cmp-a-tag-filter").fill("Train/A")
    page.get_by_test_id("cmp-b-tag-filter").fill("eval")
    wait_for(lambda: option_values(a) == matching([(t, t) for t in tags], "Train/A", a_current), page, what="A narrowed")
    wait_for(lambda: option_values(b) == matching([(t, t) for t in tags], "eval", b_current), page, what="B narrowed")
    a.select_option("train/acc")
    b.select_option("eval/loss")
    page.get_by_test_id("cmp-a-run").select_option(RUNS[1])
    page.get_by_test_id("cmp-b-run").select_option(RUNS[0])
    page.get_by_test_id("cmp-create").click()
    expect(page.locator('[data-kind="cmp"]').locator(".tbp-chart-title")).to_contain_text(
        "%s:train/acc" % RUNS[1])
    expect(page.locator('[data-kind="cmp"]').locator(".tbp-chart-title")).to_contain_text("%s:eval/loss" % RUNS[0])
    # a filter matching nothing is marked; the current choice stays listed
    page.get_by_test_id("cmp-a-tag-filter").fill("no such tag")
    expect(page.get_by_test_id("cmp-a-tag-filter")).to_have_class(re.compile(r"\bbad\b"))
    wait_for(lambda: option_values(a) == ["train/acc"], page, what="only the current choice")
    assert page.page_errors == []


# ---------------------------------------------------------------- dark theme

LIGHT_BG, DARK_BG = "rgb(245, 245, 245)", "rgb(32, 33, 36)"
LIGHT_CARD, DARK_CARD = "rgb(255, 255, 255)", "rgb(43, 44, 47)"
LIGHT_AXIS, DARK_AXIS = "#000000", "#c4c7cc"


def colours(scope, tag):
    """(body background, the chart card's background, the body's text colour, the y axis and grid colours)."""
    body = scope.locator("body").evaluate(
        "el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]")
    card = scope.get_by_test_id("chart-" + tag).evaluate("el => getComputedStyle(el).backgroundColor")
    axis = scope.get_by_test_id("chart-" + tag).locator(".tbp-plot").evaluate(
        "el => [el.uplot.axes[1].stroke(el.uplot, 1), el.uplot.axes[1].grid.stroke(el.uplot, 1)]")
    return body[0], card, body[1], axis[0], axis[1]


def test_standalone_page_follows_the_systems_dark_preference(browser, tensorboard_url):
    context = new_context(browser, color_scheme="dark", viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        standalone(page, tensorboard_url, [("tag", "train/loss"), *[("run", r) for r in RUNS]])
        chart_ready(page, "train/loss")
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        bg, card, text, axis, grid = colours(page, "train/loss")
        assert (bg, card, axis) == (DARK_BG, DARK_CARD, DARK_AXIS)
        assert text == "rgb(232, 234, 237)" and "255" in grid  # light text, light grid lines
        # the preference changes: the tab follows without a reload
        page.emulate_media(color_scheme="light")
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        bg, card, text, axis, grid = colours(page, "train/loss")
        assert (bg, card, axis) == (LIGHT_BG, LIGHT_CARD, LIGHT_AXIS)
        assert text == "rgb(33, 33, 33)"
        assert errors == []
    finally:
        context.close()


def test_tensorboard_tab_follows_tensorboards_dark_mode(page, tensorboard_url):
    page.goto(tensorboard_url + "/#tb_plus")
    frame = page.frame_locator(PLUGIN_FRAME)
    frame.get_by_test_id("run-" + RUNS[0]).wait_for()
    frame.get_by_test_id("tag-train/loss").click()
    expect(frame.get_by_test_id("chart-train/loss")).to_have_attribute("data-state", "ready")
    html = frame.locator("html")
    expect(html).to_have_attribute("data-theme", "light")
    assert colours(frame, "train/loss")[:2] == (LIGHT_BG, LIGHT_CARD)
    # TensorBoard's dark mode: the class dark-mode on its page's body
    page.evaluate("document.body.classList.add('dark-mode')")
    expect(html).to_have_attribute("data-theme", "dark")
    bg, card, _, axis, _ = colours(frame, "train/loss")
    assert (bg, card, axis) == (DARK_BG, DARK_CARD, DARK_AXIS)
    assert frame.get_by_test_id("run-list").evaluate("el => getComputedStyle(el).color") != "rgb(33, 33, 33)"
    page.evaluate("document.body.classList.remove('dark-mode')")
    expect(html).to_have_attribute("data-theme", "light")
    bg, card, _, axis, _ = colours(frame, "train/loss")
    assert (bg, card, axis) == (LIGHT_BG, LIGHT_CARD, LIGHT_AXIS)
    assert page.page_errors == []


# ---------------------------------------------------------------- glyphs every common font has

# What the tab may write: ASCII, Latin-1, and a few symbols of WGL4 (the set Arial, Liberation and DejaVu
# all cover): dashes, quotes, bullet, ellipsis, single angle quotes, arrows, minus, almost equal, up and
# down triangles. Anything else (a fullwidth plus, a pushpin emoji, subscript digits) may be a box.
SAFE = (
    "\\t\\n\\r\\u0020-\\u007e\\u00a0-\\u00ff\\u2013\\u2014\\u2018-\\u201d\\u2022\\u2026\\u2039\\u203a"
    "\\u2190-\\u2195\\u2212\\u2248\\u25b2\\u25bc"
)
SAFE_RE = re.compile("[^%s]" % SAFE.encode().decode("unicode_escape"))

UNSAFE_TEXT = """(_body, safe) => {
    const bad = new RegExp("[^" + safe + "]", "u");
    const out = [];
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        const p = n.parentElement;
        if (p && p.closest("script, style")) continue;
        for (const ch of n.data) if (bad.test(ch)) out.push([ch, p ? p.className : "", n.data.slice(0, 80)]);
    }
    for (const e of document.querySelectorAll("[placeholder]")) {
        for (const ch of e.placeholder) if (bad.test(ch)) out.push([ch, "placeholder", e.placeholder]);
    }
    return out;
}"""


def unsafe_text(scope):
    return scope.locator("body").evaluate(UNSAFE_TEXT, SAFE)


def test_the_tab_writes_only_glyphs_common_fonts_have(page, tensorboard_url, repeated_eval):
    # the chart area with everything open: controls, builders, a chart with its legend and tools, the
    # diagnostics panel, the run table sorted (its arrow), the tag tree
    standalone(page, tensorboard_url, [("tag", "train/loss"), *[("run", r) for r in RUNS], ("group", "train")])
    p = chart_ready(page, "train/loss")
    page.get_by_test_id("builders").locator("summary").click()
    page.get_by_test_id("run-col-last_step").click()
    panel = page.get_by_test_id("diag-panel")
    expect(panel).to_be_visible()
    page.get_by_test_id("diag-toggle").click()
    expect(panel).to_have_attribute("data-state", "ready")
    box = p.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(p.get_by_test_id("chart-legend").locator('[data-run="%s"]' % RUNS[0])).to_have_attribute("data-x", re.compile(r"\d"))
    assert page.get_by_test_id("pin-input").count() == 1
    assert unsafe_text(page) == []
    # the Evaluation panel, open on a pr_curves evaluation
    base, _ = repeated_eval
    page.goto(base + STANDALONE + "?" + urllib.parse.urlencode([("eval", "1"), ("erun", EVAL_RUN), ("etag", EVAL_TAG)]))
    expect(page.get_by_test_id("eval-panel")).to_have_attribute("data-state", "ready")
    expect(page.get_by_test_id("eval-roc")).to_have_attribute("data-state", "ready")
    assert unsafe_text(page) == []
    assert page.page_errors == []


def test_no_source_string_uses_a_glyph_common_fonts_lack():
    """The frontend's code (comments aside) writes no character outside SAFE: a glyph in a path the browser
    tests do not open (the trace panel, an error message) is caught here."""
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tb_plus_frontend", "src")
    found = []
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith((".ts", ".css")):
                continue
            with open(os.path.join(root, name), encoding="utf-8") as f:
                for i, line in enumerate(f, 1):
                    if line.strip().startswith(("//", "/*", "*")):
                        continue
                    code = re.sub(r"/\*.*?\*/", "", line.split(" // ")[0])
                    bad = SAFE_RE.findall(code)
                    if bad:
                        found.append((name, i, bad, line.strip()[:100]))
    assert found == []


# ---------------------------------------------------------------- no "ok" badge on a run without data

NO_DATA_RUNS = ("histograms_only", "nothing_logged")


@pytest.fixture(scope="module")
def no_data_env(tmp_path_factory):
    """A TensorBoard over a healthy run, a run with histograms and text but no scalar, and a run whose
    writer logged nothing."""
    _require_bundle()
    np = pytest.importorskip("numpy")
    pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    tmp = tmp_path_factory.mktemp("no_data")
    root = tmp / "logs"
    w = SummaryWriter(str(root / "healthy"), flush_secs=1)
    for step in range(50):
        w.add_scalar("train/loss", 2.0 / (1.0 + step / 10.0), step)
    w.close()
    w = SummaryWriter(str(root / "histograms_only"), flush_secs=1)
    rng = np.random.default_rng(3)
    for step in range(5):
        w.add_histogram("weights", rng.normal(size=100), step)
        w.add_text("notes", "step %d" % step, step)
    w.close()
    w = SummaryWriter(str(root / "nothing_logged"), flush_secs=1)
    w.flush()
    w.close()
    with run_tensorboard(str(root), str(tmp / "tensorboard.log"), ("healthy", *NO_DATA_RUNS)) as base:
        yield base


def test_a_run_without_scalar_points_has_no_ok_badge(page, no_data_env):
    page.goto(no_data_env + STANDALONE)
    healthy = page.get_by_test_id("run-diag-healthy")
    # the healthy run is diagnosed: ok (a button that opens its findings)
    expect(healthy).to_have_attribute("data-worst", re.compile("^(ok|info)$"), timeout=30000)
    for run in NO_DATA_RUNS:
        badge = page.get_by_test_id("run-diag-" + run)
        expect(badge).to_have_text("no data")
        expect(badge).to_have_attribute("data-worst", "none")
        expect(badge).to_have_attribute("data-nodata", "true")
        assert badge.evaluate("el => el.tagName") == "SPAN"
        assert "ok" not in badge.get_attribute("class").split()
    assert page.get_by_test_id("run-diag-healthy").get_attribute("data-nodata") is None
    # still so once the diagnostics list every run
    panel = page.get_by_test_id("diag-panel")
    expect(panel).to_be_visible()
    page.get_by_test_id("diag-toggle").click()
    expect(panel).to_have_attribute("data-state", "ready")
    for run in NO_DATA_RUNS:
        expect(page.get_by_test_id("run-diag-" + run)).to_have_text("no data")
    assert page.page_errors == []
