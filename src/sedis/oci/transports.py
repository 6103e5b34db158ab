"""Opening sources and sinks by reference, and copying images between them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from sedis.core.errors import InvalidInputError
from sedis.oci.model import Descriptor, Manifest, Platform, convert_manifest
from sedis.oci.reference import ImageReference, parse_reference
from sedis.oci.sink import ImageSink
from sedis.oci.source import ImageSource
from sedis.oci.streams import verifying


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How to reach a docker:// registry."""

    username: str | None = None
    password: str | None = None
    insecure: bool = False  # plain HTTP instead of TLS
    verify: bool | str = True  # TLS verification, or a CA bundle path
    timeout: float = 60.0
    # Upload blobs in PATCH chunks of this many bytes; None sends each in one PUT.
    chunk_size: int | None = None


def _ref(ref: str | ImageReference) -> ImageReference:
    return parse_reference(ref) if isinstance(ref, str) else ref


def open_source(
    ref: str | ImageReference,
    platform: Platform | str | None = None,
    registry: RegistryOptions | None = None,
) -> ImageSource:
    """The image ``ref`` names, resolved to one manifest (for ``platform``)."""
    reference = _ref(ref)
    wanted = Platform.parse(platform) if isinstance(platform, str) else platform
    if reference.transport == "oci":
        from sedis.oci.oci_layout import OciLayoutSource

        assert reference.path is not None
        return OciLayoutSource(reference.path, reference.tag, wanted)
    if reference.transport == "oci-archive":
        from sedis.oci.oci_archive import OciArchiveSource

        assert reference.path is not None
        return OciArchiveSource(reference.path, reference.tag, wanted)
    if reference.transport == "docker-archive":
        from sedis.oci.docker_archive import DockerArchiveSource

        assert reference.path is not None
        return DockerArchiveSource(reference.path, reference.name, wanted)
    if reference.transport == "docker":
        from sedis.oci.registry import RegistrySource

        assert reference.name is not None
        return RegistrySource(reference.name, wanted, registry or RegistryOptions())
    raise InvalidInputError(f"unknown transport {reference.transport!r}")


def open_sink(
    ref: str | ImageReference,
    registry: RegistryOptions | None = None,
    *,
    legacy_docker_archive: bool = False,
) -> ImageSink:
    """A sink for ``ref``; nothing appears there until ``commit()``."""
    reference = _ref(ref)
    if reference.transport == "oci":
        from sedis.oci.oci_layout import OciLayoutSink

        assert reference.path is not None
        return OciLayoutSink(reference.path, reference.tag)
    if reference.transport == "oci-archive":
        from sedis.oci.oci_archive import OciArchiveSink

        assert reference.path is not None
        return OciArchiveSink(reference.path, reference.tag)
    if reference.transport == "docker-archive":
        from sedis.oci.docker_archive import DockerArchiveSink

        assert reference.path is not None
        return DockerArchiveSink(reference.path, reference.name, legacy=legacy_docker_archive)
    if reference.transport == "docker":
        from sedis.oci.registry import RegistrySink

        assert reference.name is not None
        return RegistrySink(reference.name, registry or RegistryOptions())
    raise InvalidInputError(f"unknown transport {reference.transport!r}")


def copy_image(
    source: ImageSource,
    sink: ImageSink,
    *,
    convert: str | None = None,
    progress: Callable[[Descriptor], None] | None = None,
) -> Manifest:
    """Copy the source's image into ``sink`` and commit it; return what was written.

    The manifest is written byte for byte unless ``convert`` ("oci" or
    "docker") asks for the other media-type family, which gives a new
    manifest (and digest) over the very same blobs.

    Each blob is checked as it is copied, its hash taken on another thread:
    the sink's writes (and a decrypting source's reads) keep this one busy.
    """
    manifest = source.manifest if convert is None else convert_manifest(source.manifest, convert)
    with sink:
        for desc in source.manifest.descriptors():
            if progress is not None:
                progress(desc)
            if sink.has_blob(desc):
                continue
            sink.put_blob(desc, _hashed_aside(source, desc))
        sink.put_manifest(manifest.raw, manifest.media_type)
        sink.commit()
    return manifest


def _hashed_aside(source: ImageSource, desc: Descriptor) -> BinaryIO:
    """The blob, checked against ``desc`` as it is read, hashed beside the reader."""
    raw = source.open_raw_blob(desc)
    return verifying(
        raw, desc.digest, desc.size, f"{source.reference}: blob {desc.digest}", hash_aside=True
    )
