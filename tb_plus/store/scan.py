"""Record framing, CRC and first-level Event decoding for one event file.

`make_scanner()` returns the C scanner from `_scan.c` when it was built, else `PyScanner`, a
pure-Python twin with the same output (it is also the reference the C scanner is tested
against). A scanner is fed consecutive chunks of one file and returns, per chunk:

    (consumed, need, values, specials, n_records)

`values` holds one `VALUE_DTYPE` row per Summary.Value; `specials` lists rare events and
problems as tuples (see `_scan.c`).
"""

from __future__ import annotations

import struct

import numpy as np

# Must match ValueOut in _scan.c.
VALUE_DTYPE = np.dtype(
    [
        ("step", "<i8"),
        ("wall", "<f8"),
        ("value", "<f8"),
        ("rec_off", "<i8"),
        ("rec_len", "<u4"),
        ("tag_id", "<i4"),
        ("vindex", "<u4"),
        ("kind", "u1"),
        ("flags", "u1"),
        ("pad", "<u2"),
    ]
)
assert VALUE_DTYPE.itemsize == 48

K_NONE, K_SIMPLE, K_TSCALAR, K_TENSOR, K_HISTO, K_IMAGE, K_AUDIO = range(7)
F_HAS_META, F_NEW_META, F_NEEDS_PY = 1, 2, 4
MAX_RECORD = 1 << 31
_VALUE_KIND = {"simple_value": K_SIMPLE, "tensor": K_TENSOR, "histo": K_HISTO, "image": K_IMAGE, "audio": K_AUDIO}

# dtype -> (TensorProto field holding values, numpy dtype of tensor_content)
_SCALAR_FIELDS = {
    1: ("float_val", "<f4"),
    2: ("double_val", "<f8"),
    3: ("int_val", "<i4"),
    9: ("int64_val", "<i8"),
    10: ("bool_val", "u1"),
    19: ("half_val", "<f2"),
}


def have_c_scanner() -> bool:
    try:
        from tb_plus.store import _scan  # noqa: F401
    except ImportError:
        return False
    return True


def make_scanner(verify_crc=True, tags=(), meta_seen=(), force_python=False):
    """Returns a scanner for one file, resumed with the tags (bytes, in id order) it knew."""
    if not force_python:
        try:
            from tb_plus.store import _scan
        except ImportError:
            pass
        else:
            return _scan.Scanner(verify_crc, list(tags), list(meta_seen))
    return PyScanner(verify_crc, tags, meta_seen)


def masked_crc(data) -> int:
    """TFRecord's masked CRC32C of `data` (C when built, else google-crc32c)."""
    try:
        from tb_plus.store import _scan
    except ImportError:
        return _py_masked_crc(data)
    return _scan.masked_crc(data)


_crc32c_value = None


def _py_masked_crc(data) -> int:
    global _crc32c_value
    if _crc32c_value is None:
        import google_crc32c

        _crc32c_value = google_crc32c.value
    c = _crc32c_value(bytes(data))
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _scalar_from_tensor(t):
    """The single number in TensorProto `t`, or None (the same rule as the C scanner)."""
    if t.tensor_shape.unknown_rank:
        return None
    n = 1
    for d in t.tensor_shape.dim:
        n *= d.size
    if n != 1 or t.dtype not in _SCALAR_FIELDS:
        return None
    field, content_dtype = _SCALAR_FIELDS[t.dtype]
    vals = getattr(t, field)
    present = [f for f in ("float_val", "double_val", "int_val", "int64_val", "bool_val", "half_val") if getattr(t, f)]
    if t.tensor_content:
        if present:
            return None
        if len(t.tensor_content) != np.dtype(content_dtype).itemsize:
            return None
        arr = np.frombuffer(t.tensor_content, dtype=content_dtype)
        return float(arr[0])
    if present != [field] or len(vals) != 1:
        return None
    if field == "half_val":
        return float(np.array([vals[0]], dtype=np.uint16).view(np.float16)[0])
    return float(vals[0])


