"""The Layers panel in the browser, the tracer's per-layer statistics as a heatmap.

One TensorBoard for the module over a log directory written here by the real tracer (tb_plus.trace.Tracer)
around a small torch MLP trained for 40 SGD steps. The panel must find the run's traced families, draw one
statistic as a layers x steps matrix, redraw when the statistic changes, and show in its hover tooltip the
exact value the server answers for the cell under the pointer.
"""

import json
import math
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

RUN = "mlp"
STEPS = 40


@pytest.fixture(scope="module")
def trace_env(tmp_path_factory):
    """(base URL, parameter names): a TensorBoard over one traced run."""
    _require_bundle()
    torch = pytest.importorskip("torch")
    from tb_plus.trace import Tracer

    tmp = tmp_path_factory.mktemp("trace")
    root = tmp / "logs"
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    tracer = Tracer(model, opt, logdir=str(root / RUN), every=1, histograms_every=0)
    x = torch.randn(64, 4)
    y = x.sum(1, keepdim=True)
    for _ in range(STEPS):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    tracer.close()
    params = [name for name, _ in model.named_parameters()]
    with run_tensorboard(str(root), str(tmp / "tensorboard.log"), (RUN,)) as base:
        yield base, params


def server_trace(base, **params):
    url = base + "/data/plugin/tb_plus/trace?" + urllib.parse.urlencode(dict(run=RUN, **params))
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode("utf-8"))


def wire(v):
    """A wire number as a float ("NaN", "Infinity" included)."""
    return float(v)


def wait_ready(page, panel, stat):
    wait_for(
        lambda: (panel.get_attribute("data-stat"), panel.get_attribute("data-state")) == (stat, "ready"),
        page,
        what="%s drawn" % stat,
    )


def hover_cell(page, scope, row, col):
    """Moves the pointer to the centre of a heatmap cell; returns the tooltip's attributes."""
    canvas = scope.get_by_test_id("trace-canvas")
    box = canvas.bounding_box()
    # the cell's place, from what the controller drew: labels on the left, rows of equal height
    geo = canvas.evaluate(
        """c => {
          const p = c.closest('[data-testid="trace-panel"]');
          return {w: Number(p.dataset.width), layers: Number(p.dataset.layers), steps: Number(p.dataset.steps),
                  h: c.getBoundingClientRect().height, cw: c.getBoundingClientRect().width};
        }"""
    )
    label_w = geo["cw"] - geo["w"]
    row_h = (geo["h"] - 16) / geo["layers"]
    x = label_w + (col + 0.5) * geo["w"] / geo["steps"]
    y = (row + 0.5) * row_h
    page.mouse.move(box["x"] + x, box["y"] + y)
    tip = scope.get_by_test_id("trace-tip")
    expect(tip).to_be_visible()
    return {k: tip.get_attribute("data-" + k) for k in ("layer", "step", "value", "row", "col")}


