"""Reading the OCI image layout, wherever its files live.

The same layout (``oci-layout``, ``index.json``, ``blobs/sha256/...``) is read
from a directory (``oci:``), from a tar (``oci-archive:``) and from the
OCI-in-tar form that newer ``docker save`` writes, so the logic is written
once against a small ``FileTree`` interface.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.oci.model import (
    DEFAULT_PLATFORM,
    MAX_INDEX_BYTES,
    REF_NAME_ANNOTATION,
    Descriptor,
    Index,
    Manifest,
    Platform,
    load_json,
    parse_index,
    select_platform,
)
from sedis.oci.source import ImageSource, resolve_manifest

MAX_LAYOUT_FILE = 4096


class FileTree(Protocol):
    what: str

    def exists(self, name: str) -> bool: ...

    def read_small(self, name: str, limit: int) -> bytes: ...

    def open(self, name: str) -> BinaryIO: ...

    def backing_file(self, name: str) -> Path:
        """The local file whose bytes ``open(name)`` reads."""
        ...


def blob_path(digest_hex: str) -> str:
    return f"blobs/sha256/{digest_hex}"


class DirTree:
    """Files under a directory, opened without following any symlink.

    A layout is plain files; a symlink anywhere inside it could point a
    reader (or, worse, a writer) outside it, so every component is opened
    with O_NOFOLLOW and the final file must be regular.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.what = str(root)
        if not root.exists():
            raise NotFoundError(f"{root}: no such directory")
        if root.is_symlink() or not root.is_dir():
            raise InvalidInputError(f"{root} is not a directory")

    def _open_fd(self, name: str) -> int:
        parts = name.split("/")
        flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        dir_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in parts[:-1]:
                try:
                    next_fd = os.open(part, flags | os.O_DIRECTORY, dir_fd=dir_fd)
                except FileNotFoundError:
                    raise NotFoundError(f"{self.what}: {name} is missing") from None
                except (NotADirectoryError, OSError) as exc:
                    raise InvalidInputError(
                        f"{self.what}: {name}: {part} is not a plain directory ({exc.strerror})"
                    ) from None
                os.close(dir_fd)
                dir_fd = next_fd
            try:
                fd = os.open(parts[-1], flags | getattr(os, "O_NONBLOCK", 0), dir_fd=dir_fd)
            except FileNotFoundError:
                raise NotFoundError(f"{self.what}: {name} is missing") from None
            except OSError as exc:
                raise InvalidInputError(
                    f"{self.what}: {name} is not a regular file ({exc.strerror})"
                ) from None
        finally:
            os.close(dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InvalidInputError(f"{self.what}: {name} is not a regular file")
        os.set_blocking(fd, True)
        return fd

    def exists(self, name: str) -> bool:
        try:
            os.close(self._open_fd(name))
        except NotFoundError:
            return False
        return True

    def open(self, name: str) -> BinaryIO:
        return os.fdopen(self._open_fd(name), "rb")

    def backing_file(self, name: str) -> Path:
        return self.root / name

    def read_small(self, name: str, limit: int) -> bytes:
        with self.open(name) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise InvalidInputError(f"{self.what}: {name} is over the {limit}-byte limit")
        return data


def read_layout_index(tree: FileTree) -> Index:
    """Check ``oci-layout`` and parse ``index.json``."""
    if not tree.exists("oci-layout"):
        raise InvalidInputError(f"{tree.what} is not an OCI image layout (no oci-layout file)")
    marker = load_json(tree.read_small("oci-layout", MAX_LAYOUT_FILE), "oci-layout", 4096)
    version = marker.get("imageLayoutVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        raise InvalidInputError(f"{tree.what}: unsupported imageLayoutVersion {version!r}")
    if not tree.exists("index.json"):
        raise InvalidInputError(f"{tree.what}: index.json is missing")
    raw = tree.read_small("index.json", MAX_INDEX_BYTES)
    return parse_index(raw, None, f"{tree.what} index.json")


def pick_entry(index: Index, tag: str | None, what: str) -> Sequence[Descriptor]:
    """The index.json entries a tag names (all of them for no tag)."""
    if tag is None:
        return index.manifests
    named = [d for d in index.manifests if d.annotations.get(REF_NAME_ANNOTATION) == tag]
    if not named:
        tags = sorted(
            {
                d.annotations[REF_NAME_ANNOTATION]
                for d in index.manifests
                if REF_NAME_ANNOTATION in d.annotations
            }
        )
        listing = ", ".join(tags) or "none"
        raise NotFoundError(f"{what}: no image tagged {tag!r} (tags: {listing})")
    return named


class LayoutSource(ImageSource):
    """An image in an OCI layout held by any FileTree."""

    def __init__(
        self,
        tree: FileTree,
        reference: str,
        tag: str | None = None,
        platform: Platform | None = None,
    ) -> None:
        self.tree = tree
        self.reference = reference
        self.layout_index = read_layout_index(tree)
        entries = pick_entry(self.layout_index, tag, reference)
        if not entries:
            raise NotFoundError(f"{reference}: the layout holds no image")
        if len(entries) == 1:
            desc = entries[0]
        else:
            # Several entries under one name (or none given): let the platform
            # decide when they carry platforms, as a multi-platform index does.
            pseudo = Index(self.layout_index.media_type, tuple(entries), {}, b"")
            if all(d.platform is not None for d in entries):
                desc = select_platform(pseudo, platform or DEFAULT_PLATFORM, reference)
            else:
                names = sorted({d.annotations.get(REF_NAME_ANNOTATION, "?") for d in entries})
                raise InvalidInputError(
                    f"{reference}: the layout holds {len(entries)} images; "
                    f"name one with :TAG (tags: {', '.join(names)})"
                )
        self.top_descriptor = desc
        self.manifest, self.index = resolve_manifest(self, desc, platform, reference)

    def _open_raw(self, desc: Descriptor) -> BinaryIO:
        return self.tree.open(blob_path(desc.hex))

    def has_blob(self, desc: Descriptor) -> bool:
        return self.tree.exists(blob_path(desc.hex))

    def blob_file(self, desc: Descriptor) -> Path | None:
        return self.tree.backing_file(blob_path(desc.hex))


def load_manifest_from(tree: FileTree, reference: str, desc: Descriptor) -> Manifest:
    """Read one manifest blob from a layout tree by descriptor (verified)."""

    class _Probe(ImageSource):
        def __init__(self) -> None:
            self.reference = reference

        def _open_raw(self, d: Descriptor) -> BinaryIO:
            return tree.open(blob_path(d.hex))

    manifest, _ = resolve_manifest(_Probe(), desc, None, reference)
    return manifest
