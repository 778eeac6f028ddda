"""Shared by the bench scripts (not a benchmark itself): smoke mode, anchors that are not installed,
and a real `tensorboard` on a port the OS picks.

Smoke mode (`--smoke` on every bench/bench_*.py) runs the same code paths as the full benchmark at
tiny sizes, in seconds, and prints the same tables; its figures mean nothing. Its data goes to a
fresh temporary directory that is removed at the end (never bench/data, never a previous run's
data). tests/test_bench_smoke.py runs every script that way.
"""

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CHROMIUM = "/usr/bin/chromium"
SMOKE_HELP = ("tiny sizes, seconds: runs the same code paths and prints the same tables (the figures mean "
              "nothing); data in a temporary directory, removed at the end")


def add_smoke_flag(parser):
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)


@contextlib.contextmanager
def temp_dir(prefix="tbp_bench_"):
    """A fresh temporary directory, removed on exit (whatever happened inside). Inside, tb_plus's
    default index directory (TB_PLUS_CACHE_DIR, for the tensorboard processes started here and any
    Logdir opened without a cache directory) is one of its own: nothing is read from or left in
    ~/.cache/tb_plus."""
    d = tempfile.mkdtemp(prefix=prefix)
    before = os.environ.get("TB_PLUS_CACHE_DIR")
    os.environ["TB_PLUS_CACHE_DIR"] = os.path.join(d, "default_cache")
    try:
        yield d
    finally:
        if before is None:
            os.environ.pop("TB_PLUS_CACHE_DIR", None)
        else:
            os.environ["TB_PLUS_CACHE_DIR"] = before
        shutil.rmtree(d, ignore_errors=True)


# Loopback servers (tensorboard, the S3 server) must not be reached through an http_proxy / https_proxy
# from the environment, which urllib and botocore use even for 127.0.0.1 unless no_proxy names it.
for _name in ("no_proxy", "NO_PROXY"):
    _have = [h.strip() for h in os.environ.get(_name, "").split(",") if h.strip()]
    os.environ[_name] = ",".join(_have + [h for h in ("127.0.0.1", "localhost") if h not in _have])


def left_out(what, why):
    """One line saying which anchor or part of a benchmark did not run, and why."""
    print("left out: %s (%s)" % (what, why), flush=True)


def missing(*modules):
    """The first of `modules` that cannot be imported here (found without importing it), or None."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def browser_missing():
    """Why a headless Chromium driven by Playwright cannot run here, or None when it can."""
    if not os.path.exists(CHROMIUM):
        return "no Chromium at %s" % CHROMIUM
    if missing("playwright"):
        return "Python package playwright not installed"
    return None


_URL = re.compile(rb"TensorBoard \S+ at http://[^/\s]*:(\d+)/")


def spawn_tensorboard(args, log_path, env=None, exe=None):
    """Starts `tensorboard` with `args` on 127.0.0.1 and a port the OS picks (--port 0), its output to
    `log_path`, in its own process group; tensorboard_port() says where it serves."""
    cmd = list(exe or [sys.executable, "-m", "tensorboard.main"]) + list(args) + ["--host", "127.0.0.1", "--port", "0"]
    env = dict(os.environ if env is None else env)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
    proc.cmd, proc.log_path = cmd, log_path
    return proc


def tensorboard_port(proc, timeout=300, exit_ok=False):
    """The port a tensorboard of spawn_tensorboard() serves on, once it printed its URL (the server
    may still be loading). When it dies or stays silent for `timeout` s: stops it and exits with its
    log, or, with exit_ok, returns None (the caller stops it)."""
    deadline = time.monotonic() + timeout
    while True:
        with open(proc.log_path, "rb") as f:
            m = _URL.search(f.read())
        if m:
            return int(m.group(1))
        if exit_ok and (proc.poll() is not None or time.monotonic() > deadline):
            return None
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            with open(proc.log_path, "rb") as f:
                tail = f.read()[-3000:].decode("utf-8", "replace")
            raise SystemExit("tensorboard %s (%s); its log:\n%s" % (
                "exited with %s" % proc.returncode if proc.returncode is not None else "did not start in %d s" % timeout,
                " ".join(proc.cmd), tail))
        time.sleep(0.1)  # until the server prints its URL; bounded by the deadline


def launch_tensorboard(args, log_path, env=None, exe=None, timeout=300):
    """spawn_tensorboard() + tensorboard_port(): (proc, port)."""
    proc = spawn_tensorboard(args, log_path, env, exe)
    return proc, tensorboard_port(proc, timeout)


def stop_process(proc, grace=15):
    """SIGTERM, then SIGKILL, to the process group of `proc` (started with start_new_session), and
    SIGKILL to any of its descendants that left the group (when psutil is installed)."""
    try:
        import psutil

        desc = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # no psutil, or the process is gone
        desc = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    for p in desc:
        try:
            p.kill()
        except Exception:  # psutil.Error: already gone
            pass
