"""The language-model rules (tb_plus/diagnostics/rules_lm.py) on healthy noisy synthetic series and
on broken ones: a spike that recovers within a few hundred steps is a spike, never divergence;
warm-up + cosine (or linear, or warm-up-stable-decay) is no schedule problem; a single slow step is
no throughput drop; the broken series give their finding at the right step.

The loss model: a byte-level language model's loss falls from ln(256) = 5.5 toward about 1.9 as
1.9 + 3.6 exp(-t / 150) (the progress follows the cumulative learning rate), each logged batch
scattering by a relative 3% (log-normal), rounded to float32 as TensorBoard stores it."""

import math

import numpy as np
import pytest

from tb_plus.diagnostics import Config
from tb_plus.diagnostics.rules import RULES, _Ctx
from tb_plus.diagnostics.rundata import RunData, Sig

SEEDS = [0, 1, 2, 3, 4]
N = 1500
LM_RULES = ["lm_divergence", "lm_loss_spikes", "lm_grad_spikes", "lm_loss_scale", "lm_lr_schedule", "lm_throughput"]


def sig(values, tag, steps=None):
    values = np.asarray(values, np.float32).astype(np.float64)
    steps = np.arange(1, len(values) + 1) if steps is None else np.asarray(steps)
    return Sig(tag, steps.astype(np.int64), values, 1e9 + np.arange(len(values), dtype=float))


def lm_rd(kind="lm_pretrain", **roles):
    """A RunData of `kind` whose role series are given (role=Sig); losses also as RunData.losses."""
    rd = RunData("r")
    rd.kind = kind
    for role, s in roles.items():
        rd.cache[("role", role)] = [s]
        rd.roles[role] = [s.tag]
    if "loss" in roles:
        rd.losses = [roles["loss"]]
    return rd


def run(rule, rd, cfg=None):
    return RULES[rule].fn(_Ctx(rd, cfg or Config(), rule))


def alarms(rule, rd):
    return [f for f in run(rule, rd) if f.severity in ("warning", "error")]


def schedule(n=N, kind="cosine", warmup=0.1, peak=3e-4, floor=0.1):
    t = np.arange(n)
    wu = max(1, int(warmup * n))
    f = np.clip((t - wu) / max(1, n - wu), 0, 1)
    if kind == "cosine":
        d = floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * f))
    elif kind == "linear":
        d = 1 - f
    elif kind == "wsd":
        d = np.where(f < 0.8, 1.0, np.maximum(0, 1 - (f - 0.8) / 0.2))
    else:
        d = np.ones(n)
    return peak * np.where(t < wu, (t + 1) / wu, d)


def lm_loss(rng, lr=None, n=N, noise=0.03):
    lr = schedule(n) if lr is None else lr
    progress = np.cumsum(lr) / np.sum(lr) * 8
    return (1.9 + 3.6 * np.exp(-progress)) * np.exp(noise * rng.standard_normal(n))


def grad_norm(rng, n=N, sigma=0.25):
    t = np.arange(n)
    return (0.4 + 3 * np.exp(-t / 60)) * np.exp(sigma * rng.standard_normal(n))


HEALTHY_LR = [("cosine", 0.1), ("linear", 0.05), ("wsd", 0.05), ("const", 0.02), ("cosine", 0.01)]


@pytest.mark.parametrize("seed", SEEDS)
def test_healthy_runs_give_no_warning(seed):
    rng = np.random.default_rng(seed)
    for kind, wu in HEALTHY_LR:
        lr = schedule(kind=kind, warmup=wu)
        for noise in (0.01, 0.03, 0.06):
            rd = lm_rd(loss=sig(lm_loss(rng, lr, noise=noise), "lm loss"), lr=sig(lr, "learning-rate"),
                       grad_norm=sig(grad_norm(rng), "grad-norm"))
            for r in LM_RULES + ["divergence", "oscillation", "exploding_gradients"]:
                assert not alarms(r, rd), (kind, noise, r, [f.message for f in alarms(r, rd)])


def _spiked(rng, at=(600,), size=2.5, recover=150):
    v = lm_loss(rng)
    for a in at:
        k = np.arange(N - a)
        v[a:] *= 1 + (size - 1) * np.exp(-k / (recover / 5))  # back within 1% after `recover` steps
    return v


@pytest.mark.parametrize("seed", SEEDS)
def test_a_spike_that_recovers_is_a_spike_not_divergence(seed):
    rng = np.random.default_rng(seed)
    loss = sig(_spiked(rng, at=(600,), recover=200), "lm loss")
    rd = lm_rd(loss=loss)
    spikes = alarms("lm_loss_spikes", rd)
    assert len(spikes) == 1 and abs(spikes[0].step - 601) <= 2
    assert spikes[0].evidence["spikes"] == 1 and spikes[0].evidence["longest_recovery"] <= 300
    assert not run("lm_divergence", rd) and not run("divergence", rd) and not run("oscillation", rd)
    # the same series in a supervised run: the supervised divergence rule is unchanged there
    sup = lm_rd(kind="supervised", loss=loss)
    assert not run("lm_loss_spikes", sup)


def test_a_small_single_spike_is_info():
    rng = np.random.default_rng(0)
    rd = lm_rd(loss=sig(_spiked(rng, at=(700,), size=1.4, recover=60), "lm loss"))
    f = run("lm_loss_spikes", rd)
    assert len(f) == 1 and f[0].severity == "info"


@pytest.mark.parametrize("seed", SEEDS)
def test_divergence_that_does_not_recover(seed):
    rng = np.random.default_rng(seed)
    v = lm_loss(rng)
    k = np.arange(N - 800)
    v[800:] = v[800:] + (5.5 - v[800:]) * (1 - np.exp(-k / 30))  # back to a uniform guess, for good
    rd = lm_rd(loss=sig(v, "lm loss"))
    f = alarms("lm_divergence", rd)
    assert len(f) == 1 and f[0].severity == "error" and abs(f[0].step - 801) <= 40
    assert not alarms("lm_loss_spikes", rd)


