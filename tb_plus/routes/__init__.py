"""HTTP routes of the TB+ tab: thin werkzeug handlers over the store and the query layer.

Each module has `_impl` functions that take plain values and return data, and a route that
parses and validates the request, calls the `_impl`, and answers with columns as JSON. Bad
input raises TensorBoard's public errors (400/404), which TensorBoard turns into responses.
"""

import json
import math

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
