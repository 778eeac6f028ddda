#!/usr/bin/env python
"""Fast generator of large, realistic TensorBoard logdirs for benchmarks.

The bytes written are exactly what real writers produce:

* TFRecord framing: ``uint64 len | masked_crc32c(len) | payload | masked_crc32c(payload)``
  (little endian; ``masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8 mod 2**32``).
* payloads are serialized ``tensorboard.compat.proto.event_pb2.Event`` messages; the
  first record of every file is the ``file_version: "brain.Event:2"`` event.
* writer styles (one per run, cycled; checked against the real writers):

  - ``torch``  : torch.utils.tensorboard ``add_scalar`` -> ``summary.value{tag, simple_value}``
  - ``tbx``    : tensorboardX (same scalar bytes, file_version event without source_metadata)
  - ``tf2``    : TF 2.x ``tf.summary.scalar`` -> ``value{tag, tensor{dtype: DT_FLOAT,
                 tensor_shape{}, tensor_content: <4 bytes>}, metadata{plugin_data{plugin_name:
                 "scalars"}}}``, metadata on *every* record (as TF 2.21 writes them)
  - ``tbpb``   : tensorboard's TF-free ``summary_v2.scalar_pb`` / tensor-style scalars
                 (``tensor{dtype, tensor_shape{}, float_val: [v]}`` + the same metadata)

  plus legacy ``HistogramProto`` histograms (as torch ``add_histogram`` writes them,
  30-60 buckets) for a few tags every ``hist_every`` steps.

Instead of running millions of records through protobuf, every (tag, step-varint
length) gets a template serialized once by protobuf; records are then assembled as
numpy byte blocks (one block = ``chunk`` steps x all tags) whose variable fields
(wall_time, step varint, value, CRCs) are patched in place.  The CRCs are computed with
``google_crc32c``.  ``verify_sample()`` checks, record by record, that the assembled
bytes equal ``Event.SerializeToString()`` framed with google_crc32c, and (when torch
is importable) that they equal what torch's SummaryWriter writes for the same scalar.

Usage as a script::

    python bench/gen_logdir.py --size-gb 0.2 --out bench/data
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import struct
import sys
import time

import google_crc32c
import numpy as np

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2

GEN_VERSION = 3  # bump when the produced bytes change (invalidates cached logdirs)
STYLES_CYCLE = ("torch", "tf2", "torch", "tbx", "torch", "tbpb", "torch", "tbx")
HOST = "benchhost"
_MASK_DELTA = 0xA282EAD8


# ----------------------------------------------------------------------------- framing


def masked_crc(data):
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def mask_np(crcs):
    c = crcs.astype(np.uint64)
    return ((((c >> np.uint64(15)) | (c << np.uint64(17))) + np.uint64(_MASK_DELTA)) & np.uint64(0xFFFFFFFF)).astype("<u4")


def frame(payload):
    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", masked_crc(header)) + payload + struct.pack("<I", masked_crc(payload))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint_len(n):
    return len(varint(n))


# ----------------------------------------------------------------------------- tags


def make_tags(n):
    """~n hierarchical scalar tag names, deterministic."""
    tags = [
        "train/loss", "train/lr", "train/acc@1", "train/acc@5", "train/grad_norm",
        "train/throughput/samples_per_sec", "train/time/step_ms", "train/time/data_ms",
        "eval/loss", "eval/acc@1", "eval/acc@5", "eval/ppl",
        "optim/adam/beta1_bias", "optim/adam/update_ratio", "system/gpu0/mem_gb",
        "system/gpu0/util", "system/cpu/util", "loss/ce", "loss/aux/z_loss", "loss/aux/balance",
    ]
    parts = ("attn", "mlp", "norm1", "norm2")
    stats = ("grad_norm", "weight_norm", "act_mean", "act_std", "update_norm", "act_max")
    b = 0
    while len(tags) < n:
        for p in parts:
            for s in stats:
                tags.append("layers/block%d/%s/%s" % (b, p, s))
        b += 1
    return tags[:n]


def make_hist_tags(n):
    base = ["hist/layers/block0/attn/weights", "hist/layers/block0/mlp/weights",
            "hist/embedding/weights", "hist/head/logits", "hist/layers/block1/attn/grads",
            "hist/layers/block1/mlp/grads"]
    while len(base) < n:
        base.append("hist/extra/h%d" % len(base))
    return base[:n]


# ----------------------------------------------------------------------------- protobuf reference


def scalar_value_pb(style, tag, v):
    if style in ("torch", "tbx"):
        return summary_pb2.Summary.Value(tag=tag, simple_value=v)
    md = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    if style == "tf2":
        t = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=struct.pack("<f", v))
    elif style == "tbpb":
        t = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[v])
    else:
        raise ValueError(style)
    t.tensor_shape.SetInParent()  # empty shape message, present on the wire (b"\x12\x00")
    return summary_pb2.Summary.Value(tag=tag, tensor=t, metadata=md)


def scalar_event_pb(style, tag, wall, step, v):
    return event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(value=[scalar_value_pb(style, tag, v)]))


def file_version_event(style, wall):
    ev = event_pb2.Event(wall_time=wall, file_version="brain.Event:2")
    if style == "torch":
        ev.source_metadata.writer = "tensorboard.summary.writer.event_file_writer"
    elif style == "tf2":
        ev.wall_time = float(int(wall))
        ev.source_metadata.writer = "tensorflow.core.util.events_writer"
    elif style == "tbpb":
        ev.source_metadata.writer = "tensorboard.summary.writer.event_file_writer"
    return ev


def histogram_event(tag, wall, step, rng):
    """A legacy HistogramProto event like torch's add_histogram (zero edge buckets trimmed)."""
    nb = int(rng.integers(30, 61))
    data = rng.standard_normal(2048) * (0.5 + step * 1e-5) + 0.01 * np.sin(step / 500.0)
    counts, edges = np.histogram(data, bins=nb)
    limits = edges[1:]
    nz = np.nonzero(counts)[0]
    start, end = int(nz[0]), int(nz[-1]) + 1
    start = max(start - 1, 0) if start > 0 else 0
    end = min(end + 1, len(counts))
    h = summary_pb2.HistogramProto(
        min=float(data.min()), max=float(data.max()), num=float(data.size),
        sum=float(data.sum()), sum_squares=float((data * data).sum()),
        bucket_limit=limits[start:end].tolist(), bucket=counts[start:end].astype(np.float64).tolist(),
    )
    return event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, histo=h)]))


