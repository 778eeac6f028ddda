"""Reinforcement-learning runs (episode returns logged, as Stable-Baselines3, RLlib and CleanRL do):
their value, Q and policy losses chase moving targets and grow while the agent improves, so they are
not judged as supervised losses (no divergence, oscillation or plateau on them)."""

import numpy as np
import pytest

torch_tb = pytest.importorskip("torch.utils.tensorboard")


def _write(path, returns_tag, prefix="train/"):
    rng = np.random.default_rng(0)
    w = torch_tb.SummaryWriter(str(path))
    for i, s in enumerate(range(0, 50000, 100)):
        ret = 10 + 490 * (1 - np.exp(-i / 150))  # CartPole returns growing to 500
        if returns_tag:
            w.add_scalar(returns_tag, float(ret + 5 * rng.standard_normal()), s)
        # the value loss follows the size of the returns it regresses: x2500 from start to end, noisy
        w.add_scalar(prefix + "value_loss", float((ret ** 2) / 100 * (1 + 0.5 * rng.random())), s)
        w.add_scalar(prefix + "policy_loss", float(rng.standard_normal()), s)
    w.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from tb_plus.diagnostics import diagnose
    from tb_plus.store import Logdir

    logdir = tmp_path_factory.mktemp("rl")
    _write(logdir / "sb3_a2c", "rollout/ep_rew_mean")
    _write(logdir / "rllib_ppo", "ray/tune/episode_reward_mean")
    # the same losses with nothing saying it is RL (neither returns nor an RL writer's tag names)
    _write(logdir / "no_returns", None, prefix="")
    ld = Logdir(str(logdir), cache_dir=str(tmp_path_factory.mktemp("cache")))
    ld.refresh()
    return diagnose(ld)


def _severe(report, run):
    return [f for f in report.findings if f.run == run and f.severity in ("warning", "error")]


@pytest.mark.parametrize("run", ["sb3_a2c", "rllib_ppo"])
def test_rl_losses_are_not_judged_as_supervised_losses(report, run):
    assert _severe(report, run) == [], report.findings


def test_without_returns_the_same_loss_reads_as_diverging(report):
    assert "divergence" in {f.rule for f in _severe(report, "no_returns")}
