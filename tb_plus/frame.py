"""DataFrames of a log directory, built column by column from the index.

    from tb_plus.store import Logdir
    ld = Logdir("logs")
    df = ld.frame()                                  # every scalar point: run, tag, step, wall_time, value
    df = ld.frame("seed*", "re:loss|acc", pivot=True)  # one row per (run, step), one column per tag
    df = ld.frame(kind="histograms", backend="polars")

No Python object is made per point: each series' columns are copied from the memory-mapped index into
preallocated numpy arrays, and run and tag names are categorical codes (pandas Categorical, polars Enum,
arrow dictionary). pandas, polars and pyarrow are optional: asking for a backend that is not installed
raises ImportError naming the package to install.

Runs and tags are chosen as the tab chooses them (tb_plus.query.tagtree.compile_filter): a name is taken
exactly; a name holding `*`, `?` or `[` is a glob over the whole name; `re:PATTERN` is a regular
expression searched in the name (RE2 syntax); globs and regular expressions ignore case. A list takes
the union; a compiled `re.Pattern` is searched as it is.

Rows: runs in TensorBoard's order (sorted), then tags sorted, then each series' points in the order
TensorBoard gives them (written order, duplicates kept, purged steps left out), the order tbparse gives
whenever steps are written in increasing order. Only written points: the series tb_plus derives from
tensor summaries (AUC of evaluation counts, ...) are not rows.
"""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np

__all__ = ["BACKENDS", "FRAME_KINDS", "frame", "select", "scalar_tags", "scalar_blocks", "MAX_PIVOT_CELLS"]

BACKENDS = ("pandas", "polars", "pyarrow")
FRAME_KINDS = ("scalars", "histograms", "tensors", "hparams")
MAX_PIVOT_CELLS = 1 << 29
"""The most cells (rows x tag columns) a pivoted frame may hold (4 GiB of float64): choose fewer tags."""

_INSTALL = {"pandas": "pandas", "polars": "polars", "pyarrow": "pyarrow"}


def _backend_module(backend: str):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    try:
        if backend == "pandas":
            import pandas as mod
        elif backend == "polars":
            import polars as mod
        else:
            import pyarrow as mod
    except ImportError:
        raise ImportError(f"frames with backend={backend!r} need the {backend} package: "
                          f"pip install {_INSTALL[backend]}") from None
    return mod


# ---------------------------------------------------------------------------------------------- choosing


def _matcher(spec):
    """One name spec -> a predicate name -> bool."""
    from tb_plus.query.tagtree import compile_filter

    if isinstance(spec, re.Pattern):
        return lambda name: spec.search(name) is not None
    if not isinstance(spec, str):
        raise TypeError(f"a run or tag must be given as text, a list of texts or a re.Pattern, not {type(spec).__name__}")
    if spec.startswith("re:"):
        find = compile_filter(spec[3:], "regex")
        return lambda name: find(name) is not None
    if any(c in spec for c in "*?["):
        find = compile_filter(spec, "glob")
        return lambda name: name == spec or find(name) is not None
    return lambda name: name == spec


def select(names: Iterable[str], spec) -> list:
    """The names (in their order) that `spec` takes: None takes all; see the module doc."""
    names = list(names)
    if spec is None:
        return names
    specs = [spec] if isinstance(spec, (str, re.Pattern)) else list(spec)
    preds = [_matcher(s) for s in specs]
    return [n for n in names if any(p(n) for p in preds)]


def scalar_tags(ld, run: str) -> list:
    """The scalar tags written in `run` (sorted), without the series tb_plus derives."""
    derived = ld.derived_tags(run)
    out = []
    for t in ld.tags(run, "scalars"):
        if t in derived:
            try:
                if ld.tag_info(run, t).data_class != "scalars":
                    continue
            except KeyError:
                continue
        out.append(t)
    return out


