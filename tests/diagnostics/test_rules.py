"""Each diagnostic rule on synthetic series: it fires on the pattern it describes, at the right
onset, and stays quiet on a healthy series and on a short blip (its patience)."""

import math

import numpy as np
import pytest

from tb_plus.diagnostics import Config
from tb_plus.diagnostics.rules import RULES, _Ctx, _zigzag
from tb_plus.diagnostics.rundata import Layers, RunData, Sig, _cut_at_breakage
from tb_plus.diagnostics.signals import clean, condense, rolling_median, streak

RNG = np.random.default_rng(0)


def sig(values, tag="train/loss", steps=None, walls=None):
    values = np.asarray(values, float)
    steps = np.arange(len(values)) if steps is None else np.asarray(steps)
    walls = 1e9 + np.arange(len(values), dtype=float) if walls is None else np.asarray(walls, float)
    return Sig(tag, steps.astype(np.int64), values, walls)


def healthy_loss(n=500, start=2.3, end=0.1, noise=0.05, rng=None):
    """rng: a generator of the test's own (the module's RNG feeds the older tests their data)."""
    t = np.arange(n)
    v = end + (start - end) * np.exp(-t / (n / 6))
    return v * (1 + noise * (RNG if rng is None else rng).standard_normal(n))


def layers(stat, mats, names=None, steps=None):
    mats = np.asarray(mats, float)  # [steps, layers]
    n, k = mats.shape
    names = names or [f"fc{i}.weight" for i in range(k)]
    steps = np.arange(n) if steps is None else np.asarray(steps)
    return Layers(stat, names, [f"trace/{stat}/{x}" for x in names], [steps] * k, [mats[:, i] for i in range(k)])


def run(rule, rd, cfg=None):
    return RULES[rule].fn(_Ctx(rd, cfg or Config(), rule))


def rd_with(**kw):
    rd = RunData("r")
    for k, v in kw.items():
        setattr(rd, k, v)
    return rd


# ------------------------------------------------------------------ helpers

def test_clean_keeps_the_last_point_of_a_step_and_sorts():
    s, v, w = clean([0, 1, 2, 1, 2, 3], [10, 11, 12, 21, 22, 23], [0, 1, 2, 3, 4, 5])
    assert s.tolist() == [0, 1, 2, 3] and v.tolist() == [10, 21, 22, 23] and w.tolist() == [0, 3, 4, 5]


def test_condense_means_bins_and_keeps_short_series():
    x, v = condense(np.arange(10), np.arange(10.0), max_points=20)
    assert v.tolist() == list(range(10))
    x, v = condense(np.arange(10), np.array([0, 1, np.nan, 3, 4, 5, np.nan, np.nan, 8, 9.0]), max_points=5)
    assert x.tolist() == [0.5, 2.5, 4.5, 6.5, 8.5]
    assert v[0] == 0.5 and v[1] == 3 and v[2] == 4.5 and math.isnan(v[3]) and v[4] == 8.5


def test_rolling_median_ignores_a_spike():
    v = np.ones(21)
    v[10] = 100
    assert rolling_median(v, 5).tolist() == [1.0] * 21


def test_streak_needs_patience_or_the_end():
    m = np.array([0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1], bool)
    assert streak(m, 4) == 4
    assert streak(m, 5) == 10  # the last stretch reaches the end
    assert streak(m, 5, at_end_ok=False) is None


def test_zigzag_counts_only_large_swings():
    small = 1 + 0.1 * np.sin(np.arange(200) / 5)
    assert _zigzag(small, 0.5) == []
    big = 2 + 1.5 * np.sign(np.sin(np.arange(200) / 5))
    assert len(_zigzag(big, 0.5)) >= 5


# ------------------------------------------------------------------ loss rules

def test_nonfinite_loss_first_step():
    v = healthy_loss(300)
    v[137] = np.nan
    v[200:] = np.inf
    (f,) = run("nonfinite_loss", rd_with(losses=[sig(v)]))
    assert f.severity == "error" and f.step == 137 and f.evidence["nonfinite_points"] == 101
    assert run("nonfinite_loss", rd_with(losses=[sig(healthy_loss(300))])) == []


