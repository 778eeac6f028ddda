"""Uploads: event files, or a .zip / .tar.gz of a run folder, into a new run of the upload directory.

    info = receive(stream, filename="run.tar.gz", run="my run", upload_dir=d, limits=Limits())

Everything is staged in `<upload_dir>/.tb_plus_incoming/<random>/` (which the store never lists as a
run), checked, and only then renamed into `<upload_dir>/<run>` in one step, so an interrupted or
refused upload never shows up as a run and nothing is written outside the upload directory.
Checks: the request body is capped while it streams (the declared length is not trusted) and a
body that stops arriving for `idle_seconds` is dropped; archive members must be relative paths
without `..`, backslashes, drive letters or NUL, and regular files (no links or devices), at most
`max_members` of them of any kind (a zip's count is read from its end record before its directory
is parsed); only event files are unpacked, at most `max_files` of them. Bytes decompressed count
against the unpack cap from the first byte, the members walked past included (a compressed tar
decompresses them to skip them): the cap is `max_unpacked`, and at most `max_ratio` times the
upload's size (at least `min_unpacked`), so a compression bomb stops at once. Unpacking and checking
may take `max_seconds` of CPU. Every event file must be complete TFRecord framing with valid CRCs
whose first record is an Event file-version record. Any damage to an archive is a 400, the caps
413. With a quota, an upload that would take the upload directory beyond it is refused (the
policy is refuse, never delete). Run names are reduced to [A-Za-z0-9._=,+-] and never replace an
existing run (a suffix -2, -3, ... is added).
"""

from __future__ import annotations

import dataclasses
import lzma
import os
import re
import shutil
import stat
import struct
import tarfile
import tempfile
import time
import uuid
import zipfile
import zlib

from tb_plus.store.logdir import INCOMING, is_event_file
from tb_plus.store.scan import masked_crc

_CHUNK = 1 << 20
_BAD_CHARS = re.compile(r"[^A-Za-z0-9._=,+-]")


