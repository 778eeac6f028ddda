"""Labels of the diagnostics corpus (demo/diagnostics_corpus.py): what each run really shows.

LABELS[run] is the scenario's label as written for the run that was planned; derive(run,
measured) is the label of the run that happened, and is what tests and benchmarks score against:

    label = {
        "healthy": bool,          # True: no rule at severity warning or error should fire
        "runs": [...],            # the store runs that belong to it (Keras: the run and its train/validation)
        "expect": [{"rule": name, "onset": step or None, "tolerance": steps, "layer": optional,
                    "onsets": optional [[onset, tolerance], ...] that match as well}],
        "allow": [rule names that may also fire legitimately],
        "signals": {...},         # derive() only: the measured figures the label rests on
    }

Labels that follow the run. A training with a learning rate that blows up is chaotic: PyTorch,
oneDNN and MKL pick other kernels on another CPU (AVX2, AVX-512) or thread count, the rounding
differs in the last bit, and the blow-up comes earlier or later, stays finite or overflows to
NaN. So the onsets and the findings a run must or may get are derived from the generator's own
measurements of that run (diagnostics_corpus.Meter: loss, global gradient norm, update ratio,
weight norms, first non-finite values, validation losses; Keras: its History), never from
tb_plus, by the rules below (_signals() computes the figures, derive() applies them):

- Any run whose loss becomes non-finite at step k expects nonfinite_loss at k (tolerance 0) and
  allows nonfinite_tensor; a non-finite gradient or weight alone allows nonfinite_tensor. A run
  whose loss stays finite allows neither. A pathological run whose weight tensors grow over 10x
  allows weight_growth; one whose validation loss ends 10% above its minimum allows overfitting.
- lr_too_high and lr_grows, divergence: on the loss's running median over a 40th of the steps (5 at least;
  up to its first non-finite value), "best" = its argmin and "lost" = the first step after it
  above best + half the progress made from the first loss to the best. Expected from 5 steps
  before the best to 5 after the loss was lost (a window of 30 steps at least) when 10 finite
  steps or more follow and the loss ends (median of its last quarter) above both that level and
  1.6x its best: a margin over the 1.5x where detectors call it. Otherwise (a NaN came first, or
  the loss settled near 1.5x its best) divergence is allowed only. A run that diverged, partly
  recovered and diverged again has several such rises: a finding may name any ("onsets").
- lr_too_high, exploding_gradients: expected when the gradient norm is above 100x its median over
  steps 0-4 for 3 steps or more and at least 10 steps have a finite gradient norm (a lone spike:
  allowed only), from the start of the rise that first crossed 100x (walking back while above
  10x; tolerance 10).
- lr_too_high, update_ratio: expected from the first step above 5e-2 (50x the healthy 1e-3;
  tolerance 30) when the median of the finite, non-zero update ratios is above it over 10 steps
  or more (a run whose units die stops updating: the steps before count).
- Overfitting onsets are the argmin of the measured validation loss (label_noise_overfit: +-100
  steps; overfit_keras: +-3 epochs).
- Every scenario checks its premise (a healthy run learns and stays finite, nan_loss's loss turns
  NaN at the poisoned step, ...): a run that did not do what its scenario needs raises
  CorpusError rather than being scored against a label it no longer deserves.

Matching, as the corpus intends it: every `expect` entry needs a finding of that rule in one of the
label's `runs`; with `onset` an int, the finding's step must lie within onset +- tolerance; onset None
means the condition holds from the first step on (for the whole run or most of it), so any step, or
null, matches. `layer` is a module name: the finding's tags must name one of its parameters
(trace/<stat>/<layer>.weight, .bias) or the module itself. A pathological run's findings outside
`expect` + `allow` are false positives; a healthy run should have none at warning or error level.
Steps are optimizer steps (0-based) for PyTorch runs; Keras epoch series (epoch_loss) count epochs,
so an expectation with "unit": "epoch" is in epochs.

All runs: digits (sklearn), 10 classes (meta/num_classes = 10, ln 10 = 2.303), batch 64, 400 steps
unless noted, MLP 64-64-64-10 named fc1, act1, fc2, act2, fc3. Numbers below are those measured
(torch 2.13 CPU, one thread, AVX2); the CLI of the corpus prints them. lr_too_high's are one
trajectory among many (see above).

healthy_mlp      Adam 1e-3, ReLU. train/loss 2.31 -> 0.04, val/loss 2.29 -> 0.057 (minimum at the last
                 step), update_ratio ~1.5e-3, dead_fraction 0.
healthy_cnn      Two 3x3 convs (8, 16 channels) + max-pool + linear, SGD 0.02 momentum 0.9. val/loss
                 2.3 -> 0.054 (step 375), 0.057 at 399 (+6 %: noise), update_ratio 1.5e-3..4e-3.
healthy_keras    Keras Dense 64-64-10, Adam 1e-3, 20 epochs of 11 batches (128). validation epoch_loss
                 1.95 -> 0.085, decreasing every epoch; update_ratio 1.4e-3..5e-3. Keras traces have no
                 gradient statistics (NaN) and no activation statistics.
lr_too_high      SGD lr 2.0 (plain). The loss swings 1.0 <-> 5.2 in steps 5-20, explodes from step 20
                 (1.85, 5.9, 12, 38, 179, 2e4, 1.5e8, 7e9, 1.8e17 at step 30; finite), grad_norm of fc1
                 reaches 1e12 at step 30 (15.6 at 24, 730 at 27), then every act2 unit is dead
                 (dead_fraction 1 from step 100, the first window entirely after the blow-up), grads of
                 fc1/fc2/fc3.weight are exactly 0 and the loss sits at ln 10 = 2.31 to the end.
                 update_ratio 0.1-1.0 in every layer from step 0 to 31. Derived label here:
                 exploding_gradients from 21, update_ratio from 0; divergence allowed only (the
                 swings of steps 5-20 hold the loss's level at 1.48, and 2.31 is 1.56x that). On a
                 Zen 4 with AVX-512 the gradient norm grows 2.45e13x by step 12 and the loss reaches
                 NaN: there the label expects nonfinite_loss too and allows weight_growth.
lr_too_low       SGD lr 1e-5. The loss stays at 2.28-2.32 the whole run (val 2.30 -> 2.30);
                 update_ratio ~5e-7 (weights) .. 5e-6 (fc3.bias), grads healthy (~0.2).
zero_init        Every weight and bias 0, SGD 0.1 momentum 0.9. Hidden activations are exactly 0,
                 so grad_norm of fc1.*, fc2.* and fc3.weight is exactly 0 and they never change
                 (weight_norm 0, update_ratio 0/0 = NaN); only fc3.bias learns (the class priors). The
                 loss stays at 2.27-2.32; ReLU units are never positive (dead_fraction 1).
deep_sigmoid     12 Linear+Sigmoid layers (fc1..fc12, act1..act11, width 64), SGD 0.1, default init.
                 Median grad_norm: fc12.weight 0.46, fc9 1.2e-3, fc6 3.4e-6, fc3 9.4e-9, fc1 7.5e-10
                 (about x0.2 per layer); update_ratio of fc1-fc3 ~1e-12 (their biases exactly 0). The
                 loss stays at 2.27-2.34 after step 25. Pre-activations are small: saturated_fraction 0,
                 so no saturation is expected.
dying_relu       MLP 64-128-128-10, Adam 1e-3; 3/4 of the biases of fc1 and fc2 start at -4, so those
                 units never fire: dead_fraction act1 0.73 -> 0.64, act2 0.75 the whole run (first
                 value at step 50, the end of the first dead_window of 50 steps). The remaining units
                 learn: val/loss 2.3 -> 0.093.
frozen_layer     MLP 64-64-64-64-10 (fc1..fc4), Adam 1e-3 over every parameter but fc2's (forgotten in
                 the optimizer; model.zero_grad() keeps its grads fresh). fc2: grad_norm ~0.43,
                 update_norm exactly 0 every step. The rest trains: val/loss 2.3 -> 0.065.
unnormalised_inputs  Raw pixels (0..16) x 100, not standardised, SGD 1e-3. Initial loss 112 (ln 10 =
                 2.3; val 109 at step 0); grad_norm of fc1.weight 491 at step 0, >100 for 5 steps,
                 ~50 at step 25, median 8 (healthy_mlp: 0.24 and 0.23), update_ratio 0.1 at step 0. It
                 then learns, noisily: train/loss 1.2-1.9 at steps 25-30, val/loss 0.37 at the end.
label_noise_overfit  MLP 64-256-256-10, Adam 5e-4, 600 steps on the first 300 training examples with
                 40 % of their labels random. train/loss 2.31 -> 0.02; val/loss 2.28 -> 0.822 (minimum,
                 steps 100-125) -> 1.42 at step 599. Onset = the step of the val/loss minimum (125),
                 +-100 steps: the minimum is flat (0.825, 0.822, 0.822, 0.842 at 75..150). A rule that
                 reads the rising val/loss as divergence is wrong here (train/loss keeps falling).
nan_loss         healthy_mlp's training until step 249; the batch of step 250 carries one inf input, so
                 train/loss is NaN from step 250 on (tolerance 0), val/loss NaN from 250, grad_nan and
                 weight_nan > 0 from step 250 in every layer. NaN activations are never positive, so
                 act1/act2 dead_fraction reads 1 from step 350 (allowed).
saturated_tanh   MLP 64-64-64-10 with tanh, weights drawn with std 1 (8x too large for 64 inputs), SGD 0.01:
                 pre-activations of std ~8, 75% of them beyond |x| > 2.5 (tanh' < 0.03) in act1 and act2 for
                 the whole run (saturated_fraction 0.72-0.75); the loss starts at 11-12 (initial_loss) and
                 ends near chance (plateau). Onset: from the first step.
lr_grows         MLP 64-64-64-10, SGD momentum 0.9 with a learning rate that grows 3% a step from 0.01
                 (a schedule bug: 0.19 at step 100, 3.7 at 200): the loss learns, then diverges for
                 good. Onsets: derived as lr_too_high's divergence (below); a blow-up that reaches NaN
                 expects nonfinite_loss instead. Whatever a blow-up brings is allowed.
lr_spikes        MLP 64-64-64-10 with tanh, SGD momentum 0.9 at lr 0.02, but 1.0 for steps 60-79 of every 80
                 (a schedule bug): the loss drops to 0.3 by step 60, jumps to 1.6 in the first burst, recovers,
                 and swings with every burst. Onset: the first burst, step 60 (+-20), where the measured
                 loss turns 4 times or more by half its level and 30% of its progress (its running
                 median); where the later bursts only nudge a loss near 0, oscillation is allowed, not
                 expected. The bursts also saturate the tanh units and spike the gradients (allowed).
tiny_val_set     MLP 64-64-64-10, Adam 1e-3, on the 300 noisy examples of label_noise_overfit, evaluated on 8
                 validation examples drawn at random for each evaluation: val/acc jumps between 0.38 and 1.0
                 (median change 0.125 in the second half). Onset: none (any step). It also overfits
                 (allowed).
overfit_keras    Keras Dense 256-256-10, Adam 1e-3, 25 epochs of 10 batches (32) on the same 300 noisy
                 examples. train epoch_loss 2.16 -> 0.078; validation epoch_loss 1.56 -> 0.89 (minimum,
                 epoch 3; 0.90 at 4 and 5) -> 1.16 (epoch 24). Onset: epoch 3 (+-3 epochs) in the epoch
                 series (the tracer's steps are batches: epoch 3 ends at batch 39).
"""

