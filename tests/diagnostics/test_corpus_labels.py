"""The corpus labels derived from a run's measurements (demo/diagnostics_labels.py: derive), on
synthetic measurements: the same scenario labelled for the different things it can do on different
CPUs (diverge and stay finite, overflow to NaN, spike once), and scenarios that did not happen."""

import math
import os
import sys

import numpy as np
import pytest

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "demo")
sys.path.insert(0, DEMO)

import diagnostics_labels as dl  # noqa: E402


def measured(loss, grad=None, ratio=None, weights=None, val=None):
    """A Meter.result() of len(loss) steps; NaN/inf in loss, grad or weights mark non-finite steps."""
    n = len(loss)
    loss = [float(v) for v in loss]
    grad = [0.5] * n if grad is None else [float(v) for v in grad]
    ratio = [1e-3] * n if ratio is None else [float(v) for v in ratio]
    weights = {"fc1.weight": [3.0] * n} if weights is None else weights

    def first(xs):
        bad = [i for i, v in enumerate(xs) if not math.isfinite(v)]
        return bad[0] if bad else None

    wbad = [first(w) for w in weights.values() if first(w) is not None]
    return {"loss": loss, "grad_norm": grad, "update_ratio": ratio, "weight_norm": weights,
            "weight_norm_start": {k: 3.0 for k in weights}, "val_loss": val or {0: loss[0], n - 1: loss[-1]},
            "first_nonfinite": {"loss": first(loss), "grad": first(grad), "weight": min(wbad) if wbad else None}}


def rules(lab):
    return {e["rule"]: e for e in lab["expect"]}


def _lr_too_high(blowup, nan_at=None, n=400):
    """Loss falls 2.3 -> 1.0 until `blowup`, explodes (x10 a step), then sits at 2.3 (dead units),
    or turns NaN at `nan_at`; the gradient norm explodes with it; update ratios 0.3 before it."""
    loss = list(np.linspace(2.3, 1.0, blowup))
    grad = list(np.full(blowup, 0.6))
    ratio = list(np.full(blowup, 0.3))
    big = [10.0 ** (k + 1) for k in range(8)]
    loss += big + [2.3] * (n - blowup - len(big))
    grad += [6.0 * 10 ** k for k in range(8)] + [0.0] * (n - blowup - len(big))
    ratio += [0.5] * len(big) + [0.0] * (n - blowup - len(big))
    weights = {"fc1.weight": [3.0] * blowup + [3.0 * 10.0 ** min(k, 12) for k in range(n - blowup)]}
    if nan_at is not None:
        for xs in (loss, grad, ratio, weights["fc1.weight"]):
            xs[nan_at:] = [math.nan] * (n - nan_at)
    return measured(loss, grad, ratio, weights)


def test_a_finite_blow_up_expects_divergence_and_exploding_gradients_at_the_measured_steps():
    lab = dl.derive("lr_too_high", _lr_too_high(20))
    r = rules(lab)
    div = r["divergence"]
    assert div["onset"] - div["tolerance"] <= 19 <= div["onset"] + div["tolerance"]  # the best, then lost at 20
    assert r["exploding_gradients"]["onset"] == 21  # the first step above 10x the start (6.0 -> 60)
    assert r["update_ratio"]["onset"] == 0
    assert "nonfinite_loss" not in r and "nonfinite_loss" not in lab["allow"]
    assert "nonfinite_tensor" not in lab["allow"]
    assert "weight_growth" in lab["allow"]  # the weights grew far more than 10x


def test_the_same_run_overflowing_early_expects_the_nan_and_no_longer_divergence():
    lab = dl.derive("lr_too_high", _lr_too_high(10, nan_at=16))
    r = rules(lab)
    assert r["nonfinite_loss"]["onset"] == 16 and r["nonfinite_loss"]["tolerance"] == 0
    assert "nonfinite_tensor" in lab["allow"]
    assert "divergence" not in r and "divergence" in lab["allow"]  # too few finite steps after it to stay up
    assert r["exploding_gradients"]["onset"] == 11
    assert r["update_ratio"]["onset"] == 0


