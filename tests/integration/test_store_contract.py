"""One contract for every ContentStore: the embedded store and a real Kubo RPC node."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sedis.core.errors import CorruptError, InvalidInputError, NotFoundError
from sedis.store import car
from sedis.store.base import ContentStore
from sedis.store.cid import RAW, Cid
from sedis.store.embedded import EmbeddedStore
from sedis.store.importer import ImportOptions
from sedis.store.kubo import KuboStore
from tests.conftest import pseudo_random

HELLO_V0 = "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
HELLO_V1 = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


@pytest.fixture(params=["embedded", pytest.param("kubo", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContentStore]:
    if request.param == "embedded":
        yield EmbeddedStore(tmp_path / "store")
    else:
        url = request.getfixturevalue("jsipfs_url")
        with KuboStore(url) as kubo:
            yield kubo


def read(store: ContentStore, ref: str) -> bytes:
    return b"".join(store.cat(ref))


def make_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "empty-dir").mkdir()
    (tree / "a.txt").write_bytes(b"alpha\n")
    (tree / "empty").write_bytes(b"")
    (tree / "sub" / "big.bin").write_bytes(pseudo_random(600 * 1024, "tree"))
    (tree / "sub" / "deeper" / "z").write_bytes(b"zed")
    return tree


def test_hello_world_has_the_reference_cids(store: ContentStore) -> None:
    assert str(store.add_bytes(b"hello world").cid) == HELLO_V1
    assert str(store.add_bytes(b"hello world", ImportOptions(cid_version=0)).cid) == HELLO_V0
    assert read(store, HELLO_V1) == b"hello world"
    assert read(store, HELLO_V0) == b"hello world"


def test_multi_chunk_file_round_trips(store: ContentStore) -> None:
    data = pseudo_random(3 * 256 * 1024 + 5, "round-trip")
    entry = store.add_bytes(data)
    assert read(store, str(entry.cid)) == data
    info = store.stat(str(entry.cid))
    assert (info.kind, info.size, info.links) == ("file", len(data), 4)
    # Whatever the store, the CID is what the embedded importer computes.
    assert entry.cid == _local_cid(data)


def _local_cid(data: bytes, options: ImportOptions | None = None) -> Cid:
    from sedis.store.importer import DiscardSink, Importer

    return Importer(DiscardSink(), options).add_bytes(data).cid


def test_directory_tree_paths_and_listing(store: ContentStore, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    root = store.add_path(tree).cid
    names = [e.name for e in store.ls(str(root))]
    assert names == ["a.txt", "empty", "empty-dir", "sub"]
    assert read(store, f"{root}/a.txt") == b"alpha\n"
    assert read(store, f"/ipfs/{root}/sub/deeper/z") == b"zed"
    assert read(store, f"{root}/sub/big.bin") == (tree / "sub" / "big.bin").read_bytes()
    assert read(store, f"{root}/empty") == b""
    assert store.stat(f"{root}/empty-dir").kind == "directory"
    assert store.ls(f"{root}/empty-dir") == []


def test_missing_path_is_not_found_and_names_the_entry(store: ContentStore, tmp_path: Path) -> None:
    root = store.add_path(make_tree(tmp_path)).cid
    with pytest.raises(NotFoundError, match="'nope'"):
        read(store, f"{root}/sub/nope")
    with pytest.raises(NotFoundError, match="not a directory"):
        read(store, f"{root}/a.txt/x")


def test_directory_is_not_a_file(store: ContentStore, tmp_path: Path) -> None:
    root = store.add_path(make_tree(tmp_path)).cid
    with pytest.raises(InvalidInputError, match="directory"):
        read(store, str(root))


def test_has_and_unknown_cid(store: ContentStore) -> None:
    entry = store.add_bytes(b"present")
    assert store.has(entry.cid)
    absent = Cid.for_block(os.urandom(32), RAW)
    assert not store.has(absent)
    with pytest.raises(NotFoundError):
        read(store, str(absent))


def test_pins(store: ContentStore) -> None:
    pinned = store.add_bytes(b"keep me").cid
    loose = store.add_bytes(b"let me go", pin=False).cid
    assert pinned in store.pins()
    assert loose not in store.pins()
    store.pin(loose)
    assert loose in store.pins()
    store.unpin(loose)
    assert loose not in store.pins()
    with pytest.raises(NotFoundError):
        store.unpin(loose)


def test_gc_removes_only_unpinned_blocks(store: ContentStore) -> None:
    kept = store.add_bytes(pseudo_random(300 * 1024, "kept")).cid
    dropped = store.add_bytes(pseudo_random(300 * 1024, "dropped"), pin=False).cid
    store.gc()
    assert not store.has(dropped)
    assert read(store, str(kept)) == pseudo_random(300 * 1024, "kept")


def test_car_export_then_import_into_another_store(store: ContentStore, tmp_path: Path) -> None:
    source = EmbeddedStore(tmp_path / "source")
    root = source.add_path(make_tree(tmp_path)).cid
    buf = io.BytesIO()
    blocks = source.export_car(str(root), buf)
    assert blocks >= 8
    buf.seek(0)
    assert store.import_car(buf) == [root]
    assert root in store.pins()
    assert read(store, f"{root}/sub/deeper/z") == b"zed"


def _car_bytes(tmp_path: Path) -> tuple[bytes, Cid]:
    source = EmbeddedStore(tmp_path / "car-source")
    root = source.add_bytes(pseudo_random(700 * 1024, "car")).cid
    buf = io.BytesIO()
    source.export_car(str(root), buf)
    return buf.getvalue(), root


def test_truncated_car_imports_nothing(store: ContentStore, tmp_path: Path) -> None:
    data, root = _car_bytes(tmp_path)
    with pytest.raises(InvalidInputError, match="truncated"):
        store.import_car(io.BytesIO(data[:-100]))
    assert not store.has(root)


def test_garbage_car_imports_nothing(store: ContentStore) -> None:
    with pytest.raises(InvalidInputError):
        store.import_car(io.BytesIO(b"\x0a" + os.urandom(500)))


def test_car_block_that_does_not_match_its_cid_imports_nothing(
    store: ContentStore, tmp_path: Path
) -> None:
    data, root = _car_bytes(tmp_path)
    # Flip a byte near the end: inside the last block's data.
    damaged = bytearray(data)
    damaged[-10] ^= 0xFF
    with pytest.raises(CorruptError, match="does not match its CID"):
        store.import_car(io.BytesIO(bytes(damaged)))
    assert not store.has(root)
    reader = car.CarReader(io.BytesIO(data))
    first_leaf = [cid for cid, _ in reader.blocks()][1]
    assert not store.has(first_leaf)


def test_add_directory_over_stored_content_equals_adding_the_tree(
    store: ContentStore, tmp_path: Path
) -> None:
    tree = tmp_path / "pair"
    tree.mkdir()
    (tree / "b.bin").write_bytes(pseudo_random(400 * 1024, "pair-b"))
    (tree / "a.txt").write_bytes(b"first\n")
    entries = [(p.name, store.add_path(p, pin=False)) for p in sorted(tree.iterdir())]
    made = store.add_directory(list(reversed(entries)), pin=True)
    assert made.cid == store.add_path(tree).cid
    assert made.cid in store.pins()
    assert [e.name for e in store.ls(str(made.cid))] == ["a.txt", "b.bin"]
    assert read(store, f"{made.cid}/a.txt") == b"first\n"
