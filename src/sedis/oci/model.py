"""The image model: descriptors, manifests, indexes and configs, with no I/O.

An image's identity is the sha256 of its exact manifest bytes, so everything
here parses bytes it is given and keeps them; nothing re-serializes a document
it read. Conversion between Docker schema2 and OCI media types produces *new*
manifest bytes (and so a new digest) and is only done when a destination asks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sedis.core.errors import InvalidInputError
from sedis.core.jsonsafe import check_depth

# -- limits -------------------------------------------------------------------

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_INDEX_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024
MAX_DESCRIPTORS = 10_000  # layers or index entries in one document
MAX_ANNOTATIONS = 1_000

# -- media types --------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
# Docker calls every layer "tar.gzip", even the uncompressed ones that
# `docker save` archives present (readers must sniff, not trust, compression).
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

ENCRYPTED_SUFFIX = "+encrypted"
OCI_CONFIG_ENCRYPTED = OCI_CONFIG + ENCRYPTED_SUFFIX

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG, OCI_CONFIG_ENCRYPTED})
_PLAIN_LAYER_TYPES = frozenset(
    {
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        OCI_LAYER_NONDIST,
        OCI_LAYER_NONDIST_GZIP,
        DOCKER_LAYER,
        DOCKER_LAYER_GZIP,
        DOCKER_FOREIGN_LAYER,
    }
)
LAYER_TYPES = _PLAIN_LAYER_TYPES | {t + ENCRYPTED_SUFFIX for t in _PLAIN_LAYER_TYPES}
FOREIGN_LAYER_TYPES = frozenset({DOCKER_FOREIGN_LAYER, OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP})

# Every manifest media type an image reader accepts, in preference order.
ACCEPT_MANIFESTS = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

# Faithful one-to-one mapping between the two families. The OCI spec defines
# its types as compatible with these Docker ones; zstd and the +encrypted
# types have no Docker counterpart and so do not convert.
_DOCKER_TO_OCI = {
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_MANIFEST_LIST: OCI_INDEX,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER: OCI_LAYER,
    DOCKER_FOREIGN_LAYER: OCI_LAYER_NONDIST_GZIP,
}
_OCI_TO_DOCKER = {v: k for k, v in _DOCKER_TO_OCI.items()}
# Both nondistributable OCI layers map back to Docker's one foreign type.
_OCI_TO_DOCKER[OCI_LAYER_NONDIST] = DOCKER_FOREIGN_LAYER

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

# -- digests ------------------------------------------------------------------

_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_SHA256_HEX = re.compile(r"^[a-f0-9]{64}$")


def sha256_digest(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest: str) -> str:
    """The hex part of a sha256 digest; any other algorithm is refused by name."""
    match = _DIGEST_RE.match(digest) if isinstance(digest, str) else None
    if match is None:
        raise InvalidInputError(f"malformed digest {str(digest)[:80]!r}")
    algorithm, encoded = match.groups()
    if algorithm != "sha256":
        raise InvalidInputError(f"digest algorithm {algorithm!r} is not supported (only sha256)")
    if not _SHA256_HEX.match(encoded):
        raise InvalidInputError(f"malformed sha256 digest {digest[:80]!r}")
    return encoded


def check_digest(digest: str) -> str:
    """Return ``digest`` after checking it is a well-formed sha256 digest."""
    digest_hex(digest)
    return digest


# -- descriptors and platforms --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``os/arch[/variant]``, as in ``--platform linux/arm64/v8``."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidInputError(f"platform {text!r} is not os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, other: Platform) -> bool:
        """Does ``other`` (an index entry) satisfy this wanted platform?"""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        if self.variant is None:
            return True
        return _norm_variant(self.architecture, self.variant) == _norm_variant(
            other.architecture, other.variant
        )

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        return out


def _norm_variant(arch: str, variant: str | None) -> str | None:
    # arm64 images often omit their (only) variant v8; treat the two alike.
    if arch == "arm64" and variant in (None, "v8"):
        return "v8"
    return variant


DEFAULT_PLATFORM = Platform("linux", "amd64")


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    platform: Platform | None = None
    artifact_type: str | None = None

    @property
    def hex(self) -> str:
        return digest_hex(self.digest)

    @property
    def encrypted(self) -> bool:
        return self.media_type.endswith(ENCRYPTED_SUFFIX)

    def to_json(self) -> dict[str, Any]:
        """The descriptor as OCI JSON, with the spec's field names."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    """An image manifest (OCI or Docker schema2)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str]
    raw: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    def descriptors(self) -> tuple[Descriptor, ...]:
        """The config then every layer: all blobs the image needs."""
        return (self.config, *self.layers)