def test_divergence_onset_and_patience():
    n = 600
    v = healthy_loss(n, noise=0.02)
    v[400:] = v[400] * np.exp((np.arange(200)) / 40)  # blows up from step 400
    (f,) = run("divergence", rd_with(losses=[sig(v)]))
    assert f.severity == "error" and 380 <= f.step <= 430, f.step
    assert f.evidence["peak_value"] > 10 * f.evidence["best_value"]
    blip = healthy_loss(n, noise=0.02)
    blip[300:305] = 5.0  # a 5-point spike is not a divergence
    assert run("divergence", rd_with(losses=[sig(blip)])) == []
    assert run("divergence", rd_with(losses=[sig(healthy_loss(n))])) == []


def test_divergence_the_run_recovered_from_is_a_warning():
    n = 800
    v = healthy_loss(n, noise=0.02, rng=np.random.default_rng(21))
    v[300:360] = 5.0  # a blow-up of 60 steps, then back to where it was
    (f,) = run("divergence", rd_with(losses=[sig(v)]))
    assert f.severity == "warning" and f.evidence["recovered"] == 1 and "came back" in f.message
    assert 355 <= f.step_end <= 380
    v[300:] = 5.0  # the same blow-up, for good
    (f,) = run("divergence", rd_with(losses=[sig(v)]))
    assert f.severity == "error" and f.evidence["recovered"] == 0 and "stayed up" in f.message


def test_divergence_from_the_start():
    v = 2.3 * np.exp(np.arange(300) / 60) * (1 + 0.1 * RNG.standard_normal(300))
    (f,) = run("divergence", rd_with(losses=[sig(v)]))
    assert f.step <= 60


def test_plateau_and_chance_level():
    flat = 2.30 - 0.0001 * np.arange(400) / 400 + 0.01 * RNG.standard_normal(400)
    (f,) = run("plateau", rd_with(losses=[sig(flat)]))
    assert f.severity == "warning" and f.step <= 20
    assert run("plateau", rd_with(losses=[sig(healthy_loss(400))])) == []
    # improves 20%, but stays near ln(10)
    slow = 2.3 - 0.4 * np.arange(400) / 400
    assert run("plateau", rd_with(losses=[sig(slow)])) == []
    (f,) = run("plateau", rd_with(losses=[sig(slow)], num_classes=8))  # ends at 1.9: 91% of ln 8 = 2.08
    assert "chance" in f.message
    assert run("plateau", rd_with(losses=[sig(flat[:15])])) == []  # too short to say (20 points: a loss logged
    (f,) = run("plateau", rd_with(losses=[sig(flat[:30])]))  # every 10 of 300 steps is judged)


def test_plateau_whichever_way_a_flat_loss_drifts():
    rng = np.random.default_rng(16)  # its own: the module's RNG feeds the tests after this one
    for drift in (-0.002, 0.0002, 0.002):  # 0.1% down, 0.01% and 0.1% up: flat all the same
        flat = 2.30 * (1 + drift * np.arange(400) / 400) + 0.01 * rng.standard_normal(400)
        (f,) = run("plateau", rd_with(losses=[sig(flat)], num_classes=10))
        assert f.severity == "warning", drift
    rising = 2.30 * (1 + 0.3 * np.arange(400) / 400)  # 30% up: not flat (and not a plateau)
    assert run("plateau", rd_with(losses=[sig(rising)])) == []


def test_plateau_does_not_compare_a_summed_loss_with_chance():
    # reduction="sum" over batches of 256: starts at 256 x ln 10 = 590 and learns to 2.6, "113% of chance"
    rng = np.random.default_rng(17)
    summed = 590 * np.exp(-np.arange(400) / 70) + 2.6 + 0.05 * rng.standard_normal(400)
    assert run("plateau", rd_with(losses=[sig(summed)], num_classes=10)) == []
    # the same curve per example (590 / 256 = 2.3 -> 0.01) is no plateau either; one stuck near ln 10 is
    assert run("plateau", rd_with(losses=[sig(summed / 256)], num_classes=10)) == []
    (f,) = run("plateau", rd_with(losses=[sig(2.3 - 0.3 * (1 - np.exp(-np.arange(400) / 50)))], num_classes=10))
    assert "chance" in f.message


