"""The key series of a log directory: what a first view charts before anyone chooses.

A tag is a key series when the diagnostics' tag roles (tb_plus/diagnostics/config.py) call it a loss,
an episode return, a metric (accuracy, AUC, F1, ...) or a learning rate, and it is not a per-layer
norm. They are ranked

    training losses < validation losses < episode returns < validation metrics < other metrics < rates

then by how many runs have them (more first), how deep they are nested (shallower first) and by
name, and at most `limit` are kept, at most two of one rank. A log directory without any key series
gets the tags most runs have instead (so a first view always has something to chart), marked
role "common".

The work is bounded whatever the log directory holds: at most MAX_SCANNED (run, tag) pairs are
looked at (`truncated` says when more exist), each distinct tag is classified once, and each tag's
run list is kept to MAX_RUNS names.
"""

from __future__ import annotations

import re

from tb_plus.query.tagtree import natural_key

__all__ = ["key_tags", "classify", "ROLES", "MAX_SCANNED", "MAX_RUNS"]

MAX_SCANNED = 500_000
MAX_RUNS = 500
MAX_DEPTH = 4  # tags nested deeper than this are per-layer or per-parameter series, not key ones
# (role, rank) in the order a first view shows them
ROLES = ("loss", "val_loss", "return", "val_metric", "metric", "lr", "common")
_PER_RANK = 2


def _patterns():
    from tb_plus.diagnostics.config import PATTERNS  # light: a dict of strings

    return {k: re.compile(v, re.IGNORECASE) for k, v in PATTERNS.items()}


_RE = None


def classify(tag: str):
    """The key role of `tag` ('loss', 'val_loss', 'return', 'val_metric', 'metric', 'lr') or None."""
    global _RE
    if _RE is None:
        _RE = _patterns()
    p = _RE
    if tag.count("/") >= MAX_DEPTH or len(tag) > 200:
        return None
    if p["grad_norm"].search(tag) or p["weight_norm"].search(tag):
        return None
    val = bool(p["validation"].search(tag))
    if p["loss"].search(tag):
        return "val_loss" if val else "loss"
    if p["rl_return"].search(tag):
        return "return"
    if p["metric"].search(tag):
        return "val_metric" if val else "metric"
    if p["lr"].search(tag):
        return "lr"
    return None


def key_tags(ld, limit: int = 6) -> dict:
    """{"tags": [{"tag", "role", "count", "runs"}], "truncated": bool} for `ld` (see the module doc),
    memoised until a run's tags change."""
    runs = ld.runs()
    version = tuple(ld.tags_version(r) for r in runs)
    return ld.memo(("keytags", limit), version, lambda: _build(ld, runs, limit))


def _build(ld, runs, limit):
    roles = {}
    have = {}  # tag -> runs having it (the first MAX_RUNS), for key tags
    counts = {}  # tag -> number of runs having it
    scanned = 0
    truncated = False
    for r in runs:
        try:
            tags = ld.tags(r)
        except KeyError:  # the run went away
            continue
        if scanned + len(tags) > MAX_SCANNED:
            tags = tags[: max(0, MAX_SCANNED - scanned)]
            truncated = True
        scanned += len(tags)
        for t in tags:
            counts[t] = counts.get(t, 0) + 1
            role = roles.get(t, 0)
            if role == 0:
                role = roles[t] = classify(t)
            if role is not None:
                lst = have.setdefault(t, [])
                if len(lst) < MAX_RUNS:
                    lst.append(r)
        if truncated:
            break
    rank = {role: i for i, role in enumerate(ROLES)}

    def order(t):
        return (-counts[t], t.count("/"), natural_key(t))

    keyed = sorted(have, key=lambda t: (rank[roles[t]],) + order(t))
    picked = []
    per = {}
    for t in keyed:
        role = roles[t]
        if per.get(role, 0) >= _PER_RANK:
            continue
        per[role] = per.get(role, 0) + 1
        picked.append({"tag": t, "role": role, "count": counts[t], "runs": have[t]})
        if len(picked) >= limit:
            break
    if not picked and counts:
        common = sorted(counts, key=order)[: min(limit, 4)]
        wanted = set(common)
        lists = {t: [] for t in common}
        for r in runs:
            for t in ld.tags(r) if len(wanted) else ():
                if t in wanted and len(lists[t]) < MAX_RUNS:
                    lists[t].append(r)
        picked = [{"tag": t, "role": "common", "count": counts[t], "runs": lists[t]} for t in common]
    return {"tags": picked, "truncated": truncated}