@dataclass(frozen=True, slots=True)
class Index:
    """An OCI image index or a Docker manifest list."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str]
    raw: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of an image config that sedis reads; ``raw`` keeps the exact bytes."""

    architecture: str
    os: str
    variant: str | None
    diff_ids: tuple[str, ...]
    raw: bytes
    doc: Mapping[str, Any]

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)


# -- parsing ------------------------------------------------------------------


def load_json(data: bytes, what: str, limit: int) -> dict[str, Any]:
    """Parse a bounded JSON object, refusing anything else in one line."""
    if len(data) > limit:
        raise InvalidInputError(f"{what} is {len(data)} bytes, over the {limit}-byte limit")
    check_depth(data, what=what)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidInputError(f"{what} is not valid JSON: {_first_line(exc)}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{what} is not a JSON object")
    return doc


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_ANNOTATIONS:
        raise InvalidInputError(f"{what}: annotations must be a bounded object of strings")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidInputError(f"{what}: annotations must map strings to strings")
    return dict(value)


def parse_platform(value: Any, what: str) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what}: platform must be an object")
    os_, arch = value.get("os"), value.get("architecture")
    variant, os_version = value.get("variant"), value.get("os.version")
    features = value.get("os.features") or []
    if not isinstance(os_, str) or not isinstance(arch, str):
        raise InvalidInputError(f"{what}: platform needs string os and architecture")
    if variant is not None and not isinstance(variant, str):
        raise InvalidInputError(f"{what}: platform variant must be a string")
    if os_version is not None and not isinstance(os_version, str):
        raise InvalidInputError(f"{what}: platform os.version must be a string")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise InvalidInputError(f"{what}: platform os.features must be strings")
    return Platform(os_, arch, variant, os_version, tuple(features))


def parse_descriptor(value: Any, what: str) -> Descriptor:
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what}: descriptor must be an object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise InvalidInputError(f"{what}: descriptor has no mediaType")
    if not isinstance(digest, str):
        raise InvalidInputError(f"{what}: descriptor has no digest")
    try:
        digest_hex(digest)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{what}: {exc}") from None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInputError(f"{what}: descriptor size must be a non-negative integer")
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise InvalidInputError(f"{what}: descriptor urls must be strings")
    artifact = value.get("artifactType")
    if artifact is not None and not isinstance(artifact, str):
        raise InvalidInputError(f"{what}: artifactType must be a string")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=_str_map(value.get("annotations"), what),
        urls=tuple(urls),
        platform=parse_platform(value.get("platform"), what),
        artifact_type=artifact,
    )


def _document_type(doc: Mapping[str, Any], hint: str | None, what: str) -> str:
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise InvalidInputError(f"{what}: mediaType must be a string")
    if declared and hint and declared != hint:
        raise InvalidInputError(f"{what}: says it is {declared} but was described as {hint}")
    media_type = declared or hint
    if media_type is None:
        # An OCI document may omit mediaType; its shape then says which it is.
        if "manifests" in doc:
            media_type = OCI_INDEX
        elif "config" in doc:
            media_type = OCI_MANIFEST
        else:
            raise InvalidInputError(f"{what}: neither a manifest nor an index")
    if doc.get("schemaVersion") != 2:
        raise InvalidInputError(f"{what}: schemaVersion must be 2")
    return media_type


def parse_manifest(raw: bytes, media_type: str | None = None, what: str = "manifest") -> Manifest:
    doc = load_json(raw, what, MAX_MANIFEST_BYTES)
    kind = _document_type(doc, media_type, what)
    if kind not in MANIFEST_TYPES:
        raise InvalidInputError(f"{what}: unsupported manifest media type {kind!r}")
    config = parse_descriptor(doc.get("config"), f"{what} config")
    if config.media_type not in CONFIG_TYPES:
        raise InvalidInputError(f"{what}: unknown config media type {config.media_type!r}")
    layers_json = doc.get("layers")
    if not isinstance(layers_json, list) or len(layers_json) > MAX_DESCRIPTORS:
        raise InvalidInputError(f"{what}: layers must be a bounded list")
    layers = tuple(
        parse_descriptor(item, f"{what} layer {i}") for i, item in enumerate(layers_json)
    )
    for i, layer in enumerate(layers):
        if layer.media_type not in LAYER_TYPES:
            raise InvalidInputError(f"{what} layer {i}: unknown media type {layer.media_type!r}")
    return Manifest(kind, config, layers, _str_map(doc.get("annotations"), what), raw)


def parse_index(raw: bytes, media_type: str | None = None, what: str = "index") -> Index:
    doc = load_json(raw, what, MAX_INDEX_BYTES)
    kind = _document_type(doc, media_type, what)
    if kind not in INDEX_TYPES:
        raise InvalidInputError(f"{what}: unsupported index media type {kind!r}")
    items = doc.get("manifests")
    if not isinstance(items, list) or len(items) > MAX_DESCRIPTORS:
        raise InvalidInputError(f"{what}: manifests must be a bounded list")
    manifests = tuple(parse_descriptor(item, f"{what} entry {i}") for i, item in enumerate(items))
    return Index(kind, manifests, _str_map(doc.get("annotations"), what), raw)


