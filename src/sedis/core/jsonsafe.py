"""JSON from untrusted hands: nesting is bounded before the parser sees it.

The standard parser recurses once per nesting level. Libraries that sedis
loads raise the interpreter's recursion limit (py-evm and py_ecc set it to
100,000), and past the C stack that recursion crashes the process instead of
raising. A crafted manifest must be refused, not fatal, so depth is counted
first, by a scan that does not recurse.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sedis.core.errors import InvalidInputError

MAX_DEPTH = 64
# A JSON string (with escapes) or one structural bracket.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def check_depth(data: bytes | str, limit: int = MAX_DEPTH, what: str = "JSON") -> None:
    raw = data.encode() if isinstance(data, str) else data
    depth = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise InvalidInputError(f"{what} is nested deeper than {limit} levels")
        elif token in (b"]", b"}"):
            depth -= 1


def loads(data: bytes | str, limit: int = MAX_DEPTH, what: str = "JSON") -> Any:
    check_depth(data, limit, what)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(f"{what} is not valid JSON") from exc
