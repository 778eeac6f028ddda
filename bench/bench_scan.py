#!/usr/bin/env python
"""What CRC checking and decoding cost, per layer, on one event file (single core).

    python bench/bench_scan.py [FILE] [--mb 64] [--smoke]

Prints MB/s and records/s for: a Python loop over the framing only; the same plus google-crc32c
per record (the PyPI C implementation); the same plus protobuf Event parsing; tb_plus's pure-Python
scanner; the C scanner with and without CRC checks; and the whole per-file indexer (scan + group by
tag + write segments) with and without CRC checks. Without FILE it uses the first file of the
generated 0.2 GB bench logdir (bench/gen_logdir.py); with --smoke, of a 4 MB one in a temporary
directory, and at most 2 MB of it.
"""

import argparse
import os
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _common import add_smoke_flag, temp_dir  # noqa: E402


def timed(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?")
    ap.add_argument("--mb", type=float, default=64, help="bytes of the file to use")
    add_smoke_flag(ap)
    args = ap.parse_args(argv)
    if args.smoke:
        args.mb = min(args.mb, 2)
    with temp_dir(prefix="tbp_bench_scan_") as work:
        run(args, work)


def run(args, work):
    import google_crc32c
    from tensorboard.compat.proto import event_pb2

    from tb_plus.store import indexer, scan

    path = args.file
    if not path:
        import gen_logdir

        if args.smoke:
            man = gen_logdir.generate(os.path.join(work, "data"), size_gb=0.004, verify_torch=False)
        else:
            man = gen_logdir.generate(os.path.join(HERE, "data"), size_gb=0.2)
        path = os.path.join(man["logdir"], sorted(man["runs"].items())[0][1]["file"])
    with open(path, "rb") as f:
        data = f.read(int(args.mb * 1e6))
    cut = scan.make_scanner().scan(data, 0)[0]  # whole records only
    data = data[:cut]
    nrec = scan.make_scanner().scan(data, 0)[4]
    mb = len(data) / 1e6
    rows = []

    def framing():
        p, n, unpack = 0, 0, struct.unpack_from
        while p < len(data):
            (ln,) = unpack("<Q", data, p)
            p += 16 + ln
            n += 1
        return n

    def framing_crc():
        p, n, unpack, crc = 0, 0, struct.unpack_from, google_crc32c.value
        mv = memoryview(data)
        while p < len(data):
            (ln,) = unpack("<Q", data, p)
            crc(data[p : p + 8])
            crc(data[p + 12 : p + 12 + ln])
            p += 16 + ln
            n += 1
        return n

    def framing_crc_proto():
        p, n, unpack, crc, parse = 0, 0, struct.unpack_from, google_crc32c.value, event_pb2.Event.FromString
        mv = memoryview(data)
        while p < len(data):
            (ln,) = unpack("<Q", data, p)
            crc(data[p : p + 8])
            crc(data[p + 12 : p + 12 + ln])
            parse(mv[p + 12 : p + 12 + ln])
            p += 16 + ln
            n += 1
        return n

    small = data[: scan.make_scanner().scan(data[: 8 << 20], 0)[0]]  # the Python scanner is slow

    def run_indexer(verify):
        cache = tempfile.mkdtemp(dir=work)
        tmpf = os.path.join(cache, "events.out.tfevents.x")
        os.symlink(os.path.abspath(path), tmpf) if len(data) == os.path.getsize(path) else open(tmpf, "wb").write(data)
        return lambda: indexer.index_file({"path": tmpf, "relpath": "x", "run": ".", "cache": os.path.join(cache, "c"),
                                           "verify": verify, "reset": True})

    cases = [
        ("Python loop: framing only", framing, mb),
        ("Python loop: framing + google-crc32c per record", framing_crc, mb),
        ("Python loop: framing + google-crc32c + protobuf Event", framing_crc_proto, mb),
        ("tb_plus pure-Python scanner (CRC on)", lambda: scan.make_scanner(True, force_python=True).scan(small, 0), len(small) / 1e6),
        ("tb_plus C scanner, CRC on", lambda: scan.make_scanner(True).scan(data, 0), mb),
        ("tb_plus C scanner, CRC off", lambda: scan.make_scanner(False).scan(data, 0), mb),
        ("tb_plus indexer (scan + group + segments), CRC on", run_indexer(True), mb),
        ("tb_plus indexer (scan + group + segments), CRC off", run_indexer(False), mb),
    ]
    if not scan.have_c_scanner():
        cases = [c for c in cases if "C scanner" not in c[0]]
    print(f"file: {path}\nused: {mb:.1f} MB, {nrec} records ({len(data) / nrec:.1f} B/record); "
          f"C scanner built: {scan.have_c_scanner()}, hardware CRC: {getattr(__import__('tb_plus.store._scan', fromlist=['x']), 'HW_CRC', 0) if scan.have_c_scanner() else 0}")
    print("\n| layer | MB/s | records/s |\n|---|---|---|")
    for label, fn, size in cases:
        secs, _ = timed(fn, repeat=1 if "Python" in label else 3)
        recs = nrec * size / mb
        rows.append((label, size / secs, recs / secs))
        print(f"| {label} | {size / secs:.0f} | {recs / secs / 1e6:.2f} M |", flush=True)


if __name__ == "__main__":
    main()
