"""A real `tensorboard` process with tb_plus installed (through its entry point), over HTTP."""

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

tbx = pytest.importorskip("tensorboardX")


# What TensorBoard prints once its socket is bound: "TensorBoard 2.x at http://127.0.0.1:PORT/ (Press ...".
_SERVING = re.compile(r"TensorBoard \S+ at http://127\.0\.0\.1:(\d+)/")
_LOGS = itertools.count()


def _get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers, r.read()


class TensorBoard:
    """A tensorboard process on the port the system gives it (--port 0), read back from its serving
    line: no free port is picked here and then raced for."""

    def __init__(self, logdir, cache, *args, python=sys.executable):
        self._port = None
        self.log_path = os.path.join(cache, f"tb-{os.getpid()}-{next(_LOGS)}.log")
        self.log = open(self.log_path, "w+")
        tb = os.path.join(os.path.dirname(python), "tensorboard")
        self.proc = subprocess.Popen(
            [tb, "--logdir", logdir, "--host", "127.0.0.1", "--port", "0",
             "--tb_plus_cache_dir", cache, *args],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1"),
        )

    def _serving_port(self):
        if self._port is None:
            with open(self.log_path) as f:  # its own file offset: self.log's is the child's too
                m = _SERVING.search(f.read())
            self._port = int(m.group(1)) if m else None
        return self._port

    @property
    def port(self):
        """The port it serves on (known once wait_for_plugin returned)."""
        port = self._serving_port()
        assert port is not None, "tensorboard has not said which port it serves on"
        return port

    def wait_for_plugin(self, prefix="", deadline_s=90):
        """Polls plugins_listing until tb_plus is listed (or the process dies / the deadline)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            if self._serving_port() is None:
                time.sleep(0.2)  # not bound yet
                continue
            url = f"http://127.0.0.1:{self._port}{prefix}/data/plugins_listing"
            try:
                _, _, body = _get(url, timeout=5)
                listing = json.loads(body)
                if "tb_plus" in listing:
                    return listing
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.2)  # polling a server we do not control; bounded by the deadline
        self.log.seek(0)
        raise AssertionError(f"tb_plus never listed; tensorboard said:\n{self.log.read()[-3000:]}")

    def stop(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(20)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("logs"))
    w = tbx.SummaryWriter(os.path.join(d, "run_a"))
    for s in range(500):
        w.add_scalar("train/loss", 1.0 / (s + 1), s)
    w.close()
    return d


@pytest.mark.parametrize(
    "args, prefix",
    [
        (["--load_fast", "false"], ""),
        (["--load_fast", "true"], ""),
        (["--load_fast", "auto"], ""),
        (["--load_fast", "false", "--path_prefix", "/tb"], "/tb"),
    ],
    ids=["load_fast=false", "load_fast=true", "load_fast=auto", "path_prefix"],
)
def test_tab_is_listed_and_serves_data(logdir, tmp_path, args, prefix):
    tb = TensorBoard(logdir, str(tmp_path), *args)
    try:
        listing = tb.wait_for_plugin(prefix)
        meta = listing["tb_plus"]
        assert meta["tab_name"] == "TB+" and meta["enabled"] is True
        assert meta["loading_mechanism"] == {"type": "IFRAME", "module_path": "/index.js"} or \
            meta["loading_mechanism"].get("module_path", "").endswith("index.js")
        base = f"http://127.0.0.1:{tb.port}{prefix}/data/plugin/tb_plus"
        status, headers, body = _get(f"{base}/runs")
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["runs"]["name"] == ["run_a"]
        status, _, body = _get(f"{base}/series?run=run_a&tag=train%2Floss&width=50")
        series = json.loads(body)
        assert series["total"] == 500 and series["step"][-1] == 499 and 0 < len(series["step"]) <= 202
        with pytest.raises(urllib.error.HTTPError) as e:
            _get(f"{base}/series?run=nope&tag=x")
        assert e.value.code == 404
    finally:
        tb.stop()


def test_bad_flag_value_stops_tensorboard_with_a_message(logdir, tmp_path):
    tb = TensorBoard(logdir, str(tmp_path), "--tb_plus_verify_crc", "perhaps")
    try:
        assert tb.proc.wait(60) != 0
        tb.log.seek(0)
        assert "--tb_plus_verify_crc must be true or false, not 'perhaps'" in tb.log.read()
    finally:
        tb.stop()
