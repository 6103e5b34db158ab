"""The dag-pb codec (PBNode and PBLink), encoded canonically and decoded strictly."""

from __future__ import annotations

from dataclasses import dataclass

from sedis.core.errors import InvalidInputError
from sedis.store import protobuf as pb
from sedis.store import varint
from sedis.store.cid import Cid

# A node of more links than this is not something any importer writes; a
# crafted one would only make the reader do needless work.
MAX_LINKS = 65536


@dataclass(frozen=True, slots=True)
class Link:
    cid: Cid
    name: str | None
    tsize: int | None


@dataclass(frozen=True, slots=True)
class Node:
    links: tuple[Link, ...]
    data: bytes | None


def encode(node: Node) -> bytes:
    parts: list[bytes] = []
    for link in node.links:
        body = pb.len_field(1, link.cid.binary)
        if link.name is not None:
            body += pb.len_field(2, link.name.encode())
        if link.tsize is not None:
            body += pb.varint_field(3, link.tsize)
        parts.append(pb.tag(2, pb.LEN) + varint.encode(len(body)) + body)
    if node.data is not None:
        parts.append(pb.len_field(1, node.data))
    return b"".join(parts)


def decode(block: bytes | memoryview) -> Node:
    links: list[Link] = []
    data: bytes | None = None
    for field, wire_type, value in pb.fields(block):
        if field == 2 and wire_type == pb.LEN and data is None:
            assert isinstance(value, memoryview)
            if len(links) >= MAX_LINKS:
                raise InvalidInputError(f"dag-pb node has more than {MAX_LINKS} links")
            links.append(_decode_link(value))
        elif field == 1 and wire_type == pb.LEN and data is None:
            assert isinstance(value, memoryview)
            data = bytes(value)
        else:
            raise InvalidInputError("malformed dag-pb node: unexpected field or order")
    return Node(tuple(links), data)


def _decode_link(buf: memoryview) -> Link:
    cid: Cid | None = None
    name: str | None = None
    tsize: int | None = None
    last = 0
    for field, wire_type, value in pb.fields(buf):
        if field <= last:
            raise InvalidInputError("malformed dag-pb link: fields out of order")
        last = field
        if field == 1 and wire_type == pb.LEN:
            assert isinstance(value, memoryview)
            cid = Cid.from_binary(value)
        elif field == 2 and wire_type == pb.LEN:
            assert isinstance(value, memoryview)
            try:
                name = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInputError("dag-pb link name is not UTF-8") from exc
        elif field == 3 and wire_type == pb.VARINT:
            assert isinstance(value, int)
            tsize = value
        else:
            raise InvalidInputError("malformed dag-pb link: unexpected field")
    if cid is None:
        raise InvalidInputError("dag-pb link has no hash")
    return Link(cid, name, tsize)
