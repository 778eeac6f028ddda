"""/tags: the scalar tags of some runs as a tree nested on '/', with counts, filtered."""

import re

from tensorboard import errors

from tb_plus.routes import app, arg, flag, respond_json

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str):
    """layer2 < layer10: digit runs compare as numbers."""
    return [(0, int(p), p) if p.isdigit() else (1, 0, p.lower()) for p in _DIGITS.split(name) if p != ""]


def build_tree(tag_runs: dict) -> dict:
    """{tag: [runs]} -> nested nodes {name, path, count, children[, runs]} on '/'; a node's
    count is the number of tags at or below it; children in natural order."""
    root = {"name": "", "path": "", "count": 0, "children": {}}
    for tag, runs in tag_runs.items():
        node = root
        node["count"] += 1
        parts = tag.split("/")
        for i, part in enumerate(parts):
            child = node["children"].get(part)
            if child is None:
                child = node["children"][part] = {
                    "name": part, "path": "/".join(parts[: i + 1]), "count": 0, "children": {}
                }
            child["count"] += 1
            node = child
        node["runs"] = sorted(runs)

    def finish(node):
        kids = sorted(node["children"].values(), key=lambda n: natural_key(n["name"]))
        node["children"] = [finish(k) for k in kids]
        return node

    return finish(root)


def tags_impl(ld, runs=None, pattern=None, regex=False):
    if runs:
        known = set(ld.runs())
        for r in runs:
            if r not in known:
                raise errors.NotFoundError(f"no run {r!r}")
    else:
        runs = ld.runs()
    if pattern and regex:
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise errors.InvalidArgumentError(f"filter {pattern!r} is not a valid regular expression: {e}")
        keep = rx.search
    elif pattern:
        low = pattern.lower()
        keep = lambda t: low in t.lower()  # noqa: E731
    else:
        keep = None
    tag_runs = {}
    for r in runs:
        for t in ld.tags(r):
            if keep is None or keep(t):
                tag_runs.setdefault(t, []).append(r)
    return {"count": len(tag_runs), "tree": build_tree(tag_runs)}


def route(plugin):
    def handler(request):
        ld = plugin.require_logdir()
        runs = request.args.getlist("run") or None
        return respond_json(
            request, tags_impl(ld, runs, arg(request, "filter"), flag(request, "regex"))
        )

    return app(handler)
