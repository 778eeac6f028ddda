"""The Evaluation panel in the browser (ROC, PR, score distributions, reliability, AUC over steps).

One TensorBoard for the module over a log directory written here with real writers: torch's SummaryWriter,
tb_plus.evaluation.log_evaluation for a tb_plus evaluation tag at three steps, and writer.add_pr_curve for a
pr_curves tag. The scores are seeded Gaussian logits through a sigmoid, rounded to 3 decimals: two scores share
an accumulator bucket exactly when they are equal (buckets are 2^-13 relative wide, far finer than 0.001), so
the AUC the server computes from its buckets must equal the exact Mann-Whitney AUC (ties counting 1/2).
"""

import json
import os
import urllib.parse
import urllib.request

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # conftest skips every test here with the reason
    expect = None

from .conftest import _require_bundle, run_tensorboard
from .test_tab import PLUGIN_FRAME
from .test_views import STANDALONE, wait_for

RUN = "model_a"
EVAL_TAG = "eval/ctr"
PR_TAG = "pr/val"
STEPS = (100, 200, 300)
SAMPLES = 2000
CARDS = ("eval-roc", "eval-pr", "eval-dist", "eval-calibration", "eval-over-steps")


def make_scores(rng, i):
    """(scores, labels) of evaluation i: positives' logits shifted up, more at each step."""
    import numpy as np

    labels = rng.random(SAMPLES) < 0.3
    logits = rng.normal(0.0, 1.0, SAMPLES) + labels * (0.8 + 0.4 * i)
    scores = np.clip(np.round(1.0 / (1.0 + np.exp(-logits)), 3), 0.001, 0.999)
    return scores, labels


def exact_auc(scores, labels):
    """P(score of a positive > score of a negative) + 1/2 P(equal), over every pair."""
    pos = scores[labels]
    neg = scores[~labels]
    greater = (pos[:, None] > neg[None, :]).sum()
    equal = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * equal) / (len(pos) * len(neg)))


@pytest.fixture(scope="module")
def eval_env(tmp_path_factory):
    """(base URL, {step: (scores, labels)}): a TensorBoard over the evaluation log directory."""
    _require_bundle()
    np = pytest.importorskip("numpy")
    pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    from tb_plus.evaluation import log_evaluation

    tmp = tmp_path_factory.mktemp("evaluation")
    root = str(tmp / "logs")
    rng = np.random.default_rng(20240607)
    data = {}
    writer = SummaryWriter(os.path.join(root, RUN), flush_secs=1)
    for i, step in enumerate(STEPS):
        scores, labels = make_scores(rng, i)
        data[step] = (scores, labels)
        log_evaluation(writer, EVAL_TAG, step, scores, labels)
        writer.add_pr_curve(PR_TAG, labels, scores, step)
    writer.close()
    with run_tensorboard(root, str(tmp / "tensorboard.log"), (RUN,)) as base:
        yield base, data


def server_eval(base, tag, step=None):
    params = {"run": RUN, "tag": tag}
    if step is not None:
        params["step"] = step
    url = base + "/data/plugin/tb_plus/evaluation?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode("utf-8"))


def server_series(base, tag):
    url = base + "/data/plugin/tb_plus/series?" + urllib.parse.urlencode({"run": RUN, "tag": tag})
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode("utf-8"))


def open_panel(scope):
    """Waits for the panel (shown once the directory's evaluations are listed) and opens it."""
    panel = scope.get_by_test_id("eval-panel")
    expect(panel).to_be_visible()
    if panel.get_attribute("data-open") != "true":
        scope.get_by_test_id("eval-toggle").click()
    expect(panel).to_have_attribute("data-open", "true")
    return panel


def wait_shown(page, scope, tag, step):
    """Waits until the panel shows (RUN, tag) at `step`, drawn."""
    panel = scope.get_by_test_id("eval-panel")
    wait_for(
        lambda: (panel.get_attribute("data-tag"), panel.get_attribute("data-step"), panel.get_attribute("data-state"))
        == (tag, str(step), "ready"),
        page,
        what="%s at step %s drawn" % (tag, step),
    )
    return panel


