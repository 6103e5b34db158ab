"""``docker-archive:PATH[:NAME:TAG]``: the tars of ``docker save`` / ``docker load``.

Two layouts exist. The legacy one (docker before 25, skopeo, podman) holds
``manifest.json`` naming a config file and one layer tar per layer, and no
registry manifest at all; the manifest is synthesized here exactly as
containers/image (skopeo, podman) presents it, so the image digest is the one
those tools report: Docker schema2, layer digests equal to the config's
diff_ids, sizes of the uncompressed tars, and every layer typed "tar.gzip"
(Docker's name for any layer). The newer one (docker 25 and later) is an OCI
layout with ``manifest.json`` beside it; there the real manifest's exact bytes
are found through index.json and used as they are.

Writing produces the newer form by default, because only it keeps the
manifest bytes (and so the image's digest) through an archive; both docker
load and podman load read it through manifest.json. ``legacy=True`` writes
the older form.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sedis.core import jsonsafe
from sedis.core.errors import CorruptError, InvalidInputError, NotFoundError
from sedis.oci.archive_sink import ArchiveSink
from sedis.oci.compression import GZIP, decompressed, sniff
from sedis.oci.layout import blob_path, read_layout_index
from sedis.oci.model import (
    CONFIG_TYPES,
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_CONFIG_BYTES,
    MAX_INDEX_BYTES,
    MAX_MANIFEST_BYTES,
    Descriptor,
    Index,
    Manifest,
    Platform,
    parse_config,
    parse_descriptor,
    parse_index,
    parse_manifest,
    sha256_digest,
)
from sedis.oci.reference import DockerName, parse_docker_name
from sedis.oci.source import ImageSource
from sedis.oci.tarsafe import ArchiveIndex, clean_name

IMAGE_NAME_ANNOTATION = "io.containerd.image.name"
MAX_WALK = 256


@dataclass(frozen=True, slots=True)
class _SaveEntry:
    config: str
    layers: tuple[str, ...]
    repo_tags: tuple[str, ...]
    layer_sources: Mapping[str, Any]


def full_name(name: DockerName) -> str:
    return f"{name.registry}/{name.repository}:{name.tag or 'latest'}"


def _go_string(text: str) -> str:
    # Go's encoding/json escapes these; matching it keeps synthesized bytes equal.
    out = json.dumps(text, ensure_ascii=False)
    for char, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        out = out.replace(char, esc)
    return out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _go_descriptor(desc: Descriptor) -> str:
    """A Schema2Descriptor as Go marshals it: mediaType, size, digest, urls, ..."""
    parts = [
        f'"mediaType":{_go_string(desc.media_type)}',
        f'"size":{desc.size}',
        f'"digest":{_go_string(desc.digest)}',
    ]
    if desc.urls:
        parts.append('"urls":[' + ",".join(_go_string(u) for u in desc.urls) + "]")
    if desc.annotations:
        items = sorted(desc.annotations.items())
        parts.append(
            '"annotations":{' + ",".join(f"{_go_string(k)}:{_go_string(v)}" for k, v in items) + "}"
        )
    return "{" + ",".join(parts) + "}"


def synthesize_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """The schema2 manifest containers/image presents for a legacy archive."""
    body = (
        '{"schemaVersion":2,'
        f'"mediaType":"{DOCKER_MANIFEST}",'
        f'"config":{_go_descriptor(config)},'
        '"layers":[' + ",".join(_go_descriptor(d) for d in layers) + "]}"
    )
    return body.encode()


def _parse_save_manifest(raw: bytes, what: str) -> list[_SaveEntry]:
    """``raw`` is read no further than MAX_MANIFEST_BYTES; its depth is bounded here."""
    doc = jsonsafe.loads(raw, what=f"{what}: manifest.json")
    if not isinstance(doc, list) or not doc:
        raise InvalidInputError(f"{what}: manifest.json is not a non-empty list")
    entries = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict):
            raise InvalidInputError(f"{what}: manifest.json entry {i} is not an object")
        config, layers = item.get("Config"), item.get("Layers")
        tags = item.get("RepoTags") or []
        sources = item.get("LayerSources") or {}
        if not isinstance(config, str) or not config:
            raise InvalidInputError(f"{what}: manifest.json entry {i} has no Config")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidInputError(f"{what}: manifest.json entry {i} has no Layers list")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidInputError(f"{what}: manifest.json entry {i}: RepoTags must be strings")
        if not isinstance(sources, dict):
            raise InvalidInputError(f"{what}: manifest.json entry {i}: bad LayerSources")
        entries.append(
            _SaveEntry(
                clean_name(config, what),
                tuple(clean_name(x, what) for x in layers),
                tuple(tags),
                sources,
            )
        )
    return entries


def _normalized(tag: str) -> str | None:
    try:
        return full_name(parse_docker_name(tag))
    except InvalidInputError:
        return None


class DockerArchiveSource(ImageSource):
    def __init__(
        self,
        path: Path,
        name: DockerName | None = None,
        platform: Platform | None = None,
    ) -> None:
        self.reference = f"docker-archive:{path}" + (f":{full_name(name)}" if name else "")
        self.archive = ArchiveIndex(path, self.reference)
        self._files: dict[str, tuple[str, bool]] = {}  # digest -> (entry, gzip-compressed)
        self.legacy = True
        if not self.archive.exists("manifest.json"):
            raise InvalidInputError(f"{self.reference}: not a docker archive (no manifest.json)")
        raw = self.archive.read_small("manifest.json", MAX_MANIFEST_BYTES)
        entry = self._choose(_parse_save_manifest(raw, self.reference), name)
        config_raw = self.archive.read_small(entry.config, MAX_CONFIG_BYTES)
        config_digest = sha256_digest(config_raw)
        self.legacy = False  # blobs are read from blobs/sha256/ while probing
        found = self._find_oci_manifest(config_digest, platform)
        if found is not None:
            self.manifest = found
            return
        self.legacy = True
        self.manifest = self._synthesize(entry, config_raw, config_digest)

    def _choose(self, entries: list[_SaveEntry], name: DockerName | None) -> _SaveEntry:
        if name is None:
            if len(entries) != 1:
                tags = sorted({t for e in entries for t in e.repo_tags})
                raise InvalidInputError(
                    f"{self.reference}: the archive holds {len(entries)} images; "
                    f"name one with :NAME:TAG (tags: {', '.join(tags) or 'none'})"
                )
            return entries[0]
        wanted = full_name(name)
        for entry in entries:
            if any(_normalized(t) == wanted for t in entry.repo_tags):
                return entry
        tags = sorted({t for e in entries for t in e.repo_tags})
        raise NotFoundError(
            f"{self.reference}: no image named {wanted} (tags: {', '.join(tags) or 'none'})"
        )

    # -- the OCI-in-tar layout ------------------------------------------------------

    def _walk(self, desc: Descriptor, depth: int, budget: list[int]) -> Iterator[Descriptor]:
        """Every image manifest descriptor reachable from ``desc`` inside the archive."""
        budget[0] -= 1
        if budget[0] < 0 or depth > 4 or not self.archive.exists(blob_path(desc.hex)):
            return
        if desc.media_type in MANIFEST_TYPES:
            yield desc
        elif desc.media_type in INDEX_TYPES:
            raw = self.read_blob(desc, MAX_INDEX_BYTES)
            for child in parse_index(raw, desc.media_type, f"{self.reference} index").manifests:
                yield from self._walk(child, depth + 1, budget)

    def _find_oci_manifest(self, config_digest: str, platform: Platform | None) -> Manifest | None:
        if not (self.archive.exists("index.json") and self.archive.exists("oci-layout")):
            return None
        index = read_layout_index(self.archive)
        budget = [MAX_WALK]
        for top in index.manifests:
            for desc in self._walk(top, 0, budget):
                raw = self.read_blob(desc, MAX_MANIFEST_BYTES)
                manifest = parse_manifest(raw, desc.media_type, f"{self.reference} manifest")
                if manifest.config.digest == config_digest:
                    return manifest
        return None

    # -- the legacy layout ----------------------------------------------------------

    def _synthesize(self, entry: _SaveEntry, config_raw: bytes, config_digest: str) -> Manifest:
        config = parse_config(config_raw, f"{self.reference} config")
        if len(config.diff_ids) != len(entry.layers):
            raise CorruptError(
                f"{self.reference}: config lists {len(config.diff_ids)} layers, "
                f"manifest.json {len(entry.layers)}"
            )
        config_desc = Descriptor(DOCKER_CONFIG, config_digest, len(config_raw))
        self._files[config_digest] = (entry.config, False)
        layers = []
        for i, (diff_id, name) in enumerate(zip(config.diff_ids, entry.layers, strict=True)):
            if diff_id in entry.layer_sources:
                source = parse_descriptor(
                    entry.layer_sources[diff_id], f"{self.reference} LayerSources"
                )
                layers.append(source)
                self._files.setdefault(source.digest, (name, False))
                continue
            compressed, size = self._layer_shape(name, diff_id, i)
            layers.append(Descriptor(DOCKER_LAYER_GZIP, diff_id, size))
            self._files.setdefault(diff_id, (name, compressed))
        raw = synthesize_manifest(config_desc, layers)
        return parse_manifest(raw, DOCKER_MANIFEST, f"{self.reference} manifest")

    def _layer_shape(self, name: str, diff_id: str, i: int) -> tuple[bool, int]:
        """Is the layer file gzip'd, and how many bytes is its tar?"""
        entry = self.archive.resolve(name)
        with self.archive.open(name) as handle:
            kind = sniff(handle.read(8))
        if kind is None:
            return False, entry.size
        if kind != GZIP:
            raise InvalidInputError(f"{self.reference}: layer {i} is {kind}-compressed")
        # The uncompressed size is only known by decompressing, as skopeo does;
        # the same pass checks the diff_id, so a bad layer fails at open.
        counter = _Counter()
        stream = decompressed(self.archive.open(name), f"{self.reference}: layer {i}")
        with stream:
            while chunk := stream.read(1024 * 1024):
                counter.add(chunk)
        if counter.digest() != diff_id:
            raise CorruptError(f"{self.reference}: layer {i} does not match its diff_id {diff_id}")
        return True, counter.size

    def blob_file(self, desc: Descriptor) -> Path | None:
        return self.archive.backing_file(desc.hex)

    def _open_raw(self, desc: Descriptor) -> BinaryIO:
        if not self.legacy:
            return self.archive.open(blob_path(desc.hex))
        found = self._files.get(desc.digest)
        if found is None:
            raise NotFoundError(f"{self.reference}: no blob {desc.digest}")
        name, compressed = found
        if compressed:
            return decompressed(self.archive.open(name), f"{self.reference}: {name}")
        return self.archive.open(name)