def test_constant_and_zero_loss():
    v = healthy_loss(200)
    v[100:150] = 0.0
    (f,) = run("constant_loss", rd_with(losses=[sig(v)]))
    assert f.severity == "warning" and f.title == "Loss is exactly zero" and f.step == 100 and f.step_end == 149
    v = healthy_loss(200)
    v[50:] = 0.6931
    (f,) = run("constant_loss", rd_with(losses=[sig(v)]))
    assert f.severity == "warning" and f.step == 50
    v = healthy_loss(200)
    v[50:70] = 0.5  # 20 equal points: under the 30-point patience
    assert run("constant_loss", rd_with(losses=[sig(v)])) == []


def test_initial_loss_against_ln_c():
    good = healthy_loss(100, start=math.log(10))
    assert run("initial_loss", rd_with(losses=[sig(good)], num_classes=10)) == []
    assert run("initial_loss", rd_with(losses=[sig(good * 10)])) == []  # class count unknown: no opinion
    (f,) = run("initial_loss", rd_with(losses=[sig(good * 10)], num_classes=10))
    assert f.step == 0 and f.evidence["ratio"] > 5
    (f,) = run("initial_loss", rd_with(losses=[sig(good)]), Config(num_classes=1000))  # ln 1000 = 6.9
    assert "Too low" in f.prompt
    assert run("initial_loss", rd_with(losses=[sig(good * 10, tag="epoch_loss")], num_classes=10)) == []


def test_oscillation():
    t = np.arange(800)
    v = 1.0 + 0.8 * np.sign(np.sin(t / 40)) + 0.05 * RNG.standard_normal(800)
    (f,) = run("oscillation", rd_with(losses=[sig(v)]))
    assert f.evidence["swings"] >= 4 and f.step <= 120
    assert run("oscillation", rd_with(losses=[sig(healthy_loss(800, noise=0.3))])) == []


def test_oscillation_is_judged_against_the_loss_noise():
    rng = np.random.default_rng(18)  # its own: the module's RNG feeds the tests after this one
    n = 2000
    err = 0.03 + 0.87 * np.exp(-np.arange(n) / 150)  # the share of wrong answers, falling as it learns
    for batch in (1, 4, 16):
        # per example: a confident right answer (loss ~0.01) or a wrong one (2-4): with small batches the
        # batch loss is bimodal and its running median flips between the modes by 90% of its level
        wrong = rng.random((n, batch)) < err[:, None]
        v = np.where(wrong, rng.uniform(1.5, 4.0, (n, batch)), rng.exponential(0.01, (n, batch))).mean(1)
        assert run("oscillation", rd_with(losses=[sig(v)])) == [], batch
    # a real oscillation stands out of noise of a fifth of its size
    t = np.arange(800)
    v = 1.0 + 0.8 * np.sign(np.sin(t / 40)) + 0.3 * rng.standard_normal(800)
    (f,) = run("oscillation", rd_with(losses=[sig(v)]))
    assert f.evidence["swings"] >= 4


def test_overfitting_onset_at_the_validation_minimum():
    n = 1000
    train = sig(healthy_loss(n, end=0.01))
    steps = np.arange(0, n, 25)
    val = 0.5 + 1.5 * np.exp(-steps / 150) + np.where(steps > 400, (steps - 400) / 600, 0)
    vs = sig(val, tag="val/loss", steps=steps)
    (f,) = run("overfitting", rd_with(losses=[train], val_losses=[vs]))
    assert abs(f.step - 400) <= 75, f.step
    assert f.evidence["gap_end"] > f.evidence["gap_at_min"]
    # validation still falling: no overfitting; a single bump at the end: patience
    vs2 = sig(0.5 + 1.5 * np.exp(-steps / 150), tag="val/loss", steps=steps)
    assert run("overfitting", rd_with(losses=[train], val_losses=[vs2])) == []
    bump = 0.5 + 1.5 * np.exp(-steps / 150)
    bump[-1] *= 2
    assert run("overfitting", rd_with(losses=[train], val_losses=[sig(bump, "val/loss", steps)])) == []