def card_points(scope, testid):
    card = scope.get_by_test_id(testid)
    assert card.get_attribute("data-state") == "ready", (testid, card.get_attribute("data-state"))
    return int(card.get_attribute("data-points"))


def plot_data(scope, testid):
    """The uPlot data columns of a card's chart (null for gaps)."""
    return scope.get_by_test_id(testid).locator(".tbp-eval-plot").evaluate(
        "el => el.uplot.data.map(col => Array.from(col, v => (v == null ? null : v)))"
    )


def assert_auc_shown(scope, auc):
    shown = scope.get_by_test_id("eval-auc")
    text = shown.inner_text().strip()
    assert len(text.split(".")[1]) == 6, text
    assert abs(float(text) - auc) <= 5e-7 + 1e-12, (text, auc)
    assert float(shown.get_attribute("data-value")) == auc


def test_evaluation_panel_draws_curves_and_follows_the_step(page, eval_env):
    base, data = eval_env
    page.goto(base + "/#tb_plus")
    frame = page.frame_locator(PLUGIN_FRAME)
    frame.get_by_test_id("run-" + RUN).wait_for()
    panel = open_panel(frame)

    # both evaluations are listed, the tb_plus one and the pr_curves one
    select = frame.get_by_test_id("eval-select")
    options = select.locator("option")
    wait_for(lambda: options.count() == 2, page, what="two evaluations listed")
    listed = options.evaluate_all("els => els.map(e => [e.dataset.run, e.dataset.tag, e.dataset.kind])")
    assert listed == [[RUN, EVAL_TAG, "tb_plus_eval"], [RUN, PR_TAG, "pr_curves"]]

    # eval/ctr at its last step: four curves drawn, the AUC as the server computes it, and exact
    select.select_option(label="%s · %s" % (RUN, EVAL_TAG))
    last = STEPS[-1]
    wait_shown(page, frame, EVAL_TAG, last)
    expect(frame.get_by_test_id("eval-step")).to_have_value(str(last))
    server = server_eval(base, EVAL_TAG)
    assert server["step"] == last
    assert_auc_shown(frame, server["auc"])
    assert abs(server["auc"] - exact_auc(*data[last])) <= 1e-6
    assert card_points(frame, "eval-roc") == len(server["roc"]["fpr"]) > 10
    assert 10 < card_points(frame, "eval-pr") <= len(server["pr"]["recall"])
    assert card_points(frame, "eval-dist") == len(server["distribution"]["negatives"]) == 50
    nonempty = sum(1 for c in server["calibration"]["count"] if c > 0)
    assert card_points(frame, "eval-calibration") == nonempty > 0
    for testid in CARDS:
        expect(frame.get_by_test_id(testid)).to_be_visible()
    roc = plot_data(frame, "eval-roc")
    assert len(roc[0]) == len(server["roc"]["fpr"])
    assert roc[0][0] == 0.0 and roc[0][-1] == 1.0 and roc[1][-1] == 1.0
    expect(frame.get_by_test_id("eval-roc-title")).to_contain_text("AUC %.6f" % server["auc"])
    expect(frame.get_by_test_id("eval-pr-title")).to_contain_text("AP %.6f" % server["ap"])
    expect(frame.get_by_test_id("eval-calibration-title")).to_contain_text("ECE %.4f" % server["calibration"]["ece"])

    # AUC over steps: the store's series, with its volatility as a band
    assert card_points(frame, "eval-over-steps") == len(STEPS)
    over = plot_data(frame, "eval-over-steps")
    aucs = server_series(base, EVAL_TAG + "/auc_roc")
    vols = server_series(base, EVAL_TAG + "/auc_roc_volatility")
    assert over[0] == list(STEPS)
    assert over[1] == aucs["value"]
    assert over[2][0] is None and over[3][0] is None  # no volatility at the first evaluation
    for i in (1, 2):
        assert over[2][i] == pytest.approx(aucs["value"][i] - vols["value"][i], abs=1e-12)
        assert over[3][i] == pytest.approx(aucs["value"][i] + vols["value"][i], abs=1e-12)

    # another step: the AUC shown is that step's
    frame.get_by_test_id("eval-step").select_option(str(STEPS[0]))
    wait_shown(page, frame, EVAL_TAG, STEPS[0])
    first = server_eval(base, EVAL_TAG, STEPS[0])
    assert first["auc"] != server["auc"]
    assert_auc_shown(frame, first["auc"])
    assert abs(first["auc"] - exact_auc(*data[STEPS[0]])) <= 1e-6
    assert "p.tb_plus.estep=%d" % STEPS[0] in page.url  # the step is part of the view's URL
    frame.get_by_test_id("eval-step-next").click()
    wait_shown(page, frame, EVAL_TAG, STEPS[1])
    assert_auc_shown(frame, server_eval(base, EVAL_TAG, STEPS[1])["auc"])

    # log y for the score distributions
    frame.get_by_test_id("eval-logy").check()
    dist = frame.get_by_test_id("eval-dist")
    expect(dist).to_have_attribute("data-logy", "true")
    assert dist.locator(".tbp-eval-plot").evaluate("el => el.uplot.scales.y.distr") == 3
    assert "p.tb_plus.elogy=1" in page.url

    # the pr_curves evaluation: its ROC from the TP/FP counts, no distribution or calibration
    select.select_option(label="%s · %s (pr_curves)" % (RUN, PR_TAG))
    wait_shown(page, frame, PR_TAG, last)
    pr = server_eval(base, PR_TAG)
    assert_auc_shown(frame, pr["auc"])
    assert card_points(frame, "eval-roc") == len(pr["roc"]["fpr"]) > 10
    assert card_points(frame, "eval-pr") > 10
    expect(frame.get_by_test_id("eval-dist")).to_be_hidden()
    expect(frame.get_by_test_id("eval-calibration")).to_be_hidden()
    assert card_points(frame, "eval-over-steps") == len(STEPS)
    assert plot_data(frame, "eval-over-steps")[1] == server_series(base, PR_TAG + "/roc_auc")["value"]
    assert abs(pr["auc"] - exact_auc(*data[last])) < 0.01  # trapezoid over 127 thresholds: close, not exact

    # the rest of the tab still works: the derived series are ordinary scalar tags
    frame.get_by_test_id("tag-tree").get_by_test_id("group-eval").wait_for()
    expect(panel).to_have_attribute("data-open", "true")
    assert page.page_errors == []


