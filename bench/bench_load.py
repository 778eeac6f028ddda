#!/usr/bin/env python
"""A bounded load on a real `tensorboard` with tb_plus, over loopback, while a run is being written.

    python bench/bench_load.py [--clients 32] [--seconds 60] [--dirs 4] [--runs 5] [--tags 4] [--steps 5000] [--hostile] [--smoke]

Setup (in a temporary directory, removed at the end unless --keep): ROOT/<dir>/<run> for --dirs
directories (a, b, c, ...) x --runs runs x --tags scalar tags x --steps steps, written with
tensorboardX (one add_scalar per value, as training scripts do; each run also gets add_hparams, which
writes a sub-run), plus ROOT/a/live. Then:

* a real server: `python -m tensorboard.main --logdir ROOT/a --tb_plus_roots ROOT --load_fast=false
  --reload_interval 1 --tb_plus_cache_dir CACHE --host 127.0.0.1 --port 0` (so TensorBoard's own Python
  loader also reloads ROOT/a every second, as it would for a user; --load_fast true to compare), waited
  for until every directory is indexed (each opened once with `logdir=`) and TensorBoard's own loader
  has read --logdir (its first load holds the GIL for seconds);
* a writer process that appends to ROOT/a/live with tensorboardX (flush_secs=1, 100 steps/s of --tags
  scalars) for the whole load;
* --clients concurrent clients (threads spread over --procs client processes, so the clients' CPU does
  not share the server's GIL), each on its own keep-alive http.client connection, requesting for
  --seconds a mix over the directories, every request with `logdir=<dir>`: /runs, /tags (a level and a
  search), /series (width=1000), /series_batch (every run of the directory, width=1000, format=binary)
  and /hparams.

Prints the machine, the requests, requests/s, p50/p90/p99/max latency in ms, errors (any non-200 or
exception), per route count/p50/p99/max, the CPU use of the server, the clients, the writer and the
rest of the machine (other processes distort the figures on a small machine), and the target: zero
errors and p99 <= 250 ms. --smoke: 2 clients for 2 s on 2 directories x 2 runs x 2 tags x 200 steps.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(HERE)
sys.path.insert(0, ROOT_DIR)
sys.path.insert(0, HERE)

from _common import add_smoke_flag, launch_tensorboard, stop_process  # noqa: E402

TARGET_P99_MS = 250.0
TAGS = ["train/loss", "train/acc", "eval/loss", "eval/acc", "lr", "grad/norm", "train/tokens", "eval/ppl"]
ROUTE_WEIGHTS = (("series", 30), ("series_batch", 25), ("runs", 15), ("tags_level", 10), ("tags_search", 10),
                 ("hparams", 10))
SEARCHES = ("loss", "acc", "eval", "^train/", "norm")
# --hostile: requests from issue 18's review, sent by one more client in a second run of the load.
HOSTILE = (  # {q}, {sep} and {run} are filled in
    "/tags?{q}&mode=regex&filter=" + urllib.parse.quote("^.{13}(.|.)*!", safe=""),
    "/tags?{q}&mode=regex&filter=" + urllib.parse.quote("(a+)+$", safe=""),
    "/tags?{q}&mode=regex&filter=" + urllib.parse.quote("(?=a)b", safe=""),
    "/aggregate?{q}&tag=train%2Floss&group_by=" + urllib.parse.quote("run_regex:(r|ru|run)+$", safe=""),
    "/tags?{q}&sep={sep}&parent=",
    "/tags?{q}&runs={run}&parent=",
    "/runs?logdir=" + urllib.parse.quote("/etc/../etc/passwd/../..", safe=""),
    "/series?{q}&run={run}&tag=train%2Floss&width=100000000",
)


def dir_names(n):
    return [chr(ord("a") + i) if i < 26 else "d%d" % i for i in range(n)]


def tag_names(n):
    return [TAGS[i] if i < len(TAGS) else "extra/t%d" % i for i in range(n)]


# ------------------------------------------------------------------------------------------- setup


def write_dir(args):
    """One directory: runs x tags x steps with tensorboardX, add_hparams per run."""
    path, runs, ntags, steps, seed = args
    import logging
    import math

    logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)  # "NaN or Inf found": on purpose

    import tensorboardX

    rng = random.Random(seed)
    tags = tag_names(ntags)
    for r in range(runs):
        lr = [0.1, 0.03, 0.01, 0.003][r % 4]
        run = os.path.join(path, "lr=%g,seed=%d" % (lr, r))
        w = tensorboardX.SummaryWriter(run, flush_secs=120)
        t0 = 1_700_000_000.0 + r * 100_000
        for s in range(steps):
            base = 2.0 / (1.0 + lr * s)
            for k, t in enumerate(tags):
                v = base * (1 + k) + rng.gauss(0, 0.05)
                if s == 1234 and k == 0 and r == 1:
                    v = math.nan  # a NaN, as real runs have
                w.add_scalar(t, v, s, walltime=t0 + s * 0.5)
        w.add_hparams({"lr": lr, "seed": r, "opt": ["adam", "sgd"][r % 2]}, {"hparam/final": base})
        w.close()
    return path


def live_writer(path, ntags, stop, steps_per_s=100):
    """Appends to the run at `path` until `stop` is set: `ntags` scalars per step, flush_secs=1."""
    import tensorboardX

    tags = tag_names(ntags)
    w = tensorboardX.SummaryWriter(path, flush_secs=1)
    s = 0
    t_next = time.monotonic()
    while not stop.is_set():
        for k, t in enumerate(tags):
            w.add_scalar(t, 1.0 / (1 + s) + k, s)
        s += 1
        t_next += 1.0 / steps_per_s
        delay = t_next - time.monotonic()
        if delay > 0:
            stop.wait(delay)  # paces the writer; returns at once when the load is over
    w.close()


def http_json(port, path, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise OSError("HTTP %d for %s: %s" % (r.status, path, body[:200]))
        return json.loads(body)
    finally:
        conn.close()


def start_server(root, cache, log_path, load_fast="false"):
    return launch_tensorboard(["--logdir", os.path.join(root, "a"), "--tb_plus_roots", root, "--load_fast=" + load_fast,
                               "--reload_interval", "1", "--tb_plus_cache_dir", cache], log_path)


def wait_indexed(proc, port, root, dirs, expect_runs, log_path, deadline_s=300):
    """Until /runs?logdir=<dir> lists every run of every directory, with no indexing in progress."""
    end = time.monotonic() + deadline_s
    pending = list(dirs)
    while pending:
        if proc.poll() is not None:
            raise SystemExit("tensorboard exited; see %s" % log_path)
        if time.monotonic() > end:
            raise SystemExit("tensorboard did not index %s in %d s; see %s" % (pending, deadline_s, log_path))
        d = pending[0]
        try:
            body = http_json(port, "/data/plugin/tb_plus/runs?logdir=" + urllib.parse.quote(os.path.join(root, d)))
            if not body["progress"]["indexing"] and len(body["runs"]["name"]) >= expect_runs[d]:
                pending.pop(0)
                continue
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            pass
        time.sleep(0.2)  # polling a server being started; bounded by the deadline


def wait_stock_loaded(proc, port, runs, tag, last_step, log_path, deadline_s=600):
    """Until TensorBoard's own loader (the Python multiplexer of --load_fast=false, or the data server)
    serves the last step of `tag` for every run of --logdir: measured load must not overlap its first
    load, which holds the GIL for seconds."""
    end = time.monotonic() + deadline_s
    pending = list(runs)
    while pending:
        if proc.poll() is not None:
            raise SystemExit("tensorboard exited; see %s" % log_path)
        if time.monotonic() > end:
            raise SystemExit("TensorBoard's loader did not load %s in %d s; see %s" % (pending, deadline_s, log_path))
        try:
            pts = http_json(port, "/data/plugin/scalars/scalars?run=%s&tag=%s" % (
                urllib.parse.quote(pending[0]), urllib.parse.quote(tag, safe="")))
            if pts and pts[-1][1] == last_step:
                pending.pop(0)
                continue
        except (OSError, ValueError, KeyError, IndexError, http.client.HTTPException):
            pass
        time.sleep(0.5)  # polling a server that is loading; bounded by the deadline


# ------------------------------------------------------------------------------------------ clients


def build_requests(port, root, dirs, ntags):
    """Per directory: its runs (from /runs) and the query strings the clients choose from."""
    plan = {}
    for d in dirs:
        q = "logdir=" + urllib.parse.quote(os.path.join(root, d))
        runs = http_json(port, "/data/plugin/tb_plus/runs?" + q)["runs"]["name"]
        scalar_runs = [r for r in runs if "/" not in r]  # add_hparams sub-runs hold only the metric
        plan[d] = {"q": q, "runs": scalar_runs}
    tags = tag_names(ntags)
    return {"plan": plan, "tags": tags, "groups": list(dict.fromkeys(t.split("/")[0] for t in tags if "/" in t))}


def one_request(rng, spec):
    route = rng.choices([r for r, _ in ROUTE_WEIGHTS], weights=[w for _, w in ROUTE_WEIGHTS])[0]
    d = rng.choice(sorted(spec["plan"]))
    p = spec["plan"][d]
    q = p["q"]
    tag = rng.choice(spec["tags"])
    quote = urllib.parse.quote
    if route == "series":
        path = "/series?%s&run=%s&tag=%s&width=1000" % (q, quote(rng.choice(p["runs"])), quote(tag, safe=""))
    elif route == "series_batch":
        runs = "".join("&run=" + quote(r) for r in p["runs"])
        path = "/series_batch?%s%s&tag=%s&width=1000&format=binary" % (q, runs, quote(tag, safe=""))
    elif route == "runs":
        path = "/runs?" + q
    elif route == "tags_level":
        path = "/tags?%s&parent=%s" % (q, quote(rng.choice([""] + spec["groups"][:2]), safe=""))
    elif route == "tags_search":
        s = rng.choice(SEARCHES)
        path = "/tags?%s&filter=%s%s" % (q, quote(s, safe=""), "&mode=regex" if s.startswith("^") else "")
    else:
        path = "/hparams?" + q
    return route, "/data/plugin/tb_plus" + path


def client_thread(port, spec, seed, start_at, end_at, out):
    rng = random.Random(seed)
    conn = None
    while time.time() < start_at:
        time.sleep(min(0.05, max(0.0, start_at - time.time())))  # start together
    while True:
        now = time.time()
        if now >= end_at:
            break
        route, path = one_request(rng, spec)
        t0 = time.perf_counter()
        ok, err = True, None
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                ok, err = False, "HTTP %d: %s" % (r.status, body[:120])
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            ok, err = False, "%s: %s" % (type(e).__name__, e)
            if conn is not None:
                conn.close()
            conn = None
        out.append((route, (time.perf_counter() - t0) * 1000.0, ok, err))
    if conn is not None:
        conn.close()


def hostile_thread(port, spec, seed, start_at, end_at, out):
    """One client sending HOSTILE requests (and a foreign Host) back to back; its answers are
    expected to be refusals, counted apart from the ordinary clients'."""
    rng = random.Random(seed)
    seps = ["-", "_", ".", ":", "|", "+", "~", "=", "--", "..", "::", "//", "/.", "._"]
    while time.time() < start_at:
        time.sleep(min(0.05, max(0.0, start_at - time.time())))
    while time.time() < end_at:
        d = rng.choice(sorted(spec["plan"]))
        p = spec["plan"][d]
        path = "/data/plugin/tb_plus" + rng.choice(HOSTILE).replace("{q}", p["q"]).replace(
            "{sep}", urllib.parse.quote(rng.choice(seps), safe="")).replace(
            "{run}", urllib.parse.quote(rng.choice(p["runs"]), safe=""))
        headers = {"Host": "rebind.attacker.example"} if rng.random() < 0.1 else {}
        t0 = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            status = r.status
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            status = type(e).__name__
        out.append(("hostile", (time.perf_counter() - t0) * 1000.0, status, path))


