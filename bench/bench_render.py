"""Render and interaction figures of the TB+ page: 50 charts x 10 runs x 2,000 points.

Writes (once, then reuses) a logdir with tensorboardX: 10 runs x 50 tags x 2,000 steps (--smoke: 2 runs x 3
tags x 50 steps, in a temporary directory); starts `tensorboard --load_fast=true` on a port the OS picks;
opens the standalone page with the 10 runs and 50 tags in its URL in headless Chromium (Playwright); measures in the page with performance.now() and
requestAnimationFrame:

- first draw: from navigation start (performance.now() = 0) to the first animation frame in which all
  50 charts hold 10 series each (their data-state is "ready");
- hover: 100 mouse moves across one chart, one per animation frame (synthetic mousemove on uPlot's
  .u-over, which also moves the linked cursors of the 49 other charts and updates every legend). Reported:
  the main-thread work per move (dispatch + style/layout forced by reading layout), and the intervals
  between the animation frames that carried the moves (real frame times; vsync-bound at 16.7 ms).

Usage: python bench/bench_render.py [--runs 10] [--tags 50] [--steps 2000] [--repeat 3] [--smoke]
Prints a markdown table naming the machine. Without Chromium (or Playwright) the full run stops; --smoke
says so, still starts the server and loads the page over HTTP, and marks the figures left out.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _common import (CHROMIUM, add_smoke_flag, browser_missing, launch_tensorboard, left_out,  # noqa: E402
                     temp_dir, stop_process)

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
FIRST_DRAW_TARGET_MS = 1000.0
HOVER_TARGET_MS = 16.0

# Runs in the page from document start: records when every chart on screen is drawn with all its
# runs (charts below the fold fetch and draw when scrolled into view), in a rAF loop.
READY_PROBE = """
(() => {
  window.__tbpBench = { readyAt: null, visible: 0 };
  const want = %(charts)d, runs = %(runs)d;
  const drawn = (c) => {
    const p = c.querySelector('.tbp-plot');
    return c.dataset.state === 'ready' && p && p.dataset.series === String(runs);
  };
  // the cards on screen, re-measured every 100 ms (cards grow as they draw; reading the layout
  // on every frame would itself slow the page down)
  let vis = null, measured = -1e9;
  const tick = (now) => {
    if (now - measured > 100) {
      const cards = document.querySelectorAll('.tbp-chart');
      if (cards.length === want) {
        const vh = window.innerHeight;
        vis = [...cards].filter((c) => { const r = c.getBoundingClientRect(); return r.bottom > 0 && r.top < vh; });
        measured = now;
      }
    }
    if (vis !== null && vis.length && vis.every(drawn)) {
      requestAnimationFrame(() => { window.__tbpBench.readyAt = performance.now(); window.__tbpBench.visible = vis.length; });
      return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""

# Scrolls every chart into view in turn and waits until it is drawn: the time until all are drawn.
ALL_DRAWN = """
async ({ runs }) => {
  const t0 = performance.now();
  const cards = [...document.querySelectorAll('.tbp-chart')];
  for (const c of cards) {
    c.scrollIntoView({ block: 'center' });
    await new Promise((done) => {
      const check = () => {
        const p = c.querySelector('.tbp-plot');
        if (c.dataset.state === 'ready' && p && p.dataset.series === String(runs)) done();
        else requestAnimationFrame(check);
      };
      check();
    });
  }
  return performance.now() - t0;
}
"""

HOVER = """
async ({ moves }) => {
  const plot = document.querySelector('.tbp-chart .tbp-plot');
  const over = plot.querySelector('.u-over');
  const r = over.getBoundingClientRect();
  const work = [], frames = [];
  let last = null;
  await new Promise((done) => {
    let i = 0;
    const step = (ts) => {
      if (last !== null) frames.push(ts - last);
      last = ts;
      if (i >= moves) { done(); return; }
      const x = r.left + 2 + (r.width - 4) * (i / (moves - 1));
      const y = r.top + r.height * (0.3 + 0.4 * ((i % 10) / 9));
      const t0 = performance.now();
      over.dispatchEvent(new MouseEvent('mousemove', { clientX: x, clientY: y, bubbles: true }));
      void document.body.offsetHeight; // style and layout of everything the move changed
      work.push(performance.now() - t0);
      i++;
      requestAnimationFrame(step);
    };
    over.dispatchEvent(new MouseEvent('mouseenter', { clientX: r.left + 2, clientY: r.top + 2 }));
    requestAnimationFrame(step);
  });
  return { work, frames };
}
"""


def write_logdir(path, runs, tags, steps):
    from tensorboardX import SummaryWriter

    import math

    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for r in range(runs):
        w = SummaryWriter(os.path.join(tmp, "lr=%g/seed%d" % (10 ** -(1 + r % 3), r)), flush_secs=30)
        for s in range(steps):
            for t in range(tags):
                v = math.exp(-s / (300.0 + 20 * t)) + 0.05 * math.sin(s / 7.0 + r + t) + 0.01 * r
                w.add_scalar("group%d/metric%02d" % (t // 10, t), v, s)
        w.close()
    os.replace(tmp, path)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def start_tensorboard(logdir, runs, log_path):
    """A real `tensorboard --load_fast=true` with tb_plus on `logdir` (on a port the OS picks), once
    tb_plus has indexed `runs` runs and the stock loader lists them too. Returns (proc, base URL)."""
    proc, port = launch_tensorboard(["--logdir", logdir, "--load_fast=true", "--reload_interval", "0"], log_path)
    base = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("tensorboard exited; see %s" % log_path)
        try:
            answer = get_json(base + "/data/plugin/tb_plus/runs")
            if len(answer["runs"]["name"]) == runs and not answer["progress"]["indexing"]:
                # measure a settled server: stock TensorBoard's own loader (the Rust data server,
                # which lists a run once it is fully read) must be done too, not competing for CPU
                stock = get_json(base + "/data/plugin/scalars/tags")
                if len(stock) == runs:
                    return proc, base
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.3)  # polling a server that is loading; bounded by the deadline
    stop_process(proc)
    raise SystemExit("tensorboard did not index %d runs in 300 s; see %s" % (runs, log_path))


def page_tags(base, n):
    """The first `n` scalar tags of the log directory, depth-first in natural order (/tags list mode)."""
    return get_json(base + "/data/plugin/tb_plus/tags?" + urllib.parse.urlencode({"under": "", "limit": n}))["tags"]


def machine():
    from bench_store import machine_info  # one reader of the CPU model for every bench

    return "%s, %d cores, %s" % (machine_info()["cpu"], os.cpu_count() or 0, platform.platform(terse=True))


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def measure_page(url, ntags, nruns, repeat, moves):
    """Loads the page `repeat` times in headless Chromium: (first draws ms, charts on screen, hover, all drawn ms)."""
    from playwright.sync_api import sync_playwright

    first_draws = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for i in range(repeat):
            ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
            page = ctx.new_page()
            page.add_init_script(READY_PROBE % {"charts": ntags, "runs": nruns})
            page.goto(url)
            page.wait_for_function("window.__tbpBench && window.__tbpBench.readyAt !== null", timeout=120000)
            first_draws.append(page.evaluate("window.__tbpBench.readyAt"))
            visible = page.evaluate("window.__tbpBench.visible")
            if i == repeat - 1:
                page.wait_for_timeout(300)
                hover = page.evaluate(HOVER, {"moves": moves})
                rest_ms = page.evaluate(ALL_DRAWN, {"runs": nruns})
                all_drawn = first_draws[-1] + rest_ms
            ctx.close()
        browser.close()
    return first_draws, visible, hover, all_drawn


def report(ntags, nruns, steps, first_draws, visible, hover, all_drawn):
    na = first_draws is None
    fd_best, fd_med = (None, None) if na else (min(first_draws), statistics.median(first_draws))
    w_med, w_p95 = (None, None) if na else (statistics.median(hover["work"]), pct(hover["work"], 0.95))
    f_med, f_p95 = (None, None) if na else (statistics.median(hover["frames"]), pct(hover["frames"], 0.95))
    ok = lambda v, t: "-" if v is None else "yes" if v <= t else "**no**"  # noqa: E731
    num = lambda v, spec: "left out" if v is None else spec % v  # noqa: E731
    print("### TB+ page render: %d charts x %d runs x %d points\n" % (ntags, nruns, steps))
    print("Machine: %s; Chromium headless (software rendering), viewport 1600x1000\n" % machine())
    print("| measure | value | target | met |")
    print("|---|---|---|---|")
    print("| first draw, navigation -> the %s charts on screen drawn with all %d runs (page of %d; median of %d loads) | %s | <= %.0f ms | %s |"
          % ("-" if na else visible, nruns, ntags, 0 if na else len(first_draws), num(fd_med, "%.0f ms"),
             FIRST_DRAW_TARGET_MS, ok(fd_med, FIRST_DRAW_TARGET_MS)))
    print("| first draw, best load | %s | <= %.0f ms | %s |" % (num(fd_best, "%.0f ms"), FIRST_DRAW_TARGET_MS,
                                                             ok(fd_best, FIRST_DRAW_TARGET_MS)))
    print("| all %d charts drawn, scrolling each into view after the first draw (last load) | %s | - | - |"
          % (ntags, num(all_drawn, "%.0f ms")))
    print("| hover: main-thread work per move, median (%s moves) | %s | <= %.0f ms | %s |"
          % ("-" if na else len(hover["work"]), num(w_med, "%.1f ms"), HOVER_TARGET_MS, ok(w_med, HOVER_TARGET_MS)))
    print("| hover: main-thread work per move, p95 | %s | <= %.0f ms | %s |" % (num(w_p95, "%.1f ms"), HOVER_TARGET_MS,
                                                                              ok(w_p95, HOVER_TARGET_MS)))
    print("| hover: frame interval, median (vsync-bound) | %s | <= %.1f ms | %s |" % (num(f_med, "%.1f ms"), 16.7,
                                                                                     ok(f_med, 16.8)))
    print("| hover: frame interval, p95 | %s | <= %.1f ms | %s |" % (num(f_p95, "%.1f ms"), 16.7, ok(f_p95, 16.8)))
    if not na:
        print("\nfirst draws (ms): %s" % ", ".join("%.0f" % v for v in first_draws))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--tags", type=int, default=50)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3, help="page loads to time (the best and median are shown)")
    ap.add_argument("--moves", type=int, default=100)
    add_smoke_flag(ap)
    args = ap.parse_args()
    if args.smoke:
        args.runs, args.tags, args.steps, args.repeat, args.moves = 2, 3, 50, 1, 5
    why_not = browser_missing()
    if why_not is None and not os.path.exists(os.path.join(ROOT, "tb_plus", "static", "index.js")):
        if not args.smoke:
            raise SystemExit("build the frontend first: cd tb_plus_frontend && npm run build")
        why_not = "the frontend is not built (cd tb_plus_frontend && npm run build)"
    if why_not is not None:
        if not args.smoke:
            raise SystemExit("this benchmark needs a browser: %s" % why_not)
        left_out("Chromium page load and hover (every figure of the table)", why_not)

    with temp_dir(prefix="tbp_bench_render_") as work:
        if args.smoke:
            logdir = os.path.join(work, "logs")
        else:
            logdir = os.path.join(HERE, "data", "render_%dx%dx%d" % (args.runs, args.tags, args.steps))
        if not os.path.isdir(logdir):
            t = time.monotonic()
            print("writing %s ..." % logdir, file=sys.stderr)
            write_logdir(logdir, args.runs, args.tags, args.steps)
            print("  %.1f s" % (time.monotonic() - t), file=sys.stderr)

        proc, base = start_tensorboard(logdir, args.runs, os.path.join(work, "tensorboard.log"))
        try:
            names = get_json(base + "/data/plugin/tb_plus/runs")["runs"]["name"]
            tags = page_tags(base, args.tags)
            assert len(names) == args.runs and len(tags) == args.tags, (names, tags)
            params = [("run", r) for r in names] + [("tag", t) for t in tags] + [("refresh", "0")]
            url = base + "/data/plugin/tb_plus/standalone?" + urllib.parse.urlencode(params)
            if why_not is None:
                measured = measure_page(url, len(tags), len(names), args.repeat, args.moves)
            else:
                with urllib.request.urlopen(url, timeout=30) as r:  # the page is served, at least
                    assert r.status == 200
                measured = (None, None, None, None)
        finally:
            stop_process(proc)
    report(len(tags), len(names), args.steps, *measured)


if __name__ == "__main__":
    main()