def test_layers_panel_draws_the_heatmap(page, trace_env):
    base, params = trace_env
    families = server_trace(base)["families"]
    assert "params" in families["family"] and "activations" in families["family"]
    par = families["family"].index("params")

    page.goto(base + "/#tb_plus")
    frame = page.frame_locator(PLUGIN_FRAME)
    frame.get_by_test_id("run-" + RUN).wait_for()
    panel = frame.get_by_test_id("trace-panel")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-open", "false")
    frame.get_by_test_id("trace-toggle").click()
    expect(panel).to_have_attribute("data-open", "true")

    # params by default, at grad_norm: one row per parameter tensor, one column per traced step
    wait_ready(page, panel, "grad_norm")
    assert frame.get_by_test_id("trace-run").input_value() == RUN
    assert panel.get_attribute("data-tag") == families["tag"][par]
    assert panel.get_attribute("data-layers") == str(len(params))
    assert panel.get_attribute("data-steps") == str(STEPS)
    stats = frame.get_by_test_id("trace-stat").locator("option").evaluate_all("els => els.map(e => e.value)")
    assert stats == families["stats"][par]

    # another statistic redraws
    frame.get_by_test_id("trace-stat").select_option("update_ratio")
    wait_ready(page, panel, "update_ratio")
    assert panel.get_attribute("data-layers") == str(len(params))
    assert panel.get_attribute("data-steps") == str(STEPS)

    # the tooltip gives the server's value for the cell under the pointer
    width = int(panel.get_attribute("data-width"))
    answer = server_trace(base, tag=families["tag"][par], stat="update_ratio", width=width)
    assert answer["layers"] == params and len(answer["steps"]) == STEPS
    for row, col in ((0, 0), (len(params) - 1, STEPS - 1), (2, STEPS // 2)):
        tip = hover_cell(page, frame, row, col)
        assert (int(tip["row"]), int(tip["col"])) == (row, col), tip
        assert tip["layer"] == answer["layers"][row]
        assert int(tip["step"]) == answer["steps"][col]
        want = wire(answer["values"][row][col])
        got = float(tip["value"])
        assert got == want or (math.isnan(got) and math.isnan(want)), (tip, want)
    assert frame.get_by_test_id("trace-legend-min").inner_text().strip()
    assert frame.get_by_test_id("trace-legend-max").inner_text().strip()

    # the activations family lists its statistics, and the URL keeps the choice
    act = families["family"].index("activations")
    frame.get_by_test_id("trace-family").select_option(families["tag"][act])
    wait_for(lambda: panel.get_attribute("data-tag") == families["tag"][act], page, what="activations chosen")
    act_stats = frame.get_by_test_id("trace-stat").locator("option").evaluate_all("els => els.map(e => e.value)")
    assert act_stats == families["stats"][act]
    default = "dead_fraction" if "dead_fraction" in act_stats else act_stats[0]
    wait_ready(page, panel, default)
    assert panel.get_attribute("data-layers") == str(len(families["layers"][act]))
    assert panel.get_attribute("data-steps") == str(STEPS)
    assert page.page_errors == []


def test_layers_panel_state_in_the_url(page, trace_env):
    base, params = trace_env
    families = server_trace(base)["families"]
    tag = families["tag"][families["family"].index("params")]
    query = urllib.parse.urlencode({"trace": "1", "trun": RUN, "ttag": tag, "tstat": "weight_norm"})
    page.goto(base + "/data/plugin/tb_plus/standalone?" + query)
    panel = page.get_by_test_id("trace-panel")
    expect(panel).to_have_attribute("data-open", "true")
    wait_ready(page, panel, "weight_norm")
    assert page.get_by_test_id("trace-stat").input_value() == "weight_norm"
    assert panel.get_attribute("data-layers") == str(len(params))
    page.get_by_test_id("trace-stat").select_option("grad_norm")
    wait_ready(page, panel, "grad_norm")
    wait_for(lambda: "tstat=grad_norm" in page.url, page, what="tstat in the URL")
    page.get_by_test_id("trace-toggle").click()
    expect(panel).to_have_attribute("data-open", "false")
    wait_for(lambda: "trace=1" not in page.url, page, what="trace closed in the URL")
    assert "tstat=grad_norm" in page.url
    assert page.page_errors == []


def test_no_layers_panel_without_tracer_data(page, tensorboard_url):
    """A run without tracer data shows no panel."""
    with page.expect_response(lambda r: "/data/plugin/tb_plus/trace?" in r.url) as answer:
        page.goto(tensorboard_url + "/data/plugin/tb_plus/standalone")
    assert answer.value.json()["families"]["tag"] == []
    page.get_by_test_id("run-run_a").wait_for()
    page.get_by_test_id("tag-tree").get_by_test_id("tag-train/loss").wait_for()
    expect(page.get_by_test_id("trace-panel")).to_be_hidden()
    assert page.page_errors == []
