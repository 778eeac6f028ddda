"""A corpus of real small language-model trainings for the LLM diagnostics (issue 19): a causal
transformer over bytes, trained with torch on this CPU on the Python standard library's own source
files (read from the running interpreter's stdlib directory; some files held out for the eval
loss), each training written at once by three writers in the tag conventions of Megatron-LM, the
Hugging Face Trainer and Lightning.

    python demo/diagnostics_lm.py OUTDIR [--seeds 0,1,2] [--jobs 2] [--families ...] [--scenarios ...] [--quick]

    from demo.diagnostics_lm import make
    labels = make("/tmp/lm", seeds=(0,))     # {style/run: label}; also OUTDIR/labels.json

Families (model / optimizer / schedule):

  small_cosine   2 layers, d 64, 4 heads, AdamW 3e-3, warm-up 10% + cosine to 10%, batch 16
  wide_linear    1 layer, d 96, 4 heads, Adam 2e-3, warm-up 5% + linear decay to 0 at the end, batch 8
  deep_cosine    3 layers, d 48, 4 heads, AdamW 2e-3, warm-up 8% + cosine to 0, batch 12 (held out)
  wsd            2 layers, d 64, 2 heads, AdamW 3e-3, warm-up 5%, stable, decay over the last 20% (held out)

Each training makes 500 steps (400 for overfit; 250 with quick=True), about 10 s on one free CPU core.

Scenarios: healthy (the family's schedule), healthy_lr_half, healthy_fp16 (a working dynamic loss
scale), spikes (three corrupted batches of random bytes with a 20x learning-rate burst, at 40%, 60%
and 75% of the run), diverge (the learning rate 1000x its peak from the middle of the run on, as a
resume with a unit bug), fp16_broken (a NaN gradient from 40% of the run on: the scaler halves the scale every step to its floor 1 and skips every step), warmup_never_ends
(warm-up set to 3x the run's length), lr_zero (the schedule reaches zero at 55% of the run), slowdown
(from 50% of the run four extra forward passes per step, as an added evaluation hook), overfit (the family's
model, from scratch, on a 3 KB slice of the text for about a hundred passes, learning rate x1.5: the
fine-tuning pattern of many epochs on a small set).

The fp16 loss scale is a GradScaler-like dynamic scale computed on the CPU from real overflow checks:
the gradients of (loss x scale) cast to float16 are checked for Inf/NaN; an overflowing step is
skipped and the scale halved (floor 1, as Megatron's --min-loss-scale), else it doubles after 200
clean steps.

Styles (one training, three writers):
  megatron   torch SummaryWriter: "lm loss", "learning-rate", "grad-norm", "loss-scale" (fp16 runs),
             "iteration-time", "lm loss validation" every step (validation every 50)
  hf         train/loss (mean of the last 10 steps), train/learning_rate, train/grad_norm, train/epoch
             every 10 steps, eval/loss every 50
  lightning  tensorboardX: train_loss (the step's loss) every 10 steps, lr-AdamW, val_loss, val_ppl,
             train/tokens_per_sec every 10 steps (Lightning's ThroughputMonitor)

Labels come from what each training measurably did (its loss, learning rate, loss scale and tokens/s as
the style samples them), not from the scenario's name: see label().
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import sysconfig
import time

import numpy as np

LABELS_FILE = "labels.json"
STYLES = ("megatron", "hf", "lightning")
EVAL_EVERY = 50
LOG_EVERY = 10
CONTEXT = 64

FAMILIES = {
    "small_cosine": dict(layers=2, d=64, heads=4, opt="adamw", lr=3e-3, batch=16, sched="cosine", warmup=0.10,
                         floor=0.1),
    "wide_linear": dict(layers=1, d=96, heads=4, opt="adam", lr=2e-3, batch=8, sched="linear", warmup=0.05,
                        floor=0.0),
    "deep_cosine": dict(layers=3, d=48, heads=4, opt="adamw", lr=2e-3, batch=12, sched="cosine", warmup=0.08,
                        floor=0.0),
    "wsd": dict(layers=2, d=64, heads=2, opt="adamw", lr=3e-3, batch=16, sched="wsd", warmup=0.05, floor=0.0),
}
TUNE_FAMILIES = ("small_cosine", "wide_linear")
HELD_OUT_FAMILIES = ("deep_cosine", "wsd")
HEALTHY = ("healthy", "healthy_lr_half", "healthy_fp16")
BROKEN = ("spikes", "diverge", "fp16_broken", "warmup_never_ends", "lr_zero", "slowdown", "overfit")
SCENARIOS = HEALTHY + BROKEN
SMOKE_SCENARIOS = ("healthy", "diverge")  # bench_diagnostics.py --smoke: one family, these, one seed
STEPS = {"quick": 250, "default": 500, "overfit": 400}


# ------------------------------------------------------------------ data

def _texts():
    """(train bytes, eval bytes): the stdlib's top-level .py files, every 7th held out for eval."""
    root = sysconfig.get_paths()["stdlib"]
    files = sorted(f for f in os.listdir(root) if f.endswith(".py"))
    train, held = [], []
    for i, f in enumerate(files):
        try:
            with open(os.path.join(root, f), "rb") as fh:
                b = fh.read()
        except OSError:
            continue
        (held if i % 7 == 3 else train).append(b)
    return b"\n".join(train), b"\n".join(held)


