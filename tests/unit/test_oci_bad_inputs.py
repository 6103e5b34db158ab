"""The bad input corpus: malformed images, each refused in one clear line.

Every case is generated here. Each is read as a source and copied to a
destination (or, for layer contents, merged the way the scanner reads it);
each must fail with a SedisError whose message is a single line naming the
problem, leave no destination and no partial file, and write nothing
anywhere else.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sedis.core.errors import CorruptError, InvalidInputError, NotFoundError, SedisError
from sedis.oci.layers import merged_files
from sedis.oci.transports import copy_image, open_sink, open_source
from tests.oci_images import (
    Image,
    Member,
    directory,
    file,
    gz,
    hardlink,
    legacy_docker_archive,
    make_image,
    make_tar,
    sha,
    symlink,
    tree_snapshot,
    write_layout,
)

ESCAPE_NAME = f"sedis-escape-{uuid.uuid4().hex[:8]}"
ABS_TARGET = f"/tmp/{ESCAPE_NAME}-abs"


@dataclass
class Case:
    build: Callable[[Path], object]  # returns a reference, or a list of layer bytes
    error: type[SedisError]
    needle: str


CASES: dict[str, Case] = {}


def case(name: str, error: type[SedisError], needle: str):  # type: ignore[no-untyped-def]
    def register(build: Callable[[Path], object]) -> Callable[[Path], object]:
        CASES[name] = Case(build, error, needle)
        return build

    return register


def base_image() -> Image:
    return make_image([make_tar([directory("etc"), file("etc/os-release", "ID=test\n")])])


def layout_members(image: Image) -> list[Member]:
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": image.digest,
                "size": len(image.manifest),
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    members = [
        file("oci-layout", '{"imageLayoutVersion":"1.0.0"}'),
        file("index.json", json.dumps(index)),
    ]
    members += [directory("blobs"), directory("blobs/sha256")]
    for digest, data in {**image.blobs, image.digest: image.manifest}.items():
        members.append(file(f"blobs/sha256/{digest[7:]}", data))
    return members


def oci_archive(tmp: Path, members: list[Member], fmt: int = tarfile.PAX_FORMAT) -> str:
    path = tmp / "in.tar"
    path.write_bytes(make_tar(members, fmt))
    return f"oci-archive:{path}"


def retype(tar: bytes, name: str, flag: bytes) -> bytes:
    """Rewrite one header's type flag (and its checksum) in a tar."""
    data = bytearray(tar)
    for off in range(0, len(data), 512):
        if data[off : off + 100].split(b"\0")[0] == name.encode():
            data[off + 156 : off + 157] = flag
            data[off + 148 : off + 156] = b"        "
            data[off + 148 : off + 156] = b"%06o\0 " % sum(data[off : off + 512])
            return bytes(data)
    raise AssertionError(f"{name} not in tar")


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


# -- outer archives ----------------------------------------------------------------------


@case("archive-traversal", InvalidInputError, "climbs out with '..'")
def _(tmp: Path) -> object:
    return oci_archive(tmp, [*layout_members(base_image()), file(f"../../{ESCAPE_NAME}", "x")])


@case("archive-absolute-path", InvalidInputError, "absolute path")
def _(tmp: Path) -> object:
    return oci_archive(tmp, [*layout_members(base_image()), file(ABS_TARGET, "x")])


@case("archive-symlink-escape", InvalidInputError, "escapes the archive")
def _(tmp: Path) -> object:
    return oci_archive(
        tmp, [*layout_members(base_image()), symlink("blobs/evil", "../../../etc/passwd")]
    )


@case("archive-absolute-symlink", InvalidInputError, "escapes the archive")
def _(tmp: Path) -> object:
    return oci_archive(tmp, [*layout_members(base_image()), symlink("blobs/evil", "/etc/passwd")])


@case("archive-hardlink-escape", InvalidInputError, "climbs out with '..'")
def _(tmp: Path) -> object:
    return oci_archive(
        tmp, [*layout_members(base_image()), hardlink("blobs/evil", "../../etc/passwd")]
    )


@case("archive-hardlink-dangling", InvalidInputError, "not an earlier entry")
def _(tmp: Path) -> object:
    return oci_archive(tmp, [hardlink("early", "index.json"), *layout_members(base_image())])