from __future__ import annotations

import copy
import json
import math
import os

import numpy as np

NONFINITE = ["nonfinite_loss", "nonfinite_tensor"]
LABELS_FILE = "corpus_labels.json"
NAN_STEP = 250  # nan_loss: the step whose batch carries an inf (diagnostics_corpus.NAN_STEP)
LR_SPIKE_FIRST = 60  # lr_spikes: the first step of the first burst of the learning rate
STAYS_UP = 1.6  # a diverged loss ends above 1.6x its best: a margin over the 1.5x where detectors call it
GRAD_ONSET, GRAD_EXPLODED = 10.0, 100.0  # a gradient norm 10x / 100x its level over steps 0-4
HIGH_UPDATE_RATIO = 5e-2  # 50x the healthy 1e-3 (Karpathy's rule of thumb)
WEIGHT_GROWTH = 10.0
OVERFIT_RISE = 1.1  # a validation loss that ends 10% above its minimum may be called overfitting
MIN_POINTS = 10  # fewer finite points than this show no trend to find
SUSTAINED = 3  # steps above GRAD_EXPLODED: one lone spike that the network survives is not an explosion


class CorpusError(RuntimeError):
    """A corpus run did not do what its scenario needs (on this machine): its label would be wrong."""


def _label(healthy, expect=(), allow=()):
    return {"healthy": healthy, "expect": [dict(e) for e in expect], "allow": list(allow)}


