"""The embedded ContentStore: a local IPFS blockstore with kubo-identical CIDs.

Blocks live in pack files (see packstore): one per add, indexed when whole.
A store from before packs (one file per block) is moved into a pack on open.

Concurrency: adds, imports and pins hold a shared lock and garbage collection
(or a release) an exclusive one, so gc never sweeps the blocks of an add that has not pinned
its root yet. (filelock has no shared mode, hence flock directly.) The pin set
is a small JSON file, replaced atomically under its own lock.

Threads: a store keeps two small pools for as long as it is open, one that
reads blocks ahead of a ``cat`` and one that hashes and writes an add's
leaves; they are shared by every thread that uses the store, and what runs
on them waits on nothing. (A use case's own executor is not used: a caller
running on it would wait on tasks queued behind itself.)
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

from sedis.core.errors import CorruptError, InvalidInputError, NotFoundError
from sedis.store import car, reader
from sedis.store.base import ContentStore, GcReport
from sedis.store.cid import DAG_PB, Cid
from sedis.store.importer import Entry, Importer, ImportOptions, Progress
from sedis.store.packstore import PackStore

# Blocks in flight ahead of a reader: 4 batches of 4 x 256 KiB keep both threads busy.
_BATCH = 4
_PREFETCH = 4
_READ_THREADS = 2
# More writers than cores: some write while others hash.
_IMPORT_THREADS = 4


class EmbeddedStore(ContentStore):
    def __init__(self, root: Path) -> None:
        self.url = "embedded"
        self.root = root
        self._blocks = PackStore(root)
        self._pins_file = root / "pins.json"
        self._release_journal = root / "releasing.json"
        self._pins_lock = FileLock(str(root / "pins.lock"))
        self._gc_lock_file = root / "gc.lock"
        self._readers = _Threads(_READ_THREADS, "sedis-read")
        self._importers = _Threads(_IMPORT_THREADS, "sedis-import")
        if (root / "blocks").is_dir():
            with self._gc_guard(exclusive=True):
                self._blocks.migrate_flat(root / "blocks")

    # -- blocks ------------------------------------------------------------------

    def get_block(self, cid: Cid) -> bytes:
        return self._blocks.get_block(cid)

    def has(self, cid: Cid) -> bool:
        return self._blocks.has_block(cid)

    def get_blocks(self, cids: Iterable[Cid], *, rehash: bool = True) -> Iterator[bytes]:
        """Blocks in order, read (and re-hashed) on the reading threads ahead of the consumer.

        The readers take a few blocks per task (one hand-off per mebibyte).
        """
        from collections import deque
        from concurrent.futures import Future
        from itertools import islice

        def read(batch: tuple[Cid, ...]) -> list[bytes]:
            return [self._blocks.get_block(cid, rehash=rehash) for cid in batch]

        pool = self._readers.get()
        pending: deque[Future[list[bytes]]] = deque()
        it = iter(cids)
        while batch := tuple(islice(it, _BATCH)):
            pending.append(pool.submit(read, batch))
            if len(pending) >= _PREFETCH:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()

    def reread(self, ref: str) -> Iterator[bytes]:
        """A file's bytes once more, right after a ``cat`` of it ran to its end,
        without hashing its blocks again (see base.RereadsWithoutHashing)."""
        # Pack files are written once and never changed in place (gc moves
        # blocks whole), so bytes that cat() checked a moment ago are read
        # without hashing them again; the caller checks them against a digest.
        return reader.read_file(_Rehashless(self), self.resolve(ref))

    def close(self) -> None:
        self._readers.shutdown()
        self._importers.shutdown()
        self._blocks.close()

    def locate(self, cid: Cid) -> tuple[Path, int, int] | None:
        """Where a block is kept: (pack file, offset, length); for debugging and tests."""
        return self._blocks.locate(cid)

    def locations(self) -> list[tuple[Path, int, int]]:
        """Where every stored block is kept, in pack order."""
        from sedis.store.cid import RAW

        found = (self._blocks.locate(Cid(1, RAW, digest)) for digest in self._blocks.digests())
        return sorted(where for where in found if where is not None)

    # -- adding ------------------------------------------------------------------

    def add_stream(
        self,
        stream: BinaryIO,
        options: ImportOptions | None = None,
        *,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> Entry:
        return self._add(lambda importer: importer.add_stream(stream, progress), options, pin)

    def add_path(
        self,
        path: Path,
        options: ImportOptions | None = None,
        *,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> Entry:
        return self._add(lambda importer: importer.add_path(path, progress), options, pin)

    def add_directory(self, children: Sequence[tuple[str, Entry]], *, pin: bool = True) -> Entry:
        return self._add(lambda importer: importer.directory_node(list(children)), None, pin)

    def _add(
        self, build: Callable[[Importer], Entry], options: ImportOptions | None, pin: bool
    ) -> Entry:
        """One add: its blocks in one pack, visible together; then its pin, if asked."""
        # One shared lock over the add and the pin: gc never sees the blocks unpinned.
        with self._gc_guard(exclusive=False):
            with self._blocks.writer() as pack:
                entry = build(Importer(pack, options, executor=self._importers.get()))
            if pin:
                self._add_pin(entry.cid)
            return entry

    # -- pins --------------------------------------------------------------------

    def pin(self, cid: Cid) -> None:
        with self._gc_guard(exclusive=False):
            self._check_complete(cid, self.get_block, self.has)
            self._add_pin(cid)

    def unpin(self, cid: Cid) -> None:
        with self._pins_lock:
            pins = self._read_pins()
            if cid not in pins:
                raise NotFoundError(f"{cid} is not pinned")
            pins.remove(cid)
            self._write_pins(pins)

    def pins(self) -> list[Cid]:
        with self._pins_lock:
            return sorted(self._read_pins(), key=str)

    def _add_pin(self, cid: Cid) -> None:
        with self._pins_lock:
            pins = self._read_pins()
            if cid not in pins:
                pins.add(cid)
                self._write_pins(pins)

    def _read_pins(self) -> set[Cid]:
        try:
            raw = json.loads(self._pins_file.read_text())
        except FileNotFoundError:
            return set()
        except (ValueError, OSError) as exc:
            raise CorruptError(f"pin set {self._pins_file} is unreadable: {exc}") from exc
        return {Cid.parse(text) for text in raw.get("pins", [])}

    def _write_pins(self, pins: set[Cid]) -> None:
        _write_atomic(self._pins_file, _cids_json(pins))

    # -- CAR import ----------------------------------------------------------------

    def import_car(self, stream: BinaryIO, name: str = "CAR") -> list[Cid]:
        with self._gc_guard(exclusive=False):
            staging = self._blocks.tmp_dir() / f"car-{secrets.token_hex(8)}"
            staging.mkdir()
            try:
                overlay = _StagedBlocks(staging, self._blocks)
                car_reader = car.CarReader(stream, name)
                for cid, data in car_reader.blocks():
                    overlay.stage(cid, data)
                for root in car_reader.roots:
                    self._check_complete(root, overlay.get_block, overlay.has, context=name)
                self._blocks.adopt(overlay.staged())
                for root in car_reader.roots:
                    self._add_pin(root)
                return car_reader.roots
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _check_complete(
        root: Cid,
        get_block: Callable[[Cid], bytes],
        has: Callable[[Cid], bool],
        context: str = "",
    ) -> None:
        """Every block under ``root`` is present and valid (raw leaves: present)."""
        stack = [root]
        seen: set[bytes] = set()
        while stack:
            cid = stack.pop()
            if cid.binary in seen:
                continue
            seen.add(cid.binary)
            if cid.codec == DAG_PB:
                stack.extend(reader.links_of(cid, get_block(cid)))
            elif not has(cid):
                where = f"{context}: " if context else ""
                raise NotFoundError(f"{where}DAG {root} is incomplete: block {cid} is missing")

    # -- garbage collection ----------------------------------------------------------

    def gc(self) -> GcReport:
        with self._gc_guard(exclusive=True):
            removed, freed = self._blocks.collect(self._reachable(self.pins()))
            self._release_journal.unlink(missing_ok=True)  # gc removed all it would
            for entry in os.scandir(self._blocks.tmp_dir()):
                shutil.rmtree(entry.path, ignore_errors=True)  # a killed CAR import's staging
            return GcReport(removed, freed)

    def release(self, roots: Iterable[Cid]) -> list[Cid]:
        """Unpin these roots, and remove now the blocks that only they reached.

        Only the released DAGs' blocks go, not every unpinned block as in gc, so
        the blocks of an add that has not pinned its root yet are left alone. The
        roots are noted in a journal before the pin set changes; a release killed
        before its removal is finished by the next release or gc.
        """
        with self._gc_guard(exclusive=True):
            self._finish_release()
            with self._pins_lock:
                pins = self._read_pins()
                released = [root for root in dict.fromkeys(roots) if root in pins]
                if not released:
                    return []
                _write_atomic(self._release_journal, _cids_json(released))
                pins.difference_update(released)
                self._write_pins(pins)
            self._finish_release()
            return released

    def _finish_release(self) -> None:
        """Remove what the journal's roots reach and no pin does; then drop the journal."""
        try:
            noted = json.loads(self._release_journal.read_text())
            roots = [Cid.parse(text) for text in noted.get("pins", [])]
        except FileNotFoundError:
            return
        except (ValueError, OSError, CorruptError, InvalidInputError) as exc:
            raise CorruptError(f"{self._release_journal} is unreadable: {exc}") from exc
        self._blocks.remove(self._reachable(roots) - self._reachable(self.pins()))
        self._release_journal.unlink()

    def _reachable(self, roots: Iterable[Cid]) -> set[bytes]:
        """The digests of every block that these roots reach (those present)."""
        live: set[bytes] = set()
        for root in roots:
            stack = [root]
            while stack:
                cid = stack.pop()
                if cid.digest in live:
                    continue
                live.add(cid.digest)
                if cid.codec == DAG_PB and self._blocks.has_block(cid):
                    stack.extend(reader.links_of(cid, self._blocks.get_block(cid)))
        return live

    @contextmanager
    def _gc_guard(self, *, exclusive: bool) -> Iterator[None]:
        fd = os.open(self._gc_lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)


