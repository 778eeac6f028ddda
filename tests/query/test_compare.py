"""tb_plus.query.compare against np.interp."""

import numpy as np
import pytest

from tb_plus.query.compare import compare


@pytest.mark.parametrize("op", ["diff", "ratio"])
def test_against_np_interp(op):
    rng = np.random.default_rng(3)
    xa = np.arange(0, 1000, 3)
    va = rng.normal(size=len(xa))
    xb = np.arange(100, 800, 7)
    vb = rng.normal(size=len(xb)) + 5
    idx, out = compare(xa, va, xb, vb, op)
    keep = (xa >= 100) & (xa <= xb[-1])
    assert idx.tolist() == np.flatnonzero(keep).tolist()
    b = np.interp(xa[keep], xb, vb)
    want = va[keep] - b if op == "diff" else va[keep] / b
    np.testing.assert_allclose(out, want, rtol=1e-12)


def test_nonfinite_zero_division_and_b_duplicates():
    xa = np.array([0, 1, 2, 3, 4])
    va = np.array([1.0, np.nan, -2.0, 0.0, 1.0])
    xb = np.array([0, 1, 2, 3, 4, 2])  # a restart rewrote step 2: its last value (0) wins
    vb = np.array([0.0, 1.0, 9.0, 0.0, np.nan, 0.0])  # B's NaN at 4 is left out: B's range ends at 3
    idx, out = compare(xa, va, xb, vb, "ratio")
    assert idx.tolist() == [0, 1, 2, 3]
    assert out[0] == np.inf and np.isnan(out[1]) and out[2] == -np.inf and np.isnan(out[3])
    idx, out = compare(xa, va, xb, vb, "diff")
    assert out[0] == 1.0 and np.isnan(out[1]) and out[2] == -2.0


def test_empty_and_single_point():
    assert compare(np.arange(3), np.ones(3), np.empty(0), np.empty(0))[0].tolist() == []
    assert compare(np.empty(0), np.empty(0), np.arange(3), np.ones(3))[0].tolist() == []
    idx, out = compare(np.arange(3), np.ones(3), np.array([1]), np.array([4.0]))
    assert idx.tolist() == [1] and out.tolist() == [-3.0]
    with pytest.raises(ValueError):
        compare(np.arange(3), np.ones(3), np.arange(3), np.ones(3), "sum")