@case("archive-char-device", InvalidInputError, "is a char device")
def _(tmp: Path) -> object:
    dev = Member("blobs/null", kind=tarfile.CHRTYPE)
    return oci_archive(tmp, [*layout_members(base_image()), dev])


@case("archive-fifo", InvalidInputError, "is a fifo device")
def _(tmp: Path) -> object:
    return oci_archive(tmp, [*layout_members(base_image()), Member("fifo", kind=tarfile.FIFOTYPE)])


@case("archive-duplicate-entry", InvalidInputError, "duplicate entry 'index.json'")
def _(tmp: Path) -> object:
    members = layout_members(base_image())
    return oci_archive(tmp, [*members, file("index.json", "{}")])


@case("archive-huge-pax-header", InvalidInputError, "PAX header of")
def _(tmp: Path) -> object:
    return oci_archive(tmp, [*layout_members(base_image()), file("a" * (2 * 1024 * 1024), "x")])


@case("archive-huge-gnu-longname", InvalidInputError, "GNU long name header of")
def _(tmp: Path) -> object:
    members = [*layout_members(base_image()), file("b" * (2 * 1024 * 1024), "x")]
    return oci_archive(tmp, members, fmt=tarfile.GNU_FORMAT)


@case("archive-bad-checksum", CorruptError, "checksum mismatch")
def _(tmp: Path) -> object:
    data = bytearray(make_tar(layout_members(base_image())))
    data[3] ^= 0x01
    return f"oci-archive:{write(tmp, 'in.tar', bytes(data))}"


@case("archive-truncated", CorruptError, "truncated tar")
def _(tmp: Path) -> object:
    data = make_tar(layout_members(base_image()))
    return f"oci-archive:{write(tmp, 'in.tar', data[: len(data) // 2 + 100])}"


@case("archive-compressed", InvalidInputError, "archive is compressed")
def _(tmp: Path) -> object:
    return f"oci-archive:{write(tmp, 'in.tar.gz', gz(make_tar(layout_members(base_image()))))}"


@case("archive-sparse-entry", InvalidInputError, "GNU sparse file")
def _(tmp: Path) -> object:
    data = make_tar([*layout_members(base_image()), file("sparse", "x" * 10)], tarfile.USTAR_FORMAT)
    return f"oci-archive:{write(tmp, 'in.tar', retype(data, 'sparse', b'S'))}"


@case("archive-not-a-tar", CorruptError, "not a tar")
def _(tmp: Path) -> object:
    return f"oci-archive:{write(tmp, 'in.tar', b'{' * 4096)}"


# -- OCI layout ----------------------------------------------------------------------------


def layout(tmp: Path, image: Image | None = None, **kw: object) -> Path:
    return write_layout(tmp / "lay", image or base_image(), **kw)  # type: ignore[arg-type]


@case("layout-no-marker", InvalidInputError, "not an OCI image layout")
def _(tmp: Path) -> object:
    root = layout(tmp)
    (root / "oci-layout").unlink()
    return f"oci:{root}"


@case("layout-index-not-json", InvalidInputError, "index.json is not valid JSON")
def _(tmp: Path) -> object:
    root = layout(tmp)
    (root / "index.json").write_text("manifests: [")
    return f"oci:{root}"


@case("layout-huge-index", InvalidInputError, "index.json is over the 4194304-byte limit")
def _(tmp: Path) -> object:
    root = layout(tmp)
    (root / "index.json").write_text(
        '{"schemaVersion":2,"manifests":[],"x":"' + "y" * (5 << 20) + '"}'
    )
    return f"oci:{root}"


@case("layout-index-open-escaped-quotes", InvalidInputError, "index.json is not valid JSON")
def _(tmp: Path) -> object:
    # A string of \" pairs that never ends: the depth check must stay linear on it.
    root = layout(tmp)
    (root / "index.json").write_bytes(b'{"schemaVersion":2,"x":"' + b'\\"' * ((2 << 20) - 16))
    return f"oci:{root}"


