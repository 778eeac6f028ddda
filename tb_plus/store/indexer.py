"""Indexes one event file (from its last indexed offset) into segments in the cache.

`index_file(task)` runs in a worker process or in-process. It reads the file in chunks, lets a
scanner (C or Python) walk and decode the records, sorts the values of each block by tag into
CSR columns, writes them as a segment, and saves the file's manifest (JSON) last, atomically.
The manifest is the commit point: a crash leaves the previous manifest and at worst an unused
segment file behind.

Value routing (TensorBoard's data_compat/dataclass_compat rules, per tag):
- a tag's class comes from its first metadata in the file: simple_value -> scalar, legacy
  histo -> histograms, image/audio -> blobs, else the SummaryMetadata's data_class (or, when
  that is unknown, the class dataclass_compat gives the plugin);
- scalar-class values go to the scalar columns (s_*: step, wall, value); every other value is
  kept as a payload reference (r_*: step, wall, record offset, length, value index, kind), read
  only when asked. A one-number tensor whose tag has no metadata yet is kept both ways.
"""

from __future__ import annotations

import base64
import json
import os
import time

import numpy as np

from tb_plus.store.confine import open_confined
from tb_plus.store import scan as scan_mod
from tb_plus.store.scan import F_NEW_META, K_AUDIO, K_NONE, K_HISTO, K_IMAGE, K_SIMPLE, K_TENSOR, K_TSCALAR
from tb_plus.store.segment import Segment, SegmentWriter, write_segment

MANIFEST = "manifest.json"
MANIFEST_VERSION = 2
CHUNK = 16 << 20
SEGMENT_VALUES = 1 << 18
HEAD_BYTES = 256
MAX_EXAMPLES = 20
PIECE = 1 << 20  # values copied at a time while merging segments
FIELDS = {
    "s": (("step", "step"), ("wall", "wall"), ("value", "value")),
    "r": (("step", "step"), ("wall", "wall"), ("off", "rec_off"), ("len", "rec_len"), ("vi", "vindex"), ("kind", "kind")),
}

# Tag classes.
C_UNKNOWN, C_SCALAR, C_TENSOR, C_BLOB, C_OTHER = 0, 1, 2, 3, 4
# summary_pb2.DataClass values.
_DATA_CLASS = {1: C_SCALAR, 2: C_TENSOR, 3: C_BLOB}
# dataclass_compat: plugin name -> class, for metadata written without a data class.
_PLUGIN_CLASS = {
    "scalars": C_SCALAR,
    "histograms": C_TENSOR,
    "text": C_TENSOR,
    "hparams": C_TENSOR,
    "pr_curves": C_TENSOR,
    "mesh": C_TENSOR,
    "custom_scalars": C_TENSOR,
    "images": C_BLOB,
    "audio": C_BLOB,
    "graph_run_metadata": C_BLOB,
    "graph_run_metadata_graph": C_BLOB,
    "graph_keras_model": C_BLOB,
}
_LEGACY_PLUGIN = {K_SIMPLE: "scalars", K_HISTO: "histograms", K_IMAGE: "images", K_AUDIO: "audio"}


def file_head_crc(path: str, length: int, source=None, confine=None) -> int:
    """CRC of a file's first `length` bytes; `source`: the Remote a URL is read through; `confine`:
    the roots the opened file must lie in (see confine.open_confined)."""
    if source is not None:
        return scan_mod.masked_crc(source.read(path, 0, length))
    with open_confined(path, confine) as f:
        return scan_mod.masked_crc(f.read(length))


