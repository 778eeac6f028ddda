"""Segment files: immutable, memory-mapped column blocks of one event file's index.

Layout: b"TBPSEG01", uint64 header length, a JSON header, then 64-byte aligned raw arrays.
The header names each array with its dtype, shape and offset. Segments are written to a
temporary name and renamed into place, so a reader never sees half a segment.
"""

from __future__ import annotations

import json
import mmap
import os
import struct

import numpy as np

MAGIC = b"TBPSEG01"
_ALIGN = 64


class SegmentWriter:
    """Writes a segment array by array, piece by piece, so nothing needs to be in memory whole.

    `layout` is an ordered dict name -> (dtype, count); pieces must arrive in that order."""

    def __init__(self, path: str, header: dict, layout: dict):
        self.path = path
        self._tmp = f"{path}.tmp{os.getpid()}"
        self._order = []
        table = {}
        offset = 0
        for name, (dtype, count) in layout.items():
            dtype = np.dtype(dtype)
            table[name] = [dtype.str, int(count), offset]
            self._order.append((name, dtype, int(count)))
            offset += -(-dtype.itemsize * int(count) // _ALIGN) * _ALIGN
        head = json.dumps({"header": header, "arrays": table}, separators=(",", ":")).encode()
        start = -(-(len(MAGIC) + 8 + len(head)) // _ALIGN) * _ALIGN
        self.size = start + offset
        self._f = open(self._tmp, "wb")
        self._f.write(MAGIC + struct.pack("<Q", len(head)) + head)
        self._f.write(b"\0" * (start - self._f.tell()))
        self._i = 0
        self._left = self._order[0][2] if self._order else 0
        self._skip_empty()

    def _skip_empty(self):
        while self._i < len(self._order) and self._left == 0:
            name, dtype, count = self._order[self._i]
            pad = -(dtype.itemsize * count) % _ALIGN
            if pad:
                self._f.write(b"\0" * pad)
            self._i += 1
            self._left = self._order[self._i][2] if self._i < len(self._order) else 0

    def write(self, name: str, piece) -> None:
        if len(piece) == 0:
            return
        exp_name, dtype, _ = self._order[self._i]
        piece = np.ascontiguousarray(piece, dtype=dtype)
        if name != exp_name or len(piece) > self._left:
            raise ValueError(f"segment piece {name!r} out of order or too long")
        self._f.write(memoryview(piece).cast("B"))
        self._left -= len(piece)
        self._skip_empty()

    def close(self) -> int:
        if self._i != len(self._order):
            self._f.close()
            os.unlink(self._tmp)
            raise ValueError(f"segment {self.path!r} incomplete")
        self._f.close()
        os.replace(self._tmp, self.path)
        return self.size


def write_segment(path: str, header: dict, arrays: dict) -> int:
    """Writes `arrays` (name -> 1-D numpy array) and `header` to `path`; returns bytes written."""
    w = SegmentWriter(path, header, {k: (a.dtype, len(a)) for k, a in arrays.items()})
    for name, arr in arrays.items():
        if len(arr):
            w.write(name, arr)
    return w.close()


class Segment:
    """A memory-mapped segment; arrays are read-only numpy views, mapped on first use."""

    __slots__ = ("path", "header", "_layout", "_start", "_mm", "_arrays")

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            magic = f.read(8)
            if magic != MAGIC:
                raise ValueError(f"not a tb_plus segment: {path!r}")
            (n,) = struct.unpack("<Q", f.read(8))
            meta = json.loads(f.read(n))
        self.header = meta["header"]
        self._layout = meta["arrays"]
        self._start = -(-(16 + n) // _ALIGN) * _ALIGN
        self._mm = None
        self._arrays = {}

    def __getitem__(self, name: str) -> np.ndarray:
        arr = self._arrays.get(name)
        if arr is None:
            dtype, count, offset = self._layout[name]
            if count == 0:
                arr = np.empty(0, dtype=dtype)
            else:
                if self._mm is None:
                    with open(self.path, "rb") as f:
                        self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                arr = np.frombuffer(self._mm, dtype=dtype, count=count, offset=self._start + offset)
            self._arrays[name] = arr
        return arr

    def __contains__(self, name: str) -> bool:
        return name in self._layout

    def count(self, name: str) -> int:
        return self._layout[name][1]

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self._layout[name][0])

    def release(self) -> None:
        """Drops the mapping's resident pages (used while merging large segments)."""
        if self._mm is not None and hasattr(self._mm, "madvise"):
            self._mm.madvise(mmap.MADV_DONTNEED)

    def slice(self, prefix: str, tag_id: int):
        """(start, stop) of `tag_id` in the CSR group `prefix` ('s' or 'r'), or None."""
        tags = self[prefix + "_tag"]
        i = int(tags.searchsorted(np.int32(tag_id)))  # an int32 needle: no cast of the array
        if i >= len(tags) or tags[i] != tag_id:
            return None
        starts = self[prefix + "_start"]
        return int(starts[i]), int(starts[i + 1])
