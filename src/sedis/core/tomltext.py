"""Where in a TOML file a refusal points: the pieces every sedis configuration reader shares.

tomllib gives values without their lines; a reader that names ``FILE:LINE:
key 'KEY'`` in its refusals scans the text itself for where keys are
written. These helpers are the parts of that scan, and of the message, that
do not depend on which file it is.
"""

from __future__ import annotations

import re
import tomllib

from sedis.core.errors import InvalidInputError

KEY = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[=.]""")
_TOML_WHERE = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")


def syntax_error(source: str, text: str, message: str) -> InvalidInputError:
    """tomllib's ``message`` as one line: ``SOURCE:LINE: key 'K': not valid TOML: …``."""
    where = _TOML_WHERE.search(message)
    lines = text.splitlines()
    line = max(len(lines), 1)  # "at end of document": the last line
    if where is not None:
        message = message[: where.start()]
        if where.group(1):
            line = int(where.group(1))
            message += f" (column {where.group(2)})"
    key = KEY.match(lines[line - 1]) if 0 < line <= len(lines) else None
    named = f" key {shown(unquote(key.group(1)), 60)}:" if key else ""
    return InvalidInputError(f"{source}:{line}:{named} not valid TOML: {message}")


def unquote(key: str) -> str:
    """A key as tomllib names it: quotes taken off, a basic string's escapes read."""
    if len(key) >= 2 and key[0] == key[-1] == "'":
        return key[1:-1]
    if len(key) >= 2 and key[0] == key[-1] == '"':
        if "\\" not in key:
            return key[1:-1]
        try:
            return next(iter(tomllib.loads(f"{key} = 0")))
        except tomllib.TOMLDecodeError:
            return key[1:-1]
    return key


def shown(value: object, width: int = 80) -> str:
    """A value from the file, quoted, escaped and cut short, for a one-line message."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "…"
