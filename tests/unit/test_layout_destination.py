"""Writing into an existing OCI layout: nothing found there is trusted unhashed.

Each test plants something under a blob's name (or in place of blobs/) in a
layout that sedis then writes an image into, the way a hostile or damaged
destination would, and checks what ends up on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from sedis.core.errors import ConflictError, InvalidInputError, SedisError
from sedis.oci.transports import copy_image, open_sink, open_source
from tests.oci_images import Image, file, make_image, make_tar, sha, tree_snapshot, write_layout


@pytest.fixture
def image() -> Image:
    return make_image(
        [
            make_tar([file("etc/os-release", "ID=dest\n")]),
            make_tar([file("data/blob.bin", os.urandom(300_000))]),
        ]
    )


@pytest.fixture
def other() -> Image:
    return make_image([make_tar([file("x", "already here")])])


def existing_layout(tmp_path: Path, other: Image) -> Path:
    """A layout that already holds one image, tagged ``old``."""
    return write_layout(tmp_path / "dest", other, tag="old")


def blob_file(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest[7:]


def same_size_forgery(data: bytes) -> bytes:
    """Other bytes of exactly the same length."""
    return bytes(b ^ 0x5A for b in data)


def every_blob_matches_its_name(layout: Path) -> None:
    for path in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path.name


def pull_into(src: Path, dest: Path, tag: str = "new") -> None:
    with open_source(f"oci:{src}") as source:
        copy_image(source, open_sink(f"oci:{dest}:{tag}"))


def index_tags(layout: Path) -> list[str]:
    index = json.loads((layout / "index.json").read_text())
    return [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]


def one_line(err: SedisError) -> str:
    message = str(err)
    assert "\n" not in message and 0 < len(message) < 400, message
    return message


@pytest.mark.parametrize("which", ["layer", "config", "manifest"])
def test_a_same_size_wrong_blob_is_replaced_by_the_checked_one(
    tmp_path: Path, image: Image, other: Image, which: str
) -> None:
    src = write_layout(tmp_path / "src", image)
    dest = existing_layout(tmp_path, other)
    target = {
        "layer": (image.layer_digests[1], image.layers[1]),
        "config": (sha(image.config), image.config),
        "manifest": (image.digest, image.manifest),
    }[which]
    forged = same_size_forgery(target[1])
    blob_file(dest, target[0]).write_bytes(forged)

    pull_into(src, dest)

    assert blob_file(dest, target[0]).read_bytes() == target[1]
    every_blob_matches_its_name(dest)
    assert index_tags(dest) == ["old", "new"]
    assert not [p.name for p in (dest / "blobs" / "sha256").iterdir() if p.name.startswith(".")]
    with open_source(f"oci:{dest}:new") as reread:
        assert reread.manifest.digest == image.digest
        for desc in reread.manifest.descriptors():
            with reread.open_blob(desc) as blob:
                blob.read()  # a verifying stream: raises on any mismatch


def test_a_blob_that_hashes_right_is_reused_not_rewritten(
    tmp_path: Path, image: Image, other: Image
) -> None:
    src = write_layout(tmp_path / "src", image)
    dest = existing_layout(tmp_path, other)
    layer = blob_file(dest, image.layer_digests[1])
    layer.write_bytes(image.layers[1])
    before = os.stat(layer)

    pull_into(src, dest)

    after = os.stat(layer)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    every_blob_matches_its_name(dest)


def test_a_longer_file_under_the_name_is_replaced(
    tmp_path: Path, image: Image, other: Image
) -> None:
    src = write_layout(tmp_path / "src", image)
    dest = existing_layout(tmp_path, other)
    blob_file(dest, sha(image.config)).write_bytes(image.config + b" ")
    pull_into(src, dest)
    assert blob_file(dest, sha(image.config)).read_bytes() == image.config


def test_a_symlink_under_a_blob_name_is_replaced_and_its_target_left_alone(
    tmp_path: Path, image: Image, other: Image
) -> None:
    src = write_layout(tmp_path / "src", image)
    dest = existing_layout(tmp_path, other)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(image.layers[1])  # even the right bytes do not count behind a link
    blob_file(dest, image.layer_digests[1]).symlink_to(outside)

    pull_into(src, dest)

    placed = blob_file(dest, image.layer_digests[1])
    assert not placed.is_symlink()
    assert placed.read_bytes() == image.layers[1]
    assert outside.read_bytes() == image.layers[1]


def test_a_pipe_under_a_blob_name_is_replaced_without_blocking(
    tmp_path: Path, image: Image, other: Image
) -> None:
    src = write_layout(tmp_path / "src", image)
    dest = existing_layout(tmp_path, other)
    os.mkfifo(blob_file(dest, sha(image.config)))
    pull_into(src, dest)
    assert blob_file(dest, sha(image.config)).read_bytes() == image.config


def test_a_directory_under_a_blob_name_is_refused_in_one_line(
    tmp_path: Path, image: Image, other: Image
) -> None:
    src = write_layout(tmp_path / "src", image)
    dest = existing_layout(tmp_path, other)
    squat = blob_file(dest, image.layer_digests[0])
    squat.mkdir()
    index_before = (dest / "index.json").read_bytes()

    with pytest.raises(ConflictError) as err:
        pull_into(src, dest)

    assert one_line(err.value) == (
        f"{dest}: blobs/sha256/{image.layer_digests[0][7:]} is a directory; refusing to replace it"
    )
    # The index is untouched, the directory too, and nothing half-written is left;
    # a blob checked before the refusal may stay (it is final: it matches its name).
    assert (dest / "index.json").read_bytes() == index_before
    assert squat.is_dir() and not any(squat.iterdir())
    for path in (dest / "blobs" / "sha256").iterdir():
        assert not path.name.startswith(".")
        if path != squat:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


@pytest.mark.parametrize("link", ["blobs", "blobs/sha256"])
def test_a_symlinked_blobs_directory_is_refused_before_anything_is_created(
    tmp_path: Path, image: Image, other: Image, link: str
) -> None:
    src = write_layout(tmp_path / "src", image)
    dest = existing_layout(tmp_path, other)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    real = dest / link
    shutil.rmtree(real)
    real.symlink_to(elsewhere)
    outside_before = tree_snapshot(tmp_path / "elsewhere")
    dest_before = tree_snapshot(dest)

    with pytest.raises(InvalidInputError) as err:
        pull_into(src, dest)

    assert one_line(err.value) == f"{dest}: {link}/ is a symlink; refusing to write"
    assert tree_snapshot(elsewhere) == outside_before == {}
    assert tree_snapshot(dest) == dest_before


def test_a_blobs_file_in_place_of_the_directory_is_refused_in_one_line(
    tmp_path: Path, image: Image, other: Image
) -> None:
    src = write_layout(tmp_path / "src", image)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    (dest / "blobs").write_text("not a directory")
    before = tree_snapshot(dest)

    with pytest.raises(ConflictError) as err:
        pull_into(src, dest)

    assert one_line(err.value) == f"{dest}: blobs/ is not a directory; refusing to write"
    assert tree_snapshot(dest) == before


def test_a_layout_without_blobs_gets_them(tmp_path: Path, image: Image) -> None:
    src = write_layout(tmp_path / "src", image)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    pull_into(src, dest)
    every_blob_matches_its_name(dest)
    assert index_tags(dest) == ["new"]
