"""The public event-store API: `Logdir`.

    from tb_plus.store import Logdir
    ld = Logdir(path, cache_dir=None)   # returns at once; nothing is read yet
    ld.runs()                           # indexes on first use (or call ld.refresh())
    ld.tags(run, kind="scalars")
    s = ld.scalars(run, tag)            # s.step, s.wall_time, s.value: numpy columns
    ld.refresh()                        # picks up appended records, new files, new runs

The index lives in `cache_dir` (default: $TB_PLUS_CACHE_DIR, else ~/.cache/tb_plus), never inside
the log directory: one folder per event file, and one per log directory for its record. A local
event file's folder is keyed by where the file is (`<cache_dir>/files/<key of its resolved
directory and name>`), so a file opened through any ancestor directory (`/logs` and `/logs/exp`)
is indexed once and its index shared. Object storage and a shared index (cache_dir a URL) keep
the files under their log directory's folder (`<cache_dir>/<logdir key>/files/<key of the path
relative to it>`), the layout SharedIndex publishes. A cache written before local files were
keyed by location is not read: its files are indexed once again.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import os
import stat
import subprocess
import sys
import threading

import numpy as np

from tb_plus.store import derived, indexer
from tb_plus.store.indexer import C_BLOB, C_SCALAR, C_TENSOR, C_UNKNOWN
from tb_plus.store.confine import open_confined
from tb_plus.store.segment import Segment

KINDS = ("scalars", "tensors", "histograms", "blobs")
INCOMING = ".tb_plus_incoming"  # where uploads are staged; never a run
_IN_PROCESS_BYTES = 32 << 20  # below this much new data, index in-process (no worker start-up)


MAX_SERIES_VALUES = 1 << 25  # values one tensors() or packed_tensors() call reads (every step of one tag)
MAX_DERIVED_TAGS = 1 << 17  # scalar series read out of one run's tensor summaries
MEMO_PER_KIND = 16  # derived values kept per kind (tag trees, trace cubes, ...): see Logdir.memo


class SeriesTooLarge(ValueError):
    """A tensor series holds more values than a request may read."""


@dataclasses.dataclass(frozen=True)
class Series:
    """A scalar series: numpy columns of equal length, in TensorBoard's order. The arrays may be
    read-only views of the memory-mapped index: copy them before modifying in place."""

    step: np.ndarray  # int64
    wall_time: np.ndarray  # float64
    value: np.ndarray  # float64 (the written float32 exactly, for float32 summaries)

    def __len__(self):
        return len(self.step)


@dataclasses.dataclass(frozen=True)
class TensorDatum:
    step: int
    wall_time: float
    numpy: np.ndarray


@dataclasses.dataclass(frozen=True)
class BlobRef:
    """Where a blob-sequence value (image, audio, graph) lives; `Logdir.blob()` reads it."""

    step: int
    wall_time: float
    file: str
    offset: int
    length: int
    vindex: int
    initial: tuple = ("", 0)  # (plugin name, written data class) of the tag's first metadata


@dataclasses.dataclass(frozen=True)
class TagInfo:
    plugin_name: str
    data_class: str  # "scalars" | "tensors" | "blobs" | "other"
    plugin_content: bytes


@dataclasses.dataclass(frozen=True)
class RunInfo:
    name: str
    files: int
    size: int  # bytes of the run's event files, as last indexed
    last_write: float  # newest modification time of its event files, seconds since the epoch
    last_step: int | None  # the largest final step of its scalar series
    scalar_tags: int
    first_write: float = 0.0  # wall time of its earliest indexed event (else its oldest file name's timestamp)
    path: str = ""  # the run's directory
    last_event: float | None = None  # wall time of its newest indexed event (None without any)


@dataclasses.dataclass(frozen=True)
class Progress:
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    indexing: bool


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something wrong with one file; `kind` is one of: error, empty, not_event_file,
    bad_crc, unparsable, skipped_bytes, pending_tail."""

    path: str
    run: str
    kind: str
    message: str
    count: int = 1
    offset: int = -1


def default_cache_dir() -> str:
    env = os.environ.get("TB_PLUS_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tb_plus")


def _name_timestamp(path: str):
    """The creation time writers put in an event file's name (events.out.tfevents.<seconds>.host...)."""
    rest = os.path.basename(path).partition("tfevents.")[2]
    try:
        return float(rest.split(".")[0])
    except ValueError:
        return None


def is_event_file(name: str) -> bool:
    return "tfevents" in name and not name.endswith(".profile-empty")


@dataclasses.dataclass(frozen=True)
class _RemoteStat:
    """What _plan needs of a stat, for an object as listed (no inode: replacement is told by the
    CRC of the first bytes)."""

    st_size: int
    st_mtime_ns: int
    st_ino: int = 0
    st_mode: int = stat.S_IFREG | 0o444


class _File:
    """One event file's index: its manifest and lazily opened segments."""

    def __init__(self, path: str, cache: str, m: dict):
        self.path = path
        self.cache = cache
        self.m = m
        self._segs = None
        self._ids = None

    @property
    def segments(self):
        if self._segs is None:
            for attempt in range(20):
                try:
                    self._segs = [Segment(os.path.join(self.cache, s[0])) for s in self.m["segments"]]
                    break
                except FileNotFoundError:  # merged away meanwhile (another indexer): re-read
                    m = indexer.load_manifest(self.cache)
                    if attempt == 19 or m is None or m["tags"][: len(self.m["tags"])] != self.m["tags"]:
                        raise
                    self.m = m
        return self._segs

    def tag_id(self, tag: str):
        if self._ids is None:
            self._ids = {t: i for i, t in enumerate(self.m["tags"])}
        return self._ids.get(tag)


