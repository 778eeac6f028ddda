"""What the diagnostics look for, and their thresholds. Every value can be overridden with a JSON
file (`tb-plus diagnose --config FILE`, or Config.from_json):

    {"patterns": {"loss": "...regex..."}, "thresholds": {"divergence_factor": 3},
     "severity": {"stalled": "warning"}, "disable": ["metric_volatility"], "num_classes": 10}

Tag patterns are regular expressions searched (case-insensitively) in the tag; `validation_run`
and `train_run` in the last component of the run name (Keras writes <run>/train and <run>/validation).
"""

from __future__ import annotations

import dataclasses
import json
import re

PATTERNS = {
    # series that are losses (the AMP loss scale is not)
    "loss": r"loss(?![_\-]?scal)",
    # validation / evaluation series (in a tag, or as the last part of a run name)
    "validation": r"(^|[/_.\-\s])(val|valid|validation|eval|evaluation|test|dev|holdout)([/_.\-\s]|$)",
    "train_run": r"^(train|training)$",
    # a validation run: the last part of its name is one of these words (Keras: <run>/validation)
    "validation_run": r"^(val|valid|validation|eval|evaluation|test|dev|holdout)$",
    "lr": r"(^|[/_.\-])(lr|learning[_\-]?rate)([/_.\-]|$)",
    # evaluation metrics watched for volatility (on validation series)
    "metric": r"(^|[/_.\-])(acc|accuracy|auc|f1|precision|recall|map|bleu|iou|top1|top5|top_1|top_5)([/_.\-]|$)",
    # per-layer norms logged by hand (tracer data needs no pattern)
    # (grad_norm/fc1.weight, fc1.weight/grad_norm, gradients/fc1.weight/norm, norm/grad/fc1, Lightning's
    # grad_2.0_norm/fc1.weight; its grad_2.0_norm_total is no layer)
    "grad_norm": r"grad[a-z_]*[/_.\-]?norm|norm[/_.\-]?grad|grad[a-z]*/.+[/_.\-]norm$|grad_[0-9.]+_norm/",
    "weight_norm": r"(weight|param)s?[/_.\-]?norm|(weight|param)s?/.+[/_.\-]norm$",
    # the class count, as a scalar tag or an hparam key (HF Transformers: num_labels)
    "num_classes": r"(^|/)(num_classes|n_classes|nb_classes|classes|num_labels|n_labels)$",
    # episode returns: a reinforcement-learning run (Stable-Baselines3 rollout/ep_rew_mean, RLlib
    # episode_reward_mean / episode_return_mean, CleanRL charts/episodic_return), whose losses are
    # not judged as supervised losses
    "rl_return": r"(^|/)(ep_rew_mean|episode_reward(_mean)?|episode_return(_mean)?|episodic_return)$",
    # per-epoch means (Keras' epoch_loss): no initial value to check
    "epoch_aggregate": r"(^|[/_.\-])epoch[_\-]",
}

