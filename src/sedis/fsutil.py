"""Files that appear whole or not at all."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sedis.core.errors import ConfigError, InvalidInputError, NotFoundError


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


def read_config_text(path: Path, what: str, limit: int) -> str:
    """The UTF-8 text of the ``what`` configuration file at ``path``, at most ``limit``
    bytes; a refusal is one line naming the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise NotFoundError(f"no {what} configuration file at {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"the {what} configuration {path} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} configuration {path}: {exc.strerror}") from None
    if len(raw) > limit:
        size = f"{limit // (1 << 20)} MiB" if limit >= 1 << 20 else f"{limit} bytes"
        raise InvalidInputError(f"{path}: larger than {size}, which no {what} configuration needs")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: a {what} configuration is UTF-8 text") from None
