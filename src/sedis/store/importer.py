"""The UnixFS importer, with kubo's defaults.

Files are cut into fixed-size chunks (256 KiB) and built into a balanced DAG
of at most 174 links per node, exactly as kubo's balanced layout does it, so
that the same bytes and settings give the same CID. Directories are dag-pb
UnixFS directories with links sorted by name.

Given an executor, leaves are hashed and written on its threads while the
caller's thread reads ahead: sha256 and file writes release the GIL, so an
add uses every core, and more writers than cores keep the disk busy while
others hash. At most ``window`` batches of chunks (4 MiB) are in flight, so
memory stays constant whatever the file size. (Twice that kept two cores no busier, and a fresh
process pays to fault in every in-flight byte: a 39 MiB publish took 9 ms longer.)
"""

from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from sedis.core.errors import InvalidInputError
from sedis.store import dagpb, unixfs
from sedis.store.cid import DAG_PB, RAW, Cid

CHUNK_SIZE = 256 * 1024
LEAF_BATCH_BYTES = 1024 * 1024
MAX_LINKS = 174
# kubo switches a directory to a HAMT shard once its links would outgrow one
# block; sedis does not write HAMT shards, so it refuses at that point
# instead of silently producing a CID that kubo would not.
DIRECTORY_SHARD_THRESHOLD = 256 * 1024


class BlockSink(Protocol):
    def put_block(self, cid: Cid, data: bytes | memoryview) -> None:
        """Store one block. Must be safe to call from several threads.

        ``data`` may be a view into a larger buffer: a sink that keeps it copies it."""


class DiscardSink:
    """Computes CIDs without storing anything (kubo's --only-hash)."""

    def put_block(self, cid: Cid, data: bytes | memoryview) -> None:
        return None


@dataclass(frozen=True, slots=True)
class ImportOptions:
    cid_version: int = 1
    raw_leaves: bool | None = None  # None: kubo's default, raw leaves iff CIDv1
    chunk_size: int = CHUNK_SIZE
    max_links: int = MAX_LINKS
    hidden: bool = False  # include dot-files when adding a directory

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise InvalidInputError("--cid-version must be 0 or 1")
        if self.cid_version == 0 and self.raw_leaves:
            raise InvalidInputError("raw leaves need CIDv1")
        if not 1 <= self.chunk_size <= 1024 * 1024:
            raise InvalidInputError("chunk size must be between 1 B and 1 MiB")
        if self.max_links < 2:
            raise InvalidInputError("a DAG node needs room for at least 2 links")

    @property
    def use_raw_leaves(self) -> bool:
        return self.cid_version == 1 if self.raw_leaves is None else self.raw_leaves


@dataclass(frozen=True, slots=True)
class Entry:
    """One imported node: its CID, the bytes of content below it, and its DAG size."""

    cid: Cid
    size: int
    tsize: int  # cumulative size of every block in the DAG, as dag-pb links record it


Progress = Callable[[int], None]


