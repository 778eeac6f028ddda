"""Binary-classifier evaluation: a streaming, mergeable accumulator (write side) and the curves
read from its counts (read side). No TensorFlow needed; torch and TF tensors are accepted.

    from tb_plus.evaluation import BinaryAccumulator
"""

from tb_plus.evaluation.accumulator import BinaryAccumulator
from tb_plus.evaluation.buckets import Scheme

__all__ = ["BinaryAccumulator", "Scheme"]
