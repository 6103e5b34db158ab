"""Deeply nested JSON is refused with an error, even after py-evm raised the recursion limit."""

from __future__ import annotations

import contextlib
import json
import random
import re
import subprocess
import sys
import time

import pytest

from sedis.core.errors import InvalidInputError
from sedis.core.jsonsafe import check_depth, loads


def test_depth_is_counted_outside_strings_only() -> None:
    assert loads('{"a": ["[[[[[[", {"b": "}}}"}]}', limit=3) == {"a": ["[[[[[[", {"b": "}}}"}]}
    # An escaped backslash ends a string: the brackets in the next string are still text.
    assert loads('["\\\\", "[[[["]', limit=1) == ["\\", "[[[["]
    with pytest.raises(InvalidInputError, match="deeper than 3"):
        check_depth("[[[[1]]]]", limit=3)
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        loads("{")


CRASH = """
import sys
import sedis.ledger.embedded  # py-evm and py_ecc raise the recursion limit here
assert sys.getrecursionlimit() >= 100000, sys.getrecursionlimit()
from sedis.core.errors import InvalidInputError
from sedis.oci import model
from sedis.crypto.layer_cipher import PrivateOptions
deep = b"[" * 300000 + b"]" * 300000
for parse in (lambda: model.parse_manifest(deep, model.OCI_MANIFEST),
              lambda: PrivateOptions.from_json(b"[" * 60000 + b"]" * 60000)):
    try:
        parse()
    except InvalidInputError as exc:
        print("refused:", exc)
"""


def test_a_crafted_deep_manifest_is_refused_not_fatal() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASH], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("refused:") == 2
    assert "nested deeper than 64 levels" in proc.stdout


# -- linear time: what the check refused before, and what it may never cost -----------

MIB4 = 4 * 1024 * 1024


