"""Writes the demo's log directory: three real small trainings and one big synthetic run.

    python demo/make_logs.py [--logdir demo/logs] [--steps 1500] [--synthetic-mb 300]

- healthy/           an MLP on a synthesised two-spirals task, Adam lr=1e-3 (torch SummaryWriter)
- diverging_lr/      the same MLP (leaky ReLU) with SGD whose learning rate grows 1% a step from 0.05:
                     it learns, then the loss blows up to inf/NaN (tensorboardX)
- vanishing_grads/   a 16-layer sigmoid MLP with small initial weights: the first layers' gradients
                     shrink towards zero and it barely learns (torch SummaryWriter)
- corpus/            the diagnostics corpus (demo/diagnostics_corpus.py): a dozen short trainings, healthy and
                     pathological (learning rate too high or too low, zero init, deep sigmoid, dying ReLU, a frozen
                     layer, unnormalised inputs, overfitting, a NaN loss), traced with tb_plus.trace, for the
                     Diagnostics panel
- synthetic/         a few hundred MB of 300 hierarchical scalar tags in real writers' bytes
                     (bench/gen_logdir.py), to feel the store's speed

Every training logs train/loss, train/acc, eval/loss, eval/acc, per-layer gradient and weight norms
(layers/<name>/grad_norm, layers/<name>/weight_norm), the learning rate, weight histograms, and every 250
steps an evaluation of the class-1 probability (eval/spirals, tb_plus.evaluation) for the Evaluation panel.
"""

import argparse
import math
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def spirals(n, rng, noise=0.25):
    """Two interleaved spirals in 2-D: a small task that needs a non-linear model."""
    t = np.sqrt(rng.uniform(0.05, 1, n)) * 3 * math.pi
    label = rng.integers(0, 2, n)
    sign = np.where(label == 1, 1.0, -1.0)
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], 1) / 10 + rng.normal(scale=noise / 10, size=(n, 2))
    return x.astype(np.float32), label.astype(np.int64)


def train(writer, *, depth, width, act, lr, opt, init_scale, steps, seed, lr_growth=1.0):
    import torch
    from torch import nn

    from tb_plus.evaluation import log_evaluation

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    xtr, ytr = spirals(4096, rng)
    xev, yev = spirals(1024, rng)
    xtr, ytr, xev, yev = map(torch.from_numpy, (xtr, ytr, xev, yev))
    layers, dim = [], 2
    for i in range(depth):
        lin = nn.Linear(dim, width)
        if init_scale is not None:
            nn.init.normal_(lin.weight, std=init_scale)
        layers += [lin, act()]
        dim = width
    layers.append(nn.Linear(dim, 2))
    model = nn.Sequential(*layers)
    named = [(f"fc{i}", m) for i, m in enumerate(m for m in model if isinstance(m, nn.Linear))]
    optim = torch.optim.Adam(model.parameters(), lr=lr) if opt == "adam" else torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(steps):
        cur_lr = lr * lr_growth**step
        for group in optim.param_groups:
            group["lr"] = cur_lr
        idx = torch.from_numpy(rng.integers(0, len(xtr), 128))
        out = model(xtr[idx])
        loss = loss_fn(out, ytr[idx])
        optim.zero_grad()
        loss.backward()
        writer.add_scalar("train/loss", loss.item(), step)
        writer.add_scalar("train/acc", (out.argmax(1) == ytr[idx]).float().mean().item(), step)
        writer.add_scalar("optim/lr", cur_lr, step)
        for name, lin in named:
            g = lin.weight.grad
            writer.add_scalar(f"layers/{name}/grad_norm", g.norm().item() if g is not None else 0.0, step)
            writer.add_scalar(f"layers/{name}/weight_norm", lin.weight.norm().item(), step)
        optim.step()
        if step % 50 == 0 or step == steps - 1:
            with torch.no_grad():
                ev = model(xev)
                writer.add_scalar("eval/loss", loss_fn(ev, yev).item(), step)
                writer.add_scalar("eval/acc", (ev.argmax(1) == yev).float().mean().item(), step)
                if step % 250 == 0 or step == steps - 1:
                    # class-1 probability vs the labels: ROC, PR, score distributions in the Evaluation panel
                    p1 = torch.softmax(ev, 1)[:, 1]
                    if torch.isfinite(p1).all():
                        log_evaluation(writer, "eval/spirals", step, p1, yev)
        if step % 250 == 0:
            for name, lin in named[:3]:
                w = lin.weight.detach().numpy()
                if np.isfinite(w).all():
                    writer.add_histogram(f"weights/{name}", w, step)
    writer.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logdir", default=os.path.join(HERE, "logs"))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--synthetic-mb", type=float, default=300, help="0 to skip the synthetic run")
    ap.add_argument("--no-corpus", dest="corpus", action="store_false",
                    help="skip the diagnostics corpus (demo/diagnostics_corpus.py) under corpus/")
    args = ap.parse_args(argv)
    from tensorboardX import SummaryWriter as TbxWriter
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    os.makedirs(args.logdir, exist_ok=True)
    for name in ("healthy", "diverging_lr", "vanishing_grads", "synthetic", "corpus"):
        shutil.rmtree(os.path.join(args.logdir, name), ignore_errors=True)
    runs = [
        ("healthy", TorchWriter, dict(depth=3, width=64, act=__import__("torch").nn.ReLU, lr=1e-3, opt="adam", init_scale=None)),
        ("diverging_lr", TbxWriter, dict(depth=3, width=64, act=__import__("torch").nn.LeakyReLU, lr=0.05, opt="sgd",
                                         init_scale=None, lr_growth=1.01)),
        ("vanishing_grads", TorchWriter, dict(depth=16, width=32, act=__import__("torch").nn.Sigmoid, lr=1e-2, opt="sgd", init_scale=0.05)),
    ]
    for i, (name, writer_cls, cfg) in enumerate(runs):
        print(f"training {name} ({writer_cls.__module__.split('.')[0]}) for {args.steps} steps ...", flush=True)
        train(writer_cls(os.path.join(args.logdir, name)), steps=args.steps, seed=i, **cfg)
    if args.synthetic_mb > 0:
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bench"))
        import gen_logdir

        cache = os.path.join(os.path.dirname(HERE), "bench", "data")
        man = gen_logdir.generate(cache, size_gb=args.synthetic_mb / 1000, runs=1, n_tags=300, n_hist=2)
        src = os.path.join(man["logdir"], next(iter(man["runs"])))
        shutil.copytree(src, os.path.join(args.logdir, "synthetic"))
    if args.corpus:
        print("writing the diagnostics corpus (healthy and pathological short trainings) ...", flush=True)
        sys.path.insert(0, HERE)
        import diagnostics_corpus

        diagnostics_corpus.make_corpus(os.path.join(args.logdir, "corpus"))
    print(f"logs written to {args.logdir}")


if __name__ == "__main__":
    main()
