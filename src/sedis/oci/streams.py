"""Byte streams that check what they carry.

Blobs are never held whole in memory: they flow through a VerifyingReader,
which counts and hashes every byte and raises CorruptError the moment the
stream runs past its declared size, or at EOF when the size or digest is
wrong. Callers must not trust what they read until the stream ends cleanly.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast

from sedis.core.errors import CorruptError
from sedis.crypto.hashing import BackgroundHashes
from sedis.oci.model import digest_hex

CHUNK = 1024 * 1024
BACKGROUND_HASH_SIZE = 4 * CHUNK


class VerifyingReader(io.RawIOBase):
    """Reads ``raw`` and checks it is exactly ``size`` bytes hashing to ``digest``."""

    def __init__(
        self, raw: BinaryIO, digest: str, size: int, what: str, *, hash_aside: bool = False
    ) -> None:
        super().__init__()
        self._raw = raw
        self._want_hex = digest_hex(digest)
        self._size = size
        self.digest = digest
        self.size = size
        self._what = what
        self._hash = hashlib.sha256()
        # With hash_aside, a large blob is hashed on another core while the caller
        # uses what it read (worth it when the caller has work of its own to do).
        self._background = (
            BackgroundHashes(self._hash) if hash_aside and size >= BACKGROUND_HASH_SIZE else None
        )
        self._readinto: Callable[[memoryview], int | None] | None = getattr(raw, "readinto", None)
        self._count = 0
        self.verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self.verified:
            return 0
        view = memoryview(buffer).cast("B")
        # Ask for one byte more than is left, so an over-long stream is caught
        # as soon as it shows, not after it has filled the disk.
        want = min(len(view), self._size - self._count + 1)
        if self._background is None and self._readinto is not None:
            # Straight into the caller's buffer, hashed here: no copy.
            got: int = self._readinto(view[:want]) or 0
            if not got:
                self._finish()
                return 0
            self._count_in(got)
            self._hash.update(view[:got])
            return got
        # Bytes of their own: a worker hashes them while the caller reuses its buffer.
        data = self._raw.read(want)
        if not data:
            self._finish()
            return 0
        self._count_in(len(data))
        (self._background or self._hash).update(data)
        view[: len(data)] = data
        return len(data)

    def _count_in(self, got: int) -> None:
        self._count += got
        if self._count > self._size:
            raise CorruptError(f"{self._what}: more than the declared {self._size} bytes")

    def _finish(self) -> None:
        if self._count != self._size:
            raise CorruptError(
                f"{self._what}: {self._count} bytes where {self._size} were declared"
            )
        if self._background is not None:
            self._background.finish()
        got = self._hash.hexdigest()
        if got != self._want_hex:
            raise CorruptError(
                f"{self._what}: digest is sha256:{got}, expected sha256:{self._want_hex}"
            )
        self.verified = True

    def close(self) -> None:
        try:
            if self._background is not None:
                self._background.finish()
            self._raw.close()
        finally:
            super().close()


def verifying(
    raw: BinaryIO, digest: str, size: int, what: str, *, hash_aside: bool = False
) -> BinaryIO:
    """A buffered, verifying view of ``raw``, usable wherever a binary file is.

    ``hash_aside``: hash a large blob on another thread, for a consumer that
    has work of its own to do with what it reads (copy_image's sink writes).
    A consumer that only drains the stream gains nothing from it.
    """
    reader = VerifyingReader(raw, digest, size, what, hash_aside=hash_aside)
    return cast(BinaryIO, io.BufferedReader(reader, CHUNK))


def is_verifying(stream: BinaryIO, digest: str, size: int) -> bool:
    """Is ``stream`` already a verifying view for exactly this blob?"""
    raw = getattr(stream, "raw", None)
    return isinstance(raw, VerifyingReader) and raw.digest == digest and raw.size == size


def ensure_verifying(stream: BinaryIO, digest: str, size: int, what: str) -> BinaryIO:
    """``stream`` itself when it already checks this blob, else a checking view of it.

    Sources hand out verifying streams; wrapping them again would hash every
    byte twice on the hot path of a copy.
    """
    if is_verifying(stream, digest, size):
        return stream
    return verifying(stream, digest, size, what)


def read_verified(stream: BinaryIO, limit: int, what: str) -> bytes:
    """Read a small verified stream to its end, refusing more than ``limit`` bytes."""
    with stream:
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise CorruptError(f"{what} is over the {limit}-byte limit")
        while stream.read(CHUNK):  # pragma: no cover - VerifyingReader stops at size
            pass
    return data


def drain(stream: BinaryIO) -> None:
    """Read ``stream`` to its end (running its checks) and close it."""
    with stream:
        while stream.read(CHUNK):
            pass


class SectionReader(io.RawIOBase):
    """``size`` bytes of a file from ``offset``, through pread on a private fd."""

    def __init__(self, path: str | os.PathLike[str], offset: int, size: int) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._offset = offset
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        got = os.preadv(self._fd, [view[: min(len(view), self._left)]], self._offset)
        if not got:
            # The file shrank under us; the verifier reports the short count.
            self._left = 0
            return 0
        self._offset += got
        self._left -= got
        return got

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def section(path: str | os.PathLike[str], offset: int, size: int) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(SectionReader(path, offset, size), CHUNK))


class IterReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (an HTTP body)."""

    def __init__(self, chunks: Iterator[bytes], on_close: object = None) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        try:
            if not self.closed and callable(self._on_close):
                self._on_close()
        finally:
            super().close()


def iter_reader(chunks: Iterator[bytes], on_close: object = None) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(IterReader(chunks, on_close), CHUNK))