# ----------------------------------------------------------------------------- block builder


class TagTemplates:
    """Per-tag payload tails (the ``summary`` field) for one writer style."""

    SENTINEL = 1.2345678e-21  # float32 bit pattern that cannot collide with tag bytes

    def __init__(self, style, tags):
        self.style = style
        self.tags = tags
        sent = struct.pack("<f", self.SENTINEL)
        self.tails = []
        self.val_off = []  # offset of the 4 value bytes inside the tail
        for tag in tags:
            tail = event_pb2.Event(summary=summary_pb2.Summary(value=[scalar_value_pb(style, tag, self.SENTINEL)])).SerializeToString()
            off = tail.find(sent)
            assert off > 0 and tail.find(sent, off + 1) < 0, (style, tag)
            self.tails.append(tail[:off] + b"\0\0\0\0" + tail[off + 4:])
            self.val_off.append(off)

    def layout(self, step_len):
        """Block layout for one step (all tags), for steps whose varint has step_len bytes
        (0 = step 0, which proto3 omits)."""
        row = bytearray()
        wall_off, step_off, val_off, crc_off, p_start, p_end = [], [], [], [], [], []
        for tail, voff in zip(self.tails, self.val_off):
            plen = 9 + (1 + step_len if step_len else 0) + len(tail)
            header = struct.pack("<Q", plen)
            base = len(row)
            row += header + struct.pack("<I", masked_crc(header))
            p_start.append(len(row))
            row += b"\x09"
            wall_off.append(len(row))
            row += b"\0" * 8
            if step_len:
                row += b"\x10"
                step_off.append(len(row))
                row += b"\0" * step_len
            val_off.append(len(row) + voff)
            row += tail
            p_end.append(len(row))
            crc_off.append(len(row))
            row += b"\0\0\0\0"
            assert len(row) - base == plen + 16
        return {
            "row": np.frombuffer(bytes(row), dtype=np.uint8),
            "wall_idx": (np.asarray(wall_off)[:, None] + np.arange(8)).ravel(),
            "step_idx": (np.asarray(step_off, dtype=np.int64)[:, None] + np.arange(step_len)).ravel() if step_len else None,
            "val_idx": (np.asarray(val_off)[:, None] + np.arange(4)).ravel(),
            "crc_idx": (np.asarray(crc_off)[:, None] + np.arange(4)).ravel(),
            "p_start": np.asarray(p_start, dtype=np.int64),
            "p_end": np.asarray(p_end, dtype=np.int64),
            "step_len": step_len,
        }


