"""Reinforcement-learning rules (issue 19): they read a run's series by role (kinds.CONVENTIONS:
Stable-Baselines3, RLlib, CleanRL tag names) and return [] unless the run is of kind "rl".

Progress is judged by the episode return, smoothed (a running median over about a fifteenth of its
points, 3 to 51): high variance across episodes is normal and never a finding by itself. A return
"improved" when its smoothed peak rose above its start (the median of its first points) by at least
return_rise x |start| and return_noise x its noise (1.4826 x the median absolute residual around the
smoothed curve). Value, Q and policy losses chase moving targets and are not judged as supervised
losses (rundata keeps them in rl_losses; the rl_losses rule says so, at info).
"""

from __future__ import annotations

import math

import numpy as np

from tb_plus.diagnostics.rules import _Ctx, _edge, _finite_prefix, rule, streak
from tb_plus.diagnostics.signals import condense, fmt, rolling_median, smooth_window


def _rl(c: _Ctx) -> bool:
    return c.rd.kind == "rl"


def _view(c, sig, window=None):
    """(x, raw, smoothed) of a series' finite points, condensed, once per run."""
    key = ("rl_view", sig.tag, window)
    if key not in c.rd.cache:
        ok = np.isfinite(sig.value)
        x, v = condense(sig.step[ok], sig.value[ok])
        ok = np.isfinite(v)
        x, v = x[ok], v[ok]
        w = window(len(v)) if window else smooth_window(len(v))
        c.rd.cache[key] = (x, v, rolling_median(v, w))
    return c.rd.cache[key]