THRESHOLDS = {
    # divergence: the smoothed loss rises above its best so far by this factor and by this share
    # of the total improvement, for `patience` points
    "divergence_factor": 1.5,
    "divergence_share": 0.5,
    # plateau: relative improvement of the smoothed loss from its start to its end below this
    "plateau_improvement": 0.05,
    "plateau_min_points": 20,
    "chance_fraction": 0.85,  # ... or still above this share of ln(C) at the end
    # constant loss: identical values for this many points
    "constant_points": 30,
    # initial loss: outside [low, high] x ln(C)
    "initial_low": 0.5,
    "initial_high": 2.0,
    # ... unless within [summed_low, summed_high] x B x ln(C) for a power of two B >= summed_min_batch:
    # a loss summed over the batch (reduction='sum'; its per-example mean at initialisation is at
    # least ln(C) on average, a batch's some percent lower or higher)
    "summed_low": 0.9,
    "summed_high": 1.25,
    "summed_min_batch": 16,
    # oscillation: swings of the smoothed loss by at least this share of its level, this many times
    "oscillation_swing": 0.5,
    "oscillation_swings": 4,
    "oscillation_floor": 0.25,  # ... and by this share of the loss's improvement from start to best
    # ... and by this many times the loss's local noise (1.4826 x its median absolute residual
    # around the smoothed loss)
    "oscillation_noise": 1.5,
    # overfitting: validation loss above its minimum by this share, while the train loss still falls
    "overfit_rise": 0.15,
    "overfit_points": 3,
    # ... and by this many times the validation loss's noise over the root of its smoothing window
    "overfit_noise": 6.0,
    # vanishing gradients: first / last layer gradient norm below this, or any layer below the floor
    "vanishing_ratio": 1e-2,
    "vanishing_floor": 1e-8,
    # exploding gradients: a point this many times its running median is a spike; this many spikes;
    # or the gradient norm grows this many times from the start to the end
    "spike_factor": 10.0,
    "spike_count": 3,
    # ... and above exp(spike_noise x the log-norm's noise) x that median: spikes stand out of the
    # run's own step-to-step scatter (log-normal noise of sigma 0.7: 16x)
    "spike_noise": 4.0,
    "burst_factor": 10.0,  # ... or its first points are this many times its median over the run
    "burst_grad_to_weight": 1.0,  # ... and the gradient starts at least this large relative to the weights
    # (a gradient this many times the weights is a burst whatever the loss does next; below it, only when
    # the loss did not fall with the gradient: a small model converging fast starts with gradients as
    # large as its weights)
    "burst_grad_to_weight_alone": 10.0,
    "explode_growth": 100.0,
    # update ratio ||dW|| / ||W||: a layer below `frozen_ratio` is not updated; the run's median
    # outside [low, high] is off (healthy: about 1e-3)
    "frozen_ratio": 1e-7,
    "update_ratio_low": 1e-5,
    "update_ratio_high": 5e-2,
    # dead ReLU units / saturation: fraction above this, sustained
    "dead_fraction": 0.5,
    "saturated_fraction": 0.4,
    # weight norms: growth by this factor and still growing
    "weight_growth": 10.0,
    # evaluation metric volatility: median step-to-step change above this share of the metric's
    # level (accuracy-like metrics in [0, 1]: above this absolute change)
    "volatility": 0.1,
    "volatility_min_points": 6,
    # ... a jump of a share of a small validation set (values multiples of 1/n) also above this many
    # standard deviations of the change binomial noise alone makes, sqrt(2 p (1 - p) / n)
    "volatility_jump_noise": 3.0,
    # stalled: no data for this long (seconds), in a run written within `stall_horizon` seconds
    "stall_seconds": 1800.0,
    "stall_horizon": 6 * 3600.0,
    # reinforcement learning (rules_rl.py; chosen on the healthy runs of the ppo and dqn families of
    # demo/diagnostics_rl.py, checked on ppo_small and a2c, /work/shared/wild-logs' SB3 and RLlib runs and
    # the noisy synthetic series of tests/diagnostics/test_rl_rules.py):
    # a series is judged from this many (condensed) points; patience: this share of them, at least patience_min
    "rl_min_points": 10,
    "rl_patience_share": 0.05,
    # no improvement is judged from this many steps (environment steps: CartPole's PPO learns in 20-50k);
    # shorter runs get an info
    "rl_min_steps": 20000,
    # the return improved: its smoothed peak above its start by this share of |start| (healthy CartPole
    # runs: 3-20x their start; broken ones within 0.3x) and by this many times its noise
    "return_rise": 0.5,
    "return_noise": 3.0,
    # collapse: the smoothed return fell back by this share of its rise and stayed (healthy dips of the
    # 100-episode mean: under 0.3 of the rise)
    "collapse_share": 0.6,
    # entropy collapse: below this share of its start (healthy PPO/A2C on CartPole keep 0.5-0.9 of it
    # over their run), before the return made this share of its rise (a policy that turned
    # deterministic while its return still climbed slowly, as with a negative ent_coef, is early)
    "entropy_collapse": 0.1,
    "entropy_early": 0.75,
    # PPO: approx_kl / clip fraction above these on this share of the points (healthy runs: approx_kl
    # 0.002-0.02, clip fraction 0.02-0.25; the literature: approx_kl < 0.02-0.05, clip fraction 0.1-0.3)
    "kl_high": 0.05,
    "clip_high": 0.4,
    "ppo_persist": 0.25,
    # explained variance at or below this for this share of the points after a warm-up of this share
    "ev_low": 0.0,
    "ev_long": 0.5,
    "ev_warmup": 0.25,
    # --- language-model runs (rules_lm.py); chosen on the tuned-on families of demo/diagnostics_lm.py
    # (small_cosine, wide_linear) and checked on the held-out ones (deep_cosine, wsd)
    # loss spikes: a point above (1 + max(rise, noise x the loss's relative noise)) x the median of the
    # points before it (healthy byte-level LM batches of 512-1024 tokens scatter by 2-4% around
    # their running median: 6 x that is 12-24%, below the 30% floor); skipped: the first share of
    # the points (the first steps' loss falls faster than any baseline follows)
    "lm_spike_rise": 0.3,
    "lm_spike_noise": 6.0,
    "lm_spike_skip": 0.05,
    "lm_spike_warn": 1.5,  # ... a warning when a recovered spike reaches this many times its baseline
    "lm_spike_link": 3.0,  # a gradient-norm spike within this many logging intervals of a loss spike
    # divergence that does not recover: the smoothed loss ends above its best by this share of the
    # progress made until the best, and by this factor (healthy runs end at or near their best;
    # a recovered spike's loss comes back within 5%)
    "lm_diverge_share": 0.5,
    "lm_diverge_factor": 1.3,
    # gradient-norm spikes: this many times the recent median, and beyond exp(noise x log-noise);
    # a warning from this many of them (healthy runs' norms wander within 2-3x of their median)
    "lm_grad_spike_factor": 5.0,
    "lm_grad_spike_noise": 6.0,
    "lm_grad_spike_count": 3,
    # fp16 loss scale: at or below this floor (Megatron's --min-loss-scale default is 1); or halved
    # at least max(halvings, skip_share x steps) times in the second half (a working dynamic scaler
    # halves about once per growth interval, 1000-2000 steps, once it has found its level)
    "lm_scale_floor": 1.0,
    "lm_scale_halvings": 5,
    "lm_scale_skip_share": 0.02,
    # learning-rate schedule: still growing at the end (the maximum in the last tail share, and the
    # end above growth x the middle); or below zero x the peak over the last zero_share of the run
    # (a cosine or linear decay to zero is below 1e-3 x its peak only over its last 2%)
    "lm_lr_tail": 0.1,
    "lm_lr_growth": 1.5,
    "lm_lr_zero": 1e-3,
    "lm_lr_zero_share": 0.2,
    # throughput: the smoothed tokens/s (or 1 / iteration time) below (1 - drop) x its earlier median
    # for `hold` of the points to the end (CPU runs shared with other jobs wander by 10-20%)
    "lm_throughput_drop": 0.3,
    "lm_throughput_hold": 0.8,
    # general patience: consecutive (condensed) points a condition must hold; and the minimum
    "patience_share": 0.03,
    "patience_min": 3,
}