def test_a_lone_gradient_spike_is_allowed_not_expected():
    n = 200
    grad = [0.5] * n
    grad[60] = 500.0
    lab = dl.derive("lr_too_high", measured(list(np.linspace(2.3, 0.3, 60)) + [30.0] + [2.3] * (n - 61), grad))
    r = rules(lab)
    assert "exploding_gradients" not in r and "exploding_gradients" in lab["allow"]
    assert "divergence" in r  # 0.3..1 -> 2.3: ends above twice its best and past half the progress


def test_a_loss_that_settles_near_its_best_leaves_divergence_allowed_only():
    n = 200
    loss = list(np.linspace(2.3, 1.5, 100)) + [5.0] + [2.2] * 99  # 2.2 < 1.8 x 1.5: within the margin
    lab = dl.derive("lr_too_high", measured(loss))
    assert "divergence" not in rules(lab) and "divergence" in lab["allow"]


def test_a_run_that_did_not_blow_up_is_no_lr_too_high_run():
    with pytest.raises(dl.CorpusError, match="lr_too_high"):
        dl.derive("lr_too_high", measured(np.linspace(2.3, 0.1, 100)))


def test_nan_loss_is_labelled_at_the_measured_steps_and_checked():
    n = 400
    loss = list(np.linspace(2.3, 0.1, n))
    loss[250:] = [math.nan] * (n - 250)
    grad = [0.5] * n
    grad[250:] = [math.nan] * (n - 250)
    lab = dl.derive("nan_loss", measured(loss, grad))
    r = rules(lab)
    assert r["nonfinite_loss"]["onset"] == 250 and r["nonfinite_tensor"]["onset"] == 250
    loss[250] = 0.1  # the poisoned batch did not poison the loss: the scenario did not happen
    with pytest.raises(dl.CorpusError, match="nan_loss"):
        dl.derive("nan_loss", measured(loss, grad))


def test_healthy_runs_must_learn_and_stay_finite():
    n = 400
    val = {0: 2.3, 399: 0.1}
    lab = dl.derive("healthy_mlp", measured(np.linspace(2.3, 0.05, n), val=val))
    assert lab["healthy"] and lab["expect"] == [] and "nonfinite_loss" not in lab["allow"]
    with pytest.raises(dl.CorpusError, match="non-finite"):
        dl.derive("healthy_mlp", measured(list(np.linspace(2.3, 0.05, n - 1)) + [math.nan], val=val))
    with pytest.raises(dl.CorpusError, match="validation"):
        dl.derive("healthy_mlp", measured(np.linspace(2.3, 2.2, n), val={0: 2.3, 399: 2.2}))


def test_overfitting_onset_is_the_measured_minimum_of_the_validation_loss():
    n = 600
    val = {s: 2.3 - 1.5 * min(s, 150) / 150 + 0.004 * max(0, s - 150) for s in range(0, n, 25)}
    lab = dl.derive("label_noise_overfit", measured(np.linspace(2.3, 0.02, n), val=val))
    assert rules(lab)["overfitting"]["onset"] == 150 and rules(lab)["overfitting"]["tolerance"] == 100
    keras = dl.derive("overfit_keras", {"epoch_loss": list(np.linspace(2.2, 0.08, 25)),
                                        "val_epoch_loss": [1.6, 1.2, 0.95, 0.92, 0.89, 0.9] + [0.9 + 0.02 * i
                                                                                             for i in range(19)]})
    e = rules(keras)["overfitting"]
    assert e["onset"] == 4 and e["unit"] == "epoch" and e["tolerance"] == 3


def test_labels_round_trip_through_the_file(tmp_path):
    labels = {"lr_too_high": dl.derive("lr_too_high", _lr_too_high(10, nan_at=16))}
    labels["lr_too_high"]["signals"]["final_loss"] = math.nan
    dl.write_labels(str(tmp_path / dl.LABELS_FILE), labels, {"cpu_capability": "AVX512", "threads": 2})
    back = dl.read(str(tmp_path))
    assert back["platform"] == {"cpu_capability": "AVX512", "threads": 2}
    assert back["labels"]["lr_too_high"]["expect"] == labels["lr_too_high"]["expect"]
    assert back["labels"]["lr_too_high"]["signals"]["final_loss"] is None  # NaN is written as null