# ------------------------------------------------------------------ per-layer rules

def test_nonfinite_tensor_names_the_first_layer():
    z = np.zeros((50, 3))
    nan = z.copy()
    nan[30:, 1:] = 7
    nan[35:, 0] = 1
    rd = rd_with(layers={"grad_nan": layers("grad_nan", nan), "grad_inf": layers("grad_inf", z)}, traced=True)
    (f,) = run("nonfinite_tensor", rd)
    assert f.step == 30 and f.evidence["first_layer"] == "fc1.weight" and f.tags == ["trace/grad_nan/fc1.weight",
                                                                                     "trace/grad_nan/fc2.weight"]
    rd = rd_with(layers={"grad_nan": layers("grad_nan", z)}, traced=True)
    assert run("nonfinite_tensor", rd) == []
    # NaN counts are NaN where they were not measured (Keras): not a finding
    rd = rd_with(layers={"grad_nan": layers("grad_nan", np.full((50, 3), np.nan))}, traced=True)
    assert run("nonfinite_tensor", rd) == []


def test_vanishing_gradients_decay_toward_the_input():
    k = 8
    meds = 10.0 ** -np.arange(k)[::-1]  # fc0 1e-7 ... fc7 1
    mats = np.tile(meds, (200, 1)) * (1 + 0.1 * RNG.random((200, k)))
    (f,) = run("vanishing_gradients", rd_with(layers={"grad_norm": layers("grad_norm", mats)}))
    assert f.evidence["first_layer"] == "fc0.weight" and f.evidence["ratio"] < 1e-6 and f.step == 0
    healthy = np.tile(np.linspace(0.3, 1, k), (200, 1))
    assert run("vanishing_gradients", rd_with(layers={"grad_norm": layers("grad_norm", healthy)})) == []
    dead = healthy.copy()
    dead[:, 3] = 0
    (f,) = run("vanishing_gradients", rd_with(layers={"grad_norm": layers("grad_norm", dead)}))
    assert f.evidence["first_layer"] == "fc3.weight"


def test_exploding_gradients_spikes_and_growth():
    g = 1 + 0.1 * RNG.random(400)
    g[[100, 200, 300]] = 50
    lay = layers("grad_norm", g[:, None])
    (f,) = run("exploding_gradients", rd_with(layers={"grad_norm": lay}, traced=True))
    assert f.step == 100 and f.evidence["spikes"] == 3
    g2 = 1 + 0.1 * RNG.random(400)
    g2[[100, 200]] = 50  # two spikes: under spike_count
    assert run("exploding_gradients", rd_with(layers={"grad_norm": layers("grad_norm", g2[:, None])}, traced=True)) == []
    grow = np.exp(np.arange(400) / 60)
    (f,) = run("exploding_gradients", rd_with(layers={"grad_norm": layers("grad_norm", grow[:, None])}, traced=True))
    assert f.severity == "warning" and f.evidence["growth"] > 100 and 100 <= f.step <= 200


def test_weights_not_updated_says_why():
    n = 100
    ratio = np.full((n, 3), 1e-3)
    ratio[:, 1] = 0.0
    grad = np.ones((n, 3))
    rd = rd_with(layers={"update_ratio": layers("update_ratio", ratio), "grad_norm": layers("grad_norm", grad)},
                 traced=True)
    (f,) = run("weights_not_updated", rd)
    assert f.evidence["first_layer"] == "fc1.weight" and "parameter groups" in f.prompt and f.step == 0
    grad[:, 1] = 0
    (f,) = run("weights_not_updated", rd)
    assert "No gradient" in f.prompt
    grad[:, 1] = 1e-9
    (f,) = run("weights_not_updated", rd)
    assert "vanishingly small" in f.prompt
    # frozen from step 60 on: onset 60
    ratio = np.full((n, 3), 1e-3)
    ratio[60:, 2] = 0
    rd = rd_with(layers={"update_ratio": layers("update_ratio", ratio)}, traced=True)
    (f,) = run("weights_not_updated", rd)
    assert f.step == 60
    # frozen for a while in the middle only: updated again, no finding
    ratio = np.full((n, 3), 1e-3)
    ratio[20:40, 2] = 0
    assert run("weights_not_updated", rd_with(layers={"update_ratio": layers("update_ratio", ratio)})) == []
    # nothing moves at all: not this rule (nothing trains: plateau / learning rate)
    assert run("weights_not_updated", rd_with(layers={"update_ratio": layers("update_ratio", np.zeros((n, 3)))})) == []


