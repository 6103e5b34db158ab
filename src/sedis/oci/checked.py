"""Blobs checked whole against their digests before anything else reads them.

Encryption with a key derived from a blob's digest is only safe when the bytes
encrypted are the bytes that hash to that digest: a source that lies about a
blob (a hostile registry serving zeros under a known digest) would otherwise
make the publisher hand the store the keystream of a key that also encrypts
the real blob. So publish checks every blob before it derives a key or
produces a byte of ciphertext:

- a blob in a local file (an OCI layout, an oci-archive, a docker-archive) is
  hashed where it lies and then read again. The file's identity (device,
  inode, size, mtime and ctime, all in nanoseconds) is taken before the hash
  and must be the same after it and at every read after that, so a file
  written to in between is refused before the changed bytes are handed out;
- any other blob (a registry's, one decrypted on the way) is spooled to a
  private temporary file (an unnamed O_TMPFILE where the system has it, else
  a mode-0600 file unlinked at once), checked as it is written, and read back
  from there. The file goes away with its descriptor on every exit path.

A ``CheckedBlob`` can only be had from these checks (or from bytes in hand,
whose digest is computed here), so code that derives keys can ask for one.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from sedis.core.errors import CorruptError, InvalidInputError
from sedis.oci.model import MAX_CONFIG_BYTES, Descriptor
from sedis.oci.source import ImageSource
from sedis.oci.streams import CHUNK

Progress = Callable[[int], None]


def _identity(path: Path) -> tuple[int, ...]:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError as exc:
        raise CorruptError(f"{path} changed while it was read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CorruptError(f"{path} is no longer a regular file")
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class CheckCancelled(Exception):
    """The checks were called off (their caller no longer needs them)."""


class _Unchanged(io.RawIOBase):
    """Reads a local blob, refusing as soon as its file is not the one that was checked."""

    def __init__(self, raw: BinaryIO, path: Path, identity: tuple[int, ...], what: str) -> None:
        super().__init__()
        self._raw = raw
        self._path = path
        self._identity = identity
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        got = self._raw.readinto(view)  # type: ignore[attr-defined]
        # The identity is read after the bytes: a write that landed before the
        # read changed mtime and ctime before it, so it shows here, before the
        # caller gets anything of this read.
        if _identity(self._path) != self._identity:
            raise CorruptError(f"{self._what}: {self._path} changed after it was checked")
        return int(got or 0)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class _SpoolReader(io.RawIOBase):
    """One reader of a spool file, through pread on a descriptor of its own."""

    def __init__(self, fd: int, size: int) -> None:
        super().__init__()
        self._fd = os.dup(fd)
        self._offset = 0
        self._size = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        left = self._size - self._offset
        if left <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        got = os.preadv(self._fd, [view[: min(len(view), left)]], self._offset)
        if not got:
            raise CorruptError("a spooled blob was cut short")
        self._offset += got
        return got

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


@dataclass(frozen=True, slots=True)
class CheckedBlob:
    """A blob whose bytes were checked whole against ``descriptor``'s digest."""

    descriptor: Descriptor
    _open: Callable[[], BinaryIO]

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    def open(self) -> BinaryIO:
        """The checked bytes, once more (for as long as the checks are open)."""
        return self._open()

    @classmethod
    def of_bytes(cls, data: bytes, media_type: str) -> CheckedBlob:
        """Bytes in hand, named by the digest computed from them here."""
        desc = Descriptor(media_type, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
        return cls(desc, lambda: io.BytesIO(data))


class CheckedImage:
    """Every blob of ``source``'s image, checked; ``close`` drops the spool files.

    Use as a context manager. Nothing here derives keys or encrypts: it only
    guarantees that what ``blob`` hands out is what the digests name.

    Layers in local files are checked side by side on ``executor`` (sha256
    releases the GIL), the calling thread taking its share; with no executor,
    or for a source that must be read one blob at a time, all on the calling
    thread. ``progress`` may then be called from several threads.
    """

    def __init__(
        self,
        source: ImageSource,
        *,
        spool_dir: Path | None = None,
        progress: Progress | None = None,
        executor: Executor | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.source = source
        self._executor = executor
        self._cancel = cancel
        self._stop = threading.Event()  # another check failed: this one's result is moot
        self.manifest = source.manifest
        self._spool_dir = spool_dir
        self._progress = progress
        self._spools: list[int] = []
        self._blobs: dict[str, CheckedBlob] = {}
        try:
            self._check_all()
        except BaseException:
            self.close()
            raise

    def blob(self, desc: Descriptor) -> CheckedBlob:
        return self._blobs[desc.digest]

    def _check_all(self) -> None:
        config = self.manifest.config
        sizes: dict[str, int] = {}
        for desc in self.manifest.descriptors():
            # A blob is checked once per digest, so every descriptor of it must agree.
            if sizes.setdefault(desc.digest, desc.size) != desc.size:
                raise CorruptError(
                    f"{self.source.reference}: blob {desc.digest} is described with two sizes"
                )
        raw = self.source.read_blob(config, MAX_CONFIG_BYTES)
        self._blobs[config.digest] = CheckedBlob(config, lambda: io.BytesIO(raw))
        layers = list({d.digest: d for d in self.manifest.layers}.values())
        local = [(d, self.source.blob_file(d)) for d in layers]
        files = [(d, path) for d, path in local if path is not None]
        if self._executor is not None and len(files) == len(local) > 1:
            checked = self._check_beside(self._executor, files)
        else:
            checked = [self._check(desc, path) for desc, path in local]
        for blob in checked:
            self._blobs[blob.digest] = blob

    def _check_beside(
        self, executor: Executor, files: list[tuple[Descriptor, Path]]
    ) -> list[CheckedBlob]:
        """Check files in place on ``executor`` and on this thread.

        Each check is one task that waits on nothing, and this thread runs
        itself every task no worker has started, so the checks finish even
        when this runs on one of the executor's own threads, all of them busy.
        """
        tasks: list[Future[CheckedBlob]] = [
            executor.submit(self._check_in_place, desc, path) for desc, path in files[1:]
        ]
        try:
            checked = [self._check_in_place(*files[0])]
            for task, (desc, path) in zip(tasks, files[1:], strict=True):
                checked.append(self._check_in_place(desc, path) if task.cancel() else task.result())
            return checked
        except BaseException:
            # The checks still running stop within a read; none outlives this call.
            self._stop.set()
            for task in tasks:
                task.cancel()
            wait(tasks)
            raise

    def _check(self, desc: Descriptor, path: Path | None) -> CheckedBlob:
        if path is None:
            return self._spool(desc)
        return self._check_in_place(desc, path)

    def _name(self, desc: Descriptor) -> str:
        return f"{self.source.reference}: blob {desc.digest}"

    def _check_in_place(self, desc: Descriptor, path: Path) -> CheckedBlob:
        before = _identity(path)
        buffer = bytearray(CHUNK)
        # A verifying stream: it raises on a mismatch. (Sources hand out buffered readers.)
        with cast(io.BufferedIOBase, self.source.open_blob(desc)) as stream:
            while got := stream.readinto(buffer):
                if self._stop.is_set() or (self._cancel is not None and self._cancel.is_set()):
                    raise CheckCancelled(f"{self._name(desc)}: the check was called off")
                if self._progress is not None:
                    self._progress(got)
        if _identity(path) != before:
            raise CorruptError(f"{self._name(desc)}: {path} changed while it was checked")
        source = self.source
        name = self._name(desc)

        def reopen() -> BinaryIO:
            raw = source.open_raw_blob(desc)
            if _identity(path) != before:
                raw.close()
                raise CorruptError(f"{name}: {path} changed after it was checked")
            reader = _Unchanged(raw, path, before, name)
            return cast(BinaryIO, io.BufferedReader(reader, CHUNK))

        return CheckedBlob(desc, reopen)

    def _spool(self, desc: Descriptor) -> CheckedBlob:
        try:
            if self._spool_dir is not None:
                self._spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # TemporaryFile is O_TMPFILE (no name at all) on Linux, else a
            # 0600 file unlinked at once: no other process can open it.
            spool = tempfile.TemporaryFile(dir=self._spool_dir)  # noqa: SIM115 - fd kept below
        except OSError as exc:
            where = self._spool_dir or tempfile.gettempdir()
            raise InvalidInputError(
                f"cannot make a spool file in {where}: {exc.strerror}"
            ) from None
        fd = os.dup(spool.fileno())
        spool.close()
        self._spools.append(fd)
        buffer = bytearray(CHUNK)
        # A verifying stream: it raises on a mismatch. (Sources hand out buffered readers.)
        with cast(io.BufferedIOBase, self.source.open_blob(desc)) as stream:
            while got := stream.readinto(buffer):
                view = memoryview(buffer)[:got]
                while view:
                    view = view[os.write(fd, view) :]
                if self._progress is not None:
                    self._progress(got)
        return CheckedBlob(desc, lambda: _spool_stream(fd, desc.size))

    def close(self) -> None:
        spools, self._spools = self._spools, []
        for fd in spools:
            os.close(fd)
        self._blobs.clear()

    def __enter__(self) -> CheckedImage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _spool_stream(fd: int, size: int) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(_SpoolReader(fd, size), CHUNK))


class CheckedSource(ImageSource):
    """The checked image read as an image source (for the scan before sealing).

    Its blobs come from the checks, so a registry's blob is fetched once, and
    none is hashed again: they are the checked bytes."""

    def __init__(self, image: CheckedImage) -> None:
        self.reference = image.source.reference
        self.manifest = image.manifest
        self.index = image.source.index
        self._image = image

    def _open_raw(self, desc: Descriptor) -> BinaryIO:
        return self._image.blob(desc).open()

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        try:
            blob = self._image.blob(desc)
        except KeyError:
            raise InvalidInputError(f"{self.reference}: no blob {desc.digest}") from None
        if blob.descriptor.size != desc.size:
            raise CorruptError(f"{self.reference}: blob {desc.digest} has the wrong size")
        return blob.open()