LEVELS = ("info", "warning", "error")


def level(name: str) -> int:
    """Rank of a severity (info 0, warning 1, error 2); 'never' ranks above every severity."""
    if name == "never":
        return len(LEVELS)
    if name not in LEVELS:
        raise ValueError(f"severity must be one of {LEVELS + ('never',)}, not {name!r}")
    return LEVELS.index(name)


@dataclasses.dataclass
class Config:
    patterns: dict = dataclasses.field(default_factory=lambda: dict(PATTERNS))
    thresholds: dict = dataclasses.field(default_factory=lambda: dict(THRESHOLDS))
    severity: dict = dataclasses.field(default_factory=dict)  # rule -> severity override
    disable: frozenset = frozenset()
    num_classes: int | None = None
    # extra rows of tb_plus.diagnostics.kinds.CONVENTIONS, tried first: (writer, kind, role, pattern)
    conventions: tuple = ()

    def __post_init__(self):
        self._re = {}
        for k, v in self.patterns.items():
            try:
                self._re[k] = re.compile(v, re.IGNORECASE)
            except re.error as e:
                raise ValueError(f"pattern {k!r} is not a valid regular expression: {e}") from None

    def matches(self, kind: str, text: str) -> bool:
        return self._re[kind].search(text) is not None

    def t(self, name: str) -> float:
        return self.thresholds[name]

    def key(self) -> str:
        """Identifies the configuration in caches."""
        return json.dumps([self.patterns, self.thresholds, self.severity, sorted(self.disable), self.num_classes,
                           [list(r) for r in self.conventions]], sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        if not isinstance(d, dict):
            raise ValueError("a diagnostics configuration is a JSON object")
        unknown = set(d) - {"patterns", "thresholds", "severity", "disable", "num_classes", "conventions"}
        if unknown:
            raise ValueError(f"unknown configuration keys: {sorted(unknown)}")
        patterns = dict(PATTERNS)
        for k, v in (d.get("patterns") or {}).items():
            if k not in PATTERNS or not isinstance(v, str):
                raise ValueError(f"unknown pattern {k!r} (known: {sorted(PATTERNS)}) or not a string")
            patterns[k] = v
        thresholds = dict(THRESHOLDS)
        for k, v in (d.get("thresholds") or {}).items():
            if k not in THRESHOLDS or not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ValueError(f"unknown threshold {k!r} (known: {sorted(THRESHOLDS)}) or not a number")
            thresholds[k] = float(v)
        from tb_plus.diagnostics.rules import RULES

        severity = {}
        for k, v in (d.get("severity") or {}).items():
            if k not in RULES:
                raise ValueError(f"unknown rule {k!r} (known: {sorted(RULES)})")
            level(v)
            severity[k] = v
        disable = d.get("disable") or []
        bad = [r for r in disable if r not in RULES]
        if bad:
            raise ValueError(f"unknown rules to disable: {bad}")
        nc = d.get("num_classes")
        if nc is not None and (not isinstance(nc, int) or nc < 2):
            raise ValueError(f"num_classes must be an integer >= 2, not {nc!r}")
        return cls(patterns, thresholds, severity, frozenset(disable), nc, _conventions(d.get("conventions") or []))

    @classmethod
    def from_json(cls, path: str) -> "Config":
        with open(path, encoding="utf-8") as f:
            try:
                d = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not JSON: {e}") from None
        return cls.from_dict(d)


def _conventions(rows) -> tuple:
    """Validated "conventions" rows: [writer, kind ("" or one of KINDS), role (one of ROLES), pattern]."""
    from tb_plus.diagnostics.kinds import KINDS, ROLES

    if not isinstance(rows, list) or len(rows) > 1000:
        raise ValueError("conventions must be a list of at most 1000 [writer, kind, role, pattern] rows")
    out = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 4 and all(isinstance(x, str) for x in row)):
            raise ValueError(f"a convention is [writer, kind, role, pattern], not {row!r}")
        writer, kind, role, pattern = row
        if kind and kind not in KINDS:
            raise ValueError(f"convention {row!r}: kind must be '' or one of {KINDS}")
        if role not in ROLES:
            raise ValueError(f"convention {row!r}: role must be one of {ROLES}")
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"convention {row!r}: pattern is not a valid regular expression: {e}") from None
        out.append((writer, kind, role, pattern))
    return tuple(out)
