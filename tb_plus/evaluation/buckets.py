"""The bucket scheme of the evaluation accumulator: float-bit buckets on a symmetric coordinate.

A score s is mapped to a coordinate c >= 0 and a side:

* probabilities (kind="probability", s in [0, 1]): c = min(s, 1 - s), side = s > 0.5;
* logits (kind="logit", any real s): c = |s|, side = s >= 0.

c is rounded to float32 and its bit pattern is cut to the exponent and the top `bits` mantissa
bits: a bucket covers [2^e (1 + j 2^-bits), 2^e (1 + (j+1) 2^-bits)), a relative width of
2^-bits (1/8192 for bits=13) at every scale. So resolution follows the scores where they
concentrate: near 0 and near 1 for probabilities (p = 1e-9 and p = 1 - 1e-9 are resolved as finely,
relatively, as p = 0.3), and at every magnitude for logits. Coordinates below 2^emin share the
first bucket of their side, coordinates of 2^emax and more the last one. The global bucket index
is monotone in s: buckets are ordered by score, so every ranking metric (ROC, AUC, PR, AP) only
ever confuses two samples that share a bucket.

Defaults: probability: bits=13, emin=-126 (2^-126 ~ 1.2e-38, float32's smallest normal), emax=-1
(c < 0.5): 2 x 1,024,000 buckets; logit: bits=13, emin=-126, emax=7 (|s| < 128): 2 x 1,089,536 buckets.
"""

from __future__ import annotations

import dataclasses

import numpy as np

KINDS = ("probability", "logit")
_DEFAULTS = {"probability": (-126, -1), "logit": (-126, 7)}


@dataclasses.dataclass(frozen=True)
class Scheme:
    kind: str = "probability"
    bits: int = 13
    emin: int | None = None
    emax: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if not 4 <= int(self.bits) <= 20:
            raise ValueError(f"bits must be 4 to 20, not {self.bits!r}")
        lo, hi = _DEFAULTS[self.kind]
        object.__setattr__(self, "emin", lo if self.emin is None else int(self.emin))
        object.__setattr__(self, "emax", hi if self.emax is None else int(self.emax))
        if not -126 <= self.emin < self.emax <= 127:
            raise ValueError(f"need -126 <= emin < emax <= 127, not {self.emin}, {self.emax}")

    @property
    def nside(self) -> int:
        return (self.emax - self.emin) << self.bits

    @property
    def size(self) -> int:
        """Number of buckets (both sides)."""
        return 2 * self.nside

    def fields(self) -> dict:
        return {"kind": self.kind, "bits": self.bits, "emin": self.emin, "emax": self.emax}

    # ------------------------------------------------------------------ numpy

    def index(self, scores: np.ndarray) -> np.ndarray:
        """Global bucket index (int64) of each finite score; NaN must be removed first."""
        s = np.asarray(scores, dtype=np.float64)  # 1 - s exact, then one rounding to float32 (as in C)
        if self.kind == "probability":
            hi = s > 0.5
            c = np.where(hi, 1 - s, s)
        else:
            hi = s >= 0
            c = np.abs(s)
        b = self._side_index(c)
        if self.kind == "probability":
            return np.where(hi, self.size - 1 - b, b)
        return np.where(hi, self.nside + b, self.nside - 1 - b)

    def _side_index(self, c: np.ndarray) -> np.ndarray:
        c32 = np.asarray(c, dtype=np.float32)
        np.maximum(c32, 0, out=c32)  # -0.0 and tiny negatives from 1 - s
        b = (c32.view(np.uint32) >> np.uint32(23 - self.bits)).astype(np.int64)
        b -= (self.emin + 127) << self.bits
        np.clip(b, 0, self.nside - 1, out=b)
        return b

    def side_edges(self) -> np.ndarray:
        """Lower coordinate of each side bucket (length nside + 1; the first is 0, the last 2^emax)."""
        j = np.arange(self.nside + 1, dtype=np.int64)
        e = self.emin + (j >> self.bits)
        m = j & ((1 << self.bits) - 1)
        low = np.ldexp(1.0 + m / float(1 << self.bits), e)
        low[0] = 0.0
        return low

    def edges(self) -> np.ndarray:
        """Score boundaries of the global buckets, ascending (length size + 1): bucket g holds
        scores between edges[g] and edges[g + 1] (the outer edges are the clamps: 0 and 1 for
        probabilities, -inf and +inf for logits)."""
        side = self.side_edges()
        if self.kind == "probability":
            lower = side[:-1]
            out = np.concatenate([lower, [0.5], (1 - lower)[::-1]])
            out[-1] = 1.0
            return out
        up = side.copy()
        up[-1] = np.inf
        return np.concatenate([-up[::-1], up[1:]])

    def lower_edges(self, ids) -> np.ndarray:
        """edges()[ids] without building every edge: the lower score boundary of buckets `ids`."""
        g = np.asarray(ids, dtype=np.int64)
        n = self.nside

        def side_low(j):  # lower coordinate of side bucket j (0 for the first)
            e = self.emin + (j >> self.bits)
            m = j & ((1 << self.bits) - 1)
            out = np.ldexp(1.0 + m / float(1 << self.bits), e)
            return np.where(j == 0, 0.0, out)

        if self.kind == "probability":
            upper = g >= n
            j = np.where(upper, 2 * n - g, g)  # side 1: bucket g starts where side bucket 2n-1-g ends
            low = side_low(np.minimum(j, n))
            low = np.where(j >= n, 0.5, low)
            return np.where(upper, 1 - low, low)
        upper = g >= n
        j = np.where(upper, g - n, n - g)  # side 0: bucket g starts at -(end of side bucket n-1-g)
        low = side_low(np.minimum(j, n))
        low = np.where((~upper) & (j >= n), np.inf, low)
        return np.where(upper, low, -low)

    def centres(self) -> np.ndarray:
        """A representative score per bucket (the middle of its edges; the clamps use the inner edge)."""
        e = self.edges()
        lo, hi = e[:-1], e[1:]
        mid = 0.5 * (lo + hi)
        mid = np.where(np.isinf(lo), hi, mid)
        return np.where(np.isinf(hi), lo, mid)

    # ------------------------------------------------------------------ torch

    def index_torch(self, scores):
        """The same indices computed on the scores' own device (float32 arithmetic)."""
        import torch

        s = scores.detach()
        if not s.is_floating_point():
            s = s.to(torch.float32)
        if self.kind == "probability":
            hi = s > 0.5
            c = torch.where(hi, 1 - s, s)
        else:
            hi = s >= 0
            c = s.abs()
        c = c.to(torch.float32).clamp_min(0)
        b = (c.view(torch.int32) >> (23 - self.bits)).to(torch.int64)
        b = (b - ((self.emin + 127) << self.bits)).clamp_(0, self.nside - 1)
        if self.kind == "probability":
            return torch.where(hi, self.size - 1 - b, b)
        return torch.where(hi, self.nside + b, self.nside - 1 - b)
