"""Importing tb_plus (as TensorBoard will import its entry point) loads nothing heavy."""

import os
import subprocess
import sys


def test_import_loads_no_numpy_tensorboard_or_tensorflow():
    code = (
        "import sys, tb_plus, tb_plus.store, tb_plus.cli; "
        "heavy = [m for m in ('numpy', 'tensorboard', 'tensorflow', 'torch', 'google.protobuf') if m in sys.modules]; "
        "print(heavy)"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=root), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_entry_point_module_imports_only_tensorboard_base():
    """TensorBoard imports tb_plus.plugin at every start: no numpy, store or TensorFlow then."""
    code = (
        "import sys, tb_plus.plugin; "
        "heavy = [m for m in ('numpy', 'tensorflow', 'torch', 'tb_plus.store', 'tb_plus.routes', 'tb_plus.query') "
        "if m in sys.modules]; print(heavy)"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=root), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
