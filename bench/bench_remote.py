#!/usr/bin/env python
"""Log directories on S3: requests and time for a cold index, a warm reopen, an idle minute of
polling and an append, against a real S3-compatible server on loopback (moto), side by side with
stock TensorBoard pointed at the same bucket.

    python bench/bench_remote.py [--size-gb 0.5] [--poll 5] [--idle 60] [--smoke]

The log directory is bench/gen_logdir.py's (real writers' bytes; 8 runs x 300 scalar tags),
uploaded to s3://bench/logs. Request counts are the server's (every HTTP request it answered).
`tb-plus index` runs as a child process with the endpoint and credentials in its environment
(what s3fs reads). Targets: warm reopen <= 2 s and <= 10 requests; an idle minute <= 1 request per
run per polling interval. --smoke: a 3 MB log directory in a temporary directory, an idle 3 s polled every
1 s, stock TensorBoard until its first answer; without moto or s3fs it says so and leaves everything out.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from _common import add_smoke_flag, left_out, missing, temp_dir  # noqa: E402


def tb_plus_index(url, cache, env):
    exe = os.path.join(os.path.dirname(sys.executable), "tb-plus")
    t = time.perf_counter()
    p = subprocess.run([exe, "index", url, "--cache-dir", cache], capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(p.stderr[-2000:])
    return dt, p.stdout


def stock(url, env, seconds, load_fast, first_answer=False):
    """Stock TensorBoard on the bucket: how many runs it lists after `seconds` (with first_answer, as
    soon as it answers), after how long, and what it says."""
    from _common import spawn_tensorboard, stop_process, tensorboard_port

    tmp = tempfile.mkdtemp(prefix="stock_s3_")
    runs, err = None, ""
    t0 = time.monotonic()
    proc = spawn_tensorboard(["--logdir", url, "--load_fast", load_fast], os.path.join(tmp, "tb.log"),
                             env=dict(env, TF_CPP_MIN_LOG_LEVEL="2"),
                             exe=[os.path.join(os.path.dirname(sys.executable), "tensorboard")])
    try:
        port = tensorboard_port(proc, seconds, exit_ok=True)  # None: it gave up on the URL
        end = t0 + seconds
        while port is not None and time.monotonic() < end and proc.poll() is None:
            try:
                runs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5).read())
                if first_answer:
                    break
            except OSError:
                pass
            time.sleep(1)  # polling a server that is loading; bounded by `seconds`
    finally:
        elapsed = time.monotonic() - t0
        stop_process(proc)
        with open(os.path.join(tmp, "tb.log")) as log:
            text = log.read()
        lines = [ln for ln in text.splitlines() if "rror" in ln or "not" in ln.lower() and "s3" in ln.lower()]
        err = lines[-1][:200] if lines else text.strip().splitlines()[-1][:200] if text.strip() else ""
        shutil.rmtree(tmp, ignore_errors=True)
    return runs, err, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-gb", type=float, default=0.5)
    ap.add_argument("--poll", type=float, default=5.0, help="polling interval of the idle minute (s)")
    ap.add_argument("--idle", type=float, default=60.0, help="length of the idle period (s)")
    ap.add_argument("--stock-seconds", type=float, default=60.0)
    ap.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    add_smoke_flag(ap)
    a = ap.parse_args()
    if a.smoke:
        a.size_gb, a.poll, a.idle, a.stock_seconds = 0.003, 1.0, 3.0, 60.0
    gone = missing("moto", "s3fs")
    if gone:
        if not a.smoke:
            raise SystemExit("this benchmark needs moto[server] and s3fs (pip install -e '.[test]'): %s is missing" % gone)
        left_out("every part (an S3 server on loopback)", "%s is not installed" % gone)
        print_table("-", 0, [("every case", None, {}, "left out: %s is not installed" % gone)])
        return
    with temp_dir(prefix="tbp_bench_remote_") as work:
        if a.smoke:
            a.data_dir = work
        run(a)


def print_table(size_mb, nruns, rows):
    from bench_render import machine

    print("\n## S3 (moto on loopback), %s MB, %d runs x 300 tags (%s)\n" % (size_mb, nruns, machine()))
    print("| case | seconds | requests | list | get | put | target / note |")
    print("|---|---|---|---|---|---|---|")
    for name, dt, c, target in rows:
        print("| %s | %s | %d | %d | %d | %d | %s |" % (name, "-" if dt is None else "%.2f" % dt, c.get("requests", 0),
                                                      c.get("list", 0), c.get("get", 0), c.get("put", 0), target))


def run(a):
    import gen_logdir

    from tests.remote.s3server import S3Server

    man = gen_logdir.generate(a.data_dir, a.size_gb, 8, 300, verify_torch=not a.smoke)
    local = man["logdir"]
    runs = sorted(os.listdir(local))
    s3 = S3Server().start()
    env = dict(os.environ, **s3.env())
    os.environ.update(s3.env())
    s3.fs().mkdir("bench")
    t = time.perf_counter()
    s3.upload_tree(local, "bench/logs")
    size = sum(os.path.getsize(os.path.join(b, f)) for b, _, fs in os.walk(local) for f in fs)
    print("uploaded %.1f MB (%d runs) to s3://bench/logs in %.1f s (%s)" % (size / 1e6, len(runs),
                                                                           time.perf_counter() - t, s3.endpoint))
    url = "s3://bench/logs"
    rows = []
    cache = tempfile.mkdtemp(prefix="bench_remote_")
    try:
        s3.reset()
        dt, _ = tb_plus_index(url, cache, env)
        c = s3.snapshot()
        rows.append(("tb_plus cold index (`tb-plus index`, empty cache)", dt, c, ""))
        s3.reset()
        dt, _ = tb_plus_index(url, cache, env)
        c = s3.snapshot()
        rows.append(("tb_plus warm reopen (`tb-plus index`, same cache)", dt, c, "<= 2 s, <= 10 requests"))

        from tb_plus.store import Logdir

        ld = Logdir(url, cache_dir=cache, poll_seconds=a.poll).refresh()
        s3.reset()
        t0 = time.monotonic()
        while time.monotonic() - t0 < a.idle:  # TensorBoard's reload loop asks every second here
            ld.refresh()
            time.sleep(1.0)
        c = s3.snapshot()
        polls = a.idle / a.poll
        rows.append(("tb_plus idle %.0f s, refresh every 1 s, poll every %.0f s" % (a.idle, a.poll), a.idle, c,
                     "<= %d (1 per run per poll)" % (len(runs) * polls)))

        # the index published in the bucket: server A indexes and publishes, server B (its own, empty
        # local copy, as on another machine) adopts it
        for name, who in (("server A: cold index, publishing it to s3://bench/index", "a"),
                          ("server B: empty local copy, adopts the published index", "b")):
            s3.reset()
            benv = dict(env, TB_PLUS_CACHE_DIR=os.path.join(cache, "shared-" + who))
            exe = os.path.join(os.path.dirname(sys.executable), "tb-plus")
            t = time.perf_counter()
            p = subprocess.run([exe, "index", url, "--cache-dir", "s3://bench/index"], capture_output=True, text=True,
                               env=benv)
            dt = time.perf_counter() - t
            if p.returncode != 0:
                raise SystemExit(p.stderr[-2000:])
            c = s3.snapshot()
            event_gets = sum(1 for g, _ in s3.gets if g.startswith("/bench/logs/"))
            rows.append((name, dt, c, "event-file reads: %d" % event_gets))

        # an append: one run's file grows by ~1 MB, re-uploaded as object stores require
        run0 = os.path.join(local, runs[0])
        (f0,) = [f for f in os.listdir(run0) if "tfevents" in f]
        with open(os.path.join(run0, f0), "rb") as fh:
            data = fh.read()
        ld2 = Logdir(url, cache_dir=cache, poll_seconds=0)
        ld2.refresh()
        key = f"bench/logs/{runs[0]}/{f0}"
        extra = _more_records(data, 1 << 20)
        s3.fs().pipe_file(key, data + extra)
        s3.reset()
        t = time.perf_counter()
        ld2.refresh()
        dt = time.perf_counter() - t
        c = s3.snapshot()
        rows.append(("tb_plus refresh after one object grew by %.1f MB" % (len(extra) / 1e6), dt, c,
                     "1 list + 1 head read + new bytes"))
        s3.fs().pipe_file(key, data)  # restore
        got = ld2.remote.requests()
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    print_table("%.0f" % (size / 1e6), len(runs), rows)
    print("\ntb_plus's own count on the last handle: %s" % got)
    for load_fast in ("false", "true"):
        s3.reset()
        found, err, elapsed = stock(url, env, a.stock_seconds, load_fast, first_answer=a.smoke)
        n = len(found) if isinstance(found, list) else 0
        print("stock TensorBoard --load_fast=%s on %s: %d runs listed after %.0f s, %d requests; last log line: %s"
              % (load_fast, url, n, elapsed, s3.snapshot().get("requests", 0), err or "-"))
    s3.stop()


def _more_records(data, nbytes):
    """Whole records copied from the file's body (after its first record), about nbytes of them."""
    import struct

    out, pos = bytearray(), 0
    first = True
    while pos + 12 <= len(data) and len(out) < nbytes:
        (n,) = struct.unpack_from("<Q", data, pos)
        rec = data[pos: pos + 12 + n + 4]
        if not first:
            out += rec
        first = False
        pos += 12 + n + 4
    return bytes(out)


if __name__ == "__main__":
    main()
