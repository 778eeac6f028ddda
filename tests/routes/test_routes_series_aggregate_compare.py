"""The chart routes through TensorBoard's own WSGI app: /series with x from another tag, log x and
smoothing, /aggregate, /compare, /hparams (the sweep of tests/routes/conftest.py: lr x seed runs with
an epoch tag and add_hparams)."""

import math
from urllib.parse import quote

import numpy as np
import pytest

from tests.routes.conftest import EPOCH_STEPS, NAN_STEP, SWEEP, get_json

RUN = "lr=0.1,seed=1"


def q(s):
    return quote(s, safe="")


def num(col):
    return np.array([{"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, v) for v in col], float)


def full(client, run, tag="train/loss"):
    return get_json(client, f"/series?run={q(run)}&tag={q(tag)}")


def test_series_without_new_parameters_is_unchanged_plus_xs(client):
    body = get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss&width=100")
    assert set(body) == {"run", "tag", "x", "total", "in_range", "downsampled", "step", "wall_time", "value"}
    assert "xs" not in body  # with x=step the x values are the step column
    rel = get_json(client, "/series?run=lr%3D0.1&tag=eval%2Floss&x=relative")
    np.testing.assert_allclose(rel["xs"], np.array(rel["wall_time"]) - rel["wall_time"][0])


def test_x_from_epoch_tag(client):
    body = get_json(client, f"/series?run={q(RUN)}&tag=train%2Floss&x=tag%3Aepoch")
    last_epoch_step = (SWEEP[RUN] - 1) // EPOCH_STEPS * EPOCH_STEPS
    assert body["x"] == "tag:epoch" and body["total"] == SWEEP[RUN]
    assert body["step"] == list(range(last_epoch_step + 1))  # points after the last epoch point are dropped
    np.testing.assert_allclose(body["xs"], np.array(body["step"]) / EPOCH_STEPS)
    assert body["xs"][250] == 2.5 and body["xs"][300] == 3.0
    ranged = get_json(client, f"/series?run={q(RUN)}&tag=train%2Floss&x=tag%3Aepoch&xmin=2&xmax=3")
    assert ranged["step"] == list(range(200, 301)) and ranged["in_range"] == 101
    ds = get_json(client, f"/series?run={q(RUN)}&tag=train%2Floss&x=tag%3Aepoch&width=10")
    assert ds["downsampled"] is True and ds["step"][-1] == last_epoch_step


def test_xlog_drops_non_positive_x(client):
    body = get_json(client, f"/series?run={q(RUN)}&tag=train%2Floss&xlog=true")
    assert body["step"][0] == 1 and body["in_range"] == SWEEP[RUN] - 1


def tensorboard_ema(v, w):
    last, num_, out = 0.0, 0, []
    for val in v:
        if not math.isfinite(val):
            out.append(out[-1] if out else math.nan)
            continue
        last = last * w + (1 - w) * val
        num_ += 1
        out.append(last / (1 - w**num_))
    return np.array(out)


def test_series_ema_equals_tensorboard_loop_and_survives_downsampling(client):
    raw = full(client, "lr=0.1")
    v = num(raw["value"])
    body = get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss&smooth=ema&weight=0.9")
    sm = num(body["smoothed"])
    # evenly spaced steps: TensorBoard's debiased EMA; its NaN point repeats the previous smoothed value
    np.testing.assert_allclose(sm, tensorboard_ema(v.tolist(), 0.9), rtol=1e-9)
    assert sm[NAN_STEP] == sm[NAN_STEP - 1]
    ds = get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss&smooth=ema&weight=0.9&width=50&xmin=500")
    assert ds["downsampled"] is True
    np.testing.assert_allclose(num(ds["smoothed"]), sm[ds["step"]])  # computed before the range and downsampling


def test_series_median(client):
    v = num(full(client, "lr=0.1")["value"])
    body = get_json(client, "/series?run=lr%3D0.1&tag=train%2Floss&smooth=median&window=5")
    want = [np.nanmedian([a for a in v[max(0, i - 2) : i + 3] if math.isfinite(a)]) for i in range(len(v))]
    np.testing.assert_allclose(num(body["smoothed"]), want)


def seed_matrix(client, runs, grid, tag="train/loss"):
    rows = []
    for r in runs:
        s = full(client, r, tag)
        rows.append(np.interp(grid, s["step"], num(s["value"])))
    return np.array(rows)


def test_aggregate_seeds_by_hparam(client):
    body = get_json(client, "/aggregate?tag=train%2Floss&group_by=hparam%3Alr&band=std&points=50")
    assert body["x"] == "step"
    assert [g["key"] for g in body["groups"]] == ["0.01", "0.1"]
    for g in body["groups"]:
        runs = sorted(r for r in SWEEP if r.startswith(f"lr={g['key']},"))
        assert g["size"] == len(runs) and g["series"] == [[r, "train/loss"] for r in runs]
        last = SWEEP[runs[0]] - 1
        xs = np.array(g["xs"])
        assert len(xs) == 50 and xs[0] == 0 and xs[-1] == last
        Y = seed_matrix(client, runs, xs)
        np.testing.assert_allclose(g["center"], Y.mean(0), rtol=1e-12)
        np.testing.assert_allclose(g["lo"], Y.mean(0) - Y.std(0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(g["hi"], Y.mean(0) + Y.std(0), rtol=1e-9, atol=1e-12)
        assert g["count"] == [len(runs)] * 50


def test_aggregate_union_range_median_ci95_and_run_regex(client):
    runs = ["lr=0.1,seed=1", "lr=0.01,seed=1"]
    body = get_json(client, f"/aggregate?run={q(runs[0])}&run={q(runs[1])}&tag=train%2Floss&stat=median&band=ci95"
                            "&points=11&xmin=550&xmax=599")
    (g,) = body["groups"]
    assert g["key"] == "all" and g["size"] == 2 and g["tag"] is None
    np.testing.assert_allclose(g["xs"], np.linspace(550, 599, 11))  # the union range, clipped by xmin and xmax
    assert g["count"] == [2] * 11
    Y = seed_matrix(client, runs, np.array(g["xs"]))
    half = 1.96 * Y.std(0) / np.sqrt(2)
    np.testing.assert_allclose(g["center"], np.median(Y, 0))
    np.testing.assert_allclose(g["lo"], Y.mean(0) - half)
    np.testing.assert_allclose(g["hi"], Y.mean(0) + half)
    rx = get_json(client, "/aggregate?tag=train%2Floss&group_by=run_regex%3Aseed%3D%28%5Cd%29&band=minmax&points=3")
    assert [g["key"] for g in rx["groups"]] == ["1", "2", "3"]
    assert [g["size"] for g in rx["groups"]] == [2, 2, 1]
    g1 = rx["groups"][0]
    # seeds of different lengths (600 and 1,000 steps): the union range [0, 999]; past 599 one series is left
    assert g1["xs"] == [0.0, 499.5, 999.0] and g1["count"] == [2, 2, 1]
    assert g1["ranges"] == [[0.0, 599.0], [0.0, 999.0]]  # per series of g1["series"] (the store's run order)
    assert [r for r, _ in g1["series"]] == ["lr=0.01,seed=1", "lr=0.1,seed=1"]
    Y = seed_matrix(client, ["lr=0.01,seed=1", "lr=0.1,seed=1"], np.array(g1["xs"][:2]))
    np.testing.assert_allclose(g1["lo"][:2], Y.min(0))
    np.testing.assert_allclose(g1["hi"][:2], Y.max(0))
    only = full(client, "lr=0.1,seed=1")["value"][999]
    assert g1["lo"][2] == g1["hi"][2] == g1["center"][2] == pytest.approx(only)


def test_aggregate_union_range_counts_what_covers(client):
    runs = ["lr=0.1,seed=1", "lr=0.01,seed=1"]
    url = f"/aggregate?run={q(runs[0])}&run={q(runs[1])}&tag=train%2Floss&points=5&xmin=700&xmax=999"
    (g,) = get_json(client, url)["groups"]
    # no common range inside [700, 999] (the lr=0.01 run ends at 599): the union range, one series
    assert g["xs"] == [700.0, 774.75, 849.5, 924.25, 999.0] and g["count"] == [1] * 5
    assert g["lo"] == g["hi"] == g["center"]


def test_aggregate_tag_glob_by_level_and_epoch_x(client):
    body = get_json(client, "/aggregate?tag=layers%2F*%2Fgrad_norm&group_by=tag_level%3A1&points=4"
                            "&x=tag%3Aepoch&band=minmax")
    assert [g["key"] for g in body["groups"]] == ["0", "1"]
    g0, g1 = body["groups"]
    assert g0["size"] == g1["size"] == len(SWEEP)
    # the union of the runs' epochs: 0..9 (the 600-step runs end at epoch 5, the 1,000-step ones at 9)
    assert g0["xs"] == [0.0, 3.0, 6.0, 9.0] and g0["count"] == [5, 5, 3, 3]
    seeds_ = sorted(int(r.split("=")[-1]) for r in SWEEP)
    long_seeds = sorted(int(r.split("=")[-1]) for r, n in SWEEP.items() if n == 1000)
    # layer k logs (k + 1) * seed
    np.testing.assert_allclose(g0["center"], [np.mean(seeds_)] * 2 + [np.mean(long_seeds)] * 2)
    np.testing.assert_allclose(g1["lo"], 2 * min(seeds_))
    np.testing.assert_allclose(g1["hi"], 2 * max(seeds_))


def test_aggregate_of_several_tags_makes_one_aggregate_per_tag(client):
    # two tags by hparam: never a mean of a loss and an epoch counter; groups by tag, then by key
    body = get_json(client, "/aggregate?tag=train%2Floss&tag=epoch&group_by=hparam%3Alr&points=5")
    assert [(g["key"], g["tag"]) for g in body["groups"]] == [
        ("epoch · 0.01", "epoch"), ("epoch · 0.1", "epoch"),
        ("train/loss · 0.01", "train/loss"), ("train/loss · 0.1", "train/loss")]
    for g in body["groups"]:
        assert {t for _, t in g["series"]} == {g["tag"]}
        assert {r for r, _ in g["series"]} == {r for r in SWEEP if r.startswith(f"lr={g['key'].split(' · ')[1]},")}
    # a glob matching two tags with group_by none: one line per tag, keyed by the tag
    body = get_json(client, "/aggregate?tag=layers%2F*%2Fgrad_norm&points=3")
    assert [(g["key"], g["tag"], g["size"]) for g in body["groups"]] == [
        ("layers/0/grad_norm", "layers/0/grad_norm", len(SWEEP)), ("layers/1/grad_norm", "layers/1/grad_norm", len(SWEEP))]
    np.testing.assert_allclose(body["groups"][1]["hi"], 2 * 3)  # layer 1 logs 2 * seed; seeds 1..3
    # run_regex: split too
    body = get_json(client, "/aggregate?tag=train%2Floss&tag=epoch&group_by=run_regex%3Alr%3D%28%5B%5E%2C%5D%2B%29"
                            "&points=3")
    assert [g["key"] for g in body["groups"]] == ["epoch · 0.01", "epoch · 0.1", "train/loss · 0.01", "train/loss · 0.1"]
    # tag_level keeps grouping tags by their level (the designed way to pool several tags)
    body = get_json(client, "/aggregate?tag=layers%2F*%2Fgrad_norm&group_by=tag_level%3A0&points=3")
    assert [(g["key"], g["tag"], g["size"]) for g in body["groups"]] == [("layers", None, 2 * len(SWEEP))]
    # one tag: one group "all", as before
    body = get_json(client, "/aggregate?tag=train%2Floss&points=3")
    assert [(g["key"], g["tag"]) for g in body["groups"]] == [("all", None)]


def test_compare_diff_and_ratio(client):
    a, b = "lr=0.1,seed=2", "lr=0.1,seed=1"
    body = get_json(client, f"/compare?a_run={q(a)}&a_tag=train%2Floss&b_run={q(b)}&b_tag=train%2Floss")
    assert body["op"] == "diff" and body["x"] == "step" and body["total"] == SWEEP[a]
    assert body["step"] == body["xs"] == list(range(SWEEP[a]))
    np.testing.assert_allclose(body["value"], 0.01, atol=1e-6)  # seed 2 is 0.01 above seed 1 (float32)
    c = "lr=0.01,seed=1"
    r = get_json(client, f"/compare?a_run={q(a)}&a_tag=train%2Floss&b_run={q(c)}&b_tag=train%2Floss&op=ratio"
                         "&width=20")
    assert r["total"] == SWEEP[c] and r["downsampled"] is True and r["step"][-1] == SWEEP[c] - 1
    sa, sc = full(client, a), full(client, c)
    want = num(sa["value"])[: SWEEP[c]] / np.interp(np.arange(SWEEP[c]), sc["step"], num(sc["value"]))
    np.testing.assert_allclose(r["value"], want[r["step"]])
    e = get_json(client, f"/compare?a_run={q(a)}&a_tag=train%2Floss&b_run={q(c)}&b_tag=train%2Floss&x=tag%3Aepoch"
                         "&xmin=1&xmax=2")
    assert e["step"] == list(range(100, 201)) and e["xs"][0] == 1.0


def test_hparams_columns_and_inheritance(client):
    body = get_json(client, "/hparams")
    runs = get_json(client, "/runs")["runs"]["name"]
    assert body["runs"] == runs
    assert set(body["hparams"]) == {"lr", "seed", "opt"}
    lr = dict(zip(body["runs"], body["hparams"]["lr"]))
    opt = dict(zip(body["runs"], body["hparams"]["opt"]))
    for r in SWEEP:
        subs = [s for s in runs if s.startswith(r + "/")]
        assert len(subs) == 1
        assert lr[r] == lr[subs[0]] == float(r.split(",")[0][3:])
        assert opt[r] == ("adam" if r.endswith("seed=1") else None)
    assert lr["lr=0.1"] is None  # a run without hparams


@pytest.mark.parametrize(
    "url, code, needle",
    [
        ("/series?run=lr%3D0.1&tag=train%2Floss&x=tag%3Aepoch", 404, "'epoch'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&x=tag%3A", 400, "'tag:'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&smooth=gauss", 400, "'gauss'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&smooth=ema&weight=1", 400, "'1'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&smooth=ema&weight=heavy", 400, "'heavy'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&smooth=median&window=4", 400, "'4'"),
        ("/series?run=lr%3D0.1&tag=train%2Floss&xlog=maybe", 400, "'maybe'"),
        ("/aggregate?run=lr%3D0.1", 400, "'tag'"),
        ("/aggregate?tag=nope%2F*", 404, "'nope/*'"),
        ("/aggregate?tag=train%2Floss&run=ghost", 404, "'ghost'"),
        ("/aggregate?tag=train%2Floss&group_by=by_seed", 400, "'by_seed'"),
        ("/aggregate?tag=train%2Floss&group_by=run_regex%3A%28", 400, "'('"),
        ("/aggregate?tag=train%2Floss&group_by=tag_level%3Atwo", 400, "'two'"),
        ("/aggregate?tag=train%2Floss&stat=mode", 400, "'mode'"),
        ("/aggregate?tag=train%2Floss&band=iqr", 400, "'iqr'"),
        ("/aggregate?tag=train%2Floss&points=1", 400, "1"),
        ("/aggregate?tag=train%2Floss&points=many", 400, "'many'"),
        ("/aggregate?tag=train%2Floss&x=tag%3Aepoch", 404, "'epoch'"),  # lr=0.1 has train/loss but no epoch
        ("/compare?a_run=lr%3D0.1&a_tag=train%2Floss&b_run=lr%3D0.1", 400, "'b_tag'"),
        ("/compare?a_run=lr%3D0.1&a_tag=train%2Floss&b_run=ghost&b_tag=train%2Floss", 404, "'ghost'"),
        ("/compare?a_run=lr%3D0.1&a_tag=train%2Floss&b_run=lr%3D0.1&b_tag=no%2Fsuch", 404, "'no/such'"),
        ("/compare?a_run=lr%3D0.1&a_tag=train%2Floss&b_run=lr%3D0.1&b_tag=train%2Floss&op=sum", 400, "'sum'"),
        ("/compare?a_run=lr%3D0.1&a_tag=train%2Floss&b_run=lr%3D0.1&b_tag=train%2Floss&width=0", 400, "width"),
    ],
)
def test_bad_requests_name_the_input(client, url, code, needle):
    assert needle in get_json(client, url, code)