class _Threads:
    """A pool of the store's, started on first use and kept until the store closes."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._size, thread_name_prefix=self._name)
            return self._pool

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _cids_json(cids: Iterable[Cid]) -> str:
    return json.dumps({"version": 1, "pins": sorted(str(c) for c in cids)}, indent=1)


def _write_atomic(path: Path, payload: str) -> None:
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}")
    with open(tmp, "w") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _StagedBlocks:
    """Blocks from a CAR being imported, on disk but not yet visible in the store."""

    def __init__(self, directory: Path, store: PackStore) -> None:
        self._dir = directory
        self._store = store
        self._staged: dict[str, Cid] = {}

    def stage(self, cid: Cid, data: bytes) -> None:
        if cid.key in self._staged or self._store.has_block(cid):
            return
        (self._dir / cid.key).write_bytes(data)
        self._staged[cid.key] = cid

    def staged(self) -> Iterator[tuple[Cid, Path]]:
        for key, cid in self._staged.items():
            yield cid, self._dir / key

    def has(self, cid: Cid) -> bool:
        return cid.key in self._staged or self._store.has_block(cid)

    def get_block(self, cid: Cid) -> bytes:
        if cid.key in self._staged:
            data = (self._dir / cid.key).read_bytes()
            if not cid.matches(data):
                raise CorruptError(f"staged block {cid} changed on disk")
            return data
        return self._store.get_block(cid)


class _Rehashless:
    """The embedded store's blocks, read without re-hashing (see reread)."""

    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store

    def get_block(self, cid: Cid) -> bytes:
        return self._store._blocks.get_block(cid, rehash=False)

    def get_blocks(self, cids: Iterable[Cid]) -> Iterator[bytes]:
        return self._store.get_blocks(cids, rehash=False)
