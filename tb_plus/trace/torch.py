"""The PyTorch tracer.

    tracer = Tracer(model, optimizer, logdir="runs/exp1")   # budget=0.02: at most ~2% of the step time
    ...                      # train as usual: the optimizer's step hooks drive the tracer
    tracer.close()           # flushes and stops the writer thread

How often it traces: by default (`budget=0.02`) the tracer measures its own cost (host time in its
hooks and, on CUDA, the device time of its kernels from events it queries later, never waiting for
them) against the training step's time (between optimizer steps, its own cost taken out), and traces
every N-th step with N = ceil(cost / (budget x step time)), from the medians of the last traced
steps and steps, between 1 and `max_every`. Over any window of N steps or more its share stays
within the budget. The chosen N is written as the scalar series `<prefix>/interval` at each traced
step, so a reader knows the sampling. `every=N` forces a fixed interval (steps that are multiples
of N) instead. Update statistics are right at any interval (the weights are copied only before a
traced step), and dead-unit windows count traced steps (`dead_window` traced steps).

Without an optimizer, call `tracer.step(step)` after each optimizer step yourself (update
statistics then need `snapshot()` before the step).

Per parameter tensor (family "params", metadata.PARAM_STATS): weight and gradient L2 norms, the
update norm over the optimizer step and the update ratios ||dW||/||W|| and mean|dW|/mean|W|, max |W|
and max |g|, NaN and Inf counts. Norms come from torch._foreach_norm (one batched kernel per
statistic, not one per tensor); the matrix [parameters, statistics] is copied to pinned host memory
with non_blocking=True and a background thread waits for it and writes it.

Per module (family "activations", metadata.ACT_STATS), for the leaf modules that are activations
(ReLU, LeakyReLU, GELU, SiLU, ELU, Tanh, Sigmoid, ...) or all leaf modules with activations="all":
output mean and std, fraction of exact zeros, fraction of saturated pre-activations (tanh: |x| >
TANH_SATURATED, sigmoid: |x| > SIGMOID_SATURATED, where the derivative is below about 2%), and for
ReLU-like modules the fraction of dead units: units (channels of a conv output, features of a
linear one) that were never positive over the last complete window of `dead_window` traced steps.
Statistics are taken on the first forward call of the module in each traced step, over the first
`act_examples` (16) examples of the batch: estimates, at a fraction of the cost of full reductions.
The activations' metadata also carries "batch": the leading dimension of the first traced
activation (the batch size, when the batch dimension comes first), which tells the diagnostics a
loss summed over the batch from a bad initialisation.

Mixed precision: statistics are float32 whatever the parameters' dtype. With `scaler=` (a
torch.amp.GradScaler) gradient statistics are of unscaled gradients (its step() unscales them in place
before the optimizer step), a step it skips (inf or NaN gradients at its scale) is counted in the
series `<prefix>/skipped_steps` instead of being reported as NaN gradients, and the loss scale is
recorded as `<prefix>/loss_scale` at traced and skipped steps.

Distributed (torch.distributed initialised, more than one rank): under DistributedDataParallel rank 0
computes the statistics; with sharded parameters (FSDP2 and tensor-parallel DTensors, FSDP1 with or
without use_orig_params: a FlatParameter is split into its original parameters' pieces of the local
shard) local sums are combined by all-reduce so the statistics equal the unsharded model's; see
_Distributed. One rank writes.

Histograms of weights, gradients and activations are computed on the device (torch.histc) every
`histograms_every` steps and written as ordinary TensorBoard histograms under trace/hist/.
"""

from __future__ import annotations

import collections
import math
import time

import numpy as np
import torch

from tb_plus import metadata
from tb_plus.trace.writer import EventWriter as _Writer
from tb_plus.trace.writer import histogram_event as _histogram_event
from tb_plus.trace.writer import scalar_event as _scalar_event
from tb_plus.trace.writer import tensor_event as _tensor_event

TANH_SATURATED = 2.5  # |tanh'(x)| = 1 - tanh(x)^2 < 0.027 beyond
SIGMOID_SATURATED = 4.6  # sigmoid'(x) < 0.0099 beyond
RELU_LIKE = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.LeakyReLU, torch.nn.PReLU, torch.nn.ELU, torch.nn.GELU,
             torch.nn.SiLU, torch.nn.Mish, torch.nn.Hardswish, torch.nn.RReLU, torch.nn.CELU, torch.nn.SELU)
