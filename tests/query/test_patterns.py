"""Request patterns run on RE2: hostile patterns finish at once, globs and regexes keep their meaning,
and what RE2 cannot run is refused with a message (a 400 on the routes)."""

import fnmatch
import re
import threading

import pytest

from tb_plus.query.aggregate import group_key, parse_group_by
from tb_plus.query.patterns import MAX_PATTERN, compile_glob, compile_regex, glob_to_regex
from tb_plus.query.tagtree import compile_filter


def finishes(fn, budget_s=30.0):
    """Runs fn in a thread; True when it returned within budget_s (a backtracking engine on the inputs
    below would run for hours, so any budget separates the two)."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn()), daemon=True)
    t.start()
    t.join(budget_s)
    return "r" in out


@pytest.mark.parametrize("pattern,text", [
    ("(a+)+$", "a" * 41 + "!"),
    ("^.{13}(.|.)*!", "x" * 200_000),
    ("(x+x+)+y", "x" * 5000),
    ("(.*a){20}", "a" * 19 + "b" * 5000),
])
def test_catastrophic_patterns_finish(pattern, text):
    search = compile_filter(pattern, "regex")
    assert finishes(lambda: search(text)) and search(text) is None


def test_regex_filter_keeps_re_semantics_for_spans_and_case():
    search = compile_filter("LOSS", "regex")
    assert search("train/loss") == (6, 10)
    assert compile_filter("é+b", "regex")("aaééb") == (2, 5)  # character offsets, not UTF-8 bytes
    assert compile_filter("^val/", "regex")("train/val/x") is None


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=a)b", "(?<!x)y", "[", "a{2,1}"])
def test_what_re2_cannot_run_is_a_clear_value_error(pattern):
    with pytest.raises(ValueError, match="not a valid regular expression"):
        compile_filter(pattern, "regex")


def test_overlong_patterns_are_refused():
    with pytest.raises(ValueError, match=f"at most {MAX_PATTERN}"):
        compile_regex("a" * (MAX_PATTERN + 1))
    with pytest.raises(ValueError, match=f"at most {MAX_PATTERN}"):
        compile_glob("*" * (MAX_PATTERN + 1))


def test_huge_programs_are_refused_not_built():
    with pytest.raises(ValueError):
        compile_regex("((a{100}){100}){100}")


TAGS = ["train/loss", "val/loss", "Train/Acc", "a*b", "x[1]", "lr", "layer1/w", "layer10/w", "x1", "!x", "a\\b",
        "sp ace", "dot.tag", "ca^ret", "]x"]


@pytest.mark.parametrize("glob", ["*loss", "*/loss", "train/*", "?r", "layer?/w", "layer[0-9]/w", "layer[!0]*/w",
                                  "x[1]", "a*b", "[[]x", "[]]x", "*.tag", "ca^ret", "a\\b", "[!]]*", "x[", "**", ""])
def test_globs_match_what_fnmatch_matches(glob):
    rx = compile_glob(glob, ignore_case=False)
    got = [t for t in TAGS if rx.fullmatch(t)]
    assert got == fnmatch.filter(TAGS, glob), glob_to_regex(glob)


def test_glob_filter_is_case_insensitive_and_whole_tag():
    match = compile_filter("train/*", "glob")
    assert match("Train/Acc") == (0, 9)
    assert match("xtrain/loss") is None


def test_run_grouping_regex_runs_on_re2_with_groups():
    spec = parse_group_by("run_regex:^(\\w+)-seed\\d+$")
    assert group_key(spec, "adam-seed3", "loss") == "adam"
    assert group_key(spec, "other", "loss") is None
    spec = parse_group_by("run_regex:(a+)+$")
    assert finishes(lambda: group_key(spec, "a" * 41 + "!", "loss")) and group_key(spec, "a" * 41 + "!", "x") is None
    with pytest.raises(ValueError, match="group_by"):
        parse_group_by("run_regex:(a)\\1")


def test_python_re_would_have_accepted_the_same_ordinary_patterns():
    for p in ["block[0-9]+/conv", "^(train|val)/", "loss$", "\\d{2,}"]:
        re.compile(p)
        compile_regex(p)