class _Counter:
    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self._h.update(chunk)
        self.size += len(chunk)

    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()


class DockerArchiveSink(ArchiveSink):
    """Writes what ``docker load`` and ``podman load`` read, keeping blob bytes exact."""

    def __init__(self, dest: Path, name: DockerName | None = None, legacy: bool = False) -> None:
        self.name = name
        self.legacy = legacy
        reference = f"docker-archive:{dest}" + (f":{full_name(name)}" if name else "")
        super().__init__(dest, reference)
        self.default_tag = (name.tag or "latest") if name else None
        self._configs: set[str] = set()

    def _start(self) -> None:
        if not self.legacy:
            super()._start()

    def _blob_name(self, desc: Descriptor) -> str:
        if not self.legacy:
            return blob_path(desc.hex)
        suffix = ".json" if desc.media_type in CONFIG_TYPES else ".tar"
        return desc.hex + suffix

    def _check_manifest(self, desc: Descriptor, doc: Manifest | Index) -> None:
        if not isinstance(doc, Manifest):
            raise InvalidInputError(f"{self.reference}: a docker archive holds images, not indexes")
        if doc.config.encrypted or any(layer.encrypted for layer in doc.layers):
            raise InvalidInputError(
                f"{self.reference}: a docker archive cannot hold encrypted layers; decrypt first"
            )

    def _write_manifest(self, desc: Descriptor, raw: bytes, doc: Manifest | Index) -> None:
        if self.name is not None:
            notes = {**desc.annotations, IMAGE_NAME_ANNOTATION: full_name(self.name)}
            desc = Descriptor(desc.media_type, desc.digest, desc.size, notes)
        if self.legacy:
            self._check_manifest(desc, doc)
            self.entries.append(desc)
            self.manifests.append((desc, doc))
            return
        super()._write_manifest(desc, raw, doc)

    def _finish(self) -> None:
        save = []
        for _desc, doc in self.manifests:
            assert isinstance(doc, Manifest)
            save.append(
                {
                    "Config": self._blob_name(doc.config),
                    "RepoTags": [full_name(self.name)] if self.name else [],
                    "Layers": [self._blob_name(layer) for layer in doc.layers],
                }
            )
        if not self.legacy:
            super()._finish()
        self.tar.add_bytes("manifest.json", json.dumps(save, separators=(",", ":")).encode())
