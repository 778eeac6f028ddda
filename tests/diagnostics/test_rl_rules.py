"""The reinforcement-learning rules (tb_plus/diagnostics/rules_rl.py) on noisy synthetic series, as
Stable-Baselines3 (a 100-episode mean return, entropy_loss = minus the entropy) and CleanRL (one point
per episode, the entropy itself) log them: healthy ones (large variance across episodes, a dip that
recovers, entropy decaying as the policy learns, approx_kl and clip fraction in PPO's range with
outliers, explained variance negative only during a warm-up) give no warning or error; broken ones
give the finding at about the step where the problem starts. Each test draws from its own generator
for several seeds; values are rounded to float32 as TensorBoard stores them."""

import numpy as np
import pytest

from tb_plus.diagnostics import Config
from tb_plus.diagnostics.rules import RULES, _Ctx
from tb_plus.diagnostics.rundata import RunData, Sig

SEEDS = [0, 1, 2, 3, 4]
RL_RULES = ["rl_return_collapse", "rl_no_improvement", "rl_entropy_collapse", "rl_ppo_update",
            "rl_explained_variance", "rl_losses"]


def sig(values, steps, tag):
    v = np.asarray(values, np.float32).astype(np.float64)
    return Sig(tag, np.asarray(steps, np.int64), v, 1e9 + np.arange(len(v), dtype=float))


def rl_run(kind="rl", **series):
    """A RunData whose roles hold the given Sigs ({role: Sig})."""
    rd = RunData("r", kind=kind)
    for role, s in series.items():
        rd.roles[role] = [s.tag]
        rd.cache[("role", role)] = [s]
    return rd


def run(rule, rd, cfg=None):
    return RULES[rule].fn(_Ctx(rd, cfg or Config(), rule))


def alarms(rd, rules=RL_RULES):
    return [f for r in rules for f in run(r, rd) if f.severity in ("warning", "error")]


def learning_curve(t, start=22.0, end=450.0, tau=0.25):
    """The expected return at progress t in [0, 1]: a CartPole-like rise from a random policy's ~22."""
    return start + (end - start) * (1 - np.exp(-t / tau))


def episodes(rng, mean_of, total=100_000):
    """Per-episode (end step, return): each episode's return is its expected one times a heavy
    spread (x0.2 to x1.8), its length about its return (CartPole)."""
    steps, rets, s = [], [], 0
    while s < total:
        m = mean_of(s / total)
        r = m * rng.uniform(0.2, 1.8)
        s += int(max(8, abs(r)))
        steps.append(s)
        rets.append(r)
    return np.array(steps), np.array(rets)


def sb3_mean(steps, rets, every=2048):
    """rollout/ep_rew_mean: the mean of the last 100 episodes, logged every `every` steps."""
    out_s, out_v = [], []
    for s in range(every, int(steps[-1]) + 1, every):
        k = np.searchsorted(steps, s, side="right")
        if k:
            out_s.append(s)
            out_v.append(np.mean(rets[max(0, k - 100):k]))
    return np.array(out_s), np.array(out_v)


def returns(rng, mean_of, style, total=100_000):
    st, r = episodes(rng, mean_of, total)
    if style == "cleanrl":
        return sig(r, st, "charts/episodic_return")
    s, v = sb3_mean(st, r)
    return sig(v, s, "rollout/ep_rew_mean")


def healthy_extras(rng, n=50, total=100_000):
    """SB3-style PPO training series of a healthy run, logged once per rollout."""
    steps = np.linspace(total / n, total, n).astype(int)
    t = steps / total
    ent = 0.69 - 0.35 * t + 0.02 * rng.standard_normal(n)  # decays as the policy learns
    kl = np.exp(np.log(0.008) + 0.6 * rng.standard_normal(n))  # log-normal around 0.008
    kl[rng.choice(n, 3, replace=False)] = 0.09  # a few large updates
    clip = np.clip(0.12 + 0.05 * rng.standard_normal(n), 0, 1)
    ev = np.where(t < 0.15, -0.5 + 3 * t, 0.9 - 0.5 * np.exp(-5 * t)) + 0.1 * rng.standard_normal(n)
    ev[rng.choice(n, 2, replace=False)] = -3.0  # outliers
    return dict(entropy_loss=sig(-ent, steps, "train/entropy_loss"), approx_kl=sig(kl, steps, "train/approx_kl"),
                clip_fraction=sig(clip, steps, "train/clip_fraction"),
                explained_variance=sig(ev, steps, "train/explained_variance"))


# ------------------------------------------------------------------ healthy

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("style", ["sb3", "cleanrl"])
def test_healthy_noisy_runs_give_no_warning(seed, style):
    rng = np.random.default_rng(seed)
    curves = {
        "learns": learning_curve,
        "learns late": lambda t: learning_curve(np.clip(t - 0.4, 0, 1), tau=0.15),
        # a temporary dip to a third of the level that recovers within a tenth of the run
        "dip that recovers": lambda t: learning_curve(t) * (0.35 if 0.55 < t < 0.65 else 1.0),
        "negative returns": lambda t: -200 + 180 * (1 - np.exp(-t / 0.3)),
    }
    for label, curve in curves.items():
        rd = rl_run(**{"return": returns(rng, curve, style)}, **healthy_extras(rng))
        assert alarms(rd) == [], (label, [f.message for f in alarms(rd)])


def test_rules_are_silent_on_other_kinds():
    rng = np.random.default_rng(0)
    rd = rl_run(kind="supervised", **{"return": returns(rng, lambda t: 22.0 + 0 * t, "sb3")})
    assert all(run(r, rd) == [] for r in RL_RULES)


