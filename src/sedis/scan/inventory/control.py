"""RFC 822-style stanzas as dpkg and apk store them: paragraphs of fields."""

from __future__ import annotations

import re
from collections.abc import Iterator

_BLANK = re.compile(r"\n[ \t]*\n")
MAX_PARAGRAPHS = 1_000_000


def paragraphs(text: str, sep: str = ":") -> Iterator[dict[str, str]]:
    """Single-line fields of each paragraph; continuation lines are skipped (unneeded)."""
    for count, block in enumerate(_BLANK.split(text.replace("\r\n", "\n"))):
        if count >= MAX_PARAGRAPHS:
            break
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line[0] in " \t#":
                continue
            key, found, value = line.partition(sep)
            if found:
                fields.setdefault(key.strip(), value.strip())
        if fields:
            yield fields
