"""Per-layer training statistics at a small cost: weights, gradients, update ratios, activations.

    from tb_plus.trace import Tracer            # PyTorch (imports torch on first use)
    tracer = Tracer(model, optimizer, logdir="runs/exp1")
    for batch in loader:
        ...
        optimizer.step()                        # the tracer hooks the optimizer: nothing else to call

Statistics are computed on the device with batched ops, copied to the host once per traced step
without blocking, and written by a background thread as one packed tensor summary per family per
step (see tb_plus/metadata.py); the store expands them into scalar series trace/<stat>/<layer>.

Integrations (each imports its framework only when imported): tb_plus.trace.hf (TracerCallback, and
evaluation_metrics for the Trainer's compute_metrics), tb_plus.trace.lightning (TracerCallback,
EvaluationCallback), tb_plus.trace.keras; tb_plus.trace.evaluation turns their classifier scores into
evaluation accumulators.
"""


def __getattr__(name):
    if name == "Tracer":
        from tb_plus.trace.torch import Tracer

        return Tracer
    raise AttributeError(name)
