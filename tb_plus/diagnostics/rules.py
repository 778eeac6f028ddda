"""The diagnostic rules. Each reads a RunData (tb_plus/diagnostics/rundata.py) and returns
Findings. Their formulas, defaults (tb_plus/diagnostics/config.py THRESHOLDS) and patience are in
each rule's description, which the README and /diagnostics' `rules` list show.

Conventions: a loss series is cleaned (one point per step), condensed to at most 1000 points
(means of equal-count bins) and smoothed with a running median over about 1/40th of its points
(3 to 51) before a rule looks at its trend; a condition must hold for `patience` consecutive points:
max(patience_min, patience_share x points), or from some point to the end of the series.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from tb_plus.diagnostics.signals import condense, fmt, num, rolling_median, smooth_window, streak, trailing_median

RULES = {}
LM_KINDS = ("lm_pretrain", "finetune")


def lm_run(rd) -> bool:
    """A language-model run, whose losses rules_lm.py judges: language-model pre-training, or
    fine-tuning (the Hugging Face Trainer's tags) without a class count (a fine-tuned classifier,
    whose model_config names a ...ForSequenceClassification, stays with the supervised rules)."""
    return rd.kind == "lm_pretrain" or (rd.kind == "finetune" and rd.num_classes is None)


@dataclasses.dataclass
class Finding:
    rule: str
    severity: str
    run: str
    tags: list
    step: int | None
    step_end: int | None
    title: str
    message: str
    evidence: dict
    prompt: str

    @property
    def id(self) -> str:
        return f"{self.run}|{self.rule}|{','.join(self.tags)}"

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["id"] = self.id
        d["evidence"] = {k: (num(v) if isinstance(v, (int, float, np.floating, np.integer)) else v)
                         for k, v in self.evidence.items()}
        return d


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    title: str
    description: str
    fn: object


def rule(name, severity, title, description):
    def wrap(fn):
        RULES[name] = Rule(name, severity, title, " ".join(description.split()), fn)
        return fn

    return wrap


class _Ctx:
    """What a rule needs besides the data: the configuration and a Finding builder."""

    def __init__(self, rd, cfg, rule_name):
        self.rd, self.cfg, self.rule = rd, cfg, RULES[rule_name]

    def find(self, tags, step, step_end, message, evidence, prompt, severity=None, title=None):
        sev = self.cfg.severity.get(self.rule.name, severity or self.rule.severity)
        return Finding(self.rule.name, sev, self.rd.run, list(tags), None if step is None else int(step),
                       None if step_end is None else int(step_end), title or self.rule.title, message, evidence,
                       prompt)


def _patience(cfg, n):
    return max(int(cfg.t("patience_min")), int(math.ceil(cfg.t("patience_share") * n)))


def _finite_prefix(sig):
    """The series up to its first non-finite value (that is the non-finite rule's business)."""
    bad = np.flatnonzero(~np.isfinite(sig.value))
    k = int(bad[0]) if len(bad) else len(sig.value)
    return sig.step[:k], sig.value[:k]


def _loss_view(c, sig):
    """(step, value) up to the first non-finite value and (x, v, smoothed) of them, once per run."""
    cache = c.rd.cache
    key = ("loss", sig.run, sig.tag)
    if key not in cache:
        step, value = _finite_prefix(sig)
        cache[key] = (step, value) + _smoothed(step, value)
    return cache[key]


def _smoothed(step, value):
    x, v = condense(step, value)
    ok = np.isfinite(v)
    x, v = x[ok], v[ok]
    return x, v, rolling_median(v, smooth_window(len(v)))


def _edge(v, head=True, k=None):
    """Median of the first (or last) k points: k = 5% of the series, 3 to 50."""
    k = k or int(min(50, max(3, len(v) // 20)))
    part = v[:k] if head else v[-k:]
    part = part[np.isfinite(part)]
    return float(np.median(part)) if len(part) else math.nan


# --------------------------------------------------------------------------- loss rules

@rule("nonfinite_loss", "error", "Loss is NaN or Inf",
      """A loss series (training or validation) holds a NaN or an infinite value. Onset: the first
      such step; evidence: how many points are non-finite and the last finite value before.""")
def nonfinite_loss(c: _Ctx):
    out = []
    for sig in c.rd.losses + c.rd.val_losses:
        bad = ~np.isfinite(sig.value)
        if not bad.any():
            continue
        i = int(np.argmax(bad))
        first = float(sig.value[i])
        before = sig.value[:i][np.isfinite(sig.value[:i])]
        kind = "NaN" if math.isnan(first) else "Inf"
        last_ok = f", after {fmt(before[-1])} at step {int(sig.step[i - 1])}" if len(before) else ""
        out.append(c.find(
            [sig.tag], sig.step[i], sig.step[-1],
            f"{sig.tag}{_in(sig)} is {kind} from step {int(sig.step[i])}{last_ok}; "
            f"{int(bad.sum())} of {len(bad)} points are not finite.",
            {"first_step": int(sig.step[i]), "first_value": first, "nonfinite_points": int(bad.sum()),
             "points": len(bad), "last_finite_value": float(before[-1]) if len(before) else math.nan},
            "Look at the batch and the loss at that step: a log or division of zero (add an epsilon, or use "
            "the logits form such as CrossEntropyLoss / BCEWithLogitsLoss), NaN or Inf in the inputs or labels. "
            "If the loss rose before it broke, lower the learning rate about 10x and clip gradients "
            "(clip_grad_norm_ 1.0); in float16 use a GradScaler or bfloat16.",
        ))
    return out


def _in(sig):
    return f" (run {sig.run})" if sig.run else ""


@rule("divergence", "error", "Loss diverges",
      """The smoothed training loss rises above its best value so far by at least
      (divergence_factor - 1) x |best| and by divergence_share of the improvement made until then
      (defaults 1.5 and 0.5), for `patience` points. An error when the loss is still that high at
      the end; when it came back below (a spike the run recovered from), a warning if it peaked
      above 4x its best, else info (worth knowing, no fault). Onset:
      walking back from the detection, the point where the rise passed a tenth of that margin.""")
def divergence(c: _Ctx):
    out = []
    if lm_run(c.rd):  # rules_lm.py judges language-model losses (spikes, divergence)
        return out
    f, share = c.cfg.t("divergence_factor"), c.cfg.t("divergence_share")
    for sig in c.rd.losses:
        step, value, x, v, sm = _loss_view(c, sig)
        n = len(sm)
        if n < 10:
            continue
        best = np.fmin.accumulate(sm)
        start = sm[0]
        margin = np.maximum((f - 1) * np.abs(best), share * np.maximum(start - best, 0))
        margin = np.maximum(margin, 1e-12)
        mask = sm > best + margin
        i = streak(mask, _patience(c.cfg, n))
        if i is None:
            continue
        j = i
        while j > 0 and sm[j - 1] > best[i] + margin[i] / 10:
            j -= 1
        peak = int(i + np.argmax(sm[i:]))
        nan_note = ""
        if len(step) < len(sig.step):
            nan_note = f", then it is not finite from step {int(sig.step[len(step)])}"
        # recovered: back below the divergence level by the end (a finite loss that was cut by a NaN
        # did not recover)
        back = np.flatnonzero(sm[peak:] <= best[i] + margin[i])
        recovered = len(back) > 0 and sm[-1] <= best[i] + margin[i] and not nan_note
        stay = (f"and came back below {fmt(best[i] + margin[i])} at step {int(x[peak + int(back[0])])}"
                if recovered else "and stayed up")
        out.append(c.find(
            [sig.tag], x[j], x[peak + int(back[0])] if recovered else sig.step[-1],
            f"{sig.tag} rose from its best {fmt(best[i])} to {fmt(sm[peak])} (x{fmt(sm[peak] / best[i]) if best[i] else 'inf'}, "
            f"smoothed) from about step {int(x[j])} {stay}{nan_note}.",
            {"best_value": best[i], "best_step": int(x[int(np.argmin(sm[: i + 1]))]), "peak_value": sm[peak],
             "peak_step": int(x[peak]), "detected_step": int(x[i]), "final_value": sm[-1],
             "recovered": int(recovered)},
            "Lower the learning rate about 10x (or add warm-up); clip gradients (clip_grad_norm_ 1.0); check that "
            "the learning-rate schedule does not grow it; normalise the inputs.",
            severity=(("info" if sm[peak] <= 4 * best[i] else "warning") if recovered else None),
        ))
    return out


@rule("plateau", "warning", "Loss does not converge",
      """The smoothed training loss changes by less than plateau_improvement (5%) of its starting
      level from start to end, whichever way it drifts, over at least plateau_min_points (20)
      points; or, when the class count C is known and the loss starts on the scale of a
      per-example cross-entropy (its start, or its first point when a burst follows, within
      [initial_low, initial_high] x ln(C); a summed loss starts
      batch-size times higher), it ends above chance_fraction (0.85) x ln(C), also when it rose a
      little (less than divergence_factor, 1.5 x: a model stuck at chance whose outputs spread
      out). Onset: the step from
      which the loss stayed within 2% of its final best.""")
def plateau(c: _Ctx):
    out = []
    for sig in c.rd.losses:
        step, value, x, v, sm = _loss_view(c, sig)
        n = len(sm)
        if n < c.cfg.t("plateau_min_points"):
            continue
        first, last = _edge(sm, True), _edge(sm, False)
        if not (math.isfinite(first) and math.isfinite(last)):
            continue
        improvement = (first - last) / abs(first) if first else 0.0
        ncls = c.cfg.num_classes or c.rd.num_classes
        chance = math.log(ncls) if ncls else None
        # the chance level means something only for a loss on the per-example scale (from its start)
        lo, hi = c.cfg.t("initial_low"), c.cfg.t("initial_high")
        per_example = chance is not None and (lo * chance <= first <= hi * chance or  # or from its first point
                                              (len(v) and lo * chance <= v[0] <= hi * chance))
        stuck = per_example and last >= c.cfg.t("chance_fraction") * chance
        if improvement <= -c.cfg.t("plateau_improvement") and \
                not (stuck and last < c.cfg.t("divergence_factor") * first):
            continue  # rising, not flat: the divergence rule's
        if improvement >= c.cfg.t("plateau_improvement") and not stuck:
            continue
        best = np.fmin.accumulate(sm)
        final = best[-1]
        within = best <= final + 0.02 * abs(final) + 1e-12
        i = int(np.argmax(within))
        why = ((f"improved only {fmt(100 * improvement)}%" if improvement >= 0 else
                f"rose {fmt(-100 * improvement)}%") + f" (from {fmt(first)} to {fmt(last)})"
               if improvement < c.cfg.t("plateau_improvement")
               else f"ends at {fmt(last)}, {fmt(100 * last / chance)}% of chance level ln({ncls}) = {fmt(chance)}")
        ev = {"start_value": first, "end_value": last, "improvement": improvement, "points": n}
        if chance is not None:
            ev.update(num_classes=ncls, chance_loss=chance)
        out.append(c.find(
            [sig.tag], x[i], sig.step[-1],
            f"{sig.tag} {why}; flat from about step {int(x[i])}.",
            ev,
            "If the weights barely move (see the update ratio), raise the learning rate about 10x; if gradients "
            "vanish, check the initialisation, add normalisation or residual connections, avoid saturating "
            "activations; check that the labels match the inputs (shuffle bugs) and that the loss is wired to "
            "the model's output.",
        ))
    return out


@rule("constant_loss", "warning", "Loss is constant",
      """The training loss is exactly the same value for constant_points (30) points in a row:
      exactly zero is likely a bug (a masked or empty loss, labels leaking; or an auxiliary loss
      that is switched off), any other constant means nothing trains (detached graph, zero
      learning rate): a warning either way (inferred, not certain). Onset: the first of them.""")
def constant_loss(c: _Ctx):
    out = []
    k = int(c.cfg.t("constant_points"))
    for sig in c.rd.losses:
        v = sig.value
        if len(v) < k:
            continue
        same = np.concatenate([[False], (v[1:] == v[:-1]) & np.isfinite(v[1:])])
        i = streak(same, k - 1, at_end_ok=False)
        if i is None:
            continue
        i = max(i - 1, 0)
        val = float(v[i])
        end = i
        while end + 1 < len(v) and v[end + 1] == val:
            end += 1
        zero = val == 0
        out.append(c.find(
            [sig.tag], sig.step[i], sig.step[end],
            f"{sig.tag} is exactly {fmt(val)} for {end - i + 1} points, steps {int(sig.step[i])} to {int(sig.step[end])}.",
            {"value": val, "points": end - i + 1},
            ("A loss of exactly zero is almost always a bug: an empty or fully masked batch, labels leaking into "
             "the inputs, a wrong reduction, or a loss computed on the wrong tensor." if zero else
             "Nothing changes: check that the loss depends on the parameters (no .detach() / .item() on the path), "
             "that optimizer.step() runs and the learning rate is not zero, and that the data loader yields "
             "different batches."),
            title="Loss is exactly zero" if zero else None,
        ))
    return out


@rule("initial_loss", "warning", "Initial loss far from ln(C)",
      """When the class count C is known (a scalar tag meta/num_classes; an hparam num_classes,
      num_labels, ..., also in the <run>/<timestamp> sub-run that add_hparams writes; or the
      configuration), the first training-loss value lies outside
      [initial_low, initial_high] x ln(C) (0.5 to 2), the cross-entropy of a uniform guess.
      Series of per-epoch means (tags matching `epoch_aggregate`, such as Keras' epoch_loss) are
      skipped: their first point comes after an epoch of training; so are series of fewer than
      patience_min (3) points (a summary value, such as add_hparams' hparam/ metrics, is no
      training curve). A loss that stays on a batch-times scale (the median of its first tenth
      above 3 x ln(C)) and starts within [initial_low, initial_high] x B x ln(C) for the run's
      batch size B (an hparam batch_size, train_batch_size, per_device_train_batch_size, the
      Hugging Face Trainer's args text, or the batch the tracer saw), or, when none is logged,
      within [summed_low, summed_high] (0.9 to 1.25) x B x ln(C) for a power of two B >=
      summed_min_batch (16), up to 65536, is what a loss summed over a batch of B
      (reduction='sum') does, not a bad initialisation (whose excess has no reason to land on a
      batch size, and falls to the per-example scale within steps): that is said at info only.
      A first loss within [summed_low, summed_high] of ln 2 or of C x ln 2 (C > 2) is a multi-label
      binary cross-entropy at chance (C independent sigmoids, averaged or summed over the labels):
      nothing is said. Onset: the first step.""")
def initial_loss(c: _Ctx):
    ncls = c.cfg.num_classes or c.rd.num_classes
    if not ncls or ncls < 2:
        return []
    chance = math.log(ncls)
    out = []
    for sig in c.rd.losses:
        if c.cfg.matches("epoch_aggregate", sig.tag):
            continue  # a per-epoch mean starts after a whole epoch of training
        v = sig.value[np.isfinite(sig.value)]
        if len(v) < c.cfg.t("patience_min"):
            continue
        l0 = float(v[0])  # the first step's loss: the model as initialised (later ones have learned)
        lo, hi = c.cfg.t("initial_low") * chance, c.cfg.t("initial_high") * chance
        if lo <= l0 <= hi:
            continue
        if ncls > 2 and _multilabel_start(c.cfg, l0, ncls):
            continue  # C independent sigmoids (binary cross-entropy per label) start at ln 2 per label
        batch = _summed_batch(c.cfg, v, chance, c.rd.batch_size)
        if batch:
            out.append(c.find(
                [sig.tag], sig.step[0], sig.step[min(4, len(sig.step) - 1)],
                f"{sig.tag} starts at {fmt(l0)}, {fmt(l0 / chance)} x ln({ncls}) = {fmt(chance)}: about {batch} x "
                f"the loss of a uniform guess, as a loss summed over batches of {batch} (reduction='sum') starts.",
                {"initial_loss": l0, "chance_loss": chance, "num_classes": ncls, "ratio": l0 / chance,
                 "summed_batch": batch},
                f"Nothing to do if the loss is summed over batches of {batch}. If it is a mean, the first predictions "
                "are confidently wrong: scale down the last layer's initial weights and normalise the inputs.",
                severity="info", title="Initial loss of a summed loss"))
            continue
        out.append(c.find(
            [sig.tag], sig.step[0], sig.step[min(4, len(sig.step) - 1)],
            f"{sig.tag} starts at {fmt(l0)}, {fmt(l0 / chance)} x ln({ncls}) = {fmt(chance)} expected for a uniform "
            f"guess over {ncls} classes.",
            {"initial_loss": l0, "chance_loss": chance, "num_classes": ncls, "ratio": l0 / chance},
            ("Too high: the first predictions are confidently wrong. Scale down (or zero) the last layer's "
             "initial weights, normalise the inputs, and check that the loss gets logits (not probabilities "
             "or log-probabilities twice)." if l0 > hi else
             "Too low for an untrained model: check for labels leaking into the inputs, a wrong class count, "
             "or a loss that is averaged over the wrong axis."),
        ))
    return out


def _multilabel_start(cfg, l0, ncls) -> bool:
    """Whether a first loss `l0` is what C = `ncls` independent sigmoid outputs at chance give, the
    multi-label (or one-vs-rest) binary cross-entropy: ln 2 averaged over the labels, or C x ln 2
    summed over them, within [summed_low, summed_high] (0.9 to 1.25) of it. A softmax loss that starts
    there by accident is far from ln C; a multi-label run gives no other sign of its loss's kind."""
    lo, hi = cfg.t("summed_low"), cfg.t("summed_high")
    return any(lo * ref <= l0 <= hi * ref for ref in (math.log(2), ncls * math.log(2)))


def _summed_batch(cfg, v, chance, known=None):
    """The batch size B when the finite loss values `v` look like a loss summed over batches of B:
    the first is within a band of B x ln(C), the cross-entropy of a uniform guess times the batch,
    and the loss stays on that scale (the median of its first tenth above 3 x ln(C): a mean loss
    that starts high from a bad initialisation or unnormalised inputs falls to the per-example
    scale within a few steps); else None. B is the run's logged batch size when it has one (band
    [initial_low, initial_high]: a first loss at chance varies with few classes), else a power of
    two, at least summed_min_batch, up to 65536 (band [summed_low, summed_high])."""
    ratio = float(v[0]) / chance if len(v) else math.nan
    if not ratio > 0 or float(np.median(v[: max(3, len(v) // 10)])) < 3 * chance:
        return None
    if known:
        lo, hi = cfg.t("initial_low"), cfg.t("initial_high")
        return int(known) if lo * known <= ratio <= hi * known else None
    if ratio > 1.5 * 2 ** 16:  # no batch is that large: a loss that starts that high is broken
        return None
    b = 2 ** int(round(math.log2(ratio)))
    ok = b >= cfg.t("summed_min_batch") and cfg.t("summed_low") * b <= ratio <= cfg.t("summed_high") * b
    return int(b) if ok else None


@rule("oscillation", "warning", "Loss oscillates",
      """The smoothed training loss swings up and down by at least oscillation_swing (50%) of its
      local level, oscillation_floor (25%) of the improvement from its start to its best and
      oscillation_noise (1.5) x the loss's local noise (1.4826 x the median absolute residual
      around the smoothed loss over 5 smoothing windows: small batches make a loss bimodal, and
      its running median flips between the modes), oscillation_swings (4) times or more (a
      zig-zag with hysteresis; a peak within the first smoothing window is where the loss starts
      to fall, no swing): the learning rate is likely too high. Onset: the first swing.""")
def oscillation(c: _Ctx):
    out = []
    if lm_run(c.rd):  # rules_lm.py judges language-model losses (spikes, divergence)
        return out
    swing = c.cfg.t("oscillation_swing")
    for sig in c.rd.losses:
        step, value, x, v, sm = _loss_view(c, sig)
        if len(sm) < 20:
            continue
        noise = c.cfg.t("oscillation_noise") * _smoothed_noise(v, sm)
        pivots = _zigzag(sm, swing, c.cfg.t("oscillation_floor") * max(sm[0] - float(np.min(sm)), 0.0), noise)
        if pivots and pivots[0] < smooth_window(len(sm)) and len(pivots) > 1 and sm[pivots[0]] > sm[pivots[1]]:
            pivots = pivots[1:]  # a peak within the first window: the start of the loss's first descent
        if len(pivots) < c.cfg.t("oscillation_swings"):
            continue
        amps = [abs(sm[b] - sm[a]) / max(abs(sm[a]), abs(sm[b]), 1e-12) for a, b in zip(pivots, pivots[1:])]
        out.append(c.find(
            [sig.tag], x[pivots[0]], x[pivots[-1]],
            f"{sig.tag} swings {len(pivots)} times by {fmt(100 * float(np.median(amps)) if amps else 0)}% or more of "
            f"its level (smoothed), from about step {int(x[pivots[0]])}.",
            {"swings": len(pivots), "median_swing": float(np.median(amps)) if amps else math.nan,
             "min_value": float(np.min(sm)), "max_value": float(np.max(sm))},
            "Lower the learning rate (try 3-10x lower) or add warm-up; with SGD, lower the momentum; increase the "
            "batch size if the batches are tiny; check that the data are shuffled.",
        ))
    return out


def _smoothed_noise(v, sm):
    """Per point, the noise of `v` around its running median `sm`: 1.4826 x the median absolute
    residual over the neighbouring 5 smoothing windows (robust, so that the jumps of a real
    oscillation do not count as noise). Not divided by the root of the window: with small batches
    a loss is bimodal (a batch with or without a wrong answer), and a running median then flips
    between the modes whole."""
    w = smooth_window(len(v))
    resid = np.abs(np.asarray(v, np.float64) - sm)
    return 1.4826 * rolling_median(resid, min(len(resid), 5 * w) | 1)


def _zigzag(sm, swing, floor=0.0, noise=None):
    """Indices where the series turns after moving by at least `swing` x the level at the turn, by
    at least `floor`, and by at least `noise` (per point: what noise alone moves it by)."""
    pivots = []
    ext_i, ext = 0, sm[0]
    direction = 0
    for i in range(1, len(sm)):
        y = sm[i]
        if direction >= 0 and y > ext:
            ext_i, ext = i, y
            if direction == 0:
                direction = 1
            continue
        if direction <= 0 and y < ext:
            ext_i, ext = i, y
            if direction == 0:
                direction = -1
            continue
        level = max(abs(ext), abs(y), 1e-12)
        if abs(y - ext) >= max(swing * level, floor, 0.0 if noise is None else max(noise[i], noise[ext_i])):
            if direction != 0:
                pivots.append(ext_i)
            direction = -1 if y < ext else 1
            ext_i, ext = i, y
    return pivots


@rule("overfitting", "warning", "Overfitting",
      """A validation loss, smoothed by a running median over a fifth of its points (3 at least;
      none under 9 points), rises above its minimum by more than overfit_rise (15%) and by more
      than overfit_noise (6) x its noise over the root of that window (the noise: 1.4826 x the
      median absolute residual around the smoothed loss: a small validation set scatters widely)
      for its last overfit_points (3) points or a fifth of them, whichever more, while the
      training loss keeps falling (smoothed, at least 2% lower at the end than at the validation
      minimum): the train/validation gap grows. Validation series are found by the `validation`
      pattern in tags or in a sibling run (<x>/validation beside <x>/train). Onset: the lowest
      validation point within the smoothing window around the smoothed minimum.""")
def overfitting(c: _Ctx):
    out = []
    if not c.rd.losses:
        return out
    k = int(c.cfg.t("overfit_points"))
    seen = set()
    for vsig in c.rd.val_losses:
        ok = np.isfinite(vsig.value)
        vs, vv = vsig.step[ok], vsig.value[ok]
        if len(vv) < k + 3:
            continue
        w = max(3, len(vv) // 5) | 1 if len(vv) >= 9 else 1
        smv = rolling_median(vv, w) if w > 1 else vv
        imin = int(np.argmin(smv))
        vmin = float(smv[imin])
        tail = smv[imin + 1:]
        last = max(k, len(vv) // 5)
        noise = 1.4826 * float(np.median(np.abs(vv - smv))) if w > 1 else 0.0
        margin = max(c.cfg.t("overfit_rise") * abs(vmin), c.cfg.t("overfit_noise") * noise / math.sqrt(w))
        if len(tail) < last or not np.all(tail[-last:] > vmin + margin):
            continue
        # the onset: the lowest point itself, within the smoothing window around the smoothed minimum
        lo_i = max(0, imin - w // 2)
        imin = lo_i + int(np.argmin(vv[lo_i: imin + w // 2 + 1]))
        tsig = _pair(vsig, c.rd.losses)
        if tsig.tag in seen:
            continue
        ts, tv, tx, _, tsm = _loss_view(c, tsig)
        if len(tsm) < 5:
            continue
        t_at = float(np.interp(vs[imin], tx, tsm))
        t_end = float(tsm[-1])
        if not t_end < t_at - 0.02 * abs(t_at):
            continue
        seen.add(tsig.tag)
        epochs = _epochs_note(c.rd, vs[imin], vs[-1]) if lm_run(c.rd) else ""
        out.append(c.find(
            [tsig.tag, vsig.tag], vs[imin], vs[-1],
            f"{vsig.tag}{_in(vsig)} is lowest ({fmt(vmin)}) at step {int(vs[imin])} and rises to {fmt(smv[-1])} while "
            f"{tsig.tag} keeps falling ({fmt(t_at)} -> {fmt(t_end)}); the gap grows from {fmt(vmin - t_at)} to "
            f"{fmt(smv[-1] - t_end)}{epochs}.",
            {"val_min": vmin, "val_min_step": int(vs[imin]), "val_end": float(smv[-1]), "train_at_val_min": t_at,
             "train_end": t_end, "gap_at_min": vmin - t_at, "gap_end": float(smv[-1]) - t_end},
            "Stop early at the validation minimum (keep that checkpoint); add regularisation (weight decay, "
            "dropout, data augmentation), use more data or a smaller model; check the training labels for noise.",
        ))
    return out


def _epochs_note(rd, at, end):
    """", at epoch X of Y" from a language-model run's epoch series (train/epoch), else ""."""
    for sig in rd.series("epoch")[:1]:
        ok = np.isfinite(sig.value)
        if ok.sum() >= 2:
            a, b = np.interp([at, end], sig.step[ok], sig.value[ok])
            return f" (from epoch {fmt(a)} of {fmt(b)}: repeated data)"
    return ""


def _pair(vsig, losses):
    """The training loss that goes with a validation loss: the same tag once the validation words
    are removed, else the first."""
    import re

    def base(tag):
        return re.sub(r"(^|[/_.\-])(val|valid|validation|eval|evaluation|test|dev|train|training)(?=[/_.\-]|$)", "",
                      tag.lower()).strip("/_.-")

    want = base(vsig.tag)
    for s in losses:
        if base(s.tag) == want:
            return s
    return losses[0]


# --------------------------------------------------------------------------- per-layer rules

def _weights_only(layers):
    """Indices of weight tensors (not biases or norm scales) when there are any, else all."""
    idx = [i for i, n in enumerate(layers.names) if not n.endswith("bias") and not n.endswith(".b")]
    return idx or list(range(len(layers)))


def _layer_medians(layers, idx):
    meds = []
    for i in idx:
        v = layers.value[i]
        v = v[np.isfinite(v)]
        meds.append(float(np.median(v)) if len(v) else math.nan)
    return np.array(meds)


@rule("nonfinite_tensor", "error", "NaN or Inf in weights or gradients",
      """The tracer counted NaN or Inf entries in a layer's gradient or weights (grad_nan, grad_inf,
      weight_nan, weight_inf > 0), or a hand-logged gradient norm is not finite. Onset: the first
      such step; the layers at that step are named in model order (input first), the first of
      which is where to look.""")
def nonfinite_tensor(c: _Ctx):
    rd = c.rd
    first = None  # (step, [(layer, stat, count)])
    for stat in ("grad_nan", "grad_inf", "weight_nan", "weight_inf"):
        lay = rd.layers.get(stat)
        if lay is None:
            continue
        for i, name in enumerate(lay.names):
            v = lay.value[i]
            bad = np.flatnonzero(v > 0)
            if not len(bad):
                continue
            s = int(lay.step[i][bad[0]])
            if first is None or s < first[0]:
                first = (s, [])
            if s == first[0]:
                first[1].append((i, name, stat, float(v[bad[0]])))
    if first is None and not rd.traced and "grad_norm" in rd.layers:
        lay = rd.layers["grad_norm"]
        for i, name in enumerate(lay.names):
            bad = np.flatnonzero(~np.isfinite(lay.value[i]))
            if len(bad):
                s = int(lay.step[i][bad[0]])
                if first is None or s < first[0]:
                    first = (s, [(i, name, "grad_norm", float(lay.value[i][bad[0]]))])
    if first is None:
        return []
    s, hits = first
    hits.sort()
    names = []
    for _, name, stat, _ in hits:
        if name not in names:
            names.append(name)
    tags = []
    for i, _, stat, _ in hits:
        t = rd.layers[stat].tags[i]
        if t not in tags and len(tags) < 4:
            tags.append(t)
    desc = ", ".join(f"{name} {stat}={fmt(v)}" for _, name, stat, v in hits[:6])
    return [c.find(
        tags, s, None,
        f"Non-finite values from step {s} in {len(names)} tensor(s), first in model order: {desc}.",
        {"first_step": s, "layers": len(names), "first_layer": names[0]},
        f"Start at {names[0]}: look for a division by zero, log or sqrt of a non-positive value, or an overflow "
        "in the forward pass there; lower the learning rate and clip gradients if the weights grew first; in "
        "float16 use a GradScaler (it skips steps with Inf gradients) or bfloat16.",
    )]


@rule("vanishing_gradients", "warning", "Vanishing gradients",
      """With per-layer gradient norms (tracer grad_norm of weight tensors, or hand-logged tags
      matching `grad_norm`, in model order): the median gradient norm of the first layer is below
      vanishing_ratio (1e-2) x that of the last layer and the norms decay toward the input
      (rank correlation of layer index and log norm >= 0.6); or some layer's median gradient norm
      is below vanishing_floor (1e-8) while another layer's is above 1e-4. Onset: the first step of
      a `patience` run of steps where the condition holds.""")
def vanishing_gradients(c: _Ctx):
    lay = c.rd.layers.get("grad_norm")
    if lay is None or len(lay) < 2:
        return []
    idx = [i for i in _weights_only(lay) if np.isfinite(lay.value[i]).any()]
    if len(idx) < 2:
        return []
    meds = _layer_medians(lay, idx)
    ok = np.isfinite(meds)
    idx, meds = [i for i, o in zip(idx, ok) if o], meds[ok]
    if len(idx) < 2:
        return []
    out = []
    thr = c.cfg.t("vanishing_ratio")
    floor = c.cfg.t("vanishing_floor")
    first, last = meds[0], meds[-1]
    logm = np.log10(np.maximum(meds, 1e-30))
    rho = _spearman(np.arange(len(meds)), logm) if len(meds) >= 3 else 1.0
    if last > 0 and first / last < thr and rho >= 0.6:
        a, b = idx[0], idx[-1]
        steps = lay.step[b]
        ra = np.interp(steps, lay.step[a], lay.value[a]) if lay.step[a] is not steps else lay.value[a]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = ra / lay.value[b]
        n = len(steps)
        s0 = streak(ratio < thr, _patience(c.cfg, n))
        s0 = 0 if s0 is None else s0
        out.append(c.find(
            [lay.tags[a], lay.tags[b]], steps[s0], steps[-1],
            f"The gradient norm of {lay.names[a]} (first layer, median {fmt(first)}) is {fmt(first / last)} x that of "
            f"{lay.names[b]} (last layer, {fmt(last)}); norms fall toward the input by {fmt(_decades(meds))} "
            f"decades over {len(meds)} layers.",
            {"first_layer": lay.names[a], "first_grad_norm": first, "last_layer": lay.names[b],
             "last_grad_norm": last, "ratio": first / last, "rank_correlation": rho, "layers": len(meds)},
            "The early layers barely learn. Use ReLU-family activations instead of sigmoid/tanh in deep stacks, "
            "He/Xavier initialisation, normalisation layers (BatchNorm/LayerNorm) or residual connections; a "
            "shallower model may do as well.",
        ))
    tiny = [k for k, m in enumerate(meds) if m < floor]
    if tiny and np.nanmax(meds) > 1e-4 and not out:
        names = [lay.names[idx[k]] for k in tiny]
        k0 = tiny[0]
        steps = lay.step[idx[k0]]
        s0 = streak(lay.value[idx[k0]] < floor, _patience(c.cfg, len(steps)))
        s0 = 0 if s0 is None else s0
        out.append(c.find(
            [lay.tags[idx[k]] for k in tiny[:4]], steps[s0], steps[-1],
            f"No gradient reaches {len(names)} layer(s) (median gradient norm below {fmt(floor)}): "
            f"{', '.join(names[:5])}{'...' if len(names) > 5 else ''}.",
            {"layers": len(names), "first_layer": names[0], "grad_norm": float(meds[k0]),
             "largest_grad_norm": float(np.nanmax(meds))},
            "Check that these layers are on the loss's path (no .detach(), no integer casts), that their units "
            "are not all dead or saturated upstream, and that they were not initialised to zero (symmetric units "
            "get identical, possibly zero, gradients).",
        ))
    return out


def _decades(meds):
    return float(np.log10(max(meds[-1], 1e-30)) - np.log10(max(meds[0], 1e-30)))


def _spearman(a, b):
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _total_grad(lay):
    """The global gradient norm per step (at the first layer's steps) from per-layer norms: the
    tracer's share their steps; hand-logged ones are interpolated onto the first one's."""
    base = lay.step[0]
    cols = []
    for s, v in zip(lay.step, lay.value):
        if s is base or (len(s) == len(base) and np.array_equal(s, base)):
            cols.append(v)
        else:
            ok = np.isfinite(v)
            cols.append(np.interp(base, s[ok], v[ok], left=np.nan, right=np.nan) if ok.sum() >= 2
                        else np.full(len(base), np.nan))
    stack = np.stack(cols, axis=1)
    with np.errstate(invalid="ignore"):
        sq = np.nansum(stack ** 2, axis=1)
    allnan = np.all(np.isnan(stack), axis=1)
    return np.where(allnan, np.nan, np.sqrt(sq))


@rule("exploding_gradients", "warning", "Exploding gradients",
      """The global gradient norm (the root of the sum of squares of the per-layer norms, from the
      tracer or hand-logged gradient-norm tags; a single tag as it is) has spike_count (3) or more
      spikes above spike_factor (10) x both its median over the run and its running median (centred,
      or over the points just before it: the start of a burst of several steps), and above
      exp(spike_noise x its log-noise) x them (spike_noise 4; the log-noise: 1.4826 x the median
      absolute residual of the log norm around its running median; a norm whose batches scatter by
      a log-normal sigma of 0.7 has steps 10x its median by chance, and 5x blips that noise lifts
      past 10x),
      spikes also above its scale at initialisation (the largest of its first 3 points: a converged
      run's tiny norm makes a blip back to the starting scale look like a spike),
      or starts (median of its first 3 points) above burst_factor (10) x its median over the run
      while larger than the weights themselves (global gradient norm / global weight norm >=
      burst_grad_to_weight, 1; tracer data only; divided by B for a loss summed over batches of B,
      see initial_loss), and either at least burst_grad_to_weight_alone (10) x the weights or the
      training loss had not made half its improvement by the time the gradient fell back below
      burst_factor x its median (a small model converging fast starts with gradients as large as its
      weights and loses them with its loss): a burst at the start (unnormalised inputs, a bad
      initialisation), or grows
      explode_growth (100) times from its start to its end. Onset: the first spike, the first
      step, or the first step above 10x the starting level.""")
def exploding_gradients(c: _Ctx):
    if lm_run(c.rd):  # rules_lm.py: lm_grad_spikes
        return []
    lay = c.rd.layers.get("grad_norm")
    if lay is None or not len(lay):
        return []
    if len(lay) == 1:
        series = [(lay.tags[0], lay.tags[:1], lay.step[0], lay.value[0])]
    else:
        series = [("global gradient norm", lay.tags[:1], lay.step[0], _total_grad(lay))]
    out = []
    for label, tags, step, value in series:
        ok = np.isfinite(value)
        x, v = condense(step[ok], value[ok])
        n = len(v)
        if n < 10:
            continue
        # a spike stands out from its neighbourhood and from the run as a whole (a converged run's
        # tiny gradients make ordinary batches look like spikes against their running median)
        # ... and against the points just before it (a centred median would absorb a burst of
        # several steps, whose start is then not a spike against its own neighbourhood)
        w = max(5, smooth_window(n))
        base = np.maximum(np.fmin(rolling_median(v, w), trailing_median(v, w)), float(np.median(v)))
        factor = max(c.cfg.t("spike_factor"), math.exp(c.cfg.t("spike_noise") * _log_noise(v, w)))
        start, end = _edge(v, True), _edge(v, False)
        # ... and above the gradient the run had while it started to learn: a converged run's norm is
        # orders of magnitude below its start (near zero loss a batch's gradient comes from a few
        # margin examples, heavy-tailed), and a blip back to the starting scale explodes nothing
        spikes = np.flatnonzero((v > factor * np.maximum(base, 1e-30)) & (v > float(np.max(v[:3]))))
        growth = end / start if start > 0 else math.nan
        if math.isfinite(growth) and growth >= c.cfg.t("explode_growth"):
            i = int(np.argmax(v > 10 * start))
            out.append(c.find(
                tags, x[i], x[-1],
                f"The {label} grows {fmt(growth)}x, from {fmt(start)} to {fmt(end)}; above 10x its start from step {int(x[i])}.",
                {"start": start, "end": end, "growth": growth, "spikes": len(spikes)},
                _EXPLODE_PROMPT))
        elif len(spikes) >= c.cfg.t("spike_count"):
            peak = int(spikes[np.argmax(v[spikes] / np.maximum(base[spikes], 1e-30))])
            out.append(c.find(
                tags, x[spikes[0]], x[spikes[-1]],
                f"The {label} spikes {len(spikes)} times above {fmt(factor)}x its running median, "
                f"first at step {int(x[spikes[0]])}; the largest is {fmt(v[peak])} ({fmt(v[peak] / max(base[peak], 1e-30))}x) at step {int(x[peak])}.",
                {"spikes": len(spikes), "first_spike_step": int(x[spikes[0]]), "largest": float(v[peak]),
                 "largest_ratio": float(v[peak] / max(base[peak], 1e-30)), "median": float(np.median(v))},
                _EXPLODE_PROMPT))
        elif _edge(v, True, 3) > c.cfg.t("burst_factor") * float(np.median(v)) and \
                _burst_reaches_weights(c, _grad_to_weight_at_start(c.rd) / (_summed(c) or 1),
                                       x[int(np.argmax(v < c.cfg.t("burst_factor") * float(np.median(v))))]):
            first3, med = _edge(v, True, 3), float(np.median(v))
            j = int(np.argmax(v < c.cfg.t("burst_factor") * med))
            out.append(c.find(
                tags, x[0], x[j],
                f"The {label} starts at {fmt(first3)}, {fmt(first3 / med)}x its median over the run "
                f"({fmt(med)}), until step {int(x[j])}.",
                {"start": first3, "median": med, "ratio": first3 / med, "spikes": len(spikes)},
                _EXPLODE_PROMPT))
    return out


def _burst_reaches_weights(c, ratio, until) -> bool:
    """Whether a start-up fall of the gradient norm is a burst, from the gradient-to-weight ratio of the
    first steps: at least burst_grad_to_weight_alone (10), an order of magnitude past what a standard
    initialisation gives, whatever follows; at least burst_grad_to_weight (1) while the training loss
    did not fall with the gradient (a small model converging fast also starts with gradients as large
    as its weights, and loses them as its loss goes)."""
    if not ratio >= c.cfg.t("burst_grad_to_weight"):
        return False
    return ratio >= c.cfg.t("burst_grad_to_weight_alone") or not _converging(c, until)


def _converging(c, until) -> bool:
    """Whether the training loss improved (by more than a tenth of its start) and had made at least half
    of that improvement (from the median of its first 3 points to that of its last 5%) by step `until`:
    a gradient that falls 100x together with the loss
    is a model converging (near zero loss the gradient goes to zero with it), not a burst that passed."""
    if not c.rd.losses:
        return False
    sig = c.rd.losses[0]
    ok = np.isfinite(sig.value)
    x, v = condense(sig.step[ok], sig.value[ok])
    if len(v) < 10:
        return False
    first, last = _edge(v, True, 3), _edge(v, False)
    at = min(int(np.searchsorted(x, until, side="right")), len(v) - 1)
    here = float(np.median(v[max(0, at - 2):at + 1]))
    return first - last > 0.1 * abs(first) and (first - here) >= 0.5 * (first - last)


def _log_noise(v, w):
    """The scatter of a positive series from step to step, in log units: 1.4826 x the median
    absolute residual of log(v) around its running median over `w` points (robust: spikes do not
    count; 0 without positive values)."""
    pos = v[v > 0]
    if len(pos) < 10:
        return 0.0
    lv = np.log(pos)
    return float(1.4826 * np.median(np.abs(lv - rolling_median(lv, w))))


def _summed(c):
    """B when the run's training loss is summed over batches of B (its first value is B times a
    per-example loss at chance, see initial_loss), else None: its gradients are B times those of
    a mean loss."""
    key = ("summed",)
    if key not in c.rd.cache:
        ncls = c.cfg.num_classes or c.rd.num_classes
        b = None
        if ncls and ncls >= 2 and c.rd.losses:
            v = c.rd.losses[0].value
            v = v[np.isfinite(v)]
            if len(v):
                b = _summed_batch(c.cfg, v, math.log(ncls), c.rd.batch_size)
        c.rd.cache[key] = b
    return c.rd.cache[key]


def _grad_to_weight_at_start(rd):
    """The global gradient norm over the global weight norm in the first 3 traced steps (NaN without
    weight norms): a converging model's gradients also fall 100x from the start, but they never
    start larger than the weights themselves."""
    g, w = rd.layers.get("grad_norm"), rd.layers.get("weight_norm")
    if g is None or w is None or len(g) != len(w):
        return math.nan
    gg, ww = _total_grad(g)[:3], _total_grad(w)[:3]
    ok = np.isfinite(gg) & np.isfinite(ww) & (ww > 0)
    return float(np.median(gg[ok] / ww[ok])) if ok.any() else math.nan


_EXPLODE_PROMPT = ("Clip gradients (torch.nn.utils.clip_grad_norm_(params, 1.0)); lower the learning rate or add "
                   "warm-up; normalise the inputs; add normalisation layers; for RNNs clip and shorten sequences.")


@rule("weights_not_updated", "warning", "Weights not updated (dead spot)",
      """A weight tensor's update ratio ||dW||/||W|| (tracer; a zero update counts as 0) stays below
      frozen_ratio (1e-7) from some step to the end, a quarter of the run or longer, while other
      layers are updated (biases are not judged when weights are traced: a bias before a
      normalisation layer rightly gets no gradient); with hand-logged weight norms, a
      layer's norm stays exactly constant while others change. Gradients arriving (grad_norm > 0)
      point at the optimizer (the layer missing from its parameter groups, a zero learning rate
      for its group); none arriving point at the graph. Onset: the start of the frozen stretch.""")
def weights_not_updated(c: _Ctx):
    rd = c.rd
    lay = rd.layers.get("update_ratio")
    un = rd.layers.get("update_norm")
    frozen = []
    if lay is not None and len(lay) >= 2:
        thr = c.cfg.t("frozen_ratio")
        moving = 0
        judged = set(_weights_only(lay))  # a bias before a normalisation layer gets no gradient, rightly
        for i in range(len(lay)):
            v = lay.value[i]
            if un is not None:  # a zero update of zero weights has ratio 0/0: frozen all the same
                v = np.where(un.value[i] == 0, 0.0, v)
            ok = np.isfinite(v)
            if ok.sum() < 4:
                continue
            vv, ss = v[ok], lay.step[i][ok]
            half = len(vv) // 2
            below = vv < thr
            j = len(below)
            while j > 0 and below[j - 1]:
                j -= 1
            if len(vv) - j >= max(len(vv) / 4, c.cfg.t("patience_min")):  # frozen to the end, a quarter or more
                if i in judged:
                    frozen.append((i, int(ss[j]), float(np.median(vv[j:]))))
            elif np.median(vv[half:]) > thr * 100:
                moving += 1
        if not moving:
            frozen = []
        if frozen:
            gn = rd.layers.get("grad_norm")
            names = [lay.names[i] for i, _, _ in frozen]
            grads = []
            for i, _, _ in frozen:
                g = gn.value[i] if gn is not None else np.array([np.nan])
                g = g[np.isfinite(g)]
                grads.append(float(np.median(g)) if len(g) else math.nan)
            others = _layer_medians(gn, [i for i in range(len(lay)) if i not in {f[0] for f in frozen}]) \
                if gn is not None else np.array([])
            typical = float(np.nanmedian(others)) if len(others) and np.isfinite(others).any() else math.nan
            # gradients that arrive at a usual size point at the optimizer; tiny ones at vanishing
            arriving = [n for n, g in zip(names, grads) if math.isfinite(g) and g > 0 and
                        not (math.isfinite(typical) and g < 1e-3 * typical)]
            tiny = [n for n, g in zip(names, grads) if math.isfinite(g) and g > 0 and n not in arriving]
            step = min(s for _, s, _ in frozen)
            if arriving:
                prompt = ("Gradients reach " + ", ".join(arriving[:3]) + " but the optimizer does not change them: "
                          "are they in the optimizer's parameter groups (built before a layer was replaced)? a zero "
                          "learning rate or a scheduler that reached zero for their group? weight decay cancelling "
                          "the update?")
                how = "gradients of the usual size arrive there"
            elif tiny:
                prompt = ("Their gradients are vanishingly small (see vanishing gradients): use ReLU-family "
                          "activations, He/Xavier initialisation, normalisation layers or residual connections.")
                how = "their gradients are tiny"
            else:
                prompt = ("No gradient reaches these layers: check requires_grad, .detach() or no_grad on the path, "
                          "all-dead units upstream, and zero initialisation (symmetric units never break symmetry).")
                how = "no gradient arrives there"
            return [c.find(
                [lay.tags[i] for i, _, _ in frozen[:4]], step, lay.step[frozen[0][0]][-1],
                f"{len(names)} layer(s) are not updated (update ratio below {fmt(thr)}): {', '.join(names[:5])}"
                f"{'...' if len(names) > 5 else ''}; {how}.",
                {"layers": len(names), "first_layer": names[0], "update_ratio": frozen[0][2],
                 "grad_norm": grads[0], "typical_grad_norm": typical, "layers_updated": moving},
                prompt)]
    if not rd.traced and "weight_norm" in rd.layers:
        wl = rd.layers["weight_norm"]
        const, changing = [], 0
        for i in range(len(wl)):
            v = wl.value[i][np.isfinite(wl.value[i])]
            if len(v) < 10:
                continue
            if np.all(v[len(v) // 2:] == v[-1]):
                const.append(i)
            else:
                changing += 1
        if const and changing:
            names = [wl.names[i] for i in const]
            return [c.find(
                [wl.tags[i] for i in const[:4]], wl.step[const[0]][len(wl.step[const[0]]) // 2], wl.step[const[0]][-1],
                f"{len(names)} weight norm(s) stay exactly constant while others change: {', '.join(names[:5])}.",
                {"layers": len(names), "first_layer": names[0], "layers_updated": changing},
                "Check that these layers are in the optimizer's parameter groups and receive gradients.")]
    return []


@rule("update_ratio", "warning", "Update ratio far from 1e-3",
      """The median over weight tensors of the update ratio ||dW||/||W|| (tracer), taken over the
      second half of the run (layers that are not updated at all excluded), is above
      update_ratio_high (5e-2: the learning rate is likely too high) or below update_ratio_low
      (1e-5: too low); about 1e-3 is healthy. Also too high when the median over all the updated
      steps is above update_ratio_high: a blow-up that kills the units leaves a second half of
      tiny or no updates. Onset: the first step of a `patience` run of steps whose median across
      layers is outside the band.""")
def update_ratio(c: _Ctx):
    lay = c.rd.layers.get("update_ratio")
    if lay is None or not len(lay):
        return []
    idx = _weights_only(lay)
    stack = np.stack([lay.value[i] for i in idx], axis=1)
    stack = np.where(stack < c.cfg.t("frozen_ratio"), np.nan, stack)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_step = np.nanmedian(stack, axis=1)
    steps = lay.step[idx[0]]
    ok = np.isfinite(per_step)
    steps, per_step = steps[ok], per_step[ok]
    if len(per_step) < 10:
        return []
    r = float(np.median(per_step[len(per_step) // 2:]))
    lo, hi = c.cfg.t("update_ratio_low"), c.cfg.t("update_ratio_high")
    scope = "second half of the run"
    if lo <= r <= hi:
        r = float(np.median(per_step))
        if r <= hi:
            return []
        scope = (f"all {len(per_step)} updated steps, {int(steps[0])}-{int(steps[-1])}; "
                 f"{fmt(float(np.median(per_step[len(per_step) // 2:])))} over their second half")
    high = r > hi
    mask = per_step > hi if high else per_step < lo
    i = streak(mask, _patience(c.cfg, len(per_step)))
    i = 0 if i is None else i
    per_layer = _layer_medians(lay, idx)
    worst = int(np.nanargmax(per_layer) if high else np.nanargmin(np.where(per_layer > 0, per_layer, np.inf)))
    return [c.find(
        [lay.tags[idx[worst]]], steps[i], steps[-1],
        f"The update ratio ||dW||/||W|| is {fmt(r)} (median over {len(idx)} weight tensors, {scope}), "
        f"{'above' if high else 'below'} the {fmt(hi if high else lo)} bound (about 1e-3 is healthy); "
        f"{'largest' if high else 'smallest'} in {lay.names[idx[worst]]} ({fmt(per_layer[worst])}).",
        {"median_update_ratio": r, "bound": hi if high else lo, "layer": lay.names[idx[worst]],
         "layer_update_ratio": float(per_layer[worst])},
        ("Each step changes the weights by a large share of their size: lower the learning rate (aim for a ratio "
         "near 1e-3), add warm-up or gradient clipping." if high else
         "The weights barely move: raise the learning rate (about 10x), check the scheduler has not decayed it "
         "to nothing, and that weight decay is not dominating."),
    )]


def _act_rule(c: _Ctx, stat, thr_name, what, prompt, windowed=False):
    """windowed: each value covers the traced steps since the previous one (the tracer's dead
    units), so a stretch starts where the window of its first value starts."""
    lay = c.rd.acts.get(stat)
    if lay is None or not len(lay):
        return []
    thr = c.cfg.t(thr_name)
    hits = []
    for i in range(len(lay)):
        v, s = lay.value[i], lay.step[i]
        ok = np.isfinite(v)
        v, s = v[ok], s[ok]
        if len(v) < 2:
            continue
        x, vv = condense(s, v)
        k = streak(vv > thr, _patience(c.cfg, len(vv)) if len(vv) > 20 else 2)
        if k is None or _edge(vv, False) <= thr:
            continue
        onset = int(x[k])
        if windowed:  # the window of the stretch's first value starts after the value before it
            onset = int(s[np.searchsorted(s, x[k]) - 1]) + 1 if x[k] > s[0] else _first_traced_step(c.rd, s[0])
        hits.append((i, onset, float(_edge(vv, False))))
    if not hits:
        return []
    names = [lay.names[i] for i, _, _ in hits]
    worst = max(hits, key=lambda h: h[2])
    return [c.find(
        [lay.tags[i] for i, _, _ in hits[:4]], min(h[1] for h in hits), lay.step[hits[0][0]][-1],
        f"{len(names)} activation layer(s) with {fmt(100 * worst[2])}% {what} at the end (above "
        f"{fmt(100 * thr)}%): {', '.join(names[:5])}{'...' if len(names) > 5 else ''}.",
        {"layers": len(names), "first_layer": names[0], "worst_layer": lay.names[worst[0]], "fraction": worst[2]},
        prompt)]


@rule("dead_relu", "warning", "Dead ReLU units",
      """The tracer's dead_fraction of a ReLU-like layer (units never positive over a window of
      traced steps) stays above dead_fraction (0.5) until the end of the run, for `patience`
      windows (at least 2). Onset: the start of the first window of that stretch (the run's first
      traced step when units are dead from the first window on).""")
def dead_relu(c: _Ctx):
    return _act_rule(c, "dead_fraction", "dead_fraction", "of units dead",
                     "Lower the learning rate (a large step can push units below zero for good); use LeakyReLU, "
                     "ELU or GELU; initialise with He (kaiming) initialisation and biases at zero or slightly "
                     "positive; add normalisation before the activation.", windowed=True)


def _first_traced_step(rd, default):
    """The first step of the run's per-layer data (the tracer's first traced step)."""
    firsts = [int(lay.step[i][0]) for group in (rd.layers, rd.acts) for lay in group.values()
              for i in range(len(lay)) if len(lay.step[i])]
    return min(firsts + [int(default)])


@rule("saturation", "warning", "Saturated activations",
      """The tracer's saturated_fraction of a tanh or sigmoid layer (pre-activations in the flat
      tails, where the derivative is below about 2%) stays above saturated_fraction (0.4) until the
      end of the run, for `patience` points, unless it came after most of the learning and the loss
      goes on falling under it (the training loss, positive, had made half its improvement by the
      onset and halves again after it: a classifier's tanh units saturating into +/-1 features as it
      drives its margins up on separable data). Onset: the start of that stretch.""")
def saturation(c: _Ctx):
    found = _act_rule(c, "saturated_fraction", "saturated_fraction", "of pre-activations saturated",
                     "Normalise the inputs and add normalisation layers before the activation; use Xavier/Glorot "
                     "initialisation for tanh/sigmoid, or switch hidden layers to ReLU-family activations; lower "
                     "the learning rate if the saturation grows during training.")
    return [f for f in found if not _learning_goes_on(c, f.step)]


def _learning_goes_on(c, onset) -> bool:
    """Whether saturation that starts at `onset` came after most of the learning and does not stop it:
    the training loss (positive) had made at least half its improvement by then, and halves again
    after it. Units of a classifier that is driving its margins up on separable data saturate that
    way, into the +/-1 features that encode the classes; saturation that comes with the start, or
    under which the loss stalls, is still reported."""
    if not c.rd.losses:
        return False
    sig = c.rd.losses[0]
    ok = np.isfinite(sig.value)
    x, v = condense(sig.step[ok], sig.value[ok])
    if len(v) < 10 or not (v > 0).all():
        return False
    first, last = _edge(v, True, 3), _edge(v, False)
    at = int(np.searchsorted(x, onset))
    if at >= len(v) - 3:
        return False
    here = float(np.median(v[at:at + 3]))
    return first > last and (first - here) >= 0.5 * (first - last) and last <= 0.5 * here


@rule("weight_growth", "warning", "Weight norms blow up",
      """A layer's weight norm (tracer weight_norm, or hand-logged tags matching `weight_norm`) grows
      more than weight_growth (10) times from its start (median of the first points, when > 0) to
      its end, and is still growing in the last quarter (5% above the third quarter's median).
      Onset: the first step above 3x the start.""")
def weight_growth(c: _Ctx):
    lay = c.rd.layers.get("weight_norm")
    if lay is None:
        return []
    hits = []
    for i in _weights_only(lay):
        v, s = lay.value[i], lay.step[i]
        ok = np.isfinite(v)
        x, vv = condense(s[ok], v[ok])
        n = len(vv)
        if n < 12:
            continue
        start, end = _edge(vv, True), _edge(vv, False)
        q3 = float(np.median(vv[n // 2: 3 * n // 4]))
        if start > 0 and end / start > c.cfg.t("weight_growth") and end > 1.05 * q3:
            j = int(np.argmax(vv > 3 * start))
            hits.append((i, int(x[j]), end / start))
    if not hits:
        return []
    worst = max(hits, key=lambda h: h[2])
    names = [lay.names[i] for i, _, _ in hits]
    return [c.find(
        [lay.tags[i] for i, _, _ in hits[:4]], min(h[1] for h in hits), lay.step[hits[0][0]][-1],
        f"{len(names)} weight norm(s) grew over {fmt(c.cfg.t('weight_growth'))}x and are still growing; "
        f"{lay.names[worst[0]]} by {fmt(worst[2])}x.",
        {"layers": len(names), "worst_layer": lay.names[worst[0]], "growth": worst[2]},
        "Add weight decay (AdamW), lower the learning rate, clip gradients; check for a loss that rewards large "
        "logits without bound (e.g. missing normalisation or label smoothing).")]


@rule("metric_volatility", "warning", "Evaluation metric is volatile",
      """A validation metric (tags matching `metric` in a validation series) changes from one
      evaluation to the next by a median of more than volatility (0.1) over the second half of the
      run, or by more than twice that in a fifth of the changes (3 at least: a metric that keeps
      dropping and coming back, its median change small): absolute for metrics within [0, 1]
      (accuracy, AUC, F1), relative to its level otherwise; at least volatility_min_points (6)
      evaluations. A metric within [0, 1] whose values are all multiples of 1/n for some n up to
      1000 is a share of an n-example validation set: its changes are counted in whole examples
      (3 of 30 is a change of 0.1, not above it), and as binomial noise alone makes its change
      between two evaluations scatter by se = sqrt(2 p (1 - p) / n) (p: its median over the second
      half), a jump must also exceed volatility_jump_noise (3) x se (30 examples at p = 0.8: 0.31;
      a set so small that its median change exceeds volatility, such as 8 examples, is itself
      the finding: its metric cannot tell one evaluation from the next). Onset: the start of the
      second half.""")
def metric_volatility(c: _Ctx):
    out = []
    for sig in c.rd.metrics:
        ok = np.isfinite(sig.value)
        s, v = sig.step[ok], sig.value[ok]
        if len(v) < c.cfg.t("volatility_min_points"):
            continue
        h = len(v) // 2
        d = np.abs(np.diff(v[h:]))
        if not len(d):
            continue
        unit = np.all((v >= 0) & (v <= 1))
        level = 1.0 if unit else max(float(np.median(np.abs(v))), 1e-12)
        jump = 2 * c.cfg.t("volatility")
        size = _set_size(v) if unit else None
        if size:  # a share of `size` examples: changes in whole examples, jumps beyond its binomial noise
            d = np.round(d * size) / size
            p = min(max(float(np.median(v[h:])), 0.5 / size), 1 - 0.5 / size)
            jump = max(jump, c.cfg.t("volatility_jump_noise") * math.sqrt(2 * p * (1 - p) / size))
        change = float(np.median(d)) / level
        jumps = int(np.sum(d / level > jump))
        if change <= c.cfg.t("volatility") and jumps < max(3, 0.2 * len(d)):
            continue
        out.append(c.find(
            [sig.tag], s[h], s[-1],
            f"{sig.tag}{_in(sig)} changes by a median {fmt(change * (1 if unit else 100))}{'' if unit else '%'} between "
            f"evaluations in the second half of the run, {jumps} of {len(d)} times by more than "
            f"{fmt(2 * c.cfg.t('volatility') * (1 if unit else 100))}{'' if unit else '%'} "
            f"(range {fmt(v[h:].min())} to {fmt(v[h:].max())}).",
            {"median_change": change, "jumps": jumps, "evaluations": len(v), "min": float(v[h:].min()),
             "max": float(v[h:].max()), **({"set_size": size} if size else {})},
            "Evaluate on a larger or fixed validation set; lower the learning rate or decay it; average the weights "
            "(EMA/SWA); with BatchNorm check the evaluation uses eval() mode and enough data for its statistics.",
        ))
    return out


def _set_size(v, largest=1000):
    """The smallest n <= `largest` such that every value in [0, 1] is a multiple of 1/n (to float32
    precision): the size of the set a share was counted on; None when there is none."""
    v = np.asarray(v, np.float64)
    n = np.arange(1, largest + 1)[:, None]
    k = v[None, :] * n
    fits = np.all(np.abs(k - np.round(k)) < 1e-3, axis=1)
    return int(n[np.argmax(fits), 0]) if fits.any() else None


@rule("stalled", "info", "No data for a while",
      """The run's main series (its first loss, else its first tag) has no new point for
      stall_seconds (30 min) while the run was written within stall_horizon (6 h): stalled,
      crashed or finished; or a gap inside the run longer than both stall_seconds and 50x the
      median interval between points. Onset: the last step before the gap.""")
def stalled(c: _Ctx):
    w = c.rd.walls
    if w is None or len(w) < 2:
        return []
    out = []
    gaps = np.diff(w)
    med = float(np.median(gaps))
    limit = max(c.cfg.t("stall_seconds"), 50 * med)
    main = c.rd.losses[0] if c.rd.losses else None
    steps = main.step if main is not None and len(main.step) == len(w) else None
    for i in np.flatnonzero(gaps > limit)[:3].tolist():
        out.append(c.find(
            [main.tag] if main is not None else [], None if steps is None else steps[i],
            None if steps is None else steps[i + 1],
            f"No data for {_duration(gaps[i])} inside the run (the median interval is {_duration(med)}).",
            {"gap_seconds": float(gaps[i]), "median_interval_seconds": med},
            "Look at the job's logs around that time: preemption, a hung data loader or collective, a checkpoint "
            "that took long, or a restart."))
    return out


def idle(run, last_write, main_tag, last_step, cfg, now=None):
    """The age part of the stalled rule, computed at each call (not cached with the data): a run
    last written more than stall_seconds but less than stall_horizon ago."""
    if "stalled" in cfg.disable or not last_write:
        return None
    age = (time.time() if now is None else now) - last_write
    if not cfg.t("stall_seconds") < age < cfg.t("stall_horizon"):
        return None
    from tb_plus.diagnostics.rundata import RunData

    return _Ctx(RunData(run), cfg, "stalled").find(
        [main_tag] if main_tag else [], last_step, None,
        f"No new data for {_duration(age)}: stalled, crashed or finished.",
        {"idle_seconds": age},
        "If the training should still be running, check the process (hung data loader or collective, out of "
        "memory, preempted).")


def _duration(s):
    s = float(s)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


ORDER = ["nonfinite_loss", "nonfinite_tensor", "divergence", "exploding_gradients", "constant_loss", "plateau",
         "initial_loss", "oscillation", "overfitting", "vanishing_gradients", "weights_not_updated", "update_ratio",
         "dead_relu", "saturation", "weight_growth", "metric_volatility", "stalled"]


def apply(rd, cfg) -> list:
    """Every enabled rule on one run's data."""
    out = []
    for name in ORDER:
        if name in cfg.disable:
            continue
        out.extend(RULES[name].fn(_Ctx(rd, cfg, name)))
    return out


# reinforcement-learning rules (they return [] unless the run is of kind "rl"), last
from tb_plus.diagnostics import rules_rl  # noqa: E402,F401

ORDER += ["rl_return_collapse", "rl_no_improvement", "rl_entropy_collapse", "rl_ppo_update", "rl_explained_variance",
          "rl_losses"]


# language-model rules (issue 19): rules_lm.py registers them with @rule; they run after these
from tb_plus.diagnostics import rules_lm  # noqa: E402

ORDER += rules_lm.ORDER
assert sorted(ORDER) == sorted(RULES)
