"""Labels of the diagnostics corpus (demo/diagnostics_corpus.py): what each run really shows.

LABELS[run] = {
    "healthy": bool,          # True: no rule at severity warning or error should fire
    "runs": [...],            # the store runs that belong to it (Keras: the run and its train/validation)
    "expect": [{"rule": name, "onset": step or None, "tolerance": steps, "layer": optional}],
    "allow": [rule names that may also fire legitimately],
}

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
(torch 2.13 CPU, one thread); the CLI of the corpus prints them.

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
                 update_ratio 0.1-1.0 in every layer from step 0 to 31. Onsets: divergence = the step
                 where the loss leaves its running minimum for good (~20; minimum 0.97 at 18);
                 exploding_gradients ~25 (grad_norm x100 its median of the first 20 steps at 27).
                 The blow-up stays finite here; on another platform it could overflow to inf/NaN,
                 hence nonfinite_* are allowed.
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
lr_spikes        MLP 64-64-64-10 with tanh, SGD momentum 0.9 at lr 0.02, but 1.0 for steps 60-79 of every 80
                 (a schedule bug): the loss drops to 0.3 by step 60, jumps to 1.6 in the first burst, recovers,
                 and swings with every burst. Onset: the first burst, step 60 (+-20). The bursts also
                 saturate the tanh units and spike the gradients (allowed).
tiny_val_set     MLP 64-64-64-10, Adam 1e-3, on the 300 noisy examples of label_noise_overfit, evaluated on 8
                 validation examples drawn at random for each evaluation: val/acc jumps between 0.38 and 1.0
                 (median change 0.125 in the second half). Onset: none (any step). It also overfits
                 (allowed).
overfit_keras    Keras Dense 256-256-10, Adam 1e-3, 25 epochs of 10 batches (32) on the same 300 noisy
                 examples. train epoch_loss 2.16 -> 0.078; validation epoch_loss 1.56 -> 0.89 (minimum,
                 epoch 3; 0.90 at 4 and 5) -> 1.16 (epoch 24). Onset: epoch 3 (+-3 epochs) in the epoch
                 series (the tracer's steps are batches: epoch 3 ends at batch 39).
"""

NONFINITE = ["nonfinite_loss", "nonfinite_tensor"]


def _label(healthy, expect=(), allow=()):
    return {"healthy": healthy, "expect": [dict(e) for e in expect], "allow": list(allow)}


def _e(rule, onset=None, tolerance=0, layer=None, unit=None):
    e = {"rule": rule, "onset": onset, "tolerance": tolerance}
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
    "tiny_val_set": _label(False, [_e("metric_volatility")], ["overfitting"]),
    "overfit_keras": _label(False, [
        _e("overfitting", 3, 3, unit="epoch"),
    ]),
}

for _name, _lab in LABELS.items():
    _lab["runs"] = [_name, f"{_name}/train", f"{_name}/validation"] if _name.endswith("_keras") else [_name]
del _name, _lab
