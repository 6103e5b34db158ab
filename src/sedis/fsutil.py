"""Files that appear whole or not at all."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sedis.core.errors import InvalidInputError


@contextmanager
def atomic_output(dest: Path) -> Iterator[BinaryIO]:
    """Write to a temporary file beside ``dest``; rename it into place only on success."""
    parent = dest.parent if str(dest.parent) else Path()
    if not parent.is_dir():
        raise InvalidInputError(f"cannot write {dest}: {parent} is not a directory")
    tmp = parent / f".{dest.name}.{secrets.token_hex(6)}.partial"
    try:
        with open(tmp, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    with atomic_output(dest) as out:
        out.write(data)