# ------------------------------------------------------------------ broken

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("style", ["sb3", "cleanrl"])
def test_collapse_after_a_peak(seed, style):
    rng = np.random.default_rng(seed)
    # learns to ~400 by 40% of the run, falls back to ~30 between 45% and 55%, and stays there
    curve = lambda t: learning_curve(np.minimum(t, 0.45), tau=0.12) if t < 0.45 else \
        max(30.0, learning_curve(0.45, tau=0.12) * (1 - (t - 0.45) / 0.1))
    rd = rl_run(**{"return": returns(rng, curve, style)})
    (f,) = alarms(rd)
    assert f.rule == "rl_return_collapse"
    # the 100-episode mean lags: long episodes near the peak take it some steps to forget
    assert 35_000 <= f.step <= 60_000, f.step


@pytest.mark.parametrize("seed", SEEDS)
def test_no_improvement_needs_a_long_enough_run(seed):
    rng = np.random.default_rng(seed)
    flat = lambda t: 22.0 + 0 * t
    (f,) = run("rl_no_improvement", rl_run(**{"return": returns(rng, flat, "sb3")}))
    assert f.severity == "warning" and f.step == 2048
    # 10 points over 5k steps: too short to expect progress, said at info
    st, r = episodes(rng, flat, 5000)
    s, v = sb3_mean(st, r, every=500)
    (f,) = run("rl_no_improvement", rl_run(**{"return": sig(v, s, "rollout/ep_rew_mean")}))
    assert f.severity == "info" and "too few" in f.message


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("writer", ["sb3", "cleanrl"])
def test_entropy_collapse_early(seed, writer):
    rng = np.random.default_rng(seed)
    n, total = 50, 100_000
    steps = np.linspace(total / n, total, n).astype(int)
    t = steps / total
    ent = np.maximum(0.69 * np.exp(-t / 0.05), 0.002) + 0.003 * rng.random(n)  # below 0.069 from t ~ 0.115
    tag = "train/entropy_loss" if writer == "sb3" else "losses/entropy"
    role = "entropy_loss" if writer == "sb3" else "entropy"
    s = sig(-ent if writer == "sb3" else ent, steps, tag)
    flat = returns(rng, lambda t: 22.0 + 3 * t, "sb3")
    (f,) = run("rl_entropy_collapse", rl_run(**{"return": flat, role: s}))
    assert f.severity == "warning" and 10_000 <= f.step <= 16_000, f.step
    # the same entropy fall after the return made its progress: a converged policy, no finding
    late = np.maximum(0.69 * np.exp(-np.clip(t - 0.7, 0, 1) / 0.05), 0.002)
    learned = returns(rng, lambda t: learning_curve(t, tau=0.1), "sb3")
    assert run("rl_entropy_collapse", rl_run(**{"return": learned, role: sig(-late if writer == "sb3" else late,
                                                                              steps, tag)})) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_ppo_updates_too_large(seed):
    rng = np.random.default_rng(seed)
    n, total = 60, 120_000
    steps = np.linspace(total / n, total, n).astype(int)
    kl = np.exp(np.log(0.008) + 0.5 * rng.standard_normal(n))
    kl[20:] = np.exp(np.log(0.2) + 0.5 * rng.standard_normal(n - 20))  # from step 42k the lr is raised 30x
    (f,) = run("rl_ppo_update", rl_run(approx_kl=sig(kl, steps, "train/approx_kl")))
    assert f.severity == "warning" and abs(f.step - steps[20]) <= 2 * total / n, f.step
    clip = np.clip(0.15 + 0.04 * rng.standard_normal(n), 0, 1)
    clip[20:] = 0.6 + 0.05 * rng.standard_normal(n - 20)
    (f,) = run("rl_ppo_update", rl_run(clip_fraction=sig(clip, steps, "train/clip_fraction")))
    assert abs(f.step - steps[20]) <= 2 * total / n


@pytest.mark.parametrize("seed", SEEDS)
def test_explained_variance_at_or_below_zero_for_long(seed):
    rng = np.random.default_rng(seed)
    n, total = 50, 100_000
    steps = np.linspace(total / n, total, n).astype(int)
    ev = -0.3 + 0.2 * rng.standard_normal(n)
    flat = returns(rng, lambda t: 22.0 + 0 * t, "sb3")
    (f,) = run("rl_explained_variance", rl_run(**{"return": flat},
                                               explained_variance=sig(ev, steps, "train/explained_variance")))
    assert f.severity == "warning" and f.step <= steps[n // 4 + 3]
    # the same while the return improves steadily: the critic lags, info only
    rd = rl_run(**{"return": returns(rng, learning_curve, "sb3")},
                explained_variance=sig(ev, steps, "train/explained_variance"))
    (f,) = run("rl_explained_variance", rd)
    assert f.severity == "info"


def test_rl_losses_are_info_and_nonfinite_is_an_error():
    steps = np.arange(0, 50_000, 500)
    rd = rl_run()
    grow = (10 + np.arange(len(steps))) ** 2.0
    rd.rl_losses = [sig(grow, steps, "train/value_loss")]
    (f,) = run("rl_losses", rd)
    assert f.severity == "info" and "not judged" in f.message.lower()
    broken = grow.copy()
    broken[60:] = np.nan
    rd.rl_losses = [sig(broken, steps, "train/value_loss")]
    (f,) = run("rl_losses", rd)
    assert f.severity == "error" and f.step == steps[60]
