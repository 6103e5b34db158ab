"""References, digests, the manifest model and media-type conversion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sedis.core.errors import InvalidInputError
from sedis.oci import model
from sedis.oci.docker_archive import synthesize_manifest
from sedis.oci.reference import parse_docker_name, parse_reference
from tests.oci_images import file, make_image, make_tar

# -- references ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "transport", "path", "tag", "name"),
    [
        ("oci:/tmp/lay", "oci", "/tmp/lay", None, None),
        ("oci:/tmp/lay:v1.2", "oci", "/tmp/lay", "v1.2", None),
        ("oci-archive:img.tar:latest", "oci-archive", "img.tar", "latest", None),
        ("docker-archive:save.tar", "docker-archive", "save.tar", None, None),
        (
            "docker-archive:save.tar:busybox:1.36",
            "docker-archive",
            "save.tar",
            None,
            "docker.io/library/busybox:1.36",
        ),
        (
            "docker-archive:save.tar:quay.io/org/app",
            "docker-archive",
            "save.tar",
            None,
            "quay.io/org/app:latest",
        ),
    ],
)
def test_file_references(
    text: str, transport: str, path: str, tag: str | None, name: str | None
) -> None:
    ref = parse_reference(text)
    assert ref.transport == transport
    assert ref.path == Path(path)
    assert ref.tag == tag
    assert (str(ref.name) if ref.name else None) == name


def test_docker_references() -> None:
    ref = parse_reference("docker://127.0.0.1:5000/team/app:v2")
    assert ref.name is not None
    assert (ref.name.registry, ref.name.repository, ref.name.tag) == (
        "127.0.0.1:5000",
        "team/app",
        "v2",
    )
    assert ref.name.api_host == "127.0.0.1:5000"
    hub = parse_docker_name("busybox")
    assert (hub.registry, hub.repository, hub.tag, hub.api_host) == (
        "docker.io",
        "library/busybox",
        "latest",
        "registry-1.docker.io",
    )
    pinned = parse_docker_name("localhost/x@sha256:" + "a" * 64)
    assert pinned.registry == "localhost" and pinned.tag is None
    assert pinned.reference == "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("/tmp/x", "not an image reference"),
        ("dir:/tmp/x", "not an image reference"),
        ("containers-storage:x", "not an image reference"),
        ("oci:", "needs a path"),
        ("docker://", "docker:// needs"),
        ("docker://Upper/Case", "invalid repository"),
        ("docker://host/x:bad tag", "invalid tag"),
        ("docker://host/x@md5:abc", "not supported"),
        ("docker://host/x@sha256:short", "malformed"),
        ("docker-archive:x.tar:@0", "by NAME:TAG"),
        ("oci:dir:bad tag", "invalid tag"),
        ("oci:dir\n", "newline"),
    ],
)
def test_bad_references(text: str, needle: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_reference(text)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


# -- digests -------------------------------------------------------------------------------


def test_digests() -> None:
    assert model.sha256_digest(b"hello world") == (
        "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    )
    assert model.digest_hex("sha256:" + "0" * 64) == "0" * 64
    for bad, needle in [
        ("sha512:" + "0" * 128, "not supported"),
        ("sha256:" + "0" * 63, "malformed"),
        ("sha256:" + "G" * 64, "malformed"),
        ("nodigest", "malformed"),
    ]:
        with pytest.raises(InvalidInputError, match=needle):
            model.digest_hex(bad)


# -- parsing ---------------------------------------------------------------------------------


def test_manifest_keeps_exact_bytes() -> None:
    image = make_image([make_tar([file("a", "1")])])
    manifest = model.parse_manifest(image.manifest)
    assert manifest.raw == image.manifest
    assert manifest.digest == model.sha256_digest(image.manifest)
    assert manifest.layers[0].digest == image.layer_digests[0]
    assert manifest.config.digest == model.sha256_digest(image.config)


def test_manifest_without_media_type_is_read_by_shape() -> None:
    image = make_image([make_tar([file("a")])], manifest_type=None)
    assert model.parse_document(image.manifest, None, "m").media_type == model.OCI_MANIFEST


def _descriptor(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "mediaType": model.OCI_LAYER,
        "digest": "sha256:" + "1" * 64,
        "size": 1,
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        (
            {"schemaVersion": 1, "config": _descriptor(mediaType=model.OCI_CONFIG), "layers": []},
            "schemaVersion",
        ),
        (
            {"schemaVersion": 2, "config": _descriptor(mediaType="text/plain"), "layers": []},
            "unknown config",
        ),
        (
            {
                "schemaVersion": 2,
                "config": _descriptor(mediaType=model.OCI_CONFIG),
                "layers": [_descriptor(mediaType="x/y")],
            },
            "unknown media type",
        ),
        (
            {
                "schemaVersion": 2,
                "config": _descriptor(mediaType=model.OCI_CONFIG),
                "layers": [_descriptor(size=-1)],
            },
            "non-negative",
        ),
        (
            {
                "schemaVersion": 2,
                "config": _descriptor(mediaType=model.OCI_CONFIG),
                "layers": [_descriptor(size=True)],
            },
            "non-negative",
        ),
        (
            {
                "schemaVersion": 2,
                "config": _descriptor(mediaType=model.OCI_CONFIG),
                "layers": [_descriptor(digest="sha1:aa")],
            },
            "not supported",
        ),
        (
            {"schemaVersion": 2, "config": _descriptor(mediaType=model.OCI_CONFIG), "layers": {}},
            "bounded list",
        ),
        (
            {
                "schemaVersion": 2,
                "config": _descriptor(mediaType=model.OCI_CONFIG),
                "layers": [_descriptor(annotations={"a": 1})],
            },
            "annotations",
        ),
        (
            {
                "schemaVersion": 2,
                "mediaType": "application/x-nope",
                "config": _descriptor(),
                "layers": [],
            },
            "unsupported manifest",
        ),
    ],
)
def test_bad_manifests(doc: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        model.parse_manifest(json.dumps(doc).encode())


def test_manifest_limits() -> None:
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        model.parse_manifest(b"\xff\xfe not json")
    with pytest.raises(InvalidInputError, match="not a JSON object"):
        model.parse_manifest(b"[1, 2]")
    huge = b'{"schemaVersion":2,"pad":"' + b"x" * model.MAX_MANIFEST_BYTES + b'"}'
    with pytest.raises(InvalidInputError, match="over the"):
        model.parse_manifest(huge)
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(InvalidInputError, match="nested deeper than 64 levels"):
        model.parse_manifest(deep)


def test_platform_selection_lists_what_is_there() -> None:
    def entry(arch: str, variant: str | None = None) -> dict[str, object]:
        platform = {"os": "linux", "architecture": arch}
        if variant:
            platform["variant"] = variant
        return _descriptor(mediaType=model.OCI_MANIFEST, platform=platform)

    index = model.parse_index(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [entry("arm64", "v8"), entry("amd64"), entry("arm", "v7")],
            }
        ).encode()
    )
    assert model.select_platform(index, model.DEFAULT_PLATFORM, "x").platform == model.Platform(
        "linux", "amd64"
    )
    arm = model.select_platform(index, model.Platform.parse("linux/arm64"), "x")
    assert arm.platform is not None and arm.platform.variant == "v8"
    with pytest.raises(InvalidInputError) as err:
        model.select_platform(index, model.Platform.parse("linux/s390x"), "img")
    assert (
        str(err.value)
        == "img has no image for linux/s390x; available: linux/amd64, linux/arm/v7, linux/arm64/v8"
    )
    with pytest.raises(InvalidInputError, match="os/arch"):
        model.Platform.parse("linux")


def test_conversion_keeps_blobs_and_changes_only_types() -> None:
    image = make_image([make_tar([file("a")])])
    oci = model.parse_manifest(image.manifest)
    docker = model.convert_manifest(oci, "docker")
    assert docker.media_type == model.DOCKER_MANIFEST
    assert docker.config.media_type == model.DOCKER_CONFIG
    assert docker.layers[0].media_type == model.DOCKER_LAYER_GZIP
    assert [d.digest for d in docker.descriptors()] == [d.digest for d in oci.descriptors()]
    back = model.convert_manifest(docker, "oci")
    assert back.media_type == model.OCI_MANIFEST
    assert [(d.media_type, d.digest, d.size) for d in back.descriptors()] == [
        (d.media_type, d.digest, d.size) for d in oci.descriptors()
    ]
    assert model.convert_manifest(oci, "oci") is oci
    encrypted = make_image([make_tar([file("a")])], layer_type=model.OCI_LAYER_GZIP + "+encrypted")
    with pytest.raises(InvalidInputError, match="no Docker schema2 equivalent"):
        model.convert_manifest(model.parse_manifest(encrypted.manifest), "docker")


def test_synthesized_legacy_manifest_matches_skopeo_bytes() -> None:
    # The exact bytes `skopeo inspect --raw docker-archive:` printed for a real archive.
    expected = (
        b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":401,'
        b'"digest":"sha256:1bb22264ec58548d9f3e9b8436104ae4233a41e7b56ae9e8cf317ece88045203"},'
        b'"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":1987072,'
        b'"digest":"sha256:b98b1043a3b33fd91c72db6766dd4394c55020f023ef004ba70cd406b053def8"}]}'
    )
    config = model.Descriptor(
        model.DOCKER_CONFIG,
        "sha256:1bb22264ec58548d9f3e9b8436104ae4233a41e7b56ae9e8cf317ece88045203",
        401,
    )
    layer = model.Descriptor(
        model.DOCKER_LAYER_GZIP,
        "sha256:b98b1043a3b33fd91c72db6766dd4394c55020f023ef004ba70cd406b053def8",
        1987072,
    )
    raw = synthesize_manifest(config, [layer])
    assert raw == expected
    assert model.sha256_digest(raw) == (
        "sha256:76dce00ecda92b41466fe6fa453cdad7265b29444f59f406f5b425014a2385ef"
    )
