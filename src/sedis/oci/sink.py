"""ImageSink: write one image (or several manifests) to a transport, atomically.

Blobs go in first, each checked against its descriptor as it streams
through; manifests go in last and may only name blobs already written. A
sink writes to a temporary sibling of its destination and renames it into
place in ``commit()``; anything that ends without a commit (an error, a
signal, a kill) leaves no output that looks complete.
"""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import BinaryIO, cast

from sedis.core.errors import InvalidInputError
from sedis.oci.model import (
    REF_NAME_ANNOTATION,
    Descriptor,
    Index,
    Manifest,
    check_digest,
    parse_document,
    sha256_digest,
)
from sedis.oci.streams import CHUNK, ensure_verifying

# Every so many bytes written to a file, the kernel is asked to start writing them out.
WRITEBACK_STEP = 8 * 1024 * 1024


def copy_stream(src: BinaryIO, dst: BinaryIO, *, durable: bool = False) -> int:
    """Copy to EOF (so a verifying ``src`` runs its final check); return the count.

    ``durable``: ``dst`` is a file that will be fsynced; its pages are sent to
    disk as the copy goes, so the fsync finds little left to wait for.
    """
    total = 0
    start = dst.tell() if durable else 0
    mark = 0
    started: list[Future[object]] = []
    try:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                return total
            dst.write(chunk)
            total += len(chunk)
            if durable and total - mark >= WRITEBACK_STEP:
                dst.flush()
                started.extend(start_writeback(dst.fileno(), start + mark, total - mark))
                mark = total
    finally:
        for request in started:  # the fd must outlive the requests that name it
            request.result()


def start_writeback(fd: int, offset: int, length: int) -> list[Future[object]]:
    """Start writing a range of a file to disk, without waiting (Linux; elsewhere nothing).

    sync_file_range(SYNC_FILE_RANGE_WRITE) is not durability by itself; it
    only gets the disk busy early, beside the work that follows. It can block
    while it queues the I/O, so it runs on a thread of its own.
    """
    call = _sync_file_range()
    if call is None:
        return []
    return [_writeback_thread().submit(call, fd, offset, length, 2)]  # SYNC_FILE_RANGE_WRITE


@functools.cache
def _writeback_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="sedis-writeback")


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    import ctypes

    try:
        func = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], func)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ImageSink(ABC):
    """Where an image is written. Use as a context manager and call commit()."""

    reference: str
    # The tag the destination reference names (oci:DIR:TAG), used when
    # put_manifest is given none.
    default_tag: str | None = None

    def __init__(self) -> None:
        self._written: dict[str, int] = {}
        self._done = False

    # -- what a transport implements --------------------------------------------

    @abstractmethod
    def _write_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        """Store the blob, reading ``stream`` to its end; keep it hidden until commit."""

    @abstractmethod
    def _write_manifest(self, desc: Descriptor, raw: bytes, doc: Manifest | Index) -> None:
        """Record a manifest whose blobs are all written."""

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _abort(self) -> None: ...

    def _has_existing(self, desc: Descriptor) -> bool:
        """Is the blob already at the destination (from an earlier write)?"""
        return False

    # -- the interface ------------------------------------------------------------

    def has_blob(self, desc: Descriptor) -> bool:
        return self._written.get(desc.digest) == desc.size or self._has_existing(desc)

    def put_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        """Write one blob from ``stream``, refusing it unless it matches ``desc``."""
        check_digest(desc.digest)
        if self.has_blob(desc):
            stream.close()
            return
        checked = ensure_verifying(stream, desc.digest, desc.size, f"blob {desc.digest}")
        with checked:
            self._write_blob(desc, checked)
        self._written[desc.digest] = desc.size

    def put_blob_bytes(self, desc: Descriptor, data: bytes) -> None:
        import io

        self.put_blob(desc, io.BytesIO(data))

    def put_manifest(
        self,
        raw: bytes,
        media_type: str | None = None,
        *,
        tag: str | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Descriptor:
        """Write a manifest or index whose every blob is already written.

        ``raw`` is written exactly as given: its sha256 is the image's identity.
        """
        doc = parse_document(raw, media_type, "manifest to write")
        needed = doc.descriptors() if isinstance(doc, Manifest) else doc.manifests
        for blob in needed:
            if not self.has_blob(blob):
                raise InvalidInputError(
                    f"{self.reference}: the manifest names {blob.digest}, which was not written"
                )
        notes = dict(annotations or {})
        tag = tag if tag is not None else self.default_tag
        if tag:
            notes[REF_NAME_ANNOTATION] = tag
        desc = Descriptor(doc.media_type, sha256_digest(raw), len(raw), notes)
        self._write_manifest(desc, raw, doc)
        self._written[desc.digest] = desc.size
        return desc

    def commit(self) -> None:
        """Make the written image visible at the destination, all at once."""
        if self._done:
            raise InvalidInputError(f"{self.reference}: already committed or aborted")
        self._commit()
        self._done = True

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._abort()

    def __enter__(self) -> ImageSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Leaving without commit() is always an abort: half an image is none.
        self.abort()