def test_update_ratio_band():
    ok = layers("update_ratio", np.full((200, 4), 1e-3))
    assert run("update_ratio", rd_with(layers={"update_ratio": ok})) == []
    (f,) = run("update_ratio", rd_with(layers={"update_ratio": layers("update_ratio", np.full((200, 4), 0.5))}))
    assert "lower the learning rate" in f.prompt
    (f,) = run("update_ratio", rd_with(layers={"update_ratio": layers("update_ratio", np.full((200, 4), 1e-6))}))
    assert "raise the learning rate" in f.prompt
    late = np.full((200, 4), 1e-3)
    late[120:] = 0.3
    (f,) = run("update_ratio", rd_with(layers={"update_ratio": layers("update_ratio", late)}))
    assert f.step == 120


def test_update_ratio_too_high_while_the_run_updated_at_all():
    # a learning rate that blows the run up: ratios of 0.3 for 30 steps, then a few tiny updates while
    # the units die, then none (0: excluded): the second half of the updated steps looks healthy
    blown = np.zeros((400, 3))
    blown[:30] = 0.3
    blown[30:45] = 1e-3
    (f,) = run("update_ratio", rd_with(layers={"update_ratio": layers("update_ratio", blown)}))
    assert f.step == 0 and "all 45 updated steps" in f.message and "lower the learning rate" in f.prompt
    # a short burst at the start (fewer than a quarter of the updated steps) is warm-up, not a finding
    warm = np.full((400, 3), 1e-3)
    warm[:40] = 0.3
    assert run("update_ratio", rd_with(layers={"update_ratio": layers("update_ratio", warm)})) == []


def test_dead_relu_and_saturation_need_to_last():
    steps = np.arange(0, 1000, 50)
    dead = np.zeros((len(steps), 2))
    dead[:, 1] = np.where(steps >= 300, 0.8, 0.1)
    lay = layers("dead_fraction", dead, names=["act0", "act1"], steps=steps)
    (f,) = run("dead_relu", rd_with(acts={"dead_fraction": lay}))
    assert f.step == 251 and f.evidence["first_layer"] == "act1"  # the window 251-300 showed it first
    # dead from the first window on (its value at step 50 covers steps 0-50): from the first traced step
    grads = layers("grad_norm", np.ones((1000, 1)))
    first = layers("dead_fraction", np.full((len(steps), 1), 0.8), names=["act0"], steps=steps)
    (f,) = run("dead_relu", rd_with(acts={"dead_fraction": first}, layers={"grad_norm": grads}))
    assert f.step == 0
    dead[:, 1] = np.where((steps >= 300) & (steps < 500), 0.8, 0.1)  # recovered
    assert run("dead_relu", rd_with(acts={"dead_fraction": layers("dead_fraction", dead, ["a", "b"], steps)})) == []
    sat = np.full((300, 1), 0.9)
    (f,) = run("saturation", rd_with(acts={"saturated_fraction": layers("saturated_fraction", sat, ["tanh1"])}))
    assert f.step == 0
    low = np.full((300, 1), 0.05)
    assert run("saturation", rd_with(acts={"saturated_fraction": layers("saturated_fraction", low, ["t"])})) == []


