"""Which kind of training a run is, told from its tags, and what each of its series is (its role).

    kind, roles = classify(tags, cfg)   # "rl", {"return": ["rollout/ep_rew_mean"], "entropy_loss": [...], ...}

Kinds: `supervised` (a loss or a metric, none of the signs below), `rl` (reinforcement learning: an
episode return is logged), `lm_pretrain` (language-model pre-training: a writer that is used for it
alone, or tokens or perplexity beside a loss; a loss scale says fp16, not which kind), `finetune` (the Hugging Face Trainer's
tags: train/epoch beside eval/loss; the Trainer is mostly used to fine-tune), `unknown` (none of
these). Rules that assume a kind run only on runs of that kind.

CONVENTIONS is the one table of writers' tag names, each checked against the writer's source or docs
(the `source` column). A row matches a tag when its pattern matches the whole tag, case-insensitively.
Users add rows with the diagnostics configuration's "conventions" (a list of
[writer, kind, role, pattern]), which are tried before these.
"""

from __future__ import annotations

import re

KINDS = ("supervised", "rl", "lm_pretrain", "finetune", "unknown")

# Roles a series can have. RL: `return` (mean episode return), `episode_length`, `entropy` (the
# policy's entropy), `entropy_loss` (minus the entropy: Stable-Baselines3's train/entropy_loss),
# `approx_kl`, `clip_fraction`, `explained_variance`, `value_loss`, `policy_loss`, `q_loss` (TD loss),
# `exploration`. Language models: `loss` (training), `eval_loss`, `grad_norm`, `loss_scale` (fp16),
# `throughput` (tokens, samples or steps per second), `iteration_time`, `tokens` (consumed so far),
# `perplexity`. Both: `lr`, `epoch`.
ROLES = ("return", "episode_length", "entropy", "entropy_loss", "approx_kl", "clip_fraction", "explained_variance",
         "value_loss", "policy_loss", "q_loss", "exploration", "loss", "eval_loss", "grad_norm", "loss_scale",
         "throughput", "iteration_time", "tokens", "perplexity", "lr", "epoch")

