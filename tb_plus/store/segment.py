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


def write_segment(path: str, header: dict, arrays: dict) -> int:
    """Writes `arrays` (name -> 1-D numpy array) and `header` to `path`; returns bytes written."""
    layout = {}
    offset = 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        arrays[name] = arr
        layout[name] = [arr.dtype.str, len(arr), offset]
        offset += -(-arr.nbytes // _ALIGN) * _ALIGN
    head = json.dumps({"header": header, "arrays": layout}, separators=(",", ":")).encode()
    start = -(-(len(MAGIC) + 8 + len(head)) // _ALIGN) * _ALIGN
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(head)) + head)
        f.write(b"\0" * (start - f.tell()))
        for name, arr in arrays.items():
            f.write(memoryview(arr).cast("B"))
            pad = -arr.nbytes % _ALIGN
            if pad:
                f.write(b"\0" * pad)
    os.replace(tmp, path)
    return start + offset


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

    def slice(self, prefix: str, tag_id: int):
        """(start, stop) of `tag_id` in the CSR group `prefix` ('s' or 'r'), or None."""
        tags = self[prefix + "_tag"]
        i = int(np.searchsorted(tags, tag_id))
        if i >= len(tags) or tags[i] != tag_id:
            return None
        starts = self[prefix + "_start"]
        return int(starts[i]), int(starts[i + 1])
