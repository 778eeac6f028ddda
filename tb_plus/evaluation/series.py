"""Evaluation series for the store (tb_plus/store/derived.py): per step of an evaluation tag, the
AUC-ROC, the average precision and the AUC's volatility; per step of a TensorBoard pr_curves tag,
the ROC AUC its threshold counts allow.

Volatility: the standard deviation of the AUC over the last VOLATILITY_WINDOW evaluations (the
current one included; population std, from the second evaluation on), which is how jumpy the
metric is from one evaluation to the next.
"""

from __future__ import annotations

import numpy as np

from tb_plus import metadata
from tb_plus.evaluation import curves
from tb_plus.evaluation.accumulator import BinaryAccumulator

VOLATILITY_WINDOW = 5
NAMES = {
    metadata.EVAL_PLUGIN: ["auc_roc", "average_precision", "auc_roc_volatility"],
    "pr_curves": ["roc_auc"],
}


def names(plugin, tag, content) -> dict:
    return {f"{tag}/{n}": n for n in NAMES[plugin]}


def rolling_std(values, window=VOLATILITY_WINDOW) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    out = np.full(len(v), np.nan)
    for i in range(1, len(v)):
        w = v[max(0, i - window + 1) : i + 1]
        w = w[np.isfinite(w)]
        if len(w) >= 2:
            out[i] = w.std()
    return out


def accumulators(ld, run, tag):
    """[(step, wall_time, BinaryAccumulator)] of an evaluation tag, in written order."""
    fields = metadata.parse_content(ld.tag_info(run, tag).plugin_content)
    return [(d.step, d.wall_time, BinaryAccumulator.from_tensor(d.numpy, fields)) for d in ld.tensors(run, tag)]


def compute(plugin, ld, run, tag) -> dict:
    if plugin == "pr_curves":
        data = ld.tensors(run, tag)
        aucs = []
        for d in data:
            try:
                aucs.append(curves.from_pr_curve_tensor(d.numpy)[2])
            except (ValueError, IndexError):
                aucs.append(float("nan"))
        return {"roc_auc": ([d.step for d in data], [d.wall_time for d in data], aucs)}
    rows = []
    for step, wall, acc in accumulators(ld, run, tag):
        rows.append((step, wall, acc.auc(), acc.average_precision()))
    steps = [r[0] for r in rows]
    walls = [r[1] for r in rows]
    auc = [r[2] for r in rows]
    return {
        "auc_roc": (steps, walls, auc),
        "average_precision": (steps, walls, [r[3] for r in rows]),
        "auc_roc_volatility": (steps, walls, rolling_std(auc).tolist()),
    }