@case("layout-index-too-deep", InvalidInputError, "nested deeper than 64 levels")
def _(tmp: Path) -> object:
    root = layout(tmp)
    (root / "index.json").write_bytes(b'{"manifests":' + b"[" * ((4 << 20) - 64))
    return f"oci:{root}"


def _with_manifest(
    tmp: Path, raw: bytes, media_type: str = "application/vnd.oci.image.manifest.v1+json"
) -> str:
    image = base_image()
    entry = {"mediaType": media_type, "digest": sha(raw), "size": len(raw)}
    root = layout(tmp, image, index_entries=[entry], extra_blobs={sha(raw): raw})
    return f"oci:{root}"


@case("manifest-not-json", InvalidInputError, "manifest is not valid JSON")
def _(tmp: Path) -> object:
    return _with_manifest(tmp, b"<html>not a manifest</html>")


@case("manifest-huge", InvalidInputError, "over the 4194304-byte limit")
def _(tmp: Path) -> object:
    return _with_manifest(tmp, b'{"schemaVersion":2,"x":"' + b"z" * (5 << 20) + b'"}')


@case("manifest-unknown-media-type", InvalidInputError, "unknown manifest media type")
def _(tmp: Path) -> object:
    return _with_manifest(tmp, base_image().manifest, "application/vnd.example.thing+json")


@case("manifest-wrong-digest", CorruptError, "digest is sha256:")
def _(tmp: Path) -> object:
    image = base_image()
    root = layout(tmp, image)
    path = root / "blobs" / "sha256" / image.digest[7:]
    path.write_bytes(image.manifest.replace(b'"schemaVersion": 2', b'"schemaVersion":\t2'))
    return f"oci:{root}"


@case("layer-unknown-media-type", InvalidInputError, "unknown media type 'application/x-tar'")
def _(tmp: Path) -> object:
    image = make_image([make_tar([file("a")])], layer_type="application/x-tar")
    return f"oci:{layout(tmp, image)}"


@case("config-sha512-digest", InvalidInputError, "digest algorithm 'sha512' is not supported")
def _(tmp: Path) -> object:
    image = base_image()
    doc = json.loads(image.manifest)
    doc["config"]["digest"] = "sha512:" + "ab" * 64
    return _with_manifest(tmp, json.dumps(doc).encode())


@case("layer-missing-blob", NotFoundError, "is missing")
def _(tmp: Path) -> object:
    image = base_image()
    root = layout(tmp, image)
    (root / "blobs" / "sha256" / image.layer_digests[0][7:]).unlink()
    return f"oci:{root}"


@case("layer-flipped-byte", CorruptError, "digest is sha256:")
def _(tmp: Path) -> object:
    image = base_image()
    root = layout(tmp, image)
    path = root / "blobs" / "sha256" / image.layer_digests[0][7:]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    return f"oci:{root}"


@case("layer-size-too-big", CorruptError, "bytes where")
def _(tmp: Path) -> object:
    image = base_image()
    doc = json.loads(image.manifest)
    doc["layers"][0]["size"] += 10
    return _with_manifest(tmp, json.dumps(doc).encode())


@case("layer-size-too-small", CorruptError, "more than the declared")
def _(tmp: Path) -> object:
    image = base_image()
    doc = json.loads(image.manifest)
    doc["layers"][0]["size"] -= 10
    return _with_manifest(tmp, json.dumps(doc).encode())


@case("blob-symlink-out", InvalidInputError, "not a regular file")
def _(tmp: Path) -> object:
    image = base_image()
    root = layout(tmp, image)
    blob = root / "blobs" / "sha256" / image.layer_digests[0][7:]
    outside = tmp / "outside-blob"
    outside.write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to(outside)
    return f"oci:{root}"


@case("blobs-dir-symlink", InvalidInputError, "is not a plain directory")
def _(tmp: Path) -> object:
    root = layout(tmp)
    real = tmp / "elsewhere"
    (root / "blobs").rename(real)
    (root / "blobs").symlink_to(real)
    return f"oci:{root}"


@case("tag-not-found", NotFoundError, "no image tagged 'v9' (tags: latest)")
def _(tmp: Path) -> object:
    return f"oci:{layout(tmp)}:v9"


