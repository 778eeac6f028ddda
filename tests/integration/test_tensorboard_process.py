"""A real `tensorboard` process with tb_plus installed (through its entry point), over HTTP."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

tbx = pytest.importorskip("tensorboardX")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers, r.read()


class TensorBoard:
    def __init__(self, logdir, cache, *args, python=sys.executable):
        self.port = _free_port()
        self.log = open(os.path.join(cache, f"tb-{self.port}.log"), "w+")
        tb = os.path.join(os.path.dirname(python), "tensorboard")
        self.proc = subprocess.Popen(
            [tb, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(self.port),
             "--tb_plus_cache_dir", cache, *args],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )

    def wait_for_plugin(self, prefix="", deadline_s=90):
        """Polls plugins_listing until tb_plus is listed (or the process dies / the deadline)."""
        end = time.monotonic() + deadline_s
        url = f"http://127.0.0.1:{self.port}{prefix}/data/plugins_listing"
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
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
