"""Rules for language-model pre-training and fine-tuning runs (issue 19): loss spikes that recover
told apart from divergence that does not, gradient-norm spikes and their link to loss spikes, the
fp16 loss scale, the learning-rate schedule, throughput, each on runs whose kind
(tb_plus.diagnostics.kinds) is lm_pretrain, or finetune without a class count (rules.lm_run). On those runs the supervised rules
divergence, oscillation and exploding_gradients stand aside (a recovered spike is no divergence);
overfitting (eval loss rising while the train loss falls) is the supervised rule's, which reads any
kind. The series come by role (RunData.series: "loss", "grad_norm", "loss_scale", "lr",
"throughput", "iteration_time"); thresholds are in config.THRESHOLDS (lm_*)."""

from __future__ import annotations

import math

import numpy as np

from tb_plus.diagnostics.rules import _Ctx, _finite_prefix, lm_run, rule
from tb_plus.diagnostics.signals import condense, fmt, rolling_median, trailing_median

LM_KINDS = ("lm_pretrain", "finetune")
MAX_POINTS = 4000  # longer series are condensed (means of equal-count bins) to this many points


def _lm(c):
    return lm_run(c.rd)


def _role(c, role):
    """The run's series of a role; the training losses fall back on RunData.losses."""
    out = list(c.rd.series(role))
    if not out and role == "loss":
        out = list(c.rd.losses)
    if not out and role == "lr":
        out = list(c.rd.lrs)
    return out


def _view(sig):
    """(step, value) of a series up to its first non-finite value, condensed."""
    s, v = _finite_prefix(sig)
    return condense(s, v, MAX_POINTS)


