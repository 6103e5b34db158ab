"""Round trips between the file transports, and atomic, checked writes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sedis.core.errors import ConflictError, CorruptError, InvalidInputError
from sedis.oci import model
from sedis.oci.docker_archive import DockerArchiveSink
from sedis.oci.oci_layout import OciLayoutSink
from sedis.oci.tarsafe import ArchiveIndex
from sedis.oci.transports import copy_image, open_sink, open_source
from tests.oci_images import (
    directory,
    file,
    legacy_docker_archive,
    make_image,
    make_tar,
    sha,
    tree_snapshot,
    write_layout,
)


@pytest.fixture
def image():  # type: ignore[no-untyped-def]
    return make_image(
        [
            make_tar([directory("etc"), file("etc/os-release", "ID=one\n")]),
            make_tar([file("etc/motd", "hi\n"), file("etc/.wh.os-release")]),
        ]
    )


def digests(ref: str) -> tuple[str, str, list[str]]:
    with open_source(ref) as src:
        config = src.config_bytes()
        return src.manifest_digest, sha(config), [d.digest for d in src.manifest.layers]


@pytest.mark.parametrize(
    "hops",
    [
        ["oci:{t}/a:v1"],
        ["oci-archive:{t}/a.tar:v1"],
        ["docker-archive:{t}/a.tar:app:v1"],
        ["oci-archive:{t}/a.tar", "docker-archive:{t}/b.tar:app:v1", "oci:{t}/c:x"],
    ],
)
def test_round_trips_keep_every_digest(tmp_path: Path, image, hops: list[str]) -> None:  # type: ignore[no-untyped-def]
    src_ref = f"oci:{write_layout(tmp_path / 'src', image)}:latest"
    want = (image.digest, sha(image.config), image.layer_digests)
    assert digests(src_ref) == want
    current = src_ref
    for hop in hops:
        dest = hop.format(t=tmp_path)
        with open_source(current) as src:
            copy_image(src, open_sink(dest))
        assert digests(dest) == want
        current = dest
    # The manifest bytes themselves, not a re-serialization, came through.
    with open_source(current) as src:
        assert src.manifest_bytes == image.manifest


def test_written_layout_shape(tmp_path: Path, image) -> None:  # type: ignore[no-untyped-def]
    with open_source(f"oci:{write_layout(tmp_path / 'src', image)}") as src:
        copy_image(src, open_sink(f"oci:{tmp_path / 'out'}:v1"))
    out = tmp_path / "out"
    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"] == [
        {
            "mediaType": model.OCI_MANIFEST,
            "digest": image.digest,
            "size": len(image.manifest),
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }
    ]
    blobs = sorted(p.name for p in (out / "blobs" / "sha256").iterdir())
    assert blobs == sorted(d[7:] for d in [image.digest, sha(image.config), *image.layer_digests])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_adding_a_tag_to_an_existing_layout(tmp_path: Path, image) -> None:  # type: ignore[no-untyped-def]
    other = make_image([make_tar([file("x", "2")])])
    src1 = write_layout(tmp_path / "s1", image)
    src2 = write_layout(tmp_path / "s2", other)
    copy_image(open_source(f"oci:{src1}"), open_sink(f"oci:{tmp_path / 'out'}:one"))
    copy_image(open_source(f"oci:{src2}"), open_sink(f"oci:{tmp_path / 'out'}:two"))
    assert digests(f"oci:{tmp_path / 'out'}:one")[0] == image.digest
    assert digests(f"oci:{tmp_path / 'out'}:two")[0] == other.digest
    # Re-tagging moves the tag instead of listing it twice.
    copy_image(open_source(f"oci:{src2}"), open_sink(f"oci:{tmp_path / 'out'}:one"))
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [
        "two",
        "one",
    ]
    with pytest.raises(InvalidInputError, match="holds 2 images; name one with :TAG"):
        open_source(f"oci:{tmp_path / 'out'}")


def test_sink_refuses_a_corrupt_blob_and_leaves_nothing(tmp_path: Path, image) -> None:  # type: ignore[no-untyped-def]
    for dest_ref in (
        f"oci:{tmp_path / 'out'}",
        f"oci-archive:{tmp_path / 'out.tar'}",
        f"docker-archive:{tmp_path / 'out.tar'}:a:b",
    ):
        before = tree_snapshot(tmp_path)
        layer = model.parse_manifest(image.manifest).layers[0]
        bad = bytearray(image.layers[0])
        bad[-5] ^= 1
        with pytest.raises(CorruptError, match="digest is sha256:"), open_sink(dest_ref) as sink:
            sink.put_blob(layer, io.BytesIO(bytes(bad)))
        assert tree_snapshot(tmp_path) == before, dest_ref


@pytest.mark.parametrize("dest", ["oci:{}/out", "oci-archive:{}/out.tar"])
def test_a_large_blob_altered_in_the_source_is_refused_by_the_copy(
    tmp_path: Path, dest: str
) -> None:
    # Over the size that copy_image hashes on another thread.
    from sedis.oci.streams import BACKGROUND_HASH_SIZE
    from tests.conftest import pseudo_random

    big = make_tar([file("big.bin", pseudo_random(BACKGROUND_HASH_SIZE + 4096, "copy"))])
    image = make_image([big], compress=False)
    write_layout(tmp_path / "src", image)
    blob = tmp_path / "src" / "blobs" / "sha256" / image.layer_digests[0][7:]
    altered = bytearray(big)
    altered[len(altered) // 2] ^= 1
    blob.write_bytes(bytes(altered))
    before = tree_snapshot(tmp_path)
    with open_source(f"oci:{tmp_path / 'src'}") as src, pytest.raises(CorruptError) as caught:
        copy_image(src, open_sink(dest.format(tmp_path)))
    assert f"blob {image.layer_digests[0]}: digest is sha256:" in str(caught.value)
    assert tree_snapshot(tmp_path) == before


def test_manifest_must_name_written_blobs(tmp_path: Path, image) -> None:  # type: ignore[no-untyped-def]
    with (
        pytest.raises(InvalidInputError, match="which was not written"),
        open_sink(f"oci:{tmp_path / 'out'}") as sink,
    ):
        sink.put_blob_bytes(model.parse_manifest(image.manifest).config, image.config)
        sink.put_manifest(image.manifest)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_no_output(tmp_path: Path, image) -> None:  # type: ignore[no-untyped-def]
    class Boom(Exception):
        pass

    manifest = model.parse_manifest(image.manifest)
    for dest_ref in (f"oci:{tmp_path / 'o'}", f"oci-archive:{tmp_path / 'o.tar'}"):
        with pytest.raises(Boom), open_sink(dest_ref) as sink:
            sink.put_blob_bytes(manifest.config, image.config)
            raise Boom
    assert list(tmp_path.iterdir()) == []


def test_existing_non_layout_is_not_overwritten(tmp_path: Path, image) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="not an OCI image layout"):
        open_sink(f"oci:{tmp_path / 'busy'}")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConflictError, match="not a directory"):
        open_sink(f"oci:{tmp_path / 'file'}")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"


def test_encrypted_layers_go_to_layouts_not_docker_archives(tmp_path: Path) -> None:
    enc = make_image(
        [make_tar([file("a")])],
        layer_type=model.OCI_LAYER_GZIP + "+encrypted",
        config_type=model.OCI_CONFIG_ENCRYPTED,
    )
    doc = json.loads(enc.manifest)
    doc["layers"][0]["annotations"] = {
        "org.opencontainers.image.enc.keys.jwe": "e30=",
        "org.opencontainers.image.enc.pubopts": "e30=",
    }
    doc["layers"][0]["urls"] = ["ipfs://bafy"]
    raw = json.dumps(doc).encode()
    manifest = model.parse_manifest(raw)
    with OciLayoutSink(tmp_path / "enc") as sink:
        for desc, data in zip(manifest.descriptors(), [enc.config, *enc.layers], strict=True):
            sink.put_blob_bytes(desc, data)
        sink.put_manifest(raw, tag="sealed")
        sink.commit()
    with open_source(f"oci:{tmp_path / 'enc'}:sealed") as src:
        assert src.manifest_bytes == raw
        assert src.manifest.layers[0].encrypted
        assert src.manifest.layers[0].annotations["org.opencontainers.image.enc.pubopts"] == "e30="
        with pytest.raises(InvalidInputError, match="cannot hold encrypted layers"):
            copy_image(src, DockerArchiveSink(tmp_path / "d.tar"))
    assert not (tmp_path / "d.tar").exists()


def test_legacy_docker_archive_matches_skopeo_view(tmp_path: Path, image) -> None:  # type: ignore[no-untyped-def]
    path = legacy_docker_archive(tmp_path / "save.tar", image, "app:1")
    with open_source(f"docker-archive:{path}:app:1") as src:
        assert src.media_type == model.DOCKER_MANIFEST
        config = model.parse_config(src.config_bytes())
        # skopeo's view: layer digests are the diff_ids, sizes the plain tars.
        assert [d.digest for d in src.manifest.layers] == list(config.diff_ids)
        assert all(d.media_type == model.DOCKER_LAYER_GZIP for d in src.manifest.layers)
        first = src.manifest_bytes
    with open_source(f"docker-archive:{path}") as again:
        assert again.manifest_bytes == first  # deterministic synthesis
    # Written back in the legacy layout, the same manifest comes out again.
    with open_source(f"docker-archive:{path}") as src:
        copy_image(
            src, open_sink(f"docker-archive:{tmp_path / 'l.tar'}:app:1", legacy_docker_archive=True)
        )
    with open_source(f"docker-archive:{tmp_path / 'l.tar'}") as back:
        assert back.manifest_bytes == first
    names = set(ArchiveIndex(tmp_path / "l.tar").entries)
    assert "manifest.json" in names and "index.json" not in names


def test_docker_archive_output_names_its_image(tmp_path: Path, image) -> None:  # type: ignore[no-untyped-def]
    src = open_source(f"oci:{write_layout(tmp_path / 's', image)}")
    copy_image(src, open_sink(f"docker-archive:{tmp_path / 'o.tar'}:team/app:2"))
    archive = ArchiveIndex(tmp_path / "o.tar")
    save = json.loads(archive.read_small("manifest.json", 1 << 20))
    assert save == [
        {
            "Config": f"blobs/sha256/{sha(image.config)[7:]}",
            "RepoTags": ["docker.io/team/app:2"],
            "Layers": [f"blobs/sha256/{d[7:]}" for d in image.layer_digests],
        }
    ]
    index = json.loads(archive.read_small("index.json", 1 << 20))
    assert index["manifests"][0]["annotations"] == {
        "org.opencontainers.image.ref.name": "2",
        "io.containerd.image.name": "docker.io/team/app:2",
    }
    assert digests(f"docker-archive:{tmp_path / 'o.tar'}:team/app:2")[0] == image.digest


def test_conversion_on_request(tmp_path: Path, image) -> None:  # type: ignore[no-untyped-def]
    src = open_source(f"oci:{write_layout(tmp_path / 's', image)}")
    written = copy_image(src, open_sink(f"oci:{tmp_path / 'd'}"), convert="docker")
    assert written.media_type == model.DOCKER_MANIFEST
    with open_source(f"oci:{tmp_path / 'd'}") as back:
        assert back.media_type == model.DOCKER_MANIFEST
        assert [d.digest for d in back.manifest.layers] == image.layer_digests


def test_platform_narrowing(tmp_path: Path) -> None:
    amd = make_image([make_tar([file("arch", "amd64")])])
    arm = make_image([make_tar([file("arch", "arm64")])], arch="arm64")
    entries = [
        {
            "mediaType": model.OCI_MANIFEST,
            "digest": img.digest,
            "size": len(img.manifest),
            "platform": {"os": "linux", "architecture": arch},
        }
        for img, arch in ((arm, "arm64"), (amd, "amd64"))
    ]
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": model.OCI_INDEX, "manifests": entries}
    ).encode()
    top = [
        {
            "mediaType": model.OCI_INDEX,
            "digest": sha(index),
            "size": len(index),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }
    ]
    extra = {sha(index): index, arm.digest: arm.manifest, **arm.blobs}
    root = write_layout(tmp_path / "m", amd, index_entries=top, extra_blobs=extra)
    with open_source(f"oci:{root}:multi") as src:
        assert src.manifest_digest == amd.digest
        assert src.index is not None and src.index.digest == sha(index)
    with open_source(f"oci:{root}:multi", platform="linux/arm64") as src:
        assert src.manifest_digest == arm.digest
    with pytest.raises(InvalidInputError, match=r"available: linux/amd64, linux/arm64$"):
        open_source(f"oci:{root}:multi", platform="windows/amd64")
