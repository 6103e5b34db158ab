"""The small subset of the protobuf wire format that dag-pb and UnixFS use.

Written here rather than generated: dag-pb's canonical form puts Links
(field 2) before Data (field 1), which generated protobuf encoders never do,
and its strict decoding rules (field order, no unknown fields) are not
something a generic decoder enforces.
"""

from __future__ import annotations

from collections.abc import Iterator

from sedis.core.errors import InvalidInputError
from sedis.store import varint

VARINT = 0
LEN = 2


def tag(field: int, wire_type: int) -> bytes:
    return varint.encode((field << 3) | wire_type)


def len_field(field: int, payload: bytes | memoryview) -> bytes:
    return tag(field, LEN) + varint.encode(len(payload)) + bytes(payload)


def varint_field(field: int, value: int) -> bytes:
    return tag(field, VARINT) + varint.encode(value)


def fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field number, wire type, value) for each field in ``buf``.

    A varint field's value is an int, a length-delimited one a memoryview.
    Other wire types are refused: neither format uses them.
    """
    view = memoryview(buf)
    pos = 0
    while pos < len(view):
        key, pos = varint.decode(view, pos)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise InvalidInputError("protobuf field number 0")
        if wire_type == VARINT:
            value, pos = varint.decode(view, pos)
            yield field, wire_type, value
        elif wire_type == LEN:
            length, pos = varint.decode(view, pos)
            if pos + length > len(view):
                raise InvalidInputError("truncated protobuf field")
            yield field, wire_type, view[pos : pos + length]
            pos += length
        else:
            raise InvalidInputError(f"unsupported protobuf wire type {wire_type}")