class _Run:
    def __init__(self, name: str):
        self.name = name
        self.files: list[_File] = []
        self._tags = None  # tag -> [plugin, class, content_b64, written data class]
        self.sorted_tags = {}  # kind -> sorted tag list
        self.info = None  # the RunInfo, once computed
        self.derived = None  # {derived scalar tag: (tensor tag, name)}, once computed

    def signature(self) -> tuple:
        """Changes whenever anything indexed for the run changes."""
        return tuple((f.path, f.m["offset"], f.m["size"], f.m["mtime_ns"], f.m["seq"], len(f.m["tags"])) for f in self.files)

    def tag_signature(self) -> tuple:
        """Changes whenever the run's tags (or their first metadata) may have changed: a file
        replaced (another inode, or other first bytes) counts even with as many tags as before."""
        return tuple((f.path, f.m.get("ino"), f.m.get("head_crc"), len(f.m["tags"]), len(f.m["meta"]))
                     for f in self.files)

    def adopt(self, old: "_Run") -> "_Run":
        """Keeps what `old` derived from the same data: the whole run when nothing changed,
        its tag tables when only values were appended."""
        if old.signature() == self.signature() and all(a is b for a, b in zip(old.files, self.files)):
            return old
        if old.tag_signature() == self.tag_signature():
            self._tags = old._tags
            self.sorted_tags = old.sorted_tags
            self.derived = old.derived
        return self

    @property
    def tag_info(self) -> dict:
        if self._tags is None:
            info = {}
            for f in self.files:
                meta = f.m["meta"]
                tags = f.m["tags"]
                for tid, v in meta.items():
                    info.setdefault(tags[int(tid)], v)  # first metadata in the run wins
            self._tags = info
        return self._tags

    def purge_thresholds(self):
        """Per (file index, segment index): keep points with step < threshold (SessionLog.START
        after the first one in a run purges earlier points with step >= its step)."""
        marks = []  # (file idx, segments before the mark, step)
        for fi, f in enumerate(self.files):
            for after, step in f.m["starts"]:
                marks.append((fi, after, step))
        marks = marks[1:]  # the first START only starts the session
        if not marks:
            return None
        out = {}
        for fi, f in enumerate(self.files):
            for si in range(len(f.m["segments"])):
                th = [s for (mf, ma, s) in marks if (mf, ma) > (fi, si)]
                if th:
                    out[(fi, si)] = min(th)
        return out


