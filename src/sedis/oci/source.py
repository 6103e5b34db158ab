"""ImageSource: one image, read from any transport, checked as it is read.

A source resolves its reference to exactly one image manifest when it is
opened (narrowing a multi-platform index to one platform) and keeps that
manifest's exact bytes: the image's identity is their sha256, so they are
never re-serialized. Blobs come out as streams that verify size and digest
while they are read and raise CorruptError at the end on any mismatch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from sedis.core.errors import InvalidInputError
from sedis.oci.model import (
    DEFAULT_PLATFORM,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_CONFIG_BYTES,
    MAX_INDEX_BYTES,
    MAX_MANIFEST_BYTES,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    parse_config,
    parse_index,
    parse_manifest,
    select_platform,
)
from sedis.oci.streams import read_verified, verifying

MAX_INDEX_DEPTH = 4


class ImageSource(ABC):
    """One image manifest and the blobs it names."""

    reference: str
    manifest: Manifest
    # The index (or manifest list) the manifest was picked from, if any.
    index: Index | None = None

    @property
    def manifest_bytes(self) -> bytes:
        return self.manifest.raw

    @property
    def manifest_digest(self) -> str:
        return self.manifest.digest

    @property
    def media_type(self) -> str:
        return self.manifest.media_type

    @abstractmethod
    def _open_raw(self, desc: Descriptor) -> BinaryIO:
        """The blob's bytes as stored, unverified (the base class verifies)."""

    def open_raw_blob(self, desc: Descriptor) -> BinaryIO:
        """The blob's bytes as stored, unverified: only for a caller that checks
        them itself, as it reads them (see oci.streams.verifying) or because
        they were checked already and its reader sees any change (oci.checked)."""
        return self._open_raw(desc)

    def blob_file(self, desc: Descriptor) -> Path | None:
        """The local file that holds the blob's bytes, if there is one.

        A blob read from a local file can be checked where it lies and read
        again, and several such blobs can be read at once from different
        threads (each opens a descriptor of its own); any other is spooled
        before it is used (oci.checked), and read one at a time."""
        return None

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """The blob as a stream that raises CorruptError unless it matches ``desc``."""
        return verifying(self._open_raw(desc), desc.digest, desc.size, self._blob_name(desc))

    def read_blob(self, desc: Descriptor, limit: int) -> bytes:
        """A small blob (a manifest or config) read whole and verified."""
        if desc.size > limit:
            raise InvalidInputError(
                f"{self._blob_name(desc)} is {desc.size} bytes, over the {limit}-byte limit"
            )
        return read_verified(self.open_blob(desc), limit, self._blob_name(desc))

    def config_bytes(self) -> bytes:
        """The exact config blob (encrypted configs come back as ciphertext)."""
        return self.read_blob(self.manifest.config, MAX_CONFIG_BYTES)

    def config(self) -> ImageConfig:
        if self.manifest.config.encrypted:
            raise InvalidInputError(f"{self.reference}: the config is encrypted")
        return parse_config(self.config_bytes(), f"{self.reference} config")

    def _blob_name(self, desc: Descriptor) -> str:
        return f"{self.reference}: blob {desc.digest}"

    def close(self) -> None:  # noqa: B027 - most sources hold nothing open
        """Release what the source holds open."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def resolve_manifest(
    source: ImageSource, desc: Descriptor, platform: Platform | None, what: str
) -> tuple[Manifest, Index | None]:
    """Follow ``desc`` through (nested) indexes to one image manifest."""
    wanted = platform or DEFAULT_PLATFORM
    index: Index | None = None
    for _ in range(MAX_INDEX_DEPTH):
        if desc.media_type in MANIFEST_TYPES:
            raw = source.read_blob(desc, MAX_MANIFEST_BYTES)
            return parse_manifest(raw, desc.media_type, f"{what} manifest"), index
        if desc.media_type in INDEX_TYPES:
            raw = source.read_blob(desc, MAX_INDEX_BYTES)
            index = parse_index(raw, desc.media_type, f"{what} index")
            desc = select_platform(index, wanted, what)
            continue
        raise InvalidInputError(f"{what}: unknown manifest media type {desc.media_type!r}")
    raise InvalidInputError(f"{what}: indexes nested more than {MAX_INDEX_DEPTH} deep")
