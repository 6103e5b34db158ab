"""CIDs identical to kubo's: checked against ipfs_cid (CIDv0) and a real js-ipfs daemon."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

from sedis.store import dagpb
from sedis.store.embedded import EmbeddedStore
from sedis.store.importer import ImportOptions
from sedis.store.kubo import KuboStore
from tests import peers
from tests.conftest import pseudo_random

pytestmark = pytest.mark.integration

KIB = 1024
MIB = 1024 * KIB
CASES = [
    pytest.param("hello", 11, id="hello world"),
    pytest.param("empty", 0, id="empty"),
    pytest.param("256KiB", 256 * KIB, id="256KiB"),
    pytest.param("256KiB+1", 256 * KIB + 1, id="256KiB+1"),
    pytest.param("1MiB", MIB, id="1MiB"),
    pytest.param("10MiB", 10 * MIB, id="10MiB"),
    pytest.param("50MiB", 50 * MIB, id="50MiB", marks=pytest.mark.slow),
]


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store")


@pytest.fixture
def kubo(jsipfs_url: str) -> KuboStore:
    return KuboStore(jsipfs_url)


def sample(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    path.write_bytes(b"hello world" if name == "hello" else pseudo_random(size, name))
    return path


@pytest.mark.parametrize(("name", "size"), CASES)
def test_cidv0_matches_ipfs_cid(store: EmbeddedStore, tmp_path: Path, name: str, size: int) -> None:
    path = sample(tmp_path, name, size)
    ours = store.add_path(path, ImportOptions(cid_version=0)).cid
    assert str(ours) == peers.ipfs_cid_v0(path)


@pytest.mark.parametrize(("name", "size"), CASES)
def test_cidv1_raw_leaves_matches_js_ipfs(
    store: EmbeddedStore, kubo: KuboStore, tmp_path: Path, name: str, size: int
) -> None:
    path = sample(tmp_path, name, size)
    ours = store.add_path(path).cid
    theirs = kubo.add_path(path).cid
    assert ours == theirs
    assert str(theirs).startswith("bafkrei" if size <= 256 * KIB else "bafybei")


@pytest.mark.slow
def test_50_mib_is_a_two_level_tree(store: EmbeddedStore, tmp_path: Path) -> None:
    root = store.add_path(sample(tmp_path, "50MiB", 50 * MIB)).cid
    top = dagpb.decode(store.get_block(root)).links
    assert len(top) == 2
    first = dagpb.decode(store.get_block(top[0].cid)).links
    assert len(first) == 174


def nested_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "nested"
    (tree / "sub" / "inner").mkdir(parents=True)
    (tree / "sub" / "empty-dir").mkdir()
    (tree / "empty-1").write_bytes(b"")
    (tree / "sub" / "empty-2").write_bytes(b"")
    (tree / "readme.md").write_text("# nested\n")
    (tree / "sub" / "inner" / "blob.bin").write_bytes(pseudo_random(700 * KIB, "blob"))
    (tree / "sub" / "ünïcode name.txt").write_text("names are UTF-8\n")
    return tree


@pytest.mark.parametrize("version", [0, 1])
def test_nested_directory_matches_js_ipfs(
    store: EmbeddedStore, kubo: KuboStore, tmp_path: Path, version: int
) -> None:
    tree = nested_tree(tmp_path)
    options = ImportOptions(cid_version=version)
    ours = store.add_path(tree, options)
    theirs = kubo.add_path(tree, options)
    assert ours.cid == theirs.cid
    assert ours.tsize == theirs.tsize


def test_car_from_the_embedded_store_imports_into_js_ipfs(
    store: EmbeddedStore, kubo: KuboStore, jsipfs_url: str, tmp_path: Path
) -> None:
    tree = nested_tree(tmp_path)
    root = store.add_path(tree).cid
    car = io.BytesIO()
    store.export_car(str(root), car)
    car.seek(0)
    assert kubo.import_car(car) == [root]
    # The node's own cat, not sedis's verified reader, gives the bytes back.
    response = httpx.post(
        f"{jsipfs_url}/api/v0/cat", params={"arg": f"{root}/sub/inner/blob.bin"}, timeout=30
    )
    assert response.status_code == 200
    assert response.content == (tree / "sub" / "inner" / "blob.bin").read_bytes()
    assert root in kubo.pins()
