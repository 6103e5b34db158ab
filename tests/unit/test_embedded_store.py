"""The embedded store's own guarantees.

Damage is caught, crashes leave nothing bad, and CAR imports are all-or-nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sedis.core.errors import CorruptError, InvalidInputError, NotFoundError
from sedis.store import car, dagpb, varint
from sedis.store.cid import RAW, Cid
from sedis.store.embedded import EmbeddedStore
from tests.conftest import pseudo_random


def stored_blocks(store: EmbeddedStore) -> list[tuple[Path, int, int]]:
    """(pack file, offset, length) of every stored block."""
    return store.locations()


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


def test_a_flipped_byte_in_any_block_is_caught_and_names_the_cid(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    data = pseudo_random(3 * 256 * 1024, "flip")
    root = store.add_bytes(data).cid
    stored = stored_blocks(store)
    assert len(stored) == 4  # three leaves and the root
    for path, offset, _ in stored:
        flip_byte(path, offset + 7)
        with pytest.raises(CorruptError, match=r"block baf\w+ is corrupt"):
            b"".join(store.cat(str(root)))
        flip_byte(path, offset + 7)  # restore
    assert b"".join(store.cat(str(root))) == data


def test_a_truncated_or_missing_block_is_an_error(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    root = store.add_bytes(pseudo_random(600 * 1024, "trunc")).cid
    pack, offset, _ = stored_blocks(store)[0]
    os.truncate(pack, offset + 100)
    with pytest.raises(CorruptError):
        b"".join(store.cat(str(root)))
    pack.unlink()
    # A process that opens the store now (an open handle would still read the old file).
    with pytest.raises(NotFoundError, match="is not in the store"):
        b"".join(EmbeddedStore(tmp_path / "s").cat(str(root)))


ADD_FOREVER = """
import sys, hashlib
from pathlib import Path
from sedis.store.embedded import EmbeddedStore

