"""Merging layers: whiteouts, opaque directories, links, and bounds."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from sedis.core.errors import CorruptError, InvalidInputError
from sedis.oci.layers import merged_files, merged_tree, source_layers
from sedis.oci.transports import open_source
from tests.oci_images import (
    Member,
    directory,
    file,
    gz,
    hardlink,
    make_image,
    make_tar,
    symlink,
    write_layout,
)


def openers(*layers: bytes) -> list[Callable[[], BinaryIO]]:
    return [lambda data=data: io.BytesIO(data) for data in layers]


def everything(_: str) -> bool:
    return True


def test_whiteouts_and_opaque_directories() -> None:
    base = make_tar(
        [
            directory("etc"),
            file("etc/os-release", "ID=debian\n"),
            file("etc/passwd", "root\n"),
            directory("var/lib/dpkg"),
            file("var/lib/dpkg/status", "Package: old\n"),
            file("var/lib/dpkg/status.d/a", "A"),
            file("opt/keep", "k"),
        ]
    )
    upper = make_tar(
        [
            file("etc/.wh.passwd"),  # deletes the lower passwd
            file("var/lib/dpkg/.wh..wh..opq"),  # empties dpkg/ of lower entries
            file("var/lib/dpkg/status", "Package: new\n"),  # same layer: survives
            file("opt/.wh.keep"),
            file("opt/keep2", "k2"),
        ]
    )
    files = merged_files(openers(gz(base), upper), everything)
    assert files == {
        "etc/os-release": (0, b"ID=debian\n"),
        "var/lib/dpkg/status": (1, b"Package: new\n"),
        "opt/keep2": (1, b"k2"),
    }
    tree = merged_tree(openers(gz(base), upper))
    assert "var/lib/dpkg/status.d" not in tree
    assert "etc/passwd" not in tree and tree["etc"].kind == "dir"
    assert not any(".wh." in path for path in tree)


def test_whiteout_does_not_touch_its_own_layer() -> None:
    layer = make_tar([file("a", "1"), file(".wh.a")])
    assert merged_files(openers(layer), everything) == {"a": (0, b"1")}


def test_replacing_a_directory_with_a_file_drops_the_subtree() -> None:
    lower = make_tar([file("d/x", "1"), file("d/y/z", "2")])
    upper = make_tar([file("d", "now a file")])
    tree = merged_tree(openers(lower, upper))
    assert tree["d"].kind == "file" and "d/x" not in tree and "d/y/z" not in tree


def test_symlinks_and_hardlinks_give_their_targets_bytes() -> None:
    lower = make_tar(
        [
            file("usr/lib/os-release", "ID=alpine\n"),
            file("lib/apk/db/installed", "P:musl\n"),
        ]
    )
    upper = make_tar(
        [
            symlink("etc/os-release", "../usr/lib/os-release"),
            hardlink("lib/apk/db/installed.bak", "lib/apk/db/installed"),
            symlink("root-escape", "../../../../usr/lib/os-release"),  # clamps at /
            symlink("dangling", "nowhere"),
        ]
    )
    wanted = {"etc/os-release", "lib/apk/db/installed.bak", "root-escape", "dangling"}
    files = merged_files(openers(lower, upper), wanted.__contains__)
    assert files == {
        "etc/os-release": (0, b"ID=alpine\n"),
        "lib/apk/db/installed.bak": (0, b"P:musl\n"),
        "root-escape": (0, b"ID=alpine\n"),
    }


def test_wanted_pattern_sees_relative_paths() -> None:
    layer = make_tar(
        [
            file("./usr/lib/python3/site-packages/req-2.0.dist-info/METADATA", "Name: req\n"),
            file("app/node_modules/left-pad/package.json", '{"name":"left-pad"}'),
            file("app/other.txt", "no"),
        ]
    )

    def want(path: str) -> bool:
        return path.endswith(".dist-info/METADATA") or (
            "node_modules/" in path and path.endswith("/package.json")
        )

    assert set(merged_files(openers(gz(layer)), want)) == {
        "usr/lib/python3/site-packages/req-2.0.dist-info/METADATA",
        "app/node_modules/left-pad/package.json",
    }


def test_devices_are_listed_not_refused_in_layers() -> None:
    layer = make_tar([directory("dev"), Member("dev/null", kind=tarfile.CHRTYPE)])
    assert merged_tree(openers(layer))["dev/null"].kind == "char"


def test_size_bounds() -> None:
    layer = make_tar([file("var/lib/rpm/rpmdb.sqlite", b"x" * 5000)])
    with pytest.raises(InvalidInputError) as err:
        merged_files(openers(layer), everything, max_file_size=4096)
    assert str(err.value) == "layer 0: var/lib/rpm/rpmdb.sqlite is larger than the 4096-byte limit"
    many = make_tar([file(f"f{i}", b"y" * 1000) for i in range(10)])
    with pytest.raises(InvalidInputError, match="exceed 5000 bytes in total"):
        merged_files(openers(many), everything, max_total=5000)


def test_ratio_bound() -> None:
    zeros = gz(make_tar([file("z", bytes(40 << 20))]))
    with pytest.raises(InvalidInputError, match=r"expands more than 100:1 \(gzip bomb\?\)"):
        merged_tree(openers(zeros), max_ratio=100)


def test_layers_of_a_source_are_verified(tmp_path: Path) -> None:
    image = make_image([make_tar([file("etc/os-release", "ID=x\n")])])
    root = write_layout(tmp_path / "lay", image)
    with open_source(f"oci:{root}") as src:
        assert merged_files(source_layers(src), lambda p: p == "etc/os-release") == {
            "etc/os-release": (0, b"ID=x\n")
        }
    blob = root / "blobs" / "sha256" / image.layer_digests[0][7:]
    blob.write_bytes(blob.read_bytes() + b"\0" * 10)  # trailing junk: digest differs
    with open_source(f"oci:{root}") as src, pytest.raises(CorruptError):
        merged_files(source_layers(src), lambda p: True)
