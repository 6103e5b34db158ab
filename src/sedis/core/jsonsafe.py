"""JSON from untrusted hands: nesting is bounded before the parser sees it.

The standard parser recurses once per nesting level. Libraries that sedis
loads raise the interpreter's recursion limit (py-evm and py_ecc set it to
100,000), and past the C stack that recursion crashes the process instead of
raising. A crafted manifest must be refused, not fatal, so depth is counted
first, by a scan that does not recurse.

The scan is one pass of one regular expression, so it runs at C speed and in
linear time whatever the input: every repetition in it is possessive (it
never gives back what it took), a string always matches from its opening
quote (an unterminated one runs to the end of the input instead of being
tried again from every later quote), and nesting is spelled out level by
level up to the limit, so going one level deeper is simply no match. A
pure-Python loop over the bytes would be linear too, but several times too
slow for a 4 MiB manifest.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from sedis.core.errors import InvalidInputError

MAX_DEPTH = 64

_OPEN = rb"[\[{]"
_CLOSE = rb"[\]}]"
# Anything that is neither a bracket nor a string, or one whole string. A
# string's escape may be cut short by the end of the input, and so may the
# string itself: both still match, so the scan never restarts inside one.
_OTHER = rb'[^"\[\]{}]++|"(?:[^"\\]++|\\.?)*+"?'


@functools.cache
def _within(limit: int) -> re.Pattern[bytes]:
    """A pattern that matches a whole document exactly when it nests at most ``limit`` deep.

    A group may be left open at the end of the input (the parser will call that
    invalid, and it is no deeper for it), and a close with nothing open counts as
    text (also invalid JSON, and never deeper).
    """
    group = _OPEN + b"(?:" + _OTHER + b")*+(?:" + _CLOSE + rb"|\Z)"
    for _ in range(limit - 1):
        group = _OPEN + b"(?:" + group + b"|" + _OTHER + b")*+(?:" + _CLOSE + rb"|\Z)"
    return re.compile(b"(?:" + group + b"|" + _CLOSE + b"|" + _OTHER + b")*+", re.S)


def check_depth(data: bytes | str, limit: int = MAX_DEPTH, what: str = "JSON") -> None:
    """Refuse ``data`` if any of its arrays or objects nests deeper than ``limit``."""
    if limit < 1:
        raise ValueError("the depth limit must be at least 1")
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    # No document nests deeper than it has opening brackets: most never need the scan.
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    scanned = _within(limit).match(raw)
    if scanned is None or scanned.end() != len(raw):
        raise InvalidInputError(f"{what} is nested deeper than {limit} levels")


def loads(data: bytes | str, limit: int = MAX_DEPTH, what: str = "JSON") -> Any:
    check_depth(data, limit, what)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(f"{what} is not valid JSON") from exc