class Endless:
    n = 0
    def read(self, size):
        self.n += 1
        block = hashlib.sha256(str(self.n).encode()).digest() * (size // 32)
        if self.n == 8:
            print("writing", flush=True)
        return block

EmbeddedStore(Path(sys.argv[1])).add_stream(Endless())
"""


def test_sigkill_mid_add_leaves_no_block_that_fails_its_hash(tmp_path: Path) -> None:
    root = tmp_path / "s"
    proc = subprocess.Popen(
        [sys.executable, "-c", ADD_FOREVER, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = EmbeddedStore(root)
    # The killed add wrote a pack but never indexed it: none of it is visible.
    partial = [p for p in (root / "packs").iterdir() if p.name.endswith(".tmp")]
    assert len(partial) == 1 and partial[0].stat().st_size > 8 * 256 * 1024
    assert stored_blocks(store) == []
    # What it wrote is well formed: every whole record up to the first hole checks.
    # (Workers write concurrently, so a record reserved but not yet written is a hole.)
    data = partial[0].read_bytes()
    offset = checked = 0
    while offset + 40 <= len(data):
        magic, length, digest = struct.unpack(">4sI32s", data[offset : offset + 40])
        if magic == bytes(4):
            break
        assert magic == b"SDB1"
        body = data[offset + 40 : offset + 40 + length]
        if len(body) < length:
            break
        assert hashlib.sha256(body).digest() == digest
        offset += 40 + length
        checked += 1
    assert checked >= 4
    # Garbage collection reclaims it.
    report = store.gc()
    assert report.blocks_removed == 0 and report.bytes_freed == len(data)
    assert list((root / "packs").iterdir()) == []


def _car(store: EmbeddedStore, root: Cid) -> bytes:
    buf = io.BytesIO()
    store.export_car(str(root), buf)
    return buf.getvalue()


def test_car_missing_a_block_is_refused_and_imports_nothing(tmp_path: Path) -> None:
    source = EmbeddedStore(tmp_path / "a")
    root = source.add_bytes(pseudo_random(700 * 1024, "incomplete")).cid
    reader = car.CarReader(io.BytesIO(_car(source, root)))
    blocks = list(reader.blocks())
    partial = io.BytesIO()
    car.write(partial, [root], blocks[:-1])  # drop the last leaf
    target = EmbeddedStore(tmp_path / "b")
    partial.seek(0)
    with pytest.raises(NotFoundError, match="incomplete"):
        target.import_car(partial)
    assert stored_blocks(target) == []
    assert target.pins() == []


def test_carv2_is_read_through_its_data_payload(tmp_path: Path) -> None:
    source = EmbeddedStore(tmp_path / "a")
    data = pseudo_random(300 * 1024, "v2")
    root = source.add_bytes(data).cid
    v1 = _car(source, root)
    pragma = bytes.fromhex("0aa16776657273696f6e02")
    padding = b"\x00" * 13
    offset = len(pragma) + 40 + len(padding)
    header = bytes(16) + offset.to_bytes(8, "little") + len(v1).to_bytes(8, "little") + bytes(8)
    v2 = pragma + header + padding + v1 + b"trailing index bytes"
    target = EmbeddedStore(tmp_path / "b")
    assert target.import_car(io.BytesIO(v2)) == [root]
    assert b"".join(target.cat(str(root))) == data


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty file"),
        (varint.encode(10**6) + b"x", "out of bounds"),
        (b"\x05\xa1\x61\x62", "truncated"),
        (b"\x02\xa0\x00", "not valid DAG-CBOR"),
        (b"\x01\xa0", "version"),
    ],
)
def test_bad_car_headers(tmp_path: Path, payload: bytes, message: str) -> None:
    store = EmbeddedStore(tmp_path / "s")
    with pytest.raises(InvalidInputError, match=message):
        store.import_car(io.BytesIO(payload), name="bad.car")


def test_oversized_car_section_is_refused_before_it_is_read(tmp_path: Path) -> None:
    source = EmbeddedStore(tmp_path / "a")
    root = source.add_bytes(b"small").cid
    header_and_more = _car(source, root)
    header_len, pos = varint.decode(header_and_more)
    forged = header_and_more[: pos + header_len] + varint.encode(50 * 1024 * 1024) + b"\x01"
    with pytest.raises(InvalidInputError, match="section length"):
        EmbeddedStore(tmp_path / "b").import_car(io.BytesIO(forged))


def test_gc_keeps_blocks_shared_with_a_pinned_dag(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    shared = pseudo_random(256 * 1024, "shared")
    keep = store.add_bytes(shared + b"tail-1").cid
    store.add_bytes(shared + b"tail-2", pin=False)
    report = store.gc()
    assert report.blocks_removed == 2  # the other root and its own tail leaf
    assert report.bytes_freed > 0
    assert b"".join(store.cat(str(keep))) == shared + b"tail-1"


def test_pin_refuses_an_incomplete_dag(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    root = store.add_bytes(pseudo_random(600 * 1024, "pin"), pin=False).cid
    leaf = dagpb.decode(store.get_block(root)).links[0].cid
    with sqlite3.connect(tmp_path / "s" / "index.sqlite") as index:  # the leaf goes missing
        index.execute("DELETE FROM blocks WHERE digest = ?", (leaf.digest,))
    with pytest.raises(NotFoundError, match="incomplete"):
        store.pin(root)
    assert store.pins() == []


def test_directory_add_skips_dot_files_unless_asked(tmp_path: Path) -> None:
    from sedis.store.importer import ImportOptions

    tree = tmp_path / "t"
    tree.mkdir()
    (tree / ".hidden").write_text("h")
    (tree / "shown").write_text("s")
    os.symlink("shown", tree / "link")
    store = EmbeddedStore(tmp_path / "s")
    plain = store.add_path(tree).cid
    assert [e.name for e in store.ls(str(plain))] == ["link", "shown"]
    assert store.stat(f"{plain}/link").kind == "symlink"
    everything = store.add_path(tree, ImportOptions(hidden=True)).cid
    assert [e.name for e in store.ls(str(everything))] == [".hidden", "link", "shown"]


def test_special_files_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        EmbeddedStore(tmp_path / "s").add_path(fifo)


def test_an_old_one_file_per_block_store_moves_into_a_pack(tmp_path: Path) -> None:
    root = tmp_path / "s"
    good, bad = b"kept block", b"damaged block"
    for data, name in ((good, hashlib.sha256(good).hexdigest()), (bad, "00" * 32)):
        (root / "blocks" / name[:2]).mkdir(parents=True, exist_ok=True)
        (root / "blocks" / name[:2] / name).write_bytes(data)
    store = EmbeddedStore(root)
    assert not (root / "blocks").exists()
    assert store.get_block(Cid.for_block(good, RAW)) == good
    assert len(stored_blocks(store)) == 1  # the damaged one was not carried over


def test_gc_compacts_a_mostly_dead_pack_and_keeps_what_is_live(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    keep = pseudo_random(100 * 1024, "keep")
    (tree / "keep.bin").write_bytes(keep)
    (tree / "drop.bin").write_bytes(pseudo_random(900 * 1024, "drop"))
    store = EmbeddedStore(tmp_path / "s")
    root = store.add_path(tree).cid  # one add: one pack holding every block
    kept = store.ls(str(root))[1].cid
    assert store.ls(str(root))[1].name == "keep.bin"
    store.pin(kept)
    store.unpin(root)
    packs_before = sorted((tmp_path / "s" / "packs").iterdir())
    assert len(packs_before) == 1
    report = store.gc()
    assert report.blocks_removed >= 5 and report.bytes_freed > 900 * 1024
    packs_after = sorted((tmp_path / "s" / "packs").iterdir())
    assert len(packs_after) == 1 and packs_after != packs_before  # rewritten, smaller
    assert packs_after[0].stat().st_size < 200 * 1024
    assert b"".join(EmbeddedStore(tmp_path / "s").cat(str(kept))) == keep
    with pytest.raises(NotFoundError):
        b"".join(store.cat(str(root)))


CONCURRENT_ADD = """
import sys
from pathlib import Path
from sedis.store.embedded import EmbeddedStore
data = bytes([int(sys.argv[2])]) * (3 * 1024 * 1024 + 7)
print(EmbeddedStore(Path(sys.argv[1])).add_bytes(data).cid)
"""


def test_two_processes_add_at_once(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_ADD, str(tmp_path / "s"), str(n)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    cids = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    store = EmbeddedStore(tmp_path / "s")
    for n, cid in zip((1, 2), cids, strict=True):
        assert b"".join(store.cat(cid)) == bytes([n]) * (3 * 1024 * 1024 + 7)
    assert sorted(str(c) for c in store.pins()) == sorted(cids)


def test_a_reread_serves_the_same_bytes_and_is_a_capability_of_this_store(
    tmp_path: Path,
) -> None:
    from sedis.store.base import ContentStore, RereadsWithoutHashing

    store = EmbeddedStore(tmp_path / "s")
    data = pseudo_random(5 * 256 * 1024 + 17, "reread")
    root = str(store.add_bytes(data).cid)
    assert b"".join(store.cat(root)) == data
    assert isinstance(store, RereadsWithoutHashing)
    assert b"".join(store.reread(root)) == data
    assert "reread" not in vars(ContentStore)  # not every store can: not on the interface


def test_a_reread_does_not_hash_again_so_its_reader_must(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    data = pseudo_random(3 * 256 * 1024, "unhashed")
    root = str(store.add_bytes(data).cid)
    assert b"".join(store.cat(root)) == data
    leaf = next(where for where in stored_blocks(store) if where[2] == 256 * 1024)
    flip_byte(leaf[0], leaf[1] + 9)
    # What was read and checked a moment ago is taken as it lies on disk...
    assert b"".join(store.reread(root)) != data
    # ...while every cat checks every block.
    with pytest.raises(CorruptError, match="is corrupt"):
        b"".join(store.cat(root))