def step_varints(steps, step_len):
    """(K, step_len) uint8 array of protobuf varints for steps (all of that length)."""
    s = steps.astype(np.uint64)
    out = np.empty((len(steps), step_len), dtype=np.uint8)
    for i in range(step_len):
        b = (s >> np.uint64(7 * i)) & np.uint64(0x7F)
        if i < step_len - 1:
            b |= np.uint64(0x80)
        out[:, i] = b.astype(np.uint8)
    return out


def build_block(lay, steps, walls, values):
    """Bytes of len(steps) consecutive steps x all tags.  walls: (K, T) float64,
    values: (K, T) float32."""
    K = len(steps)
    T = len(lay["p_start"])
    row = lay["row"]
    B = row.size
    A = np.tile(row, (K, 1))
    A[:, lay["wall_idx"]] = np.ascontiguousarray(walls, dtype="<f8").view(np.uint8).reshape(K, T * 8)
    if lay["step_len"]:
        sv = step_varints(steps, lay["step_len"])
        A[:, lay["step_idx"]] = np.tile(sv, (1, T))
    A[:, lay["val_idx"]] = np.ascontiguousarray(values, dtype="<f4").view(np.uint8).reshape(K, T * 4)
    buf = A.tobytes()
    starts = (np.arange(K, dtype=np.int64)[:, None] * B + lay["p_start"][None, :]).ravel().tolist()
    ends = (np.arange(K, dtype=np.int64)[:, None] * B + lay["p_end"][None, :]).ravel().tolist()
    crc = google_crc32c.value
    crcs = np.fromiter((crc(buf[a:b]) for a, b in zip(starts, ends)), dtype=np.uint64, count=K * T)
    A[:, lay["crc_idx"]] = mask_np(crcs).view(np.uint8).reshape(K, T * 4)
    return A


# ----------------------------------------------------------------------------- per run


def run_plan(steps, hist_every):
    """Chunks [a, b) of steps with constant varint length, split at histogram steps."""
    bounds = {0, 1, steps}
    for p in (7, 14, 21, 28, 35):
        if (1 << p) < steps:
            bounds.add(1 << p)
    bounds.update(range(0, steps, hist_every))
    bounds = sorted(b for b in bounds if 0 <= b <= steps)
    return list(zip(bounds[:-1], bounds[1:]))


def run_values(rng, K, T, nan_rate):
    v = rng.standard_normal((K, T)).astype(np.float32)
    if nan_rate > 0:
        m = rng.random((K, T)) < nan_rate
        n = int(m.sum())
        if n:
            v[m] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype=np.float32), size=n)
    return v