class UploadError(Exception):
    """A refused upload; `code` is the HTTP status (400 or 413)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class Limits:
    max_bytes: int = 512 << 20  # the request body
    max_unpacked: int = 2 << 30  # bytes unpacked from an archive, in all
    max_files: int = 1000  # event files in one upload
    max_members: int = 10000  # archive members of any kind
    max_ratio: int = 200  # bytes unpacked per byte uploaded (event files compress a few times)
    min_unpacked: int = 64 << 20  # ... but this much is always allowed
    max_seconds: float = 120.0  # CPU seconds to unpack and check one upload
    quota_bytes: int = 0  # the upload directory's total size (0: no quota)


# What a damaged archive raises from the standard library's readers: every one is a 400.
_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, OSError,
                   RuntimeError, NotImplementedError, ValueError, KeyError, struct.error, OverflowError)


def sanitise_run_name(name: str) -> str:
    """A run name safe as one directory name: no separators, no leading dots, at most 100 characters."""
    name = _BAD_CHARS.sub("_", (name or "").strip())[:100].lstrip(".")
    return name or "upload"


def validate_event_file(path: str, shown: str | None = None, budget=None) -> int:
    """Checks framing and every CRC; returns the number of records. Raises UploadError naming the
    file as `shown` (default: its base name); `budget` (a _Budget) bounds the CPU time."""
    size = os.path.getsize(path)
    label = shown or os.path.basename(path)
    n = 0
    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            head = f.read(12)
            if len(head) < 12:
                raise UploadError(400, f"{label}: truncated record header at byte {pos}")
            (length,) = struct.unpack("<Q", head[:8])
            if struct.unpack("<I", head[8:])[0] != masked_crc(head[:8]):
                raise UploadError(400, f"{label}: not a TFRecord event file (bad length CRC at byte {pos})")
            if length > size - pos - 16:
                raise UploadError(400, f"{label}: truncated record at byte {pos}")
            data = f.read(length)
            crc = f.read(4)
            if struct.unpack("<I", crc)[0] != masked_crc(data):
                raise UploadError(400, f"{label}: bad data CRC in the record at byte {pos}")
            if n == 0:
                from tensorboard.compat.proto import event_pb2

                try:
                    ev = event_pb2.Event.FromString(data)
                except Exception:
                    raise UploadError(400, f"{label}: the first record is not an Event")
                if not ev.file_version.startswith("brain.Event"):
                    raise UploadError(400, f"{label}: the first record is not a file-version Event")
            n += 1
            pos += 16 + length
            if budget is not None and n % 4096 == 0:
                budget.tick()
    if n == 0:
        raise UploadError(400, f"{label}: empty file")
    return n


def _safe_parts(name: str) -> list:
    """The path components of an archive member, or UploadError when the name is hostile."""
    if "\0" in name or "\\" in name or re.match(r"^[A-Za-z]:", name) or name.startswith("/"):
        raise UploadError(400, f"archive member {name[:200]!r}: absolute, Windows-style or NUL path refused")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UploadError(400, f"archive member {name[:200]!r}: '..' refused")
    return [sanitise_run_name(p) for p in parts]


class _Budget:
    """What one upload may cost: bytes unpacked (`cap`), event files, members and CPU seconds."""

    def __init__(self, limits: Limits, uploaded: int = 0):
        self.limits = limits
        self.cap = min(limits.max_unpacked, max(limits.min_unpacked, limits.max_ratio * uploaded))
        self.bytes = 0
        self.files = 0
        self.members = 0
        self._cpu0 = time.thread_time()

    def tick(self):
        """Raises 413 once the upload has used its CPU seconds (called every few records or chunks)."""
        if time.thread_time() - self._cpu0 > self.limits.max_seconds:
            raise UploadError(413, f"the upload took more than {self.limits.max_seconds:g} s of CPU to unpack and check")

    def member(self, name):
        self.members += 1
        if self.members > self.limits.max_members:
            raise UploadError(413, f"more than {self.limits.max_members} members in the archive")
        if self.members % 256 == 0:
            self.tick()

    def add(self, n):
        self.bytes += n
        if self.bytes > self.cap:
            raise UploadError(413, f"the archive unpacks to more than {self.cap} bytes")

    def copy(self, src, dst_path):
        self.files += 1
        if self.files > self.limits.max_files:
            raise UploadError(413, f"more than {self.limits.max_files} event files in one upload")
        try:
            out = open(dst_path, "xb")
        except FileExistsError:
            raise UploadError(400, f"two archive members unpack to {os.path.basename(dst_path)!r}")
        with out:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                self.add(len(chunk))
                self.tick()
                out.write(chunk)


def _place(out: str, parts: list) -> str:
    dst = os.path.join(out, *parts)
    if not os.path.realpath(dst).startswith(os.path.realpath(out) + os.sep):
        raise UploadError(400, f"archive member {'/'.join(parts)!r} leaves the run folder")
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    return dst


def _strip_top(names: list) -> int:
    """1 when every member sits under one top folder (the run folder itself), else 0."""
    tops = {n[0] for n in names if len(n) > 1}
    return 1 if len(tops) == 1 and all(len(n) > 1 for n in names) else 0


def zip_entries(path) -> int | None:
    """The number of entries a zip's end record declares (zip64 too), read before its central
    directory is parsed; None when there is no end record."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - (22 + 65535)))
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        (entries,) = struct.unpack_from("<H", tail, at + 10)
        if entries != 0xFFFF or at < 20 or tail[at - 20:at - 16] != b"PK\x06\x07":
            return entries
        (z64,) = struct.unpack_from("<Q", tail, at - 20 + 8)  # the zip64 end record's offset
        if z64 > size - 56:
            return None
        f.seek(z64)
        rec = f.read(56)
        if rec[:4] != b"PK\x06\x06":
            return None
        return struct.unpack_from("<Q", rec, 32)[0]


def _unzip(path, out, budget):
    declared = zip_entries(path)
    if declared is not None and declared > budget.limits.max_members:
        raise UploadError(413, f"the archive declares {declared} members; at most {budget.limits.max_members} are accepted")
    try:
        zf = zipfile.ZipFile(path)
    except _ARCHIVE_ERRORS as e:
        raise UploadError(400, f"not a valid .zip archive: {e}")
    try:
        with zf:
            _unzip_members(zf, out, budget)
    except _ARCHIVE_ERRORS as e:
        raise UploadError(400, f"damaged archive: {type(e).__name__}: {str(e)[:300]}")


