"""Blocks on disk, one file per block, named by the hex sha2-256 digest.

A block is written to a temporary file in the same filesystem and renamed into
place, so a reader never sees a partial block and a killed writer leaves at
most an orphaned temporary file. Every read re-hashes the bytes against the
CID that asked for them: a block damaged on disk is reported, never served.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from sedis.core.errors import CorruptError, NotFoundError
from sedis.store.cid import Cid

# Bitswap's hard limit; no importer writes larger blocks, so a larger file
# on disk is damage or tampering.
MAX_BLOCK_SIZE = 2 * 1024 * 1024


class Blockstore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._blocks = root / "blocks"
        self._tmp = root / "tmp"
        self._blocks.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path_of(self, cid: Cid) -> Path:
        key = cid.key
        return self._blocks / key[:2] / key

    def put_block(self, cid: Cid, data: bytes) -> None:
        final = self.path_of(cid)
        if final.exists():
            return
        self._write_atomically(final, data)

    def _write_atomically(self, final: Path, data: bytes) -> None:
        tmp = self._tmp / f"{final.name}.{secrets.token_hex(6)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)

    def get_block(self, cid: Cid) -> bytes:
        path = self.path_of(cid)
        try:
            with open(path, "rb", buffering=0) as f:
                data = f.read(MAX_BLOCK_SIZE + 1)
        except FileNotFoundError:
            raise NotFoundError(f"block {cid} is not in the store") from None
        if len(data) > MAX_BLOCK_SIZE or not cid.matches(data):
            raise CorruptError(f"block {cid} is corrupt: its bytes do not match its CID")
        return data

    def has_block(self, cid: Cid) -> bool:
        return self.path_of(cid).exists()

    def keys(self) -> Iterator[str]:
        """Every stored block's hex digest."""
        for shard in os.scandir(self._blocks):
            if shard.is_dir():
                for entry in os.scandir(shard.path):
                    yield entry.name

    def delete(self, key: str) -> int:
        """Remove one block by hex digest; return the bytes freed."""
        path = self._blocks / key[:2] / key
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def adopt(self, cid: Cid, staged: Path) -> None:
        """Move a block file that was already verified elsewhere into place."""
        final = self.path_of(cid)
        final.parent.mkdir(exist_ok=True)
        try:
            os.replace(staged, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self._write_atomically(final, staged.read_bytes())

    def clean_tmp(self) -> int:
        """Remove temporary files that killed writers left behind."""
        removed = 0
        for entry in os.scandir(self._tmp):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
        return removed

    def tmp_dir(self) -> Path:
        return self._tmp
