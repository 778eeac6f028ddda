"""Which log directories a request may open, and the directories open right now.

    roots = Roots(["/data/logs", "/home/me/runs"])
    real = roots.resolve(request.args.get("logdir"))   # raises Refused (400/403/404)
    ld = registry.get(real)                            # shared by every user; LRU within a memory budget

The boundary: a requested path must be a plain string (no NUL or control characters, no Windows
drive or backslash, at most 4096 characters); a relative path is taken relative to the first root;
'..' is taken on the path's text (os.path.normpath), then the path is resolved with every symlink
followed (os.path.realpath) and must then lie inside a root
(the roots resolved the same way). Anything outside gets 403, whether or not it exists, so the
answer never tells what exists outside the roots. Inside a root, a path that is not a directory
gets 404. A URL (s3://bucket/prefix, gs://..., through fsspec) is normalised (no '..', no empty or
'.' segments, no control characters) and must lie under a root URL: there are no symlinks to
follow, and whether anything exists there is not asked (that would cost a request).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import OrderedDict

log = logging.getLogger("tb_plus")

MAX_PATH = 4096
RESOLVE_TTL = 2.0  # seconds a resolved (or refused) path is remembered
_DRIVE = re.compile(r"^[A-Za-z]:")


class Refused(Exception):
    """A path the boundary refuses; `code` is the HTTP status (400, 403 or 404)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def inside(path: str, root: str) -> bool:
    """Whether the resolved `path` is `root` or below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Roots:
    def __init__(self, roots):
        from tb_plus.store.remote import is_url, normalise

        self.urls = [normalise(r) for r in roots if r and is_url(r)]  # s3://bucket/prefix, ...
        self.given = [os.path.abspath(os.path.expanduser(r)) for r in roots if r and not is_url(r)]
        self.real = [os.path.realpath(r) for r in self.given]
        self._resolved = {}  # raw path -> (monotonic time, resolved path or Refused)

    def __bool__(self):
        return bool(self.real or self.urls)

    def contains(self, real: str) -> bool:
        return any(inside(real, r) for r in self.real)

    def allows(self, real: str) -> bool:
        """Whether a resolved path or normalised URL lies inside these roots."""
        if "://" in real:
            return any(real == r or real.startswith(r + "/") for r in self.urls)
        return self.contains(real)

    def resolve(self, raw: str) -> str:
        """The resolved path of `raw` if the boundary lets it through; raises Refused. Answers are
        remembered for RESOLVE_TTL seconds (a symlink changed meanwhile is seen after that)."""
        now = time.monotonic()
        hit = self._resolved.get(raw)
        if hit is not None and now - hit[0] < RESOLVE_TTL:
            if isinstance(hit[1], Refused):
                raise hit[1]
            return hit[1]
        try:
            real = self._resolve(raw)
        except Refused as e:
            self._remember(raw, now, e)
            raise
        self._remember(raw, now, real)
        return real

    def _remember(self, raw, now, answer):
        if len(self._resolved) >= 1024:
            self._resolved.clear()
        self._resolved[raw] = (now, answer)

    def _resolve(self, raw: str, must_exist: bool = True) -> str:
        if not isinstance(raw, str) or raw.strip() == "":
            raise Refused(400, "empty log directory path")
        if len(raw) > MAX_PATH:
            raise Refused(400, f"log directory path longer than {MAX_PATH} characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in raw):
            raise Refused(400, f"control character in log directory path {raw[:200]!r}")
        if "\\" in raw or _DRIVE.match(raw):
            raise Refused(400, f"Windows-style log directory path {raw[:200]!r}: use / separators")
        from tb_plus.store.remote import is_url, normalise

        if is_url(raw):  # object storage: no symlinks; the normalised URL must lie under a URL root
            try:
                url = normalise(raw)
            except ValueError as e:
                raise Refused(400, f"bad log directory URL {raw[:200]!r}: {e}")
            if not any(url == r or url.startswith(r + "/") for r in self.urls):
                raise Refused(403, f"log directory {raw[:200]!r} is outside the allowed roots")
            return url
        if not self.real:
            raise Refused(403, "no log directory roots are allowed on this server")
        path = raw if os.path.isabs(raw) else os.path.join(self.given[0], raw)
        # '..' is taken on the path's text first (as in a URL): resolving it through the file system
        # would make the answer depend on whether a component outside the roots is a symlink.
        path = os.path.normpath(path)
        try:
            real = os.path.realpath(path)
        except (OSError, ValueError) as e:
            raise Refused(400, f"cannot resolve log directory path {raw[:200]!r}: {e}")
        if not self.contains(real):
            raise Refused(403, f"log directory {raw[:200]!r} is outside the allowed roots")
        if must_exist and not os.path.isdir(real):
            raise Refused(404, f"no log directory {raw[:200]!r}")
        return real

    def within(self, raw: str) -> str:
        """The resolved path (or normalised URL) of `raw` when it lies inside these roots, whether or
        not it exists yet; raises Refused."""
        return self._resolve(raw, must_exist=False)

    def complete(self, prefix: str, limit: int = 50) -> list:
        """Directories inside the roots whose path starts with `prefix` (for a picker): the
        subdirectories of the prefix's parent directory; the roots themselves for an empty prefix."""
        if not prefix:
            return list(self.given) + list(self.urls)
        if "://" in prefix:  # listing a bucket would cost requests: the URL roots only
            return [u for u in self.urls if u.startswith(prefix)][:limit]
        head, _, stem = prefix.rpartition("/")
        try:
            parent = self.resolve(head or "/")
        except Refused:
            return [r for r in self.given if r.startswith(prefix)][:limit]
        out = []
        try:
            names = sorted(os.listdir(parent))
        except OSError:
            return []
        for name in names:
            if not name.startswith(stem) or name.startswith(".tb_plus"):
                continue
            full = os.path.join(parent, name)
            real = os.path.realpath(full)
            if os.path.isdir(real) and self.contains(real):
                out.append((head or "") + "/" + name)
                if len(out) >= limit:
                    break
        return out


