"""Reading UnixFS DAGs from any source of verified blocks.

Nothing here trusts a block source: each block comes back checked against its
CID, and the DAG's own claims (sizes, depth, types) are bounded and checked as
they are walked. Verification lives here once; the stores only fetch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from sedis.core.errors import CorruptError, InvalidInputError, NotFoundError
from sedis.store import dagpb, unixfs
from sedis.store.cid import DAG_PB, RAW, Cid

# kubo's balanced DAGs reach depth 5 at ~7 PiB; anything deeper is crafted.
MAX_DEPTH = 32
MAX_PATH_SEGMENTS = 64


class BlockSource(Protocol):
    def get_block(self, cid: Cid) -> bytes:
        """Return the block's bytes, checked against its CID."""

    def get_blocks(self, cids: Iterable[Cid]) -> Iterator[bytes]:
        """Return several blocks in order (a source may fetch them concurrently)."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    cid: Cid
    kind: str  # file, directory, symlink, raw-file
    size: int  # content bytes of a file; 0 for a directory or symlink
    links: int
    block_size: int


@dataclass(frozen=True, slots=True)
class DirEntry:
    name: str
    cid: Cid
    tsize: int


def parse_ref(ref: str) -> tuple[Cid, list[str]]:
    """Split ``[/ipfs/]CID[/a/b]`` into the root CID and path segments."""
    text = ref.strip()
    if text.startswith("/ipfs/"):
        text = text[len("/ipfs/") :]
    elif text.startswith("ipfs://"):
        text = text[len("ipfs://") :]
    head, _, rest = text.partition("/")
    segments = [s for s in rest.split("/") if s]
    if len(segments) > MAX_PATH_SEGMENTS:
        raise InvalidInputError("path has too many segments")
    for seg in segments:
        if seg in (".", ".."):
            raise InvalidInputError(f"path segment {seg!r} is not allowed")
    return Cid.parse(head), segments


def resolve(source: BlockSource, ref: str) -> Cid:
    root, segments = parse_ref(ref)
    cid = root
    walked = str(root)
    for seg in segments:
        node, data = _decode(source, cid)
        if data is None or data.type != unixfs.NodeType.DIRECTORY:
            if data is not None and data.type == unixfs.NodeType.HAMT_SHARD:
                raise InvalidInputError(f"{walked} is a HAMT-sharded directory (not supported)")
            raise NotFoundError(f"{walked} is not a directory, so it has no {seg!r}")
        match = [link for link in node.links if link.name == seg]
        if not match:
            raise NotFoundError(f"no entry {seg!r} in {walked}")
        cid = match[0].cid
        walked += "/" + seg
    return cid


def _decode(source: BlockSource, cid: Cid) -> tuple[dagpb.Node, unixfs.Data | None]:
    if cid.codec == RAW:
        return dagpb.Node((), None), None
    block = source.get_block(cid)
    node = _decode_block(cid, block)
    return node, (unixfs.decode(node.data) if node.data is not None else None)


def _decode_block(cid: Cid, block: bytes) -> dagpb.Node:
    try:
        return dagpb.decode(block)
    except InvalidInputError as exc:
        raise CorruptError(f"block {cid} is not valid dag-pb: {exc}") from exc


def info(source: BlockSource, cid: Cid) -> NodeInfo:
    block = source.get_block(cid)
    if cid.codec == RAW:
        return NodeInfo(cid, "raw-file", len(block), 0, len(block))
    node = _decode_block(cid, block)
    if node.data is None:
        raise InvalidInputError(f"{cid} is a dag-pb node without UnixFS data")
    data = unixfs.decode(node.data)
    kind = {
        unixfs.NodeType.FILE: "file",
        unixfs.NodeType.RAW: "file",
        unixfs.NodeType.DIRECTORY: "directory",
        unixfs.NodeType.HAMT_SHARD: "hamt-directory",
        unixfs.NodeType.SYMLINK: "symlink",
        unixfs.NodeType.METADATA: "metadata",
    }[data.type]
    if kind == "file":
        size = data.filesize if data.filesize is not None else len(data.data or b"")
    else:
        size = 0
    return NodeInfo(cid, kind, size, len(node.links), len(block))


def list_directory(source: BlockSource, cid: Cid) -> list[DirEntry]:
    node, data = _decode(source, cid)
    if data is None or data.type != unixfs.NodeType.DIRECTORY:
        raise InvalidInputError(f"{cid} is not a directory")
    return [DirEntry(link.name or "", link.cid, link.tsize or 0) for link in node.links]


def read_file(source: BlockSource, cid: Cid) -> Iterator[bytes]:
    """Stream a UnixFS file's bytes, each piece from a verified block."""
    if cid.codec == RAW:
        yield source.get_block(cid)
        return
    block = source.get_block(cid)
    yield from _read_node(source, cid, block, 0)


def _read_node(source: BlockSource, cid: Cid, block: bytes, depth: int) -> Iterator[bytes]:
    if depth > MAX_DEPTH:
        raise CorruptError(f"DAG under {cid} is deeper than {MAX_DEPTH} levels")
    if cid.codec == RAW:
        yield block
        return
    if cid.codec != DAG_PB:
        raise InvalidInputError(f"{cid} is not a UnixFS node")
    node = _decode_block(cid, block)
    if node.data is None:
        raise CorruptError(f"block {cid} has no UnixFS data")
    data = unixfs.decode(node.data)
    if data.type == unixfs.NodeType.DIRECTORY or data.type == unixfs.NodeType.HAMT_SHARD:
        raise InvalidInputError(f"{cid} is a directory, not a file")
    if data.type == unixfs.NodeType.SYMLINK:
        raise InvalidInputError(f"{cid} is a symlink, not a file")
    if data.type not in (unixfs.NodeType.FILE, unixfs.NodeType.RAW):
        raise InvalidInputError(f"{cid} is not a file")
    if data.blocksizes and len(data.blocksizes) != len(node.links):
        raise CorruptError(
            f"block {cid} has {len(node.links)} links but {len(data.blocksizes)} block sizes"
        )
    emitted = 0
    if data.data:
        emitted += len(data.data)
        yield data.data
    children = [link.cid for link in node.links]
    for child, child_block in zip(children, source.get_blocks(children), strict=True):
        for piece in _read_node(source, child, child_block, depth + 1):
            emitted += len(piece)
            yield piece
    if data.filesize is not None and emitted != data.filesize:
        raise CorruptError(f"file {cid} claims {data.filesize} bytes but holds {emitted}")


def walk(source: BlockSource, root: Cid) -> Iterator[tuple[Cid, bytes]]:
    """Every block of a DAG once, depth-first in link order (the order CAR export uses)."""
    seen: set[bytes] = set()
    stack: list[tuple[Cid, int]] = [(root, 0)]
    while stack:
        cid, depth = stack.pop()
        if cid.binary in seen:
            continue
        seen.add(cid.binary)
        block = source.get_block(cid)
        yield cid, block
        if cid.codec == DAG_PB:
            if depth >= MAX_DEPTH:
                raise CorruptError(f"DAG under {root} is deeper than {MAX_DEPTH} levels")
            links = _decode_block(cid, block).links
            stack.extend((link.cid, depth + 1) for link in reversed(links))


def links_of(cid: Cid, block: bytes) -> tuple[Cid, ...]:
    if cid.codec != DAG_PB:
        return ()
    return tuple(link.cid for link in _decode_block(cid, block).links)
