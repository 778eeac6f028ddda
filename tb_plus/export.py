"""Streaming export of scalar points to Parquet, CSV or JSON Lines (`tb-plus export`).

    from tb_plus.export import export_scalars
    rows = export_scalars(ld, "scalars.parquet", runs="seed*", tags="re:loss")

Rows and columns are those of `Logdir.frame()` (tb_plus.frame): run, tag, step, wall_time, value, and
`relative` (x="relative") or `x` (x="tag:NAME") for another x axis. The points are read block by block
(`tb_plus.frame.scalar_blocks`), so memory is bounded by the block size, not by the log directory.

The file is written beside the output under a temporary name and renamed onto it at the end: a failure or
an interrupt leaves no half file (and an existing output untouched). When nothing matched (no chosen run
has a chosen scalar tag with a point), nothing is written and 0 is returned.

Formats:
  parquet: through pyarrow.parquet.ParquetWriter (pyarrow is optional: ImportError naming it when missing);
           run and tag are dictionary-encoded strings, step int64, the others float64; one row group per block.
  csv:     a header line, then one line per point ("\\n" line ends, UTF-8); a run or tag name holding a comma,
           a quote or a line break is quoted, quotes doubled (RFC 4180). Floats are written in the shortest
           form that parses back to the same float64 (Python's repr); NaN, +inf and -inf as an empty field.
  jsonl:   one JSON object per line with the same keys; floats as in CSV, NaN, +inf and -inf as null (JSON
           has no NaN); names as JSON strings (UTF-8, not escaped).
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from tb_plus import frame as frame_mod

__all__ = ["FORMATS", "EXTENSIONS", "DEFAULT_BLOCK_POINTS", "format_for", "check_options", "export_scalars"]

FORMATS = ("parquet", "csv", "jsonl")
EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DEFAULT_BLOCK_POINTS = 1 << 20
"""Points per block (about 40 MB of columns, plus the text of one block for CSV and JSON Lines)."""


def format_for(path: str, fmt: str | None = None) -> str:
    """The format of `path` from its extension, or `fmt` when given. ValueError for anything else."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        return fmt
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise ValueError(f"cannot tell the format from {os.path.basename(path)!r}: use one of the extensions "
                         f"{', '.join(EXTENSIONS)} or --format {{{','.join(FORMATS)}}}")
    return EXTENSIONS[ext]


def check_options(runs=None, tags=None, x="step"):
    """Raises ValueError for a bad run or tag pattern or x axis, before any reading."""
    from tb_plus.query import xaxis

    frame_mod.select([], runs)
    frame_mod.select([], tags)
    xaxis.parse_x(x)


def x_column_name(x: str):
    """The extra column for axis `x`: 'relative', 'x' (tag:NAME) or None (step, wall_time)."""
    if x == "relative":
        return "relative"
    return None if x in ("step", "wall_time") else "x"


def count_points(ld, runs=None, tags=None) -> int:
    """How many points an export of (runs, tags) writes."""
    n = 0
    for run in frame_mod.select(ld.runs(), runs):
        for t in frame_mod.select(frame_mod.scalar_tags(ld, run), tags):
            n += len(ld.scalars(run, t))
    return n


def export_scalars(ld, out: str, fmt: str | None = None, *, runs=None, tags=None, x: str = "step",
                   block_points: int = DEFAULT_BLOCK_POINTS, progress=None) -> int:
    """Writes every chosen scalar point of `ld` to `out` (see the module doc); returns the number of
    rows written (0: nothing matched, no file written). `progress`: a text stream that gets a progress
    line (points written / total, percent) after each block, or None."""
    fmt = format_for(out, fmt)
    check_options(runs, tags, x)
    if block_points < 1:
        raise ValueError(f"block_points must be >= 1, not {block_points!r}")
    writer_cls = {"parquet": _ParquetWriter, "csv": _CsvWriter, "jsonl": _JsonlWriter}[fmt]
    if fmt == "parquet":
        _pyarrow()
    total = count_points(ld, runs, tags) if progress is not None else None
    xname = x_column_name(x)
    out = os.fspath(out)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(out) + ".", suffix=".part",
                               dir=os.path.dirname(os.path.abspath(out)))
    rows = 0
    try:
        with os.fdopen(fd, "wb") as f:
            writer = None
            for cols, run_names, tag_names in frame_mod.scalar_blocks(ld, runs, tags, x=x, block_points=block_points):
                n = len(cols["step"])
                if n == 0:
                    continue
                if writer is None:
                    writer = writer_cls(f, run_names, tag_names, xname)
                writer.write(cols)
                rows += n
                if progress is not None:
                    _show(progress, rows, total)
            if writer is not None:
                writer.close()
        if progress is not None and rows:
            progress.write("\n")
            progress.flush()
        if rows == 0:
            os.unlink(tmp)
            return 0
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the output gets a new file's usual mode
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return rows


