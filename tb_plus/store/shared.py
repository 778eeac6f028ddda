"""An index shared through object storage, so that several tb_plus servers (behind any load
balancer, without a shared filesystem) index each event file once.

    Logdir("s3://bucket/logs", cache_dir="s3://bucket/tb_plus-index")
    tensorboard --logdir s3://bucket/logs --tb_plus_cache_dir s3://bucket/tb_plus-index

The cache dir is then a URL: each server keeps a local working copy (memory-mapped segments need
local files) under its default cache dir, and the bucket holds the published index, one folder per
event file, like the local layout: `<index url>/<logdir key>/files/<file key>/manifest.json` and
the segment files the manifest names.

- Publishing: a server that indexed a file uploads the segment files the bucket lacks, then the
  manifest, last, in one PUT. Segment files are immutable and their names carry the writer's id, so
  two servers indexing the same file at once never overwrite each other's segments; whichever
  manifest lands last wins, and both are complete. A writer that dies before its manifest leaves
  the previous manifest, and the segments it names, in place: the published index stays usable.
- Reusing: before indexing, a server lists the index once per refresh; a file with no local
  manifest, or one that is behind the event file while the bucket holds a newer manifest, is
  downloaded (manifest and the segments not already local) instead of being indexed: the second
  server reads no event byte.
- Segments a manifest no longer names (merged away) are left in the bucket: deleting them could
  pull them from under a server that has just downloaded the manifest naming them.
"""

from __future__ import annotations

import json
import os
import socket
import uuid

from tb_plus.store import indexer
from tb_plus.store.remote import Remote, _mtime_ns

PULLED = ".published"  # the version (size:mtime:ETag) of the bucket's manifest this local copy matches


class SharedIndex:
    def __init__(self, url: str, storage_options=None):
        self.remote = Remote(url, storage_options)
        host = "".join(ch for ch in socket.gethostname() if ch.isalnum())[:16] or "host"
        self.writer = f"{host}{os.getpid()}{uuid.uuid4().hex[:6]}"  # in segment names: unique per writer
        self._listing = {}

    @property
    def url(self) -> str:
        return self.remote.url

    def refresh_listing(self) -> dict:
        """{key: (size, mtime_ns, etag)} of the published index of this log directory (one listing)."""
        self._listing = self.remote.listing(force=True)
        return self._listing

    # ------------------------------------------------------------------ per file folder

    def _keys(self, folder_key):
        return f"{folder_key}/{indexer.MANIFEST}"

    def pull(self, folder_key: str, local: str, behind: bool) -> bool:
        """Makes `local` (a file's cache folder) the published copy when it has no manifest, or is
        `behind` the event file and the bucket's manifest changed since this server last saw it.
        Returns whether it did. The caller holds the folder's lock."""
        entry = self._listing.get(self._keys(folder_key))
        if entry is None:
            return False
        etag = _version(entry)
        has_local = os.path.exists(os.path.join(local, indexer.MANIFEST))
        if has_local and (not behind or _read(os.path.join(local, PULLED)) == etag):
            return False
        raw = self.remote.read(self.remote.url_of(self._keys(folder_key)), 0, entry[0])
        try:
            m = json.loads(raw)
        except ValueError:
            return False  # a damaged manifest in the bucket: index ourselves
        if m.get("version") != indexer.MANIFEST_VERSION:
            return False
        if has_local:
            mine = indexer.load_manifest(local)
            if mine is not None and mine.get("offset", 0) >= m.get("offset", 0):
                _write(os.path.join(local, PULLED), etag)
                return False  # ours is as far along
        os.makedirs(local, exist_ok=True)
        for seg in m.get("segments", []):
            name = seg[0]
            path = os.path.join(local, name)
            if os.path.exists(path):
                continue
            key = f"{folder_key}/{name}"
            size = self._listing.get(key, (None,))[0]
            if size is None:
                return False  # names a segment the bucket lacks: do not adopt it
            data = self.remote.read(self.remote.url_of(key), 0, size)
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        indexer.save_manifest(local, m)
        _write(os.path.join(local, PULLED), etag)
        return True

    def push(self, folder_key: str, local: str) -> None:
        """Publishes a file's cache folder: the segments the bucket lacks, then the manifest."""
        m = indexer.load_manifest(local)
        if m is None:
            return
        fs, root = self.remote.fs, self.remote.root
        for seg in m.get("segments", []):
            key = f"{folder_key}/{seg[0]}"
            if key in self._listing:
                continue
            with open(os.path.join(local, seg[0]), "rb") as f:
                data = f.read()
            self.remote._charge("put", 1)
            fs.pipe_file(f"{root}/{key}", data)
            self._listing[key] = (len(data), 0, "")
        body = json.dumps(m, separators=(",", ":")).encode("utf-8")
        self.remote._charge("put", 1)
        fs.pipe_file(f"{root}/{self._keys(folder_key)}", body)  # the publish: one PUT, last
        try:  # what the next listing will say of it, so this server does not download its own work
            self.remote._charge("head", 1)
            info = fs.info(f"{root}/{self._keys(folder_key)}")
            version = _version((int(info.get("size") or 0), _mtime_ns(info),
                                str(info.get("ETag") or info.get("etag") or "")))
        except (OSError, ValueError):
            version = ""
        _write(os.path.join(local, PULLED), version)


def _version(entry) -> str:
    """A published manifest's identity as listed: size, modification time and ETag (some stores
    have no ETag)."""
    return "%d:%d:%s" % tuple(entry)


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def _write(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