def load_manifest(cache: str):
    try:
        with open(os.path.join(cache, MANIFEST), encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    return m if m.get("version") == MANIFEST_VERSION else None


def save_manifest(cache: str, m: dict) -> None:
    tmp = os.path.join(cache, f"{MANIFEST}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(m, separators=(",", ":")))  # dumps: C encoder; dump is pure Python
    os.replace(tmp, os.path.join(cache, MANIFEST))


def new_manifest(task: dict) -> dict:
    return {
        "version": MANIFEST_VERSION,
        "relpath": task["relpath"],
        "run": task["run"],
        "offset": 0,
        "size": 0,
        "mtime_ns": 0,
        "ino": 0,
        "head_len": 0,
        "head_crc": 0,
        "records": 0,
        "values": 0,
        "tags": [],
        "meta": {},
        "segments": [],
        "starts": [],
        "file_version": None,
        "problems": {"bad_crc": 0, "unparsable": 0, "skipped_bytes": 0, "examples": []},
        "error": None,
        "seq": 0,
    }


def _classify_meta(meta_bytes: bytes, kind: int):
    """[plugin_name, class, content_b64, written data_class] for the first metadata of a tag."""
    if kind in _LEGACY_PLUGIN:  # data_compat replaces the metadata of legacy values
        plugin = _LEGACY_PLUGIN[kind]
        return [plugin, _PLUGIN_CLASS[plugin], "", 0]
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import summary_pb2

    try:
        md = summary_pb2.SummaryMetadata.FromString(meta_bytes)
    except DecodeError:  # damaged metadata inside a record whose CRC held: see _classify
        return None
    plugin = md.plugin_data.plugin_name
    cls = _DATA_CLASS.get(md.data_class) or _PLUGIN_CLASS.get(plugin, C_OTHER)
    return [plugin, cls, base64.b64encode(md.plugin_data.content).decode("ascii"), md.data_class]


def _decode_scalar_slow(payload: bytes, vindex: int):
    """Value of a scalar-class tensor the scanner could not decode (TensorBoard's rule)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.util import tensor_util

    from google.protobuf.message import DecodeError

    try:
        ev = event_pb2.Event.FromString(payload)
        return float(tensor_util.make_ndarray(ev.summary.value[vindex].tensor).item())
    except (DecodeError, ValueError, TypeError, IndexError):  # a damaged value whose record CRC held
        return float("nan")


class _FileIndexer:
    def __init__(self, task: dict, m: dict):
        self.task = task
        self.m = m
        self.cache = task["cache"]
        self.cls = np.zeros(max(1024, len(m["tags"]) * 2), dtype=np.int8)
        self.hparams = np.zeros(len(self.cls), dtype=bool)  # dataclass_compat gives these a tensor
        for tid, info in m["meta"].items():
            self._set_class(int(tid), info)
        self.pending = []
        self.pending_n = 0
        self.bytes_read = 0
        self.obsolete = []  # segment files replaced by merges, removed after the manifest
        self.merged = set()
        self.progress = None  # callable(bytes) per chunk read

    def _set_class(self, tid, info):
        self.cls[tid] = info[1]
        self.hparams[tid] = info[0] == "hparams" and info[3] == 0

    def _grow_cls(self, n):
        if n > len(self.cls):
            size = max(n, 2 * len(self.cls))
            c = np.zeros(size, dtype=np.int8)
            c[: len(self.cls)] = self.cls
            h = np.zeros(size, dtype=bool)
            h[: len(self.hparams)] = self.hparams
            self.cls, self.hparams = c, h

    def _note(self, kind, offset, length):
        p = self.m["problems"]
        if kind == "skipped":
            p["skipped_bytes"] += length
        else:
            p[kind] += 1
        if len(p["examples"]) < MAX_EXAMPLES:
            p["examples"].append([kind, offset, length])

    def handle(self, buf, base, values: bytes, specials: list, ntags: int):
        rows = np.frombuffer(values, dtype=scan_mod.VALUE_DTYPE)
        self._grow_cls(ntags)
        metas = []
        split_at = []  # (value position, step) of SessionLog.START records
        for sp in specials:
            what = sp[0]
            if what == "meta":
                metas.append(sp)
            elif what in ("bad_crc", "unparsable", "skipped"):
                self._note(what, sp[1], sp[2])
            elif what == "session_log":
                if sp[5] == 1:  # SessionLog.START
                    split_at.append((sp[4], sp[2]))
            elif what == "file_version":
                self.m["file_version"] = sp[4].decode("utf-8", "replace")
        if len(rows):
            rows = self._classify(rows, metas, buf, base)
            rows = self._decode_slow(buf, base, rows)
        start = 0
        for pos, step in split_at:
            self._add(rows[start:pos])
            self._flush()
            self.m["starts"].append([len(self.m["segments"]), int(step)])
            start = pos
        self._add(rows[start:])
        if self.pending_n >= SEGMENT_VALUES:
            self._flush()

    def _classify(self, rows, metas, buf=None, base=0):
        """Sets the class of tags seen for the first time from their first metadata. A record whose
        metadata does not parse (damaged inside a valid CRC) is dropped whole and counted as
        unparsable, as a protobuf reader would, and the tag's next record in this chunk that
        carries metadata decides (read with protobuf: the scanner reports a tag's metadata once)."""
        m_meta = self.m["meta"]
        retry = set()  # tags whose first metadata was damaged
        while True:
            kind = rows["kind"]
            new_meta = np.flatnonzero(rows["flags"] & F_NEW_META)
            meta_of_row = dict(zip(new_meta.tolist(), metas))
            # candidates for a tag's first metadata: values carrying new metadata, and legacy values
            legacy = (kind == K_SIMPLE) | (kind == K_HISTO) | (kind == K_IMAGE) | (kind == K_AUDIO)
            cand = np.flatnonzero(legacy | ((rows["flags"] & F_NEW_META) != 0))
            found, bad = [], {}
            if len(cand):
                tids = rows["tag_id"][cand]
                unknown = self.cls[tids] == C_UNKNOWN
                cand, tids = cand[unknown], tids[unknown]
                _, first = np.unique(tids, return_index=True)
                for i in cand[first].tolist():
                    k = int(kind[i])
                    sp = meta_of_row.get(i)
                    if sp is None and k not in _LEGACY_PLUGIN:
                        continue
                    info = _classify_meta(sp[2] if sp else b"", k)
                    if info is None:
                        bad[int(rows["rec_off"][i])] = int(rows["rec_len"][i])
                    else:
                        found.append((int(rows["tag_id"][i]), info))
            if not bad and retry and buf is not None:
                found_tids = {t for t, _ in found}
                for tid in sorted(retry - found_tids):
                    if self.cls[tid] != C_UNKNOWN:
                        continue
                    got = self._metadata_later(rows, tid, buf, base, bad)
                    if got is not None:
                        found.append((tid, got))
                retry = set()
            if not bad:
                for tid, info in found:
                    m_meta[str(tid)] = info
                    self._set_class(tid, info)
                return rows
            retry.update(int(t) for t in rows["tag_id"][np.isin(rows["rec_off"], list(bad))].tolist())
            drop = np.isin(rows["rec_off"], np.fromiter(bad, dtype=np.int64, count=len(bad)))
            for off, length in sorted(bad.items()):
                self._note("unparsable", off, length)
            metas = [sp for sp, gone in zip(metas, drop[new_meta].tolist()) if not gone]
            rows = rows[~drop]

    def _metadata_later(self, rows, tid, buf, base, bad):
        """The class of tag `tid` from the first record of this chunk (after the dropped ones) whose
        value carries metadata that parses, read with protobuf; None when the chunk has none."""
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto import event_pb2

        for i in np.flatnonzero(rows["tag_id"] == tid).tolist():
            off, length = int(rows["rec_off"][i]), int(rows["rec_len"][i])
            start = off - base + 12
            try:
                ev = event_pb2.Event.FromString(bytes(buf[start : start + length]))
                v = ev.summary.value[int(rows["vindex"][i])]
            except (DecodeError, IndexError):
                continue
            if v.HasField("metadata"):
                return _classify_meta(v.metadata.SerializeToString(), int(rows["kind"][i]))
        return None

    def _decode_slow(self, buf, base, rows):
        slow = np.flatnonzero((rows["kind"] == K_TENSOR) & (self.cls[rows["tag_id"]] == C_SCALAR))
        if not len(slow):
            return rows
        rows = rows.copy()
        for i in slow.tolist():
            off = int(rows["rec_off"][i]) - base + 12
            payload = bytes(buf[off : off + int(rows["rec_len"][i])])
            rows["value"][i] = _decode_scalar_slow(payload, int(rows["vindex"][i]))
            rows["kind"][i] = K_TSCALAR
        return rows

    def _add(self, rows):
        if len(rows):
            self.pending.append(rows)
            self.pending_n += len(rows)

    def _flush(self):
        if not self.pending:
            return
        rows = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending, self.pending_n = [], 0
        kind = rows["kind"]
        tid = rows["tag_id"]
        c = self.cls[tid]
        s_mask = (kind == K_SIMPLE) | ((kind == K_TSCALAR) & ((c == C_SCALAR) | (c == C_UNKNOWN)))
        r_mask = ((kind == K_TSCALAR) & (c != C_SCALAR)) | (kind >= K_TENSOR) | ((kind == K_NONE) & self.hparams[tid])
        arrays = {}
        top = int(tid.max()) + 1
        for prefix, mask in (("s", s_mask), ("r", r_mask)):
            n = int(mask.sum())
            # sort by tag (stable: keeps file order within a tag); values not in this group get
            # a key past every tag, so they sort last and are cut off; 16-bit keys radix-sort
            keys = tid if n == len(rows) else np.where(mask, tid, top)
            order = np.argsort(keys.astype(np.uint16) if top < 65535 else keys, kind="stable")[:n]
            k = keys[order]
            first = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1]))) if n else np.empty(0, np.int64)
            arrays[prefix + "_tag"] = k[first].astype(np.int32)
            arrays[prefix + "_start"] = np.append(first, n).astype(np.int64)
            for name, field in FIELDS[prefix]:
                arrays[f"{prefix}_{name}"] = rows[field][order]
        name = self._next_name()
        write_segment(os.path.join(self.cache, name), {"values": int(len(rows))}, arrays)
        self.m["segments"].append([name, int(s_mask.sum()), int(r_mask.sum())])

    def _next_name(self):
        self.m["seq"] += 1
        writer = self.task.get("writer")  # a shared index: names unique per writer (tb_plus.store.shared)
        return f"seg-{self.m['seq']:06d}-{writer}.bin" if writer else f"seg-{self.m['seq']:06d}.bin"

    def compact(self, everything: bool) -> None:
        """Merges segments between SessionLog.START marks: all of them after a cold index (so a
        series is one contiguous, zero-copy slice), else size-tiered (a live file that is
        appended to keeps O(log n) segments and each value is rewritten O(log n) times)."""
        segs = self.m["segments"]
        cuts = sorted({0, len(segs), *[a for a, _ in self.m["starts"]]})
        out = []
        remap = {}
        for lo, hi in zip(cuts, cuts[1:]):
            group = list(segs[lo:hi])
            if everything and len(group) > 1:
                group = [self._merge(group)]
            else:
                while len(group) > 1 and sum(group[-2][1:]) <= 2 * sum(group[-1][1:]):
                    group[-2:] = [self._merge(group[-2:])]
            out.extend(group)
            remap[hi] = len(out)
        self.m["starts"] = [[remap.get(a, a), step] for a, step in self.m["starts"]]
        old = ({g[0] for g in segs} | self.merged) - {g[0] for g in out}
        self.m["segments"] = out
        self.obsolete.extend(old)

    def _merge(self, entries):
        """Merges segments into one, per tag in segment order, in blocks of about PIECE values
        (a block of many small tags is regrouped with one stable sort; a tag bigger than a
        block is copied segment by segment), dropping mapped pages as it goes."""
        segs = [Segment(os.path.join(self.cache, e[0])) for e in entries]
        layout, plans = {}, {}
        for prefix, fields in FIELDS.items():
            tag_lists = [sg[prefix + "_tag"] for sg in segs]
            tags = np.unique(np.concatenate(tag_lists)).astype(np.int32)
            counts = np.zeros(len(tags), np.int64)
            per_seg = []  # (positions of the segment's tags in `tags`, its starts)
            for sg, t in zip(segs, tag_lists):
                st = np.asarray(sg[prefix + "_start"])
                pos = np.searchsorted(tags, t)
                counts[pos] += np.diff(st)
                per_seg.append((pos, st))
            starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            cuts = np.searchsorted(starts, np.arange(PIECE, starts[-1], PIECE), side="right") - 1
            bounds = np.unique(np.concatenate([[0], cuts, [len(tags)]]))
            blocks = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
            plans[prefix] = (tags, starts, per_seg, blocks)
            layout[prefix + "_tag"] = (np.int32, len(tags))
            layout[prefix + "_start"] = (np.int64, len(tags) + 1)
            for fname, _ in fields:
                layout[f"{prefix}_{fname}"] = (segs[0].dtype(f"{prefix}_{fname}"), int(starts[-1]))
        name = self._next_name()
        self.merged.add(name)
        w = SegmentWriter(os.path.join(self.cache, name), {"merged": len(segs)}, layout)
        touched = 0
        for prefix, fields in FIELDS.items():
            tags, starts, per_seg, blocks = plans[prefix]
            w.write(prefix + "_tag", tags)
            w.write(prefix + "_start", starts)
            for fname, _ in fields:
                col = f"{prefix}_{fname}"
                for t0, t1 in blocks:
                    ranges = []  # (segment, lo, hi, its tags' positions, their starts)
                    for k, (pos, st) in enumerate(per_seg):
                        j0, j1 = np.searchsorted(pos, t0), np.searchsorted(pos, t1)
                        if st[j1] > st[j0]:
                            ranges.append((k, int(st[j0]), int(st[j1]), pos[j0:j1], st[j0 : j1 + 1]))
                    size = segs[0].dtype(col).itemsize
                    if t1 - t0 == 1 or len(ranges) == 1:  # already in order: stream the pieces
                        for k, lo, hi, _, _ in ranges:
                            for x in range(lo, hi, PIECE):
                                w.write(col, segs[k][col][x : min(hi, x + PIECE)])
                            segs[k].release()
                    else:
                        keys = np.concatenate([np.repeat(p - t0, np.diff(st)) for _, _, _, p, st in ranges])
                        order = np.argsort(keys.astype(np.uint16) if t1 - t0 < 65536 else keys, kind="stable")
                        data = np.concatenate([segs[k][col][lo:hi] for k, lo, hi, _, _ in ranges])
                        w.write(col, data[order])
                        touched += sum(hi - lo for _, lo, hi, _, _ in ranges) * size
                    if touched > 64 << 20:
                        for sg in segs:
                            sg.release()
                        touched = 0
        w.close()
        for sg in segs:
            sg.release()
        return [name, int(plans["s"][1][-1]), int(plans["r"][1][-1])]

    def run(self) -> None:
        task, m = self.task, self.m
        path = task["path"]
        source = task.get("_source")  # a tb_plus.store.remote.Remote (in-process indexing)
        if source is None and task.get("remote_url"):  # a worker process: its own, counted here
            from tb_plus.store.remote import Remote

            source = self.remote = Remote(task["remote_url"], task.get("storage_options"))
        if source is not None:
            from tb_plus.store.remote import RemoteReader

            size, mtime_ns, ino = task["size"], task["mtime_ns"], 0
            opened = RemoteReader(source, path, size)
        else:
            opened = open_confined(path, task.get("confine"))
            st = os.fstat(opened.fileno())  # the file opened, not whatever the path names now
            size, mtime_ns, ino = st.st_size, st.st_mtime_ns, st.st_ino
        offset = m["offset"]
        scanner = scan_mod.make_scanner(
            task["verify"],
            [t.encode("utf-8", "surrogateescape") for t in m["tags"]],
            [int(k) for k in m["meta"]],
            force_python=task.get("force_python", False),
        )
        if offset == 0 and size > 0:
            m["head_len"] = min(HEAD_BYTES, size)
        buf = bytearray(min(CHUNK, max(size - offset, 0)) or 1)
        mv = memoryview(buf)
        filled = 0
        with opened as f:
            f.seek(offset)
            pos = offset
            while True:
                want = min(len(buf) - filled, size - (pos + filled))
                n = f.readinto(mv[filled : filled + want]) if want > 0 else 0
                self.bytes_read += n
                if self.progress and n:
                    self.progress(n)
                filled += n
                if offset == 0 and pos == 0 and m["head_len"] and filled >= m["head_len"]:
                    m["head_crc"] = scan_mod.masked_crc(bytes(mv[: m["head_len"]]))
                consumed, need, values, specials, nrec = scanner.scan(mv[:filled], pos)
                m["records"] += nrec
                self.handle(mv[:filled], pos, values, specials, len(scanner.tags))
                m["values"] += len(values) // scan_mod.VALUE_DTYPE.itemsize
                exhausted = pos + filled >= size
                if consumed == 0 and need > len(buf) and pos + need <= size:
                    nb = bytearray(need)  # a record larger than the chunk
                    nb[:filled] = mv[:filled]
                    buf, mv = nb, memoryview(nb)
                    continue
                if consumed:
                    mv[: filled - consumed] = mv[consumed:filled]
                    filled -= consumed
                    pos += consumed
                if exhausted or (consumed == 0 and n == 0):
                    break
        self._flush()
        # tags: the scanner's table grows in id order; keep it in the manifest for resumption
        m["tags"] = [t.decode("utf-8", "surrogateescape") for t in scanner.tags]
        m["offset"] = pos
        m["size"] = size
        m["mtime_ns"] = mtime_ns
        m["ino"] = ino
        m["pending_bytes"] = size - pos


