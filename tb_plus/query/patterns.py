"""Patterns from requests (tag filters, run groupings) on a linear-time engine.

A regular expression from a request (a shared link, an iframe's URL, a hand-made query) runs against
every tag or run name while the request holds the GIL. Python's `re` backtracks: `(a+)+$` against a
41-character tag runs for hours and freezes every route for every user. Request patterns therefore run
on RE2 (the `google-re2` package), whose matching time is linear in the text whatever the pattern, and
whose compiled programs are capped in memory. The syntax is RE2's: Python's, less backreferences and
lookaround (a pattern using them is refused with a clear message, a 400 on the routes).

Globs (fnmatch syntax: `*`, `?`, `[seq]`, `[!seq]`) are translated to RE2 syntax here rather than with
fnmatch.translate, whose output uses lookahead that RE2 lacks.
"""

import re2

MAX_PATTERN = 1024
"""The longest pattern a request may give (characters)."""

MAX_PROGRAM_BYTES = 8 << 20
"""The memory one compiled pattern may use (RE2's max_mem): larger programs are refused."""


def _options(ignore_case: bool):
    o = re2.Options()
    o.log_errors = False
    o.case_sensitive = not ignore_case
    o.dot_nl = True
    o.max_mem = MAX_PROGRAM_BYTES
    return o


def _check_length(pattern: str, what: str) -> None:
    if not isinstance(pattern, str):
        raise ValueError(f"{what} must be text")
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"{what} is {len(pattern)} characters long; at most {MAX_PATTERN} are accepted")


def _error_text(e) -> str:
    msg = e.args[0] if e.args else e
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return str(msg)


def _encodable(text: str) -> str:
    """`text` with lone surrogates (names read from invalid UTF-8 with surrogateescape) replaced by
    U+FFFD, one character for one, so that match positions still index the original text."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


class Pattern:
    """A compiled RE2 pattern with re's search / match / fullmatch and `groups`; any str is matched,
    names holding lone surrogates too (RE2 takes UTF-8)."""

    __slots__ = ("_rx", "pattern", "groups")

    def __init__(self, rx):
        self._rx = rx
        self.pattern = rx.pattern
        self.groups = rx.groups

    def search(self, text: str):
        return self._rx.search(_encodable(text))

    def match(self, text: str):
        return self._rx.match(_encodable(text))

    def fullmatch(self, text: str):
        return self._rx.fullmatch(_encodable(text))


def compile_regex(pattern: str, *, ignore_case: bool = False, what: str = "pattern"):
    """A request's regular expression compiled by RE2: an object with search / match / fullmatch whose
    match objects have span(), group() and whose `groups` counts the capture groups, as re's do.

    Raises ValueError (naming `what` and the reason) for a pattern that is too long, does not compile,
    uses what RE2 lacks (backreferences, lookaround) or whose program exceeds MAX_PROGRAM_BYTES."""
    _check_length(pattern, what)
    try:
        return Pattern(re2.compile(pattern, _options(ignore_case)))
    except re2.error as e:
        reason = _error_text(e)
        hint = ""
        if "invalid perl operator" in reason or "invalid escape sequence" in reason:
            hint = " (patterns run on RE2: no backreferences or lookaround)"
        raise ValueError(f"{what} {pattern!r} is not a valid regular expression: {reason}{hint}") from None
    except (TypeError, ValueError) as e:  # e.g. a NUL the wrapper refuses
        raise ValueError(f"{what} {pattern!r} is not a valid regular expression: {e}") from None


def glob_to_regex(pattern: str) -> str:
    """fnmatch syntax as an RE2 pattern for the whole text: `*` any run of characters (separators too, as
    fnmatch does), `?` one character, `[seq]` / `[!seq]` a set or its complement; everything else literal.
    An unclosed `[` is a literal, as in fnmatch."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != ".*":  # a run of stars is one star
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re2.escape("["))
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            # inside a class only backslash, ']' and '^' (first) and '[' (RE2's [:classes:]) are special
            chars = "".join("\\" + ch if ch in "\\]^[" else ch for ch in body)
            out.append(("[^" if negate else "[") + chars + "]")
        else:
            out.append(re2.escape(c))
    return "".join(out)


def compile_glob(pattern: str, *, ignore_case: bool = True, what: str = "glob"):
    """A glob compiled for fullmatch on RE2 (see glob_to_regex)."""
    _check_length(pattern, what)
    return compile_regex(glob_to_regex(pattern), ignore_case=ignore_case, what=what)