SATURATING = {torch.nn.Tanh: TANH_SATURATED, torch.nn.Sigmoid: SIGMOID_SATURATED, torch.nn.Hardtanh: 1.0,
              torch.nn.Softsign: 4.0}
HIST_BINS = 30


COST_WINDOW = 8  # traced steps whose cost the budget's median reads
STEP_WINDOW = 32  # steps whose time it reads


class Tracer:
    def __init__(self, model, optimizer=None, logdir=None, *, writer=None, every=None, budget=0.02, max_every=1000,
                 histograms_every=100, activations=True, dead_window=100, act_examples=16, prefix="trace",
                 scaler=None, clock=time.perf_counter):
        if (logdir is None) == (writer is None):
            raise ValueError("give a logdir or a writer (one of them)")
        if (every is not None and every < 1) or (histograms_every is not None and histograms_every < 0):
            raise ValueError("every must be >= 1 and histograms_every >= 0 (0 or None: no histograms)")
        if every is None and not (budget is not None and 0 < budget < 1 and max_every >= 1):
            raise ValueError("without every, budget must be a share of the step time, 0 < budget < 1, "
                             "and max_every >= 1")
        self.model = model
        self.fixed = every is not None  # a fixed interval; else chosen from the budget
        self.every = int(every) if self.fixed else 1
        self.budget = None if self.fixed else float(budget)
        self.max_every = int(max_every)
        self._clock = clock
        self._next = 0  # budget mode: the next step traced
        self._next_hist = 0  # budget mode: histograms at the first traced step from this one
        self._costs = []  # [step, seconds]: host (+ device, once known) cost of the last traced steps
        self._steps = []  # seconds of the last training steps, the tracer's own cost taken out
        self._pending = 0.0  # host seconds spent in the tracer during the current step so far
        self._last_end = None  # when the last step() returned
        self._device_marks = []  # (step, start event, end event) of traced steps on CUDA, read when done
        self._agreed = None  # distributed budget mode: the interval every rank agreed on
        self.traced_steps = collections.deque(maxlen=256)  # the last steps traced (every rank keeps its own)
        self.histograms_every = int(histograms_every or 0)
        self.prefix = prefix
        named = _expand_flat([(n, p) for n, p in model.named_parameters() if p.requires_grad])
        self.names = [_user_name(model, n) for n, _ in named]
        self.params = [p for _, p in named]
        self._dist = _Distributed.of(model, self.params)  # None: one process
        self.writes = self._dist is None or self._dist.rank == 0  # one rank writes
        self.global_step = 0
        self._before = None
        self._buffers = None  # the weight snapshot's storage, reused every traced step
        self._counts = None  # numel per parameter tensor, on the device
        self._writer = _Writer(target=logdir if logdir is not None else writer) if self.writes else _NoWriter()
        self._sent_meta = set()
        self._hooks = []
        self._act = {}  # module name -> stats tensor of this step
        self._act_modules = []
        self._dead_window = int(dead_window)
        self.act_examples = int(act_examples)  # activation statistics use this many examples per batch
        self._alive = {}  # module name -> bool tensor of units seen positive in the current window
        self._dead = {}  # module name -> dead fraction (tensor) of the last complete window
        self._window_steps = 0
        self._batch = None  # the leading dimension of the first traced activation (the batch size)
        self._hist_acts = {}
        if activations:
            self._hook_activations(all_leaves=activations == "all")
        if optimizer is not None:
            self._hooks.append(optimizer.register_step_pre_hook(lambda opt, args, kwargs: self.snapshot()))
            self._hooks.append(optimizer.register_step_post_hook(lambda opt, args, kwargs: self.step()))
        self.scaler = scaler
        self.skipped = 0  # optimizer steps the GradScaler skipped (inf/NaN gradients at its scale)
        self._stepped = False  # an optimizer step happened since the scaler's last update
        if scaler is not None:
            self._wrap_scaler(scaler)

    # ------------------------------------------------------------------ hooks

    def _traced(self, step=None) -> bool:
        s = self.global_step if step is None else step
        return s % self.every == 0 if self.fixed else s >= self._next

    def _hist_due(self, s) -> bool:
        """Histograms at this (traced) step: multiples of histograms_every with a fixed interval; else
        the first traced step at least histograms_every after the last histograms."""
        if not self.histograms_every:
            return False
        return s % self.histograms_every == 0 if self.fixed else s >= self._next_hist

    @property
    def measured_share(self):
        """The tracer's measured share of the training time at the current interval (None until measured)."""
        if not self._costs or not self._steps:
            return None
        step = float(np.median(self._steps))
        return float(np.median([c for _, c in self._costs])) / (self.every * step) if step > 0 else None

    def _proposal(self) -> int:
        """Budget mode: the interval that keeps the cost measured so far within the budget."""
        if self.fixed or not self._costs or not self._steps:
            return self.every
        step = float(np.median(self._steps))
        cost = float(np.median([c for _, c in self._costs]))
        if step <= 0:
            return self.every
        return int(min(self.max_every, max(1, math.ceil(cost / (self.budget * step)))))

    def _choose_interval(self):
        self.every = self._proposal()

    def _read_device_marks(self):
        """Adds the device time of finished traced steps to their cost (events only queried)."""
        keep = []
        for i, start, end in self._device_marks:
            if end.query():
                for entry in self._costs:
                    if entry[0] == i:  # host and device time both count: a conservative cost
                        entry[1] += start.elapsed_time(end) / 1000.0
            else:
                keep.append((i, start, end))
        self._device_marks = keep[-COST_WINDOW:]

    def _hook_activations(self, all_leaves):
        for name, module in self.model.named_modules():
            if any(True for _ in module.children()):
                continue
            kind = None
            if isinstance(module, RELU_LIKE):
                kind = "relu"
            elif type(module) in SATURATING:
                kind = "saturating"
            elif not all_leaves:
                continue
            name = _user_name(self.model, name)  # without the wrappers' prefixes, as the parameters
            self._act_modules.append(name)
            self._hooks.append(module.register_forward_hook(self._make_hook(name, module, kind)))

    def _make_hook(self, name, module, kind):
        threshold = SATURATING.get(type(module))

        def hook(mod, inputs, output):
            if not self.writes or not self._traced() or name in self._act or not torch.is_tensor(output):
                return
            t0 = self._clock()
            try:
                self._act_stats(name, kind, threshold, inputs, output)
            finally:
                self._pending += self._clock() - t0

        return hook

    def _act_stats(self, name, kind, threshold, inputs, output):
        with torch.no_grad():
            out = output.detach()
            x = out[: self.act_examples] if out.dim() >= 2 else out  # a view: no copy
            x = x.float()
            n = max(x.numel(), 1)
            if x.numel():
                var, mean = torch.var_mean(x, unbiased=False)  # one pass
                std = var.sqrt()
            else:
                mean = std = x.new_full((), float("nan"))
            zeros = (x == 0).sum() / n
            if threshold is not None and inputs and torch.is_tensor(inputs[0]):
                pre = inputs[0].detach()
                pre = (pre[: self.act_examples] if pre.dim() >= 2 else pre).float()
                saturated = (pre.abs() > threshold).sum() / max(pre.numel(), 1)
            else:
                saturated = x.new_full((), float("nan"))  # a fill kernel: no copy from the host
            if kind == "relu" and x.dim() >= 2:
                dims = [d for d in range(x.dim()) if d != 1]
                positive = (x > 0).amax(dim=dims) if dims else (x > 0)
                prev = self._alive.get(name)
                self._alive[name] = positive if prev is None or prev.shape != positive.shape else prev | positive
            dead = self._dead.get(name)
            if dead is None:  # (new_tensor would copy from pageable host memory: a stream sync)
                dead = x.new_full((), float("nan"))
            self._act[name] = torch.stack([mean, std, zeros.float(), saturated.float(), dead.float()])
            if self._batch is None and out.dim() >= 2:
                self._batch = int(out.shape[0])  # written once, in the activations' metadata
            if self._hist_due(self.global_step):
                self._hist_acts[name] = out

    # ------------------------------------------------------------------ mixed precision

    def _wrap_scaler(self, scaler):
        """With a torch.amp.GradScaler: its step() unscales the gradients in place before the optimizer
        step (so the statistics are of unscaled gradients) and skips the optimizer step when they hold
        an inf or NaN at the current scale. Its update() is wrapped to notice a skipped step: it is
        counted (series <prefix>/skipped_steps) instead of being taken for NaN gradients, and the loss
        scale is recorded (series <prefix>/loss_scale) at traced and skipped steps."""
        original = scaler.update

        def update(new_scale=None):
            stepped, self._stepped = self._stepped, False
            scale = self._scale_now()
            original(new_scale)
            if not stepped:
                self._skipped_step(scale)

        scaler.update = update
        self._unwrap = lambda: scaler.__dict__.pop("update", None)

    def _scale_now(self):
        """The scaler's current scale as a tensor copy (no host sync), or None."""
        sc = getattr(self.scaler, "_scale", None)
        if torch.is_tensor(sc):
            return sc.detach().reshape(1).float().clone()
        try:
            return torch.tensor([float(self.scaler.get_scale())])
        except Exception:  # noqa: BLE001 (a scaler of another kind: no scale to record)
            return None

    def _send_scalars(self, s, values: dict):
        """Scalar series <prefix>/<name> at step s from 1-element tensors, copied without a host sync."""
        names = [n for n, v in values.items() if v is not None]
        if not names:
            return
        host, ready = _to_host(torch.cat([values[n].reshape(1).float() for n in names]))
        wall = time.time()
        self._writer.put(ready, lambda: [_scalar_event(f"{self.prefix}/{n}", s, float(v), wall)
                                         for n, v in zip(names, host.numpy().tolist())])

    def _skipped_step(self, scale):
        s = self.global_step
        self.skipped += 1
        self._before = None
        self._act = {}
        self._hist_acts = {}
        self._pending = 0.0
        self._send_scalars(s, {"skipped_steps": torch.tensor([float(self.skipped)]), "loss_scale": scale})
        self.global_step = s + 1

    # ------------------------------------------------------------------ stepping

    def snapshot(self) -> None:
        """Keeps a copy of the weights before the optimizer step (for the update statistics), in
        buffers allocated once and filled by one multi-tensor copy."""
        if self._traced():
            t0 = self._clock()
            with torch.no_grad():
                weights = [_weight(p) for p in self.params]
                buf = self._buffers
                if buf is None or len(buf) != len(weights) or any(
                        b.shape != w.shape or b.dtype != w.dtype or b.device != w.device for b, w in zip(buf, weights)):
                    buf = self._buffers = [torch.empty_like(w) for w in weights]
                torch._foreach_copy_(buf, weights)
                self._before = buf
            self._pending += self._clock() - t0

    @torch.no_grad()
    def step(self, step=None) -> None:
        """Records the statistics of this step (after the optimizer step) and moves to the next."""
        if step is not None:
            self.global_step = int(step)
        s = self.global_step
        cost = None
        self._stepped = True
        if self._traced(s):
            self.traced_steps.append(s)
            t0 = self._clock()
            if self.scaler is not None:
                self._send_scalars(s, {"loss_scale": self._scale_now()})
            cuda = bool(self.params) and self.params[0].is_cuda and not self.fixed
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
            self._record(s)
            if cuda:
                end.record()
                self._device_marks.append((s, start, end))
            cost = self._pending + (self._clock() - t0)
        now = self._clock()
        if self._last_end is not None and not self.fixed:
            self._steps.append(max(0.0, now - self._last_end - (cost if cost is not None else self._pending)))
            del self._steps[:-STEP_WINDOW]
        self._pending = 0.0
        if cost is not None and not self.fixed:
            self._costs.append([s, cost])
            self._read_device_marks()
            del self._costs[:-COST_WINDOW]
            if self._dist is None:
                self._choose_interval()
            elif self._agreed is not None:
                self.every = self._agreed
            self._next = s + self.every
            self._send_interval(s)
        self.global_step = s + 1
        self._last_end = self._clock()

    def _send_interval(self, s):
        """The interval chosen after traced step s, as the scalar series <prefix>/interval."""
        every, wall = self.every, time.time()
        self._writer.put(None, lambda: [_scalar_event(f"{self.prefix}/interval", s, every, wall)])

    def _record(self, s):
        params = self.params
        if not params:
            return
        d = self._dist
        if d is not None and not d.sharded:  # replicated (DDP): the gradients are all-reduced already
            if not self.fixed:
                self._agreed = d.agree(self._proposal())  # every rank traces the same steps
            if not self.writes:
                self._before = None
                return
        weights = [_weight(p) for p in params]
        grads = [_grad(p) for p in params]
        grads = [g if g is not None else torch.zeros_like(w) for g, w in zip(grads, weights)]
        f32 = torch.float32  # statistics in float32 whatever the parameters' dtype (bf16 sums lose digits)
        wn = torch.stack(torch._foreach_norm(weights, 2, dtype=f32))
        gn = torch.stack(torch._foreach_norm(grads, 2, dtype=f32))
        wmax = _max_abs(weights, wn)
        gmax = _max_abs(grads, gn)
        w1 = torch.stack(torch._foreach_norm(weights, 1, dtype=f32))
        if self._counts is None or self._counts.device != wn.device or len(self._counts) != len(weights):
            self._counts = torch.tensor([w.numel() for w in weights], dtype=torch.float32).to(wn.device)  # once
        counts = self._counts
        have_update = self._before is not None and len(self._before) == len(weights)
        if have_update:
            torch._foreach_sub_(self._before, weights)  # before - after, in the snapshot's buffers: the same norms
            deltas = self._before
            un = torch.stack(torch._foreach_norm(deltas, 2, dtype=f32))
            u1 = torch.stack(torch._foreach_norm(deltas, 1, dtype=f32))
        else:
            un = u1 = torch.full_like(wn, float("nan"))
        self._before = None
        gnan, ginf = _nonfinite_counts(grads, gn)
        wnan, winf = _nonfinite_counts(weights, wn)
        if d is not None and d.sharded:  # local shards: sums of squares, sums, counts and maxima combined
            sums = torch.stack([wn * wn, gn * gn, un * un, w1, u1, gnan.to(wn), ginf.to(wn), wnan.to(wn),
                                winf.to(wn), counts]) / d.factors(wn.device)
            maxima = torch.cat([torch.stack([wmax, gmax]).reshape(-1),
                                wn.new_full((1,), float(self._proposal() if not self.fixed else 1))])
            sums, maxima = d.combine(sums, maxima)
            wn, gn, un, w1, u1 = sums[0].sqrt(), sums[1].sqrt(), sums[2].sqrt(), sums[3], sums[4]
            gnan, ginf, wnan, winf, counts = sums[5], sums[6], sums[7], sums[8], sums[9]
            n = len(params)
            wmax, gmax = maxima[:n], maxima[n:2 * n]
            if not self.fixed:
                self._agreed = int(maxima[-1].item())  # the traced step's own collective: every rank agrees
            if not self.writes:
                return
        counts = counts.clamp(min=1)
        ratio = un / wn
        ratio_mean = (u1 / counts) / (w1 / counts)
        gnan, ginf = _nonfinite_counts(grads, gn)
        wnan, winf = _nonfinite_counts(weights, wn)
        matrix = torch.stack([wn, gn, un, ratio, ratio_mean, wmax, gmax, gnan, ginf, wnan, winf], dim=1).float()
        self._send("params", s, self.names, metadata.PARAM_STATS, matrix)
        if self._act_modules:
            self._window_steps += 1
            if self._window_steps >= self._dead_window:
                for name, alive in self._alive.items():
                    self._dead[name] = 1 - alive.float().mean()
                self._alive = {}
                self._window_steps = 0
            names = [n for n in self._act_modules if n in self._act]
            if names:
                act = torch.stack([self._act[n] for n in names])
                self._send("activations", s, names, metadata.ACT_STATS, act)
            self._act = {}
        if self._hist_due(s) and (d is None or not d.sharded):  # sharded: no histograms of partial tensors
            self._histograms(s, weights, grads)
            self._next_hist = s + self.histograms_every

    def _send(self, family, s, names, stats, matrix):
        host, ready = _to_host(matrix)
        tag = f"{self.prefix}/{family}"
        md = None
        if tag not in self._sent_meta:  # the first event of a tag carries its metadata (layers, stats)
            fields = {"version": metadata.TRACE_VERSION, "family": family, "layers": list(names),
                      "stats": list(stats)}
            if family == "activations" and self._batch is not None:
                fields["batch"] = self._batch
            md = metadata.summary_metadata(metadata.TRACE_PLUGIN, fields)
            self._sent_meta.add(tag)
        wall = time.time()
        self._writer.put(ready, lambda: [_tensor_event(tag, s, host.numpy().copy(), md, wall)])

    def _histograms(self, s, weights, grads):
        sets = [("weights", self.names, weights), ("grads", self.names, grads),
                ("activations", list(self._hist_acts), list(self._hist_acts.values()))]
        hists = []
        for family, names, tensors in sets:
            for name, t in zip(names, tensors):
                x = t.detach().float().reshape(-1)
                if not x.numel():
                    continue
                finite = torch.isfinite(x)  # non-finite values are left out, without indexing (a sync)
                lo = torch.where(finite, x, torch.full_like(x, float("inf"))).min()
                hi = torch.where(finite, x, torch.full_like(x, float("-inf"))).max()
                lo = torch.where(torch.isfinite(lo), lo, torch.zeros_like(lo))  # all non-finite: [0, 1], empty
                hi = torch.where(hi > lo, hi, lo + 1)
                counts = _histc(torch.where(finite, x, lo), lo, hi, finite.float())
                hists.append((f"{self.prefix}/hist/{family}/{name}", lo, hi, counts))
        self._hist_acts = {}
        if not hists:
            return
        packed = torch.stack([torch.cat([h[1].reshape(1), h[2].reshape(1), h[3]]) for h in hists]).float()
        host, ready = _to_host(packed)
        tags = [h[0] for h in hists]
        wall = time.time()

        def build():
            out = []
            rows = host.numpy()
            for tag, row in zip(tags, rows):
                edges = np.linspace(row[0], row[1], HIST_BINS + 1)
                out.append(_histogram_event(tag, s, edges, row[2:], wall))
            return out

        self._writer.put(ready, build)

    # ------------------------------------------------------------------ end

    def flush(self) -> None:
        """Waits until everything recorded so far is written."""
        self._writer.flush()

    def close(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
        if self.scaler is not None:
            self._unwrap()
        self._writer.close()

    @property
    def errors(self) -> list:
        """Errors the writer thread met (it never raises into the training loop)."""
        return list(self._writer.errors)


def _to_host(matrix):
    """(host copy, CUDA event to wait for or None): one non-blocking copy into pinned memory."""
    host = torch.empty(matrix.shape, dtype=matrix.dtype, pin_memory=matrix.is_cuda)
    host.copy_(matrix, non_blocking=matrix.is_cuda)
    ready = None
    if matrix.is_cuda:
        ready = torch.cuda.Event()
        ready.record()
    return host, ready


_ENDS = {}  # (tensor sizes, device) -> cumulative sizes on the device


def _nonfinite_counts(tensors, norms, batched=None):
    """(NaN counts, Inf counts) per tensor. A tensor with a finite L2 norm has neither; on the CPU
    that is checked first (no device to synchronise with), so finite steps cost nothing. On an
    accelerator (or with batched=True) the counts are always computed, without a sync and in a
    fixed handful of kernels whatever the number of tensors: the tensors concatenated, NaN and Inf
    marks summed cumulatively, and each tensor's count read at its boundaries."""
    if batched is None:
        batched = norms.device.type != "cpu"
    if not batched:
        if bool(torch.isfinite(norms).all()):
            zeros = torch.zeros(len(tensors))
            return zeros, zeros
        nan = torch.stack([torch.isnan(t).sum() for t in tensors]).float()
        inf = torch.stack([torch.isinf(t).sum() for t in tensors]).float()
        return nan, inf
    flat = torch.cat([t.reshape(-1) for t in tensors])
    sizes = tuple(t.numel() for t in tensors)
    key = (sizes, flat.device)
    ends = _ENDS.get(key)
    if ends is None:  # made once per parameter layout: a copy from the host would sync the stream each time
        if len(_ENDS) > 64:
            _ENDS.clear()
        ends = _ENDS[key] = torch.tensor(sizes, dtype=torch.int64).cumsum(0).to(flat.device)
    out = []
    for mark in (torch.isnan(flat), torch.isinf(flat)):
        c = torch.cat([mark.new_zeros(1, dtype=torch.int64), mark.cumsum(0)])  # int64: no overflow
        out.append((c[ends] - c[torch.cat([ends.new_zeros(1), ends[:-1]])]).float())
    return out[0], out[1]


def _histc(x, lo, hi, weights=None):
    """Counts (or summed weights) of x over HIST_BINS equal bins of [lo, hi], on the device, without
    a host sync (index_add_, not bincount, which synchronises on CUDA)."""
    scaled = ((x - lo) / (hi - lo) * HIST_BINS).floor().clamp_(0, HIST_BINS - 1).long()
    return torch.zeros(HIST_BINS, device=x.device).index_add_(0, scaled, torch.ones_like(x) if weights is None
                                                               else weights)


def _max_abs(tensors, like):
    """max |x| per tensor in float32; 0 for an empty one (a rank's empty shard: the identity of MAX here).
    On an accelerator one fused infinity-norm kernel; on the CPU, where that kernel is about 12x slower
    than a min/max pass, each tensor's aminmax (NaN propagates in both)."""
    full = [i for i, t in enumerate(tensors) if t.numel()]
    if not full:
        return torch.zeros_like(like)
    picked = tensors if len(full) == len(tensors) else [tensors[i] for i in full]
    if like.device.type == "cpu":
        maxima = torch.stack([torch.stack(torch.aminmax(t)).float().abs().max() for t in picked])
    else:
        maxima = torch.stack(torch._foreach_norm(picked, float("inf"), dtype=torch.float32))
    if len(full) == len(tensors):
        return maxima
    out = torch.zeros_like(like)
    out[full] = maxima
    return out


def _is_dtensor(t) -> bool:
    return type(t).__name__ == "DTensor" and hasattr(t, "to_local")


def _local(t):
    """The local shard of a DTensor (FSDP2, tensor parallelism); the tensor itself otherwise."""
    return t.to_local() if _is_dtensor(t) else t


def _weight(p):
    """The local weights of a parameter (its shard under FSDP or tensor parallelism), detached."""
    return p.weight() if isinstance(p, _FlatPiece) else _local(p.detach())


def _grad(p):
    if isinstance(p, _FlatPiece):
        return p.grad()
    return _local(p.grad.detach()) if p.grad is not None else None


class _FlatPiece:
    """This rank's part of one original parameter inside an FSDP1 FlatParameter (use_orig_params=False):
    a 1-D view of the local flat shard and of its gradient (empty where the rank holds none of it)."""

    def __init__(self, flat, offset, numel):
        self.flat, self.offset, self.numel = flat, offset, numel

    @property
    def is_cuda(self):
        return self.flat.is_cuda

    def _piece(self, t):
        return t.detach().reshape(-1)[self.offset:self.offset + self.numel]

    def weight(self):
        return self._piece(self.flat)

    def grad(self):
        g = self.flat.grad
        if g is None or g.numel() != self.flat.numel():  # no gradient, or an unsharded one mid-step
            return None
        return self._piece(g)


def _expand_flat(named):
    """[(name, parameter)] with each FSDP1 FlatParameter (use_orig_params=False) replaced by its original
    parameters, named as the user's model names them, each as this rank's piece of it (_FlatPiece). This
    reads FlatParameter's private fields (_fqns, _shard_param_infos); where a torch lacks them the flat
    parameter is kept whole, named <module>._flat_param (statistics of the whole FSDP unit), with a
    warning."""
    out = []
    for name, p in named:
        if not getattr(p, "_is_flat_param", False):
            out.append((name, p))
            continue
        prefix = name[: -len("_flat_param")] if name.endswith("_flat_param") else ""
        try:
            fqns, infos = list(p._fqns), list(p._shard_param_infos)
            if len(fqns) != len(infos):
                raise ValueError(f"{len(fqns)} names for {len(infos)} shard infos")
            pieces = []
            for fqn, info in zip(fqns, infos):
                if info.in_shard:
                    pieces.append((prefix + fqn, _FlatPiece(p, int(info.offset_in_shard), int(info.numel_in_shard))))
                else:
                    pieces.append((prefix + fqn, _FlatPiece(p, 0, 0)))
        except (AttributeError, TypeError, ValueError) as e:
            import warnings

            warnings.warn(f"tb_plus Tracer: cannot read the layout of FSDP's flat parameter {name!r} in this torch "
                          f"({e!r}); its statistics are of the whole flat parameter (all the parameters of that FSDP "
                          "unit together), not per layer. use_orig_params=True (or FSDP2) gives per-layer "
                          "statistics.", RuntimeWarning, stacklevel=3)
            out.append((name, p))
            continue
        out.extend(pieces)
    return out


_WRAPPERS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def _user_name(model, name: str) -> str:
    """A parameter's name as the user's model names it: without DDP's `module.` and the wrappers'
    prefixes (FSDP1, activation checkpointing, torch.compile)."""
    for w in _WRAPPERS:
        name = name.replace(w, "")
    if type(model).__name__ == "DistributedDataParallel" and name.startswith("module."):
        name = name[len("module."):]
    return name


class _NoWriter:
    """The writer of a rank that does not write."""

    errors = ()

    def put(self, ready, build):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def _fsdp1_replication(units, world) -> float:
    """How many ranks hold each element of an FSDP1 model's parameters: 1 (FULL_SHARD, SHARD_GRAD_OP), the
    world (NO_SHARD), or the world over the shard group's size (HYBRID_SHARD, _HYBRID_SHARD_ZERO2). From the
    first (root) unit; units sharded otherwise get a warning."""
    found = []
    for m in units:
        strategy = getattr(getattr(m, "sharding_strategy", None), "name", "FULL_SHARD")
        if strategy == "NO_SHARD":
            found.append(float(world))
        else:
            found.append(float(world) / float(getattr(m, "world_size", world) or world))
    if len(set(found)) > 1:
        import warnings

        warnings.warn("tb_plus Tracer: FSDP units with different sharding strategies or groups: statistics assume "
                      "the root unit's", RuntimeWarning, stacklevel=4)
    return found[0]


class _Distributed:
    """How statistics combine across the ranks of torch.distributed.

    Replicated parameters (DistributedDataParallel: every rank holds them whole, gradients all-reduced):
    rank 0's statistics are the model's; the others compute nothing. Sharded parameters (FSDP2's and
    tensor parallelism's DTensors, FSDP1's use_orig_params views, and with use_orig_params=False
    each original parameter's piece of a FlatParameter's local shard): each rank's local shard gives sums of
    squares, sums, NaN/Inf counts and element counts, all-reduced once (SUM), and maxima (MAX), so the
    norms equal the unsharded ones; a parameter replicated over some mesh dimensions is divided by its
    replication (FSDP1: the world under NO_SHARD, the world over the shard group under HYBRID_SHARD). In budget mode each traced step's collective also carries each rank's proposed interval
    (MAX), so every rank traces the same steps; untraced steps make no collective."""

    def __init__(self, dist, world, rank, sharded, factors):
        self.dist, self.world, self.rank, self.sharded = dist, world, rank, sharded
        self._factors = factors
        self._on = {}

    @classmethod
    def of(cls, model, params):
        try:
            import torch.distributed as dist
        except ImportError:
            return None
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return None
        world, rank = dist.get_world_size(), dist.get_rank()
        units = [m for m in model.modules() if type(m).__name__ == "FullyShardedDataParallel"]
        fsdp1 = bool(units)
        replication = _fsdp1_replication(units, world) if fsdp1 else 1.0
        sharded = fsdp1 or any(_is_dtensor(p) for p in params)
        factors = []
        for p in params:
            if _is_dtensor(p):
                shards = 1
                for i, placement in enumerate(p.placements):
                    if placement.is_shard():
                        shards *= p.device_mesh.size(i)
                factors.append(world / shards)
            else:
                factors.append(replication if fsdp1 else float(world))
        return cls(dist, world, rank, sharded, factors)

    def factors(self, device):
        if device not in self._on:
            self._on[device] = torch.tensor(self._factors, device=device, dtype=torch.float32)
        return self._on[device]

    def combine(self, sums, maxima):
        self.dist.all_reduce(sums, op=self.dist.ReduceOp.SUM)
        self.dist.all_reduce(maxima, op=self.dist.ReduceOp.MAX)
        return sums, maxima

    def agree(self, proposal: int) -> int:
        t = torch.tensor([float(proposal)])
        if self.dist.get_backend() == "nccl":
            t = t.cuda()
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
        return int(t.item())


__all__ = ["Tracer", "TANH_SATURATED", "SIGMOID_SATURATED"]