class Logdir:
    """A TensorBoard log directory, indexed lazily into a persistent cache."""

    def __init__(self, path, cache_dir=None, *, workers=None, verify_crc=True, force_python=False, confine=None,
                 storage_options=None, poll_seconds=0.0, budget_per_hour=0):
        from tb_plus.store import remote as remote_mod

        self.remote = None
        if remote_mod.is_url(os.fspath(path)):  # s3://, gs://, hdfs://, memory://...: through fsspec
            self.remote = remote_mod.Remote(os.fspath(path), storage_options, poll_seconds, budget_per_hour)
            self.path = self.remote.url
        else:
            self.path = os.path.abspath(os.fspath(path))
        # confine: resolved directories that symlinks inside the log directory may not lead out of
        self.confine = [os.path.realpath(c) for c in confine] if confine and self.remote is None else None
        self.shared = None
        self._storage_error = None  # the last failed listing of a remote log directory
        shared_url = None
        if cache_dir and remote_mod.is_url(os.fspath(cache_dir)):
            # the index published on object storage; a local working copy under the default cache dir
            shared_url = remote_mod.normalise(os.fspath(cache_dir))
            h = hashlib.sha1(shared_url.encode("utf-8")).hexdigest()[:16]
            cache_dir = os.path.join(default_cache_dir(), "shared", h)
        self.cache_root = os.path.abspath(cache_dir or default_cache_dir())
        real_root = os.path.realpath(self.cache_root)
        real_path = self.path if self.remote is not None else os.path.realpath(self.path)
        if real_root == real_path or real_root.startswith(real_path.rstrip(os.sep) + os.sep):
            raise ValueError(f"cache_dir {cache_dir!r} is inside the log directory {path!r}: log directories are never written to")
        key = hashlib.sha1(real_path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        self.cache = os.path.join(self.cache_root, key)
        if shared_url is not None:
            from tb_plus.store.shared import SharedIndex

            self.shared = SharedIndex(f"{shared_url}/{key}", storage_options)
        self.workers = workers or os.cpu_count() or 1
        self.verify_crc = bool(verify_crc)
        self.force_python = force_python
        self.stats = {"bytes_read": 0, "files_indexed": 0, "refreshes": 0}
        self._lock = threading.RLock()
        self._refresh_lock = threading.Lock()
        self._runs: dict[str, _Run] | None = None
        self._progress = Progress(0, 0, 0, 0, False)
        self._bg = None
        self._bg_stop = None
        self._memo = {}  # kind -> OrderedDict(key -> (version, value)): see memo()
        self._pinned = {}  # key -> (version, value): memo(pin=True)
        self.generation = 0  # bumped by each refresh that changed anything
        self._ready_event = threading.Event()
        self._real_dirs = {}  # see _discover and _file_cache

    # ------------------------------------------------------------------ indexing

    def _file_cache(self, relpath: str) -> str:
        """The folder of one event file's index (see the module doc): for a local log directory,
        keyed by the file's resolved directory and its name, shared by every log directory that
        holds the file; else by its path relative to the log directory, under self.cache."""
        if self.remote is None and self.shared is None:
            head, _, name = relpath.rpartition("/")
            real = self._real_dirs.get(head)
            if real is None:  # not found by the last walk
                real = os.path.realpath(os.path.join(self.path, *head.split("/")) if head else self.path)
            where = os.path.join(real, name)
            h = hashlib.sha1(where.encode("utf-8", "surrogateescape")).hexdigest()[:20]
            return os.path.join(self.cache_root, "files", h)
        h = hashlib.sha1(relpath.encode("utf-8", "surrogateescape")).hexdigest()[:20]
        return os.path.join(self.cache, "files", h)

    def _discover(self):
        """[(run, relpath, abspath)] of event files, in TensorBoard's run and file order."""
        if self.remote is not None:
            return self._discover_remote()
        found = []
        seen = set()
        real_dirs = {}  # run directory relative to the log directory ("" for itself) -> resolved
        for dirpath, dirnames, filenames in os.walk(self.path, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen or not self._allowed(real):
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames[:] = sorted(d for d in dirnames if d != INCOMING)
            rel = os.path.relpath(dirpath, self.path)
            run = "." if rel == "." else rel.replace(os.sep, "/")
            real_dirs["" if run == "." else run] = real
            for name in sorted(filenames):
                if is_event_file(name):
                    if self.confine and not self._allowed(os.path.realpath(os.path.join(dirpath, name))):
                        continue
                    relpath = name if run == "." else f"{run}/{name}"
                    found.append((run, relpath, os.path.join(dirpath, name)))
        self._real_dirs = real_dirs
        return found

    def _discover_remote(self):
        """The same from one listing of the prefix (object stores have no directories to walk). A
        listing that fails (no such bucket, no permission, no network) is reported by problems()
        and leaves the runs as they were."""
        try:
            listing = self.remote.listing()
            self._storage_error = None
        except (OSError, ValueError) as e:
            self._storage_error = f"{type(e).__name__}: {e}"
            logging.getLogger("tb_plus").warning("cannot list %s: %s", self.path, self._storage_error)
            return [(r.name, f.m.get("relpath", ""), f.path) for r in (self._runs or {}).values() for f in r.files]
        found = []
        for key in listing:
            parts = key.split("/")
            if not is_event_file(parts[-1]) or INCOMING in parts[:-1]:
                continue
            run = "/".join(parts[:-1]) or "."
            found.append((run, key, self.remote.url_of(key)))
        # TensorBoard's order: a directory's files, then its subdirectories, depth first, sorted
        found.sort(key=lambda x: (x[0].split("/") if x[0] != "." else [], x[1]))
        return found

    def _stat(self, path):
        """os.stat of a local event file; for a remote one, what the last listing said."""
        if self.remote is None:
            return os.stat(path)
        size, mtime_ns, _ = (self.remote.last_listing() or {}).get(self.remote.key(self.remote.path_of(path)), (None, 0, ""))
        if size is None:
            raise FileNotFoundError(2, "not listed any more", path)
        return _RemoteStat(size, mtime_ns)

    def _allowed(self, real: str) -> bool:
        if not self.confine:
            return True
        return any(real == c or real.startswith(c.rstrip(os.sep) + os.sep) for c in self.confine)

    def _plan(self, run, relpath, path, known=None):
        """-> (task or None, manifest or None). `known`: the manifest this handle holds for the file;
        when the event file has not changed since, it is used as is and manifest.json is not read
        (a run with 100,000 tags has a large one)."""
        cache = self._file_cache(relpath)
        if known is not None and not known.get("error"):
            try:
                st = self._stat(path)
            except OSError:
                st = None
            if (st is not None and stat.S_ISREG(st.st_mode) and st.st_size == known["size"] == known["offset"]
                    and st.st_mtime_ns == known["mtime_ns"] and st.st_ino == known["ino"]
                    and (known.get("verify", True) or not self.verify_crc)):
                return None, known
        m = indexer.load_manifest(cache)
        task = {
            "path": path,
            "relpath": relpath,
            "run": run,
            "cache": cache,
            "verify": self.verify_crc,
            "force_python": self.force_python,
            "confine": self.confine,  # checked again on the file the worker opens
            # the index this plan was made against: a reset planned against it is not repeated on the
            # index another indexer wrote meanwhile (another log directory holding the file)
            "planned_seq": None if m is None else m.get("seq"),
        }
        try:
            st = self._stat(path)
        except OSError as e:
            if m is None:
                m = indexer.new_manifest(task)
            m = dict(m, error=f"{type(e).__name__}: {e.strerror or e}")
            return None, m
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
            m = dict(m or indexer.new_manifest(task), error="not a regular file")
            return None, m
        task["todo"] = st.st_size
        if self.shared is not None:
            task["writer"] = self.shared.writer
        if self.remote is not None:
            task.update(_source=self.remote, size=st.st_size, mtime_ns=st.st_mtime_ns)
        if m is None or (self.verify_crc and not m.get("verify", True)):
            return dict(task, reset=True), None  # new, or indexed without CRC checks
        if m.get("error") and m["offset"] == 0:
            return dict(task, reset=True), None
        if st.st_size < m["offset"] or st.st_ino != m["ino"]:
            return dict(task, reset=True), None  # truncated or replaced
        if st.st_size == m["size"] and st.st_mtime_ns == m["mtime_ns"]:
            return None, m  # unchanged: nothing is read
        if m["head_len"] and st.st_size >= m["head_len"]:
            if self.remote is not None and not self.remote.affordable(1):
                self.remote.counts["deferred"] += 1
                return None, m  # over the request budget: as it was, until a later refresh
            try:
                crc = indexer.file_head_crc(path, m["head_len"], self.remote, self.confine)
            except OSError:
                crc = None
            self.stats["bytes_read"] += m["head_len"]
            if crc != m["head_crc"]:
                return dict(task, reset=True), None  # replaced in place
        if st.st_size == m["offset"]:
            return None, dict(m, size=st.st_size, mtime_ns=st.st_mtime_ns)
        task["todo"] = st.st_size - m["offset"]
        return task, m

    def _run_tasks(self, tasks):
        if self.remote is not None:  # within the request budget: the rest waits for a later refresh
            from tb_plus.store.indexer import CHUNK

            kept, need = [], 0
            for t in tasks:
                need += max(1, -(-t["todo"] // CHUNK))  # ranged reads of 16 MiB
                if self.remote.affordable(need):
                    kept.append(t)
                else:
                    self.remote.counts["deferred"] += 1
            tasks[:] = kept
        total = sum(t["todo"] for t in tasks)
        self._progress = Progress(0, len(tasks), 0, total, True)
        results = []
        nworkers = min(self.workers, len(tasks))
        if nworkers <= 1 or total < _IN_PROCESS_BYTES or not self._poolable():
            for t in tasks:
                results.append(indexer.index_file(t, self._advance))
                self._tick(results[-1])
        else:
            results = self._run_pool(tasks, nworkers)
        self._progress = dataclasses.replace(self._progress, indexing=False)
        return results

    def _advance(self, nbytes):
        p = self._progress
        self._progress = dataclasses.replace(p, bytes_done=min(p.bytes_done + nbytes, p.bytes_total))

    def _poolable(self) -> bool:
        """Whether worker processes can index this directory: local files, or object storage whose
        options travel as JSON (each worker opens its own connection; credentials from the
        environment it inherits)."""
        if self.remote is None:
            return True
        try:
            json.dumps(self.remote.storage_options)
            return True
        except (TypeError, ValueError):
            return False

    def _tick(self, res):
        p = self._progress
        self._progress = dataclasses.replace(p, files_done=p.files_done + 1)
        self.stats["bytes_read"] += res.get("bytes_read", 0)
        self.stats["files_indexed"] += 1
        if self.remote is not None and res.get("requests"):
            self.remote.add_counts(res["requests"])

    def _run_pool(self, tasks, nworkers):
        """Indexes files in worker processes (python -m tb_plus.store.indexer), largest first."""
        order = sorted(tasks, key=lambda t: -t["todo"])
        if self.remote is not None:  # workers read the objects themselves
            order = [dict({k: v for k, v in t.items() if k != "_source"}, remote_url=self.remote.url,
                          storage_options=self.remote.storage_options) for t in order]
        env = dict(os.environ)
        pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(indexer.__file__))))
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "tb_plus.store.indexer"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                text=True,
            )
            for _ in range(nworkers)
        ]
        results = []
        queue = list(order)
        lock = threading.Lock()

        def drive(proc):
            while True:
                with lock:
                    if not queue:
                        break
                    task = queue.pop(0)
                res = None
                try:
                    proc.stdin.write(json.dumps(task) + "\n")
                    proc.stdin.flush()
                    while res is None:
                        line = proc.stdout.readline()
                        if not line:
                            break
                        msg = json.loads(line)
                        if "progress" in msg:
                            with lock:
                                self._advance(msg["progress"])
                        else:
                            res = msg
                except (OSError, ValueError):
                    res = None
                if res is None:  # the worker died: do this file here
                    res = indexer.index_file(dict(task, reset=True), self._advance)
                with lock:
                    results.append(res)
                    self._tick(res)
            try:
                proc.stdin.close()
            except OSError:
                pass
            proc.wait()

        threads = [threading.Thread(target=drive, args=(p,), daemon=True) for p in procs]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return results

    def refresh(self):
        """Indexes what is new: appended records, new files and runs; returns self.

        Readers are not blocked meanwhile: they see the previous index until the new one is
        swapped in at the end. Concurrent refreshes run one at a time."""
        with self._refresh_lock:
            found = self._discover()
            tasks, plans = [], []
            held = {f.path: f.m for r in (self._runs or {}).values() for f in r.files}
            if self.shared is not None:
                self._pull_shared(found, held)
            for run, relpath, path in found:
                task, m = self._plan(run, relpath, path, held.get(path))
                plans.append((run, relpath, path, task, m))
                if task:
                    tasks.append(task)
            if tasks:
                self._check_cache_writable()
                self._run_tasks(tasks)
                if self.shared is not None:
                    self._push_shared(tasks)
            runs: dict[str, _Run] = {}
            old = self._runs or {}
            for run, relpath, path, task, m in plans:
                if task:
                    m = indexer.load_manifest(task["cache"])
                    if m is None:
                        continue
                    f = _File(path, task["cache"], m)
                else:
                    prev = next((f for f in old.get(run, _Run(run)).files if f.path == path), None)
                    f = prev if prev is not None and prev.m is m else _File(path, self._file_cache(relpath), m)
                runs.setdefault(run, _Run(run)).files.append(f)
            runs = {name: (r.adopt(old[name]) if name in old else r) for name, r in sorted(runs.items())}
            changed = list(runs) != list(old) or any(r is not old[n] for n, r in runs.items())
            with self._lock:
                self._runs = runs
                if changed:
                    self.generation += 1
            self._ready_event.set()
            self._write_logdir_record()
            self.stats["refreshes"] += 1
        return self

    def _folder_key(self, cache: str) -> str:
        return os.path.relpath(cache, self.cache).replace(os.sep, "/")

    def _pull_shared(self, found, held):
        """Adopts the published index of files this server has not indexed, or is behind on."""
        self.shared.refresh_listing()
        for run, relpath, path in found:
            cache = self._file_cache(relpath)
            known = held.get(path) or indexer.load_manifest(cache)
            try:
                size = self._stat(path).st_size
            except OSError:
                continue
            behind = known is None or size > known.get("offset", 0)
            if not behind:
                continue
            os.makedirs(cache, exist_ok=True)
            with open(os.path.join(cache, "lock"), "a+b") as lock:
                indexer._lock(lock)
                try:
                    if self.shared.pull(self._folder_key(cache), cache, behind) and path in held:
                        held.pop(path)  # re-read the adopted manifest
                except OSError as e:  # the bucket is unreachable: index ourselves
                    logging.getLogger("tb_plus").warning("shared index %s: %s", self.shared.url, e)

    def _push_shared(self, tasks):
        for task in tasks:
            cache = task["cache"]
            with open(os.path.join(cache, "lock"), "a+b") as lock:
                indexer._lock(lock)
                try:
                    self.shared.push(self._folder_key(cache), cache)
                except OSError as e:
                    logging.getLogger("tb_plus").warning("shared index %s: %s", self.shared.url, e)

    def _check_cache_writable(self):
        try:
            os.makedirs(self.cache, exist_ok=True)
        except OSError as e:
            raise OSError(f"cannot create the index cache {self.cache!r}: {e}; pass another cache_dir") from e
        if not os.access(self.cache, os.W_OK | os.X_OK):
            raise PermissionError(f"the index cache {self.cache!r} is not writable; pass another cache_dir")

    def _write_logdir_record(self):
        os.makedirs(self.cache, exist_ok=True)
        rec = os.path.join(self.cache, "logdir.json")
        if not os.path.exists(rec):
            with open(rec, "w", encoding="utf-8") as f:
                json.dump({"path": self.path}, f)

    def start_background(self, interval=None, on_refresh=None):
        """Indexes in a daemon thread now, and again every `interval` seconds if given, until
        `stop_background()`; calls `on_refresh(self)` after each refresh (errors in it are
        logged, not raised); returns the thread."""
        self.stop_background()
        stop = self._bg_stop = threading.Event()

        def loop():
            while not stop.is_set():
                try:
                    self.refresh()
                except Exception:  # a storage error (network, permissions) must not end the loop
                    logging.getLogger("tb_plus").exception("refresh of %s failed", self.path)
                if on_refresh is not None:
                    try:
                        on_refresh(self)
                    except Exception:  # a warm-up must never stop the indexing loop
                        logging.getLogger("tb_plus").exception("after-refresh hook failed")
                if interval is None or stop.wait(interval):
                    return

        self._bg = threading.Thread(target=loop, name="tb_plus-indexer", daemon=True)
        self._bg.start()
        return self._bg

    def stop_background(self, timeout=None):
        """Stops the background refresh loop (after the refresh in progress, if any)."""
        if self._bg is not None:
            self._bg_stop.set()
            self._bg.join(timeout)
            self._bg = None

    @property
    def ready(self) -> bool:
        """Whether a first index is in place (until then, runs() waits for it)."""
        return self._runs is not None

    def wait_ready(self, timeout=None) -> bool:
        """Waits up to `timeout` seconds (None: for ever) for the first index; returns `ready`."""
        self._ready_event.wait(timeout)
        return self.ready

    def _ensure(self) -> dict:
        if self._runs is None:
            self.refresh()
        return self._runs

    def _run(self, run: str) -> _Run:
        r = self._ensure().get(run)
        if r is None:
            raise KeyError(f"no run {run!r} in {self.path!r}")
        return r

    # ------------------------------------------------------------------ listing

    def runs(self) -> list:
        """TensorBoard run names ('.' for the log directory itself), sorted."""
        return list(self._ensure())

    def tags(self, run: str, kind: str = "scalars") -> list:
        """Tags of `run` of one kind: 'scalars', 'tensors' (histograms included), 'histograms',
        'blobs' (images, audio), sorted."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        r = self._run(run)
        cached = r.sorted_tags.get(kind)
        if cached is None:
            want = {"scalars": C_SCALAR, "tensors": C_TENSOR, "histograms": C_TENSOR, "blobs": C_BLOB}[kind]
            found = {
                t
                for t, (plugin, cls, *_) in r.tag_info.items()
                if cls == want and (kind != "histograms" or plugin == "histograms")
            }
            if kind == "scalars":
                found.update(t for t in self._derived_tags(r) if t not in r.tag_info)
            cached = r.sorted_tags[kind] = sorted(found)
        return list(cached)

    def derived_tags(self, run: str) -> dict:
        """{scalar tag: (tensor tag, name)} of the scalar series tb_plus reads out of tensor
        summaries of `run` (they are also listed by tags(run)): AUC and average precision of
        evaluation counts, the ROC AUC of pr_curves, ..."""
        return dict(self._derived_tags(self._run(run)))

    def _derived_tags(self, r: _Run) -> dict:
        """{derived scalar tag: (tensor tag, name)}: the scalar series that tb_plus reads out of
        tensor summaries (evaluation counts -> AUC, ...; see tb_plus/store/derived.py)."""
        if r.derived is None:
            out = {}
            import base64

            for tag, (plugin, cls, content, *_) in r.tag_info.items():
                if cls == C_TENSOR and plugin in derived.PROVIDERS:
                    names = derived.names(plugin, tag, base64.b64decode(content))
                    if len(out) + len(names) > MAX_DERIVED_TAGS:
                        logging.getLogger("tb_plus").warning(
                            "%s: run %r: derived series of %r and later tags left out (more than %d)",
                            self.path, r.name, tag, MAX_DERIVED_TAGS)
                        break
                    for full, name in names.items():
                        out[full] = (tag, name)
            r.derived = out
        return r.derived

    def tag_info(self, run: str, tag: str) -> TagInfo:
        import base64

        v = self._run(run).tag_info.get(tag)
        if v is None:
            raise KeyError(f"no tag {tag!r} in run {run!r}")
        names = {C_SCALAR: "scalars", C_TENSOR: "tensors", C_BLOB: "blobs"}
        return TagInfo(v[0], names.get(v[1], "other"), base64.b64decode(v[2]))

    # ------------------------------------------------------------------ reading

    def _gather(self, run: _Run, tag: str, prefix: str, fields):
        parts = {f: [] for f in fields}
        files = []
        thresholds = run.purge_thresholds()
        for fi, f in enumerate(run.files):
            tid = f.tag_id(tag)
            if tid is None:
                continue
            for si, seg in enumerate(f.segments):
                sl = seg.slice(prefix, tid)
                if sl is None:
                    continue
                a, b = sl
                keep = None
                if thresholds and (fi, si) in thresholds:
                    keep = seg[prefix + "_step"][a:b] < thresholds[(fi, si)]
                for name in fields:
                    col = seg[f"{prefix}_{name}"][a:b]
                    parts[name].append(col[keep] if keep is not None else col)
                files.append((f, len(parts[fields[0]][-1])))
        return parts, files

    def scalars(self, run: str, tag: str) -> Series:
        """Every point of a scalar series, in TensorBoard's order (duplicates kept)."""
        with self._lock:
            r = self._run(run)
            info = r.tag_info.get(tag)
            if info is None or info[1] != C_SCALAR:
                source = self._derived_tags(r).get(tag) if info is None else None
                if source is not None:
                    return self._derived_series(run, r, *source)
                raise KeyError(f"no scalar tag {tag!r} in run {run!r}")
            parts, _ = self._gather(r, tag, "s", ("step", "wall", "value"))

        def cat(xs, dtype):
            if len(xs) == 1:  # one segment: a zero-copy, read-only view of the mapped column
                return xs[0].astype(dtype, copy=False)
            return np.concatenate(xs).astype(dtype, copy=False) if xs else np.empty(0, dtype)

        return Series(cat(parts["step"], np.int64), cat(parts["wall"], np.float64), cat(parts["value"], np.float64))

    def _derived_series(self, run, r, base, name):
        plugin = r.tag_info[base][0]
        def compute():
            try:
                return derived.compute(plugin, self, run, base)
            except SeriesTooLarge as e:  # an empty series, and the file's problem in the log
                logging.getLogger("tb_plus").warning("%s: derived series of %r left empty: %s", self.path, base, e)
                return collections.defaultdict(lambda: ((), (), ()))

        every = self.memo(("derived", run, base), self.run_version(run), compute)
        steps, walls, values = every[name]
        return Series(np.asarray(steps, np.int64), np.asarray(walls, np.float64), np.asarray(values, np.float64))

    def _refs(self, run: str, tag: str, cls):
        with self._lock:
            r = self._run(run)
            info = r.tag_info.get(tag)
            if info is None or info[1] not in cls:
                raise KeyError(f"no such tag {tag!r} in run {run!r}")
            parts, files = self._gather(r, tag, "r", ("step", "wall", "off", "len", "vi", "kind"))
        refs = []
        initial = (info[0], info[3])
        k = 0
        for f, n in files:
            for j in range(n):
                refs.append(
                    BlobRef(
                        int(parts["step"][k][j]),
                        float(parts["wall"][k][j]),
                        f.path,
                        int(parts["off"][k][j]),
                        int(parts["len"][k][j]),
                        int(parts["vi"][k][j]),
                        initial,
                    )
                )
            k += 1
        return refs

    def tensors(self, run: str, tag: str, max_values: int = MAX_SERIES_VALUES) -> list:
        """Every value of a tensor series (histograms, pr_curves, text, hparams, ...) as
        TensorDatum(step, wall_time, numpy), read from the event files now. SeriesTooLarge once
        the values read exceed `max_values` (the shapes are the file's: they bound nothing)."""
        out = []
        total = 0
        for ref in self._refs(run, tag, (C_TENSOR,)):
            value = _read_or_none(ref, self.remote, self.confine)
            if value is not None:
                total += int(np.size(value[1]))
                if total > max_values:
                    raise SeriesTooLarge(f"tensor series {tag!r} of run {run!r} holds more than {max_values} values")
                out.append(TensorDatum(ref.step, ref.wall_time, value[1]))
        return out

    def tensor_steps(self, run: str, tag: str) -> list:
        """The steps of a tensor series' values, in written order, without reading them."""
        return [r.step for r in self._refs(run, tag, (C_TENSOR,))]

    def tensor_at(self, run: str, tag: str, step=None) -> tuple:
        """One value of a tensor series without reading the others: (the series' steps in written
        order, TensorDatum of the last value written at `step` (the last value when None) or None,
        the reason it could not be read or None)."""
        from google.protobuf.message import DecodeError

        refs = self._refs(run, tag, (C_TENSOR,))
        problem = None
        for ref in reversed(refs):
            if step is not None and ref.step != step:
                continue
            try:
                value = read_value(ref, self.remote, self.confine)
            except (DecodeError, ValueError, TypeError, IndexError, OSError) as e:
                problem = problem or f"step {ref.step}: {e}"
                continue
            return [r.step for r in refs], TensorDatum(ref.step, ref.wall_time, value[1]), None
        return [r.step for r in refs], None, problem

    def packed_tensors(self, run: str, tag: str, shape) -> tuple:
        """Every float32 tensor of `shape` in a tensor series, as (steps int64, wall times float64,
        values float32 [n, *shape]), values of another shape or type left out. Fast path: a record
        whose event ends with exactly one summary value of this tag holding the tensor as raw
        bytes (as tb_plus's tracer and tensor_util.make_tensor_proto write it) is read as those
        bytes, many records in one numpy gather, after checking every byte that frames them; other
        records (the first of a tag, which carries its metadata; other writers) go through protobuf.
        """
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

        shape = tuple(int(d) for d in shape)
        nbytes = 4 * int(np.prod(shape)) if shape else 4
        proto = tensor_pb2.TensorProto(
            dtype=1, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": d} for d in shape]),
            tensor_content=b"\0" * nbytes)
        tail = event_pb2.Event(summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, tensor=proto)]))
        tail = tail.SerializeToString()
        head = np.frombuffer(tail[:-nbytes], np.uint8)
        with self._lock:
            r = self._run(run)
            info = r.tag_info.get(tag)
            if info is None or info[1] != C_TENSOR:
                raise KeyError(f"no tensor tag {tag!r} in run {run!r}")
            parts, files = self._gather(r, tag, "r", ("step", "wall", "off", "len", "vi"))
        if sum(n for _, n in files) * max(nbytes // 4, 1) > MAX_SERIES_VALUES:
            raise SeriesTooLarge(f"tensor series {tag!r} of run {run!r}: {sum(n for _, n in files)} values of "
                                 f"shape {list(shape)}, more than {MAX_SERIES_VALUES} numbers")
        steps, walls, values = [], [], []
        for k, (f, n) in enumerate(files):
            off = parts["off"][k].astype(np.int64)
            end = off + 12 + parts["len"][k].astype(np.int64)
            start = end - nbytes
            ok = (parts["len"][k] >= len(tail)) & (parts["vi"][k] == 0)
            vals = np.zeros((n, nbytes // 4), np.float32)
            base = 0
            try:
                if self.remote is not None and ok.any():  # one ranged read over the records' span
                    base = int((start[ok] - len(head)).min())
                    mm = np.frombuffer(self.remote.read(f.path, base, int(end[ok].max())), np.uint8)
                else:
                    if self.remote is None:
                        with open_confined(f.path, self.confine) as fh:
                            mm = np.memmap(fh, np.uint8, "r")
                    else:
                        mm = None
            except (OSError, ValueError):
                mm = None
            if mm is not None:
                start = start - base
                ok &= (end - base <= len(mm)) & (start - len(head) >= 0)
                idx = np.flatnonzero(ok)
                for a in range(0, len(idx), 2048):
                    rows = idx[a:a + 2048]
                    framing = mm[(start[rows] - len(head))[:, None] + np.arange(len(head))]
                    good = np.all(framing == head, axis=1)
                    ok[rows[~good]] = False
                    rows = rows[good]
                    vals[rows] = mm[start[rows][:, None] + np.arange(nbytes)].view("<f4")
                del mm
            else:
                ok[:] = False
            keep = ok.copy()
            for i in np.flatnonzero(~ok).tolist():  # the rest: through protobuf
                value = self._float_tensor(f.path, int(off[i]), int(parts["len"][k][i]), int(parts["vi"][k][i]),
                                           shape)
                if value is not None:
                    vals[i] = value
                    keep[i] = True
            steps.append(parts["step"][k][keep].astype(np.int64))
            walls.append(parts["wall"][k][keep].astype(np.float64))
            values.append(vals[keep])
        if not steps:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, *shape), np.float32)
        return np.concatenate(steps), np.concatenate(walls), np.concatenate(values).reshape(-1, *shape)

    def _float_tensor(self, path, offset, length, vindex, shape):
        """One float tensor value of `shape`, flattened float32, decoded with protobuf and numpy
        alone (no data_compat: that pulls in TensorFlow's stub, and boto3 when it is installed);
        None when the record holds something else or cannot be read."""
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto import event_pb2

        try:
            if self.remote is not None:
                payload = self.remote.read(path, offset + 12, offset + 12 + length)
            else:
                with open_confined(path, self.confine) as fh:
                    fh.seek(offset + 12)
                    payload = fh.read(length)
            t = event_pb2.Event.FromString(payload).summary.value[vindex].tensor
        except (DecodeError, IndexError, OSError, ValueError):
            return None
        if tuple(d.size for d in t.tensor_shape.dim) != shape or t.dtype not in (1, 2, 19):  # float, double, half
            return None
        n = int(np.prod(shape)) if shape else 1
        if t.tensor_content:
            dtype = {1: "<f4", 2: "<f8", 19: "<f2"}[t.dtype]
            a = np.frombuffer(t.tensor_content, dtype)
        else:
            a = np.asarray(t.float_val if t.dtype == 1 else t.double_val if t.dtype == 2 else
                           np.asarray(t.half_val, np.uint16).view(np.float16), np.float64)
            if len(a) == 1 and n > 1:
                a = np.full(n, a[0])  # a repeated field holding one value fills the tensor
        return a.astype(np.float32) if a.size == n else None

    def histograms(self, run: str, tag: str) -> list:
        """Histogram tensors ([k, 3]: left edge, right edge, count), legacy ones converted."""
        return self.tensors(run, tag)

    def blobs(self, run: str, tag: str) -> list:
        """References to a blob series' values (images, audio); read one with `blob()`."""
        return self._refs(run, tag, (C_BLOB,))

    def blob(self, ref: BlobRef) -> list:
        """The blobs (bytes) of one blob-sequence value."""
        return [bytes(x) for x in read_value(ref, self.remote, self.confine)[1].reshape(-1)]

    def frame(self, runs=None, tags=None, kind: str = "scalars", *, pivot: bool = False, x: str = "step",
              backend: str = "pandas"):
        """A DataFrame of this log directory, built column by column from the index (tb_plus.frame).

        kind "scalars": long, one row per point: run, tag (categorical), step, wall_time, value; with
        pivot=True wide, one row per (run, step) and one column per tag (the last value written at
        that step, NaN where none), then wall_time (the row's latest). x "relative" or "tag:NAME" adds
        a column (relative, or x: NAME's value at the point's step, interpolated, NaN outside NAME).
        kind "histograms": run, tag, step, wall_time, left, right, count (one array per row);
        "tensors": run, tag, step, wall_time, value (the array; arrow and polars: flat float64 values,
        shape, and text for string tensors); "hparams": one row per run, one column per hparam.
        runs, tags: None (all), a name, a glob, "re:REGEX", a re.Pattern, or a list of those.
        backend: "pandas", "polars" or "pyarrow" (a Table); none is a dependency of tb_plus."""
        from tb_plus import frame as frame_mod

        return frame_mod.frame(self, runs, tags, kind, pivot=pivot, x=x, backend=backend)

    def run_info(self, run: str) -> RunInfo:
        """What the run table needs, from the index only (no event file is read): files, bytes,
        first and newest write, tags, and the last step (the largest final step over the run's
        scalar series). Computed once per change of the run."""
        r = self._run(run)
        if r.info is not None:
            return r.info
        last_step = self._last_step(r)
        walls = []
        for f in r.files:
            segs = f.segments
            if segs:
                for col in ("s_wall", "r_wall"):
                    if col in segs[0] and segs[0].count(col):
                        w = segs[0][col]
                        w = w[np.isfinite(w)]  # a damaged record may carry any wall time
                        if len(w):
                            walls.append(float(w.min()))
        last_event = None
        for f in r.files:  # the newest event: the largest wall time of each file's last segment with values
            for seg in reversed(f.segments):
                w = [seg[c] for c in ("s_wall", "r_wall") if c in seg and seg.count(c)]
                w = [a[np.isfinite(a)] for a in w]
                w = [float(a.max()) for a in w if len(a)]
                if w:
                    last_event = max(w) if last_event is None else max(last_event, max(w))
                    break
        stamps = [_name_timestamp(f.path) for f in r.files]
        first = min(walls) if walls else min((t for t in stamps if t is not None), default=0.0)
        last_write = max((f.m["mtime_ns"] for f in r.files), default=0) / 1e9
        info = RunInfo(
            name=run,
            files=len(r.files),
            size=sum(f.m["size"] for f in r.files),
            last_write=last_write,
            last_step=last_step,
            scalar_tags=len(self.tags(run)),
            first_write=min(first, last_write),  # a file's mtime may trail time.time() by a clock tick
            path=self.path if run == "." else os.path.join(self.path, *run.split("/")),
            last_event=last_event,
        )
        r.info = info
        return info

    def _last_step(self, r: _Run):
        if r.purge_thresholds() is not None:  # rare: read the series themselves
            steps = [self.scalars(r.name, t).step for t in self.tags(r.name)]
            return max((int(s[-1]) for s in steps if len(s)), default=None)
        final = {}  # tag -> its final step: the last segment holding the tag decides
        absent = np.iinfo(np.int64).min
        for f in r.files:
            names = f.m["tags"]
            last = None
            for seg in f.segments:
                if "s_tag" not in seg or not seg.count("s_tag"):
                    continue
                tags, starts = seg["s_tag"], seg["s_start"]
                nonempty = starts[1:] > starts[:-1]
                if last is None:
                    last = np.full(len(names), absent, dtype=np.int64)
                last[tags[nonempty]] = seg["s_step"][starts[1:][nonempty] - 1]
            if last is not None:
                for i in np.flatnonzero(last != absent).tolist():
                    final[names[i]] = last[i]
        info = r.tag_info
        steps = [v for t, v in final.items() if info.get(t, (None, None))[1] == C_SCALAR]
        return int(max(steps)) if steps else None

    def memo(self, key, version, build, pin=False):
        """A value derived from the index (a tag tree, a column table), rebuilt only when
        `version` changes. Keys are kept per kind (key[0]), the last MEMO_PER_KIND of each, so
        that requests varying a cheap parameter (a separator, a run subset) evict only their own
        kind; a pinned key (the view every user shares) is never evicted, only replaced."""
        kind = key[0] if isinstance(key, tuple) and key else key
        with self._lock:
            hit = self._pinned.get(key) if pin else self._memo.get(kind, {}).get(key)
            if hit is not None and hit[0] == version:
                if not pin:
                    self._memo[kind].move_to_end(key)
                return hit[1]
        value = build()
        with self._lock:
            if pin:
                self._pinned[key] = (version, value)
            else:
                entries = self._memo.setdefault(kind, collections.OrderedDict())
                entries.pop(key, None)
                entries[key] = (version, value)
                while len(entries) > MEMO_PER_KIND:
                    entries.popitem(last=False)
        return value

    def memory_estimate(self) -> int:
        """Bytes this open log directory holds, roughly: its mapped index columns and tag tables."""
        total = 0
        for r in (self._runs or {}).values():
            for f in r.files:
                total += 4096 + 120 * len(f.m.get("tags", ()))
                for seg in f.m.get("segments", ()):
                    total += 24 * int(seg[1]) + 45 * int(seg[2])
        return total

    def tags_version(self, run: str) -> tuple:
        """Changes whenever the tags of `run` may have changed (not when values are appended)."""
        return self._run(run).tag_signature()

    def run_version(self, run: str) -> tuple:
        """Changes whenever anything indexed for `run` changes."""
        return self._run(run).signature()

    # ------------------------------------------------------------------ status

    def progress(self) -> Progress:
        return self._progress

    def problems(self) -> list:
        """Per-file problems found so far (unreadable, empty, corrupt records, ...)."""
        out = []
        runs = self._ensure()
        if self._storage_error:
            out.append(Problem(self.path, "", "error", f"cannot list the log directory: {self._storage_error}"))
        for run in runs.values():
            for f in run.files:
                m = f.m
                p = m["problems"]
                if m.get("error"):
                    out.append(Problem(f.path, run.name, "error", m["error"]))
                    continue
                if m["size"] == 0:
                    out.append(Problem(f.path, run.name, "empty", "empty file"))
                    continue
                if m["records"] == 0 and p["skipped_bytes"]:
                    out.append(Problem(f.path, run.name, "not_event_file", "no valid record found", 1, 0))
                    continue
                first = {}
                for kind, off, _ in p["examples"]:
                    first.setdefault("skipped_bytes" if kind == "skipped" else kind, off)
                for kind, label in (
                    ("bad_crc", "records with a bad CRC skipped"),
                    ("unparsable", "records that do not parse as Events skipped"),
                    ("skipped_bytes", "bytes skipped while resynchronising"),
                ):
                    if p[kind]:
                        out.append(Problem(f.path, run.name, kind, label, p[kind], first.get(kind, -1)))
        return out

    def file_status(self) -> list:
        """One dict per event file: run, path, size, indexed offset, records, pending bytes."""
        out = []
        for run in self._ensure().values():
            for f in run.files:
                m = f.m
                out.append(
                    {
                        "run": run.name,
                        "path": f.path,
                        "size": m["size"],
                        "offset": m["offset"],
                        "records": m["records"],
                        "values": m["values"],
                        "pending_bytes": m.get("pending_bytes", 0),
                        "error": m.get("error"),
                    }
                )
        return out


def _read_or_none(ref: BlobRef, remote=None, confine=None):
    """read_value, or None for a value that cannot be decoded (damaged inside a record whose CRC
    held, or a file changed under us); such values are left out, as TensorBoard drops them."""
    from google.protobuf.message import DecodeError

    try:
        return read_value(ref, remote, confine)
    except (DecodeError, ValueError, TypeError, IndexError, OSError):
        return None


def read_value(ref: BlobRef, remote=None, confine=None):
    """Reads one Summary.Value from an event file (through `remote`, a Remote, for a URL) and
    normalises it as TensorBoard does: -> (SummaryMetadata or None, numpy array)."""
    from tensorboard import data_compat, dataclass_compat
    from tensorboard.compat.proto import event_pb2
    from tensorboard.util import tensor_util

    if remote is not None:
        payload = remote.read(ref.file, ref.offset + 12, ref.offset + 12 + ref.length)
    else:
        with open_confined(ref.file, confine) as f:
            f.seek(ref.offset + 12)
            payload = f.read(ref.length)
    ev = event_pb2.Event.FromString(payload)
    value = data_compat.migrate_value(ev.summary.value[ref.vindex])
    ev2 = event_pb2.Event(step=ev.step, wall_time=ev.wall_time)
    ev2.summary.value.add().CopyFrom(value)
    from tensorboard.compat.proto import summary_pb2

    initial = summary_pb2.SummaryMetadata(data_class=ref.initial[1])
    initial.plugin_data.plugin_name = ref.initial[0]
    (ev2,) = dataclass_compat.migrate_event(ev2, {value.tag: initial})
    v = ev2.summary.value[0]
    check_tensor_size(v.tensor)
    return (v.metadata if v.HasField("metadata") else None), tensor_util.make_ndarray(v.tensor)


# A tensor's shape is read from the file: a record of a hundred bytes may declare [6, 50 000 000]
# and hold one value, which TensorBoard's make_ndarray repeats to fill the shape. Values are
# decoded only when they fit MAX_TENSOR_VALUES, and filling is allowed only up to MAX_FILL values.
MAX_TENSOR_VALUES = 1 << 24
MAX_FILL = 4096
_VALUE_FIELDS = ("float_val", "double_val", "int_val", "int64_val", "bool_val", "half_val", "string_val",
                 "uint32_val", "uint64_val", "scomplex_val", "dcomplex_val")


def check_tensor_size(t) -> int:
    """The number of values TensorProto `t` declares; ValueError, naming the problem, when it
    declares more than MAX_TENSOR_VALUES or more than it holds beyond MAX_FILL (checked before
    anything of that size is allocated)."""
    n = 1
    for d in t.tensor_shape.dim:
        if d.size < 0:
            raise ValueError(f"tensor with a negative dimension {d.size}")
        n *= d.size
        if n > MAX_TENSOR_VALUES:
            raise ValueError(f"tensor of shape {[d.size for d in t.tensor_shape.dim]} declares more than "
                             f"{MAX_TENSOR_VALUES} values")
    if not t.tensor_content:
        held = max(len(getattr(t, f)) for f in _VALUE_FIELDS if hasattr(t, f))
        if n > held and n > MAX_FILL:
            raise ValueError(f"tensor of shape {[d.size for d in t.tensor_shape.dim]} declares {n} values "
                             f"and holds {held}")
    return n