def _unzip_members(zf, out, budget):
    members = []
    for info in zf.infolist():
        budget.member(info.filename)
        parts = _safe_parts(info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver stored no file type
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise UploadError(400, f"archive member {info.filename[:200]!r}: links and devices refused")
        if info.is_dir() or not parts or not is_event_file(parts[-1]):
            continue
        if info.flag_bits & 0x1:
            raise UploadError(400, f"archive member {info.filename[:200]!r} is encrypted")
        members.append((info, parts))
    cut = _strip_top([p for _, p in members])
    for info, parts in members:
        with zf.open(info) as src:
            budget.copy(src, _place(out, parts[cut:]))


def _untar(path, out, budget):
    try:
        tf = tarfile.open(path, "r:*")
    except _ARCHIVE_ERRORS as e:
        raise UploadError(400, f"not a valid .tar.gz archive: {e}")
    with tf:
        members = []
        try:
            for m in tf:
                budget.member(m.name)
                tf.members = []  # TarFile keeps every member it walked past: keep only ours
                budget.add(512)  # the header
                parts = _safe_parts(m.name)
                if m.issym() or m.islnk() or m.isdev() or m.isfifo():
                    raise UploadError(400, f"archive member {m.name[:200]!r}: links and devices refused")
                if m.isfile() and parts and is_event_file(parts[-1]):
                    members.append((m, parts))
                else:
                    budget.add(max(m.size, 0))  # the next step decompresses it to walk past it
            cut = _strip_top([p for _, p in members])
            for m, parts in members:
                src = tf.extractfile(m)
                with src:
                    budget.copy(src, _place(out, parts[cut:]))
        except _ARCHIVE_ERRORS as e:
            raise UploadError(400, f"damaged archive: {type(e).__name__}: {str(e)[:300]}")


def _receive_body(stream, dst, limits, content_length):
    if content_length is not None and content_length > limits.max_bytes:
        raise UploadError(413, f"upload of {content_length} bytes is over the limit of {limits.max_bytes}")
    n = 0
    with open(dst, "xb") as out:
        while True:
            try:
                chunk = stream.read(_CHUNK)
            except (TimeoutError, OSError) as e:  # socket.timeout is TimeoutError
                raise UploadError(408, f"upload stalled: no data arrived for a while after {n} bytes ({e})")
            if not chunk:
                break
            n += len(chunk)
            if n > limits.max_bytes:
                raise UploadError(413, f"upload over the limit of {limits.max_bytes} bytes")
            out.write(chunk)
    if content_length is not None and n < content_length:
        raise UploadError(400, f"upload interrupted: {n} of {content_length} bytes arrived")
    if n == 0:
        raise UploadError(400, "empty upload")
    return n


def receive(stream, *, filename: str, run: str, upload_dir: str, limits: Limits = Limits(),
            content_length=None) -> dict:
    """Stages, checks and publishes one upload; returns {"run", "files", "records", "bytes"}."""
    incoming = os.path.join(upload_dir, INCOMING)
    os.makedirs(incoming, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="up-", dir=incoming)
    try:
        raw = os.path.join(staging, "body")
        size = _receive_body(stream, raw, limits, content_length)
        out = os.path.join(staging, "run")
        os.mkdir(out)
        with open(raw, "rb") as f:
            magic = f.read(4)
        base = os.path.basename((filename or "").replace("\\", "/"))
        budget = _Budget(limits, size)
        shown = {}  # unpacked path -> the name to show in messages
        if magic.startswith(b"PK\x03\x04") or base.endswith(".zip"):
            _unzip(raw, out, budget)
        elif magic.startswith(b"\x1f\x8b") or base.endswith((".tar.gz", ".tgz", ".tar")):
            _untar(raw, out, budget)
        else:
            name = sanitise_run_name(base)
            if not is_event_file(name):
                name = f"events.out.tfevents.{int(time.time())}.upload"
            os.replace(raw, os.path.join(out, name))
            shown = {os.path.join(out, name): base or "the uploaded file"}
        files = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs]
        if not files:
            raise UploadError(400, "no event files (names containing 'tfevents') in the archive")
        records = sum(validate_event_file(p, shown.get(p), budget) for p in files)
        if limits.quota_bytes:
            new = sum(os.path.getsize(p) for p in files)
            used = directory_bytes(upload_dir)
            if used + new > limits.quota_bytes:
                raise UploadError(413, f"the upload directory holds {used} bytes of its quota of {limits.quota_bytes}; "
                                       f"this upload ({new} bytes) would exceed it (--tb_plus_upload_quota_mb)")
        name = sanitise_run_name(run or os.path.splitext(base)[0])
        final = _publish(out, upload_dir, name)
        return {"run": final, "files": len(files), "records": records, "bytes": size}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def directory_bytes(upload_dir: str) -> int:
    """Bytes of the files under the upload directory, the staging area left out; links not followed."""
    total = 0
    for d, dirs, files in os.walk(upload_dir):
        if d == upload_dir:
            dirs[:] = [x for x in dirs if x != INCOMING]
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_size
            except OSError:
                pass
    return total


def _publish(out: str, upload_dir: str, name: str) -> str:
    """Renames the checked run folder into place under a name nobody has; returns that name."""
    for i in range(1, 1000):
        candidate = name if i == 1 else f"{name}-{i}"
        dst = os.path.join(upload_dir, candidate)
        try:
            os.mkdir(dst)  # claims the name: fails if anything has it (an empty folder is no run)
        except FileExistsError:
            continue
        os.rename(out, dst)  # atomic: replaces the empty folder claimed just now
        return candidate
    return _publish(out, upload_dir, f"{name}-{uuid.uuid4().hex[:8]}")
