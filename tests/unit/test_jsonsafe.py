"""Deeply nested JSON is refused with an error, even after py-evm raised the recursion limit."""

from __future__ import annotations

import subprocess
import sys

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