def gen_run(job):
    """Write one run (one events file).  Returns its stats."""
    run_dir, style, tags, hist_tags, steps, hist_every, seed, nan_rate, wall0 = (
        job["run_dir"], job["style"], job["tags"], job["hist_tags"], job["steps"],
        job["hist_every"], job["seed"], job["nan_rate"], job["wall0"])
    os.makedirs(run_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    tpl = TagTemplates(style, tags)
    layouts = {}
    T = len(tags)
    pid = 10000 + seed % 50000
    if style == "tbx":
        name = "events.out.tfevents.%d.%s" % (int(wall0), HOST)
    elif style == "tf2":
        name = "events.out.tfevents.%d.%s.%d.0.v2" % (int(wall0), HOST, pid)
    else:
        name = "events.out.tfevents.%d.%s.%d.0" % (int(wall0), HOST, pid)
    path = os.path.join(run_dir, name)
    tmp = path + ".partial"
    n_rec = 0
    step_dt = 0.21
    with open(tmp, "wb", buffering=1 << 22) as f:
        f.write(frame(file_version_event(style, wall0).SerializeToString()))
        n_rec += 1
        wall = wall0 + 0.5
        for a, b in run_plan(steps, hist_every):
            K = b - a
            st = np.arange(a, b, dtype=np.int64)
            if hist_tags and a % hist_every == 0:
                for i, htag in enumerate(hist_tags):
                    ev = histogram_event(htag, wall + 1e-4 * i, a, rng)
                    f.write(frame(ev.SerializeToString()))
                    n_rec += 1
                wall += 0.01
            L = varint_len(a) if a else 0
            lay = layouts.get(L)
            if lay is None:
                lay = layouts[L] = tpl.layout(L)
            step_starts = wall + np.cumsum(rng.uniform(0.9, 1.1, K) * step_dt) - step_dt
            within = np.cumsum(rng.uniform(1e-6, 4e-6, (K, T)), axis=1)
            walls = step_starts[:, None] + within
            wall = float(walls[-1, -1]) + step_dt
            vals = run_values(rng, K, T, nan_rate)
            f.write(memoryview(build_block(lay, st, walls, vals)))
            n_rec += K * T
    os.replace(tmp, path)
    return {"run": os.path.basename(run_dir), "style": style, "file": path, "bytes": os.path.getsize(path), "records": n_rec}


# ----------------------------------------------------------------------------- sizing / driver


def bytes_per_step(style, tags, step):
    tpl = TagTemplates(style, tags)
    L = varint_len(step) if step else 0
    return sum(16 + 9 + (1 + L if L else 0) + len(t) for t in tpl.tails)


def plan_logdir(size_bytes, runs, n_tags, n_hist, hist_every):
    tags = make_tags(n_tags)
    styles = [STYLES_CYCLE[i % len(STYLES_CYCLE)] for i in range(runs)]
    per_step = sum(bytes_per_step(s, tags, 1000) for s in styles)  # 2-byte varints
    per_step += runs * n_hist * 700 / hist_every  # ~histogram bytes per step
    steps = max(int(size_bytes / per_step), 2)
    if steps > 16384:  # 3-byte varints beyond 16384
        per_step3 = sum(bytes_per_step(s, tags, 20000) for s in styles) + runs * n_hist * 700 / hist_every
        steps = max(16384, int(16384 + (size_bytes - 16384 * per_step) / per_step3))
    return tags, styles, steps


def logdir_key(params):
    blob = json.dumps(dict(params, gen_version=GEN_VERSION), sort_keys=True).encode()
    return hashlib.sha1(blob).hexdigest()[:10]


def generate(out_root, size_gb=2.0, runs=8, n_tags=300, n_hist=4, hist_every=100, seed=0,
             nan_rate=2e-5, processes=None, verbose=True, force=False, verify_torch=True):
    """Generate (or reuse) a logdir; returns the manifest dict (incl. "logdir").

    Before writing, the assembled bytes are checked against protobuf (and, with verify_torch, against
    torch's SummaryWriter: it imports TensorFlow when installed, seconds; once per process)."""
    params = {"size_gb": round(float(size_gb), 4), "runs": int(runs), "tags": int(n_tags),
              "hist_tags": int(n_hist), "hist_every": int(hist_every), "seed": int(seed), "nan_rate": nan_rate}
    key = logdir_key(params)
    logdir = os.path.join(os.path.abspath(out_root), "logdir_%s_%dr_%dt_%s" % (("%gGB" % size_gb).replace(".", "p"), runs, n_tags, key))
    man_path = logdir + ".manifest.json"
    if not force and os.path.exists(man_path) and os.path.isdir(logdir):
        with open(man_path) as f:
            man = json.load(f)
        if verbose:
            print("[gen] reusing %s (%.1f MB, %d records)" % (logdir, man["bytes"] / 1e6, man["records"]), flush=True)
        return man
    verify_sample(with_torch=verify_torch)
    if os.path.exists(logdir):
        shutil.rmtree(logdir)
    os.makedirs(logdir)
    tags, styles, steps = plan_logdir(size_gb * 1e9, runs, n_tags, n_hist, hist_every)
    hist_tags = make_hist_tags(n_hist)
    jobs = []
    for i, style in enumerate(styles):
        jobs.append({
            "run_dir": os.path.join(logdir, "run_%02d_%s" % (i, style)), "style": style,
            "tags": tags, "hist_tags": hist_tags, "steps": steps, "hist_every": hist_every,
            "seed": seed * 1000 + i + 1, "nan_rate": nan_rate, "wall0": 1.7e9 + 3600.0 * i + 0.123456 * i,
        })
    t0 = time.time()
    nproc = processes or min(len(jobs), os.cpu_count() or 1)
    if verbose:
        print("[gen] writing %d runs x %d tags x %d steps (+%d histogram tags every %d steps) to %s with %d processes"
              % (runs, n_tags, steps, n_hist, hist_every, logdir, nproc), flush=True)
    if nproc > 1:
        with multiprocessing.get_context("fork").Pool(nproc) as pool:
            results = pool.map(gen_run, jobs, chunksize=1)
    else:
        results = [gen_run(j) for j in jobs]
    dt = time.time() - t0
    last_hist = ((steps - 1) // hist_every) * hist_every
    man = {
        "logdir": logdir, "params": params, "gen_version": GEN_VERSION,
        "bytes": sum(r["bytes"] for r in results), "records": sum(r["records"] for r in results),
        "runs": {r["run"]: {"style": r["style"], "bytes": r["bytes"], "records": r["records"],
                            "file": os.path.relpath(r["file"], logdir)} for r in results},
        "scalar_tags": tags, "hist_tags": hist_tags, "steps": steps,
        "last_step": steps - 1, "last_hist_step": last_hist if n_hist else None,
        "gen_seconds": dt,
    }
    with open(man_path + ".tmp", "w") as f:
        json.dump(man, f)
    os.replace(man_path + ".tmp", man_path)
    if verbose:
        print("[gen] done in %.1f s: %.1f MB, %d runs, %d scalar tags/run, %d records (%.2f M rec/s)"
              % (dt, man["bytes"] / 1e6, runs, n_tags, man["records"], man["records"] / dt / 1e6), flush=True)
    return man


# ----------------------------------------------------------------------------- verification


def _iter_records(data):
    off = 0
    while off < len(data):
        (n,) = struct.unpack_from("<Q", data, off)
        yield data[off:off + 16 + n], data[off + 12:off + 12 + n]
        off += 16 + n


_VERIFIED = set()  # the checks verify_sample() passed in this process


def verify_sample(with_torch=True):
    """Assembled bytes == protobuf SerializeToString + google_crc32c framing, for every
    style, for steps 0, 1-byte, 2-byte, 3-byte and 4-byte varints, incl. NaN/Inf/0.
    Returns the number of records checked (0 when this process already checked them)."""
    wanted = {"protobuf", "torch"} if with_torch else {"protobuf"}
    if wanted <= _VERIFIED:
        return 0
    n = _verify_protobuf()
    _VERIFIED.add("protobuf")
    if with_torch:
        n += _verify_against_torch()
        _VERIFIED.add("torch")
    return n


def _verify_protobuf():
    rng = np.random.default_rng(123)
    tags = make_tags(12) + ["a", "x" * 90]
    n = 0
    for style in ("torch", "tbx", "tf2", "tbpb"):
        tpl = TagTemplates(style, tags)
        for steps in ([0], [1, 2, 127], [128, 129, 16383], [16384, 70000, 2097151], [2097152, 3000000]):
            st = np.asarray(steps, dtype=np.int64)
            L = varint_len(steps[0]) if steps[0] else 0
            lay = tpl.layout(L)
            walls = 1.7e9 + rng.random((len(st), len(tags))) * 1e5
            vals = run_values(rng, len(st), len(tags), 0.0)
            vals[0, 0] = np.nan
            vals[0, 1] = np.inf
            vals[-1, -1] = 0.0
            blob = build_block(lay, st, walls, vals).tobytes()
            recs = list(_iter_records(blob))
            assert len(recs) == len(st) * len(tags), (style, steps)
            i = 0
            for k in range(len(st)):
                for t, tag in enumerate(tags):
                    ev = scalar_event_pb(style, tag, float(walls[k, t]), int(st[k]), float(vals[k, t]))
                    ref = frame(ev.SerializeToString())
                    assert recs[i][0] == ref, (style, steps, tag, recs[i][0], ref)
                    # and it parses back to the same values
                    back = event_pb2.Event.FromString(recs[i][1])
                    assert back.step == st[k] and back.wall_time == walls[k, t]
                    i += 1
                    n += 1
    return n


def _verify_against_torch():
    """Same bytes as torch.utils.tensorboard's SummaryWriter (scalars and file header)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except Exception:  # torch missing: protobuf check above still stands
        return 0
    import glob
    import tempfile

    d = tempfile.mkdtemp(prefix="tbp_gen_verify_")
    try:
        from torch.utils.tensorboard import SummaryWriter
        w = SummaryWriter(d)
        samples = [("train/loss", 0.25, 0, 1.7e9 + 0.5), ("layers/block3/attn/grad_norm", float("nan"), 200, 1.7e9 + 1.25),
                   ("eval/acc@5", float("inf"), 70000, 1.7e9 + 2.125)]
        for tag, v, s, wt in samples:
            w.add_scalar(tag, v, s, walltime=wt)
        w.close()
        (path,) = glob.glob(os.path.join(d, "events.out.tfevents.*"))
        recs = [r for r, _ in _iter_records(open(path, "rb").read())]
        tpl_tags = [s[0] for s in samples]
        tpl = TagTemplates("torch", tpl_tags)
        for i, (tag, v, s, wt) in enumerate(samples):
            L = varint_len(s) if s else 0
            lay = tpl.layout(L)
            walls = np.full((1, len(tpl_tags)), wt)
            vals = np.full((1, len(tpl_tags)), v, dtype=np.float32)
            blob = build_block(lay, np.asarray([s]), walls, vals).tobytes()
            mine = list(_iter_records(blob))[i][0]
            assert mine == recs[1 + i], ("torch mismatch", tag, mine, recs[1 + i])
        return len(samples)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--tags", type=int, default=300)
    ap.add_argument("--hist-tags", type=int, default=4)
    ap.add_argument("--hist-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--verify-only", action="store_true")
    a = ap.parse_args(argv)
    if a.verify_only:
        t = time.time()
        print("verified %d records byte-for-byte in %.1f s" % (verify_sample(), time.time() - t))
        return 0
    generate(a.out, a.size_gb, a.runs, a.tags, a.hist_tags, a.hist_every, a.seed, force=a.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