def _return_window(n):
    return int(min(51, max(3, n // 15))) | 1


def _first(c, role):
    """The first series of a role with at least rl_min_points finite points."""
    for s in c.rd.series(role):
        if np.isfinite(s.value).sum() >= c.cfg.t("rl_min_points"):
            return s
    return None


def _progress(c):
    """The return's figures, or None: {sig, x, v, sm, start, peak, peak_i, end, noise, rise, needed,
    improved}."""
    key = ("rl_progress",)
    if key in c.rd.cache:
        return c.rd.cache[key]
    sig = _first(c, "return")
    out = None
    if sig is not None:
        x, v, sm = _view(c, sig, _return_window)
        if len(sm) >= c.cfg.t("rl_min_points"):
            start, end = _edge(sm, True), _edge(sm, False)
            peak_i = int(np.argmax(sm))
            peak = float(sm[peak_i])
            noise = 1.4826 * float(np.median(np.abs(v - sm)))
            rise = peak - start
            needed = max(c.cfg.t("return_rise") * abs(start), c.cfg.t("return_noise") * noise, 1e-12)
            out = dict(sig=sig, x=x, v=v, sm=sm, start=start, peak=peak, peak_i=peak_i, end=end, noise=noise,
                       rise=rise, needed=needed, improved=rise >= needed)
    c.rd.cache[key] = out
    return out


def _return_at(p, step):
    """The smoothed return at a step (its last point at or before it; its first before it starts)."""
    i = int(np.searchsorted(p["x"], step, side="right")) - 1
    return float(p["sm"][max(i, 0)])


# --------------------------------------------------------------------------- the episode return

@rule("rl_return_collapse", "warning", "Episode return collapsed after a peak",
      """RL runs: the smoothed episode return improved (its peak above its start by return_rise
      (0.5) x |start| and return_noise (3) x its noise), then fell back by at least collapse_share
      (0.6) of that rise and stayed there until the end, for `patience` points. A dip that
      recovers is no finding. Onset: the last point before the final fall where the return was
      within a fifth of the rise from its peak.""")
def rl_return_collapse(c: _Ctx):
    if not _rl(c):
        return []
    p = _progress(c)
    if p is None or not p["improved"]:
        return []
    sm, x, n = p["sm"], p["x"], len(p["sm"])
    level = p["peak"] - c.cfg.t("collapse_share") * p["rise"]
    j = n
    while j > 0 and sm[j - 1] < level:
        j -= 1
    patience = max(int(c.cfg.t("patience_min")), int(math.ceil(c.cfg.t("rl_patience_share") * n)))
    if n - j < patience or j <= p["peak_i"] or p["end"] >= level:
        return []
    near = np.flatnonzero(sm[p["peak_i"]: j] >= p["peak"] - 0.2 * p["rise"])
    k = p["peak_i"] + int(near[-1]) if len(near) else p["peak_i"]
    lost = (p["peak"] - p["end"]) / p["rise"]
    tag = p["sig"].tag
    return [c.find(
        [tag], x[k], p["sig"].step[-1],
        f"{tag} rose from {fmt(p['start'])} to its peak {fmt(p['peak'])} (smoothed) at step {int(x[p['peak_i']])}, "
        f"then fell back to {fmt(p['end'])} from about step {int(x[k])} and stayed there: "
        f"{fmt(100 * lost)}% of the gain lost.",
        {"start": p["start"], "peak": p["peak"], "peak_step": int(x[p["peak_i"]]), "end": p["end"],
         "lost_share": lost, "points": n},
        "A policy that learned and then unlearned: lower the learning rate or anneal it to 0, take smaller "
        "policy steps (PPO: a smaller clip range, target_kl 0.01-0.03, fewer epochs; DQN: a larger replay "
        "buffer, slower target updates), look at the entropy (did it collapse first?) and the approx_kl at "
        "that step; keep the best policy (EvalCallback with a best-model path).",
    )]


@rule("rl_no_improvement", "warning", "Episode return does not improve",
      """RL runs: the smoothed episode return never rises above its start by return_rise (0.5) x
      |start| and return_noise (3) x its noise. Judged only when the run is long enough to expect
      progress: at least rl_min_points (10) points over at least rl_min_steps (20000) steps
      (environment steps for SB3, RLlib and CleanRL); a shorter run gets an info that says it is
      too short to tell. Onset: the first step.""")
def rl_no_improvement(c: _Ctx):
    if not _rl(c):
        return []
    p = _progress(c)
    if p is None or p["improved"]:
        return []
    tag, x = p["sig"].tag, p["x"]
    span = int(p["sig"].step[-1])
    short = span < c.cfg.t("rl_min_steps")
    ev = {"start": p["start"], "peak": p["peak"], "end": p["end"], "needed_rise": p["needed"],
          "noise": p["noise"], "points": len(x), "last_step": span}
    if short:
        return [c.find(
            [tag], x[0], span,
            f"{tag} has not improved yet ({fmt(p['start'])} at the start, {fmt(p['end'])} at the end, peak "
            f"{fmt(p['peak'])}), but {span} steps are too few to expect progress (the rule judges from "
            f"{int(c.cfg.t('rl_min_steps'))}).",
            ev, "Let it run longer before judging; compare with a known-good configuration of the same "
            "environment.", severity="info", title="Episode return: too short to judge")]
    return [c.find(
        [tag], x[0], span,
        f"{tag} does not improve over {span} steps: {fmt(p['start'])} at the start, peak {fmt(p['peak'])}, "
        f"{fmt(p['end'])} at the end (smoothed; a rise of {fmt(p['needed'])} was expected).",
        ev,
        "Check the reward first: its sign, and its scale (rewards in the thousands make the value loss dominate "
        "and gradient clipping freeze the policy: normalise with VecNormalize or scale the reward); then the "
        "learning rate (far too high or too low), the observation normalisation, that the actions reach the "
        "environment, and the entropy (a policy that became deterministic early stops exploring).",
    )]


# --------------------------------------------------------------------------- the policy

def _entropy(c):
    """(sig, sign): the entropy series, or minus the entropy (SB3's entropy_loss)."""
    s = _first(c, "entropy")
    if s is not None:
        return s, 1.0
    s = _first(c, "entropy_loss")
    return (s, -1.0) if s is not None else (None, 1.0)


@rule("rl_entropy_collapse", "warning", "Policy entropy collapses early",
      """RL runs: the policy's entropy (RLlib, CleanRL; minus Stable-Baselines3's train/entropy_loss),
      smoothed, falls below entropy_collapse (0.1) x its start (its first value, or the median of its first
      points when larger; a
      start at or below 0, as a continuous policy's can be, is not judged) for `patience` points and
      is still below twice that at the end, before the return made entropy_early (0.75) of its
      rise (or, with no return logged, in the first third of the run). A policy that becomes
      deterministic after it learned is no finding. Onset: the start of that stretch.""")
def rl_entropy_collapse(c: _Ctx):
    if not _rl(c):
        return []
    sig, sign = _entropy(c)
    if sig is None:
        return []
    x, v, sm = _view(c, sig)
    sm = sign * sm
    n = len(sm)
    # its start: the first value when larger (an untrained policy's entropy is its largest, and a
    # collapse can be under way by the third point)
    start = max(_edge(sm, True), sign * float(v[0]))
    if not (n >= c.cfg.t("rl_min_points") and start > 0):
        return []
    low = c.cfg.t("entropy_collapse") * start
    patience = max(int(c.cfg.t("patience_min")), int(math.ceil(c.cfg.t("rl_patience_share") * n)))
    i = streak(sm < low, patience)
    if i is None or _edge(sm, False) >= 2 * low:
        return []
    p = _progress(c)
    if p is not None:
        at = _return_at(p, x[i])
        progress = (at - p["start"]) / p["rise"] if p["improved"] else 0.0
        early = progress < c.cfg.t("entropy_early")
        when = f"when the return had made {fmt(100 * max(progress, 0))}% of its rise"
    else:
        early = x[i] - x[0] < (x[-1] - x[0]) / 3
        when = "in the first third of the run" if early else "after the first third of the run"
    if not early:
        return []
    what = "minus " + sig.tag if sign < 0 else sig.tag
    return [c.find(
        [sig.tag], x[i], sig.step[-1],
        f"The policy's entropy ({what}) fell from {fmt(start)} to {fmt(sm[i])} at about step {int(x[i])}, below "
        f"{fmt(100 * c.cfg.t('entropy_collapse'))}% of its start, {when}; {fmt(_edge(sm, False))} at the end.",
        {"start": start, "at_onset": float(sm[i]), "end": _edge(sm, False), "points": n},
        "The policy became (nearly) deterministic before it learned, and stops exploring: raise the entropy "
        "coefficient (ent_coef 0.01 for PPO/A2C; check it is not negative or wrongly signed), lower the learning "
        "rate; for SAC keep the automatic entropy tuning; check the initial log-std or logit scale.",
    )]


@rule("rl_ppo_update", "warning", "PPO updates move the policy too far",
      """RL runs: PPO's approx_kl above kl_high (0.05), or its clip fraction above clip_high (0.4),
      smoothed, on at least ppo_persist (25%) of the points and for `patience` points in a row:
      persistently out of the range PPO is tuned for (approx_kl typically below 0.02-0.05, the
      clip fraction 0.1-0.3; Stable-Baselines3 stops an update at 1.5 x target_kl when one is set,
      Spinning Up uses target_kl 0.01). Onset: the start of the first such stretch.""")
def rl_ppo_update(c: _Ctx):
    if not _rl(c):
        return []
    hits = []
    for role, thr in (("approx_kl", "kl_high"), ("clip_fraction", "clip_high")):
        sig = _first(c, role)
        if sig is None:
            continue
        x, v, sm = _view(c, sig)
        n = len(sm)
        hi = c.cfg.t(thr)
        mask = sm > hi
        patience = max(int(c.cfg.t("patience_min")), int(math.ceil(c.cfg.t("rl_patience_share") * n)))
        i = streak(mask, patience)
        if i is None or mask.mean() < c.cfg.t("ppo_persist"):
            continue
        hits.append((sig, role, hi, float(x[i]), float(np.median(v[mask])), float(mask.mean())))
    if not hits:
        return []
    parts = [f"{s.tag} above {fmt(hi)} on {fmt(100 * share)}% of the points (median {fmt(med)} there)"
             for s, role, hi, onset, med, share in hits]
    return [c.find(
        [h[0].tag for h in hits], min(h[3] for h in hits), hits[0][0].step[-1],
        "; ".join(parts) + f", from about step {int(min(h[3] for h in hits))}.",
        {h[1]: h[4] for h in hits} | {h[1] + "_share": h[5] for h in hits},
        "Each update changes the policy by more than PPO's trust region: lower the learning rate (or anneal it), "
        "use fewer epochs per rollout or larger minibatches, set target_kl (0.01-0.03) to stop an update early, "
        "and check the advantages are normalised.",
    )]


@rule("rl_explained_variance", "warning", "Value function explains nothing",
      """RL runs: the explained variance of the value predictions (1 - Var(returns - values) /
      Var(returns); 1 is perfect, 0 no better than a constant), smoothed, at or below ev_low (0)
      on ev_long (50%) of the points after a warm-up of ev_warmup (25%) of them, for `patience`
      points in a row, and over the last fifth (its median); at least rl_min_points (10) points after the warm-up. When the return still improves
      steadily (it improved and is above its start by half its rise at the end) the critic only
      lags: info. Onset: the start of that stretch.""")
def rl_explained_variance(c: _Ctx):
    if not _rl(c):
        return []
    sig = _first(c, "explained_variance")
    if sig is None:
        return []
    x, v, sm = _view(c, sig)
    w = int(math.ceil(c.cfg.t("ev_warmup") * len(sm)))
    x, sm = x[w:], sm[w:]
    n = len(sm)
    if n < c.cfg.t("rl_min_points"):
        return []
    mask = sm <= c.cfg.t("ev_low")
    patience = max(int(c.cfg.t("patience_min")), int(math.ceil(c.cfg.t("rl_patience_share") * n)))
    j = streak(mask, patience)
    if j is None or mask.mean() < c.cfg.t("ev_long") or _edge(sm, False, max(3, n // 5)) > c.cfg.t("ev_low"):
        return []
    p = _progress(c)
    learning = p is not None and p["improved"] and p["end"] >= p["start"] + 0.5 * p["rise"]
    med = float(np.median(sm[j:]))
    return [c.find(
        [sig.tag], x[j], sig.step[-1],
        f"{sig.tag} is at or below {fmt(c.cfg.t('ev_low'))} on {fmt(100 * mask.mean())}% of the points from about "
        f"step {int(x[j])} to the end (median {fmt(med)}, smoothed)" + ("; the return still improves, so the critic only lags." if learning else
                                    ": the value function predicts the returns no better than a constant."),
        {"median": med, "share": float(mask.mean()), "points": n - j},
        "Check the value targets: the reward scale (normalise rewards, e.g. VecNormalize), gamma and GAE lambda, "
        "the value loss coefficient (vf_coef) and the value network's size and learning rate; with very short "
        "rollouts (A2C's n_steps=5) the explained variance is noisy by itself.",
        severity="info" if learning else None,
    )]


# --------------------------------------------------------------------------- RL losses

@rule("rl_losses", "info", "RL losses are not judged as supervised losses",
      """RL runs: value, Q and policy losses regress targets that move with the policy and grow with the
      returns, so a rise is not divergence and a plateau is not a failure: they are kept out of the
      supervised-loss rules. A loss that rose over divergence_factor (1.5) x its best is said at info
      with this reason; a NaN or Inf in one is an error (the learner broke). Onset: the first
      non-finite step, else the step of the rise.""")
def rl_losses(c: _Ctx):
    if not _rl(c):
        return []
    out = []
    rose = []
    for sig in c.rd.rl_losses:
        bad = ~np.isfinite(sig.value)
        if bad.any():
            i = int(np.argmax(bad))
            out.append(c.find(
                [sig.tag], sig.step[i], sig.step[-1],
                f"{sig.tag} is not finite from step {int(sig.step[i])} ({int(bad.sum())} of {len(bad)} points).",
                {"first_step": int(sig.step[i]), "nonfinite_points": int(bad.sum())},
                "The learner broke: lower the learning rate, clip gradients (max_grad_norm), check the reward and "
                "observations for NaN/Inf and their scale (normalise them).",
                severity="error", title="RL loss is NaN or Inf"))
            continue
        step, value = _finite_prefix(sig)
        if len(value) < c.cfg.t("rl_min_points"):
            continue
        x, v, sm = _view(c, sig)
        best = np.fmin.accumulate(sm)
        f = c.cfg.t("divergence_factor")
        k = np.flatnonzero(sm > f * np.abs(best) + 1e-12)
        if len(k) and best[k[0]] > 0:
            rose.append((sig, int(x[k[0]]), float(np.max(sm) / best[k[0]])))
    if rose:
        out.append(c.find(
            [s.tag for s, _, _ in rose], min(r[1] for r in rose), None,
            "; ".join(f"{s.tag} rose x{fmt(g)} from its best" for s, _, g in rose) +
            ". Not judged as divergence: in reinforcement learning value, Q and policy losses regress targets that "
            "move with the policy and grow with the returns; the episode return, entropy, approx_kl and explained "
            "variance tell how training goes.",
            {"losses": len(rose)}, "Look at the episode return and the RL rules' findings instead."))
    return out
