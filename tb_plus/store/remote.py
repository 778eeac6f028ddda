"""Log directories on object storage or other remote file systems, through fsspec (s3://, gs://,
hdfs://, memory://, ...). The fsspec implementation (s3fs, gcsfs, ...) is the user's: none is a
dependency of tb_plus, and credentials come from each backend's standard environment.

Reading a remote log directory costs requests, so the store makes few:
- one listing of the whole prefix per poll (`find`, which S3 pages by 1000 keys), never a walk
  level by level;
- an object that did not change (size and modification time as listed) costs nothing more;
- an object that grew costs one ranged read of its first bytes (to tell growth from replacement)
  and ranged reads of the new bytes only, 16 MiB each;
- polls are spaced by `poll_seconds`, and a request budget per hour caps what one directory may
  spend; `requests()` reports the counts.
"""

from __future__ import annotations

import collections
import math
import threading
import time

SCHEME_SEP = "://"


def is_url(path) -> bool:
    return isinstance(path, str) and SCHEME_SEP in path and not path.startswith("file://")


def normalise(url: str) -> str:
    """scheme://bucket/a/b without a trailing slash, '.' segments or empty segments; raises
    ValueError on '..' or control characters (a URL names exactly one place)."""
    if any(ord(ch) < 32 for ch in url) or "\\" in url:
        raise ValueError("a log directory URL may not hold control characters or backslashes")
    scheme, _, rest = url.partition(SCHEME_SEP)
    if not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
        raise ValueError(f"not a URL: {url!r}")
    parts = [p for p in rest.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"'..' is not allowed in a log directory URL: {url!r}")
    if not parts:
        raise ValueError(f"a log directory URL names a bucket or host: {url!r}")
    return f"{scheme.lower()}{SCHEME_SEP}{'/'.join(parts)}"


class BudgetExceeded(RuntimeError):
    pass


class Remote:
    """One remote log directory: its fsspec file system, listing, ranged reads, request counts."""

    def __init__(self, url: str, storage_options=None, poll_seconds: float = 0.0, budget_per_hour: int = 0):
        self.url = normalise(url)
        self.scheme = self.url.split(SCHEME_SEP)[0]
        self.storage_options = dict(storage_options or {})
        try:
            import fsspec

            self.fs, self.root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        except ImportError as e:
            raise ValueError(f"reading {self.scheme}:// log directories needs fsspec and its {self.scheme} "
                             f"implementation (pip install s3fs / gcsfs / ...): {e}") from None
        self.root = self.root.rstrip("/")
        self.poll_seconds = float(poll_seconds)
        self.budget = int(budget_per_hour)
        self.counts = collections.Counter()
        self._spent = collections.deque()  # (time, requests) of the last hour
        self._lock = threading.Lock()
        self._listing = None
        self._listed_at = None

    # ------------------------------------------------------------------ accounting

    def _charge(self, kind: str, n: int = 1, nbytes: int = 0):
        now = time.monotonic()
        with self._lock:
            while self._spent and now - self._spent[0][0] > 3600:
                self._spent.popleft()
            if self.budget and sum(k for _, k in self._spent) + n > self.budget:
                self.counts["refused"] += n
                raise BudgetExceeded(f"the request budget of {self.budget} per hour for {self.url} is spent")
            self._spent.append((now, n))
            self.counts[kind] += n
            self.counts["requests"] += n
            self.counts["bytes"] += nbytes

    def add_counts(self, counts: dict) -> None:
        """Adds the requests a worker process made for this directory (its own Remote) to its counts
        and to the hour's budget."""
        n = int(counts.get("requests", 0))
        with self._lock:
            if n:
                self._spent.append((time.monotonic(), n))
            for k, v in counts.items():
                if k != "refused":
                    self.counts[k] += int(v)

    def affordable(self, n: int) -> bool:
        """Whether n more requests fit in this hour's budget."""
        if not self.budget:
            return True
        now = time.monotonic()
        with self._lock:
            return sum(k for t, k in self._spent if now - t <= 3600) + n <= self.budget

    def requests(self) -> dict:
        """Requests made so far: requests (all), list, get, put, head, refused (over budget),
        deferred (polls or reads put off by the budget), bytes read."""
        with self._lock:
            return {k: int(self.counts.get(k, 0))
                    for k in ("requests", "list", "get", "put", "head", "refused", "deferred", "bytes")}

    # ------------------------------------------------------------------ listing and reading

    def key(self, path: str) -> str:
        """The path of an object relative to the log directory."""
        return path[len(self.root):].lstrip("/")

    def url_of(self, key: str) -> str:
        return f"{self.url}/{key}" if key else self.url

    def path_of(self, url: str) -> str:
        return self.root + url[len(self.url):]

    def listing(self, force: bool = False) -> dict:
        """{key: (size, mtime_ns, etag)} of every object under the log directory: one listing call
        (S3 answers up to 1000 keys per request), at most once per poll_seconds unless forced."""
        now = time.monotonic()
        if (not force and self._listing is not None and self._listed_at is not None
                and now - self._listed_at < self.poll_seconds):
            return self._listing
        if self._listing is not None and not self.affordable(1):
            self.counts["deferred"] += 1
            return self._listing  # over budget: the last listing stands until the budget allows
        self._charge("list", 1)
        self.fs.invalidate_cache(self.root)  # fsspec may cache listings: a poll must see what is there now
        found = self.fs.find(self.root, detail=True, withdirs=False)
        extra = max(0, math.ceil(len(found) / 1000) - 1) if self.scheme in ("s3", "s3a", "gs", "gcs") else 0
        if extra:
            self._charge("list", extra)
        out = {}
        for path, info in found.items():
            if info.get("type", "file") != "file":
                continue
            out[self.key(path)] = (int(info.get("size") or 0), _mtime_ns(info), str(info.get("ETag") or info.get("etag") or ""))
        self._listing, self._listed_at = out, now
        return out

    def last_listing(self):
        """The listing of the last poll (None before the first), without a request."""
        return self._listing

    def read(self, url: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of an object: one ranged read."""
        if end <= start:
            return b""
        self._charge("get", 1)
        data = self.fs.cat_file(self.path_of(url), start=start, end=end)
        with self._lock:
            self.counts["bytes"] += len(data)
        return data


def _mtime_ns(info: dict) -> int:
    for k in ("LastModified", "mtime", "updated", "last_modified", "created"):
        v = info.get(k)
        if v is None:
            continue
        if hasattr(v, "timestamp"):
            return int(v.timestamp() * 1e9)
        try:
            return int(float(v) * 1e9)
        except (TypeError, ValueError):
            try:
                import datetime

                return int(datetime.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp() * 1e9)
            except ValueError:
                continue
    return 0


class RemoteReader:
    """A read-only file object over a remote object, for the indexer: readinto() issues one ranged
    read of exactly the bytes asked for (the indexer asks 16 MiB at a time)."""

    def __init__(self, remote: Remote, url: str, size: int):
        self.remote, self.url, self.size, self.pos = remote, url, size, 0

    def seek(self, pos: int):
        self.pos = pos

    def readinto(self, mv) -> int:
        want = min(len(mv), self.size - self.pos)
        if want <= 0:
            return 0
        data = self.remote.read(self.url, self.pos, self.pos + want)
        mv[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, n: int) -> bytes:
        n = min(n, self.size - self.pos)
        data = self.remote.read(self.url, self.pos, self.pos + n) if n > 0 else b""
        self.pos += len(data)
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