class Importer:
    """Builds UnixFS DAGs into ``sink``.

    ``executor``: where leaves are hashed and stored, beside the reading
    thread; None hashes them on the calling thread. The tasks given to it
    wait on nothing, but the importer waits on them: a caller that runs on
    one of the executor's threads must not hand it that same executor.
    """

    def __init__(
        self,
        sink: BlockSink,
        options: ImportOptions | None = None,
        *,
        executor: Executor | None = None,
        window: int = 4,
    ) -> None:
        self._sink = sink
        self._opts = options or ImportOptions()
        self._executor = executor
        self._window = window

    # -- files -----------------------------------------------------------------

    def add_stream(self, stream: BinaryIO, progress: Progress | None = None) -> Entry:
        produced = self._leaves(stream, progress)
        try:
            leaves = _Lookahead(produced)
            root = next(leaves)
            depth = 1
            while not leaves.done():
                root = self._fill(leaves, [root], depth)
                depth += 1
            return root
        finally:
            produced.close()  # its leaves, if it stopped early: see _leaves

    def add_bytes(self, data: bytes) -> Entry:
        import io

        return self.add_stream(io.BytesIO(data))

    def _fill(self, leaves: _Lookahead, children: list[Entry], depth: int) -> Entry:
        while len(children) < self._opts.max_links and not leaves.done():
            if depth == 1:
                children.append(next(leaves))
            else:
                children.append(self._fill(leaves, [], depth - 1))
        return self._file_node(children)

    def _file_node(self, children: list[Entry]) -> Entry:
        sizes = tuple(child.size for child in children)
        data = unixfs.encode(
            unixfs.Data(unixfs.NodeType.FILE, filesize=sum(sizes), blocksizes=sizes)
        )
        links = tuple(dagpb.Link(child.cid, "", child.tsize) for child in children)
        block = dagpb.encode(dagpb.Node(links, data))
        cid = Cid.for_block(block, DAG_PB, self._opts.cid_version)
        self._sink.put_block(cid, block)
        return Entry(cid, sum(sizes), len(block) + sum(child.tsize for child in children))

    def _leaves(self, stream: BinaryIO, progress: Progress | None) -> Generator[Entry, None, None]:
        # Leaves go to the workers a few at a time: one hand-off per mebibyte
        # instead of one per chunk, so the threads spend their time hashing.
        size = self._opts.chunk_size
        batch = size * max(1, LEAF_BATCH_BYTES // size)
        pending: deque[Future[list[Entry]]] = deque()
        first = True
        try:
            while True:
                data = _read_full(stream, batch)
                if not data and not first:
                    break
                view = memoryview(data)
                chunks = [view[i : i + size] for i in range(0, len(data), size)] or [view]
                if progress is not None and data:
                    progress(len(data))
                # No workers, or the whole stream in one batch (a manifest, a config):
                # hashed here.
                here = self._executor is None or (first and len(data) < batch)
                first = False
                if here:
                    yield from self._leaf_batch(chunks)
                else:
                    assert self._executor is not None
                    pending.append(self._executor.submit(self._leaf_batch, chunks))
                    if len(pending) >= self._window:
                        yield from pending.popleft().result()
                if len(data) < batch:
                    break
            while pending:
                yield from pending.popleft().result()
        finally:
            # On a failure, no leaf is still being stored once the add is over.
            for task in pending:
                task.cancel()
            wait(pending)

    def _leaf_batch(self, chunks: list[memoryview]) -> list[Entry]:
        return [self._leaf(chunk) for chunk in chunks]

    def _leaf(self, chunk: memoryview) -> Entry:
        if self._opts.use_raw_leaves:
            cid = Cid.for_block(chunk, RAW, 1)
            self._sink.put_block(cid, chunk)
            return Entry(cid, len(chunk), len(chunk))
        data = unixfs.Data(unixfs.NodeType.FILE, bytes(chunk) or None, len(chunk))
        block = dagpb.encode(dagpb.Node((), unixfs.encode(data)))
        cid = Cid.for_block(block, DAG_PB, self._opts.cid_version)
        self._sink.put_block(cid, block)
        return Entry(cid, len(chunk), len(block))

    # -- trees -----------------------------------------------------------------

    def add_path(self, path: Path, progress: Progress | None = None) -> Entry:
        """Add a file, a symlink or a whole directory tree, as ``ipfs add -r`` does."""
        try:
            st = path.lstat()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc
        if stat.S_ISLNK(st.st_mode):
            return self._symlink(path)
        if stat.S_ISDIR(st.st_mode):
            return self._directory(path, progress)
        if stat.S_ISREG(st.st_mode):
            try:
                with open(path, "rb", buffering=0) as stream:
                    return self.add_stream(stream, progress)
            except OSError as exc:
                raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc
        raise InvalidInputError(f"cannot add {path}: not a regular file, directory or symlink")

    def _symlink(self, path: Path) -> Entry:
        target = os.readlink(path)
        data = unixfs.encode(unixfs.Data(unixfs.NodeType.SYMLINK, target.encode()))
        block = dagpb.encode(dagpb.Node((), data))
        cid = Cid.for_block(block, DAG_PB, self._opts.cid_version)
        self._sink.put_block(cid, block)
        return Entry(cid, 0, len(block))

    def _directory(self, path: Path, progress: Progress | None) -> Entry:
        try:
            names = os.listdir(path)
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc
        children: list[tuple[bytes, str, Entry]] = []
        for name in names:
            if name.startswith(".") and not self._opts.hidden:
                continue
            try:
                encoded = name.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidInputError(f"file name is not UTF-8: {path / name!s}") from exc
            children.append((encoded, name, self.add_path(path / name, progress)))
        children.sort(key=lambda item: item[0])
        return self.directory_node([(name, entry) for _, name, entry in children])

    def directory_node(self, children: list[tuple[str, Entry]]) -> Entry:
        """Write a directory node over already-imported entries (sorted here by name)."""
        children = sorted(children, key=lambda item: item[0].encode())
        estimate = sum(len(name.encode()) + len(e.cid.binary) for name, e in children)
        if estimate > DIRECTORY_SHARD_THRESHOLD:
            raise InvalidInputError(
                f"directory of {len(children)} entries is too large for one block "
                "(HAMT-sharded directories are not supported)"
            )
        links = tuple(dagpb.Link(entry.cid, name, entry.tsize) for name, entry in children)
        block = dagpb.encode(
            dagpb.Node(links, unixfs.encode(unixfs.Data(unixfs.NodeType.DIRECTORY)))
        )
        cid = Cid.for_block(block, DAG_PB, self._opts.cid_version)
        self._sink.put_block(cid, block)
        return Entry(
            cid,
            sum(entry.size for _, entry in children),
            len(block) + sum(entry.tsize for _, entry in children),
        )


def _read_full(stream: BinaryIO, size: int) -> bytes:
    """Read exactly ``size`` bytes unless the stream ends first (pipes give short reads)."""
    data = stream.read(size)
    if not data or len(data) == size:
        return data or b""
    parts = [data]
    got = len(data)
    while got < size:
        more = stream.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class _Lookahead:
    """An iterator that can tell whether another item follows (go's db.Done())."""

    def __init__(self, items: Iterator[Entry]) -> None:
        self._items = items
        self._next: Entry | None = None
        self._ended = False

    def done(self) -> bool:
        if self._next is None and not self._ended:
            try:
                self._next = next(self._items)
            except StopIteration:
                self._ended = True
        return self._next is None

    def __iter__(self) -> _Lookahead:
        return self

    def __next__(self) -> Entry:
        if self.done():
            raise StopIteration
        item, self._next = self._next, None
        assert item is not None
        return item
