"""Smoke test of what users install: build the wheel, install it into a fresh venv, load the tab."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.integration.test_tensorboard_process import TensorBoard, _get

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(shutil.which("npm") is None, reason="building the wheel needs Node.js and npm")
def test_built_wheel_installs_and_serves_the_tab(tmp_path):
    tbx = pytest.importorskip("tensorboardX")
    dist = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if k != "TB_PLUS_SKIP_FRONTEND"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), ROOT], check=True, env=env, cwd=str(tmp_path))
    (wheel,) = dist.glob("tb_plus-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tb_plus/static/index.js" in names and "tb_plus/static/index.css" in names
    assert "tb_plus/http_api.md" in names
    assert any(n.startswith("tb_plus/store/_scan") and n.endswith(".so") for n in names)
    assert not any(n.endswith(".c") or "node_modules" in n or n.startswith("tests/") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + [str(wheel)], check=True)

    logdir = tmp_path / "logs"
    w = tbx.SummaryWriter(str(logdir / "run"))
    for s in range(10):
        w.add_scalar("loss", float(s), s)
    w.close()
    tb = TensorBoard(str(logdir), str(tmp_path), python=str(venv / "bin" / "python"))
    try:
        listing = tb.wait_for_plugin()
        assert listing["tb_plus"]["tab_name"] == "TB+"
        status, headers, body = _get(f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus/index.js")
        assert status == 200 and "javascript" in headers["Content-Type"] and b"render" in body
        status, _, body = _get(f"http://127.0.0.1:{tb.port}/data/plugin/tb_plus/runs")
        assert b'"run"' in body
    finally:
        tb.stop()


def test_building_from_source_without_node_says_what_is_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TB_PLUS_SKIP_FRONTEND"}
    env["PATH"] = str(tmp_path)  # no node, no npm
    out = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path / "lib")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "needs Node.js 18+ and npm, which were not found on PATH" in out.stderr + out.stdout
