"""Durations as people write them, and as messages show them."""

from __future__ import annotations

import pytest

from sedis.core.durations import format_duration, parse_duration
from sedis.core.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43_200), ("30d", 2_592_000), ("2w", 1_209_600),
     (" 30D ", 2_592_000)],
)  # fmt: skip
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "0d", "-1d", "1y", "1.5d", "", "d"])
def test_bad_durations_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_duration(text)
    assert str(refused.value) == f"invalid duration {text!r} (use e.g. 90s, 15m, 12h, 30d, 2w)"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (-5, "0s"), (59, "59s"), (90, "1m 30s"), (5400, "90m"), (3600, "1h"),
     (86_400, "1d"), (2_592_000, "30d"), (1_209_600, "2w"), (3661, "1h 1m"),
     (40 * 86_400 + 3 * 3600 + 5, "40d 3h"), (3 * 86_400 + 1, "3d"), (61, "1m 1s")],
)  # fmt: skip
def test_durations_format(seconds: int, shown: str) -> None:
    assert format_duration(seconds) == shown


@pytest.mark.parametrize("text", ["45s", "15m", "12h", "30d", "2w", "7d", "36h", "120s"])
def test_a_written_duration_formats_back_to_what_it_means(text: str) -> None:
    # Under a minute, or in whole minutes or more: what a ceiling is written as.
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)
