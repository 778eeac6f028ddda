"""Importing tb_plus (as TensorBoard imports its entry point) loads nothing heavy."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def loaded_after(imports, candidates):
    """Which of `candidates` are in sys.modules after `import <imports>` in a fresh interpreter."""
    code = f"import sys, {imports}; print([m for m in {candidates!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_import_loads_no_numpy_tensorboard_or_tensorflow():
    heavy = ("numpy", "tensorboard", "tensorflow", "torch", "google.protobuf")
    assert loaded_after("tb_plus, tb_plus.store, tb_plus.cli", heavy) == "[]"


def test_entry_point_module_imports_only_tensorboard_base():
    """TensorBoard imports tb_plus.plugin at every start: no numpy, store or TensorFlow then."""
    heavy = ("numpy", "tensorflow", "torch", "tb_plus.store", "tb_plus.routes", "tb_plus.query")
    assert loaded_after("tb_plus.plugin", heavy) == "[]"