def _show(stream, done, total):
    pct = 100.0 * done / total if total else 100.0
    stream.write(f"\rexported {done:,} / {total:,} points ({pct:.0f}%)")
    stream.flush()


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError("Parquet export needs the pyarrow package: pip install pyarrow "
                          "(or export to .csv or .jsonl)") from None
    return pyarrow, pyarrow.parquet


def _columns(xname):
    return ["run", "tag", "step", "wall_time", "value"] + ([xname] if xname else [])


class _ParquetWriter:
    def __init__(self, f, run_names, tag_names, xname):
        pa, pq = _pyarrow()
        self.pa = pa
        self.names = _columns(xname)
        dict_t = pa.dictionary(pa.int32(), pa.string())
        types = {"run": dict_t, "tag": dict_t, "step": pa.int64()}
        self.schema = pa.schema([(c, types.get(c, pa.float64())) for c in self.names])
        self.run_dict = pa.array(list(run_names), pa.string())
        self.tag_dict = pa.array(list(tag_names), pa.string())
        self.w = pq.ParquetWriter(f, self.schema)

    def write(self, cols):
        pa = self.pa
        arrays = []
        for c in self.names:
            if c in ("run", "tag"):
                arrays.append(pa.DictionaryArray.from_arrays(pa.array(cols[c], pa.int32()),
                                                             self.run_dict if c == "run" else self.tag_dict))
            else:
                arrays.append(pa.array(cols[c]))
        self.w.write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self):
        self.w.close()


def _floats(a, missing):
    """float64 column -> list of str, the shortest repr that round-trips; non-finite -> `missing`."""
    s = np.asarray(a, np.float64).astype(str)
    bad = ~np.isfinite(a)
    if bad.any():
        s = s.astype(object)
        s[bad] = missing
    return s.tolist()


def _csv_field(name: str) -> str:
    if any(c in name for c in ',"\r\n') or name == "" or name != name.strip():
        return '"' + name.replace('"', '""') + '"'
    return name


class _TextWriter:
    missing = ""

    def __init__(self, f, run_names, tag_names, xname):
        self.f = f
        self.names = _columns(xname)
        self.run_f = np.asarray([self.field(n) for n in run_names] or [""], dtype=object)
        self.tag_f = np.asarray([self.field(n) for n in tag_names] or [""], dtype=object)
        self.header()

    def lists(self, cols):
        out = [self.run_f[cols["run"]].tolist(), self.tag_f[cols["tag"]].tolist(), cols["step"].astype(str).tolist()]
        out += [_floats(cols[c], self.missing) for c in self.names[3:]]
        return out

    def close(self):
        pass


class _CsvWriter(_TextWriter):
    missing = ""
    field = staticmethod(_csv_field)

    def header(self):
        self.f.write((",".join(self.names) + "\n").encode())

    def write(self, cols):
        text = "\n".join(map(",".join, zip(*self.lists(cols))))
        self.f.write((text + "\n").encode("utf-8"))


class _JsonlWriter(_TextWriter):
    missing = "null"

    @staticmethod
    def field(name):
        return json.dumps(name, ensure_ascii=False)

    def header(self):
        self.template = "{" + ",".join(f'"{c}":%s' for c in self.names) + "}"

    def write(self, cols):
        t = self.template
        text = "\n".join(t % row for row in zip(*self.lists(cols)))
        self.f.write((text + "\n").encode("utf-8"))