class Registry:
    """Open log directories shared by every request: one Logdir (and one indexing thread) per
    resolved path, least recently used closed first once their estimated memory exceeds
    `budget_bytes` or there are more than `max_open`, and any closed once no request asked for it
    in `idle_seconds` (the pinned default directory is never closed). A closed directory reopens
    from its persistent index on the next request."""

    def __init__(self, opener, budget_bytes: int, pinned=None, size_of=lambda ld: ld.memory_estimate(),
                 idle_seconds: float = 3600.0, max_open: int = 64, clock=time.monotonic):
        self._open = opener
        self.budget = int(budget_bytes)
        self.idle_seconds = float(idle_seconds)
        self.max_open = int(max_open)
        self._clock = clock
        self._used = {}  # path -> when a request last asked for it
        self._lds: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._size_of = size_of
        self.pinned = None
        if pinned is not None:
            real, ld = pinned
            self._lds[real] = ld
            self.pinned = real
        self.evictions = 0

    def get(self, real: str, confine=None):
        """The open Logdir of `real` confined to `confine` (resolved roots; a tuple), opened if needed.
        The pinned default directory answers for its path whatever the confinement."""
        key = real if real == self.pinned else (real, tuple(confine) if confine is not None else None)
        with self._lock:
            self._used[key] = self._clock()
            ld = self._lds.get(key)
            if ld is not None:
                self._lds.move_to_end(key)
                self._close_idle(keep=key)
                return ld
            ld = self._lds[key] = self._open(real) if confine is None else self._open(real, key[1])
            self._close_idle(keep=key)
            self._evict(keep=key)
            return ld

    def _close_idle(self, keep):
        """Closes the directories no request asked for in idle_seconds, and the least recently used
        beyond max_open (each holds an indexing thread and its index's mappings)."""
        now = self._clock()
        for key in list(self._lds):
            over = len(self._lds) > self.max_open
            if key in (keep, self.pinned) or not (over or now - self._used.get(key, now) > self.idle_seconds):
                continue
            self._lds.pop(key).stop_background(timeout=0)
            self._used.pop(key, None)
            self.evictions += 1
            log.info("tb_plus: closed log directory %s (%s)", _path_of(key), "too many open" if over else "idle")

    def paths(self) -> list:
        """The paths of the open directories (each once, least recently used first)."""
        with self._lock:
            return list(dict.fromkeys(_path_of(k) for k in self._lds))

    def _evict(self, keep):
        sizes = {k: self._size_of(ld) for k, ld in self._lds.items()}
        total = sum(sizes.values())
        for key in list(self._lds):
            if total <= self.budget:
                break
            if key in (keep, self.pinned):
                continue
            ld = self._lds.pop(key)
            self._used.pop(key, None)
            ld.stop_background(timeout=0)
            total -= sizes[key]
            self.evictions += 1
            log.info("tb_plus: closed log directory %s (memory budget %d bytes)", _path_of(key), self.budget)

    def close(self):
        with self._lock:
            for ld in self._lds.values():
                ld.stop_background(timeout=0)
            self._lds.clear()