@case(
    "index-no-platform", InvalidInputError, "has no image for linux/amd64; available: linux/arm64"
)
def _(tmp: Path) -> object:
    image = make_image([make_tar([file("a")])], arch="arm64")
    child = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": image.digest,
        "size": len(image.manifest),
        "platform": {"os": "linux", "architecture": "arm64"},
    }
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [child],
        }
    ).encode()
    entry = {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": sha(index),
        "size": len(index),
    }
    root = layout(tmp, image, index_entries=[entry], extra_blobs={sha(index): index})
    return f"oci:{root}"


# -- docker archives -------------------------------------------------------------------------


def docker_members(image: Image, save: object | None = None) -> list[Member]:
    cfg = f"{image.config and sha(image.config)[7:]}.json"
    members = [file(cfg, image.config)]
    names = []
    for i, layer in enumerate(image.layers):
        members.append(file(f"l{i}/layer.tar", layer))
        names.append(f"l{i}/layer.tar")
    doc = save if save is not None else [{"Config": cfg, "RepoTags": ["x:latest"], "Layers": names}]
    members.append(file("manifest.json", json.dumps(doc) if not isinstance(doc, bytes) else doc))
    return members


def docker_archive(tmp: Path, members: list[Member]) -> str:
    return f"docker-archive:{write(tmp, 'save.tar', make_tar(members))}"


@case("docker-manifest-not-json", InvalidInputError, "manifest.json is not valid JSON")
def _(tmp: Path) -> object:
    return docker_archive(tmp, docker_members(base_image(), b"[{oops"))


@case(
    "docker-manifest-too-deep", InvalidInputError, "manifest.json is nested deeper than 64 levels"
)
def _(tmp: Path) -> object:
    deep = b"[" * 100_000 + b"]" * 100_000
    return docker_archive(tmp, docker_members(base_image(), deep))


@case(
    "docker-manifest-too-large",
    InvalidInputError,
    "manifest.json is 4194358 bytes, over the 4194304",
)
def _(tmp: Path) -> object:
    save = [{"Config": "c.json", "RepoTags": ["x" * (4 << 20)], "Layers": []}]
    return docker_archive(tmp, docker_members(base_image(), save))


@case("docker-config-too-deep", InvalidInputError, "config is nested deeper than 64 levels")
def _(tmp: Path) -> object:
    image = base_image()
    cfg = f"{sha(image.config)[7:]}.json"
    deep = b'{"rootfs":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    members = [m if m.name != cfg else file(cfg, deep) for m in docker_members(image)]
    return docker_archive(tmp, members)


@case("docker-config-traversal", InvalidInputError, "climbs out with '..'")
def _(tmp: Path) -> object:
    save = [{"Config": "../../etc/passwd", "RepoTags": [], "Layers": []}]
    return docker_archive(tmp, docker_members(base_image(), save))


@case("docker-layer-count-mismatch", CorruptError, "config lists 1 layers, manifest.json 2")
def _(tmp: Path) -> object:
    image = make_image([make_tar([file("a")])], compress=False)
    cfg = f"{sha(image.config)[7:]}.json"
    save = [{"Config": cfg, "RepoTags": [], "Layers": ["l0/layer.tar", "l0/layer.tar"]}]
    return docker_archive(tmp, docker_members(image, save))


@case("docker-layer-not-diff-id", CorruptError, "digest is sha256:")
def _(tmp: Path) -> object:
    image = make_image([make_tar([file("a", "1")])], compress=False)
    other = make_tar([file("a", "2")])
    members = [
        m if m.name != "l0/layer.tar" else file("l0/layer.tar", other)
        for m in docker_members(image)
    ]
    return docker_archive(tmp, members)


@case("docker-gzip-layer-truncated", CorruptError, "truncated gzip stream")
def _(tmp: Path) -> object:
    image = make_image([make_tar([file("a", os.urandom(4000))])], compress=True)
    members = [
        m if m.name != "l0/layer.tar" else file("l0/layer.tar", m.data[: len(m.data) - 30])
        for m in docker_members(image)
    ]
    return docker_archive(tmp, members)