def parse_document(raw: bytes, media_type: str | None, what: str) -> Manifest | Index:
    """A manifest or an index, told apart by media type (declared or described)."""
    doc_type = media_type
    if doc_type is None:
        doc = load_json(raw, what, MAX_MANIFEST_BYTES)
        doc_type = _document_type(doc, None, what)
    if doc_type in INDEX_TYPES:
        return parse_index(raw, media_type, what)
    if doc_type in MANIFEST_TYPES:
        return parse_manifest(raw, media_type, what)
    raise InvalidInputError(f"{what}: unknown media type {doc_type!r}")


def parse_config(raw: bytes, what: str = "config") -> ImageConfig:
    doc = load_json(raw, what, MAX_CONFIG_BYTES)
    arch, os_ = doc.get("architecture", ""), doc.get("os", "")
    variant = doc.get("variant")
    if not isinstance(arch, str) or not isinstance(os_, str):
        raise InvalidInputError(f"{what}: architecture and os must be strings")
    if variant is not None and not isinstance(variant, str):
        raise InvalidInputError(f"{what}: variant must be a string")
    rootfs = doc.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if diff_ids is None:
        diff_ids = []
    if not isinstance(diff_ids, list) or len(diff_ids) > MAX_DESCRIPTORS:
        raise InvalidInputError(f"{what}: rootfs.diff_ids must be a bounded list")
    for d in diff_ids:
        if not isinstance(d, str):
            raise InvalidInputError(f"{what}: rootfs.diff_ids must be digests")
        digest_hex(d)
    return ImageConfig(arch, os_, variant, tuple(diff_ids), raw, doc)


def select_platform(index: Index, wanted: Platform, where: str) -> Descriptor:
    """The one manifest of ``index`` for ``wanted``; no match names what there is."""
    available: list[str] = []
    for desc in index.manifests:
        if desc.media_type not in MANIFEST_TYPES and desc.media_type not in INDEX_TYPES:
            continue
        if desc.platform is None:
            continue
        if wanted.matches(desc.platform):
            return desc
        available.append(str(desc.platform))
    listing = ", ".join(sorted(set(available))) or "none with a platform"
    raise InvalidInputError(f"{where} has no image for {wanted}; available: {listing}")


# -- media type conversion ------------------------------------------------------


def to_oci_type(media_type: str) -> str:
    return _DOCKER_TO_OCI.get(media_type, media_type)


def to_docker_type(media_type: str) -> str:
    if media_type.endswith(ENCRYPTED_SUFFIX) or media_type == OCI_LAYER_ZSTD:
        raise InvalidInputError(f"{media_type} has no Docker schema2 equivalent")
    return _OCI_TO_DOCKER.get(media_type, media_type)


def _manifest_json(
    media_type: str,
    config: Descriptor,
    layers: tuple[Descriptor, ...],
    annotations: Mapping[str, str],
) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _retype(desc: Descriptor, media_type: str) -> Descriptor:
    return Descriptor(
        media_type, desc.digest, desc.size, desc.annotations, desc.urls, desc.platform
    )


def convert_manifest(manifest: Manifest, family: str) -> Manifest:
    """The same image under the other family's media types ("oci" or "docker").

    Blobs are untouched (their bytes and digests stay), only the manifest's
    type strings change, so the result is a new manifest with a new digest.
    Docker schema2 has no annotations on the manifest or on descriptors, so a
    conversion to Docker refuses rather than drop them silently.
    """
    if family == "oci":
        if manifest.media_type == OCI_MANIFEST:
            return manifest
        config = _retype(manifest.config, to_oci_type(manifest.config.media_type))
        layers = tuple(_retype(lay, to_oci_type(lay.media_type)) for lay in manifest.layers)
        raw = _manifest_json(OCI_MANIFEST, config, layers, manifest.annotations)
        return parse_manifest(raw)
    if family == "docker":
        if manifest.media_type == DOCKER_MANIFEST:
            return manifest
        if manifest.annotations or any(d.annotations for d in manifest.descriptors()):
            raise InvalidInputError("annotations cannot be kept in a Docker schema2 manifest")
        config = _retype(manifest.config, to_docker_type(manifest.config.media_type))
        layers = tuple(_retype(lay, to_docker_type(lay.media_type)) for lay in manifest.layers)
        raw = _manifest_json(DOCKER_MANIFEST, config, layers, {})
        return parse_manifest(raw)
    raise InvalidInputError(f"unknown media type family {family!r} (oci or docker)")