def _kind_tags(ld, run: str, kind: str) -> list:
    if kind == "scalars":
        return scalar_tags(ld, run)
    if kind == "histograms":
        return ld.tags(run, "histograms")
    hist = set(ld.tags(run, "histograms"))  # and the hparams plugin's records, as tbparse leaves them out
    return [t for t in ld.tags(run, "tensors") if t not in hist and ld.tag_info(run, t).plugin_name != "hparams"]


def _choose(ld, runs, tags, kind):
    """[(run, [tags])] chosen, runs in TensorBoard's order, tags sorted; runs without a tag left out."""
    out = []
    for run in select(ld.runs(), runs):
        ts = select(_kind_tags(ld, run, kind), tags)
        if ts:
            out.append((run, ts))
    return out


# ---------------------------------------------------------------------------------------------- x axes


def _x_column(ld, run, tag_step, s, x):
    """The x values of series `s` for axis `x` ('relative' or ('tag', NAME)): float64, NaN where none."""
    from tb_plus.query import xaxis

    if x == "relative":
        return xaxis.x_basic(s.step, s.wall_time, "relative").astype(np.float64)
    out = np.full(len(s), np.nan)
    if tag_step is not None:
        idx, xs = xaxis.x_from_tag(s.step, *tag_step)
        out[idx] = xs
    return out


def _parse_x(x):
    from tb_plus.query import xaxis

    axis = xaxis.parse_x(x)
    return None if axis in ("step", "wall_time") else axis


def _x_name(axis):
    return "relative" if axis == "relative" else "x"


# ---------------------------------------------------------------------------------------------- scalars


def scalar_blocks(ld, runs=None, tags=None, *, x="step", block_points=1 << 22):
    """Every chosen scalar point, as a sequence of column blocks: dicts of numpy arrays run (codes),
    tag (codes; the smallest signed integer type that holds them), step, wall_time, value (and
    `relative` or `x` for another x axis), at most about `block_points` rows each (one series is never
    split). Yields (block, run_names, tag_names) with the code tables, the same for every block: built
    for streaming export.

    Two passes: the first only counts each series' points (views of the index, nothing read), the second
    copies each series straight into its block and drops the run's index pages from the process once
    the run is copied, so the peak is the columns and one run's pages."""
    axis = _parse_x(x)
    chosen = _choose(ld, runs, tags, "scalars")
    run_names = [r for r, _ in chosen]
    tag_names = sorted({t for _, ts in chosen for t in ts})
    tag_code = {t: i for i, t in enumerate(tag_names)}
    run_dtype, tag_dtype = _code_dtype(len(run_names)), _code_dtype(len(tag_names))
    plan = []  # [(run index, run, tag, points)]
    for ri, (run, ts) in enumerate(chosen):
        for t in ts:
            n = len(ld.scalars(run, t))
            if n:
                plan.append((ri, run, t, n))
    blocks, size = [[]], 0
    for item in plan:
        if blocks[-1] and size + item[3] > block_points:
            blocks.append([])
            size = 0
        blocks[-1].append(item)
        size += item[3]
    x_name = _x_name(axis) if axis is not None else None
    x_source = {}  # run -> (steps, values) of the x tag, or None

    for block in blocks:
        n = sum(item[3] for item in block)
        cols = {"run": np.empty(n, run_dtype), "tag": np.empty(n, tag_dtype), "step": np.empty(n, np.int64),
                "wall_time": np.empty(n, np.float64), "value": np.empty(n, np.float64)}
        if x_name is not None:
            cols[x_name] = np.empty(n, np.float64)
        at = 0
        for k, (ri, run, t, planned) in enumerate(block):
            s = ld.scalars(run, t)
            m = min(len(s), planned)  # a refresh in between may have changed the series: never past its slot
            b = at + m
            cols["run"][at:b] = ri
            cols["tag"][at:b] = tag_code[t]
            cols["step"][at:b] = s.step[:m]
            cols["wall_time"][at:b] = s.wall_time[:m]
            cols["value"][at:b] = s.value[:m]
            if x_name is not None:
                if isinstance(axis, tuple) and run not in x_source:
                    try:
                        e = ld.scalars(run, axis[1])
                        x_source[run] = (np.array(e.step), np.array(e.value))
                    except KeyError:
                        x_source[run] = None
                cols[x_name][at:b] = _x_column(ld, run, x_source.get(run), s, axis)[:m]
            at = b
            if k + 1 == len(block) or block[k + 1][1] != run:
                _release(ld, run)
        if at < n:
            cols = {name: c[:at] for name, c in cols.items()}
        yield cols, run_names, tag_names