@case("docker-missing-layer", NotFoundError, "no entry 'l0/layer.tar'")
def _(tmp: Path) -> object:
    image = make_image([make_tar([file("a")])], compress=False)
    return docker_archive(tmp, [m for m in docker_members(image) if m.name != "l0/layer.tar"])


@case("docker-unknown-name", NotFoundError, "no image named docker.io/library/other:1")
def _(tmp: Path) -> object:
    path = legacy_docker_archive(tmp / "save.tar", base_image())
    return f"docker-archive:{path}:other:1"


# -- layer contents (what the scanner merges) --------------------------------------------------


@case("layer-entry-traversal", InvalidInputError, "climbs out with '..'")
def _(tmp: Path) -> object:
    return [make_tar([file(f"../../{ESCAPE_NAME}", "x")])]


@case("layer-entry-absolute", InvalidInputError, "absolute path")
def _(tmp: Path) -> object:
    return [make_tar([file(ABS_TARGET, "x")])]


@case("layer-write-through-symlink", InvalidInputError, "goes through the symlink 'evil'")
def _(tmp: Path) -> object:
    return [make_tar([symlink("evil", "/etc")]), make_tar([file("evil/passwd", "root::0:0")])]


@case("layer-hardlink-escape", InvalidInputError, "climbs out with '..'")
def _(tmp: Path) -> object:
    return [make_tar([hardlink("passwd", "../../etc/passwd")])]


@case("layer-hardlink-dangling", InvalidInputError, "which is not a file here")
def _(tmp: Path) -> object:
    return [make_tar([hardlink("passwd", "etc/shadow")])]


@case("layer-duplicate-file", InvalidInputError, "duplicate entry 'etc/os-release'")
def _(tmp: Path) -> object:
    return [make_tar([file("etc/os-release", "a"), file("etc/os-release", "b")])]


@case("layer-truncated-gzip", CorruptError, "truncated gzip stream")
def _(tmp: Path) -> object:
    data = gz(make_tar([file("etc/os-release", os.urandom(5000))]))
    return [data[:-40]]


@case("layer-corrupt-gzip", CorruptError, "corrupt gzip stream")
def _(tmp: Path) -> object:
    data = bytearray(gz(make_tar([file("etc/os-release", b"ID=x\n" * 2000)])))
    data[12:40] = b"\xff" * 28
    return [bytes(data)]


@case("layer-gzip-bomb", InvalidInputError, "decompresses to more than 8388608 bytes (gzip bomb?)")
def _(tmp: Path) -> object:
    # 64 MiB of zeros inside a tar, about 64 KiB compressed.
    zeros = io.BytesIO()
    with gzip.GzipFile(fileobj=zeros, mode="wb", mtime=0) as out:
        header = tarfile.TarInfo("etc/zeros")
        header.size = 64 << 20
        out.write(header.tobuf(tarfile.PAX_FORMAT))
        block = bytes(1 << 20)
        for _ in range(64):
            out.write(block)
    return [zeros.getvalue()]


@case("layer-zstd", InvalidInputError, "zstd-compressed layers are not supported")
def _(tmp: Path) -> object:
    return [b"\x28\xb5\x2f\xfd" + b"\0" * 100]


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_cleanly(name: str, tmp_path: Path) -> None:
    spec = CASES[name]
    work = tmp_path / "in"
    work.mkdir()
    built = spec.build(work)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "dest"
    before = tree_snapshot(tmp_path)
    with pytest.raises(SedisError) as err:
        if isinstance(built, list):
            openers = [lambda data=data: io.BytesIO(data) for data in built]
            merged_files(openers, lambda p: True, max_layer_bytes=8 << 20)
        else:
            with open_source(str(built)) as source:
                copy_image(source, open_sink(f"oci:{dest}"))
    message = str(err.value)
    assert isinstance(err.value, spec.error), f"{type(err.value).__name__}: {message}"
    assert spec.needle in message
    assert "\n" not in message and 0 < len(message) < 400
    # Nothing written: no destination, no partial file, no escapes anywhere.
    assert not dest.exists()
    assert tree_snapshot(tmp_path) == before
    assert not (tmp_path.parent / ESCAPE_NAME).exists()
    assert not Path(ABS_TARGET).exists()
    assert not (Path.cwd() / ESCAPE_NAME).exists()