# (writer, kind the row implies or "" for none, role, pattern, source)
CONVENTIONS = (
    # Stable-Baselines3: logger keys are the TensorBoard tags (stable_baselines3/common/on_policy_algorithm.py,
    # ppo/ppo.py, a2c/a2c.py, dqn/dqn.py, sac/sac.py; wild-logs/sb3-airsim)
    ("Stable-Baselines3", "rl", "return", r"rollout/ep_rew_mean", "sb3 common/base_class.py _dump_logs"),
    ("Stable-Baselines3", "rl", "episode_length", r"rollout/ep_len_mean", "sb3 common/base_class.py"),
    ("Stable-Baselines3", "rl", "exploration", r"rollout/exploration[ _]rate", "sb3 dqn/dqn.py"),
    ("Stable-Baselines3", "rl", "entropy_loss", r"train/entropy_loss", "sb3 ppo/ppo.py, a2c/a2c.py"),
    ("Stable-Baselines3", "rl", "approx_kl", r"train/approx_kl", "sb3 ppo/ppo.py"),
    ("Stable-Baselines3", "rl", "clip_fraction", r"train/clip_fraction", "sb3 ppo/ppo.py"),
    ("Stable-Baselines3", "rl", "explained_variance", r"train/explained_variance", "sb3 ppo/ppo.py, a2c/a2c.py"),
    ("Stable-Baselines3", "rl", "value_loss", r"train/(value_loss|critic_loss)", "sb3 ppo, a2c, sac, td3"),
    ("Stable-Baselines3", "rl", "policy_loss", r"train/(policy_gradient_loss|policy_loss|actor_loss)",
     "sb3 ppo, a2c, sac, td3"),
    # (train/learning_rate is also the Hugging Face Trainer's, time/fps a common name: no sign of a kind)
    ("Stable-Baselines3", "", "lr", r"train/learning_rate", "sb3 common/base_class.py _update_learning_rate"),
    ("Stable-Baselines3", "", "throughput", r"time/fps", "sb3 common/base_class.py"),
    # RLlib through Ray Tune's TBXLogger: result keys under ray/tune/ (old API stack: info/learner/<policy>/
    # [learner_stats/]...; new stack: env_runners/, learners/<module>/) (ray/tune/logger/tensorboardx.py,
    # rllib/algorithms/ppo; wild-logs/raytune-rllib-hanabi)
    ("RLlib", "rl", "return", r"ray/tune/(env_runners/|sampler_results/)?episode_(reward|return)_mean",
     "ray tune/logger/tensorboardx.py, rllib metrics"),
    ("RLlib", "rl", "episode_length", r"ray/tune/(env_runners/|sampler_results/)?episode_len_mean", "rllib"),
    ("RLlib", "rl", "entropy", r"ray/tune/(info/learner|learners)/[^/]+/(learner_stats/)?entropy", "rllib ppo"),
    ("RLlib", "rl", "approx_kl", r"ray/tune/(info/learner|learners)/[^/]+/(learner_stats/)?(kl|mean_kl_loss)",
     "rllib ppo"),
    ("RLlib", "rl", "explained_variance", r"ray/tune/(info/learner|learners)/[^/]+/(learner_stats/)?vf_explained_var",
     "rllib ppo"),
    ("RLlib", "rl", "value_loss", r"ray/tune/(info/learner|learners)/[^/]+/(learner_stats/)?vf_loss", "rllib ppo"),
    ("RLlib", "rl", "policy_loss", r"ray/tune/(info/learner|learners)/[^/]+/(learner_stats/)?policy_loss", "rllib"),
    ("RLlib", "rl", "q_loss", r"ray/tune/(info/learner|learners)/[^/]+/(learner_stats/)?(q_loss|td_error|mean_td_error)",
     "rllib dqn"),
    ("RLlib", "rl", "lr", r"ray/tune/(info/learner|learners)/[^/]+/(learner_stats/)?(cur_lr|default_optimizer_lr)",
     "rllib"),
    # CleanRL: writer.add_scalar("charts/...", ...), ("losses/...", ...) (cleanrl/ppo.py, dqn.py, sac_continuous_action.py)
    ("CleanRL", "rl", "return", r"charts/episodic_return", "cleanrl ppo.py"),
    ("CleanRL", "rl", "episode_length", r"charts/episodic_length", "cleanrl ppo.py"),
    ("CleanRL", "rl", "entropy", r"losses/entropy", "cleanrl ppo.py"),
    ("CleanRL", "rl", "approx_kl", r"losses/approx_kl", "cleanrl ppo.py"),
    ("CleanRL", "rl", "clip_fraction", r"losses/clipfrac", "cleanrl ppo.py"),
    ("CleanRL", "rl", "explained_variance", r"losses/explained_variance", "cleanrl ppo.py"),
    ("CleanRL", "rl", "value_loss", r"losses/(value_loss|qf\d?_loss)", "cleanrl ppo.py, sac"),
    ("CleanRL", "rl", "policy_loss", r"losses/(policy_loss|actor_loss)", "cleanrl ppo.py, sac"),
    ("CleanRL", "rl", "q_loss", r"losses/td_loss", "cleanrl dqn.py"),
    ("CleanRL", "", "lr", r"charts/learning_rate", "cleanrl ppo.py"),
    ("CleanRL", "", "throughput", r"charts/sps", "cleanrl ppo.py"),
    # Megatron-LM: training_log() in megatron/training/training.py writes these names (and "<name> vs samples")
    ("Megatron-LM", "lm_pretrain", "loss", r"lm loss", "megatron/training/training.py training_log"),
    ("Megatron-LM", "lm_pretrain", "eval_loss", r"lm loss validation", "megatron training.py evaluate_and_print_results"),
    ("Megatron-LM", "lm_pretrain", "perplexity", r"lm loss validation ppl", "megatron training.py"),
    ("Megatron-LM", "lm_pretrain", "lr", r"learning-rate", "megatron training.py"),
    ("Megatron-LM", "lm_pretrain", "grad_norm", r"grad-norm", "megatron training.py"),
    ("Megatron-LM", "lm_pretrain", "loss_scale", r"loss-scale", "megatron training.py"),
    ("Megatron-LM", "lm_pretrain", "iteration_time", r"iteration-time", "megatron training.py"),
    ("Megatron-LM", "lm_pretrain", "throughput", r"throughput", "megatron training.py (--log-throughput)"),
    # NeMo (Lightning-based): self.log("reduced_train_loss"), "val_loss", "lr", "grad_norm", "train_step_timing"
    ("NeMo", "lm_pretrain", "loss", r"reduced_train_loss", "nemo collections/llm/gpt/model/base.py"),
    ("NeMo", "", "eval_loss", r"val_loss", "nemo megatron_gpt_model.py"),
    ("NeMo", "", "iteration_time", r"train_step_timing( in s)?", "nemo lightning/pytorch/callbacks/timer.py"),
    ("NeMo", "lm_pretrain", "tokens", r"consumed_samples", "nemo megatron_gpt_model.py"),
    # torchtitan: torchtitan/components/metrics.py
    ("torchtitan", "lm_pretrain", "loss", r"loss_metrics/global_avg_loss", "torchtitan components/metrics.py"),
    ("torchtitan", "lm_pretrain", "throughput", r"throughput\(tps\)|tps", "torchtitan components/metrics.py"),
    # Hugging Face Trainer: TensorBoardCallback writes "train/<key>" and "eval/<key>" (transformers
    # integrations/integration_utils.py rewrite_logs; wild-logs/hf-trainer-distilbert)
    ("HF Trainer", "", "loss", r"train/(train_)?loss", "transformers integration_utils.py rewrite_logs"),
    ("HF Trainer", "", "eval_loss", r"eval/loss", "transformers trainer.py evaluate"),
    ("HF Trainer", "", "lr", r"train/learning_rate", "transformers trainer.py _maybe_log_save_evaluate"),
    ("HF Trainer", "", "grad_norm", r"train/grad_norm", "transformers trainer.py"),
    ("HF Trainer", "", "epoch", r"train/epoch", "transformers trainer.py"),
    ("HF Trainer", "", "throughput", r"train/train_(samples|steps)_per_second", "transformers trainer.py"),
    # Lightning: user-named metrics; its callbacks' names (LearningRateMonitor "lr-<Optimizer>",
    # grad_norm "grad_2.0_norm_total"); wild-logs/lightning-*
    ("Lightning", "", "loss", r"train_loss(_step|_epoch)?", "lightning docs (self.log names in examples)"),
    ("Lightning", "", "eval_loss", r"val_loss(_epoch)?", "lightning docs"),
    ("Lightning", "", "lr", r"lr-[a-z0-9_]+(-\d+)?", "lightning callbacks/lr_monitor.py"),
    ("Lightning", "", "grad_norm", r"grad_[0-9.]+_norm_total", "lightning utilities/grads.py grad_norm"),
    ("Lightning", "", "epoch", r"epoch", "lightning loggers/tensorboard.py"),
    # any writer: language-model signs and generic names
    ("any", "lm_pretrain", "tokens", r"(.*[/_\-])?(tokens|num_tokens|tokens_seen|consumed_tokens)", "convention"),
    ("any", "lm_pretrain", "perplexity", r"(.*[/_\-])?(ppl|perplexity)", "convention"),
    ("any", "", "throughput", r"(.*[/_\-])?(tokens_per_sec(ond)?|tok/s|tps|samples_per_sec(ond)?|it/s|sps)",
     "convention"),
    ("any", "", "loss_scale", r"(.*[/_\-])?(loss[_\-]?scale|grad[_\-]?scale|amp[/_]scale)", "torch.amp GradScaler"),
    ("any", "", "grad_norm", r"(.*/)?(grad_norm|gradient_norm|global_grad_norm|total_grad_norm)", "convention"),
)