def _escaped_quotes_unterminated() -> bytes:
    return b'{"schemaVersion":2,"x":"' + b'\\"' * ((MIB4 - 24) // 2)


def _shapes() -> dict[str, bytes]:
    pairs = MIB4 // 2
    return {
        # The shape that made the old check quadratic: a string of \" pairs that never ends.
        "unterminated-escaped-quotes": _escaped_quotes_unterminated(),
        "escaped-quotes-terminated": b'["' + b'\\"' * (pairs - 3) + b'"]',
        "unterminated-backslashes": b'"' + b"\\" * (MIB4 - 1),
        "quotes-only": b'"' * MIB4,
        "open-brackets": b"[" * MIB4,
        "open-braces-in-keys": b'{"a":' * (MIB4 // 5),
        "empty-arrays": b"[" + b"[]," * (MIB4 // 3 - 1) + b"[]]",
        "bracket-pairs": b"[]" * pairs,
        "closes-then-opens": b"][" * pairs,
        "at-the-limit": b"[" * 63 + b"[]," * ((MIB4 - 200) // 3) + b"1" + b"]" * 63,
        "full-depth-blocks": b"[" + (b"[" * 63 + b"]" * 63 + b",") * (MIB4 // 127 - 1) + b"1]",
        "quote-bracket": b'"[' * pairs,
        "bracket-quote": b'["' * pairs,
        "many-strings": b"[" + b'"a",' * (MIB4 // 4 - 1) + b"1]",
        "deep-then-unterminated-string": b"[" * 60 + b'"' + b'\\"' * (pairs - 31),
    }


def _yardstick() -> float:
    """CPU seconds the stdlib parser takes over a flat 4 MiB array, measured in the same
    run: the bounds below are multiples of it, so a busy or slow machine moves both."""
    flat = b"[" + b"1," * (MIB4 // 2 - 1) + b"1]"
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        json.loads(flat)
        best = min(best, time.thread_time() - started)
    return best


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shape", sorted(_shapes()))
def test_a_4mib_adversarial_document_is_decided_in_well_under_a_second(shape: str) -> None:
    document = _shapes()[shape]
    assert MIB4 - 256 <= len(document) <= MIB4
    yardstick = _yardstick()
    # CPU time, not wall time: other processes on the machine must not decide it. A
    # quadratic check of 4 MiB costs thousands of yardsticks; the linear one, about one.
    started = time.thread_time()
    with contextlib.suppress(InvalidInputError):
        check_depth(document)
    checked = time.thread_time()
    with contextlib.suppress(InvalidInputError):
        loads(document)
    assert checked - started < 5 * yardstick + 0.05
    # A document of a million small arrays costs the parser itself about nine yardsticks
    # (it builds them all), and up to thirty-five when a full suite's heap makes the
    # collector walk it; that part is linear too, and quadratic would be thousands.
    assert time.thread_time() - checked < 100 * yardstick + 0.1


def _old_check_refuses(data: bytes, limit: int, *, past_open_strings: bool = True) -> bool:
    """The previous check's verdict (right, but quadratic on some inputs).

    It skipped a quote that no later quote closes and went on counting brackets
    inside that string, which no parser ever reaches; past_open_strings=False
    gives its verdict up to such a quote only.
    """
    depth, end = 0, 0
    for match in re.finditer(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', data, re.S):
        if not past_open_strings and b'"' in data[end : match.start()]:
            return False
        end = match.end()
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _random_document(rng: random.Random) -> bytes:
    alphabet = [b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b",", b":", b"1", b" "]
    weights = [6, 5, 3, 2, 3, 2, 2, 2, 1, 1, 1]
    return b"".join(rng.choices(alphabet, weights, k=rng.randrange(0, 40)))


def _random_json(rng: random.Random, depth: int) -> object:
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(["[{", "}]", '\\"[', 1, None, "", "\\"])
    if rng.random() < 0.5:
        return [_random_json(rng, depth - 1) for _ in range(rng.randrange(0, 3))]
    return {f"k{i}[": _random_json(rng, depth - 1) for i in range(rng.randrange(0, 3))}


def test_everything_the_previous_check_refused_is_still_refused() -> None:
    rng = random.Random(12)
    for _ in range(20000):
        document, limit = _random_document(rng), rng.randrange(1, 6)
        if _old_check_refuses(document, limit):
            with pytest.raises(InvalidInputError):
                loads(document, limit)
        if _old_check_refuses(document, limit, past_open_strings=False):
            with pytest.raises(InvalidInputError, match=f"nested deeper than {limit} levels"):
                check_depth(document, limit)


def test_valid_json_is_refused_exactly_when_it_is_too_deep() -> None:
    rng = random.Random(6)
    for _ in range(3000):
        text = json.dumps(_random_json(rng, rng.randrange(0, 9)))
        limit = rng.randrange(1, 8)
        if _old_check_refuses(text.encode(), limit):
            with pytest.raises(InvalidInputError, match="nested deeper"):
                loads(text, limit=limit)
        else:
            assert loads(text, limit=limit) == json.loads(text)


def test_depth_counts_at_the_edges() -> None:
    for limit in (1, 2, 8, 64):
        assert loads("[" * limit + "]" * limit, limit=limit) is not None
        check_depth('{"a":' * limit + "1" + "}" * limit, limit)
        with pytest.raises(InvalidInputError, match=f"deeper than {limit} levels"):
            check_depth("[" * (limit + 1) + "]" * (limit + 1), limit)
        with pytest.raises(InvalidInputError, match=f"deeper than {limit} levels"):
            check_depth('{"a":' * (limit + 1), limit)
    # Unterminated and unbalanced documents that stay shallow are the parser's to refuse.
    for broken in ('[[["\\', "[1]]]", '"[[[[[', "[[[1,2"):
        with pytest.raises(InvalidInputError, match="not valid JSON"):
            loads(broken, limit=3)
    # A stray close bracket never buys room for deeper nesting after it.
    with pytest.raises(InvalidInputError, match="deeper than 3 levels"):
        check_depth("]]]][[[[1]]]]", limit=3)
