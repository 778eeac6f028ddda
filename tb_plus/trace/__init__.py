"""Per-layer training statistics at a small cost: weights, gradients, update ratios, activations.

    from tb_plus.trace import Tracer            # PyTorch (imports torch on first use)
    tracer = Tracer(model, optimizer, logdir="runs/exp1")
    for batch in loader:
        ...
        optimizer.step()                        # the tracer hooks the optimizer: nothing else to call

Statistics are computed on the device with batched ops, copied to the host once per traced step
without blocking, and written by a background thread as one packed tensor summary per family per
step (see tb_plus/metadata.py); the store expands them into scalar series trace/<stat>/<layer>.
"""


def __getattr__(name):
    if name == "Tracer":
        from tb_plus.trace.torch import Tracer

        return Tracer
    raise AttributeError(name)
