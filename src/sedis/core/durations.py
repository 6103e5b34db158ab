"""Durations as people write them: 90s, 15m, 12h, 30d, 2w."""

from __future__ import annotations

import re

from sedis.core.errors import InvalidInputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d{1,9})([smhdw])$")


def parse_duration(text: str) -> int:
    """Seconds in ``text``; refuses zero, negative and unitless values."""
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise InvalidInputError(f"invalid duration {text!r} (use e.g. 90s, 15m, 12h, 30d, 2w)")
    return int(match.group(1)) * _UNITS[match.group(2)]