class PyScanner:
    """Pure-Python scanner (protobuf + google-crc32c); same results as the C one, slower."""

    def __init__(self, verify_crc=True, tags=(), meta_seen=()):
        self.verify = bool(verify_crc)
        self.tags = list(tags)
        self._ids = {t: i for i, t in enumerate(self.tags)}
        self._meta_seen = set(meta_seen)

    def _intern(self, tag: bytes) -> int:
        i = self._ids.get(tag)
        if i is None:
            i = self._ids[tag] = len(self.tags)
            self.tags.append(tag)
        return i

    def _good_record_at(self, b, q, end, budget):
        """As the C scanner's good_record_at: payload CRCs paid from budget[0] bytes, then the header alone."""
        if end - q < 12:
            return False
        if _py_masked_crc(b[q : q + 8]) != struct.unpack_from("<I", b, q + 8)[0]:
            return False
        (length,) = struct.unpack_from("<Q", b, q)
        if length > MAX_RECORD:
            return False
        if end - q < 16 + length:
            return True
        if self.verify and length <= budget[0]:
            budget[0] -= length
            return _py_masked_crc(b[q + 12 : q + 12 + length]) == struct.unpack_from("<I", b, q + 12 + length)[0]
        return True

    def scan(self, buf, base, final=False):
        from tensorboard.compat.proto import event_pb2

        b = memoryview(buf).cast("B")
        end = len(b)
        p = 0
        need = 0
        nrec = 0
        rows = []
        specials = []
        budget = [end + (1 << 20)]  # resynchronisation's payload CRC bytes (see _good_record_at)
        while p < end:
            if end - p < 12:
                break
            (length,) = struct.unpack_from("<Q", b, p)
            if _py_masked_crc(b[p : p + 8]) != struct.unpack_from("<I", b, p + 8)[0] or length > MAX_RECORD:
                q = p + 1
                while q + 12 <= end and not self._good_record_at(b, q, end, budget):
                    q += 1
                if q + 12 > end and not final:
                    keep = max(end - 11, 0)
                    if keep > p:
                        specials.append(("skipped", base + p, keep - p))
                        p = keep
                    break
                if q + 12 > end:
                    q = end
                specials.append(("skipped", base + p, q - p))
                p = q
                continue
            if end - p < 16 + length:
                need = 16 + length
                break
            nrec += 1
            payload = bytes(b[p + 12 : p + 12 + length])
            if self.verify and _py_masked_crc(payload) != struct.unpack_from("<I", b, p + 12 + length)[0]:
                specials.append(("bad_crc", base + p, length))
                p += 16 + length
                continue
            try:
                ev = event_pb2.Event.FromString(payload)
            except Exception:  # protobuf raises DecodeError (or others on garbage)
                specials.append(("unparsable", base + p, length))
                p += 16 + length
                continue
            self._event(ev, base + p, length, rows, specials)
            p += 16 + length
        values = np.array(rows, dtype=VALUE_DTYPE).tobytes() if rows else b""
        return p, need, values, specials, nrec

    def _event(self, ev, rec_off, rec_len, rows, specials):
        what = ev.WhichOneof("what")
        if what == "summary":
            for vi, v in enumerate(ev.summary.value):
                kind = _VALUE_KIND.get(v.WhichOneof("value"), K_NONE)
                flags = 0
                value = 0.0
                if kind == K_SIMPLE:
                    value = float(v.simple_value)
                elif kind == K_TENSOR:
                    x = _scalar_from_tensor(v.tensor)
                    if x is None:
                        flags |= F_NEEDS_PY
                    else:
                        kind, value = K_TSCALAR, x
                tag = v.tag
                if not tag and kind != K_NONE and v.node_name:
                    tag = v.node_name
                tid = self._intern(tag.encode("utf-8"))
                if v.HasField("metadata"):
                    flags |= F_HAS_META
                    if tid not in self._meta_seen:
                        self._meta_seen.add(tid)
                        flags |= F_NEW_META
                        specials.append(("meta", tid, v.metadata.SerializeToString()))
                rows.append((ev.step, ev.wall_time, value, rec_off, rec_len, tid, vi, kind, flags, 0))
        elif what == "session_log":
            specials.append(("session_log", rec_off, ev.step, ev.wall_time, len(rows), ev.session_log.status))
        elif what == "file_version":
            specials.append(("file_version", rec_off, ev.step, ev.wall_time, ev.file_version.encode("utf-8")))
        elif what is not None:
            specials.append((what, rec_off, ev.step, ev.wall_time, rec_len))