_DATA = None


def data():
    global _DATA
    if _DATA is None:
        tr, ev = _texts()
        _DATA = (np.frombuffer(tr, np.uint8).astype(np.int64), np.frombuffer(ev, np.uint8).astype(np.int64))
    return _DATA


def batches(rng, arr, batch, ctx=CONTEXT):
    import torch

    idx = rng.integers(0, len(arr) - ctx - 1, batch)
    x = np.stack([arr[i: i + ctx + 1] for i in idx])
    return torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])


# ------------------------------------------------------------------ model

def build(p, seed):
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class Block(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.attn = nn.MultiheadAttention(d, h, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x, mask):
            a = self.ln1(x)
            x = x + self.attn(a, a, a, attn_mask=mask, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class LM(nn.Module):
        def __init__(self, layers, d, h, vocab=256, ctx=CONTEXT):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
            self.blocks = nn.ModuleList(Block(d, h) for _ in range(layers))
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)
            self.register_buffer("mask", torch.triu(torch.full((ctx, ctx), float("-inf")), 1))

        def forward(self, x):
            t = x.shape[1]
            hdn = self.tok(x) + self.pos(torch.arange(t))
            for b in self.blocks:
                hdn = b(hdn, self.mask[:t, :t])
            return self.head(self.ln(hdn))

    return LM(p["layers"], p["d"], p["heads"])


def lr_at(p, step, steps):
    """The learning rate of a plan at `step` (0-based) of `steps`."""
    peak, wu = p["lr"], max(1, int(round(p["warmup"] * p.get("warmup_span", steps))))
    if p.get("jump") and step >= p["jump"][0] * steps:
        return peak * p["jump"][1]
    if step < wu:
        return peak * (step + 1) / wu
    end = int(p.get("decay_end", 1.0) * steps)
    t = min(1.0, (step - wu) / max(1, end - wu))
    if step >= end:
        return peak * p["floor"] if p.get("decay_end") is None else 0.0
    if p["sched"] == "cosine":
        f = 0.5 * (1 + math.cos(math.pi * t))
    elif p["sched"] == "linear":
        f = 1 - t
    else:  # wsd: stable, then linear decay over the last 20%
        s = (step - wu) / max(1, end - wu)
        f = 1.0 if s < 0.75 else max(0.0, 1 - (s - 0.75) / 0.25)
    return peak * (p["floor"] + (1 - p["floor"]) * f)


def plan(family, scenario, quick=False):
    p = dict(FAMILIES[family])
    p["steps"] = STEPS["quick" if quick else "default"]
    p["fp16"] = scenario in ("healthy_fp16", "fp16_broken")
    if scenario == "healthy_lr_half":
        p["lr"] /= 2
    elif scenario == "diverge":  # the rate set 1000x too high from the middle on (a resume with a unit bug)
        p["jump"] = (0.5, 1000.0)
    elif scenario == "warmup_never_ends":
        p["warmup"] = 1.0
        p["warmup_span"] = 3 * p["steps"]
    elif scenario == "lr_zero":
        p["decay_end"] = 0.55
    elif scenario == "overfit":
        p["steps"] = STEPS["quick" if quick else "overfit"]
        p["subset"] = 3000
        p["lr"] *= 1.5
    return p


# ------------------------------------------------------------------ training

def train(outdir, family, scenario, seed, quick=False):
    """Trains one (family, scenario, seed), writes its three styles, returns the measurements."""
    import torch
    from tensorboardX import SummaryWriter as XWriter
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(1)
    p = plan(family, scenario, quick)
    steps = p["steps"]
    run = f"{family}-{scenario}-s{seed}"
    rng = np.random.default_rng(1000 + seed)
    tr, ev = data()
    if p.get("subset"):
        start = int(rng.integers(0, len(tr) - p["subset"]))
        tr = tr[start: start + p["subset"]]
    model = build(p, seed)
    opt_cls = torch.optim.AdamW if p["opt"] == "adamw" else torch.optim.Adam
    kw = dict(weight_decay=0.1) if p["opt"] == "adamw" else {}
    opt = opt_cls(model.parameters(), lr=p["lr"], betas=(0.9, 0.95), **kw)
    erng = np.random.default_rng(7)
    eval_batches = [batches(erng, ev, 16) for _ in range(4)]
    spikes = {int(f * steps) for f in (0.4, 0.6, 0.75)} if scenario == "spikes" else set()
    spike_steps = {s + k for s in spikes for k in range(3)}
    broken_from = int(0.4 * steps) if scenario == "fp16_broken" else None
    slow_from = int(0.5 * steps) if scenario == "slowdown" else None
    writers = {"megatron": SummaryWriter(os.path.join(outdir, "megatron", run)),
               "hf": SummaryWriter(os.path.join(outdir, "hf", run)),
               "lightning": XWriter(os.path.join(outdir, "lightning", run))}
    scale = 2.0 ** 16 if p["fp16"] else None
    clean_steps = 0
    m = {"family": family, "scenario": scenario, "seed": seed, "steps": steps, "loss": [], "lr": [], "grad": [],
         "scale": [], "skipped": [], "tps": [], "eval_step": [], "eval_loss": [], "tokens_per_step": p["batch"] * CONTEXT}
    tokens_per_epoch = len(tr)
    hf_buf = []
    t_last = time.perf_counter()
    for step in range(steps):
        lr = lr_at(p, step, steps) * (20.0 if step in spike_steps else 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batches(rng, tr, p["batch"])
        if step in spike_steps:  # a corrupted batch: random bytes
            x = torch.from_numpy(rng.integers(0, 256, x.shape))
            y = torch.from_numpy(rng.integers(0, 256, y.shape))
        model.train()
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
        if slow_from is not None and step >= slow_from:  # an added per-step hook: another forward pass
            with torch.no_grad():
                for _ in range(4):
                    model(eval_batches[step % 4][0])
        opt.zero_grad(set_to_none=True)
        total = loss * (scale if scale else 1.0)
        if broken_from is not None and step >= broken_from:  # 0 x log(0): a NaN gradient, every step
            w = model.pos.weight
            total = total + 0.0 * torch.log(w[0, 0] * 0.0)
        total.backward()
        skipped = False
        if scale:
            over = False
            for q in model.parameters():
                if q.grad is not None and not torch.isfinite(q.grad.to(torch.float16)).all():
                    over = True
                    break
            if over:
                skipped = True
                scale = max(1.0, scale / 2)
                clean_steps = 0
            else:
                for q in model.parameters():
                    if q.grad is not None:
                        q.grad = q.grad.to(torch.float16).to(torch.float32) / scale
                clean_steps += 1
                if clean_steps >= 200:
                    scale *= 2
                    clean_steps = 0
        gn = math.nan
        if not skipped:
            gn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9))
            if math.isfinite(gn):
                opt.step()
        now = time.perf_counter()
        dt = now - t_last
        t_last = now
        lv = float(loss.detach())
        m["loss"].append(lv)
        m["lr"].append(lr)
        m["grad"].append(gn)
        m["scale"].append(scale if scale else math.nan)
        m["skipped"].append(int(skipped))
        m["tps"].append(p["batch"] * CONTEXT / dt)
        it = step + 1  # Megatron counts iterations from 1
        wm = writers["megatron"]
        wm.add_scalar("lm loss", lv, it)
        wm.add_scalar("learning-rate", lr, it)
        if math.isfinite(gn):
            wm.add_scalar("grad-norm", gn, it)
        if scale:
            wm.add_scalar("loss-scale", scale, it)
        wm.add_scalar("iteration-time", dt, it)
        hf_buf.append(lv)
        if it % LOG_EVERY == 0:
            wh = writers["hf"]
            wh.add_scalar("train/loss", float(np.mean(hf_buf)), it)
            wh.add_scalar("train/learning_rate", lr, it)
            if math.isfinite(gn):
                wh.add_scalar("train/grad_norm", gn, it)
            wh.add_scalar("train/epoch", it * p["batch"] * CONTEXT / tokens_per_epoch, it)
            hf_buf = []
            wl = writers["lightning"]
            wl.add_scalar("train_loss", lv, it)
            wl.add_scalar("lr-AdamW", lr, it)
            wl.add_scalar("train/tokens_per_sec", float(np.mean(m["tps"][-LOG_EVERY:])), it)
            wl.add_scalar("epoch", it * p["batch"] * CONTEXT // tokens_per_epoch, it)
        if it % EVAL_EVERY == 0:
            model.eval()
            with torch.no_grad():
                el = float(np.mean([float(torch.nn.functional.cross_entropy(model(a).reshape(-1, 256), b.reshape(-1)))
                                    for a, b in eval_batches]))
            m["eval_step"].append(it)
            m["eval_loss"].append(el)
            writers["megatron"].add_scalar("lm loss validation", el, it)
            writers["hf"].add_scalar("eval/loss", el, it)
            writers["lightning"].add_scalar("val_loss", el, it)
            writers["lightning"].add_scalar("val_ppl", math.exp(min(el, 50)), it)
            t_last = time.perf_counter()  # the evaluation's time is not the next step's
    for w in writers.values():
        w.close()
    return m


# ------------------------------------------------------------------ labels

def _runmed(x, w):
    x = np.asarray(x, float)
    h = w // 2
    return np.array([np.nanmedian(x[max(0, i - h): i + h + 1]) for i in range(len(x))])


def _sampled(m, style, key="loss"):
    """(steps, values) of a measured per-step series as the style logs it."""
    v = np.asarray(m[key], float)
    it = np.arange(1, len(v) + 1)
    if style == "megatron":
        return it, v
    k = np.arange(LOG_EVERY, len(v) + 1, LOG_EVERY)
    if style == "hf" and key == "loss":
        return k, np.array([np.mean(v[i - LOG_EVERY: i]) for i in k])
    if key == "tps":
        return k, np.array([np.mean(v[i - LOG_EVERY: i]) for i in k])
    return k, v[k - 1]


def measure_spikes(steps, loss, window=50, rise=0.25, back=0.05, recover=300):
    """Loss spikes measured on a series: points above (1 + rise) x the median of the `window` points
    before; each with the first later step back within (1 + back) x that median (None: never, within
    `recover` steps or by the end). [(step, ratio, recovered_step)]."""
    out = []
    i, n = 1, len(loss)
    while i < n:
        base = float(np.median(loss[max(0, i - window): i]))
        if loss[i] > (1 + rise) * base and i > 5:
            j = i
            while j < n and loss[j] > (1 + back) * base and steps[j] - steps[i] <= recover:
                j += 1
            rec = int(steps[j]) if j < n and loss[j] <= (1 + back) * base else None
            out.append((int(steps[i]), float(loss[i] / base), rec))
            i = j + 1
            continue
        i += 1
    return out


def label(m, style) -> dict:
    """What a detector must find in the training as `style` shows it (expect), and may find (allow)."""
    fam, scen = m["family"], m["scenario"]
    expect, allow, borderline = [], set(), []
    interval = 1 if style == "megatron" else LOG_EVERY
    steps, loss = _sampled(m, style)
    sig = {}

    def exp(rule, onset=None, tolerance=0):
        expect.append(dict(rule=rule, onset=None if onset is None else int(onset), tolerance=int(tolerance)))

    fin = np.isfinite(loss)
    if not fin.all():
        exp("nonfinite_loss", steps[int(np.argmax(~fin))], interval)
        allow.update(["lm_divergence", "lm_grad_spikes", "lm_loss_spikes"])
    k = int(np.argmax(~fin)) if not fin.all() else len(loss)
    ls, lv = steps[:k], loss[:k]
    n = len(lv)
    w = max(3, (n // 20) | 1)
    sm = _runmed(lv, w) if n else lv
    if n >= 10:
        best_i = int(np.argmin(sm))
        best, first = float(sm[best_i]), float(sm[0])
        final = float(np.median(sm[-max(3, n // 10):]))
        sig.update(loss_first=first, loss_best=best, loss_final=final)
        # divergence: the level lost for good: the end above best + half the progress and 1.3x the best
        lost = final - best
        if lost > 0.5 * (first - best) and final > 1.3 * best:
            # onset: the smoothed loss leaves best + a tenth of the loss's later rise
            j = best_i
            while j < n - 1 and sm[j] <= best + 0.1 * lost:
                j += 1
            exp("lm_divergence", ls[j], max(60, 0.1 * m["steps"]))
            allow.update(["lm_loss_spikes", "lm_grad_spikes", "plateau", "lm_loss_scale"])
        elif lost > 0.25 * (first - best) and final > 1.15 * best:
            allow.add("lm_divergence")
            borderline.append("lm_divergence")
        # spikes that recover (the divergence's own rise is not a spike)
        if not any(e["rule"] == "lm_divergence" for e in expect):
            sp = measure_spikes(ls, lv)
            big = [s for s in sp if s[1] >= 1.5 and s[2] is not None]
            sig["spikes"] = sp
            if big:  # onset: the first large spike, or a smaller one before it (the spikes' first)
                first = min(s[0] for s in sp if s[2] is not None)
                exp("lm_loss_spikes", big[0][0], max(2 * interval, big[0][0] - first))
                allow.add("lm_grad_spikes")
            elif any(s[1] >= 1.2 for s in measure_spikes(ls, lv, rise=0.15)):
                allow.add("lm_loss_spikes")
                borderline.append("lm_loss_spikes")
            if any(s[2] is None and s[1] >= 1.3 for s in sp):
                allow.add("lm_divergence")
                borderline.append("lm_divergence")
    # gradient-norm spikes (megatron and hf log it)
    if style in ("megatron", "hf"):
        gs, gv = _sampled(m, style, "grad")
        ok = np.isfinite(gv)
        gs, gv = gs[ok], gv[ok]
        jumps = [i for i in range(20, len(gv)) if gv[i] > 5 * np.median(gv[max(0, i - 50): i])]
        if len(jumps):
            allow.add("lm_grad_spikes")
            if len(jumps) >= 3:
                borderline.append("lm_grad_spikes")
    # learning-rate schedule (all three styles log it)
    lrs, lr = _sampled(m, style, "lr")
    peak_i = int(np.argmax(lr))
    sig.update(lr_peak_at=float(peak_i / len(lr)), lr_end_over_peak=float(lr[-1] / lr.max()))
    if peak_i >= 0.9 * len(lr) and lr[-1] > 1.5 * lr[len(lr) // 2]:
        # onset: where the growing stretch that reaches the end starts
        j = len(lr) - 1
        while j > 0 and lr[j - 1] < lr[j]:
            j -= 1
        exp("lm_lr_schedule", lrs[j], max(50, 0.1 * m["steps"]))
    zero = lr <= 1e-3 * lr.max()
    if zero[-1]:
        j = len(lr) - 1
        while j > 0 and zero[j - 1]:
            j -= 1
        if len(lr) - j >= 0.2 * len(lr):
            exp("lm_lr_schedule", lrs[j], 2 * interval)
        elif len(lr) - j >= 0.05 * len(lr):
            allow.add("lm_lr_schedule")
            borderline.append("lm_lr_schedule")
    if any(e["rule"] == "lm_lr_schedule" for e in expect):
        allow.update(["plateau"])
    # fp16 loss scale (megatron logs it)
    sc = np.asarray(m["scale"], float)
    if style == "megatron" and np.isfinite(sc).any():
        halvings = np.flatnonzero(sc[1:] < 0.75 * sc[:-1]) + 1
        late = halvings[halvings >= len(sc) // 2]
        skipped_late = float(np.mean(m["skipped"][len(sc) // 2:]))
        sig.update(scale_min=float(np.nanmin(sc)), halvings=len(halvings), skipped_late=skipped_late)
        if np.nanmin(sc) <= 1.0:
            j = int(np.argmax(sc <= 1.0))
            # onset: the first halving of the fall that reaches the floor
            i = j
            while i > 0 and sc[i - 1] >= sc[i] and not (sc[i - 1] > sc[i] and i - 2 >= 0 and sc[i - 2] < sc[i - 1]):
                i -= 1
            h = halvings[halvings <= j]
            start = int(h[0]) if len(h) else j
            # the fall's first halving after the last growth before the floor
            grows = np.flatnonzero(sc[1:j + 1] > sc[:j]) + 1
            if len(grows):
                after = h[h > grows[-1]]
                start = int(after[0]) if len(after) else start
            exp("lm_loss_scale", start + 1, 20)
            allow.update(["plateau", "lm_divergence", "constant_loss"])
        elif len(late) >= 8:
            exp("lm_loss_scale", int(late[0]) + 1, 0.5 * m["steps"])
        elif len(late) >= 4 or skipped_late > 0.02:
            allow.add("lm_loss_scale")
            borderline.append("lm_loss_scale")
    # throughput (megatron: iteration-time every step; lightning: tokens/s every 10 steps)
    if style in ("megatron", "lightning"):
        ts, tv = _sampled(m, style, "tps")
        n2 = len(tv)
        a = max(1, int(0.05 * n2))
        w2 = max(5, n2 // 20) | 1
        tsm = _runmed(tv, w2)
        j, near = None, None
        for i in range(max(a + 5, n2 // 10), n2 - max(2, n2 // 10) + 1):
            ref = float(np.median(tv[a:i]))
            if j is None and tsm[i] < 0.6 * ref and np.mean(tsm[i:] < 0.6 * ref) >= 0.8:  # a 40% drop, kept
                j = i
            if near is None and tsm[i] < 0.8 * ref and np.mean(tsm[i:] < 0.8 * ref) >= 0.5:  # 20%, half the time
                near = i
        sig.update(tps_first=float(np.median(tv[a: n2 // 4])), tps_end=float(np.median(tv[-max(1, n2 // 5):])))
        if j is not None:  # a drop in stages (another job's load) starts somewhere from the first stage on
            exp("lm_throughput", ts[j], max(40, 0.08 * m["steps"], ts[j] - ts[near] if near is not None else 0))
        elif near is not None:
            allow.add("lm_throughput")
            borderline.append("lm_throughput")
    # overfitting: eval loss rises from its minimum while the train loss keeps falling
    el = np.asarray(m["eval_loss"], float)
    if len(el) >= 6 and np.isfinite(el).all():
        i = int(np.argmin(el))
        tail = el[i + 1:]
        t_at = float(np.interp(m["eval_step"][i], ls, sm)) if n else math.nan
        t_end = float(sm[-1]) if n else math.nan
        sig.update(eval_min=float(el[i]), eval_end=float(el[-1]))
        if len(tail) >= 3 and el[-1] > 1.2 * el[i] and np.all(tail[-3:] > 1.1 * el[i]) and t_end < 0.95 * t_at:
            exp("overfitting", m["eval_step"][i], 3 * EVAL_EVERY)
        elif len(tail) >= 2 and el[-1] > 1.05 * el[i]:
            allow.add("overfitting")
            borderline.append("overfitting")
    allow.update(e["rule"] for e in expect)
    if scen == "slowdown":
        allow.add("stalled")
    healthy = scen.startswith("healthy") and not expect and not borderline
    kind = "lm_pretrain" if style in ("megatron", "lightning") else "finetune"
    return {"healthy": healthy, "ambiguous": scen.startswith("healthy") and not expect and bool(borderline),
            "expect": expect, "allow": sorted(allow), "family": fam, "scenario": scen, "seed": m["seed"],
            "style": style, "held_out": fam in HELD_OUT_FAMILIES, "kind": kind,
            "signals": _clean(dict(sig, borderline=borderline))}


if os.path.dirname(os.path.dirname(os.path.abspath(__file__))) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from demo.diagnostics_families import _clean  # noqa: E402 (JSON-safe measurements: the families corpus's)


# ------------------------------------------------------------------ the corpus

MEASURED = ".measured"


def _job(args):
    outdir, fam, scen, seed, quick = args
    t0 = time.perf_counter()
    m = train(outdir, fam, scen, seed, quick)
    m["seconds"] = time.perf_counter() - t0
    os.makedirs(os.path.join(outdir, MEASURED), exist_ok=True)
    with open(os.path.join(outdir, MEASURED, f"{fam}-{scen}-s{seed}.json"), "w") as f:
        json.dump(_clean(m), f)
    return m


def _load(outdir, run):
    with open(os.path.join(outdir, MEASURED, run + ".json")) as f:
        m = json.load(f)
    for k in ("loss", "lr", "grad", "scale", "tps", "eval_loss"):
        m[k] = [math.nan if v is None else v for v in m[k]]
    return m


def make(outdir, seeds=(0, 1, 2), jobs=1, families=None, scenarios=None, quick=False, progress=None,
         resume=False) -> dict:
    """Trains every (family, scenario, seed), writes OUTDIR/<style>/<family>-<scenario>-s<seed> and
    OUTDIR/labels.json; returns {"<style>/<run>": label}."""
    fams = list(families or FAMILIES)
    scens = list(scenarios or SCENARIOS)
    os.makedirs(outdir, exist_ok=True)
    todo = [(outdir, f, s, int(seed), quick) for seed in seeds for f in fams for s in scens]
    if resume:  # keep the trainings an earlier call measured
        todo = [t for t in todo if not os.path.exists(os.path.join(outdir, MEASURED, f"{t[1]}-{t[2]}-s{t[3]}.json"))]
    if jobs > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(jobs) as pool:
            for m in pool.imap_unordered(_job, todo):
                if progress:
                    progress(m)
    else:
        for t in todo:
            m = _job(t)
            if progress:
                progress(m)
    return relabel(outdir, [f"{f}-{s}-s{seed}" for f in fams for s in scens for seed in seeds])


def relabel(outdir, runs=None) -> dict:
    """Labels again from the saved measurements (no training)."""
    if runs is None:
        runs = sorted(f[:-5] for f in os.listdir(os.path.join(outdir, MEASURED)) if f.endswith(".json"))
    labels = {}
    for run in runs:
        m = _load(outdir, run)
        for st in STYLES:
            labels[f"{st}/{run}"] = label(m, st)
    with open(os.path.join(outdir, LABELS_FILE), "w") as f:
        json.dump(_clean(labels), f, indent=1, sort_keys=True)
    return labels


def read_labels(outdir) -> dict:
    with open(os.path.join(outdir, LABELS_FILE)) as f:
        return json.load(f)


def report(outdir, labels=None, cfg=None):
    """Held-out and tuned-on rows of demo.diagnostics_families.summarise, and per scenario."""
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.dirname(here) not in sys.path:
        sys.path.insert(0, os.path.dirname(here))
    from demo.diagnostics_families import evaluate, summarise

    labels = labels or read_labels(outdir)
    res = evaluate(outdir, labels, cfg)
    return res, summarise(res, lambda lab: "held_out" if lab["held_out"] else "tuned_on"), \
        summarise(res, lambda lab: lab["scenario"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--families")
    ap.add_argument("--scenarios")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--resume", action="store_true", help="keep the trainings an earlier call measured")
    ap.add_argument("--relabel", action="store_true", help="label again from the saved measurements")
    ap.add_argument("--evaluate", action="store_true", help="diagnose and print the figures")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.relabel:
        labels = relabel(args.outdir)
    else:
        labels = make(args.outdir, [int(s) for s in args.seeds.split(",")], args.jobs,
                      args.families.split(",") if args.families else None,
                      args.scenarios.split(",") if args.scenarios else None, args.quick, resume=args.resume,
                      progress=lambda m: print(f"{m['family']}-{m['scenario']}-s{m['seed']}: {m['seconds']:.1f}s",
                                               flush=True))
    print(f"{len(labels)} runs in {time.perf_counter() - t0:.0f}s")
    if args.evaluate:
        _, rows, per = report(args.outdir, labels)
        for r in rows + per:
            print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