def client_process(port, spec, nthreads, seed, start_at, end_at, queue, hostile=False):
    results = [[] for _ in range(nthreads)]
    target = hostile_thread if hostile else client_thread
    threads = [threading.Thread(target=target, args=(port, spec, seed * 1000 + i, start_at, end_at, results[i]))
               for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((time.process_time(), time.time(), [x for part in results for x in part]))


# ------------------------------------------------------------------------------------------ report


def pct(values, q):
    s = sorted(values)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        import psutil

        mem = ", %.1f GB RAM" % (psutil.virtual_memory().total / 1e9)
    except ImportError:
        pass
    return "%s, %d cores%s, %s, Python %s" % (model, os.cpu_count() or 0, mem, platform.platform(terse=True),
                                              platform.python_version())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients (threads over --procs processes)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the load")
    ap.add_argument("--dirs", type=int, default=4, help="log directories under ROOT")
    ap.add_argument("--runs", type=int, default=5, help="runs per directory")
    ap.add_argument("--tags", type=int, default=4, help="scalar tags per run")
    ap.add_argument("--steps", type=int, default=5000, help="steps per run")
    ap.add_argument("--procs", type=int, default=0, help="client processes (0: min(4, clients))")
    ap.add_argument("--load_fast", default="false", choices=("false", "true"),
                    help="TensorBoard's own loader: false (Python, in the server process) or true (Rust data server)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, cache, server log)")
    ap.add_argument("--hostile", action="store_true",
                    help="run the load twice on the same server: as usual, then with one more client sending the "
                         "hostile requests of issue 18 (catastrophic regexes, separator cycling, path escapes, a "
                         "foreign Host); prints both and the ratio of the ordinary clients' p99")
    add_smoke_flag(ap)
    args = ap.parse_args()
    if args.smoke:
        args.clients, args.seconds, args.dirs, args.runs, args.tags, args.steps, args.procs = 2, 2.0, 2, 2, 2, 200, 1
        args.keep = False
    if args.clients < 1 or args.seconds <= 0 or args.dirs < 1 or args.runs < 1 or not 1 <= args.tags <= 64:
        ap.error("--clients, --seconds, --dirs, --runs >= 1 and 1 <= --tags <= 64")
    procs = args.procs or min(4, args.clients)

    tmp = tempfile.mkdtemp(prefix="tb_plus_load_")
    root, cache, log_path = os.path.join(tmp, "logs"), os.path.join(tmp, "cache"), os.path.join(tmp, "tensorboard.log")
    dirs = dir_names(args.dirs)
    server = writer = None
    stop = mp.Event()
    try:
        t = time.monotonic()
        jobs = [(os.path.join(root, d), args.runs, args.tags, args.steps, i) for i, d in enumerate(dirs)]
        with mp.Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
            pool.map(write_dir, jobs)
        live = os.path.join(root, "a", "live")  # created by the writer process
        values = args.dirs * args.runs * args.tags * args.steps
        print("setup: %d dirs x %d runs x %d tags x %d steps = %s scalars written in %.1f s" %
              (args.dirs, args.runs, args.tags, args.steps, format(values, ","), time.monotonic() - t), flush=True)

        writer = mp.Process(target=live_writer, args=(live, args.tags, stop), daemon=True)
        writer.start()
        t = time.monotonic()
        server, port = start_server(root, cache, log_path, args.load_fast)
        expect = {d: args.runs * 2 + (1 if d == "a" else 0) for d in dirs}  # runs, their hparams sub-runs, live
        wait_indexed(server, port, root, dirs, expect, log_path)
        t_tb = time.monotonic() - t
        spec = build_requests(port, root, dirs, args.tags)
        wait_stock_loaded(server, port, [r for r in spec["plan"]["a"]["runs"] if r != "live"], tag_names(args.tags)[0],
                          args.steps - 1, log_path)
        print("server: pid %d on port %d, every directory indexed by tb_plus %.1f s after start, TensorBoard's own "
              "loader done with --logdir after %.1f s" % (server.pid, port, t_tb, time.monotonic() - t), flush=True)

        spec["pids"] = (server.pid, writer.pid)
        runs = [("ordinary", False)] + ([("with a hostile client", True)] if args.hostile else [])
        measured = []
        for label, hostile in runs:
            measured.append((label, hostile) + run_load(args, procs, port, spec, hostile))
        live_rows = http_json(port, "/data/plugin/tb_plus/series?logdir=%s&run=live&tag=%s&full=true" % (
            urllib.parse.quote(os.path.join(root, "a")), urllib.parse.quote(tag_names(args.tags)[0], safe="")))["total"]
    finally:
        stop.set()
        if writer is not None:
            writer.join(10)
        if server is not None:
            stop_process(server)
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    errors = 0
    p99s = []
    for label, hostile, results, elapsed, cpu, client_cpu, cpu_load, hostile_rows in measured:
        if args.hostile:
            print("\n## load %s" % label)
        errors += report(args, procs, results, elapsed, cpu, client_cpu, cpu_load, live_rows)
        p99s.append(pct([ms for _, ms, _, _ in results], 0.99))
        if hostile:
            statuses = {}
            for _, _, status, _ in hostile_rows:
                statuses[status] = statuses.get(status, 0) + 1
            hl = [ms for _, ms, _, _ in hostile_rows]
            print("hostile client: %d requests, answers %s, p50 %.1f ms, max %.1f ms" % (
                len(hostile_rows), dict(sorted(statuses.items(), key=str)), pct(hl, 0.5), max(hl, default=float("nan"))))
    if args.hostile:
        ratio = p99s[1] / p99s[0] if p99s[0] else float("nan")
        print("\nordinary clients' p99: %.1f ms alone, %.1f ms beside the hostile client (x%.2f; target <= x2 and "
              "0 errors): %s" % (p99s[0], p99s[1], ratio, "met" if ratio <= 2 and not errors else "NOT met"))
    if args.smoke and errors:
        sys.exit(1)  # a request that fails on a tiny, idle setup: the benchmark or the server is broken


def run_load(args, procs, port, spec, hostile):
    """One load of --seconds: (ordinary results, elapsed, cpu, client cpu, load averages, hostile results)."""
    server_pid, writer_pid = spec["pids"]
    try:
        import psutil

        sproc, wproc = psutil.Process(server_pid), psutil.Process(writer_pid)
        sproc.cpu_percent(None)
        wproc.cpu_percent(None)
        psutil.cpu_percent(None)
    except Exception:  # noqa: BLE001 - psutil is optional
        sproc = wproc = None
    load_before = os.getloadavg()
    queue = mp.Queue()
    start_at = time.time() + 1.0
    end_at = start_at + args.seconds
    per = [args.clients // procs + (1 if i < args.clients % procs else 0) for i in range(procs)]
    cps = [mp.Process(target=client_process, args=(port, spec, n, i + 1, start_at, end_at, queue))
           for i, n in enumerate(per) if n]
    bad = None
    if hostile:
        bad_queue = mp.Queue()
        bad = mp.Process(target=client_process, args=(port, spec, 1, 999, start_at, end_at, bad_queue, True))
    for c in cps + ([bad] if bad else []):
        c.start()
    parts = [queue.get(timeout=args.seconds + 120) for _ in cps]
    client_cpu = sum(cpu for cpu, _, _ in parts)
    results = [x for _, _, part in parts for x in part]
    elapsed = max(done for _, done, _ in parts) - start_at  # the load, and the requests still in flight
    hostile_rows = bad_queue.get(timeout=args.seconds + 180)[2] if bad else []
    for c in cps + ([bad] if bad else []):
        c.join(30)
    cpu = None
    if sproc is not None:
        cpu = {"server": sproc.cpu_percent(None), "writer": wproc.cpu_percent(None),
               "system": psutil.cpu_percent(None) * (os.cpu_count() or 1)}
    cpu_load = (load_before, os.getloadavg())
    return results, elapsed, cpu, client_cpu, cpu_load, hostile_rows


def report(args, procs, results, elapsed, cpu, client_cpu, cpu_load, live_rows):
    lat = [ms for _, ms, _, _ in results]
    errors = [(route, err) for route, _, ok, err in results if not ok]
    p99 = pct(lat, 0.99)
    print()
    print("machine: %s" % machine())
    print("load: %d clients (%d client processes, keep-alive), %.0f s, %d dirs x %d runs x %d tags x %d steps, "
          "--load_fast=%s, writer appending to a/live at 100 steps/s (the live series had %d points at the end)" %
          (args.clients, procs, args.seconds, args.dirs, args.runs, args.tags, args.steps, args.load_fast, live_rows))
    print()
    print("| requests | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print("| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %d |" % (
        len(lat), len(lat) / elapsed, pct(lat, 0.5), pct(lat, 0.9), p99, max(lat, default=float("nan")), len(errors)))
    print()
    print("| route | requests | p50 ms | p99 ms | max ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for route, _ in ROUTE_WEIGHTS:
        xs = [ms for r, ms, _, _ in results if r == route]
        errs = sum(1 for r, _ in errors if r == route)
        if xs:
            print("| %s | %d | %.1f | %.1f | %.1f | %d |" % (
                route, len(xs), pct(xs, 0.5), pct(xs, 0.99), max(xs), errs))
    print()
    clients = 100.0 * client_cpu / elapsed
    line = "clients %.0f%%" % clients
    if cpu is not None:
        other = max(0.0, cpu["system"] - cpu["server"] - cpu["writer"] - clients)
        line = "server %.0f%%, %s, writer %.0f%%, other processes on the machine %.0f%%" % (
            cpu["server"], line, cpu["writer"], other)
    print("CPU during the load (100%% = one core; %d cores): %s; load average %.1f before, %.1f after" % (
        os.cpu_count() or 0, line, cpu_load[0][0], cpu_load[1][0]))
    ok = not errors and p99 <= TARGET_P99_MS
    print("target: zero errors and p99 <= %.0f ms: %s (errors %d, p99 %.1f ms)" %
          (TARGET_P99_MS, "met" if ok else "NOT met", len(errors), p99))
    if errors:
        seen = {}
        for route, err in errors:
            seen.setdefault((route, str(err)[:160]), 0)
            seen[(route, str(err)[:160])] += 1
        print("errors, first kinds:")
        for (route, err), n in list(seen.items())[:10]:
            print("  %dx %s: %s" % (n, route, err))
    return len(errors)


if __name__ == "__main__":
    main()
