"""Every benchmark still runs: bench/bench_*.py --smoke (the same code paths at tiny sizes, in seconds).

One test per script, found by glob, so a new benchmark is covered without touching this file. A smoke
run asserts nothing about speed; it must exit 0 and print its table. Anchors that are not installed
(Chromium, TensorFlow, moto, ...) are left out by the script itself, with a line saying so.
"""

import glob
import os
import signal
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "bench", "bench_*.py")))
TIMEOUT_S = 600


def tail(text, n=60):
    return "\n".join(text.splitlines()[-n:])


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 10, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=[os.path.basename(s)[:-3] for s in SCRIPTS])
def test_smoke(script):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p),
               PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
    # its own process group: on a timeout the script and every child still in that group are killed
    p = subprocess.Popen([sys.executable, script, "--smoke"], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            out, err = "", ""
        pytest.fail("%s --smoke ran past %d s\n--- stdout ---\n%s\n--- stderr ---\n%s"
                    % (script, TIMEOUT_S, tail(out), tail(err)))
    report = "%s --smoke: exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        script, p.returncode, tail(out), tail(err))
    assert p.returncode == 0, report
    table = [ln for ln in out.splitlines() if ln.startswith("|") and ln.rstrip().endswith("|")]
    assert len(table) >= 3, "no table printed\n" + report  # header, separator, at least one row
