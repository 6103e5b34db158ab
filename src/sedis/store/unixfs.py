"""The UnixFS Data message carried in a dag-pb node's Data field."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from sedis.core.errors import InvalidInputError
from sedis.store import protobuf as pb
from sedis.store import varint


class NodeType(IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True, slots=True)
class Data:
    type: NodeType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default_factory=tuple)


def encode(msg: Data) -> bytes:
    out = pb.varint_field(1, int(msg.type))
    if msg.data is not None:
        out += pb.len_field(2, msg.data)
    if msg.filesize is not None:
        out += pb.varint_field(3, msg.filesize)
    for size in msg.blocksizes:
        out += pb.varint_field(4, size)
    return out


def decode(buf: bytes | memoryview) -> Data:
    node_type: NodeType | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for number, wire_type, value in pb.fields(buf):
        if number == 1 and wire_type == pb.VARINT:
            assert isinstance(value, int)
            try:
                node_type = NodeType(value)
            except ValueError as exc:
                raise InvalidInputError(f"unknown UnixFS node type {value}") from exc
        elif number == 2 and wire_type == pb.LEN:
            assert isinstance(value, memoryview)
            data = bytes(value)
        elif number == 3 and wire_type == pb.VARINT:
            assert isinstance(value, int)
            filesize = value
        elif number == 4 and wire_type == pb.VARINT:
            assert isinstance(value, int)
            blocksizes.append(value)
        elif number == 4 and wire_type == pb.LEN:  # the packed form some encoders write
            assert isinstance(value, memoryview)
            pos = 0
            while pos < len(value):
                size, pos = varint.decode(value, pos)
                blocksizes.append(size)
        # hashType, fanout, mode and mtime (5-8) carry nothing a reader here needs.
    if node_type is None:
        raise InvalidInputError("UnixFS data has no type")
    return Data(node_type, data, filesize, tuple(blocksizes))
