"""`sedis pull IMAGE oci:DIR` into a layout that already holds something under the image's names.

The destination is the attacker's here: a same-size file of other bytes under
a layer's name, a directory squatting on a blob's name, a blobs/ that links
elsewhere. The pull must end with exactly the published bytes, or refuse in
one line having touched nothing outside the layout.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import World, layout_digests
from tests.oci_images import build_busybox, require, tree_snapshot


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def published(world_base: World) -> Path:
    from sedis.cli.app import main

    src = world_base.image("dest")
    name = "e2e/dest:v1"
    assert main(["publish", f"oci:{src}:v1", "--name", name, "--to", "bob", "--as", "alice"]) == 0
    return src


def blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest[7:]


def pulled_layout(world: World, name: str) -> Path:
    """A layout bob pulled the image into, tagged v1: the destination of the next pull."""
    dest = world.work / name
    result = world.sedis("pull", "e2e/dest:v1", f"oci:{dest}:v1", "--as", "bob")
    assert result.code == 0, result.err
    return dest


def test_a_same_size_forged_layer_in_the_destination_is_replaced(
    world: World, published: Path
) -> None:
    dest = pulled_layout(world, "forged-layer")
    manifest, config, layers = layout_digests(published, "v1")
    for digest in (layers[1], config):
        path = blob(dest, digest)
        path.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))

    result = world.sedis("pull", "e2e/dest:v1", f"oci:{dest}:v2", "--as", "bob", "-o", "json")

    assert result.code == 0, result.err
    assert json.loads(result.out)["digest"] == manifest
    for digest in (manifest, config, *layers):
        assert blob(dest, digest).read_bytes() == blob(published, digest).read_bytes()
    for path in (dest / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
    verified = world.sedis("verify", f"oci:{dest}:v1", f"oci:{dest}:v2")
    assert verified.code == 0, verified.err


def test_a_directory_on_a_blob_name_is_refused_in_one_line(world: World, published: Path) -> None:
    dest = pulled_layout(world, "squatted")
    _, _, layers = layout_digests(published, "v1")
    squat = blob(dest, layers[0])
    squat.unlink()
    squat.mkdir()
    index = (dest / "index.json").read_bytes()

    result = world.sedis("pull", "e2e/dest:v1", f"oci:{dest}:v2", "--as", "bob")

    assert result.code == 9
    assert one_line(result.err) == (
        f"sedis: {dest}: blobs/sha256/{layers[0][7:]} is a directory; refusing to replace it"
    )
    assert (dest / "index.json").read_bytes() == index
    assert squat.is_dir() and not any(squat.iterdir())


@pytest.mark.parametrize("link", ["blobs", "blobs/sha256"])
def test_a_symlinked_blobs_is_refused_and_nothing_is_made_at_its_target(
    world: World, published: Path, link: str
) -> None:
    dest = pulled_layout(world, f"linked-{link.replace('/', '-')}")
    target = world.work / f"target-{link.replace('/', '-')}"
    target.mkdir()
    shutil.rmtree(dest / link)
    (dest / link).symlink_to(target)
    before = tree_snapshot(dest)

    result = world.sedis("pull", "e2e/dest:v1", f"oci:{dest}:v2", "--as", "bob")

    assert result.code == 2
    assert one_line(result.err) == f"sedis: {dest}: {link}/ is a symlink; refusing to write"
    assert list(target.iterdir()) == []
    assert tree_snapshot(dest) == before


@pytest.mark.integration
def test_a_layout_skopeo_wrote_and_someone_forged_is_whole_again_after_a_pull(
    world: World, tmp_path: Path
) -> None:
    """skopeo and oci-image-tool judge the result: both refuse the forged layout, and
    both accept it once sedis has pulled the same image into it."""
    require("skopeo", "oci-image-tool")
    busybox = build_busybox(tmp_path)
    published = world.publish(f"oci:{busybox}:latest", "e2e/busybox:1", "--to", "bob")
    assert published.code == 0, published.err
    dest = tmp_path / "dest"
    subprocess.run(
        ["skopeo", "copy", "-q", f"oci:{busybox}:latest", f"oci:{dest}:skopeo"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    _, _, layers = layout_digests(busybox)
    forged = blob(dest, layers[0])
    data = bytearray(forged.read_bytes())
    data[len(data) // 2] ^= 1
    forged.write_bytes(bytes(data))

    def skopeo_reads(tag: str) -> subprocess.CompletedProcess[str]:
        out = tmp_path / f"reread-{tag}"
        return subprocess.run(
            ["skopeo", "copy", "-q", f"oci:{dest}:{tag}", f"oci:{out}:{tag}"],
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert "Digest did not match" in skopeo_reads("skopeo").stderr  # the forgery is real

    pulled = world.sedis("pull", "e2e/busybox:1", f"oci:{dest}:sedis", "--as", "bob")

    assert pulled.code == 0, pulled.err
    assert forged.read_bytes() == blob(busybox, layers[0]).read_bytes()
    for tag in ("skopeo", "sedis"):
        reread = skopeo_reads(tag)
        assert reread.returncode == 0, reread.stderr
    validate = subprocess.run(
        ["oci-image-tool", "validate", "--type", "image", str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validate.returncode == 0, validate.stderr + validate.stdout
