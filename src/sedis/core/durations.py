"""Durations as people write them: 90s, 15m, 12h, 30d, 2w."""

from __future__ import annotations

import itertools
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


def format_duration(seconds: int) -> str:
    """``seconds`` as ``parse_duration`` reads them (``30d``, ``90m``) when one unit
    divides them; otherwise in days, hours, minutes or seconds and the next unit
    down (``40d 3h``), for ages that people read."""
    if seconds <= 0:
        return "0s"
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    steps = ("d", "h", "m", "s")
    for unit, smaller in itertools.pairwise(steps):
        if seconds >= _UNITS[unit]:
            whole, rest = divmod(seconds, _UNITS[unit])
            part = rest // _UNITS[smaller]
            return f"{whole}{unit} {part}{smaller}" if part else f"{whole}{unit}"
    return f"{seconds}s"
