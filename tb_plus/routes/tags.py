"""/tags: the scalar tags of some runs as a lazily expanded tree, a search, or a group's tag list.

Three modes, by parameters (see http_api.md): one level of the tree (`parent`), a search
(`filter`, `mode`), or the tags under a group, paged (`under`). The tree is built from the index
only, once per tag set (runs, separator), and kept until a run's tags change.
"""

from tensorboard import errors

from tb_plus.query.tagtree import MODES, TagTree, compile_filter, natural_key
from tb_plus.routes import app, arg, flag, respond_json

__all__ = ["natural_key", "tag_tree", "tags_impl", "route"]

MAX_LIMIT = 10000
DEFAULT_SEP = "/"
TREE_HEADER = "X-TB-Plus-Tag-Tree"


def check_sep(sep: str) -> str:
    if not 1 <= len(sep) <= 4 or any(c.isalnum() or c.isspace() for c in sep):
        raise errors.InvalidArgumentError(
            f"parameter 'sep' must be 1 to 4 separator characters (no letters, digits or spaces), not {sep!r}"
        )
    return sep


def tag_tree(ld, runs=None, sep=DEFAULT_SEP, built=None) -> TagTree:
    """The TagTree of the scalar tags of `runs` (default: every run), from the store's cache.
    `built`: a list that gets an item when the tree had to be built (not found in memory)."""
    every = runs is None
    if every:
        runs = ld.runs()
    else:
        known = set(ld.runs())
        for r in runs:
            if r not in known:
                raise errors.NotFoundError(f"no run {r!r}")
        runs = sorted(set(runs))
    version = tuple(ld.tags_version(r) for r in runs)

    def build():
        if built is not None:
            built.append(True)
        counts = {}
        for r in runs:
            for t in ld.tags(r):
                counts[t] = counts.get(t, 0) + 1
        return TagTree(counts, sep)

    # The tree of every run with the default separator is what every user's first view asks for.
    return ld.memo(("tagtree", None if every else tuple(runs), sep), version, build,
                   pin=every and sep == DEFAULT_SEP)


def _paging(request):
    """(offset, limit or None) from the request, checked."""
    limit = arg(request, "limit", None, type=int)
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise errors.InvalidArgumentError(f"parameter 'limit' must be 1 to {MAX_LIMIT}, not {limit}")
    offset = arg(request, "offset", 0, type=int)
    if offset < 0:
        raise errors.InvalidArgumentError(f"parameter 'offset' must be >= 0, not {offset}")
    return offset, limit


def tags_impl(ld, runs=None, *, sep=DEFAULT_SEP, parent="", pattern=None, mode="substring",
              under=None, offset=0, limit=None, built=None):
    """The body of /tags for one of its three modes (see the module doc); `built`: see tag_tree."""
    tree = tag_tree(ld, runs, sep, built)
    match = None
    if pattern:
        try:
            match = compile_filter(pattern, mode)
        except ValueError as e:
            raise errors.InvalidArgumentError(str(e))
    if under is not None:
        try:
            body = tree.under(under, offset, limit or 50, match)
        except KeyError:
            raise errors.NotFoundError(f"no tag or group {under!r}")
        return {"under": under, "sep": sep, "offset": offset, **body}
    if match is not None:
        return {"total": len(tree), "sep": sep, **tree.search(match, limit or 1000)}
    try:
        level = tree.children(parent, offset, limit or 2000)
    except KeyError:
        raise errors.NotFoundError(f"no group {parent!r}")
    return {"count": len(tree), "sep": sep, "parent": parent, "offset": offset, **level}


def route(plugin):
    def handler(request):
        ld = plugin.logdir_for(request)
        mode = arg(request, "mode", None, choices=MODES)
        if mode is None:
            mode = "regex" if flag(request, "regex") else "substring"
        offset, limit = _paging(request)
        built = []
        body = tags_impl(
            ld,
            request.args.getlist("run") or None,
            sep=check_sep(request.args.get("sep") or DEFAULT_SEP),
            parent=request.args.get("parent", ""),
            pattern=arg(request, "filter"),
            mode=mode,
            under=request.args.get("under"),
            offset=offset,
            limit=limit,
            built=built,
        )
        # whether the tree was built for this request or found in memory (the default tree should be)
        return respond_json(request, body, headers=[(TREE_HEADER, "built" if built else "memory")])

    return app(handler)


MAX_KEY_TAGS = 12


def keytags_route(plugin):
    """/keytags: the key series a first view charts (tb_plus/query/keytags.py)."""

    def handler(request):
        from tb_plus.query.keytags import key_tags

        ld = plugin.logdir_for(request)
        limit = arg(request, "limit", 6, type=int)
        if not 1 <= limit <= MAX_KEY_TAGS:
            raise errors.InvalidArgumentError(f"parameter 'limit' must be 1 to {MAX_KEY_TAGS}, not {limit}")
        return respond_json(request, key_tags(ld, limit))

    return app(handler)