def _e(rule, onset=None, tolerance=0, layer=None, unit=None, onsets=None):
    e = {"rule": rule, "onset": onset, "tolerance": tolerance}
    if onsets:
        e["onsets"] = [list(o) for o in onsets]
    if layer is not None:
        e["layer"] = layer
    if unit is not None:
        e["unit"] = unit
    return e


LABELS = {
    "healthy_mlp": _label(True),
    "healthy_cnn": _label(True),
    "healthy_keras": _label(True),
    "lr_too_high": _label(False, [
        _e("divergence", 20, 15),
        _e("exploding_gradients", 25, 10),
        _e("update_ratio", 0, 30),
    ], ["oscillation", "metric_volatility", "dead_relu", "plateau", "constant_loss", "weights_not_updated",
        "vanishing_gradients", "stalled", *NONFINITE]),
    "lr_too_low": _label(False, [
        _e("plateau"),
        _e("update_ratio"),
    ], ["constant_loss", "stalled"]),
    "zero_init": _label(False, [
        _e("weights_not_updated", layer="fc1"),
        _e("weights_not_updated", layer="fc2"),
        _e("plateau"),
    ], ["vanishing_gradients", "dead_relu", "constant_loss", "update_ratio", "stalled"]),
    "deep_sigmoid": _label(False, [
        _e("vanishing_gradients", layer="fc1"),
        _e("plateau"),
    ], ["weights_not_updated", "update_ratio", "constant_loss", "stalled"]),
    "dying_relu": _label(False, [
        _e("dead_relu", layer="act1"),
        _e("dead_relu", layer="act2"),
    ]),
    "frozen_layer": _label(False, [
        _e("weights_not_updated", layer="fc2"),
    ], ["update_ratio"]),
    "unnormalised_inputs": _label(False, [
        _e("initial_loss", 0, 0),
        _e("exploding_gradients", 0, 25),
    ], ["update_ratio", "oscillation", "metric_volatility"]),
    "label_noise_overfit": _label(False, [
        _e("overfitting", 125, 100),
    ]),
    "nan_loss": _label(False, [
        _e("nonfinite_loss", 250, 0),
        _e("nonfinite_tensor", 250, 0),
    ], ["dead_relu", "metric_volatility"]),
    "saturated_tanh": _label(False, [_e("saturation", layer="act1")], ["saturation", "initial_loss", "plateau",
                                                                      "vanishing_gradients", "update_ratio"]),
    "lr_spikes": _label(False, [_e("oscillation", 60, 20)], ["saturation", "exploding_gradients", "divergence",
                                                            "weight_growth", "update_ratio"]),
    "lr_grows": _label(False, [_e("divergence")], ["exploding_gradients", "update_ratio", "weight_growth",
                                                   "dead_relu", "plateau", "oscillation", "constant_loss",
                                                   "weights_not_updated", "vanishing_gradients",
                                                   "metric_volatility", "saturation", "stalled"]),
    "tiny_val_set": _label(False, [_e("metric_volatility")], ["overfitting"]),
    "overfit_keras": _label(False, [
        _e("overfitting", 3, 3, unit="epoch"),
    ]),
}