def test_evaluation_choice_is_restored_from_the_url(page, eval_env):
    base, data = eval_env
    params = [("eval", "1"), ("erun", RUN), ("etag", EVAL_TAG), ("estep", str(STEPS[1])), ("elogy", "1")]
    page.goto(base + STANDALONE + "?" + urllib.parse.urlencode(params))
    panel = page.get_by_test_id("eval-panel")
    expect(panel).to_have_attribute("data-open", "true")
    wait_shown(page, page, EVAL_TAG, STEPS[1])
    expect(page.get_by_test_id("eval-step")).to_have_value(str(STEPS[1]))
    expect(page.get_by_test_id("eval-logy")).to_be_checked()
    assert_auc_shown(page, server_eval(base, EVAL_TAG, STEPS[1])["auc"])
    for testid in CARDS:
        assert card_points(page, testid) > 0, testid

    # closing the panel is remembered too; the list stays, nothing is drawn anew
    page.get_by_test_id("eval-toggle").click()
    expect(panel).to_have_attribute("data-open", "false")
    expect(page.get_by_test_id("eval-body")).to_be_hidden()
    wait_for(lambda: "eval=1" not in page.url, page, what="eval=1 gone from the URL")
    assert "estep=%d" % STEPS[1] in page.url
    assert page.page_errors == []


def test_no_evaluation_panel_without_evaluations(page, tensorboard_url):
    """A log directory without evaluation tags shows no panel."""
    with page.expect_response(lambda r: "/data/plugin/tb_plus/evaluation" in r.url) as answer:
        page.goto(tensorboard_url + STANDALONE)
    assert answer.value.json() == {"tags": {"run": [], "tag": [], "kind": []}}
    page.get_by_test_id("run-run_a").wait_for()
    page.get_by_test_id("tag-tree").get_by_test_id("tag-train/loss").wait_for()
    expect(page.get_by_test_id("eval-panel")).to_be_hidden()
    assert page.page_errors == []