def _code_dtype(n: int):
    """The smallest signed integer type of codes for n names (what pandas would convert them to)."""
    return np.int8 if n < 127 else np.int16 if n < 32767 else np.int32


def _release(ld, run):
    """Drops the resident pages of the run's index from this process (they stay in the page cache):
    a frame of a large directory then costs its own columns, not the index's too."""
    try:
        r = ld._run(run)
    except KeyError:
        return
    for f in r.files:
        for seg in f.segments:
            seg.release()


def _scalar_columns(ld, runs, tags, x):
    blocks = list(scalar_blocks(ld, runs, tags, x=x, block_points=1 << 62))
    cols, run_names, tag_names = blocks[0]
    return cols, run_names, tag_names


def _pivot(cols, run_names, tag_names, axis):
    """Wide columns: one row per (run, step), one float64 column per tag (the last value written at that
    step; NaN where the tag has none), wall_time the latest of the row's points."""
    n = len(cols["step"])
    if n == 0:
        out = {"run": np.empty(0, np.int32), "step": np.empty(0, np.int64)}
        out.update({t: np.empty(0) for t in tag_names})
        out["wall_time"] = np.empty(0)
        return out
    # rows: unique (run, step), in run order then step order
    order = np.lexsort((cols["step"], cols["run"]))
    r_sorted, s_sorted = cols["run"][order], cols["step"][order]
    new = np.ones(n, bool)
    new[1:] = (r_sorted[1:] != r_sorted[:-1]) | (s_sorted[1:] != s_sorted[:-1])
    row_of_sorted = np.cumsum(new) - 1
    rows = int(row_of_sorted[-1]) + 1
    if rows * max(len(tag_names), 1) > MAX_PIVOT_CELLS:
        raise ValueError(f"a pivoted frame would hold {rows} rows x {len(tag_names)} tags, more than "
                         f"{MAX_PIVOT_CELLS} cells: choose fewer tags or use the long frame")
    row = np.empty(n, np.int64)
    row[order] = row_of_sorted
    out = {"run": r_sorted[new], "step": s_sorted[new]}
    # the last point written per (row, tag): the original index is the written order
    key = row * max(len(tag_names), 1) + cols["tag"]
    last = np.unique(key[::-1], return_index=True)[1]
    last = n - 1 - last  # index of the last occurrence of each key
    wall = np.full(rows, -np.inf)
    np.maximum.at(wall, row, cols["wall_time"])
    if axis is not None:
        name = _x_name(axis)
        xv = np.full(rows, np.nan)
        xv[row[last]] = cols[name][last]
        out[name] = xv
    for ti, t in enumerate(tag_names):
        v = np.full(rows, np.nan)
        sel = last[cols["tag"][last] == ti]
        v[row[sel]] = cols["value"][sel]
        out[t] = v
    out["wall_time"] = wall
    return out


# ---------------------------------------------------------------------------------------------- other kinds


