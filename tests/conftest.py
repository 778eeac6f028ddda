"""Shared pytest configuration for the tb_plus test suite."""

import os
import sys

import pytest

# Quiet TensorFlow's C++ logging and keep it off any accelerator; both must be
# set before tensorflow is first imported (tensorboard and torch's tensorboard
# writer may import it lazily). No test uses an accelerator: a CUDA_VISIBLE_DEVICES
# from the user's environment would only let TensorFlow (in this process and in the
# tensorboard processes the tests start) grab GPUs, so it is overridden, not defaulted.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# The tests talk to servers on loopback (tensorboard, the S3 server) through urllib and
# botocore, which send even 127.0.0.1 through an http_proxy / https_proxy from the
# environment unless no_proxy names it.
for _name in ("no_proxy", "NO_PROXY"):
    _have = [h.strip() for h in os.environ.get(_name, "").split(",") if h.strip()]
    os.environ[_name] = ",".join(_have + [h for h in ("127.0.0.1", "localhost") if h not in _have])

# Make the repository root importable (tb_plus) no matter how pytest computes
# its rootdir / sys.path insertion.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pytest.fixture(scope="session", autouse=True)
def _default_cache_dir(tmp_path_factory):
    """tb_plus's default index directory ($TB_PLUS_CACHE_DIR, else ~/.cache/tb_plus), used wherever a
    test (or a tensorboard process it starts) gives no cache directory: one of the session's own, so
    that neither the user's home nor a TB_PLUS_CACHE_DIR from their environment is read or written."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TB_PLUS_CACHE_DIR", str(tmp_path_factory.mktemp("default_cache")))
        yield
