"""Blocks in append-only pack files, found through a SQLite index.

One file per block costs a create and a rename for every 256 KiB; an add
that streams its blocks into a single pack file does neither, and reads
by pread. Each add writes ``packs/<id>.tmp``, renames it to ``<id>.pack``
when the last block is written, and only then commits the index rows in one
transaction: a block becomes visible whole, with everything else of its add,
or not at all. A killed add leaves an unindexed file that garbage collection
removes. Every read re-hashes the block against the CID that asked for it.

Each record is a 40-byte header (magic, length, sha256) and the block, so a
pack can be checked, or the index rebuilt, from the packs alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import struct
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from sedis.core.errors import CorruptError, NotFoundError, UnavailableError
from sedis.sqlitewal import connect_wal
from sedis.store.cid import MAX_BLOCK_SIZE, Cid

_HEADER = struct.Struct(">4sI32s")
_MAGIC = b"SDB1"
# Compact a pack once more than this share of its bytes belongs to dead blocks.
_COMPACT_DEAD_SHARE = 0.25

_SCHEMA = """
CREATE TABLE IF NOT EXISTS packs (id TEXT PRIMARY KEY, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    digest BLOB PRIMARY KEY, pack TEXT NOT NULL, offset INTEGER NOT NULL,
    length INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_by_pack ON blocks (pack);
"""


class PackStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._packs = root / "packs"
        self._tmp = root / "tmp"
        self._packs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        index = root / "index.sqlite"
        try:
            self._db = connect_wal(index, _SCHEMA, synchronous="NORMAL")
        except sqlite3.OperationalError as exc:
            raise UnavailableError(f"the store index {index} is unavailable: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise CorruptError(f"the store index {index} is damaged: {exc}") from exc
        self._lock = threading.Lock()  # one connection, many threads
        self._fds: dict[str, int] = {}

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            self._db.close()

    # -- reading -------------------------------------------------------------------

    def locate(self, cid: Cid) -> tuple[Path, int, int] | None:
        """Where a block's bytes are: (pack file, offset, length)."""
        with self._lock:
            row = self._db.execute(
                "SELECT pack, offset, length FROM blocks WHERE digest = ?", (cid.digest,)
            ).fetchone()
        if row is None:
            return None
        return self._packs / f"{row[0]}.pack", int(row[1]), int(row[2])

    def has_block(self, cid: Cid) -> bool:
        return self.locate(cid) is not None

    def get_block(self, cid: Cid, *, rehash: bool = True) -> bytes:
        """A block's bytes, checked against its CID unless ``rehash`` is False
        (for a block read and checked moments ago: packs are written once)."""
        where = self.locate(cid)
        if where is None:
            raise NotFoundError(f"block {cid} is not in the store")
        path, offset, length = where
        if length > MAX_BLOCK_SIZE:
            raise CorruptError(f"block {cid} is corrupt: its index entry is oversized")
        try:
            data = os.pread(self._fd(path), length, offset)
        except FileNotFoundError:
            raise NotFoundError(f"block {cid} is not in the store") from None
        if len(data) != length or (rehash and not cid.matches(data)):
            raise CorruptError(f"block {cid} is corrupt: its bytes do not match its CID")
        return data

    def _fd(self, path: Path) -> int:
        with self._lock:
            fd = self._fds.get(path.name)
            if fd is None:
                fd = os.open(path, os.O_RDONLY)
                self._fds[path.name] = fd
            return fd

    def digests(self) -> Iterator[bytes]:
        with self._lock:
            rows = self._db.execute("SELECT digest FROM blocks").fetchall()
        for (digest,) in rows:
            yield bytes(digest)

    def tmp_dir(self) -> Path:
        return self._tmp

    # -- writing -------------------------------------------------------------------

    def writer(self) -> PackWriter:
        return PackWriter(self)

    def put_block(self, cid: Cid, data: bytes | memoryview) -> None:
        """One block on its own (small writes; an add uses a writer for all of its blocks)."""
        with self.writer() as writer:
            writer.put_block(cid, data)

    def adopt(self, blocks: Iterable[tuple[Cid, Path]]) -> None:
        """Blocks staged in files (already verified) into the store, all visible at once."""
        with self.writer() as writer:
            for cid, staged in blocks:
                writer.put_block(cid, staged.read_bytes())

    def _publish(
        self, pack: str, size: int, rows: list[tuple[bytes, int, int]], replace: bool = False
    ) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO packs (id, size) VALUES (?, ?)", (pack, size))
                self._db.executemany(
                    f"{verb} INTO blocks (digest, pack, offset, length) VALUES (?, ?, ?, ?)",
                    [(digest, pack, offset, length) for digest, offset, length in rows],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def migrate_flat(self, blocks: Path) -> None:
        """Move a one-file-per-block store (blocks/<xx>/<hex digest>) into a pack."""
        import hashlib
        import shutil

        with self.writer() as writer:
            for shard in sorted(p for p in blocks.iterdir() if p.is_dir()):
                for path in sorted(shard.iterdir()):
                    data = path.read_bytes()
                    digest = hashlib.sha256(data).digest()
                    if digest.hex() == path.name:  # a damaged block is not carried over
                        writer.put_block(Cid(1, 0x55, digest), data)
        shutil.rmtree(blocks)

    # -- garbage collection ----------------------------------------------------------

    def collect(self, live: set[bytes]) -> tuple[int, int]:
        """Drop every block not in ``live``; return (blocks removed, bytes freed).

        The caller holds the store's exclusive lock: no add is running.
        """
        freed = self._recover()
        with self._lock:
            rows = self._db.execute("SELECT digest, pack, length FROM blocks").fetchall()
            sizes = dict(self._db.execute("SELECT id, size FROM packs").fetchall())
        dead = [(bytes(d), p, n) for d, p, n in rows if bytes(d) not in live]
        dead_bytes: dict[str, int] = {}
        for _, pack, length in dead:
            dead_bytes[pack] = dead_bytes.get(pack, 0) + length + _HEADER.size
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM blocks WHERE digest = ?", [(d,) for d, _, _ in dead])
            self._db.execute("COMMIT")
        for pack, size in sizes.items():
            share = dead_bytes.get(pack, 0) / size if size else 1.0
            if share >= 1.0 or self._empty(pack):
                freed += self._drop_pack(pack)
            elif share > _COMPACT_DEAD_SHARE:
                freed += self._compact(pack)
        return len(dead), freed

    def remove(self, digests: set[bytes]) -> tuple[int, int]:
        """Drop these blocks now, and their bytes from disk; return (removed, bytes freed).

        Every pack that held one is dropped or compacted, however little of it
        was theirs, so no copy of them stays in a pack file. The caller holds
        the store's exclusive lock.
        """
        if not digests:
            return 0, 0
        dead: list[tuple[bytes, str]] = []
        with self._lock:
            for digest in digests:
                row = self._db.execute("SELECT pack FROM blocks WHERE digest = ?", (digest,))
                found = row.fetchone()
                if found is not None:
                    dead.append((digest, found[0]))
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM blocks WHERE digest = ?", [(d,) for d, _ in dead])
            self._db.execute("COMMIT")
        freed = 0
        for pack in sorted({p for _, p in dead}):
            freed += self._drop_pack(pack) if self._empty(pack) else self._compact(pack)
        return len(dead), freed

    def _empty(self, pack: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM blocks WHERE pack = ? LIMIT 1", (pack,))
            return row.fetchone() is None

    def _compact(self, pack: str) -> int:
        with self._lock:
            rows = self._db.execute("SELECT digest FROM blocks WHERE pack = ?", (pack,)).fetchall()
        writer = self.writer()
        try:
            for (digest,) in rows:
                cid = Cid(1, 0x55, bytes(digest))  # the digest names the bytes; codec is moot
                writer.put_block(cid, self.get_block(cid), check_index=False)
            writer.commit(replace=True)
        except BaseException:
            writer.abort()
            raise
        return self._drop_pack(pack)

    def _drop_pack(self, pack: str) -> int:
        path = self._packs / f"{pack}.pack"
        with self._lock:
            self._db.execute("DELETE FROM packs WHERE id = ?", (pack,))
            fd = self._fds.pop(path.name, None)
            if fd is not None:
                os.close(fd)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def _recover(self) -> int:
        """Remove what killed adds left: temporary packs, and packs never indexed."""
        with self._lock:
            known = {row[0] for row in self._db.execute("SELECT id FROM packs")}
        freed = 0
        for entry in os.scandir(self._packs):
            stem, _, kind = entry.name.rpartition(".")
            if kind == "tmp" or (kind == "pack" and stem not in known):
                freed += entry.stat().st_size
                os.unlink(entry.path)
        return freed


class PackWriter:
    """One add's pack: blocks are written as they come, and indexed on commit."""

    def __init__(self, store: PackStore) -> None:
        self._store = store
        self.pack = secrets.token_hex(8)
        self._tmp = store._packs / f"{self.pack}.tmp"
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._lock = threading.Lock()
        self._end = 0
        self._rows: dict[bytes, tuple[int, int]] = {}

    def put_block(self, cid: Cid, data: bytes | memoryview, *, check_index: bool = True) -> None:
        digest = cid.digest
        if check_index and self._store.has_block(cid):
            return
        header = _HEADER.pack(_MAGIC, len(data), digest)
        with self._lock:
            if digest in self._rows:
                return
            offset = self._end
            self._end += len(header) + len(data)
            self._rows[digest] = (offset + len(header), len(data))
        written = os.pwritev(self._fd, [header, data], offset)
        if written != len(header) + len(data):
            raise OSError(f"short write to pack {self.pack}")

    def commit(self, *, replace: bool = False) -> None:
        os.close(self._fd)
        if not self._rows:
            self._tmp.unlink(missing_ok=True)
            return
        final = self._store._packs / f"{self.pack}.pack"
        os.replace(self._tmp, final)
        rows = [(digest, offset, length) for digest, (offset, length) in self._rows.items()]
        self._store._publish(self.pack, self._end, rows, replace)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()
