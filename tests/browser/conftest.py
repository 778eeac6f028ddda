"""Fixtures for the browser tests: a generated logdir, a real TensorBoard, headless Chromium.

The whole directory is skipped, with the reason, when /usr/bin/chromium or Python Playwright is
missing or the tb_plus plugin is not installed (no ``tensorboard_plugins`` entry point). A missing
frontend bundle (tb_plus/static/index.js, built by ``npm run build`` in tb_plus_frontend/) skips
locally but fails under CI (``CI`` set), where it means the build step is broken.
"""

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib import metadata

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every browser context: the same language, number and date formats and time zone on every machine
# (Chromium would otherwise take them from the environment: 1,234 or 1.234, run names collated per locale).
CONTEXT = {"locale": "en-US", "timezone_id": "UTC"}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLE = os.path.join(ROOT, "tb_plus", "static", "index.js")
ARTIFACTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "artifacts")

# Run in every page before its scripts: a saved view unless one is there (tb_plus.state.v2 is the tab's key).
NO_FIRST_VIEW = (
    "try { if (!localStorage.getItem('tb_plus.state.v2')) localStorage.setItem('tb_plus.state.v2', 'refresh=30'); }"
    " catch (e) {}"
)
# The generated logdir: what the tests expect to see.
RUNS = ("run_a", "run_b")
TAGS = ("train/loss", "train/acc", "eval/loss", "epoch")
STEPS = 200  # train/* are logged at every step 0..STEPS-1, eval/loss and epoch every 10 steps
EPOCH_EVERY, STEPS_PER_EPOCH = 10, 40.0  # epoch = step / 40 (exact in float32), logged every 10 steps
SPIKE_RUN, SPIKE_STEP, SPIKE_VALUE = "run_a", 137, 123.5  # 123.5 is exact in float32
NAN_RUN, NAN_STEP = "run_b", 60  # train/loss is NaN there


def _missing_requirement():
    if not os.path.exists(CHROMIUM):
        return "%s not found (apt-get install chromium)" % CHROMIUM
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python playwright not installed (pip install playwright==1.63.0)"
    names = {ep.name for ep in metadata.entry_points(group="tensorboard_plugins")}
    if "tb_plus" not in names:
        return "tb_plus plugin not installed (pip install -e .): no tensorboard_plugins entry point"
    return None


_REASON = _missing_requirement()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "first_view: the page starts without a saved view, so the tab opens its first view (key series)"
    )


def pytest_collection_modifyitems(config, items):
    if not _REASON:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    marker = pytest.mark.skip(reason="browser tests: " + _REASON)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(marker)


def loss_value(run, step):
    """The train/loss value written for (run, step); tests compare the legend with it."""
    if run == SPIKE_RUN and step == SPIKE_STEP:
        return SPIKE_VALUE
    if run == NAN_RUN and step == NAN_STEP:
        return float("nan")
    offset = 0.0 if run == "run_a" else 0.25
    return 2.0 * math.exp(-step / 40.0) + offset


def _write_logdir(root):
    from tensorboardX import SummaryWriter

    for run in RUNS:
        writer = SummaryWriter(os.path.join(root, run), flush_secs=1)
        for step in range(STEPS):
            loss = loss_value(run, step)
            writer.add_scalar("train/loss", loss, step)
            writer.add_scalar("train/acc", 1.0 - step / (2.0 * STEPS), step)
            if step % 10 == 0:
                writer.add_scalar("eval/loss", 1.5 * math.exp(-step / 50.0), step)
            if step % EPOCH_EVERY == 0:
                writer.add_scalar("epoch", step / STEPS_PER_EPOCH, step)
        writer.close()


def _get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8")


def _tail(path, n=4000):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


@pytest.fixture(scope="session")
def logdir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("browser_logdir"))
    _write_logdir(root)
    return root


