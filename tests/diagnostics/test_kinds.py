"""The kind of training a run is taken for, from its writers' tag names (tb_plus.diagnostics.kinds)."""

import os

import pytest

from tb_plus.diagnostics import Config
from tb_plus.diagnostics.kinds import CONVENTIONS, KINDS, ROLES, classify, table_markdown

# Tag sets as each writer logs them (names from their sources; see CONVENTIONS' source column).
WRITERS = {
    "sb3 ppo": (["rollout/ep_len_mean", "rollout/ep_rew_mean", "time/fps", "train/approx_kl", "train/clip_fraction",
                 "train/clip_range", "train/entropy_loss", "train/explained_variance", "train/learning_rate",
                 "train/loss", "train/policy_gradient_loss", "train/value_loss"], "rl"),
    "sb3 dqn": (["rollout/ep_len_mean", "rollout/ep_rew_mean", "rollout/exploration_rate", "train/loss",
                 "train/learning_rate"], "rl"),
    "rllib old stack": (["ray/tune/episode_reward_mean", "ray/tune/episode_len_mean",
                         "ray/tune/info/learner/default_policy/learner_stats/entropy",
                         "ray/tune/info/learner/default_policy/learner_stats/kl",
                         "ray/tune/info/learner/default_policy/learner_stats/vf_explained_var"], "rl"),
    "rllib new stack": (["ray/tune/env_runners/episode_return_mean", "ray/tune/learners/default_policy/entropy",
                         "ray/tune/learners/default_policy/mean_kl_loss"], "rl"),
    "cleanrl ppo": (["charts/episodic_return", "charts/episodic_length", "charts/learning_rate", "charts/SPS",
                     "losses/value_loss", "losses/policy_loss", "losses/entropy", "losses/approx_kl",
                     "losses/clipfrac", "losses/explained_variance"], "rl"),
    "megatron": (["lm loss", "lm loss validation", "learning-rate", "grad-norm", "loss-scale", "iteration-time",
                  "batch-size"], "lm_pretrain"),
    "nemo": (["reduced_train_loss", "val_loss", "lr", "grad_norm", "train_step_timing in s", "consumed_samples"],
             "lm_pretrain"),
    "torchtitan": (["loss_metrics/global_avg_loss", "loss_metrics/global_max_loss", "grad_norm", "lr",
                    "throughput(tps)", "mfu(%)"], "lm_pretrain"),
    "hf trainer": (["train/loss", "train/learning_rate", "train/grad_norm", "train/epoch", "eval/loss",
                    "eval/runtime", "eval/samples_per_second"], "finetune"),
    "lightning classifier": (["train_loss", "val_loss", "val_acc", "lr-Adam", "epoch"], "supervised"),
    "keras": (["epoch_loss", "epoch_accuracy", "evaluation_loss_vs_iterations"], "supervised"),
    "plots only": (["x/sin", "x/cos"], "unknown"),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_each_writer_is_taken_for_its_kind(writer):
    tags, kind = WRITERS[writer]
    assert classify(tags)[0] == kind


def test_roles_follow_the_writers_names():
    _, roles, writers = classify(WRITERS["sb3 ppo"][0])
    assert roles["return"] == ["rollout/ep_rew_mean"] and roles["entropy_loss"] == ["train/entropy_loss"]
    assert roles["approx_kl"] == ["train/approx_kl"] and roles["clip_fraction"] == ["train/clip_fraction"]
    assert writers[0] == "Stable-Baselines3"
    _, roles, _ = classify(WRITERS["megatron"][0])
    assert roles["loss"] == ["lm loss"] and roles["eval_loss"] == ["lm loss validation"]
    assert roles["loss_scale"] == ["loss-scale"] and roles["iteration_time"] == ["iteration-time"]


def test_a_language_model_is_told_by_its_signs_whatever_the_writer():
    assert classify(["loss", "tokens_seen", "lr"])[0] == "lm_pretrain"
    assert classify(["train/loss", "train/perplexity"])[0] == "lm_pretrain"
    assert classify(["train/loss", "amp/scale"])[0] == "supervised"  # a loss scale says fp16, not a language model
    assert classify(["train/loss", "trace/loss_scale", "trace/interval"])[0] == "supervised"  # the tracer's series


def test_users_extend_the_table_with_the_configuration():
    cfg = Config.from_dict({"conventions": [["our trainer", "rl", "return", r"metrics/reward_avg"]]})
    assert classify(["metrics/reward_avg", "loss"], cfg)[0] == "rl"
    assert classify(["metrics/reward_avg", "loss"])[0] == "supervised"
    assert cfg.key() != Config().key()
    for bad in ([["w", "nokind", "return", "x"]], [["w", "rl", "norole", "x"]], [["w", "rl", "return", "("]],
                [["w", "rl", "return"]], "x"):
        with pytest.raises(ValueError):
            Config.from_dict({"conventions": bad})


def test_long_tags_are_no_conventions_and_the_table_is_well_formed():
    assert classify(["x" * 300 + "lm loss"])[0] == "supervised"  # a loss, but no Megatron tag
    for writer, kind, role, pattern, source in CONVENTIONS:
        assert (kind == "" or kind in KINDS) and role in ROLES and writer and source


def test_readme_carries_the_table():
    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")
    assert table_markdown() in open(readme, encoding="utf-8").read()
