"""TagTree: nesting on separators, natural order, counts, search spans, group lists."""

import random

import pytest

from tb_plus.query.tagtree import TagTree, compile_filter, natural_key


def rows(level):
    kids = level["children"]
    return [dict(zip(kids, r)) for r in zip(*kids.values())]


def test_natural_order_numbers_compare_as_numbers():
    names = ["layer10", "layer2", "Layer1", "layer1b", "layer1", "a", "layer02x"]
    assert sorted(names, key=natural_key) == ["a", "Layer1", "layer1", "layer1b", "layer02x", "layer2", "layer10"]


def test_children_are_in_natural_order_at_every_level():
    tags = [f"model/layer{i}/w" for i in (10, 2, 1, 33, 3)] + ["model/layer2/b"]
    random.Random(0).shuffle(tags)
    tree = TagTree({t: 1 for t in tags})
    assert [r["name"] for r in rows(tree.children("model"))] == ["layer1", "layer2", "layer3", "layer10", "layer33"]
    assert [r["name"] for r in rows(tree.children("model/layer2"))] == ["b", "w"]
    assert tree.under("model")["tags"] == [
        "model/layer1/w", "model/layer2/b", "model/layer2/w", "model/layer3/w", "model/layer10/w", "model/layer33/w"
    ]


def test_counts_runs_and_a_tag_that_is_also_a_group():
    tree = TagTree({"a": 3, "a/b": 1, "a/c/d": 2, "e": 1})
    top = rows(tree.children(""))
    assert [(r["name"], r["count"], r["group"], r["tag"], r["runs"]) for r in top] == [
        ("a", 3, True, True, 3), ("e", 1, False, True, 1)
    ]
    assert tree.under("a")["tags"] == ["a", "a/b", "a/c/d"]  # the group's own tag first
    assert tree.under("a/c/d")["tags"] == ["a/c/d"]
    with pytest.raises(KeyError):
        tree.children("e")  # a tag, not a group
    with pytest.raises(KeyError):
        tree.children("nope")


@pytest.mark.parametrize(
    "sep, top, deep",
    [
        ("/", ["enc.layer1", "enc.layer2"], ("enc.layer1", ["attn.k", "attn.q"])),
        (".", ["enc"], ("enc", ["layer1/attn", "layer2/mlp"])),
        ("/.", ["enc"], ("enc.layer1/attn", ["k", "q"])),
    ],
)
def test_separators(sep, top, deep):
    tree = TagTree({t: 1 for t in ["enc.layer1/attn.q", "enc.layer1/attn.k", "enc.layer2/mlp"]}, sep)
    assert [r["name"] for r in rows(tree.children(""))] == top
    path, names = deep
    assert [r["name"] for r in rows(tree.children(path))] == names


def test_paths_are_prefixes_of_the_tags():
    tree = TagTree({"x.y/z": 1}, "/.")
    assert [r["path"] for r in rows(tree.children(""))] == ["x"]
    assert [r["path"] for r in rows(tree.children("x"))] == ["x.y"]
    assert [r["path"] for r in rows(tree.children("x.y"))] == ["x.y/z"]


def test_paging_of_a_wide_level():
    tree = TagTree({f"g/t{i}": 1 for i in range(5000)})
    first = tree.children("g", 0, 100)
    assert first["total_children"] == 5000 and len(first["children"]["name"]) == 100
    assert tree.children("g", 4990, 100)["children"]["name"] == [f"t{i}" for i in range(4990, 5000)]
    page = tree.under("g", 200, 50)
    assert page["total"] == 5000 and page["tags"] == [f"g/t{i}" for i in range(200, 250)]


def test_search_modes_spans_and_group_counts():
    tags = [f"layers/block{i}/{p}/grad_norm" for i in range(20) for p in ("attn", "mlp")] + ["train/loss"]
    tree = TagTree({t: 1 for t in tags})
    found = tree.search(compile_filter(r"block1[0-9]/attn", "regex"))
    assert found["count"] == 10 and not found["truncated"]
    assert found["matches"]["tag"][:2] == ["layers/block10/attn/grad_norm", "layers/block11/attn/grad_norm"]
    t0, s0, e0 = found["matches"]["tag"][0], found["matches"]["start"][0], found["matches"]["end"][0]
    assert t0[s0:e0] == "block10/attn"
    groups = dict(zip(found["groups"]["path"], found["groups"]["count"]))
    assert groups["layers"] == 10 and groups["layers/block10"] == 1 and groups["layers/block10/attn"] == 1
    assert "layers/block10/mlp" not in groups and "train" not in groups
    assert found["groups"]["path"][0] == "layers"  # parents before children

    sub = tree.search(compile_filter("GRAD", "substring"))
    assert sub["count"] == 40 and sub["matches"]["start"][0] == sub["matches"]["tag"][0].index("grad")
    glob = tree.search(compile_filter("layers/block?/mlp/*", "glob"))
    assert glob["count"] == 10
    assert tree.search(compile_filter("block1", "glob"))["count"] == 0  # a glob matches whole tags
    # one case rule for the three modes: case-insensitive
    assert tree.search(compile_filter("Layers/Block1[01]", "regex"))["count"] == tree.search(compile_filter("layers/block1[01]", "regex"))["count"] > 0
    assert tree.search(compile_filter("LAYERS/block?/MLP/*", "glob"))["count"] == 10


def test_search_limit_keeps_counts_over_every_match():
    tree = TagTree({f"g{i % 3}/t{i}": 1 for i in range(3000)})
    found = tree.search(compile_filter("t", "substring"), limit=10)
    assert found["count"] == 3000 and found["truncated"] and len(found["matches"]["tag"]) == 10
    assert dict(zip(found["groups"]["path"], found["groups"]["count"])) == {"g0": 1000}  # groups of shown matches


def test_group_list_with_a_filter():
    tree = TagTree({f"layers/{i}/{k}": 1 for i in range(30) for k in ("w", "b")})
    page = tree.under("layers", 0, 5, compile_filter("*/b", "glob"))
    assert page["total"] == 30 and page["tags"] == [f"layers/{i}/b" for i in range(5)]


def test_invalid_filters_are_errors():
    with pytest.raises(ValueError, match="not a valid regular expression"):
        compile_filter("(", "regex")
    with pytest.raises(ValueError, match="mode"):
        compile_filter("x", "fuzzy")
    with pytest.raises(ValueError):
        TagTree({}, "")