def _require_bundle():
    if _REASON:
        pytest.skip(_REASON)
    if not os.path.exists(BUNDLE):
        message = "frontend bundle missing: %s (cd tb_plus_frontend && npm install && npm run build)" % BUNDLE
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


# What TensorBoard prints once its socket is bound: "TensorBoard 2.x at http://127.0.0.1:PORT/ (Press ...".
SERVING = re.compile(rb"TensorBoard \S+ at http://127\.0\.0\.1:(\d+)/")


def serving_port(log_path):
    """The port in TensorBoard's serving line in its log, or None while it has not printed it."""
    with open(log_path, "rb") as f:
        m = SERVING.search(f.read())
    return int(m.group(1)) if m else None


@contextlib.contextmanager
def run_tensorboard(logdir, log_path, runs, extra_args=()):
    """Runs `tensorboard --load_fast=false` until tb_plus lists `runs`; yields its base URL.

    The port is the one the system gives TensorBoard (--port 0), read back from its serving line: no
    free port is picked here and then raced for. `extra_args` are added to the command line (e.g.
    tb_plus's --tb_plus_roots). The server runs in its own process group, which is killed on exit.
    """
    log = open(log_path, "wb")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "tensorboard.main",
            "--logdir", logdir,
            "--host", "127.0.0.1",
            "--port", "0",
            "--load_fast=false",
            "--reload_interval", "1",
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    base = None
    try:
        deadline = time.monotonic() + 90
        ready = False
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("tensorboard exited with %s:\n%s" % (proc.returncode, _tail(log_path)))
            if base is None:
                port = serving_port(log_path)
                base = None if port is None else "http://127.0.0.1:%d" % port
            try:
                if base is not None and "tb_plus" in _get(base + "/data/plugins_listing"):
                    answer = json.loads(_get(base + "/data/plugin/tb_plus/runs"))
                    if sorted(answer["runs"]["name"]) == sorted(runs) and not answer["progress"]["indexing"]:
                        ready = True
                        break
            except (urllib.error.URLError, OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        if not ready:
            pytest.fail("tensorboard did not list tb_plus with runs %r within 90 s:\n%s" % (runs, _tail(log_path)))
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def tensorboard_url(logdir, tmp_path_factory):
    """One TensorBoard over the shared (read-only) logdir for the whole session."""
    _require_bundle()
    log_path = str(tmp_path_factory.mktemp("tensorboard_log") / "tensorboard.log")
    with run_tensorboard(logdir, log_path, RUNS) as base:
        yield base


@pytest.fixture
def live_tensorboard(tmp_path):
    """A private TensorBoard over a logdir the test may append to; yields (base URL, logdir)."""
    _require_bundle()
    root = str(tmp_path / "live_logdir")
    _write_logdir(root)
    with run_tensorboard(root, str(tmp_path / "tensorboard.log"), RUNS) as base:
        yield base, root


@pytest.fixture(scope="session")
def browser():
    if _REASON:
        pytest.skip(_REASON)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def new_context(browser, first_view=False, **kwargs):
    """A browser context with the tests' locale and time zone; unless `first_view`, with a saved view
    (NO_FIRST_VIEW), so the tab starts without charts."""
    context = browser.new_context(**CONTEXT, **kwargs)
    if not first_view:
        context.add_init_script(NO_FIRST_VIEW)
    return context


@pytest.fixture
def page(browser, request):
    """A fresh context (fresh localStorage) per test; a screenshot lands in artifacts/ afterwards."""
    # A saved (empty) view, as after a first visit: the tab then starts without charts, as most tests
    # expect; tests marked first_view see the first visit's key series.
    context = new_context(browser, bool(request.node.get_closest_marker("first_view")), viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15000)
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.page_errors = errors
    try:
        yield pg
    finally:
        os.makedirs(ARTIFACTS, exist_ok=True)
        try:
            pg.screenshot(path=os.path.join(ARTIFACTS, "%s.png" % request.node.name))
        except Exception:  # noqa: BLE001 - a screenshot must not hide the test's own result
            pass
        context.close()
