"""Writing images into a single tar file (oci-archive:, docker-archive:).

The tar is streamed into a hidden sibling of the destination, each blob
copied through its digest check, and renamed over the destination only at
commit. Headers are deterministic (mtime 0, root-owned, fixed modes), so the
same image gives the same archive bytes.
"""

from __future__ import annotations

import io
import os
import secrets
import tarfile
from pathlib import Path
from typing import BinaryIO

from sedis.core.errors import ConflictError, CorruptError, InvalidInputError
from sedis.oci.layout import blob_path
from sedis.oci.model import Descriptor, Index, Manifest
from sedis.oci.oci_layout import OCI_LAYOUT_BYTES, index_json
from sedis.oci.sink import ImageSink, copy_stream, fsync_dir

BLOCK = 512


class TarWriter:
    """A minimal deterministic tar writer that streams file contents."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._names: set[str] = set()

    def _header(self, name: str, kind: bytes, size: int, mode: int) -> None:
        if name in self._names:
            return
        self._names.add(name)
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = size
        info.mode = mode
        info.mtime = 0
        self._out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def add_dir(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", tarfile.DIRTYPE, 0, 0o755)

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_stream(name, len(data), io.BytesIO(data))

    def add_stream(self, name: str, size: int, stream: BinaryIO) -> None:
        if name in self._names:
            raise InvalidInputError(f"archive entry {name} written twice")
        self._header(name, tarfile.REGTYPE, size, 0o444)
        copied = copy_stream(stream, self._out, durable=True)
        if copied != size:  # a checked stream raises first; this guards unchecked ones
            raise CorruptError(f"{name}: {copied} bytes where {size} were declared")
        self._out.write(bytes(-size % BLOCK))

    def close(self) -> None:
        self._out.write(bytes(2 * BLOCK))


class ArchiveSink(ImageSink):
    """An image layout (and, for docker-archive, manifest.json) inside one tar."""

    def __init__(self, dest: Path, reference: str) -> None:
        super().__init__()
        self.dest = dest
        self.reference = reference
        parent = dest.parent if str(dest.parent) else Path()
        if not parent.is_dir():
            raise InvalidInputError(f"cannot write {dest}: {parent} is not a directory")
        if dest.is_dir() or dest.is_symlink():
            raise ConflictError(f"cannot write {dest}: it is a directory or a symlink")
        self._tmp = parent / f".{dest.name}.{secrets.token_hex(6)}.partial"
        self._file = open(self._tmp, "xb")  # noqa: SIM115 - closed at commit or abort
        self.tar = TarWriter(self._file)
        self.entries: list[Descriptor] = []
        self.manifests: list[tuple[Descriptor, Manifest | Index]] = []
        self._start()

    def _start(self) -> None:
        self.tar.add_dir("blobs")
        self.tar.add_dir("blobs/sha256")

    def _blob_name(self, desc: Descriptor) -> str:
        return blob_path(desc.hex)

    def _write_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        self.tar.add_stream(self._blob_name(desc), desc.size, stream)

    def _write_manifest(self, desc: Descriptor, raw: bytes, doc: Manifest | Index) -> None:
        self._check_manifest(desc, doc)
        if not self.has_blob(desc):
            self._write_blob(desc, io.BytesIO(raw))
        self.entries.append(desc)
        self.manifests.append((desc, doc))

    def _check_manifest(self, desc: Descriptor, doc: Manifest | Index) -> None:
        """A transport that cannot hold some manifests refuses them here."""

    def _finish(self) -> None:
        self.tar.add_bytes("oci-layout", OCI_LAYOUT_BYTES)
        self.tar.add_bytes("index.json", index_json(self.entries))

    def _commit(self) -> None:
        if not self.entries:
            raise InvalidInputError(f"{self.reference}: nothing to commit (no manifest written)")
        try:
            self._finish()
            self.tar.close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.dest)
        except BaseException:
            self._abort()
            raise
        fsync_dir(self.dest.parent if str(self.dest.parent) else Path())

    def _abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)
