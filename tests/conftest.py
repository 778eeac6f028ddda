"""Shared pytest configuration for the tb_plus test suite."""

import os
import sys

# Quiet TensorFlow's C++ logging and keep it off any accelerator; both must be
# set before tensorflow is first imported (tensorboard and torch's tensorboard
# writer may import it lazily).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# Make the repository root importable (tb_plus) no matter how pytest computes
# its rootdir / sys.path insertion.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
