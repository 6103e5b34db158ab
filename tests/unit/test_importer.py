"""The importer's DAG shapes: the chunk and fan-out boundaries of kubo's balanced layout."""

from __future__ import annotations

import io

import pytest

from sedis.core.errors import InvalidInputError
from sedis.store import dagpb, unixfs
from sedis.store.cid import DAG_PB, RAW, Cid
from sedis.store.importer import CHUNK_SIZE, Entry, Importer, ImportOptions


class RecordingSink:
    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}

    def put_block(self, cid: Cid, data: bytes | memoryview) -> None:
        assert cid.matches(data)
        self.blocks[cid.binary] = bytes(data)


def children(sink: RecordingSink, cid: Cid) -> list[Cid]:
    return [link.cid for link in dagpb.decode(sink.blocks[cid.binary]).links]


def add(data: bytes, **options: int) -> tuple[Entry, RecordingSink]:
    sink = RecordingSink()
    return Importer(sink, ImportOptions(**options)).add_bytes(data), sink  # type: ignore[arg-type]


def test_exactly_one_chunk_is_a_single_raw_leaf() -> None:
    data = bytes(CHUNK_SIZE)
    entry, sink = add(data)
    assert entry.cid.codec == RAW
    assert len(sink.blocks) == 1
    assert entry.size == entry.tsize == CHUNK_SIZE


def test_one_byte_over_a_chunk_makes_a_root_of_two_leaves() -> None:
    entry, sink = add(b"\x01" * (CHUNK_SIZE + 1))
    assert entry.cid.codec == DAG_PB
    leaves = children(sink, entry.cid)
    assert len(leaves) == 2
    data = unixfs.decode(dagpb.decode(sink.blocks[entry.cid.binary]).data or b"")
    assert data.filesize == CHUNK_SIZE + 1
    assert data.blocksizes == (CHUNK_SIZE, 1)


def test_balanced_layout_fills_a_level_before_adding_depth() -> None:
    # 3 links per node and 1-byte chunks: 10 bytes need depth 3 (3 -> 9 -> 27 leaves).
    entry, sink = add(bytes(range(10)), chunk_size=1, max_links=3)
    top = children(sink, entry.cid)
    assert len(top) == 2  # a full subtree of 9 leaves, then one holding the last leaf
    assert [len(children(sink, c)) for c in top] == [3, 1]
    assert [len(children(sink, c)) for c in children(sink, top[0])] == [3, 3, 3]


def test_cidv0_leaves_are_unixfs_file_nodes() -> None:
    entry, sink = add(b"abc", cid_version=0)
    node = dagpb.decode(sink.blocks[entry.cid.binary])
    assert unixfs.decode(node.data or b"") == unixfs.Data(unixfs.NodeType.FILE, b"abc", 3)


def test_short_reads_from_a_pipe_still_fill_whole_chunks() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            take = min(n if n >= 0 else len(self.data), 1000)
            piece, self.data = self.data[:take], self.data[take:]
            return piece

    data = bytes(CHUNK_SIZE * 2 + 7)
    streamed = Importer(RecordingSink()).add_stream(Trickle(data))  # type: ignore[arg-type]
    assert streamed.cid == add(data)[0].cid


def test_option_refusals() -> None:
    with pytest.raises(InvalidInputError):
        ImportOptions(cid_version=2)
    with pytest.raises(InvalidInputError):
        ImportOptions(cid_version=0, raw_leaves=True)
    with pytest.raises(InvalidInputError):
        ImportOptions(chunk_size=2 * 1024 * 1024)


class _ThreadRecorder:
    """A sink that remembers which thread stored each leaf."""

    def __init__(self) -> None:
        self.threads: set[str] = set()

    def put_block(self, cid: Cid, data: bytes | memoryview) -> None:
        import threading

        if cid.codec == RAW:
            self.threads.add(threading.current_thread().name)


def test_a_stream_of_one_batch_is_hashed_on_the_callers_thread() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    small, large, alone = _ThreadRecorder(), _ThreadRecorder(), _ThreadRecorder()
    data = bytes(range(256)) * 4096  # 1 MiB: four chunks, one worker batch
    with ThreadPoolExecutor(2, thread_name_prefix="workers") as workers:
        small_entry = Importer(small, executor=workers).add_stream(io.BytesIO(data[:-1]))
        large_entry = Importer(large, executor=workers).add_stream(io.BytesIO(data + data))
    alone_entry = Importer(alone).add_stream(io.BytesIO(data + data))
    here = threading.current_thread().name
    assert small.threads == {here}
    assert large.threads and all(name.startswith("workers") for name in large.threads)
    assert alone.threads == {here}  # no executor: all on the caller's thread
    # Either way, the same bytes give the same CID.
    again = Importer(_ThreadRecorder()).add_stream(io.BytesIO(data[:-1]))
    assert again == small_entry and large_entry.size == 2 * len(data)
    assert alone_entry == large_entry


class _FailingStream(io.RawIOBase):
    """Gives ``good`` bytes, then fails the way a verifying stream does."""

    def __init__(self, good: bytes) -> None:
        self._inner = io.BytesIO(good)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        got = self._inner.readinto(buffer)
        if not got:
            raise ValueError("the source lied")
        return got


class _SlowSink(RecordingSink):
    """Stores slowly, noting each block it was still storing after the add failed."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False
        self.late: list[bytes] = []

    def put_block(self, cid: Cid, data: bytes | memoryview) -> None:
        import time

        time.sleep(0.01)
        if self.failed:
            self.late.append(cid.binary)
        super().put_block(cid, data)


def test_a_failed_add_stores_nothing_after_it_returns() -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    sink = _SlowSink()
    with ThreadPoolExecutor(2) as workers:
        importer = Importer(sink, executor=workers, window=4)
        with pytest.raises(ValueError, match="the source lied"):
            importer.add_stream(_FailingStream(bytes(6 * 1024 * 1024)))  # type: ignore[arg-type]
        sink.failed = True
        time.sleep(0.3)
    assert sink.late == []