def _histogram_columns(ld, chosen):
    run, tag, step, wall, offsets, left, right, count = [], [], [], [], [0], [], [], []
    for ri, (r, ts) in enumerate(chosen):
        for t in ts:
            for d in ld.histograms(r, t):
                a = np.asarray(d.numpy, np.float64).reshape(-1, 3) if np.size(d.numpy) else np.zeros((0, 3))
                run.append(ri)
                tag.append(t)
                step.append(d.step)
                wall.append(d.wall_time)
                left.append(a[:, 0])
                right.append(a[:, 1])
                count.append(a[:, 2])
                offsets.append(offsets[-1] + len(a))
    return run, tag, step, wall, np.asarray(offsets, np.int64), left, right, count


def _tensor_rows(ld, chosen):
    for ri, (r, ts) in enumerate(chosen):
        for t in ts:
            for d in ld.tensors(r, t):
                yield ri, t, d.step, d.wall_time, np.asarray(d.numpy)


# ---------------------------------------------------------------------------------------------- assembling


def _categorical(backend, mod, name, codes, categories):
    codes = np.asarray(codes) if isinstance(codes, np.ndarray) else np.asarray(codes, _code_dtype(len(categories)))
    if backend == "pandas":
        return mod.Categorical.from_codes(codes, categories=list(categories))
    if backend == "polars":
        return mod.Series(name, list(categories), dtype=mod.Enum(list(categories))).gather(codes)
    return mod.DictionaryArray.from_arrays(mod.array(codes), mod.array(list(categories), mod.string()))


def _assemble(backend, mod, columns: dict):
    """A frame of `columns` (name -> numpy array or the backend's own column), in order."""
    if backend == "pandas":
        return mod.DataFrame(columns, copy=False)
    if backend == "polars":
        return mod.DataFrame([c if isinstance(c, mod.Series) else mod.Series(name, c) for name, c in columns.items()])
    return mod.table({name: (c if isinstance(c, (mod.Array, mod.ChunkedArray)) else mod.array(c))
                      for name, c in columns.items()})


def _list_column(backend, mod, name, parts, offsets, dtype=np.float64):
    """A column of one array per row: numpy arrays in an object column for pandas; a list column
    built from one flat array and its offsets for arrow and polars."""
    if backend == "pandas":
        col = np.empty(len(parts), object)
        for i, p in enumerate(parts):
            col[i] = np.asarray(p, dtype)
        return col
    flat = np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)
    try:
        import pyarrow as pa
    except ImportError:  # polars without pyarrow: one list per row, the slow, dependable way
        return mod.Series(name, [np.asarray(p, dtype) for p in parts])
    arr = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(flat))
    return arr if backend == "pyarrow" else mod.Series(name, arr)


