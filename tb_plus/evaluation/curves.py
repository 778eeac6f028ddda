"""Evaluation curves from bucket counts (`neg`, `pos`: per bucket, ordered by score).

Everything here treats the samples of one bucket as tied scores, the way scikit-learn treats equal
scores: AUC counts a tied (positive, negative) pair as 1/2; AP steps over groups of tied scores.
The only error against exact, sort-based values comes from pairs that share a bucket, and
`auc_error_bound` bounds it: |AUC - exact| <= 1/2 * sum_b pos_b * neg_b / (P * N).
"""

from __future__ import annotations

import numpy as np


def _totals(neg, pos):
    neg = np.asarray(neg, dtype=np.float64)
    pos = np.asarray(pos, dtype=np.float64)
    return neg, pos, neg.sum(), pos.sum()


def _nonzero(neg, pos):
    """(neg, pos, ids) of the non-empty buckets only, as float64: every ranking metric needs just
    those (a scheme has millions of buckets, a sample set touches far fewer)."""
    neg, pos = np.asarray(neg), np.asarray(pos)
    ids = np.flatnonzero(neg + pos)  # counts and weights are >= 0
    return neg[ids].astype(np.float64), pos[ids].astype(np.float64), ids


def auc_roc(neg, pos, compact=False) -> float:
    """P(score of a positive > score of a negative), ties 1/2; NaN without both classes.
    compact=True: neg and pos already hold only the non-empty buckets, as float64."""
    neg, pos, N, P = _totals(neg, pos) if compact else _totals(*_nonzero(neg, pos)[:2])
    if N == 0 or P == 0:
        return float("nan")
    below = np.cumsum(neg) - neg  # negatives in lower buckets
    return float(np.dot(pos, below + 0.5 * neg) / (P * N))


def auc_error_bound(neg, pos, compact=False) -> float:
    neg, pos, N, P = _totals(neg, pos) if compact else _totals(*_nonzero(neg, pos)[:2])
    if N == 0 or P == 0:
        return float("nan")
    return float(0.5 * np.dot(pos, neg) / (P * N))


def _descending(neg, pos):
    """Cumulative (tp, fp) at each non-empty bucket, highest scores first, and the bucket ids."""
    neg, pos, ids = _nonzero(neg, pos)
    return np.cumsum(pos[::-1]), np.cumsum(neg[::-1]), ids[::-1]


def average_precision(neg, pos, compact=False) -> float:
    """Average precision (scikit-learn's definition): sum over thresholds of (R_k - R_k-1) P_k."""
    P = float(np.asarray(pos).sum())
    if P == 0:
        return float("nan")
    if compact:
        tp, fp = np.cumsum(pos[::-1]), np.cumsum(neg[::-1])
    else:
        tp, fp, _ = _descending(neg, pos)
    precision = tp / (tp + fp)
    recall = tp / P
    return float(np.dot(np.diff(recall, prepend=0.0), precision))


def roc_curve(neg, pos, scheme, offset=0):
    """(fpr, tpr, thresholds): one point per non-empty bucket, from the highest scores down, after a
    first point (0, 0); a point's threshold is its bucket's lower score edge (score >= threshold)."""
    N, P = float(np.asarray(neg).sum()), float(np.asarray(pos).sum())
    tp, fp, nz = _descending(neg, pos)
    fpr = np.concatenate([[0.0], fp / N if N else fp * np.nan])
    tpr = np.concatenate([[0.0], tp / P if P else tp * np.nan])
    thr = np.concatenate([[np.inf], scheme.lower_edges(nz + offset)])
    return fpr, tpr, thr


def pr_curve(neg, pos, scheme, offset=0):
    """(precision, recall, thresholds) per non-empty bucket, highest scores first."""
    P = float(np.asarray(pos).sum())
    tp, fp, nz = _descending(neg, pos)
    precision = tp / np.maximum(tp + fp, 1e-300)
    recall = tp / P if P else tp * np.nan
    return precision, recall, scheme.lower_edges(nz + offset)


def distributions(neg, pos, scheme, bins=100, space="auto"):
    """Score histograms of negatives and positives: (edges, neg_counts, pos_counts) over `bins` equal
    bins of the score (probabilities) or of the logit (space="logit", or "auto" for logit kinds:
    over the range actually used)."""
    neg, pos, N, P = _totals(neg, pos)
    centres = scheme.centres()
    if space == "auto":
        space = "probability" if scheme.kind == "probability" else "logit"
    x = centres
    if space == "logit" and scheme.kind == "probability":
        c = np.clip(centres, 1e-15, 1 - 1e-15)
        x = np.log(c / (1 - c))
    used = np.flatnonzero((neg != 0) | (pos != 0))
    if space == "probability":
        lo, hi = 0.0, 1.0
    elif len(used):
        lo, hi = float(x[used].min()), float(x[used].max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    else:
        lo, hi = -1.0, 1.0
    edges = np.linspace(lo, hi, bins + 1)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    return edges, np.bincount(which, weights=neg, minlength=bins), np.bincount(which, weights=pos, minlength=bins)


def calibration(neg, pos, scheme, bins=10):
    """Reliability curve for probability scores: per equal-width bin of predicted probability, the
    mean prediction, the fraction of positives and the number of samples; and the expected
    calibration error (ECE, weighted by samples)."""
    if scheme.kind != "probability":
        raise ValueError("calibration needs probability scores")
    neg, pos, N, P = _totals(neg, pos)
    centres = scheme.centres()
    which = np.clip((centres * bins).astype(np.int64), 0, bins - 1)
    n = np.bincount(which, weights=neg + pos, minlength=bins)
    s = np.bincount(which, weights=(neg + pos) * centres, minlength=bins)
    k = np.bincount(which, weights=pos, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = s / n
        frac_pos = k / n
    total = n.sum()
    ece = float(np.nansum(n * np.abs(mean_pred - frac_pos)) / total) if total else float("nan")
    return {"mean_predicted": mean_pred, "fraction_positive": frac_pos, "count": n, "ece": ece}


def from_pr_curve_tensor(t):
    """ROC and AUC from a TensorBoard pr_curves tensor ([6, T]: TP, FP, TN, FN, precision, recall per
    threshold, thresholds ascending): (fpr, tpr, auc) with AUC by the trapezoid rule over the T
    thresholds (what those counts allow; tb_plus's own accumulator is far finer)."""
    t = np.asarray(t, dtype=np.float64)
    tp, fp, tn, fn = t[0], t[1], t[2], t[3]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tp / (tp + fn)
        fpr = fp / (fp + tn)
    order = np.argsort(fpr, kind="stable")
    f = np.concatenate([[0.0], fpr[order], [1.0]])
    r = np.concatenate([[0.0], tpr[order], [1.0]])
    good = np.isfinite(f) & np.isfinite(r)
    f, r = f[good], r[good]
    # keep the ROC monotone: at equal fpr take the points in increasing tpr
    o = np.lexsort((r, f))
    f, r = f[o], r[o]
    return fpr, tpr, float(np.trapezoid(r, f)) if hasattr(np, "trapezoid") else float(np.trapz(r, f))