def test_weight_growth():
    grow = np.exp(np.arange(300) / 50)[:, None]
    (f,) = run("weight_growth", rd_with(layers={"weight_norm": layers("weight_norm", grow)}))
    assert f.evidence["growth"] > 10 and 40 <= f.step <= 80
    settled = (1 + 20 * (1 - np.exp(-np.arange(300) / 20)))[:, None]  # grew, then stopped
    assert run("weight_growth", rd_with(layers={"weight_norm": layers("weight_norm", settled)})) == []


def test_metric_volatility():
    steps = np.arange(0, 2000, 100)
    calm = 0.9 + 0.01 * RNG.standard_normal(len(steps))
    assert run("metric_volatility", rd_with(metrics=[sig(calm, "val/acc", steps)])) == []
    wild = np.where(np.arange(len(steps)) % 2, 0.9, 0.5)
    (f,) = run("metric_volatility", rd_with(metrics=[sig(wild, "val/acc", steps)]))
    assert f.step == steps[len(steps) // 2] and f.evidence["median_change"] == pytest.approx(0.4)


def test_metric_volatility_of_a_metric_that_keeps_dropping():
    rng = np.random.default_rng(19)  # its own: the module's RNG feeds the tests after this one
    steps = np.arange(0, 4000, 100)
    # about 0.72, with a drop to 0.39 every fifth evaluation: median change 0.02, swings of 0.33
    acc = 0.72 + 0.02 * rng.standard_normal(len(steps))
    acc[::5] = 0.39
    (f,) = run("metric_volatility", rd_with(metrics=[sig(acc, "val/acc", steps)]))
    assert f.evidence["median_change"] < 0.1 and f.evidence["jumps"] >= 6
    # one bad evaluation (a drop and the way back: 2 changes) is no pattern
    once = 0.72 + 0.02 * rng.standard_normal(len(steps))
    once[30] = 0.39
    assert run("metric_volatility", rd_with(metrics=[sig(once, "val/acc", steps)])) == []


def test_stalled_gap_inside_a_run():
    walls = 1e9 + np.concatenate([np.arange(100) * 10.0, 5000 + np.arange(100) * 10.0])
    v = healthy_loss(200)
    s = sig(v, walls=walls)
    (f,) = run("stalled", rd_with(losses=[s], walls=walls))
    assert f.severity == "info" and f.step == 99 and f.evidence["gap_seconds"] == pytest.approx(4010)
    assert run("stalled", rd_with(losses=[s], walls=walls[:100])) == []


def test_idle_run():
    from tb_plus.diagnostics.rules import idle

    cfg = Config()
    assert idle("r", 1000.0, "loss", 5, cfg, now=1000.0 + 60) is None
    f = idle("r", 1000.0, "loss", 5, cfg, now=1000.0 + 3600)
    assert f.rule == "stalled" and f.severity == "info" and f.step == 5
    assert idle("r", 1000.0, "loss", 5, cfg, now=1000.0 + 86400) is None  # long finished


def test_breakage_cuts_layer_statistics():
    loss = healthy_loss(100)
    loss[60:] = np.nan
    dead = layers("dead_fraction", np.where(np.arange(100) >= 60, 1.0, 0.1)[:, None], ["act"])
    nan = layers("grad_nan", np.where(np.arange(100) >= 60, 5.0, 0)[:, None])
    rd = rd_with(losses=[sig(loss)], acts={"dead_fraction": dead}, layers={"grad_nan": nan})
    _cut_at_breakage(rd)
    assert len(rd.acts["dead_fraction"].value[0]) == 60 and len(rd.layers["grad_nan"].value[0]) == 100
    assert run("dead_relu", rd) == []


def test_config_overrides_and_errors(tmp_path):
    cfg = Config.from_dict({"thresholds": {"constant_points": 10}, "severity": {"plateau": "error"},
                            "disable": ["stalled"], "num_classes": 10, "patterns": {"loss": "objective"}})
    assert cfg.t("constant_points") == 10 and cfg.matches("loss", "train/objective")
    assert not cfg.matches("loss", "train/loss")
    flat = 2.3 + 0.001 * RNG.standard_normal(400)
    (f,) = run("plateau", rd_with(losses=[sig(flat)]), cfg)
    assert f.severity == "error"
    for bad in ({"thresholds": {"nope": 1}}, {"severity": {"plateau": "fatal"}}, {"disable": ["nope"]},
                {"patterns": {"loss": "("}}, {"num_classes": 1}, {"extra": 1}, []):
        with pytest.raises(ValueError):
            Config.from_dict(bad)
    p = tmp_path / "c.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        Config.from_json(str(p))


def test_default_patterns():
    cfg = Config()
    assert cfg.matches("loss", "train/loss") and cfg.matches("loss", "epoch_loss") and not cfg.matches("loss", "amp/loss_scale")
    assert cfg.matches("validation", "val/loss") and cfg.matches("validation", "eval_loss")
    assert not cfg.matches("validation", "loss/interval") and not cfg.matches("validation", "value")
    assert cfg.matches("lr", "optim/lr") and cfg.matches("lr", "learning_rate") and not cfg.matches("lr", "layer")
    assert cfg.matches("grad_norm", "layers/fc1/grad_norm") and cfg.matches("grad_norm", "gradient_norm")
    assert cfg.matches("metric", "val/acc") and not cfg.matches("metric", "accumulate")


def test_exploding_gradients_burst_at_the_start():
    g = 1 + 0.1 * RNG.random(400)
    g[:20] = 500 * np.exp(-np.arange(20) / 5) + 1
    w = np.full((400, 1), 5.0)
    lay = {"grad_norm": layers("grad_norm", g[:, None]), "weight_norm": layers("weight_norm", w)}
    (f,) = run("exploding_gradients", rd_with(layers=lay, traced=True))
    assert f.step == 0 and f.evidence["ratio"] > 50 and 5 <= f.step_end <= 20
    # the same fall of a model that converges: its first gradients are small next to its weights
    lay["weight_norm"] = layers("weight_norm", w * 1000)
    assert run("exploding_gradients", rd_with(layers=lay, traced=True)) == []
    # without weight norms there is no telling the two apart: no finding
    assert run("exploding_gradients", rd_with(layers={"grad_norm": layers("grad_norm", g[:, None])}, traced=True)) == []
    # a start-up burst of 16-20x the run's median, 1.2-3x the weights (a bad initialisation) is one too
    g2 = 1 + 0.1 * np.random.default_rng(20).random(400)
    g2[:10] = np.linspace(20, 16, 10)
    lay2 = {"grad_norm": layers("grad_norm", g2[:, None]), "weight_norm": layers("weight_norm", np.full((400, 1), 8.0))}
    (f,) = run("exploding_gradients", rd_with(layers=lay2, traced=True))
    assert f.step == 0 and 15 < f.evidence["ratio"] < 21


@pytest.mark.parametrize("n", [1, 2, 5, 50, 1000])
@pytest.mark.parametrize("w", [3, 5, 11])
def test_rolling_median_equals_the_definition(n, w):
    v = np.random.default_rng(n).standard_normal(n)
    if n > 10:
        v[3] = np.nan
    h = w // 2
    ref = [np.nanmedian(v[max(0, i - h): i + h + 1]) for i in range(n)]
    np.testing.assert_allclose(rolling_median(v, w), ref)


@pytest.mark.parametrize("tag,kind", [
    ("grad_norm/fc1.weight", "grad_norm"), ("fc1.weight/grad_norm", "grad_norm"),
    ("gradients/fc1.weight/norm", "grad_norm"), ("norm/grad/fc1", "grad_norm"), ("grads/layer1_norm", "grad_norm"),
    ("weight_norm/fc1.weight", "weight_norm"), ("weights/fc1/norm", "weight_norm"), ("param_norm/conv1", "weight_norm"),
    ("grad_2.0_norm/fc1.weight", "grad_norm"), ("train/loss", None), ("grad/fc1.weight", None),
    ("weights/bn1.weight", None),
])
def test_hand_logged_norm_tags_as_people_name_them(tag, kind):
    cfg = Config()
    got = "grad_norm" if cfg.matches("grad_norm", tag) else "weight_norm" if cfg.matches("weight_norm", tag) else None
    assert got == kind
