"""Aggregation charts in the browser, against a real TensorBoard over logs written here: runs of 300, 800
and 1,500 steps (the aggregate spans 0..1,499; the legend says how many runs are left), two tags (one
aggregate per tag), and logs in the Keras layout (hparams in <run>/, epoch scalars in <run>/train and
<run>/validation: grouping by an hparam finds the sub-runs).

The aggregation card carries `data-agg-ends` (JSON: per group its key, size and [x, runs stopping there]) and a
marker (data-testid "agg-run-end") where runs stop; each legend row of an aggregate carries `data-count` ("k/size"
at the hovered point).
"""

import json
import os

import numpy as np
import pytest

from tests.query.keras_logs import write_keras_layout

from .conftest import run_tensorboard
from .test_views import chart_ready, read_chart, wait_for

LENGTHS = {"len300": 300, "len800": 800, "len1500": 1500}
KERAS = {"lr=0.1,seed=1": {"lr": 0.1, "seed": 1}, "lr=0.1,seed=2": {"lr": 0.1, "seed": 2},
         "lr=0.01,seed=1": {"lr": 0.01, "seed": 1}}
KERAS_RUNS = [f"{r}{s}" for r in KERAS for s in ("", "/train", "/validation")]


def _write(root):
    from tensorboardX import SummaryWriter

    for i, (run, n) in enumerate(LENGTHS.items()):
        w = SummaryWriter(os.path.join(root, run), flush_secs=1)
        for s in range(n):
            w.add_scalar("loss", 1.0 + i, s)  # 1, 2, 3: the mean is 2 with all three, 2.5 with two, 3 with one
            w.add_scalar("acc", 0.5, s)
        w.close()
    write_keras_layout(os.path.join(root, "keras"), KERAS, epochs=6)


@pytest.fixture(scope="module")
def agg_url(tmp_path_factory):
    from .conftest import _require_bundle

    _require_bundle()
    root = str(tmp_path_factory.mktemp("agg_logdir"))
    _write(root)
    runs = list(LENGTHS) + [f"keras/{r}" for r in KERAS_RUNS]
    with run_tensorboard(root, str(tmp_path_factory.mktemp("agg_tb") / "tensorboard.log"), runs) as base:
        yield base


def agg_page(page, base, spec, runs):
    params = [("run", r) for r in runs] + [("agg", json.dumps(spec))]
    return standalone_any(page, base, params, runs[0])


def standalone_any(page, base, params, first_run):
    import urllib.parse

    page.goto(base + "/data/plugin/tb_plus/standalone?" + urllib.parse.urlencode(params))
    page.get_by_test_id("run-" + first_run).wait_for()
    return page


def hover(page, p, x):
    box = p.locator(".u-over").bounding_box()
    px = p.evaluate("(el, x) => el.uplot.valToPos(x, 'x')", x)
    page.mouse.move(box["x"] + px, box["y"] + box["height"] / 2)


def test_runs_of_300_800_1500_steps_span_0_to_1499_with_counts(page, agg_url):
    spec = {"id": "len", "tags": ["loss"], "groupBy": "none", "stat": "mean", "band": "minmax"}
    agg_page(page, agg_url, spec, list(LENGTHS))
    p = chart_ready(page, "agg-len")
    data = read_chart(p)
    grid = np.array(data["x"])
    assert grid[0] == 0 and grid[-1] == 1499, (grid[0], grid[-1])
    line = next(s for s in data["series"] if s["role"] == "line")
    assert line["key"] == "all (n=3)"
    want = np.where(grid <= 299, 2.0, np.where(grid <= 799, 2.5, 3.0))
    np.testing.assert_allclose(line["y"], want, rtol=1e-6)
    card = page.get_by_test_id("chart-agg-len")
    ends = json.loads(card.get_attribute("data-agg-ends"))
    assert ends == [{"key": "all", "size": 3, "ends": [[299, 1], [799, 1]]}]
    status = card.get_by_test_id("chart-status").inner_text()
    assert "runs end at 299, 799" in status, status
    # a marker where runs stop, saying how many are left after it
    marks = card.get_by_test_id("agg-run-end")
    assert marks.count() == 2
    assert [(marks.nth(i).get_attribute("data-x"), marks.nth(i).inner_text()) for i in range(2)] == [
        ("299", "n=2/3 after"), ("799", "n=1/3 after")]
    row = p.get_by_test_id("chart-legend").locator('[data-run="all (n=3)"]')
    for x, count in ((100, "3/3"), (500, "2/3"), (1200, "1/3")):
        hover(page, p, x)
        wait_for(lambda: row.get_attribute("data-count") == count, page, what=f"count {count} at {x}")
        text = row.inner_text()
        assert (f"n={count}" in text) == (count != "3/3"), text
    assert page.page_errors == []


def test_two_tags_give_two_lines(page, agg_url):
    spec = {"id": "two", "tags": ["loss", "acc"], "groupBy": "none", "stat": "mean", "band": "none"}
    agg_page(page, agg_url, spec, list(LENGTHS))
    p = chart_ready(page, "agg-two")
    lines = {s["key"]: s["y"] for s in read_chart(p)["series"] if s["role"] == "line"}
    assert set(lines) == {"acc (n=3)", "loss (n=3)"}
    np.testing.assert_allclose(lines["acc (n=3)"], 0.5)
    assert max(lines["loss (n=3)"]) == pytest.approx(3.0) and min(lines["loss (n=3)"]) == pytest.approx(2.0)
    assert page.page_errors == []


def test_keras_layout_hparams_reach_the_sub_runs(page, agg_url):
    spec = {"id": "hp", "tags": ["epoch_loss"], "groupBy": "hparam:lr", "stat": "mean", "band": "minmax"}
    agg_page(page, agg_url, spec, [f"keras/{r}" for r in KERAS_RUNS])
    p = chart_ready(page, "agg-hp")
    keys = [s["key"] for s in read_chart(p)["series"] if s["role"] == "line"]
    assert keys == ["0.01 (n=2)", "0.1 (n=4)"], keys  # train + validation of each run with that lr
    status = page.get_by_test_id("chart-agg-hp").get_by_test_id("chart-status").inner_text()
    assert status.startswith("2 groups · 6 series"), status
    assert page.page_errors == []


def test_an_empty_aggregate_says_why(page, agg_url):
    spec = {"id": "none", "tags": ["loss"], "groupBy": "hparam:lr", "stat": "mean", "band": "minmax"}
    agg_page(page, agg_url, spec, list(LENGTHS))
    chart_ready(page, "agg-none")
    status = page.get_by_test_id("chart-agg-none").get_by_test_id("chart-status").inner_text()
    assert status == "none of the runs with loss has the hyperparameter lr", status
    assert page.page_errors == []


def test_a_tag_chart_without_data_says_why(page, agg_url):
    # epoch_loss exists only in the Keras sub-runs; none of the three selected runs has it
    standalone_any(page, agg_url, [("run", r) for r in LENGTHS] + [("tag", "epoch_loss")], "len300")
    chart_ready(page, "epoch_loss")
    status = page.get_by_test_id("chart-epoch_loss").get_by_test_id("chart-status").inner_text()
    assert status == "none of the 3 selected runs has tag epoch_loss", status
    assert page.page_errors == []