def frame(ld, runs=None, tags=None, kind="scalars", *, pivot=False, x="step", backend="pandas"):
    """A DataFrame of the log directory `ld` (see `tb_plus.store.Logdir.frame`)."""
    if kind not in FRAME_KINDS:
        raise ValueError(f"kind must be one of {FRAME_KINDS}, not {kind!r}")
    mod = _backend_module(backend)
    if kind == "scalars":
        axis = _parse_x(x)
        cols, run_names, tag_names = _scalar_columns(ld, runs, tags, x)
        if pivot:
            wide = _pivot(cols, run_names, tag_names, axis)
            wide["run"] = _categorical(backend, mod, "run", wide["run"], run_names)
            return _assemble(backend, mod, wide)
        cols["run"] = _categorical(backend, mod, "run", cols["run"], run_names)
        cols["tag"] = _categorical(backend, mod, "tag", cols["tag"], tag_names)
        order = ["run", "tag", "step", "wall_time", "value"] + [k for k in cols if k not in
                                                                 ("run", "tag", "step", "wall_time", "value")]
        return _assemble(backend, mod, {k: cols[k] for k in order})
    if pivot:
        raise ValueError("pivot=True is for scalars: histograms, tensors and hparams have no wide form")
    if x != "step":
        raise ValueError("x is for scalars: other kinds carry step and wall_time")
    if kind == "hparams":
        return _hparams_frame(ld, runs, tags, backend, mod)
    chosen = _choose(ld, runs, tags, kind)
    run_names = [r for r, _ in chosen]
    tag_names = sorted({t for _, ts in chosen for t in ts})
    tag_code = {t: i for i, t in enumerate(tag_names)}
    if kind == "histograms":
        run, tag, step, wall, offsets, left, right, count = _histogram_columns(ld, chosen)
        return _assemble(backend, mod, {
            "run": _categorical(backend, mod, "run", run, run_names),
            "tag": _categorical(backend, mod, "tag", [tag_code[t] for t in tag], tag_names),
            "step": np.asarray(step, np.int64), "wall_time": np.asarray(wall, np.float64),
            "left": _list_column(backend, mod, "left", left, offsets),
            "right": _list_column(backend, mod, "right", right, offsets),
            "count": _list_column(backend, mod, "count", count, offsets),
        })
    rows = list(_tensor_rows(ld, chosen))
    cols = {
        "run": _categorical(backend, mod, "run", [r[0] for r in rows], run_names),
        "tag": _categorical(backend, mod, "tag", [tag_code[r[1]] for r in rows], tag_names),
        "step": np.asarray([r[2] for r in rows], np.int64), "wall_time": np.asarray([r[3] for r in rows], np.float64),
    }
    if backend == "pandas":
        value = np.empty(len(rows), object)
        for i, r in enumerate(rows):
            value[i] = r[4]
        cols["value"] = value
    else:  # arrow and polars: numbers flattened to a list of float64 beside the shape; text as a list of str
        numeric = [r[4].dtype.kind in "biuf" for r in rows]
        offsets = np.zeros(len(rows) + 1, np.int64)
        offsets[1:] = np.cumsum([r[4].size if ok else 0 for r, ok in zip(rows, numeric)])
        cols["value"] = _list_column(backend, mod, "value", [r[4].reshape(-1) if ok else np.empty(0)
                                                             for r, ok in zip(rows, numeric)], offsets)
        cols["shape"] = _object_lists(backend, mod, "shape", [list(r[4].shape) for r in rows], "int")
        cols["text"] = _object_lists(backend, mod, "text", [
            None if ok else [_text(v) for v in r[4].reshape(-1).tolist()] for r, ok in zip(rows, numeric)], "str")
    return _assemble(backend, mod, cols)


def _text(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _object_lists(backend, mod, name, values, kind):
    if backend == "polars":
        return mod.Series(name, values, dtype=mod.List(mod.Int64 if kind == "int" else mod.String))
    return mod.array(values, mod.list_(mod.int64() if kind == "int" else mod.string()))


def _hparams_frame(ld, runs, names, backend, mod):
    """One row per chosen run that has hparams (its own or its parents', as the tab shows them), one
    column per hparam name chosen by `names` (sorted); missing values are None / null."""
    from tb_plus.query.hparams import run_hparams

    hp = run_hparams(ld)
    chosen = [r for r in select(ld.runs(), runs) if r in hp]
    cols_names = select(sorted({k for r in chosen for k in hp[r]}), names)
    out = {"run": np.asarray(chosen, object) if backend == "pandas" else chosen}
    for k in cols_names:
        vals = [hp[r].get(k) for r in chosen]
        kinds = {type(v) for v in vals if v is not None}
        if kinds <= {float, int} and kinds:
            col = np.asarray([np.nan if v is None else v for v in vals], np.float64)
            if backend != "pandas" and any(v is None for v in vals):
                col = [v for v in vals]
        elif backend == "pandas":
            col = np.asarray(vals, object)
        else:
            col = [None if v is None else (v if len(kinds) == 1 else str(v)) for v in vals]
        out[k] = col
    if backend == "pandas":
        return mod.DataFrame(out, copy=False)
    if backend == "polars":
        return mod.DataFrame({k: v for k, v in out.items()}, strict=False)
    return mod.table({k: mod.array(v) for k, v in out.items()})
