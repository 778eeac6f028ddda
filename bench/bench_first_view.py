"""First view: how soon a person opening a log directory sees a chart with data, TB+ beside stock Time Series.

Starts one `tensorboard --load_fast=false` with tb_plus over the log directory (default: ../shared/wild-logs,
91 real runs of other projects; --logdir PATH for another), waits until both tb_plus and TensorBoard's own
loader list every run, then opens, in fresh headless Chromium contexts (no saved state, nothing cached),
alternately:

- TensorBoard's page on the TB+ tab (`/#tb_plus`): time from navigation to the first chart card drawn with
  points (its `data-points` non-empty), with no click: the first view charts the key series (/keytags);
- TensorBoard's page on Time Series (`/#timeseries`): time from navigation to the first card showing data: a
  scalar card's data table row (the stock page draws scalars on a canvas that the page cannot read), a
  histogram's drawing or an image.

Both include TensorBoard's own page load (the TB+ tab lives in an iframe of it). --repeat loads of each
(median and best shown). Prints a markdown table naming the machine.

Usage: python bench/bench_first_view.py [--logdir PATH] [--repeat 5] [--smoke]
--smoke: a two-run log directory written with tensorboardX in a temporary directory, one load of each.
"""

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _common import (CHROMIUM, add_smoke_flag, browser_missing, launch_tensorboard, left_out,  # noqa: E402
                     stop_process, temp_dir)
from bench_render import CHROMIUM_ARGS, machine  # noqa: E402

WILD = os.path.join(ROOT, "..", "shared", "wild-logs")
TB_PLUS_FRAME = 'iframe[src*="plugin_entry.html?name=tb_plus"]'
TB_PLUS_DRAWN = '.tbp-chart[data-state="ready"] .tbp-plot[data-points]:not([data-points="{}"])'
# The first card that shows data: a scalar card's data table row, a histogram drawn, or an image shown
# (Time Series lays its groups out alphabetically and renders only the cards in view: on wild-logs the
# first ones are an image and histograms).
STOCK_DRAWN = "scalar-card tb-data-table-content-row, histogram-card tb-histogram svg, image-card img"


def get_json(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def write_small(path):
    from tensorboardX import SummaryWriter

    for run in ("a", "b"):
        w = SummaryWriter(os.path.join(path, run))
        for s in range(50):
            w.add_scalar("train/loss", 1.0 / (1 + s), s)
            w.add_scalar("gpu/mem", 100.0 + s, s)
        w.close()


def start(logdir, log_path):
    """TensorBoard with tb_plus on `logdir`, once tb_plus and the stock loader both list every run."""
    proc, port = launch_tensorboard(["--logdir", logdir, "--load_fast=false", "--reload_interval", "0"], log_path)
    base = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 300
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("tensorboard exited; see %s" % log_path)
        try:
            answer = get_json(base + "/data/plugin/tb_plus/runs")
            names = answer["runs"]["name"]
            if names and not answer["progress"]["indexing"] and names == last:
                get_json(base + "/data/plugin/scalars/tags")  # the stock loader answers too
                return proc, base, len(names)
            last = names
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1.0)  # polling a loading server, bounded by the deadline
    stop_process(proc)
    raise SystemExit("tensorboard did not settle in 300 s; see %s" % log_path)


def load_once(browser, url, frame, selector):
    """Seconds from navigation to `selector` (inside `frame` when given), in a fresh context."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US", timezone_id="UTC")
    try:
        page = ctx.new_page()
        t0 = time.monotonic()
        page.goto(url)
        scope = page.frame_locator(frame) if frame else page
        scope.locator(selector).first.wait_for(timeout=120000)
        return time.monotonic() - t0
    finally:
        ctx.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logdir", default=WILD)
    ap.add_argument("--repeat", type=int, default=5)
    add_smoke_flag(ap)
    args = ap.parse_args()
    why_not = browser_missing()
    if why_not is None and not os.path.exists(os.path.join(ROOT, "tb_plus", "static", "index.js")):
        why_not = "the frontend is not built (cd tb_plus_frontend && npm run build)"
    if why_not is not None and not args.smoke:
        raise SystemExit("this benchmark needs a browser: %s" % why_not)
    with temp_dir(prefix="tbp_bench_first_view_") as work:
        if args.smoke:
            args.repeat = 1
            args.logdir = os.path.join(work, "logs")
            write_small(args.logdir)
        elif not os.path.isdir(args.logdir):
            raise SystemExit("no log directory %s (../shared/wild-logs is not part of the project: --logdir PATH)"
                             % args.logdir)
        proc, base, nruns = start(os.path.realpath(args.logdir), os.path.join(work, "tensorboard.log"))
        times = {"TB+ tab (first view)": [], "stock Time Series": []}
        try:
            if why_not is not None:
                left_out("Chromium page loads (every figure of the table)", why_not)
            else:
                from playwright.sync_api import sync_playwright

                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    try:
                        for _ in range(args.repeat):
                            times["TB+ tab (first view)"].append(load_once(browser, base + "/#tb_plus", TB_PLUS_FRAME,
                                                                           TB_PLUS_DRAWN))
                            times["stock Time Series"].append(load_once(browser, base + "/#timeseries", None,
                                                                        STOCK_DRAWN))
                    finally:
                        browser.close()
        finally:
            stop_process(proc)
    print("\nFirst chart with data after opening the page, no click (%s, %d runs); %s" % (
        os.path.basename(os.path.normpath(args.logdir)) if not args.smoke else "smoke", nruns, machine()))
    print("\n| page | median s | best s | loads |\n|---|---|---|---|")
    for name, ts in times.items():
        if ts:
            print("| %s | %.2f | %.2f | %d |" % (name, statistics.median(ts), min(ts), len(ts)))
        else:
            print("| %s | - | - | 0 |" % name)


if __name__ == "__main__":
    main()
