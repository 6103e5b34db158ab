"""``oci:DIR[:TAG]``: an OCI image layout directory.

Writing a new layout builds it in a hidden sibling directory and renames it
into place at commit. Adding an image to an existing layout writes each blob
under a temporary name and renames it only once its digest checked (blobs are
content-addressed, so a finished blob is final), then replaces index.json
atomically last; an interrupted write leaves the old index untouched. A blob
file already in the layout is reused only after it hashes whole to its name;
one that does not is replaced by the checked blob.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO

from sedis.core.errors import ConflictError, InvalidInputError
from sedis.fsutil import atomic_write_bytes
from sedis.oci.layout import DirTree, LayoutSource, blob_path, read_layout_index
from sedis.oci.model import (
    OCI_INDEX,
    REF_NAME_ANNOTATION,
    Descriptor,
    Index,
    Manifest,
    Platform,
)
from sedis.oci.sink import ImageSink, copy_stream, fsync_dir
from sedis.oci.streams import CHUNK

OCI_LAYOUT_BYTES = b'{"imageLayoutVersion":"1.0.0"}'


class OciLayoutSource(LayoutSource):
    def __init__(self, root: Path, tag: str | None = None, platform: Platform | None = None):
        reference = f"oci:{root}" + (f":{tag}" if tag else "")
        super().__init__(DirTree(root), reference, tag, platform)


def index_json(entries: list[Descriptor]) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [e.to_json() for e in entries],
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def merge_index(old: list[Descriptor], new: list[Descriptor]) -> list[Descriptor]:
    """index.json entries after adding ``new``: a tag moves, exact repeats collapse."""
    new_tags = {d.annotations.get(REF_NAME_ANNOTATION) for d in new} - {None}
    kept = [d for d in old if d.annotations.get(REF_NAME_ANNOTATION) not in new_tags]
    out: list[Descriptor] = []
    for desc in kept + new:
        if desc not in out:
            out.append(desc)
    return out


def plain_directory(path: Path, what: str) -> None:
    """Make sure ``path`` is a directory itself (not a link to one), creating it if missing."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        path.mkdir()
        return
    if stat.S_ISLNK(mode):
        raise InvalidInputError(f"{what} is a symlink; refusing to write")
    if not stat.S_ISDIR(mode):
        raise ConflictError(f"{what} is not a directory; refusing to write")


def holds_blob(blobs: Path, desc: Descriptor, what: str) -> bool:
    """Is ``blobs/<hex>`` a regular file of exactly the blob's size and digest?

    The whole file is hashed: a size that matches proves nothing. A directory
    under the name cannot be renamed over, so it is refused here, before any
    of the blob is fetched.
    """
    name = desc.hex
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(blobs / name, flags)
    except OSError:  # missing, a symlink (ELOOP), or anything else that is no plain file
        return False
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size != desc.size:
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConflictError(
                f"{what}: blobs/sha256/{name} is a directory; refusing to replace it"
            )
        return False
    with os.fdopen(fd, "rb", buffering=0) as handle:
        # One byte past the size is read, so a file that grew since fstat fails too.
        count, hex_digest = hash_prefix(handle, desc.size + 1)
        return count == desc.size and hex_digest == name


def hash_prefix(handle: io.FileIO, limit: int) -> tuple[int, str]:
    """(bytes read, their hex sha256) for up to ``limit`` bytes, a chunk at a time."""
    digest = hashlib.sha256()
    view = memoryview(bytearray(CHUNK))
    count = 0
    while count < limit:
        got = handle.readinto(view[: min(CHUNK, limit - count)])
        if not got:
            break
        digest.update(view[:got])
        count += got
    return count, digest.hexdigest()


class OciLayoutSink(ImageSink):
    def __init__(self, dest: Path, tag: str | None = None) -> None:
        super().__init__()
        self.dest = dest
        self.reference = f"oci:{dest}" + (f":{tag}" if tag else "")
        self.default_tag = tag
        self._entries: list[Descriptor] = []
        parent = dest.parent if str(dest.parent) else Path()
        if not parent.is_dir():
            raise InvalidInputError(f"cannot write {dest}: {parent} is not a directory")
        if dest.is_symlink():
            raise InvalidInputError(f"cannot write {dest}: it is a symlink")
        if dest.exists() and not dest.is_dir():
            raise ConflictError(f"cannot write {dest}: it exists and is not a directory")
        self._update = dest.is_dir() and any(dest.iterdir())
        if self._update:
            # Refuses anything that is not already a layout, before writing a byte.
            self._old = list(read_layout_index(DirTree(dest)).manifests)
            self._root = dest
        else:
            self._old = []
            self._root = parent / f".{dest.name}.{secrets.token_hex(6)}.partial"
            (self._root / "blobs" / "sha256").mkdir(parents=True)
        self._blobs = self._root / "blobs" / "sha256"
        if self._update:
            # Every component is looked at before any is created: a symlink would
            # have mkdir build directories wherever it points.
            for name in ("blobs", "blobs/sha256"):
                plain_directory(self._root / name, f"{dest}: {name}/")
        self._temps: list[Path] = []
        # Existing blobs already hashed, by digest: did the file hold the blob?
        self._hashed: dict[str, bool] = {}

    def _has_existing(self, desc: Descriptor) -> bool:
        """A blob file already at the destination counts only once it hashes to its name.

        Anything else under the name (wrong bytes, a symlink, a pipe) is not
        the blob; the caller then writes the real one beside it and renames
        it over, so the layout ends up holding what its index names.
        """
        if not self._update:
            return False
        held = self._hashed.get(desc.digest)
        if held is None:
            held = self._hashed[desc.digest] = holds_blob(self._blobs, desc, str(self.dest))
        return held

    def _new_temp(self) -> Path:
        tmp = self._blobs / f".tmp-{secrets.token_hex(8)}"
        self._temps.append(tmp)
        return tmp

    def _write_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        tmp = self._new_temp()
        with open(tmp, "xb") as out:
            copy_stream(stream, out, durable=True)  # raises CorruptError on any mismatch
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._blobs / desc.hex)
        self._temps.remove(tmp)

    def _write_manifest(self, desc: Descriptor, raw: bytes, doc: Manifest | Index) -> None:
        if not self.has_blob(desc):
            self._write_blob(desc, io.BytesIO(raw))
        self._entries.append(desc)

    def _commit(self) -> None:
        if not self._entries:
            raise InvalidInputError(f"{self.reference}: nothing to commit (no manifest written)")
        entries = merge_index(self._old, self._entries)
        atomic_write_bytes(self._root / "index.json", index_json(entries))
        if self._update:
            return
        atomic_write_bytes(self._root / "oci-layout", OCI_LAYOUT_BYTES)
        fsync_dir(self._blobs)
        try:
            os.rename(self._root, self.dest)  # replaces only a missing or empty dest
        except OSError as exc:
            shutil.rmtree(self._root, ignore_errors=True)
            raise ConflictError(f"cannot write {self.dest}: {exc.strerror}") from None
        fsync_dir(self.dest.parent if str(self.dest.parent) else Path())

    def _abort(self) -> None:
        if self._update:
            for tmp in self._temps:
                tmp.unlink(missing_ok=True)
        else:
            shutil.rmtree(self._root, ignore_errors=True)


# Kept for callers that want the blob path of a layout they wrote.
__all__ = ["OciLayoutSink", "OciLayoutSource", "blob_path", "index_json", "merge_index"]
