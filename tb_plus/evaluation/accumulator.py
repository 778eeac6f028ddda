"""BinaryAccumulator: streaming, mergeable bucket counts of a binary classifier's scores.

    acc = BinaryAccumulator("probability")        # or "logit" for raw logits
    for scores, labels in batches:
        acc.update(scores, labels)                # numpy, lists, torch tensors (any device), TF tensors
    acc.merge(other_worker_acc)                   # same scheme: counts add up exactly
    acc.auc(), acc.average_precision()            # read side: tb_plus.evaluation.curves
    acc.write(writer_or_logdir, "eval/ctr", step) # one tensor summary with the non-empty buckets

Counts are int64 (float64 when sample weights are given). Memory is fixed by the scheme (two count
arrays of `scheme.size`, 10 MB by default), whatever the number of samples. Torch tensors are
bucketed on their device and counted there without synchronising; the counts reach the host when
read, merged or written.
"""

from __future__ import annotations

import numpy as np

from tb_plus.evaluation import curves
from tb_plus.evaluation.buckets import Scheme

_CHUNK = 1 << 20  # samples per bincount: keeps the temporaries in cache


class BinaryAccumulator:
    def __init__(self, kind: str = "probability", bits: int = 13, *, scheme: Scheme | None = None,
                 nan: str = "raise"):
        """nan: "raise" (a batch with a NaN score is refused with ValueError and not counted; torch
        tensors are checked when the counts are read, to spare a device synchronisation per batch)
        or "skip" (NaN scores are counted in `nan` and left out)."""
        if nan not in ("raise", "skip"):
            raise ValueError(f"nan must be 'raise' or 'skip', not {nan!r}")
        self.nan_policy = nan
        self.scheme = scheme or Scheme(kind, bits)
        self._counts = None  # [2, size]: negatives, positives
        self._neg = self._pos = None  # views of its rows
        self._dev = None  # torch counts [2, size] on a device, added in lazily
        self._lo, self._hi = None, None  # the range of buckets that may be non-empty
        self._compact_cache = None
        self.nan = 0  # samples with a NaN score (left out)
        self.weighted = False
        self.force_numpy = False  # True: never the C counter (tests compare both)

    # ------------------------------------------------------------------ writing

    def _ensure(self, weighted: bool):
        if self._counts is None:
            self._counts = np.zeros((2, self.scheme.size), np.float64 if weighted else np.int64)
        if weighted and not self.weighted:
            self._counts = self._counts.astype(np.float64)
        self.weighted = self.weighted or weighted
        self._neg, self._pos = self._counts[0], self._counts[1]

    def update(self, scores, labels, weights=None) -> "BinaryAccumulator":
        """Adds a batch. labels: bool or 0/1 (anything > 0.5 is positive); weights: optional,
        non-negative, same shape. NaN scores: see the constructor's `nan`."""
        self._compact_cache = None
        if _is_torch(scores):
            return self._update_torch(scores, labels, weights)
        s = _to_numpy(scores).reshape(-1)
        y = _to_numpy(labels).reshape(-1)
        if len(s) != len(y):
            raise ValueError(f"{len(s)} scores but {len(y)} labels")
        w = None
        if weights is not None:
            w = _to_numpy(weights).reshape(-1).astype(np.float64)
            if len(w) != len(s):
                raise ValueError(f"{len(s)} scores but {len(w)} weights")
            if (w < 0).any() or not np.isfinite(w).all():
                raise ValueError("weights must be finite and >= 0")
        self._ensure(w is not None)
        y = y > 0.5 if y.dtype != np.bool_ else y
        fast = _c_counter()
        if fast is not None and not self.force_numpy:
            if s.dtype != np.float32 and s.dtype != np.float64:
                s = s.astype(np.float64)
            sc = self.scheme
            s, y8 = np.ascontiguousarray(s), np.ascontiguousarray(y).view(np.uint8)
            nan, lo, hi = fast(s, y8, w, self._counts, sc.kind == "logit", sc.bits, sc.emin, sc.emax)
            if nan and self.nan_policy == "raise":  # take the batch back out, then refuse it
                keep = ~np.isnan(s)
                g = sc.index(s[keep]) + y[keep] * sc.size
                self._counts.reshape(-1)[:] -= np.bincount(g, weights=None if w is None else w[keep],
                                                           minlength=2 * sc.size).astype(self._counts.dtype)
                _refuse_nan(s)
            self.nan += nan if self.weighted else int(nan)
            self._touch(lo, hi)
            return self
        for i in range(0, len(s), _CHUNK):
            self._add(s[i : i + _CHUNK], y[i : i + _CHUNK], None if w is None else w[i : i + _CHUNK])
        return self

    def _add(self, s, y, w):
        bad = np.isnan(s)
        if bad.any() and self.nan_policy == "raise":
            _refuse_nan(s)
        if bad.any():
            self.nan += int(bad.sum()) if w is None else float(w[bad].sum())
            keep = ~bad
            s, y = s[keep], y[keep]
            w = None if w is None else w[keep]
        g = self.scheme.index(s)
        if len(g):
            self._touch(int(g.min()), int(g.max()))
        n = self.scheme.size
        g[y] += n  # positives in the upper half
        counts = np.bincount(g, weights=w, minlength=2 * n)
        self._neg += counts[:n].astype(self._neg.dtype, copy=False)
        self._pos += counts[n:].astype(self._pos.dtype, copy=False)

    def _touch(self, lo, hi):
        if hi >= lo:
            self._lo = lo if self._lo is None else min(self._lo, lo)
            self._hi = hi if self._hi is None else max(self._hi, hi)

    def _update_torch(self, scores, labels, weights):
        import torch

        s = scores.detach().reshape(-1)
        y = labels.detach().reshape(-1).to(s.device)
        if s.numel() != y.numel():
            raise ValueError(f"{s.numel()} scores but {y.numel()} labels")
        y = y if y.dtype == torch.bool else y > 0.5
        weighted = weights is not None
        if self._dev is None:
            self._dev = torch.zeros(2 * self.scheme.size, dtype=torch.float64 if weighted else torch.int64,
                                    device=s.device)
            self._nan_dev = torch.zeros((), dtype=self._dev.dtype, device=s.device)
        elif weighted and self._dev.dtype != torch.float64:
            self._dev = self._dev.to(torch.float64)
            self._nan_dev = self._nan_dev.to(torch.float64)
        self._ensure(weighted)
        w = weights.detach().reshape(-1).to(device=s.device, dtype=self._dev.dtype) if weighted else None
        bad = torch.isnan(s)
        g = self.scheme.index_torch(torch.where(bad, torch.zeros_like(s), s)) + y.to(torch.int64) * self.scheme.size
        ones = w if weighted else torch.ones_like(g, dtype=self._dev.dtype)
        ones = torch.where(bad, torch.zeros_like(ones), ones)
        self._dev.index_add_(0, g, ones)  # no host synchronisation
        self._nan_dev += torch.where(bad, w if weighted else torch.ones_like(ones), torch.zeros_like(ones)).sum()
        return self

    def _flush_device(self):
        if self._dev is not None:
            self._compact_cache = None
            counts = self._dev.cpu().numpy()
            n = self.scheme.size
            self._neg += counts[:n].astype(self._neg.dtype, copy=False)
            self._pos += counts[n:].astype(self._pos.dtype, copy=False)
            nan = self._nan_dev.item()
            self.nan += nan if self.weighted else int(nan)
            self._dev = None
            if nan and self.nan_policy == "raise":
                raise ValueError(f"{nan:g} NaN scores were given to update() as torch tensors: a NaN score cannot "
                                 "be ranked (fix the model's output, or use nan='skip' to leave them out)")
            nz = np.flatnonzero(counts[:n] + counts[n:])
            if len(nz):
                self._touch(int(nz[0]), int(nz[-1]))

    def merge(self, other: "BinaryAccumulator") -> "BinaryAccumulator":
        """Adds `other`'s counts (same scheme) to these."""
        if other.scheme != self.scheme:
            raise ValueError(f"cannot merge {other.scheme} into {self.scheme}")
        neg, pos = other.counts()
        self._flush_device()
        self._compact_cache = None
        self._ensure(other.weighted)
        self._neg += neg.astype(self._neg.dtype, copy=False)
        self._pos += pos.astype(self._pos.dtype, copy=False)
        self.nan += other.nan
        if other._lo is not None:
            self._touch(other._lo, other._hi)
        return self

    def reset(self) -> None:
        """Empties the counts, keeping their memory (zeroing only the range used): an accumulator
        reused from one evaluation to the next pays no first-touch page faults again."""
        self._compact_cache = None
        self._dev = None
        if self._counts is not None and self._lo is not None:
            self._counts[:, self._lo : self._hi + 1] = 0
        if self.weighted:  # back to integer counts on the next update
            self._counts = self._neg = self._pos = None
        self.weighted = False
        self._lo = self._hi = None
        self.nan = 0

    # ------------------------------------------------------------------ reading

    def counts(self):
        """(negatives, positives) per bucket, numpy arrays of scheme.size."""
        self._flush_device()
        if self._neg is None:
            self._ensure(False)
        return self._neg, self._pos

    def __len__(self):
        neg, pos = self.counts()
        return int(neg.sum() + pos.sum())

    def used(self):
        """(neg, pos, offset): the counts of the range of buckets that holds every sample (the
        scheme has millions of buckets; the read side only needs these)."""
        neg, pos = self.counts()
        if self._lo is None:
            return neg[:0], pos[:0], 0
        return neg[self._lo : self._hi + 1], pos[self._lo : self._hi + 1], self._lo

    def _compact(self):
        """(neg, pos) of the non-empty buckets only, in order, as float64; kept until the counts change."""
        neg, pos, _ = self.used()
        if self._compact_cache is None:
            n, p, _ = curves._nonzero(neg, pos)
            self._compact_cache = (n, p)
        return self._compact_cache

    def auc(self) -> float:
        return curves.auc_roc(*self._compact(), compact=True)

    def average_precision(self) -> float:
        return curves.average_precision(*self._compact(), compact=True)

    def auc_error_bound(self) -> float:
        return curves.auc_error_bound(*self._compact(), compact=True)

    def roc_curve(self):
        neg, pos, off = self.used()
        return curves.roc_curve(neg, pos, self.scheme, off)

    def pr_curve(self):
        neg, pos, off = self.used()
        return curves.pr_curve(neg, pos, self.scheme, off)

    # ------------------------------------------------------------------ summaries

    def to_tensor(self) -> np.ndarray:
        """[3, k]: bucket index, negatives, positives of the k non-empty buckets."""
        neg, pos, off = self.used()
        nz = np.flatnonzero((neg != 0) | (pos != 0))
        dtype = np.float64 if self.weighted else np.int64
        return np.stack([(nz + off).astype(dtype), neg[nz].astype(dtype), pos[nz].astype(dtype)])

    @classmethod
    def from_tensor(cls, tensor, fields: dict) -> "BinaryAccumulator":
        scheme = Scheme(fields["kind"], int(fields["bits"]), emin=int(fields["emin"]), emax=int(fields["emax"]))
        acc = cls(scheme=scheme)
        t = np.asarray(tensor)
        if t.ndim != 2 or t.shape[0] != 3:
            raise ValueError(f"an evaluation tensor is [3, k], not {list(t.shape)}")
        idx = t[0].astype(np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= scheme.size):
            raise ValueError("bucket index out of range for the scheme")
        acc._ensure(t.dtype.kind == "f")
        acc._neg[idx] = t[1]
        acc._pos[idx] = t[2]
        if len(idx):
            acc._touch(int(idx.min()), int(idx.max()))
        acc.nan = fields.get("nan", 0)
        return acc

    def summary(self, tag: str):
        """A Summary proto holding this accumulator as one tensor summary."""
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.util import tensor_util

        from tb_plus import metadata

        md = metadata.summary_metadata(
            metadata.EVAL_PLUGIN,
            dict(self.scheme.fields(), version=metadata.EVAL_VERSION, nan=self.nan, weighted=self.weighted),
        )
        tp = tensor_util.make_tensor_proto(self.to_tensor())
        return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=md, tensor=tp)])

    def write(self, target, tag: str, step: int, walltime=None) -> None:
        """Writes the counts as one tensor summary: `target` is a torch or tensorboardX
        SummaryWriter, a tensorboard EventFileWriter, or a log directory path."""
        import time

        from tensorboard.compat.proto import event_pb2

        ev = event_pb2.Event(wall_time=walltime or time.time(), step=int(step), summary=self.summary(tag))
        if isinstance(target, (str, bytes)) or hasattr(target, "__fspath__"):
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            w = EventFileWriter(str(target))
            w.add_event(ev)
            w.close()
            return
        fw = getattr(target, "file_writer", None) or getattr(target, "_get_file_writer", lambda: None)()
        if fw is None:
            fw = target
        if type(fw).__module__.startswith("tensorboardX"):  # tensorboardX has its own copy of the protos
            from tensorboardX.proto import event_pb2 as tbx_event_pb2

            ev = tbx_event_pb2.Event.FromString(ev.SerializeToString())
        if hasattr(fw, "add_event"):
            fw.add_event(ev)
        else:
            raise TypeError(f"cannot write to {type(target).__name__}: give a SummaryWriter or a directory")


def _refuse_nan(s):
    bad = np.flatnonzero(np.isnan(s))
    raise ValueError(f"{len(bad)} NaN scores in this batch (the first at index {int(bad[0])}): a NaN score cannot be "
                     "ranked, so the batch was not counted (fix the model's output, or use nan='skip' to leave "
                     "NaN scores out)")


def _c_counter():
    try:
        from tb_plus.store._scan import bucket_counts
    except ImportError:
        return None
    return bucket_counts


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        return np.asarray(x.numpy())  # TF eager tensors
    return np.asarray(x)
