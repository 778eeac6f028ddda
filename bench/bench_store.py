#!/usr/bin/env python
"""Side-by-side load benchmark: tb_plus.store vs stock TensorBoard.

One run of this script:

1. generates (or reuses, keyed by parameters) a ~2 GB logdir under bench/data/
   (bench/gen_logdir.py: real TFRecord/Event bytes, torch/tensorboardX/TF2 styles);
2. times tb_plus cold indexing (fresh cache, CRC on and CRC off) and a warm reopen,
   each in a fresh subprocess, with peak RSS summed over the whole process tree;
3. times stock ``tensorboard --load_fast=true`` (Rust data server) until every
   (run, tag) serves its last step over HTTP;
4. times stock ``--load_fast=false`` on a ~100 MB logdir, and tb_plus on the same;
5. prints a markdown table, ratios and machine info (and --out results.json).

All logdir files are in the page cache for every measurement (the generator just
wrote them, or they were read by the previous measurement): this compares CPU cost of
loading, not disk speed.

Example::

    python bench/bench_store.py                       # full: 2 GB + 100 MB
    python bench/bench_store.py --size-gb 0.2 --small-mb 30   # quick debug run
    python bench/bench_store.py --smoke    # tiny logdirs in a temporary directory: seconds, figures meaningless
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_logdir  # noqa: E402
from _common import add_smoke_flag, left_out, spawn_tensorboard, stop_process, temp_dir, tensorboard_port  # noqa: E402

MB = 1e6


# ----------------------------------------------------------------------------- RSS


class TreeRSS:
    """Samples the summed RSS of a process and all its descendants every `interval` s."""

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.peak_procs = 0
        self.peak_breakdown = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self, breakdown=None):
        try:
            root = psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return 0, 0
        total = 0
        n = 0
        for p in procs:
            try:
                rss = p.memory_info().rss
                total += rss
                n += 1
                if breakdown is not None:
                    name = p.name()
                    breakdown[name] = breakdown.get(name, 0) + rss
            except psutil.Error:
                pass
        return total, n

    def _loop(self):
        while not self._stop.is_set():
            bd = {}
            rss, n = self.sample(bd)
            self.samples += 1
            if rss > self.peak:
                self.peak = rss
                self.peak_breakdown = bd
            self.peak_procs = max(self.peak_procs, n)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)


# ----------------------------------------------------------------------------- tb_plus


def run_tbplus(man, mode, cache_dir, verify_crc=True, timeout=900, pythonpath=None, label=""):
    args = {
        "mode": mode, "logdir": man["logdir"], "cache_dir": cache_dir, "verify_crc": verify_crc,
        "runs": sorted(man["runs"]), "tags": man["scalar_tags"], "last_step": man["last_step"],
    }
    env = dict(os.environ)
    paths = [p for p in (pythonpath, REPO, env.get("PYTHONPATH")) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    errf = tempfile.TemporaryFile()
    print("[%s] tb_plus %s (verify_crc=%s, cache=%s) ..." % (label, mode, verify_crc, cache_dir), flush=True)
    t0 = time.perf_counter()
    argf = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(args, argf)
    argf.close()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "_store_child.py"), "@" + argf.name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf,
                            start_new_session=True, env=env, text=True)
    out = {"label": label, "kind": "tb_plus", "mode": mode, "verify_crc": verify_crc,
           "bytes": man["bytes"], "records": man["records"]}
    line_box = []

    def reader():
        for line in proc.stdout:
            if line.startswith("RESULT "):
                line_box.append(line)
                return

    rt = threading.Thread(target=reader, daemon=True)
    with TreeRSS(proc.pid) as mon:
        rt.start()
        rt.join(timeout)
        t1 = time.perf_counter()
        after, nprocs = mon.sample()
    try:
        if line_box:
            res = json.loads(line_box[0][len("RESULT "):])
            out.update(res)
            out["seconds_spawn"] = t1 - t0
            out["rss_after"] = after
            out["procs_after"] = nprocs
        else:
            out.update(ok=False, error="timeout after %ds or child died (rc=%s)" % (timeout, proc.poll()))
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
    finally:
        os.unlink(argf.name)
        stop_process(proc, 5.0)
        errf.seek(0)
        err = errf.read().decode("utf-8", "replace")
        errf.close()
    out["peak_rss"] = mon.peak
    out["peak_procs"] = mon.peak_procs
    out["peak_rss_by_process"] = mon.peak_breakdown
    if not out.get("ok"):
        out["stderr_tail"] = err[-3000:]
    # headline: cold = from spawn of the fresh subprocess (interpreter start + import +
    # Logdir + refresh + touching every series), like the stock rows which include
    # TensorBoard's startup; warm reopen = from `Logdir(...)` to the end of the reads
    # (as specified: the import is excluded), measured inside the child.
    out["seconds"] = out.get("seconds_spawn") if mode == "cold" else out.get("total_s")
    _print_result(out)
    return out


# ----------------------------------------------------------------------------- stock TensorBoard


def http_get_json(url, timeout=120):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def http_post_json(url, form, timeout=300):
    data = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=data, headers={"X-XSRF-Protected": "1"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def _max_steps(resp):
    """{(run, tag): max step served} from a timeSeries response."""
    out = {}
    for item in resp:
        for run, series in (item.get("runToSeries") or {}).items():
            out[(run, item["tag"])] = max((d["step"] for d in series), default=None)
    return out


def _time_series(base, tags, run=None):
    reqs = [dict({"plugin": "scalars", "tag": t}, **({"run": run} if run else {})) for t in tags]
    return http_post_json(base + "/data/plugin/timeseries/timeSeries", {"requests": json.dumps(reqs)})


def run_stock(man, load_fast, timeout=900, poll=0.25, label="", verify_chunk=25):
    """Start tensorboard and poll until every (run, scalar tag) serves its last step.

    Every HTTP read of a series costs one gRPC round trip to the Rust data server
    (~40 ms here, whatever the size), so polling all 2400 series would measure the
    poller.  Instead, cheap polling: /data/plugin/scalars/tags every `poll` s; for each
    run that lists all its tags, one read of a sentinel tag, the last scalar record of
    the run's (single, step-major) file.  A run is ready at the start time of the
    request that first returned the sentinel's last step; the headline time is the
    latest run's ready time, relative to process spawn.  Then (untimed, after the peak
    RSS / RSS-after-load snapshot) every (run, tag) is fetched over HTTP and checked for
    its last step; any that is not there yet is polled until it is and its confirmation
    time is used instead.
    """
    exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    exe = [exe if os.path.exists(exe) else "tensorboard"]
    args = ["--logdir", man["logdir"], "--load_fast=%s" % ("true" if load_fast else "false")]
    logf = tempfile.NamedTemporaryFile(prefix="tb_stock_", suffix=".log", delete=False)
    logf.close()
    print("[%s] %s --host 127.0.0.1 --port 0" % (label, " ".join(exe + args)), flush=True)
    runs = sorted(man["runs"])
    tags = man["scalar_tags"]
    tagset = set(tags)
    last = man["last_step"]
    sentinel = tags[-1]
    out = {"label": label, "kind": "stock", "load_fast": load_fast, "bytes": man["bytes"],
           "records": man["records"]}
    t0 = time.perf_counter()
    proc = spawn_tensorboard(args, logf.name, exe=exe)
    out["cmd"] = proc.cmd
    listed_at = {}
    ready = {}
    late = {}
    t_http = None
    n_requests = 0
    deadline = t0 + timeout
    after = nprocs = peak = peak_procs = 0
    after_bd, peak_bd = {}, {}
    try:
        with TreeRSS(proc.pid) as mon:
            out["port"] = port = tensorboard_port(proc, timeout, exit_ok=True)
            base = "http://127.0.0.1:%d" % (port or 0)
            while len(ready) < len(runs) and time.perf_counter() < deadline:
                if proc.poll() is not None or port is None:
                    out["error"] = "tensorboard exited with rc=%s" % proc.poll() if port else "tensorboard did not start"
                    break
                tp = time.perf_counter()
                try:
                    listing = http_get_json(base + "/data/plugin/scalars/tags", timeout=60)
                    n_requests += 1
                except Exception:  # noqa: BLE001  (not up yet)
                    time.sleep(poll)
                    continue
                if t_http is None:
                    t_http = tp
                for run in runs:
                    if run in ready or len(tagset & set(listing.get(run, ()))) != len(tagset):
                        continue
                    listed_at.setdefault(run, tp)
                    ts = time.perf_counter()
                    got = _max_steps(_time_series(base, [sentinel], run))
                    n_requests += 1
                    if got.get((run, sentinel)) == last:
                        ready[run] = ts
                if len(ready) < len(runs):
                    time.sleep(poll)
            t_ready = time.perf_counter()
            after_bd = {}
            after, nprocs = mon.sample(after_bd)
            peak, peak_procs, peak_bd = mon.peak, mon.peak_procs, dict(mon.peak_breakdown)
            # untimed full verification of every (run, tag)
            pending = set()
            if len(ready) == len(runs):
                tv = time.perf_counter()
                for i in range(0, len(tags), verify_chunk):
                    chunk = tags[i:i + verify_chunk]
                    got = _max_steps(_time_series(base, chunk))
                    n_requests += 1
                    pending.update((r, t) for r in runs for t in chunk if got.get((r, t)) != last)
                out["verify_all_s"] = time.perf_counter() - tv
                out["verify_late"] = len(pending)
                while pending and time.perf_counter() < deadline:
                    for run in sorted({r for r, _ in pending}):
                        ts = time.perf_counter()
                        want = sorted(t for r, t in pending if r == run)
                        got = _max_steps(_time_series(base, want, run))
                        n_requests += 1
                        for t in want:
                            if got.get((run, t)) == last:
                                pending.discard((run, t))
                                late[(run, t)] = ts
                    if pending:
                        time.sleep(poll)
    finally:
        stop_process(proc, 5.0)
        with open(logf.name, "rb") as f:
            log_tail = f.read()[-4000:].decode("utf-8", "replace")
        os.unlink(logf.name)
    out["peak_rss"] = peak
    out["peak_procs"] = peak_procs
    out["rss_after"] = after
    out["procs_after"] = nprocs
    out["peak_rss_by_process"] = peak_bd
    out["rss_after_by_process"] = after_bd
    out["http_requests"] = n_requests
    out["http_up_s"] = None if t_http is None else t_http - t0
    if len(ready) < len(runs) or pending:
        out["ok"] = False
        out.setdefault("error", "timeout after %ds: runs ready %d/%d, (run, tag) not served: %d" % (
            timeout, len(ready), len(runs), len(pending)))
        out["log_tail"] = log_tail
        out["seconds"] = None
    else:
        out["ok"] = True
        out["seconds"] = max(list(ready.values()) + list(late.values())) - t0
        out["all_listed_s"] = max(listed_at.values()) - t0
        out["per_run_ready_s"] = {r: ready[r] - t0 for r in runs}
        out["poll_finished_s"] = t_ready - t0
    _print_result(out)
    return out


# ----------------------------------------------------------------------------- reporting


def _print_result(r):
    if r.get("ok"):
        extra = ""
        if r["kind"] == "tb_plus":
            extra = " (import %.2fs, from spawn %.2fs)" % (r.get("import_s", 0), r.get("seconds_spawn", 0))
        bd = ", ".join("%s %.0f" % (k, v / MB) for k, v in sorted((r.get("peak_rss_by_process") or {}).items()))
        print("[%s]   %.2f s%s, peak RSS %.0f MB (%d procs: %s), RSS after load %.0f MB"
              % (r["label"], r["seconds"], extra, r["peak_rss"] / MB, r["peak_procs"], bd, r["rss_after"] / MB),
              flush=True)
    else:
        print("[%s]   FAILED: %s" % (r["label"], r.get("error") or r.get("problems")), flush=True)
        for k in ("stderr_tail", "log_tail"):
            if r.get(k):
                print("   ---- %s ----\n%s" % (k, r[k][-1500:]), flush=True)


def machine_info():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(), "platform": platform.platform(),
    }
    import importlib.metadata as md

    for dist in ("tensorboard", "tensorboard-data-server", "tensorflow-cpu", "tensorflow", "numpy", "protobuf",
                 "google-crc32c", "psutil"):
        try:
            info[dist.replace("-", "_")] = md.version(dist)
        except Exception:  # noqa: BLE001
            info[dist.replace("-", "_")] = None
    info["tensorflow"] = info.pop("tensorflow_cpu") or info["tensorflow"]
    try:
        info["tb_plus_git"] = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                                             capture_output=True, text=True, timeout=10).stdout.strip() or None
    except Exception:  # noqa: BLE001
        info["tb_plus_git"] = None
    try:
        import google_crc32c
        info["google_crc32c_impl"] = google_crc32c.implementation
    except Exception:  # noqa: BLE001
        pass
    return info


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows):
    hdr = ("| case | data | seconds | MB/s | records/s | peak RSS MB (all procs) | RSS after load MB |\n"
           "|---|---:|---:|---:|---:|---:|---:|")
    lines = [hdr]
    for name, r in rows:
        if r is None:
            continue
        if not r.get("ok"):
            lines.append("| %s | %s | FAILED | - | - | - | - |" % (name, fmt(r.get("bytes", 0) / MB, ".0f") + " MB"))
            continue
        sec = r["seconds"]
        data_rate = r["bytes"] / sec / MB if r.get("throughput", True) else None
        rec_rate = r["records"] / sec if r.get("throughput", True) else None
        lines.append("| %s | %.0f MB | %.2f | %s | %s | %.0f | %.0f |" % (
            name, r["bytes"] / MB, sec, fmt(data_rate, ".0f"),
            "-" if rec_rate is None else "{:,.0f}".format(rec_rate), r["peak_rss"] / MB, r["rss_after"] / MB))
    return "\n".join(lines)


def ratio(a, b):
    if not a or not b or not a.get("ok") or not b.get("ok") or not a["seconds"] or not b["seconds"]:
        return None
    return b["seconds"] / a["seconds"]


# ----------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description="tb_plus.store vs stock TensorBoard load benchmark")
    ap.add_argument("--size-gb", type=float, default=2.0, help="big logdir size (default 2.0)")
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--tags", type=int, default=300, help="scalar tags per run")
    ap.add_argument("--small-mb", type=float, default=100.0, help="small logdir for load_fast=false (default 100)")
    ap.add_argument("--skip-stock", action="store_true", help="no stock TensorBoard runs")
    ap.add_argument("--skip-slow", action="store_true", help="skip stock --load_fast=false")
    ap.add_argument("--skip-tbplus", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    ap.add_argument("--timeout", type=int, default=900, help="per timed run, seconds (default 900)")
    ap.add_argument("--slow-timeout", type=int, default=1800, help="stock load_fast=false timeout (default 1800)")
    ap.add_argument("--keep-cache", action="store_true", help="keep tb_plus cache dirs")
    ap.add_argument("--tb-plus-path", default=None, help=argparse.SUPPRESS)  # dev: import tb_plus from elsewhere
    ap.add_argument("--out", default=None, help="write all results as JSON here")
    add_smoke_flag(ap)
    a = ap.parse_args(argv)
    if a.smoke:
        a.size_gb, a.tags, a.small_mb, a.timeout, a.slow_timeout = 0.004, 20, 1.5, 300, 300
    with temp_dir(prefix="tbp_bench_store_") as work:
        if a.smoke:
            a.data_dir = os.path.join(work, "data")
        return run(a)


def run(a):

    info = machine_info()
    print("## machine: %s, %s cores, %s GB RAM, Python %s, tensorboard %s, tensorboard-data-server %s, tensorflow %s"
          % (info["cpu"], info["cores"], info["ram_gb"], info["python"], info["tensorboard"],
             info["tensorboard_data_server"], info["tensorflow"]), flush=True)

    man = gen_logdir.generate(a.data_dir, a.size_gb, a.runs, a.tags, verify_torch=not a.smoke)
    n_hist = len(man["hist_tags"])
    print("## logdir %s\n   %.1f MB, %d runs, %d scalar tags/run (+%d histogram tags), %d steps, %s records"
          % (man["logdir"], man["bytes"] / MB, len(man["runs"]), len(man["scalar_tags"]), n_hist, man["steps"],
             "{:,}".format(man["records"])), flush=True)
    small = None
    if not (a.skip_stock and a.skip_tbplus):
        small = gen_logdir.generate(a.data_dir, a.small_mb / 1000.0, a.runs, a.tags, verify_torch=not a.smoke)
        print("## small logdir %s\n   %.1f MB, %d steps, %s records"
              % (small["logdir"], small["bytes"] / MB, small["steps"], "{:,}".format(small["records"])), flush=True)

    cache_root = os.path.join(a.data_dir, "caches")
    os.makedirs(cache_root, exist_ok=True)
    R = {}
    caches = []

    def fresh_cache(tag):
        d = tempfile.mkdtemp(prefix="tbp_cache_%s_" % tag, dir=cache_root)
        caches.append(d)
        return d

    try:
        if not a.skip_tbplus:
            c_crc = fresh_cache("crc")
            R["tbp_cold_crc"] = run_tbplus(man, "cold", c_crc, True, a.timeout, a.tb_plus_path, "tb_plus cold CRC on")
            R["tbp_cold_nocrc"] = run_tbplus(man, "cold", fresh_cache("nocrc"), False, a.timeout, a.tb_plus_path,
                                             "tb_plus cold CRC off")
            R["tbp_warm"] = run_tbplus(man, "warm", c_crc, True, a.timeout, a.tb_plus_path, "tb_plus warm reopen")
            R["tbp_warm"]["throughput"] = False
        if not a.skip_stock:
            R["stock_fast"] = run_stock(man, True, a.timeout, label="stock load_fast=true")
            if a.smoke:  # the same code path as the row above; a TensorBoard start costs seconds
                left_out("stock --load_fast=true on the small logdir", "smoke: same code path as on the big one")
            else:
                R["stock_fast_small"] = run_stock(small, True, a.timeout, label="stock load_fast=true (small)")
            if not a.skip_slow:
                R["stock_slow_small"] = run_stock(small, False, a.slow_timeout, label="stock load_fast=false (small)")
        if not a.skip_tbplus and small is not None:
            R["tbp_cold_small"] = run_tbplus(small, "cold", fresh_cache("small"), True, a.timeout, a.tb_plus_path,
                                             "tb_plus cold CRC on (small)")
    finally:
        if not a.keep_cache:
            for d in caches:
                shutil.rmtree(d, ignore_errors=True)

    rows = [
        ("tb_plus cold, CRC on", R.get("tbp_cold_crc")),
        ("tb_plus cold, CRC off", R.get("tbp_cold_nocrc")),
        ("tb_plus warm reopen", R.get("tbp_warm")),
        ("stock `--load_fast=true` (Rust)", R.get("stock_fast")),
        ("stock `--load_fast=true` (Rust), small", R.get("stock_fast_small")),
        ("stock `--load_fast=false` (Python), small", R.get("stock_slow_small")),
        ("tb_plus cold, CRC on, small", R.get("tbp_cold_small")),
    ]
    print()
    print("## results (%s, %s cores, %s GB RAM; logdir in page cache)" % (info["cpu"], info["cores"], info["ram_gb"]))
    print()
    print(table(rows))
    print()
    ratios = {
        "tb_plus cold CRC on vs Rust (speedup = Rust s / tb_plus s)": ratio(R.get("tbp_cold_crc"), R.get("stock_fast")),
        "tb_plus cold CRC off vs Rust": ratio(R.get("tbp_cold_nocrc"), R.get("stock_fast")),
        "tb_plus cold CRC on vs Rust, small": ratio(R.get("tbp_cold_small"), R.get("stock_fast_small")),
        "tb_plus cold CRC on vs load_fast=false, small": ratio(R.get("tbp_cold_small"), R.get("stock_slow_small")),
    }
    for k, v in ratios.items():
        print("- %s: %s" % (k, "n/a" if v is None else "%.2fx" % v))
    w = R.get("tbp_warm")
    if w and w.get("ok"):
        print("- tb_plus warm reopen: %.3f s (no-op refresh afterwards: %s s)" % (
            w["seconds"], fmt(w.get("warm_noop_refresh_s"), ".3f")))
    for key in ("tbp_cold_crc", "tbp_cold_nocrc", "tbp_cold_small"):
        r = R.get(key)
        if r and r.get("ok"):
            br = (r.get("stats") or {}).get("bytes_read")
            print("- %s: refresh %.2f s + touch %.2f s; import %.2f s; spawn->done %.2f s; stats.bytes_read=%s"
                  % (r["label"], r.get("refresh_s", 0), r.get("touch_s", 0), r.get("import_s", 0),
                     r.get("seconds_spawn", 0), br))
    for key in ("stock_fast", "stock_fast_small", "stock_slow_small"):
        r = R.get(key)
        if r and r.get("ok"):
            print("- %s: HTTP up after %s s, all runs listed after %.2f s, every last step served at %.2f s; "
                  "untimed check of all %d series over HTTP took %.1f s (%d not yet served then); %d HTTP requests"
                  % (r["label"], fmt(r.get("http_up_s"), ".2f"), r["all_listed_s"], r["seconds"],
                     len(r.get("per_run_ready_s", ())) * len(man["scalar_tags"]), r.get("verify_all_s", 0),
                     r.get("verify_late", 0), r["http_requests"]))
    print("\nSeconds: tb_plus cold rows run from spawning a fresh Python subprocess (interpreter start and "
          "`import tb_plus.store` included) until `refresh()` is done and every series was read and its last step "
          "checked; the warm reopen row runs from `Logdir(...)` to the end of runs()/tags()/one series per run "
          "(inside the child). Stock rows run from spawning `tensorboard` until the last (run, tag) served its last "
          "step over HTTP (TensorBoard's own startup included). RSS is summed over the process tree (tb_plus workers, "
          "rustboard data server), sampled every 50 ms.")
    print("\nmachine: " + json.dumps(info))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"machine": info, "logdir": {k: man[k] for k in ("logdir", "bytes", "records", "steps", "params")},
                       "small_logdir": None if small is None else {k: small[k] for k in ("logdir", "bytes", "records", "steps", "params")},
                       "results": R, "ratios": ratios, "argv": sys.argv}, f, indent=1, default=str)
        print("wrote %s" % a.out)
    bad = [k for k, r in R.items() if not r.get("ok")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
