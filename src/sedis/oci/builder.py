"""Build small, real OCI images without a container engine.

Each layer is a tar written entry by entry (so layers of any size stream
through a temporary file, never memory), optionally gzipped; the config and
manifest follow the OCI image spec. Timestamps and ownership are fixed, so
the same inputs always give the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sedis.oci import model
from sedis.oci.oci_layout import OciLayoutSink

# 2024-01-01T00:00:00Z: a fixed build time keeps digests reproducible.
EPOCH = 1704067200


@dataclass(frozen=True, slots=True)
class FileSpec:
    path: str  # inside the image, without a leading slash
    data: bytes | None = None  # the content, or
    mode: int = 0o644
    source: Path | None = None  # a file to copy it from
    symlink_to: str | None = None


@dataclass
class LayerSpec:
    files: Sequence[FileSpec]
    gzip: bool = True
    comment: str = ""


@dataclass
class ImageSpec:
    layers: Sequence[LayerSpec]
    cmd: list[str] = field(default_factory=lambda: ["/bin/sh"])
    env: list[str] = field(default_factory=lambda: ["PATH=/usr/local/bin:/usr/bin:/bin"])
    labels: dict[str, str] = field(default_factory=dict)
    architecture: str = "amd64"
    os: str = "linux"


def _tar_layer(files: Iterable[FileSpec], out: io.BufferedWriter) -> None:
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for spec in files:
            parts = spec.path.strip("/").split("/")
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth])
                if parent not in made:
                    made.add(parent)
                    tar.addfile(_info(parent, tarfile.DIRTYPE, 0o755))
            name = "/".join(parts)
            if spec.symlink_to is not None:
                info = _info(name, tarfile.SYMTYPE, 0o777)
                info.linkname = spec.symlink_to
                tar.addfile(info)
            elif spec.source is not None:
                info = _info(name, tarfile.REGTYPE, spec.mode)
                info.size = spec.source.stat().st_size
                with open(spec.source, "rb") as f:
                    tar.addfile(info, f)
            else:
                data = spec.data or b""
                info = _info(name, tarfile.REGTYPE, spec.mode)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return "sha256:" + digest.hexdigest(), size


def build(spec: ImageSpec, dest: Path, tag: str = "latest") -> str:
    """Write the image as an OCI layout at ``dest``; return its manifest digest."""
    with tempfile.TemporaryDirectory(prefix="sedis-build-", dir=dest.parent) as tmp:
        work = Path(tmp)
        layers: list[tuple[model.Descriptor, Path]] = []
        diff_ids = []
        for number, layer in enumerate(spec.layers):
            tar_path = work / f"layer{number}.tar"
            with open(tar_path, "wb") as out:
                _tar_layer(layer.files, out)
            diff_id, _ = _sha256_file(tar_path)
            diff_ids.append(diff_id)
            blob_path, media_type = tar_path, model.OCI_LAYER
            if layer.gzip:
                blob_path, media_type = work / f"layer{number}.tar.gz", model.OCI_LAYER_GZIP
                with (
                    open(tar_path, "rb") as raw,
                    open(blob_path, "wb") as packed,
                    gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, compresslevel=6) as gz,
                ):
                    shutil.copyfileobj(raw, gz, 1 << 20)
            digest, size = _sha256_file(blob_path)
            layers.append((model.Descriptor(media_type, digest, size), blob_path))
        config = json.dumps(
            {
                "created": "2024-01-01T00:00:00Z",
                "architecture": spec.architecture,
                "os": spec.os,
                "config": {"Env": spec.env, "Cmd": spec.cmd, "Labels": spec.labels or None},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": [
                    {
                        "created": "2024-01-01T00:00:00Z",
                        "created_by": layer.comment or "sedis build",
                    }
                    for layer in spec.layers
                ],
            },
            separators=(",", ":"),
        ).encode()
        config_desc = model.Descriptor(model.OCI_CONFIG, model.sha256_digest(config), len(config))
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": model.OCI_MANIFEST,
                "config": config_desc.to_json(),
                "layers": [desc.to_json() for desc, _ in layers],
            },
            separators=(",", ":"),
        ).encode()
        with OciLayoutSink(dest, tag) as sink:
            for desc, path in layers:
                with open(path, "rb") as stream:
                    sink.put_blob(desc, stream)
            sink.put_blob_bytes(config_desc, config)
            sink.put_manifest(manifest, model.OCI_MANIFEST, tag=tag)
            sink.commit()
        return model.sha256_digest(manifest)
