"""Hyperparameters of runs, from TensorBoard's hparams data (tag `_hparams_/session_start_info`).

    hp = run_hparams(ld)        # {run: {name: value}}: float, str or bool

torch's and tensorboardX's `add_hparams` write the session start info into a sub-run `<run>/<timestamp>`;
TensorFlow's hparams API writes it into the run itself. A run inherits the hparams of its direct sub-runs
(the run named like the sub-run's parent directory): its own values win, then those of later sub-runs
(natural order of their names, i.e. the newest timestamp) over earlier ones. The log directory's own run '.'
inherits only from sub-runs named by a bare timestamp (what add_hparams makes on a writer of the log
directory itself). Sub-runs keep their own hparams too.
"""

from __future__ import annotations

import functools
import re

from tb_plus.query.tagtree import natural_key

__all__ = ["SESSION_START_TAG", "parse_session_start", "run_hparams"]

SESSION_START_TAG = "_hparams_/session_start_info"
_TIMESTAMP = re.compile(r"^\d+(\.\d+)?$")


def parse_session_start(content: bytes) -> dict:
    """{name: value} from the plugin_content of a session_start_info tag (HParamsPluginData).

    number_value -> float, string_value -> str, bool_value -> bool; other kinds (null, lists) are left
    out. Raises ValueError when the bytes are not HParamsPluginData."""
    from google.protobuf import message
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData()
    try:
        data.ParseFromString(content)
    except message.DecodeError as e:
        raise ValueError(f"not hparams plugin data: {e}") from None
    if data.WhichOneof("data") != "session_start_info":
        return {}
    out = {}
    for name, value in data.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            out[name] = float(value.number_value)
        elif kind == "string_value":
            out[name] = value.string_value
        elif kind == "bool_value":
            out[name] = bool(value.bool_value)
    return out


def own_hparams(ld, run: str) -> dict:
    """The hparams written into `run` itself ({} when none or unreadable)."""
    try:
        info = ld.tag_info(run, SESSION_START_TAG)
    except KeyError:
        return {}
    if info.plugin_name != "hparams":
        return {}
    try:
        return parse_session_start(info.plugin_content)
    except ValueError:
        return {}


def parent_run(run: str) -> str | None:
    """The run whose hparams `run` adds to: its parent directory's run; for a top-level run named
    by a bare timestamp (add_hparams on a writer of the log directory itself), the log directory's
    own run '.'; None for other top-level runs."""
    parent, sep, _ = run.rpartition("/")
    if sep:
        return parent
    return "." if _TIMESTAMP.match(run) else None


def sub_runs(run: str, runs) -> list:
    """The direct sub-runs of `run` among `runs`, in natural order (the newest timestamp last)."""
    return list(_children(tuple(runs)).get(run, ()))


@functools.lru_cache(maxsize=8)
def _children(runs: tuple) -> dict:
    """{run: its direct sub-runs in natural order} (computed once per list of runs: diagnosing every
    run of a log directory asks this once per run)."""
    out = {}
    for r in sorted(runs, key=natural_key):
        parent = parent_run(r)
        if parent is not None and parent != r:
            out.setdefault(parent, []).append(r)
    return {k: tuple(v) for k, v in out.items()}


def hparams_of(ld, run: str, runs=None) -> dict:
    """One run's hparams as run_hparams gives them: its own values over its direct sub-runs'."""
    hp = {}
    for r in sub_runs(run, ld.runs() if runs is None else runs):
        hp.update(own_hparams(ld, r))
    hp.update(own_hparams(ld, run))
    return hp


def run_hparams(ld) -> dict:
    """{run: {name: value}} for every run of `ld` that has or inherits hparams (see the module doc)."""
    runs = ld.runs()
    own = {r: own_hparams(ld, r) for r in runs}
    known = set(runs)
    inherited = {}
    for r in sorted(runs, key=natural_key):  # later sub-runs update over earlier ones
        hp = own[r]
        if not hp:
            continue
        parent = parent_run(r)
        if parent in known and parent != r:
            inherited.setdefault(parent, {}).update(hp)
    out = {}
    for r in runs:
        hp = dict(inherited.get(r, {}))
        hp.update(own[r])
        if hp:
            out[r] = hp
    return out
