"""The view of an image's files that the inventory reads through.

An inventory names the files it wants with a predicate on relative paths
(``var/lib/dpkg/status``, no leading slash) and gets back each file's bytes
with the index of the layer it came from. A directory tree and merged image
layers both offer that view.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from sedis.core.errors import InvalidInputError

Want = Callable[[str], bool]
Files = Mapping[str, tuple[int, bytes]]

# No package database or metadata file is near this; a larger one is refused
# rather than read into memory.
MAX_FILE_BYTES = 256 * 1024 * 1024
# Trees the inventory never looks in: kernel views and caches with many files.
_SKIP_DIRS = frozenset({"proc", "sys", "dev", "run", "tmp", "var/cache", "var/tmp"})


class RootFS(Protocol):
    def files(self, want: Want) -> Files: ...


class DirRootFS:
    """A root filesystem unpacked in a directory. Symlinks are never followed."""

    def __init__(self, root: Path, layer: int = 0) -> None:
        if not root.is_dir():
            raise InvalidInputError(f"{root} is not a directory")
        self.root = root
        self.layer = layer

    def files(self, want: Want) -> Files:
        out: dict[str, tuple[int, bytes]] = {}
        base = str(self.root)
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            rel_dir = os.path.relpath(dirpath, base)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
            dirnames[:] = [d for d in dirnames if _join(rel_dir, d) not in _SKIP_DIRS]
            for name in filenames:
                rel = _join(rel_dir, name)
                if not want(rel):
                    continue
                data = _read_regular(os.path.join(dirpath, name), rel)
                if data is not None:
                    out[rel] = (self.layer, data)
        return out


class LayersRootFS:
    """Image layers merged in order, whiteouts honoured, by ``sedis.oci.layers``."""

    def __init__(self, layers: Sequence[Any]) -> None:
        self.layers = layers

    def files(self, want: Want) -> Files:
        from sedis.oci.layers import merged_files

        merged: Files = merged_files(self.layers, want)
        return merged


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _read_regular(path: str, rel: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None  # a symlink or an unreadable file: not evidence of a package
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > MAX_FILE_BYTES:
            raise InvalidInputError(f"{rel} is larger than {MAX_FILE_BYTES >> 20} MiB")
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInputError(f"{rel} is larger than {MAX_FILE_BYTES >> 20} MiB")
    return data
