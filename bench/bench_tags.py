#!/usr/bin/env python
"""Tag tree and run table at scale: 100,000 tags in one run, and 1,000 runs with hyperparameters.

    python bench/bench_tags.py [--repeat 7] [--no-browser] [--smoke]

Generates (or reuses) both logdirs with bench/gen_logdir.py (the bytes real writers produce; the
1,000 runs also get an hparams summary each, written by tensorboard's own EventFileWriter), starts
a real `tensorboard` (Rust data server, --load_fast=true) with tb_plus on each, waits until both
tb_plus and stock TensorBoard have loaded everything, then prints:

* server time: wall time of each HTTP request over loopback (median and best of --repeat, after one
  warm-up request), for tb_plus's /runs and /tags (root, a wide level, a deep level, searches, a group
  page) beside stock TensorBoard's /data/runs and /data/plugin/scalars/tags on the same server;
* the one-off cost of building the tree in-process (done in the background after each refresh);
* client time (Chromium through Playwright, the standalone page): the main-thread work the frontend
  itself measures (performance.measure entries tbp:tree, tbp:search, tbp:table, tbp:table-filter).

--smoke: 2,000 tags and 20 runs x 5 tags, in a temporary directory; without Chromium (or Playwright) it
says so and leaves the client figures out.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import gen_logdir  # noqa: E402
from _common import add_smoke_flag, browser_missing, left_out, stop_process, temp_dir  # noqa: E402
from bench_render import CHROMIUM, CHROMIUM_ARGS, machine, start_tensorboard  # noqa: E402

TARGET_SERVER_MS, TARGET_CLIENT_MS = 200, 100


def add_hparams(logdir):
    """One hparams summary per run (as the hparams plugin writes it), once."""
    from tensorboard.plugins.hparams import summary_v2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.compat.proto import event_pb2

    mark = os.path.join(logdir, ".hparams_written")
    if os.path.exists(mark):
        return
    for i, run in enumerate(sorted(os.listdir(logdir))):
        d = os.path.join(logdir, run)
        if not os.path.isdir(d):
            continue
        hp = {"lr": [0.1, 0.03, 0.01, 0.003][i % 4], "batch": [32, 64, 128][i % 3],
              "optimizer": ["adam", "sgd"][i % 2], "seed": i}
        w = EventFileWriter(d, filename_suffix=".hparams")
        w.add_event(event_pb2.Event(wall_time=1.7e9, summary=summary_v2.hparams_pb(hp, trial_id=run)))
        w.close()
    open(mark, "w").close()


def get(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def answer(body):
    """What a JSON answer holds, in words, for the table (so labels never go stale with the data)."""
    try:
        b = json.loads(body)
    except ValueError:
        return "-"
    if isinstance(b, dict) and "children" in b:
        return "%s of %s children" % (format(len(b["children"]["name"]), ","), format(b["total_children"], ","))
    if isinstance(b, dict) and "matches" in b:
        return "%s of %s matches" % (format(len(b["matches"]["tag"]), ","), format(b["count"], ","))
    if isinstance(b, dict) and "under" in b:
        return "%s of %s tags" % (format(len(b["tags"]), ","), format(b["total"], ","))
    if isinstance(b, dict) and "runs" in b and isinstance(b["runs"], dict) and "name" in b["runs"]:
        return "%s runs" % format(len(b["runs"]["name"]), ",")
    if isinstance(b, dict) and b and all(isinstance(v, dict) for v in b.values()):  # stock scalars/tags
        return "%s runs, %s tags" % (format(len(b), ","), format(sum(len(v) for v in b.values()), ","))
    if isinstance(b, list):
        return "%s entries" % format(len(b), ",")
    return "-"


def timed(base, path, repeat):
    get(base + path)  # warm-up: caches built, connections made
    times = [get(base + path)[0] for _ in range(repeat)]
    body = get(base + path)[1]
    return statistics.median(times) * 1000, min(times) * 1000, len(body), answer(body)


def tree_build_ms(logdir, cache):
    from tb_plus.query.tagtree import TagTree
    from tb_plus.store import Logdir

    ld = Logdir(logdir, cache)
    ld.refresh()
    counts = {}
    t0 = time.perf_counter()
    for r in ld.runs():
        for t in ld.tags(r):
            counts[t] = counts.get(t, 0) + 1
    tree = TagTree(counts)
    return (time.perf_counter() - t0) * 1000, len(tree)


MEASURES = """() => {
    const out = {};
    for (const n of ['tbp:tree', 'tbp:search', 'tbp:table', 'tbp:table-filter'])
        out[n] = performance.getEntriesByName(n).map((e) => e.duration);
    return out;
}"""


def client_times(base, case, repeat):
    """Drives the standalone page; returns {measure: [durations ms]}."""
    from playwright.sync_api import sync_playwright

    got = {}

    def add(page):
        for k, v in page.evaluate(MEASURES).items():
            got.setdefault(k, []).extend(v)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(repeat):
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            page.goto(base + "/data/plugin/tb_plus/standalone")
            page.wait_for_function("performance.getEntriesByName('tbp:table').length > 0", timeout=120000)
            page.wait_for_function("performance.getEntriesByName('tbp:tree').length > 0", timeout=120000)
            if case == "tags":
                page.get_by_test_id("toggle-layers").click()  # a level of 4,166 groups
                page.wait_for_function("performance.getEntriesByName('tbp:tree').length > 1", timeout=60000)
                page.get_by_test_id("tag-search-mode").select_option("regex")
                page.get_by_test_id("tag-search").fill(r"block40[0-9]/attn")
                page.wait_for_function("performance.getEntriesByName('tbp:search').length > 0", timeout=60000)
                page.get_by_test_id("tag-search").fill("grad_norm")  # 16,664 matches
                page.wait_for_function("performance.getEntriesByName('tbp:search').length > 1", timeout=60000)
            else:
                page.get_by_test_id("run-filter").fill("run_1")
                page.wait_for_function("performance.getEntriesByName('tbp:table-filter').length > 0", timeout=60000)
                page.get_by_test_id("run-filter").fill("/run_0[0-9]*5/")
                page.wait_for_function("performance.getEntriesByName('tbp:table-filter').length > 1", timeout=60000)
                page.get_by_test_id("run-filter").fill("")
                page.wait_for_function("performance.getEntriesByName('tbp:table-filter').length > 2", timeout=60000)
            add(page)
            ctx.close()
        browser.close()
    return got


def row(label, med, best, size, what, target):
    ok = "yes" if med <= target else "NO"
    print("| %s | %s | %.1f | %.1f | %s | %s |" % (label, what, med, best, "%.0f KB" % (size / 1024), ok))


def tag_queries(tags):
    """The /tags requests of the many-tags case, drawn from its tag names (gen_logdir.make_tags)."""
    q = urllib.parse.quote
    blocks = len({t.split("/")[1] for t in tags if t.startswith("layers/block")})
    deep = "layers/block%d/attn" % (blocks * 24 // 25)  # e.g. layers/block4000/attn of 4,166 blocks
    regex = r"block%d[0-9]/attn/grad" % (blocks // 20)  # ten blocks: 10 matches
    return [
        ("tb_plus /runs", "/data/plugin/tb_plus/runs"),
        ("tb_plus /tags root level", "/data/plugin/tb_plus/tags"),
        ("tb_plus /tags level of the %s block groups" % format(blocks, ","), "/data/plugin/tb_plus/tags?parent=layers"),
        ("tb_plus /tags deep level (%s)" % deep, "/data/plugin/tb_plus/tags?parent=" + q(deep, safe="")),
        ("tb_plus /tags regex search `%s`" % regex, "/data/plugin/tb_plus/tags?mode=regex&filter=" + q(regex, safe="")),
        ("tb_plus /tags substring search `grad_norm`", "/data/plugin/tb_plus/tags?filter=grad_norm"),
        ("tb_plus /tags glob search `layers/block1*/mlp/*`",
         "/data/plugin/tb_plus/tags?mode=glob&filter=" + q("layers/block1*/mlp/*", safe="")),
        ("tb_plus /tags group page (first 48 under layers)", "/data/plugin/tb_plus/tags?under=layers&limit=48"),
        ("stock /data/runs", "/data/runs"),
        ("stock /data/plugin/scalars/tags (all tags)", "/data/plugin/scalars/tags"),
    ]


RUN_QUERIES = [
    ("tb_plus /runs (table + hparams)", "/data/plugin/tb_plus/runs"),
    ("tb_plus /tags root level", "/data/plugin/tb_plus/tags"),
    ("tb_plus /tags substring search `loss`", "/data/plugin/tb_plus/tags?filter=loss"),
    ("tb_plus /hparams", "/data/plugin/tb_plus/hparams"),
    ("stock /data/runs", "/data/runs"),
    ("stock /data/plugin/scalars/tags (all tags)", "/data/plugin/scalars/tags"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--browser-repeat", type=int, default=3)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--data", default=os.path.join(HERE, "data"))
    add_smoke_flag(ap)
    args = ap.parse_args()
    # (tags in one run, logdir GB), (runs, tags per run, logdir GB)
    many_tags_size, many_runs_size = (100_000, 0.15), (1000, 20, 0.05)
    if args.smoke:
        args.repeat, args.browser_repeat = 1, 1
        many_tags_size, many_runs_size = (2000, 0.0015), (20, 5, 0.0003)
    why_not = None if args.no_browser else browser_missing()
    if why_not:
        if not args.smoke:
            raise SystemExit("the client figures need a browser (%s); --no-browser leaves them out" % why_not)
        left_out("client times in Chromium", why_not)
    print("machine:", machine(), flush=True)
    with temp_dir(prefix="tbp_bench_tags_") as work:
        data = os.path.join(work, "data") if args.smoke else args.data
        many_tags = gen_logdir.generate(data, size_gb=many_tags_size[1], runs=1, n_tags=many_tags_size[0], n_hist=0,
                                        verify_torch=not args.smoke)
        many_runs = gen_logdir.generate(data, size_gb=many_runs_size[2], runs=many_runs_size[0],
                                        n_tags=many_runs_size[1], n_hist=0, verify_torch=not args.smoke)
        add_hparams(many_runs["logdir"])
        cases = [
            ("%s tags, 1 run" % format(len(many_tags["scalar_tags"]), ","), many_tags, "tags", 1,
             tag_queries(many_tags["scalar_tags"])),
            ("%s runs x %d tags, hparams" % (format(len(many_runs["runs"]), ","), len(many_runs["scalar_tags"])),
             many_runs, "runs", len(many_runs["runs"]), RUN_QUERIES),
        ]
        for n, (title, man, case, nruns, queries) in enumerate(cases):
            print("\n## %s (%s, %.0f MB)\n" % (title, os.path.basename(man["logdir"]), man["bytes"] / 1e6), flush=True)
            cache = os.path.join(work, "tree_cache_%d" % n)
            build, ntags = tree_build_ms(man["logdir"], cache)
            shutil.rmtree(cache, ignore_errors=True)
            print("tree build in-process (background, once per tag set): %.0f ms for %d distinct tags\n" % (build, ntags))
            proc, base = start_tensorboard(man["logdir"], nruns, os.path.join(work, "tensorboard_%d.log" % n))
            try:
                print("| request (server, loopback HTTP) | answer | median ms | best ms | body | <= %d ms |"
                      % TARGET_SERVER_MS)
                print("|---|---|---|---|---|---|")
                for label, path in queries:
                    med, best, size, what = timed(base, path, args.repeat)
                    row(label, med, best, size, what, TARGET_SERVER_MS)
                if why_not is None:
                    got = client_times(base, case, args.browser_repeat)
                    print("\n| client (Chromium main thread) | median ms | best ms | n | <= %d ms |" % TARGET_CLIENT_MS)
                    print("|---|---|---|---|---|")
                    for name, vals in sorted(got.items()):
                        if vals:
                            med = statistics.median(vals)
                            print("| %s | %.1f | %.1f | %d | %s |" % (name, med, min(vals), len(vals),
                                                                    "yes" if med <= TARGET_CLIENT_MS else "NO"))
            finally:
                stop_process(proc)


if __name__ == "__main__":
    main()
