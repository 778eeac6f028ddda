"""Plugin names and summary formats shared by tb_plus's write sides and its read side.

Every tb_plus summary is an ordinary TensorBoard tensor summary (so any TensorBoard reader keeps it)
whose `SummaryMetadata.plugin_data` names one of the plugins below and carries a small JSON object
as `content`: the format version plus what a reader needs to interpret the tensor.

Evaluation (`tb_plus.evaluation`): plugin `tb_plus_eval`; the tensor is [3, k] (int64, or float64 when
weighted): bucket index, negatives, positives, for the k non-empty buckets of the score scheme named
in the content, e.g. {"version": 1, "kind": "probability", "bits": 13, "emin": -40, "nan": 0}.
"""

from __future__ import annotations

import json

EVAL_PLUGIN = "tb_plus_eval"
EVAL_VERSION = 1


def content(**fields) -> bytes:
    return json.dumps(dict(fields), sort_keys=True, separators=(",", ":")).encode("utf-8")


def parse_content(raw: bytes) -> dict:
    """The JSON object of a tb_plus summary's plugin content; ValueError if it is not one."""
    try:
        obj = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"not tb_plus summary metadata: {e}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("version"), int):
        raise ValueError("not tb_plus summary metadata: no version")
    return obj


def summary_metadata(plugin: str, fields: dict, display_name: str = "", description: str = ""):
    """A SummaryMetadata proto for a tb_plus tensor summary."""
    from tensorboard.compat.proto import summary_pb2

    md = summary_pb2.SummaryMetadata(display_name=display_name, summary_description=description)
    md.plugin_data.plugin_name = plugin
    md.plugin_data.content = content(**fields)
    md.data_class = summary_pb2.DATA_CLASS_TENSOR
    return md

# Tracer (`tb_plus.trace`): plugin `tb_plus_trace`; one tensor summary per family per traced step,
# a float32 [layers, statistics] matrix; the content names both, e.g.
# {"version": 1, "family": "params", "layers": ["fc1.weight", ...], "stats": ["weight_norm", ...]}.
# The store expands it into scalar series trace/<statistic>/<layer> (tb_plus/trace/series.py).
TRACE_PLUGIN = "tb_plus_trace"
TRACE_VERSION = 1
PARAM_STATS = (
    "weight_norm",  # ||W||_2
    "grad_norm",  # ||g||_2
    "update_norm",  # ||W_t - W_t-1||_2 over the optimizer step
    "update_ratio",  # ||dW||_2 / ||W||_2
    "update_ratio_mean",  # mean|dW| / mean|W|
    "weight_max",  # max |W|
    "grad_max",  # max |g|
    "grad_nan",  # NaN entries of g
    "grad_inf",  # +/-Inf entries of g
    "weight_nan",
    "weight_inf",
)
ACT_STATS = (
    "mean",  # of the module's output
    "std",
    "zero_fraction",  # output entries exactly 0 (ReLU: inactive)
    "saturated_fraction",  # tanh / sigmoid: pre-activations in the flat tails (see tb_plus.trace.torch)
    "dead_fraction",  # ReLU-like: units never positive over the last complete window
)
