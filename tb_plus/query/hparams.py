"""Hyperparameters of runs, from TensorBoard's hparams data (tag `_hparams_/session_start_info`).

    hp = run_hparams(ld)        # {run: {name: value}}: float, str or bool

torch's and tensorboardX's `add_hparams` write the session start info into a sub-run `<run>/<timestamp>`;
TensorFlow's hparams API writes it into the run itself, and with Keras the TensorBoard callback then writes
the scalars into the sub-runs `<run>/train` and `<run>/validation`. A run's hparams are, the first winning:

1. its own values (written into the run itself);
2. its ancestors' own values, the nearest ancestor first (`a/b/c` inherits from `a/b`, then `a`, then the log
   directory's own run '.'; only runs that exist count): the Keras sub-runs get the hparams of their run;
3. its direct sub-runs' own values (the sub-run named like the run's directory plus one level), later
   sub-runs (natural order of their names, i.e. the newest timestamp) over earlier ones: add_hparams's
   `<run>/<timestamp>` gives its values to `<run>`. The log directory's own run '.' takes values only from
   sub-runs named by a bare timestamp (what add_hparams makes on a writer of the log directory itself).

Only own values are passed on, up or down: siblings never share values through their parent. The structure
(ancestors and sub-runs of each run) is computed once per list of runs, each run's own values read once per
call of run_hparams: the work is linear in the number of runs (times the depth of their names).
"""

from __future__ import annotations

import functools
import re

from tb_plus.query.tagtree import natural_key

__all__ = ["SESSION_START_TAG", "parse_session_start", "run_hparams", "hparams_of", "hparam_sources", "sub_runs"]

SESSION_START_TAG = "_hparams_/session_start_info"
# Read from files, sent in every /runs answer: a run's hparams are capped (the first names in
# sorted order), and so are a name's and a text value's lengths (a longer text is cut).
MAX_PER_RUN = 1000
MAX_NAME = 256
MAX_TEXT = 1000
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
    hparams = data.session_start_info.hparams
    for name in sorted(hparams)[:MAX_PER_RUN] if len(hparams) > MAX_PER_RUN else hparams:
        value = hparams[name]
        if len(name) > MAX_NAME:
            continue
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            out[name] = float(value.number_value)
        elif kind == "string_value":
            out[name] = value.string_value[:MAX_TEXT]
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


def ancestors(run: str, known) -> list:
    """The existing runs (in the set `known`) above `run`, nearest first: 'a/b' and 'a' for 'a/b/c',
    then the log directory's own run '.' for every other run."""
    out = []
    if run == ".":
        return out
    path = run
    while True:
        path, sep, _ = path.rpartition("/")
        if not sep:
            break
        if path in known:
            out.append(path)
    if "." in known:
        out.append(".")
    return out


class _Tree:
    """Sub-runs and ancestors of every run of one list of runs."""

    __slots__ = ("children", "ancestors")

    def __init__(self, runs):
        known = set(runs)
        children = {}
        for r in sorted(runs, key=natural_key):
            parent = parent_run(r)
            if parent is not None and parent != r:
                children.setdefault(parent, []).append(r)
        self.children = {k: tuple(v) for k, v in children.items()}
        self.ancestors = {r: tuple(ancestors(r, known)) for r in runs}


_LAST = None  # (the list object last asked about, its length, its _Tree): the same list asked again is O(1)


def _tree(runs) -> _Tree:
    """The _Tree of `runs`, computed once per list: diagnosing every run of a log directory passes the same
    list for each run, and that costs one identity check, not a walk over the list."""
    global _LAST
    last = _LAST
    if last is not None and last[0] is runs and last[1] == len(runs):
        return last[2]
    tree = _tree_of(tuple(runs))
    if isinstance(runs, list):
        _LAST = (runs, len(runs), tree)
    return tree


@functools.lru_cache(maxsize=8)
def _tree_of(runs: tuple) -> _Tree:
    return _Tree(runs)


def sub_runs(run: str, runs) -> list:
    """The direct sub-runs of `run` among `runs`, in natural order (the newest timestamp last)."""
    return list(_tree(runs).children.get(run, ()))


def hparam_sources(run: str, runs) -> list:
    """The runs whose own hparams make up `run`'s besides itself: its ancestors and its direct sub-runs."""
    t = _tree(runs)
    return list(t.ancestors.get(run, ())) + list(t.children.get(run, ()))


def _merge(run, own, tree) -> dict:
    """One run's hparams from the own values `own(r)` of the runs around it (see the module doc)."""
    hp = {}
    for r in tree.children.get(run, ()):
        hp.update(own(r))
    for r in reversed(tree.ancestors.get(run, ())):  # the farthest first: the nearest wins
        hp.update(own(r))
    hp.update(own(run))
    return hp


def hparams_of(ld, run: str, runs=None) -> dict:
    """One run's hparams as run_hparams gives them (reads only the runs it depends on)."""
    return _merge(run, lambda r: own_hparams(ld, r), _tree(ld.runs() if runs is None else runs))


def run_hparams(ld) -> dict:
    """{run: {name: value}} for every run of `ld` that has or inherits hparams (see the module doc)."""
    runs = ld.runs()
    own = {r: own_hparams(ld, r) for r in runs}
    tree = _tree(runs)
    out = {}
    for r in runs:
        hp = _merge(r, own.__getitem__, tree)
        if hp:
            out[r] = hp
    return out
