"""HTTP routes of the TB+ tab: thin werkzeug handlers over the store and the query layer.

Each module has `_impl` functions that take plain values and return data, and a route that
parses and validates the request, calls the `_impl`, and answers with columns as JSON. Bad
input raises TensorBoard's public errors (400/404), which TensorBoard turns into responses.
"""

import gzip
import json
import math
import threading
from collections import OrderedDict

import numpy as np
from tensorboard import errors
from tensorboard.backend import http_util
from werkzeug import wrappers

_NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def column(a) -> list:
    """A numpy column as a JSON-ready list; non-finite floats become "NaN"/"Infinity"/"-Infinity"."""
    a = np.asarray(a)
    out = a.tolist()
    if a.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(a))
        for i in bad.tolist():
            x = out[i]
            out[i] = "NaN" if x != x else _NONFINITE[x]
    return out


def respond_json(request, obj, code=200, headers=None):
    body = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    return http_util.Respond(request, body, "application/json", code=code, headers=headers)


class BodyCache:
    """Encoded answers of read-only routes, least recently used out beyond `max_bytes`. A key must
    name every input of the answer: the route, the query string, and the versions of the runs it
    reads (Logdir.run_version), so an answer is never served after its data changed."""

    def __init__(self, max_bytes=64 << 20):
        self.max_bytes = max_bytes
        self._d = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            hit = self._d.get(key)
            if hit is not None:
                self._d.move_to_end(key)
            return hit

    def put(self, key, value):
        with self._lock:
            old = self._d.pop(key, None)
            if old is not None:
                self._bytes -= len(old[0])
            self._d[key] = value
            self._bytes += len(value[0])
            while self._bytes > self.max_bytes and len(self._d) > 1:
                _, (body, _) = self._d.popitem(last=False)
                self._bytes -= len(body)


BODIES = BodyCache()


def respond_cached(request, key, build, binary=False):
    """The answer `build()` returns (a JSON-able object, or bytes when binary), encoded (and
    gzipped, for JSON) once per key; key None: no caching."""
    hit = BODIES.get(key) if key is not None else None
    if hit is None:
        obj = build()
        if binary:
            hit = (obj, None)
        else:
            raw = json.dumps(obj, allow_nan=False, separators=(",", ":")).encode("utf-8")
            hit = (gzip.compress(raw, compresslevel=3, mtime=0), "gzip")
        if key is not None:
            BODIES.put(key, hit)
    body, encoding = hit
    content_type = "application/octet-stream" if binary else "application/json"
    return http_util.Respond(request, body, content_type, content_encoding=encoding)


def data_key(route, request, ld, runs):
    """A BodyCache key for `route` reading `runs` of `ld`, or None when a run is unknown (the
    answer is then an error, built each time)."""
    try:
        versions = tuple(ld.run_version(r) for r in runs)
    except KeyError:
        return None
    return (route, ld.path, request.query_string, versions)


def arg(request, name, default=None, *, required=False, type=str, choices=None):
    """One query argument, converted and checked; 400 names the bad input."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            raise errors.InvalidArgumentError(f"missing required parameter {name!r}")
        return default
    try:
        value = type(raw)
    except (TypeError, ValueError):
        raise errors.InvalidArgumentError(f"parameter {name!r} must be {type.__name__}, not {raw!r}")
    if type is float and not math.isfinite(value):
        raise errors.InvalidArgumentError(f"parameter {name!r} must be finite, not {raw!r}")
    if choices is not None and value not in choices:
        raise errors.InvalidArgumentError(f"parameter {name!r} must be one of {sorted(choices)}, not {raw!r}")
    return value


def flag(request, name, default=False) -> bool:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise errors.InvalidArgumentError(f"parameter {name!r} must be true or false, not {raw!r}")


def app(handler):
    """A werkzeug WSGI app calling handler(request)."""
    return wrappers.Request.application(handler)