def _window(n):
    """The baseline window in points: a tenth of the series, 5 to 50."""
    return int(min(50, max(5, n // 10)))


def _rel_noise(v, base):
    """1.4826 x the median absolute relative residual of v around its baseline (robust)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = v / base - 1
    r = r[np.isfinite(r)]
    return float(1.4826 * np.median(np.abs(r - np.median(r)))) if len(r) else 0.0


def loss_spikes(c, sig):
    """The spikes of a training loss: [(i, ratio, recovered index or None)] on its condensed view
    (x, v), with the baseline and threshold. A spike: a point above (1 + rise) x the median of the
    points before it (rise: the larger of lm_spike_rise and lm_spike_noise x the loss's relative
    noise); it recovers at the first point from which the running median of 3 is back below
    (1 + rise / 2) x that baseline."""
    key = ("lm_spikes", sig.tag)
    if key in c.rd.cache:
        return c.rd.cache[key]
    x, v = _view(sig)
    n = len(v)
    out = (x, v, [], math.nan)
    if n >= 20:
        w = _window(n)
        base = trailing_median(v, w)
        rise = max(c.cfg.t("lm_spike_rise"), c.cfg.t("lm_spike_noise") * _rel_noise(v, rolling_median(v, 5)))
        sm3 = rolling_median(v, 3)
        spikes, i = [], max(int(c.cfg.t("lm_spike_skip") * n), 3)
        while i < n:
            b = base[i]
            if b > 0 and v[i] > (1 + rise) * b:
                j = i + 1
                while j < n and sm3[j] > (1 + rise / 2) * b:
                    j += 1
                spikes.append((i, float(v[i] / b), j if j < n else None, float(b)))
                # the points of one spike (and its recovery) are one spike
                i = max(j, i + 1)
                continue
            i += 1
        out = (x, v, spikes, rise)
    c.rd.cache[key] = out
    return out


@rule("lm_loss_spikes", "warning", "Loss spikes",
      """Language-model runs: the training loss jumps above (1 + rise) x the median of the points
      before it (a window of a tenth of the series, 5 to 50 points; rise: the larger of
      lm_spike_rise (0.3) and lm_spike_noise (6) x the loss's relative noise, 1.4826 x the median
      absolute relative residual around its running median of 5), after the first lm_spike_skip
      (5%) of the points. A spike recovers when the running median of 3 points is back below
      (1 + rise / 2) x that baseline; reported with its count, size and the steps each took to
      recover. Spikes that recover are this rule's (a warning when one reaches lm_spike_warn (1.5)
      x its baseline or there are 3 or more, else info), never divergence; a spike that has not
      recovered by the end is the lm_divergence rule's when the loss stays up. Onset: the first
      spike.""")
def lm_loss_spikes(c: _Ctx):
    if not _lm(c):
        return []
    out = []
    for sig in _role(c, "loss")[:1]:
        x, v, spikes, rise = loss_spikes(c, sig)
        rec = [s for s in spikes if s[2] is not None]
        if not rec:
            continue
        big = max(s[1] for s in rec)
        took = [float(x[s[2]] - x[s[0]]) for s in rec]
        open_ = len(spikes) - len(rec)
        desc = "; ".join(f"step {int(x[s[0]])}: {fmt(s[1])}x, back after {int(x[s[2]] - x[s[0]])} steps"
                         for s in rec[:5])
        severe = big >= c.cfg.t("lm_spike_warn") or len(rec) >= 3
        out.append(c.find(
            [sig.tag], x[rec[0][0]], x[rec[-1][2]],
            f"{sig.tag} spiked {len(rec)} time(s) and recovered ({desc}{'; ...' if len(rec) > 5 else ''}); "
            f"the largest {fmt(big)}x the loss before it"
            + (f"; {open_} more had not recovered by the end" if open_ else "") + ".",
            {"spikes": len(rec), "largest_ratio": big, "first_spike_step": int(x[rec[0][0]]),
             "median_steps_to_recover": float(np.median(took)), "longest_recovery": max(took),
             "threshold": 1 + rise, "not_recovered": open_},
            "Loss spikes that recover are common in language-model training, but each costs steps: look at the "
            "batches at those steps (corrupted, duplicated or extremely long documents), clip gradients "
            "(clip_grad_norm_ 1.0), lower the peak learning rate or lengthen the warm-up, lower Adam's beta2 "
            "(0.95) or raise its epsilon; if they repeat, skip the offending batches or restart from a "
            "checkpoint before the spike with the data order changed.",
            severity=None if severe else "info"))
    return out


@rule("lm_divergence", "error", "Loss diverges and does not recover",
      """Language-model runs: the training loss (running median over a twentieth of its points, 3
      to 51) ends (median of its last tenth) above its best by more than lm_diverge_share (0.5) of
      the progress made until the best and above lm_diverge_factor (1.3) x the best, and stays
      above best + that margin over its last tenth: the run lost its progress and did not recover
      (a spike that comes back is lm_loss_spikes'). Onset: walking back from the stretch above the
      margin, where the smoothed loss left best + a tenth of its rise.""")
def lm_divergence(c: _Ctx):
    if not _lm(c):
        return []
    out = []
    for sig in _role(c, "loss")[:1]:
        x, v = _view(sig)
        n = len(v)
        if n < 20:
            continue
        sm = rolling_median(v, int(min(51, max(3, n // 20))) | 1)
        bi = int(np.argmin(sm))
        best, first = float(sm[bi]), float(np.median(sm[:3]))
        tail = max(3, n // 10)
        final = float(np.median(sm[-tail:]))
        margin = max(c.cfg.t("lm_diverge_share") * (first - best), (c.cfg.t("lm_diverge_factor") - 1) * abs(best))
        if not (final > best + margin and np.all(sm[-tail:] > best + margin) and margin > 0):
            continue
        k = n - 1
        while k > bi and sm[k - 1] > best + margin:
            k -= 1
        j = k
        while j > bi and sm[j - 1] > best + 0.1 * (final - best):
            j -= 1
        nan_note = ""
        if len(_finite_prefix(sig)[0]) < len(sig.step):
            nan_note = " and then became NaN or Inf"
        out.append(c.find(
            [sig.tag], x[j], sig.step[-1],
            f"{sig.tag} rose from its best {fmt(best)} (step {int(x[bi])}) to {fmt(final)} at the end "
            f"(smoothed){nan_note}, from about step {int(x[j])}, and did not come back.",
            {"best_value": best, "best_step": int(x[bi]), "final_value": final, "first_value": first,
             "onset_step": int(x[j])},
            "The run diverged: restart from the last good checkpoint (before the onset) with a lower peak learning "
            "rate (2-10x) or a longer warm-up, gradient clipping (1.0), Adam beta2 0.95; check for bad data at the "
            "onset; in fp16 check the loss scale, or use bfloat16; add QK-layernorm or z-loss for "
            "attention-logit growth.",
        ))
    return out


@rule("lm_grad_spikes", "warning", "Gradient-norm spikes",
      """Language-model runs: the gradient norm jumps above lm_grad_spike_factor (5) x the median of
      the points before it (a tenth of the series, 5 to 50) and above exp(lm_grad_spike_noise (6) x
      its log-noise) x that median (log-noise: 1.4826 x the median absolute residual of the log norm
      around its running median of 5), after the first lm_spike_skip (5%) of the points. Each is
      linked to a loss spike (lm_loss_spikes) starting within lm_spike_link (3) logging intervals.
      A warning when there are lm_grad_spike_count (3) or more, or one comes with a loss spike;
      info otherwise. Onset: the first spike.""")
def lm_grad_spikes(c: _Ctx):
    if not _lm(c):
        return []
    out = []
    losses = _role(c, "loss")
    lsp = []
    if losses:
        lx, _, spikes, _ = loss_spikes(c, losses[0])
        lsp = [float(lx[s[0]]) for s in spikes]
    for sig in _role(c, "grad_norm")[:1]:
        x, v = condense(sig.step[np.isfinite(sig.value)], sig.value[np.isfinite(sig.value)], MAX_POINTS)
        n = len(v)
        if n < 20 or not (v > 0).any():
            continue
        base = np.maximum(trailing_median(v, _window(n)), 1e-30)
        lv = np.log(np.maximum(v, 1e-30))
        noise = float(1.4826 * np.median(np.abs(lv - rolling_median(lv, 5))))
        factor = max(c.cfg.t("lm_grad_spike_factor"), math.exp(c.cfg.t("lm_grad_spike_noise") * noise))
        idx = np.flatnonzero(v > factor * base)
        idx = idx[idx >= max(int(c.cfg.t("lm_spike_skip") * n), 3)]
        # one spike per burst of consecutive points
        idx = [int(i) for k, i in enumerate(idx) if k == 0 or i > idx[k - 1] + 1]
        if not idx:
            continue
        gap = float(np.median(np.diff(x))) if n > 1 else 1.0
        link = c.cfg.t("lm_spike_link") * gap
        linked = [i for i in idx if any(abs(s - x[i]) <= link for s in lsp)]
        severe = len(idx) >= c.cfg.t("lm_grad_spike_count") or bool(linked)
        worst = max(idx, key=lambda i: v[i] / base[i])
        out.append(c.find(
            [sig.tag], x[idx[0]], x[idx[-1]],
            f"{sig.tag} spiked {len(idx)} time(s) above {fmt(factor)}x its recent median, first at step "
            f"{int(x[idx[0]])}; the largest {fmt(v[worst])} ({fmt(v[worst] / base[worst])}x) at step {int(x[worst])}; "
            f"{len(linked)} of them come with a loss spike.",
            {"spikes": len(idx), "linked_to_loss_spikes": len(linked), "largest": float(v[worst]),
             "largest_ratio": float(v[worst] / base[worst]), "factor": factor},
            "Clip gradients (clip_grad_norm_ 1.0) if not already; spikes that come with loss spikes point at "
            "those batches or at a learning rate near the edge of stability (lower the peak rate, lengthen the "
            "warm-up, Adam beta2 0.95); spikes without loss spikes are usually harmless when clipped.",
            severity=None if severe else "info"))
    return out


@rule("lm_loss_scale", "error", "fp16 loss scale collapses",
      """Runs with a loss scale (Megatron's loss-scale, a GradScaler's scale) that starts above
      lm_scale_floor (1): an error when it falls to lm_scale_floor or below (every step overflows:
      the steps are skipped, or the gradients underflow); a warning when it is halved (or more)
      at least max(lm_scale_halvings (5), lm_scale_skip_share (2%) x the steps) times in the second
      half of the run and ends lower than it was at the half (a dynamic scaler halves only once
      per thousands of steps once it has found its level). Each drop by a factor f counts
      log2(f) halvings. Onset: the first halving of the fall that reaches the floor (after the
      last growth before it), or the first halving of the second half.""")
def lm_loss_scale(c: _Ctx):
    out = []
    floor = c.cfg.t("lm_scale_floor")
    for sig in _role(c, "loss_scale")[:1]:
        ok = np.isfinite(sig.value) & (sig.value > 0)
        s, v = sig.step[ok], sig.value[ok]
        if len(v) < 5 or v[0] <= floor:
            continue  # a static scale (bfloat16 runs log 1)
        halv = np.concatenate([[0.0], np.where(v[1:] < 0.75 * v[:-1], np.round(np.log2(v[:-1] / v[1:])), 0.0)])
        if v.min() <= floor:
            j = int(np.argmax(v <= floor))
            grows = np.flatnonzero(v[1:j + 1] > v[:j]) + 1
            after = np.flatnonzero((halv > 0) & (np.arange(len(v)) > (grows[-1] if len(grows) else 0)))
            after = after[after <= j]
            i = int(after[0]) if len(after) else j
            share = float(np.mean(halv[j:] > 0)) if j < len(v) else 0.0
            out.append(c.find(
                [sig.tag], s[i], s[-1],
                f"{sig.tag} fell from {fmt(v[i - 1] if i else v[0])} to {fmt(v[j])} (at or below {fmt(floor)}) by "
                f"step {int(s[j])}, {int(halv[i:j + 1].sum())} halvings from step {int(s[i])}; it ends at {fmt(v[-1])}.",
                {"start_scale": float(v[0]), "min_scale": float(v.min()), "floor_step": int(s[j]),
                 "halvings": int(halv.sum()), "final_scale": float(v[-1]), "overflow_share_after": share},
                "Every step overflows in float16: the updates are skipped (the loss stops improving) or, at the "
                "floor, the gradients are wrong. Look for an Inf/NaN source from the step it started (a log or "
                "division of zero, an attention mask added in float16, a layer whose activations exceed 65504); "
                "lower the learning rate; or train in bfloat16, which needs no loss scale."))
            continue
        h = len(v) // 2
        n_half = int(halv[h:].sum())
        steps_half = max(1.0, float(s[-1] - s[h]))
        need = max(c.cfg.t("lm_scale_halvings"), c.cfg.t("lm_scale_skip_share") * steps_half)
        if n_half >= need and v[-1] < v[h]:
            i = h + int(np.argmax(halv[h:] > 0))
            out.append(c.find(
                [sig.tag], s[i], s[-1],
                f"{sig.tag} was halved {n_half} times in the second half of the run (steps {int(s[h])}-{int(s[-1])}) "
                f"and fell from {fmt(v[h])} to {fmt(v[-1])}: gradients overflow float16 repeatedly.",
                {"halvings_second_half": n_half, "scale_at_half": float(v[h]), "final_scale": float(v[-1])},
                "Repeated overflows skip steps and mark a growing gradient or activation range: clip gradients, "
                "lower the learning rate, look for growing attention logits (QK-layernorm) or activations; or "
                "train in bfloat16.", severity="warning"))
    return out


@rule("lm_lr_schedule", "warning", "Learning-rate schedule problem",
      """Language-model runs: the learning rate (learning-rate, train/learning_rate, lr-<Optimizer>)
      is still growing at the end (its maximum within the last lm_lr_tail (10%) of the points and
      its last value above lm_lr_growth (1.5) x its value at the middle of the run: a warm-up that
      never reaches its peak, or a schedule that grows); or it is zero (below lm_lr_zero (1e-3) x
      its peak) over the last lm_lr_zero_share (20%) of the points or more (a schedule that ends
      too early: cosine and linear decays to zero reach it only at the last steps). Onset: the start
      of the growth that reaches the end, or the first step of the zero stretch.""")
def lm_lr_schedule(c: _Ctx):
    if not _lm(c):
        return []
    out = []
    for sig in _role(c, "lr")[:1]:
        ok = np.isfinite(sig.value)
        s, v = condense(sig.step[ok], sig.value[ok], MAX_POINTS)
        n = len(v)
        if n < 10 or not v.max() > 0:
            continue
        peak = float(v.max())
        pi = int(np.argmax(v))
        if pi >= (1 - c.cfg.t("lm_lr_tail")) * (n - 1) and v[-1] > c.cfg.t("lm_lr_growth") * v[n // 2]:
            j = n - 1
            while j > 0 and v[j - 1] < v[j]:
                j -= 1
            out.append(c.find(
                [sig.tag], s[j], s[-1],
                f"{sig.tag} is still growing at the end of the run: {fmt(v[n // 2])} at step {int(s[n // 2])}, "
                f"{fmt(v[-1])} at step {int(s[-1])} (its largest), rising since step {int(s[j])}.",
                {"lr_mid": float(v[n // 2]), "lr_end": float(v[-1]), "growth_from_step": int(s[j])},
                "The warm-up never reaches its peak (warm-up steps longer than the run: warm-up given in samples or "
                "tokens where steps are expected, or the total steps miscounted), or the schedule grows: check the "
                "scheduler's warm-up and total steps against the steps the run really makes (gradient "
                "accumulation and the number of devices change them)."))
            continue
        zero = v <= c.cfg.t("lm_lr_zero") * peak
        if zero[-1]:
            j = n - 1
            while j > 0 and zero[j - 1]:
                j -= 1
            if n - j >= c.cfg.t("lm_lr_zero_share") * n:
                out.append(c.find(
                    [sig.tag], s[j], s[-1],
                    f"{sig.tag} is zero (below {fmt(c.cfg.t('lm_lr_zero'))} x its peak {fmt(peak)}) from step "
                    f"{int(s[j])} to the end, {fmt(100 * (n - j) / n)}% of the run: those steps do not train.",
                    {"zero_from_step": int(s[j]), "share": (n - j) / n, "peak_lr": peak},
                    "The schedule ends before the run: its total steps are fewer than the steps made (epochs or "
                    "gradient accumulation miscounted, a scheduler stepped per micro-batch); set the decay's total "
                    "steps to the run's, or stop the run where the rate reaches zero."))
    return out


def _throughput(c):
    """[(sig, steps, tokens/s-like values)]: throughput series as they are, iteration times inverted."""
    out = []
    for role, invert in (("throughput", False), ("iteration_time", True)):
        for sig in _role(c, role)[:1]:
            ok = np.isfinite(sig.value) & (sig.value > 0)
            v = sig.value[ok]
            out.append((sig, sig.step[ok], 1.0 / v if invert else v, invert))
        if out:
            break
    return out


@rule("lm_throughput", "warning", "Throughput drops",
      """Language-model runs: the throughput (tokens or samples per second; or 1 / the iteration
      time), smoothed by a running median over a twentieth of its points (5 at least: a single slow
      step, an evaluation or a checkpoint, is no drop), falls below (1 - lm_throughput_drop) (a
      30% drop) x its median from the first lm_spike_skip (5%) of the points to there, and stays
      below for lm_throughput_hold (80%) of the points from there to the end, a tenth of the run or
      more. Onset: the first point of that stretch.""")
def lm_throughput(c: _Ctx):
    if not _lm(c):
        return []
    out = []
    for sig, s, v, inverted in _throughput(c):
        s, v = condense(s, v, MAX_POINTS)
        n = len(v)
        if n < 20:
            continue
        sm = rolling_median(v, max(5, n // 20) | 1)
        drop, hold = c.cfg.t("lm_throughput_drop"), c.cfg.t("lm_throughput_hold")
        a = max(1, int(c.cfg.t("lm_spike_skip") * n))
        for i in range(max(a + 5, n // 10), n - max(2, n // 10) + 1):
            ref = float(np.median(v[a:i]))
            if sm[i] < (1 - drop) * ref and np.mean(sm[i:] < (1 - drop) * ref) >= hold:
                after = float(np.median(v[i:]))
                what = "iteration time" if inverted else "throughput"
                shown = (f"{fmt(1 / ref)} s to {fmt(1 / after)} s per iteration" if inverted else
                         f"{fmt(ref)} to {fmt(after)}")
                out.append(c.find(
                    [sig.tag], s[i], s[-1],
                    f"The {what} ({sig.tag}) worsened from about step {int(s[i])}: {shown} "
                    f"({fmt(100 * (1 - after / ref))}% less throughput), to the end of the run.",
                    {"before": ref if not inverted else 1 / ref, "after": after if not inverted else 1 / after,
                     "drop": 1 - after / ref},
                    "Something added work or contention from that step: an evaluation, logging or profiling hook "
                    "that now runs every step, a data loader that fell behind (more workers, prefetch), memory "
                    "fragmentation or swapping, thermal throttling, another job on the same devices, or a slower "
                    "node in a distributed run; compare a profile before and after."))
                break
    return out


ORDER = ["lm_divergence", "lm_loss_spikes", "lm_grad_spikes", "lm_loss_scale", "lm_lr_schedule", "lm_throughput"]
