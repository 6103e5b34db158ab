"""Images for the oci tests: small synthetic ones built here, and real ones built
with umoci and skopeo; plus a docker-registry peer started and stopped by PID."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.peers import free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Member:
    """One tar entry for a synthetic layer or archive."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""
    mode: int = 0o644


def file(name: str, data: bytes | str = b"", mode: int = 0o644) -> Member:
    return Member(name, data.encode() if isinstance(data, str) else data, mode=mode)


def directory(name: str) -> Member:
    return Member(name, kind=tarfile.DIRTYPE, mode=0o755)


def symlink(name: str, target: str) -> Member:
    return Member(name, kind=tarfile.SYMTYPE, link=target, mode=0o777)


def hardlink(name: str, target: str) -> Member:
    return Member(name, kind=tarfile.LNKTYPE, link=target)


def make_tar(members: list[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.kind
            info.mode = m.mode
            info.linkname = m.link
            info.mtime = 0
            if m.kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                info.devmajor, info.devminor = 1, 3
            if m.kind == tarfile.REGTYPE:
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                tar.addfile(info)
    return out.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@dataclass
class Image:
    """A synthetic image: blobs by digest, and its manifest's exact bytes."""

    manifest: bytes
    config: bytes
    layers: list[bytes]
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha(self.manifest)

    @property
    def layer_digests(self) -> list[str]:
        return [sha(layer) for layer in self.layers]


def make_image(
    layer_tars: list[bytes],
    compress: bool = True,
    arch: str = "amd64",
    manifest_type: str | None = OCI_MANIFEST,
    config_type: str = OCI_CONFIG,
    layer_type: str | None = None,
) -> Image:
    layers = [gz(t) if compress else t for t in layer_tars]
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layer_tars]},
        },
        separators=(",", ":"),
    ).encode()
    ltype = layer_type or (OCI_LAYER_GZIP if compress else OCI_LAYER)
    doc: dict[str, object] = {"schemaVersion": 2}
    if manifest_type:
        doc["mediaType"] = manifest_type
    doc["config"] = {"mediaType": config_type, "digest": sha(config), "size": len(config)}
    doc["layers"] = [{"mediaType": ltype, "digest": sha(b), "size": len(b)} for b in layers]
    manifest = json.dumps(doc, indent=2).encode()  # indented: proves bytes are kept
    blobs = {sha(b): b for b in [config, *layers]}
    return Image(manifest, config, layers, blobs)


def write_layout(
    root: Path,
    image: Image,
    tag: str | None = "latest",
    index_entries: list[dict[str, object]] | None = None,
    extra_blobs: dict[str, bytes] | None = None,
) -> Path:
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for digest, data in {
        **image.blobs,
        image.digest: image.manifest,
        **(extra_blobs or {}),
    }.items():
        (root / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    if index_entries is None:
        entry: dict[str, object] = {
            "mediaType": OCI_MANIFEST,
            "digest": image.digest,
            "size": len(image.manifest),
        }
        if tag:
            entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        index_entries = [entry]
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": index_entries}))
    return root


def tar_dir(root: Path, dest: Path) -> Path:
    """A plain tar of a directory's contents (as oci-archive and docker save make)."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return dest


def legacy_docker_archive(dest: Path, image: Image, tag: str = "busybox:latest") -> Path:
    """The pre-25 ``docker save`` layout from a synthetic image (uncompressed layers)."""
    members = [file(f"{sha(image.config)[7:]}.json", image.config)]
    names = []
    for i, layer in enumerate(image.layers):
        tar = gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer
        layer_id = hashlib.sha256(f"layer{i}".encode()).hexdigest()
        members += [directory(layer_id), file(f"{layer_id}/layer.tar", tar)]
        names.append(f"{layer_id}/layer.tar")
    save = [{"Config": f"{sha(image.config)[7:]}.json", "RepoTags": [tag], "Layers": names}]
    members.append(file("manifest.json", json.dumps(save)))
    dest.write_bytes(make_tar(members))
    return dest


def tree_snapshot(root: Path) -> dict[str, int]:
    """Every path under ``root`` with its size (0 for directories)."""
    out = {}
    for path in root.rglob("*"):
        out[str(path.relative_to(root))] = 0 if path.is_dir() else path.lstat().st_size
    return out


# -- real peers ------------------------------------------------------------------------


def require(*tools: str) -> None:
    import pytest

    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make peers` (make test does it)")


def build_busybox(workdir: Path) -> Path:
    """A real image: umoci layout with busybox and a few applet links, tagged latest."""
    require("umoci", "busybox")
    layout = workdir / "busybox-oci"
    bundle = workdir / "bundle"

    def umoci(*args: str) -> None:
        subprocess.run(["umoci", *args], check=True, capture_output=True)

    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:latest")
    umoci("unpack", "--rootless", "--image", f"{layout}:latest", str(bundle))
    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("busybox") or "", rootfs / "bin" / "busybox")
    for applet in ("sh", "ls", "cat", "echo", "true"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc").mkdir(exist_ok=True)
    (rootfs / "etc" / "os-release").write_text('ID=busybox\nVERSION_ID="1"\n')
    umoci("repack", "--image", f"{layout}:latest", str(bundle))
    # A second layer that deletes a file of the first: real whiteouts.
    second = workdir / "bundle2"
    umoci("unpack", "--rootless", "--image", f"{layout}:latest", str(second))
    (second / "rootfs" / "bin" / "true").unlink()
    (second / "rootfs" / "etc" / "motd").write_text("hello from sedis\n")
    umoci("repack", "--image", f"{layout}:latest", str(second))
    umoci("config", "--image", f"{layout}:latest", "--config.cmd", "/bin/sh")
    umoci("gc", "--layout", str(layout))
    return layout


def htpasswd_auth(htpasswd: Path) -> str:
    return f"auth:\n  htpasswd:\n    realm: sedis-test\n    path: {htpasswd}\n"


@contextmanager
def docker_registry(workdir: Path, auth: str = "") -> Iterator[str]:
    """A docker-registry peer on 127.0.0.1; yields host:port and stops it by PID.

    ``auth`` is the config's ``auth:`` section (see htpasswd_auth and
    registry_tokens); without it the registry is open.
    """
    require("docker-registry")
    port = free_port()
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        "log:\n  level: error\n" + auth
    )
    log = open(workdir / "registry.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"docker-registry did not start: {(workdir / 'registry.log').read_text()}"
                    ) from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
