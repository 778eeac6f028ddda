"""The store must work where TensorFlow is not installed (only the Keras parts need it)."""

import json
import os
import subprocess
import sys

import pytest

tbx = pytest.importorskip("tensorboardX")

_CHILD = r"""
import json, sys
sys.modules["tensorflow"] = None  # any `import tensorflow` now raises ImportError
from tb_plus.store import Logdir
ld = Logdir(sys.argv[1], cache_dir=sys.argv[2])
out = {"scalars": ld.scalars(".", "loss").step.tolist(),
       "hist_buckets": [len(t.numpy) for t in ld.histograms(".", "h")],
       "text": [t.numpy.tolist() for t in ld.tensors(".", "note/text_summary")]}
out["tf_loaded"] = any(m.startswith("tensorflow") and sys.modules[m] is not None for m in sys.modules)
print(json.dumps(out, default=lambda b: b.decode()))
"""


def test_store_runs_with_tensorflow_blocked(tmp_path):
    import numpy as np

    logdir = str(tmp_path / "logs")
    w = tbx.SummaryWriter(logdir)
    for s in range(5):
        w.add_scalar("loss", 1.0 / (s + 1), s)
    w.add_histogram("h", np.arange(100.0), 2)
    w.add_text("note", "hello", 3)
    w.close()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, logdir, str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=root),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["scalars"] == [0, 1, 2, 3, 4]
    assert len(got["hist_buckets"]) == 1 and got["hist_buckets"][0] > 0
    assert got["text"] == [["hello"]]  # tensorboardX writes text as a (1,) string tensor
    assert got["tf_loaded"] is False