@pytest.mark.parametrize("seed", SEEDS)
def test_gradient_norm_spikes_linked_to_loss_spikes(seed):
    rng = np.random.default_rng(seed)
    g = grad_norm(rng)
    at = (500, 800, 1100)
    for a in at:
        g[a] *= 30
    rd = lm_rd(loss=sig(_spiked(rng, at=at, size=2.0, recover=100), "lm loss"), grad_norm=sig(g, "grad-norm"))
    f = alarms("lm_grad_spikes", rd)
    assert len(f) == 1 and abs(f[0].step - 501) <= 1
    assert f[0].evidence["spikes"] == 3 and f[0].evidence["linked_to_loss_spikes"] == 3
    one = grad_norm(rng)
    one[700] *= 30
    f = run("lm_grad_spikes", lm_rd(grad_norm=sig(one, "grad-norm")))
    assert len(f) == 1 and f[0].severity == "info"  # one unlinked spike: worth knowing


def _dynamic_scale(overflow_at, n=N, start=2.0 ** 16, interval=200):
    s, clean, out = start, 0, []
    for t in range(n):
        if overflow_at(t):
            s, clean = max(1.0, s / 2), 0
        else:
            clean += 1
            if clean >= interval:
                s, clean = s * 2, 0
        out.append(s)
    return np.array(out)


def test_loss_scale_healthy_collapsed_and_repeated():
    rng = np.random.default_rng(0)
    # healthy: overflows at the start (finding its level), then about once per growth interval
    ok = _dynamic_scale(lambda t: t < 4 or (t > 4 and t % 190 == 0))
    assert not run("lm_loss_scale", lm_rd(loss_scale=sig(ok, "loss-scale")))
    # bfloat16: a constant 1
    assert not run("lm_loss_scale", lm_rd(loss_scale=sig(np.ones(N), "loss-scale")))
    # every step overflows from 600: halved to the floor
    bad = _dynamic_scale(lambda t: t >= 600 or t < 3)
    f = run("lm_loss_scale", lm_rd(loss_scale=sig(bad, "loss-scale")))
    assert len(f) == 1 and f[0].severity == "error" and f[0].step == 601
    # overflowing repeatedly in the second half: a warning
    rep = _dynamic_scale(lambda t: t > 700 and rng.random() < 0.03, start=2.0 ** 30, interval=100)
    assert rep.min() > 1
    f = run("lm_loss_scale", lm_rd(loss_scale=sig(rep, "loss-scale")))
    assert len(f) == 1 and f[0].severity == "warning" and 750 <= f[0].step <= 900


def test_learning_rate_schedules():
    for kind, wu in HEALTHY_LR:
        assert not run("lm_lr_schedule", lm_rd(lr=sig(schedule(kind=kind, warmup=wu), "learning-rate")))
    never = schedule(warmup=3.0)  # warm-up three times the run's length
    f = run("lm_lr_schedule", lm_rd(lr=sig(never, "learning-rate")))
    assert len(f) == 1 and f[0].step == 1 and "growing" in f[0].message
    zero = schedule(n=int(N * 0.55), kind="linear", warmup=0.05)
    zero = np.concatenate([zero, np.zeros(N - len(zero))])
    f = run("lm_lr_schedule", lm_rd(lr=sig(zero, "learning-rate")))
    assert len(f) == 1 and abs(f[0].step - int(N * 0.55)) <= 2 and "zero" in f[0].message
    # HF-style logging every 10 steps: the same
    f = run("lm_lr_schedule", lm_rd(kind="finetune", lr=sig(zero[9::10], "train/learning_rate",
                                                              np.arange(10, N + 1, 10))))
    assert len(f) == 1 and abs(f[0].step - int(N * 0.55)) <= 10


@pytest.mark.parametrize("seed", SEEDS)
def test_throughput(seed):
    rng = np.random.default_rng(seed)
    tps = 50000 * np.exp(0.1 * rng.standard_normal(N))
    tps[::100] /= 6  # an evaluation or a checkpoint every 100 steps: single slow steps
    tps[300:320] *= 0.6  # a short slow stretch (another job for a while)
    assert not run("lm_throughput", lm_rd(throughput=sig(tps, "throughput")))
    assert not run("lm_throughput", lm_rd(iteration_time=sig(1024 / tps, "iteration-time")))
    slow = tps.copy()
    slow[900:] *= 0.5
    f = run("lm_throughput", lm_rd(throughput=sig(slow, "throughput")))
    assert len(f) == 1 and abs(f[0].step - 901) <= 30
    f = run("lm_throughput", lm_rd(iteration_time=sig(1024 / slow, "iteration-time")))
    assert len(f) == 1 and abs(f[0].step - 901) <= 30 and 0.4 < f[0].evidence["drop"] < 0.6


def test_lm_rules_leave_other_kinds_alone():
    rng = np.random.default_rng(0)
    lr = schedule(warmup=3.0)
    for kind in ("supervised", "rl", "unknown", None):
        rd = lm_rd(kind=kind, loss=sig(_spiked(rng), "loss"), lr=sig(lr, "lr"))
        assert not run("lm_loss_spikes", rd) and not run("lm_lr_schedule", rd)
    # a fine-tuned classifier (the Hugging Face Trainer's tags and a class count) is supervised
    rd = lm_rd(kind="finetune", loss=sig(_spiked(rng), "train/loss"))
    rd.num_classes = 3
    assert not run("lm_loss_spikes", rd)
    assert math.isfinite(rd.losses[0].value[0])
