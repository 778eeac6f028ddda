"""Binary-classifier evaluation: a streaming, mergeable accumulator (write side) and the curves
read from its counts (read side). No TensorFlow needed; torch and TF tensors are accepted; Keras
helpers are in tb_plus.evaluation.keras.

    from tb_plus.evaluation import BinaryAccumulator, log_evaluation
    log_evaluation(writer, "eval/ctr", step, scores, labels)   # one line in a PyTorch loop
"""

from tb_plus.evaluation.accumulator import BinaryAccumulator
from tb_plus.evaluation.buckets import Scheme

__all__ = ["BinaryAccumulator", "Scheme", "log_evaluation"]


def log_evaluation(target, tag, step, scores, labels, weights=None, kind="probability"):
    """Counts `scores` against `labels` (numpy, torch on any device, TF) and writes them as one
    evaluation summary to `target` (a SummaryWriter or a log directory); returns the accumulator.
    For scores that arrive in batches, update one BinaryAccumulator and write it once instead."""
    acc = BinaryAccumulator(kind).update(scores, labels, weights)
    acc.write(target, tag, step)
    return acc