def index_file(task: dict, progress=None) -> dict:
    """Indexes task["path"] into task["cache"]; returns a small summary dict.

    task: path, relpath, run, cache (the file's cache dir), verify (bool), reset (bool:
    forget what was indexed, e.g. after truncation or replacement, unless the index changed since
    planned_seq, its "seq" when the task was planned), force_python (bool).
    """
    t0 = time.perf_counter()
    cache = task["cache"]
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, "lock"), "a+b") as lock:
        _lock(lock)  # one indexer per file at a time, across processes sharing the cache
        return _index_locked(task, cache, progress, t0)


def _lock(f):
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on the single-process case
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)


def _index_locked(task, cache, progress, t0):
    m = load_manifest(cache)
    reset = task.get("reset")
    if reset and m is not None and "planned_seq" in task and m.get("seq") != task["planned_seq"]:
        # Another indexer (another log directory holding this file, another server sharing the
        # cache) wrote the index after this task was planned, from the file as it is now: go on
        # from there rather than discard it under the readers that may have mapped it.
        reset = False
    if m is None or reset:
        for name in os.listdir(cache):
            if name.startswith("seg-") or name.startswith(MANIFEST):
                os.unlink(os.path.join(cache, name))
        seq = m["seq"] if m else 0  # segment names are never reused, even across resets
        m = new_manifest(task)
        m["seq"] = seq
    m["verify"] = bool(task["verify"]) and m.get("verify", True)
    fi = _FileIndexer(task, m)
    fi.progress = progress
    cold = m["offset"] == 0
    try:
        fi.run()
        m["error"] = None
    except OSError as e:
        m["error"] = f"{type(e).__name__}: {e.strerror or e}"
    fi.compact(everything=cold)
    save_manifest(cache, m)
    for name in fi.obsolete:  # readers holding them mapped keep their view (POSIX)
        try:
            os.unlink(os.path.join(cache, name))
        except OSError:
            pass
    out = {
        "relpath": task["relpath"],
        "bytes_read": fi.bytes_read,
        "seconds": time.perf_counter() - t0,
        "error": m["error"],
    }
    if getattr(fi, "remote", None) is not None:  # requests made in this (worker) process
        out["requests"] = fi.remote.requests()
    return out


def worker_main() -> None:
    """Worker process: one JSON task per stdin line -> one JSON result per stdout line."""
    import sys

    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        def progress(n):
            sys.stdout.write(json.dumps({"progress": n}) + "\n")
            sys.stdout.flush()

        try:
            res = index_file(task, progress)
        except Exception as e:  # report, never kill the pool
            res = {"relpath": task.get("relpath"), "bytes_read": 0, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    worker_main()
