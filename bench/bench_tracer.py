#!/usr/bin/env python
"""Tracer overhead: training step time without and with tb_plus's tracer, beside naive logging.

    python bench/bench_tracer.py [--steps 200] [--device cpu|cuda] [--smoke]

Models: on the CPU a small CNN (3 conv layers, 32x32 inputs, batch 64) and an MLP (6 x 512, batch
256); on a GPU (when torch.cuda is available, or --device cuda) a ResNet-50 (torchvision, if
installed) and a 12-layer transformer encoder (d=768), bf16 autocast, batch 64. Variants, each
timed over --steps steps after a warm-up; the variants run interleaved (repeat 1 of each, then repeat
2, ...), median of --repeats (7) with the spread (lowest and highest):

* baseline: forward, backward, optimizer step;
* tracer budget=0.02 (the default: it measures its cost and picks the interval; the chosen interval
  is printed);
* tracer (norms + ratios + activations, every=1, no histograms);
* tracer + histograms every 100 steps;
* naive: writer.add_scalar of every parameter's gradient norm every step (.item() per tensor);
* naive + histograms: the same plus writer.add_histogram of every gradient every 100 steps.

Prints the step time in ms and the overhead against the baseline. Targets (GPU): <= 3% for the
tracer at every=1, <= 5% amortised with histograms every 100 steps; on the CPU the figures are
reported. Without CUDA the GPU part is left out (a line says so). --smoke: batch 8, an MLP 6 x 64, 2 steps
after 1 of warm-up, one repeat, histograms every 2 steps.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _common import add_smoke_flag, left_out  # noqa: E402


def models(device, batch=None, width=None):
    """(label, model, make input, classes) of the device's models; `batch` overrides their batch size,
    `width` the MLP's width (CPU)."""
    import torch
    from torch import nn

    if device == "cpu":
        cnn = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                            nn.Linear(64, 10))
        w = width or 512
        mlp = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(w, w), nn.ReLU())], nn.Linear(w, 10))
        b1, b2 = batch or 64, batch or 256
        return [("small CNN (batch %d, 32x32)" % b1, cnn, lambda: torch.randn(b1, 3, 32, 32), 10),
                ("MLP 6 x %d (batch %d)" % (w, b2), mlp, lambda: torch.randn(b2, w), 10)]
    b = batch or 64
    out = []
    try:
        import torchvision

        out.append(("ResNet-50 (bf16, batch %d)" % b, torchvision.models.resnet50(),
                    lambda: torch.randn(b, 3, 224, 224, device=device), 1000))
    except ImportError:
        left_out("ResNet-50", "torchvision is not installed")
    layer = nn.TransformerEncoderLayer(768, 12, 3072, batch_first=True)
    enc = nn.Sequential(nn.TransformerEncoder(layer, 12), nn.Flatten(), nn.Linear(128 * 768, 10))
    out.append(("transformer 12 x 768 (bf16, batch %d, seq 128)" % b, enc,
                lambda: torch.randn(b, 128, 768, device=device), 10))
    return out


def run_variant(name, model, make_x, classes, variant, steps, device, logdir, warmup=10, hist_every=100):
    import torch

    from tb_plus.trace import Tracer

    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = make_x().to(device)
    y = torch.randint(0, classes, (x.shape[0],), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()
    tracer = writer = None
    if variant.startswith("tracer budget"):
        tracer = Tracer(model, opt, logdir=logdir, budget=float(variant.split("=")[1]), histograms_every=0)
    elif variant.startswith("tracer"):
        tracer = Tracer(model, opt, logdir=logdir, every=1, histograms_every=hist_every if "hist" in variant else 0)
    elif variant.startswith("naive"):
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(logdir)
    names = [n for n, _ in model.named_parameters()]
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)

    def one(step):
        with amp:
            loss = loss_fn(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if writer is not None:
            for n, p in zip(names, model.parameters()):
                writer.add_scalar(f"grad_norm/{n}", p.grad.norm().item(), step)
            if "hist" in variant and step % hist_every == 0:
                for n, p in zip(names, model.parameters()):
                    writer.add_histogram(f"grad/{n}", p.grad.float(), step)
        opt.step()

    for s in range(warmup):
        one(s)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for s in range(warmup, warmup + steps):
        one(s)
    sync()
    dt = (time.perf_counter() - t0) / steps
    interval = None
    if tracer is not None:
        interval = tracer.every
        tracer.close()
    if writer is not None:
        writer.close()
    return dt, interval


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--hist-every", type=int, default=100, help="steps between histograms in the +hist variants")
    add_smoke_flag(ap)
    args = ap.parse_args()
    warmup, batch, width = 10, None, None
    if args.smoke:
        args.steps, args.repeats, args.hist_every, warmup, batch, width = 2, 1, 2, 1, 8, 64
    import torch

    def machine():
        try:
            from bench_render import machine as described

            return described()
        except ImportError:  # a machine without the store's bench dependencies (a GPU box)
            import platform

            return "%s, %d cores, %s" % (platform.processor() or platform.machine(), os.cpu_count() or 0,
                                         platform.platform(terse=True))

    if args.smoke:
        torch.set_num_threads(1)  # tiny steps: several threads only wait for each other (on a busy machine, long)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and args.device is None:
        left_out("GPU part (ResNet-50 and a transformer encoder in bf16)", "CUDA is not available here")
    torch.manual_seed(0)
    print("machine:", machine(), "| device:", torch.cuda.get_device_name() if device == "cuda" else "cpu",
          "| torch", torch.__version__, "| threads", torch.get_num_threads())
    h = args.hist_every
    variants = ["baseline", "tracer budget=0.02", "tracer", "tracer+hist%d" % h, "naive add_scalar",
                "naive add_scalar+add_histogram/%d" % h]
    for name, model, make_x, classes in models(device, batch, width):
        import copy

        print(f"\n### {name}, {sum(p.numel() for p in model.parameters()):,} parameters in "
              f"{len(list(model.parameters()))} tensors, {args.steps} steps\n")
        times = {v: [] for v in variants}
        chosen = []
        for _ in range(args.repeats):  # interleaved: a slow spell of the machine hits every variant alike
            for variant in variants:
                with tempfile.TemporaryDirectory() as d:
                    dt, interval = run_variant(name, copy.deepcopy(model), make_x, classes, variant, args.steps,
                                               device, d, warmup, h)
                times[variant].append(dt)
                if variant.startswith("tracer budget"):
                    chosen.append(interval)
        print("| variant | ms/step (median of %d) | spread ms | overhead |" % args.repeats)
        print("|---|---|---|---|")
        base = statistics.median(times["baseline"]) * 1000
        for variant in variants:
            med = statistics.median(times[variant]) * 1000
            label = variant if not variant.startswith("tracer budget") else "%s (interval chosen: %s)" % (
                variant, "/".join(str(c) for c in sorted(set(chosen))))
            print("| %s | %.2f | %.2f-%.2f | %s |" % (
                label, med, min(times[variant]) * 1000, max(times[variant]) * 1000,
                "-" if variant == "baseline" else "%+.1f%%" % (100 * (med / base - 1))))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
