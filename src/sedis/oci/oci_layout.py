"""``oci:DIR[:TAG]``: an OCI image layout directory.

Writing a new layout builds it in a hidden sibling directory and renames it
into place at commit. Adding an image to an existing layout writes each blob
under a temporary name and renames it only once its digest checked (blobs are
content-addressed, so a finished blob is final), then replaces index.json
atomically last; an interrupted write leaves the old index untouched.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
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
            self._blobs.mkdir(parents=True, exist_ok=True)
            if self._blobs.is_symlink() or (self._root / "blobs").is_symlink():
                raise InvalidInputError(f"{dest}: blobs/ is a symlink; refusing to write")
        self._temps: list[Path] = []

    def _has_existing(self, desc: Descriptor) -> bool:
        if not self._update:
            return False
        path = self._blobs / desc.hex
        return not path.is_symlink() and path.is_file() and path.stat().st_size == desc.size

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
