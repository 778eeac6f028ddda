"""The RL diagnostics on real Stable-Baselines3 trainings (PPO on gymnasium's CartPole-v1, no download),
small enough for CI: a healthy one is taken for an RL run and gets no warning or error; one with a
negative entropy coefficient and a learning rate x10, whose policy measurably turns deterministic before it learns, gets the
entropy-collapse finding. What is asserted is what the run measurably did (the policy's entropy on
its own observations, measured here), not the scenario's name, so it holds for any seed and CPU."""

import os

import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")
gym = pytest.importorskip("gymnasium")
torch = pytest.importorskip("torch")


def _train(path, ent_coef, steps, lr=3e-4, seed=0):
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import configure

    torch.set_num_threads(1)
    entropy = []  # (step, mean entropy of the policy on the rollout's observations)

    class Measure(BaseCallback):
        def _on_step(self):
            return True

        def _on_rollout_end(self):
            buf = self.model.rollout_buffer
            obs = torch.as_tensor(buf.observations.reshape(-1, buf.observations.shape[-1]))
            with torch.no_grad():
                entropy.append((self.num_timesteps, float(self.model.policy.get_distribution(obs).entropy().mean())))

    env = gym.make("CartPole-v1")
    model = PPO("MlpPolicy", env, n_steps=256, batch_size=64, n_epochs=4, ent_coef=ent_coef, learning_rate=lr, seed=seed,
                device="cpu", verbose=0)
    model.set_logger(configure(str(path), ["tensorboard"]))
    model.learn(steps, callback=Measure())
    model.logger.close()
    env.close()
    return np.array(entropy)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tb_plus.diagnostics import Config, diagnose
    from tb_plus.diagnostics.rundata import gather
    from tb_plus.store import Logdir

    root = tmp_path_factory.mktemp("sb3")
    ent = {"healthy": _train(root / "healthy", 0.0, 10240), "ent_neg": _train(root / "ent_neg", -1.0, 8192, lr=3e-3)}
    ld = Logdir(str(root), cache_dir=str(tmp_path_factory.mktemp("cache")))
    ld.refresh()
    kinds = {r: gather(ld, r, Config(), ld.runs()).kind for r in ld.runs()}
    return ld, diagnose(ld), ent, kinds


def _severe(report, run):
    return [f for f in report.findings if f.run == run and f.severity in ("warning", "error")]


def test_healthy_ppo_is_rl_and_gets_no_warning(trained):
    ld, report, ent, kinds = trained
    assert sorted(ld.runs()) == ["ent_neg", "healthy"]
    assert kinds == {"healthy": "rl", "ent_neg": "rl"}
    assert _severe(report, "healthy") == [], [f.message for f in _severe(report, "healthy")]


def test_negative_entropy_coefficient_collapses_the_entropy(trained):
    ld, report, ent, kinds = trained
    steps, h = ent["ent_neg"][:, 0], ent["ent_neg"][:, 1]
    low = np.flatnonzero(h < 0.1 * h[0])
    # what the run did: with -1.0 x the entropy in its loss and lr 3e-3 the policy becomes deterministic
    # within a few rollouts, whatever the seed
    assert len(low) and steps[low[0]] <= 3072, ent["ent_neg"]
    hits = [f for f in _severe(report, "ent_neg") if f.rule == "rl_entropy_collapse"]
    assert hits, report.findings
    assert abs(hits[0].step - steps[low[0]]) <= 1024, (hits[0].step, ent["ent_neg"])
    assert os.path.basename(hits[0].tags[0]) == "entropy_loss"