def _compiled(rows):
    """One regular expression for the rows, each row a named group tried in order (a tag is matched
    once, in C, whatever the number of rows), and the rows by group name."""
    rows = list(rows)
    alternatives = "|".join(f"(?P<r{i}>{row[3]})" for i, row in enumerate(rows))
    return re.compile(alternatives, re.IGNORECASE), {f"r{i}": row[:3] for i, row in enumerate(rows)}


_DEFAULT = None


def conventions(cfg=None):
    """(regex, rows by group) in use: the configuration's own rows first, then CONVENTIONS."""
    global _DEFAULT
    extra = tuple(getattr(cfg, "conventions", None) or ())
    if extra:
        return _compiled(extra + CONVENTIONS)
    if _DEFAULT is None:
        _DEFAULT = _compiled(CONVENTIONS)
    return _DEFAULT


MAX_TAG = 256  # longer tags are no convention's


def classify(tags, cfg=None):
    """(kind, {role: [tags]}, writers) of a run from its scalar tags. Each tag takes the role of the
    first row that matches it whole; `writers` lists the writers whose rows matched, most rows first."""
    rx, rows = conventions(cfg)
    roles, kinds, writers = {}, set(), {}
    for tag in tags:
        if len(tag) > MAX_TAG:
            continue
        m = rx.fullmatch(tag)
        if m is None:
            continue
        writer, kind, role = rows[m.lastgroup]
        roles.setdefault(role, []).append(tag)
        if kind:
            kinds.add(kind)
        writers[writer] = writers.get(writer, 0) + 1
    if "rl" in kinds or "return" in roles:
        kind = "rl"
    elif "lm_pretrain" in kinds or ("loss" in roles and ("tokens" in roles or "perplexity" in roles)):
        kind = "lm_pretrain"
    elif {"loss", "eval_loss", "epoch"} <= set(roles) and writers.get("HF Trainer", 0) >= 3:
        kind = "finetune"
    elif _supervised(tags, cfg):
        kind = "supervised"
    else:
        kind = "unknown"
    return kind, roles, sorted(writers, key=lambda w: -writers[w])


def _supervised(tags, cfg):
    if cfg is None:
        from tb_plus.diagnostics.config import Config

        cfg = Config()
    return any(cfg.matches("loss", t) or cfg.matches("metric", t) for t in tags)


def table_markdown() -> str:
    """CONVENTIONS as a Markdown table (the README's)."""
    lines = ["| writer | kind | role | tag (whole, case-insensitive) |", "|---|---|---|---|"]
    for w, k, role, p, _src in CONVENTIONS:
        lines.append(f"| {w} | {k or '-'} | {role} | `{p.replace('|', chr(92) + '|')}` |")
    return "\n".join(lines)