for _name, _lab in LABELS.items():
    _lab["runs"] = [_name, f"{_name}/train", f"{_name}/validation"] if _name.endswith("_keras") else [_name]
del _name, _lab


# ------------------------------------------------------------------ labels from measurements

def _first(mask) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if len(idx) else None


def _running_median(x, width=5):
    """The centred running median of x (the window shrinks at the ends)."""
    x = np.asarray(x, np.float64)
    h = width // 2
    return np.asarray([np.median(x[max(0, i - h): i + h + 1]) for i in range(len(x))], np.float64)


def _signals(measured) -> dict:
    """The figures a label rests on, from a run's measurements (diagnostics_corpus.Meter.result(),
    or {"epoch_loss", "val_epoch_loss"} for Keras runs). Steps are ints, None where absent."""
    sig = {}
    if "epoch_loss" in measured:  # Keras: per epoch
        tr = np.asarray(measured["epoch_loss"], np.float64)
        va = np.asarray(measured["val_epoch_loss"], np.float64)
        sig.update(epochs=len(tr), loss_first=float(tr[0]), loss_last=float(tr[-1]),
                   val_first=float(va[0]), val_last=float(va[-1]),
                   val_argmin=int(np.nanargmin(va)), val_min=float(np.nanmin(va)),
                   first_nonfinite_loss=_first(~np.isfinite(tr)))
        return sig
    loss = np.asarray(measured["loss"], np.float64)
    grad = np.asarray(measured["grad_norm"], np.float64)
    ratio = np.asarray(measured["update_ratio"], np.float64)
    fin = measured["first_nonfinite"]
    sig["swings"] = _swings(loss)
    sig.update(steps=len(loss), loss_first=float(loss[0]), loss_last=float(loss[-1]),
               first_nonfinite_loss=fin["loss"], first_nonfinite_grad=fin["grad"],
               first_nonfinite_weight=fin["weight"])
    finite = np.isfinite(loss)
    sig["loss_min"] = float(loss[finite].min()) if finite.any() else None
    # judged on the running median over a 40th of the finite prefix (5 steps at least; 11 for
    # 400 steps), so a few lucky batches are no level the run reached
    k = sig["first_nonfinite_loss"] if sig["first_nonfinite_loss"] is not None else len(loss)
    sm = _running_median(loss[:k], max(5, (k // 40) | 1))
    # the best level, and the step from which half of the progress made until then is lost for good
    if k >= MIN_POINTS:
        best = int(np.argmin(sm))
        lost = sm > sm[best] + 0.5 * (loss[0] - sm[best])
        lost[: best + 1] = False
        first = _first(lost)
        final = float(np.median(sm[(3 * k) // 4:]))
        sig.update(best_step=best, best_loss=float(sm[best]), final_loss=final, lost_from=first,
                   finite_after_lost=int(k - first) if first is not None else 0,
                   lost_at_end=bool(final > sm[best] + 0.5 * (loss[0] - sm[best])))
        # every episode: a rise past the best so far + half the progress made until then, from
        # below it; [step of that best so far, first step of the rise]
        runbest = np.fmin.accumulate(sm)
        up = sm > runbest + 0.5 * (loss[0] - runbest)
        starts = np.flatnonzero(up & ~np.concatenate([[False], up[:-1]]))
        sig["lost_episodes"] = [[int(np.argmin(sm[: i + 1])), int(i)] for i in starts.tolist()]
    # gradients: the level of steps 0-4, the first step above GRAD_ONSET x it, the largest growth
    gfin = np.isfinite(grad)
    ref = float(np.median(grad[:5][gfin[:5]])) if gfin[:5].any() else math.nan
    sig["grad_ref"] = ref
    sig["grad_finite_steps"] = int(gfin.sum())
    if ref > 0:
        sig["grad_growth"] = float(grad[gfin].max() / ref)
        # onset: the start of the rise that first crossed 100x (walking back while above 10x)
        e = _first(gfin & (grad > GRAD_EXPLODED * ref))
        if e is None:
            sig["grad_onset"] = _first(~gfin | (grad > GRAD_ONSET * ref))
        else:
            while e > 0 and gfin[e - 1] and grad[e - 1] > GRAD_ONSET * ref:
                e -= 1
            sig["grad_onset"] = e
        sig["grad_exploded_steps"] = int((grad[gfin] > GRAD_EXPLODED * ref).sum())
    else:
        sig["grad_growth"], sig["grad_onset"], sig["grad_exploded_steps"] = math.nan, None, 0
    sig["grad_median"] = float(np.median(grad[gfin])) if gfin.any() else math.nan
    sig["grad_first3"] = float(np.median(grad[:3])) if gfin[:3].all() else math.nan
    # update ratio: finite, non-zero steps only (frozen or dead layers have none)
    live = np.isfinite(ratio) & (ratio > 0)
    sig["update_ratio_steps"] = int(live.sum())
    sig["update_ratio_median"] = float(np.median(ratio[live])) if live.any() else math.nan
    sig["update_ratio_high_from"] = _first(live & (ratio > HIGH_UPDATE_RATIO))
    # weight norms: the largest growth of a weight tensor over its start (finite values)
    growth = 0.0
    for name, norms in measured["weight_norm"].items():
        w = np.asarray(norms, np.float64)
        w0 = measured["weight_norm_start"][name]
        if w0 > 0 and np.isfinite(w).any():
            growth = max(growth, float(w[np.isfinite(w)].max() / w0))
    sig["weight_growth"] = growth
    val = measured.get("val_loss") or {}
    if val:
        vs = np.asarray(sorted(int(k) for k in val), np.int64)
        vv = np.asarray([val[k] if k in val else val[str(k)] for k in vs.tolist()], np.float64)
        ok = np.isfinite(vv)
        sig.update(val_first=float(vv[0]), val_last=float(vv[-1]), val_last_step=int(vs[-1]))
        if ok.any():
            j = int(np.argmin(np.where(ok, vv, np.inf)))
            sig.update(val_argmin=int(vs[j]), val_min=float(vv[j]))
    return sig


def _expect(lab, rule, onset=None, tolerance=0, **extra):
    """Sets the expectation of `rule` (replacing the scenario's, keeping its layer and unit)."""
    old = [e for e in lab["expect"] if e["rule"] == rule]
    keep = {k: old[0][k] for k in ("layer", "unit") if old and k in old[0]}
    lab["expect"] = [e for e in lab["expect"] if e["rule"] != rule] + [
        _e(rule, onset, tolerance, **{**keep, **extra})]


def _allow_only(lab, rule):
    """`rule` may fire but is not expected."""
    lab["expect"] = [e for e in lab["expect"] if e["rule"] != rule]
    if rule not in lab["allow"]:
        lab["allow"].append(rule)


def _require(name, ok, what, sig):
    if not ok:
        raise CorpusError(f"corpus run {name!r} did not do what its scenario needs on this machine: {what} "
                          f"(measured: {json.dumps(sig, default=str)})")


def _lr_too_high(lab, sig):
    _require("lr_too_high", sig["first_nonfinite_loss"] is not None or sig.get("lost_from") is not None,
             "its loss neither diverged nor became non-finite", sig)
    _divergence(lab, sig)
    _exploding_and_update_ratio(lab, sig)


def _lr_grows(lab, sig):
    _require("lr_grows", sig.get("best_loss") is not None and sig["best_loss"] < 0.5 * sig["loss_first"],
             "its loss did not fall to half its first value before the learning rate grew too large", sig)
    _require("lr_grows", sig["first_nonfinite_loss"] is not None or sig.get("lost_at_end"),
             "its loss did not diverge", sig)
    _divergence(lab, sig)


def _divergence(lab, sig):
    """divergence expected (with its onsets) where the measured loss diverged clearly, else allowed."""
    if sig.get("lost_from") is not None and sig["finite_after_lost"] >= MIN_POINTS and sig["lost_at_end"] and \
            sig["final_loss"] > STAYS_UP * sig["best_loss"]:
        windows = []
        for b, i in sig["lost_episodes"] + [[sig["best_step"], sig["lost_from"]]]:
            lo, hi = max(0, b - 5), i + 5
            windows.append([(lo + hi) // 2, max(15, (hi - lo + 1) // 2)])
        # the main onset is the rise from the best of the run; an earlier episode matches too
        _expect(lab, "divergence", windows[-1][0], windows[-1][1],
                onsets=[w for w in windows[:-1] if w != windows[-1]])
    else:  # a NaN ended the loss before it could be seen to stay up, or it settled near its best
        _allow_only(lab, "divergence")


def _exploding_and_update_ratio(lab, sig):
    if sig["grad_exploded_steps"] >= SUSTAINED and sig["grad_finite_steps"] >= MIN_POINTS:
        _expect(lab, "exploding_gradients", sig["grad_onset"], 10)
    else:
        _allow_only(lab, "exploding_gradients")
    if sig["update_ratio_median"] > HIGH_UPDATE_RATIO and sig["update_ratio_steps"] >= MIN_POINTS:
        _expect(lab, "update_ratio", sig["update_ratio_high_from"], 30)
    else:
        _allow_only(lab, "update_ratio")


def _healthy(name):
    def check(lab, sig):
        _require(name, sig["first_nonfinite_loss"] is None, "its loss became non-finite", sig)
        _require(name, sig["val_last"] < 0.3 * sig["val_first"], "its validation loss did not fall 70%", sig)
    return check


def _nan_loss(lab, sig):
    _require("nan_loss", sig["first_nonfinite_loss"] == NAN_STEP,
             f"its loss did not turn non-finite at the poisoned step {NAN_STEP}", sig)
    tensors = [k for k in (sig["first_nonfinite_grad"], sig["first_nonfinite_weight"]) if k is not None]
    _require("nan_loss", bool(tensors), "no gradient or weight became non-finite", sig)
    _expect(lab, "nonfinite_tensor", min(tensors), 0)


def _overfit(name, tolerance):
    def check(lab, sig):
        _require(name, sig["val_last"] > 1.2 * sig["val_min"], "its validation loss did not rise 20% from its minimum",
                 sig)
        _require(name, sig["loss_last"] < 0.5 * sig["val_last"], "its training loss did not fall below the "
                 "validation loss", sig)
        _expect(lab, "overfitting", sig["val_argmin"], tolerance)
    return check


def _unnormalised(lab, sig):
    _require("unnormalised_inputs", sig["loss_first"] > 3 * math.log(10), "its first loss is not 3x chance", sig)
    _require("unnormalised_inputs", sig["grad_first3"] > 10 * sig["grad_median"],
             "its gradient norm does not start 10x above its median", sig)


def _lr_spikes(lab, sig):
    _require("lr_spikes", sig["first_nonfinite_loss"] is None or sig["first_nonfinite_loss"] > LR_SPIKE_FIRST,
             "its loss was not finite before the first burst", sig)
    # oscillation expected where the bursts set the loss back by a real share of its progress: 4 turns
    # or more of its running median, each by half its level and 30% of the progress from its first
    # value to its best; fewer (the later bursts only nudge a loss near 0): allowed only
    if sig.get("swings", 0) < 4:
        _allow_only(lab, "oscillation")


def _swings(loss, swing=0.5, share=0.3):
    """Turns of the loss's running median (over a 40th of the steps, 5 at least) after moves of at
    least `swing` x its level and `share` x the progress from its first value to its best."""
    loss = np.asarray(loss, np.float64)
    loss = loss[: int(np.argmax(~np.isfinite(loss)))] if (~np.isfinite(loss)).any() else loss
    if len(loss) < MIN_POINTS:
        return 0
    sm = _running_median(loss, max(5, (len(loss) // 40) | 1))
    return turns(sm, swing, share * max(float(sm[0] - sm.min()), 0.0))


def turns(sm, swing, floor=0.0) -> int:
    """How often the series `sm` turns after a move of at least `swing` x its level and `floor`
    (a zig-zag with hysteresis; the corpora's own count, no tb_plus code)."""
    n, ext, d = 0, sm[0], 0
    for y in sm[1:]:
        if d >= 0 and y > ext:
            ext, d = y, (1 if d == 0 else d)
            continue
        if d <= 0 and y < ext:
            ext, d = y, (-1 if d == 0 else d)
            continue
        if abs(y - ext) >= max(swing * max(abs(ext), abs(y), 1e-12), floor):
            n += d != 0
            d, ext = (-1 if y < ext else 1), y
    return n


_DERIVE = {
    "healthy_mlp": _healthy("healthy_mlp"),
    "healthy_cnn": _healthy("healthy_cnn"),
    "healthy_keras": _healthy("healthy_keras"),
    "lr_too_high": _lr_too_high,
    "lr_grows": _lr_grows,
    "nan_loss": _nan_loss,
    "label_noise_overfit": _overfit("label_noise_overfit", 100),
    "overfit_keras": _overfit("overfit_keras", 3),
    "unnormalised_inputs": _unnormalised,
    "lr_spikes": _lr_spikes,
}


def derive(name, measured) -> dict:
    """The label of run `name` from what it measurably did (see the module's docstring); raises
    CorpusError when the run did not do what its scenario needs."""
    lab = copy.deepcopy(LABELS[name])
    sig = _signals(measured)
    lab["signals"] = sig
    if name in _DERIVE:
        _DERIVE[name](lab, sig)
    # non-finite values, whatever the scenario: labelled from the first step they were measured
    lab["allow"] = [r for r in lab["allow"] if r not in NONFINITE]
    k_loss = sig.get("first_nonfinite_loss")
    k_tensor = [k for k in (sig.get("first_nonfinite_grad"), sig.get("first_nonfinite_weight")) if k is not None]
    if lab["healthy"]:
        return lab
    if k_loss is not None:
        _expect(lab, "nonfinite_loss", k_loss, 0)
    elif any(e["rule"] == "nonfinite_loss" for e in lab["expect"]):
        raise CorpusError(f"corpus run {name!r}: its loss never became non-finite")
    if (k_loss is not None or k_tensor) and not any(e["rule"] == "nonfinite_tensor" for e in lab["expect"]):
        lab["allow"].append("nonfinite_tensor")
    if sig.get("weight_growth", 0.0) > WEIGHT_GROWTH and "weight_growth" not in lab["allow"]:
        lab["allow"].append("weight_growth")
    if sig.get("val_min") is not None and sig.get("val_last", 0.0) > OVERFIT_RISE * sig["val_min"] and \
            sig["val_argmin"] < sig.get("val_last_step", -1) and "overfitting" not in lab["allow"]:
        lab["allow"].append("overfitting")
    return lab


def write_labels(path, labels, platform_info=None):
    """Writes {"platform": ..., "labels": {run: label}} as JSON (NaN written as null)."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(clean({"platform": platform_info or {}, "labels": labels}), f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def read(outdir_or_file) -> dict:
    """{"platform": {...}, "labels": {run: label}} as make_corpus wrote them (OUTDIR/corpus_labels.json)."""
    path = outdir_or_file
    if os.path.isdir(path):
        path = os.path.join(path, LABELS_FILE)
    with open(path) as f:
        return json.load(f)
