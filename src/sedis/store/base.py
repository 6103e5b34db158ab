"""The ContentStore interface: content in, CIDs out, verified bytes back.

An implementation supplies block access, adding, pinning and CAR import. The
reading side (paths, files, listings, CAR export) is shared and lives in
``reader``, so every implementation verifies blocks the same way.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from sedis.store import car, reader
from sedis.store.cid import Cid
from sedis.store.importer import Entry, ImportOptions, Progress


@dataclass(frozen=True, slots=True)
class GcReport:
    blocks_removed: int
    bytes_freed: int


class ContentStore(ABC):
    """Where encrypted images live: an IPFS blockstore, local or remote."""

    url: str

    # -- what an implementation provides ---------------------------------------

    @abstractmethod
    def get_block(self, cid: Cid) -> bytes:
        """One block, checked against its CID (NotFoundError, CorruptError)."""

    @abstractmethod
    def has(self, cid: Cid) -> bool:
        """Whether the block is held locally (nothing is fetched from elsewhere)."""

    @abstractmethod
    def add_stream(
        self,
        stream: BinaryIO,
        options: ImportOptions | None = None,
        *,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> Entry:
        """Import a byte stream as a UnixFS file."""

    @abstractmethod
    def add_path(
        self,
        path: Path,
        options: ImportOptions | None = None,
        *,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> Entry:
        """Import a file, or a directory tree as ``ipfs add -r`` does."""

    @abstractmethod
    def add_directory(self, children: Sequence[tuple[str, Entry]], *, pin: bool = True) -> Entry:
        """A UnixFS directory over content already in the store (names sorted here)."""

    @abstractmethod
    def pin(self, cid: Cid) -> None:
        """Pin a DAG recursively; every block of it must be present."""

    @abstractmethod
    def unpin(self, cid: Cid) -> None: ...

    @abstractmethod
    def pins(self) -> list[Cid]:
        """The recursive pins."""

    def release(self, roots: Iterable[Cid]) -> list[Cid]:
        """Stop keeping these DAGs: unpin each one that is pinned; return those unpinned.

        A store that can removes at once every block of theirs that no other pin
        reaches; a Kubo node keeps such blocks until its own garbage collection.
        """
        from sedis.core.errors import NotFoundError

        released: list[Cid] = []
        for root in roots:
            try:
                self.unpin(root)
            except NotFoundError:
                continue
            released.append(root)
        return released

    @abstractmethod
    def import_car(self, stream: BinaryIO, name: str = "CAR") -> list[Cid]:
        """Import every block of a CAR and pin its roots; all or nothing."""

    @abstractmethod
    def gc(self) -> GcReport:
        """Remove every block that no pin reaches."""

    def close(self) -> None:
        return None

    # -- shared, verified reading ------------------------------------------------

    def get_blocks(self, cids: Iterable[Cid]) -> Iterator[bytes]:
        for cid in cids:
            yield self.get_block(cid)

    def add_bytes(
        self, data: bytes, options: ImportOptions | None = None, *, pin: bool = True
    ) -> Entry:
        return self.add_stream(io.BytesIO(data), options, pin=pin)

    def resolve(self, ref: str) -> Cid:
        """``CID[/path]`` to the CID it names."""
        return reader.resolve(self, ref)

    def cat(self, ref: str) -> Iterator[bytes]:
        """A file's bytes, in pieces, each from a verified block."""
        return reader.read_file(self, self.resolve(ref))

    def read_bytes(self, ref: str, limit: int) -> bytes:
        """A whole file, refused if it is larger than ``limit`` (for small metadata)."""
        from sedis.core.errors import InvalidInputError

        parts: list[bytes] = []
        total = 0
        for piece in self.cat(ref):
            total += len(piece)
            if total > limit:
                raise InvalidInputError(f"{ref} is larger than {limit} bytes")
            parts.append(piece)
        return b"".join(parts)

    def stat(self, ref: str) -> reader.NodeInfo:
        return reader.info(self, self.resolve(ref))

    def ls(self, ref: str) -> list[reader.DirEntry]:
        return reader.list_directory(self, self.resolve(ref))

    def export_car(self, ref: str, out: BinaryIO) -> int:
        """Write the DAG under ``ref`` as a CARv1 with that root; return the block count."""
        root = self.resolve(ref)
        return car.write(out, [root], reader.walk(self, root))

    def __enter__(self) -> ContentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class RereadsWithoutHashing(Protocol):
    """What a store whose blocks never change once written can also do.

    Such a store can serve a file's bytes once more, right after a ``cat`` of
    it ran to its end, without hashing its blocks again. It is a capability,
    not part of ContentStore: a caller that reads a file twice looks for it
    (``isinstance(store, RereadsWithoutHashing)``) and uses ``cat`` for the
    second read when a store lacks it. The caller must check what it rereads
    against a digest it trusts.
    """

    def reread(self, ref: str) -> Iterator[bytes]:
        """A file's bytes once more, right after a ``cat`` of it ran to its end."""
        ...