def _path_of(key) -> str:
    return key[0] if isinstance(key, tuple) else key


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_name(header: str) -> str:
    """The name in a Host header, lowercased, without its port or IPv6 brackets ('' if malformed)."""
    h = (header or "").strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else ""
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


class Hosts:
    """The Host names tb_plus's routes answer (against DNS rebinding: a page of another site whose name
    is made to resolve to this server would otherwise be same-origin with it and read every answer).

    `allowed`: names (`*.example.com` matches its subdomains), or ["*"] for any; None: loopback names
    only when TensorBoard listens on loopback only (its default), any name when it listens beyond."""

    def __init__(self, allowed, listens_beyond_loopback: bool):
        if allowed is None:
            allowed = ["*"] if listens_beyond_loopback else list(LOOPBACK_NAMES)
        self.any = "*" in allowed
        self.names = {host_name(a) or a for a in allowed if not a.startswith("*.")}
        self.suffixes = tuple(a[1:].lower() for a in allowed if a.startswith("*."))

    def allows(self, header: str) -> bool:
        if self.any:
            return True
        name = host_name(header)
        if not name:
            return False
        return name in self.names or name.endswith(self.suffixes) or (
            "localhost" in self.names and name.endswith(".localhost"))

    def wrap(self, app):
        """A WSGI app answering 403 to a request whose Host is not allowed, else `app`'s answer."""
        if self.any:
            return app

        def checked(environ, start_response):
            header = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
            if self.allows(header):
                return app(environ, start_response)
            log.warning("tb_plus: refused Host %r from %s (allowed: --tb_plus_allowed_hosts)",
                        header[:200], environ.get("REMOTE_ADDR"))
            body = (f"Host {header[:200]!r} is not allowed; start TensorBoard with "
                    f"--tb_plus_allowed_hosts naming it\n").encode("utf-8", "replace")
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8"),
                                              ("Content-Length", str(len(body)))])
            return [body]

        return checked


MAX_USER = 256  # characters of a user or group name taken from a header
MAX_GROUPS = 256  # groups taken from one header
ACCESS_CHECK_SECONDS = 2.0  # how often the access file's modification time is looked at


class AccessFileError(ValueError):
    """The access file cannot be read or says something tb_plus cannot apply."""


class Grant:
    """What one request may do: the roots it may open (a Roots), whether it may upload, and who asked
    (`user` None: no identity, the default access)."""

    __slots__ = ("user", "groups", "roots", "upload", "everything")

    def __init__(self, user, groups, roots, upload, everything=False):
        self.user = user
        self.groups = groups
        self.roots = roots
        self.upload = upload
        self.everything = everything  # the server's own roots: no access file

    @property
    def who(self) -> str:
        return self.user if self.user is not None else "-"


def _header_name(value):
    """A user or group name from a header: printable, trimmed, at most MAX_USER characters (else None)."""
    value = (value or "").strip()
    if not value or len(value) > MAX_USER or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    return value


class Access:
    """Who may open which log directories, from a trusted reverse proxy's identity header and an
    access file (JSON):

        {"default": {"roots": ["/data/public"], "upload": false},
         "users":   {"alice@example.com": {"roots": ["/data/alice"], "upload": true}},
         "groups":  {"vision": {"roots": ["/data/vision", "/data/public"]}}}

    A request's access is the union of "default", its user's entry and its groups' entries; it may
    upload when one of them says "upload": true. "roots": ["*"] stands for all the server's roots.
    Every root must lie inside the server's roots (--tb_plus_roots, the upload directory). The
    identity is read only from the header a flag names (`user_header`, and `groups_header`: comma
    separated), so a client cannot claim one unless the operator says a proxy sets it. Without an
    access file every request has the server's roots and may upload (when uploads are on). The file
    is read again when it changes; a changed file that is not valid is logged and the last valid one
    kept."""

    def __init__(self, server_roots: Roots, path=None, user_header=None, groups_header=None, uploads=True,
                 clock=time.monotonic):
        self.server_roots = server_roots
        self.path = os.path.abspath(os.path.expanduser(path)) if path else None
        self.user_header = user_header or None
        self.groups_header = groups_header or None
        self.uploads = bool(uploads)
        self._clock = clock
        self._lock = threading.Lock()
        self._checked = clock()
        self._mtime = None
        self._rules = None
        self._roots = {}  # tuple of resolved roots -> Roots (keeps each one's resolve memo)
        self._everyone = Grant(None, (), server_roots, self.uploads, everything=True)
        if self.path:
            self._rules, self._mtime = self._load()  # raises AccessFileError at start-up

    def identity(self, headers):
        """(user or None, groups) from the request's headers, read only from the named headers."""
        if self.user_header is None:
            return None, ()
        user = _header_name(headers.get(self.user_header))
        groups = ()
        if user is not None and self.groups_header is not None:
            raw = headers.get(self.groups_header) or ""
            groups = tuple(g for g in (_header_name(x) for x in raw.split(",")[:MAX_GROUPS]) if g)
        return user, groups

    def grant(self, headers) -> Grant:
        user, groups = self.identity(headers)
        rules = self._current()
        if rules is None:
            if user is None:
                return self._everyone
            return Grant(user, groups, self.server_roots, self.uploads, everything=True)
        entries = [rules["default"]]
        if user is not None:
            entries.append(rules["users"].get(user))
            entries.extend(rules["groups"].get(g) for g in groups)
        entries = [e for e in entries if e]
        roots = tuple(dict.fromkeys(r for e in entries for r in e["roots"]))
        upload = self.uploads and any(e["upload"] for e in entries)
        return Grant(user, groups, self._roots_for(roots), upload)

    def _roots_for(self, roots: tuple) -> Roots:
        if "*" in roots:
            return self.server_roots
        with self._lock:
            r = self._roots.get(roots)
            if r is None:
                if len(self._roots) >= 1024:
                    self._roots.clear()
                r = self._roots[roots] = Roots(list(roots))
            return r

    def _current(self):
        if self.path is None:
            return None
        now = self._clock()
        if now - self._checked < ACCESS_CHECK_SECONDS:
            return self._rules
        with self._lock:
            if now - self._checked < ACCESS_CHECK_SECONDS:
                return self._rules
            self._checked = now
            try:
                mtime = os.stat(self.path).st_mtime_ns
            except OSError as e:
                log.error("tb_plus: cannot read the access file %s (%s); keeping the last one read", self.path, e)
                return self._rules
            if mtime != self._mtime:
                try:
                    self._rules, self._mtime = self._load()
                    self._roots.clear()
                    log.info("tb_plus: access file %s read again", self.path)
                except AccessFileError as e:
                    self._mtime = mtime  # not retried until it changes again
                    log.error("tb_plus: %s; keeping the last valid access file", e)
            return self._rules

    def _load(self):
        import json

        try:
            st = os.stat(self.path)
            if st.st_size > (8 << 20):
                raise AccessFileError(f"access file {self.path} is larger than 8 MiB")
            with open(self.path, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            if isinstance(e, AccessFileError):
                raise
            raise AccessFileError(f"cannot read the access file {self.path}: {e}") from None
        if not isinstance(data, dict):
            raise AccessFileError(f"access file {self.path}: expected a JSON object")
        extra = set(data) - {"default", "users", "groups"}
        if extra:
            raise AccessFileError(f"access file {self.path}: unknown keys {sorted(extra)} (default, users, groups)")
        rules = {"default": self._entry(data.get("default") or {"roots": []}, "default"), "users": {}, "groups": {}}
        for kind in ("users", "groups"):
            table = data.get(kind) or {}
            if not isinstance(table, dict):
                raise AccessFileError(f"access file {self.path}: {kind!r} must map names to entries")
            for name, entry in table.items():
                rules[kind][name] = self._entry(entry, f"{kind}[{name!r}]")
        return rules, st.st_mtime_ns

    def _entry(self, entry, where):
        if not isinstance(entry, dict) or set(entry) - {"roots", "upload"}:
            raise AccessFileError(f"access file {self.path}: {where} must be an object with 'roots' and 'upload'")
        roots = entry.get("roots", [])
        upload = entry.get("upload", False)
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots) or not isinstance(upload, bool):
            raise AccessFileError(f"access file {self.path}: {where}: 'roots' is a list of paths, 'upload' true or false")
        out = []
        for r in roots:
            if r == "*":
                out.append("*")
                continue
            if not (os.path.isabs(os.path.expanduser(r)) or "://" in r):
                raise AccessFileError(f"access file {self.path}: {where}: root {r!r} is not an absolute path")
            try:
                out.append(self.server_roots.within(os.path.expanduser(r)))
            except Refused as e:
                raise AccessFileError(f"access file {self.path}: {where}: root {r!r}: {e.message} "
                                      f"(the server's roots: {self.server_roots.given + self.server_roots.urls})")
        return {"roots": out, "upload": upload}
