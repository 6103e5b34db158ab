"""Unsigned LEB128 varints, as multiformats, protobuf and CAR use them."""

from __future__ import annotations

from typing import BinaryIO

from sedis.core.errors import InvalidInputError

# Nine bytes carry 63 bits: every length or code point that the formats
# read here fits, and a longer run is garbage, not a bigger number.
MAX_VARINT_BYTES = 9


def encode(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode the varint at ``pos``; return the value and the position after it."""
    value = 0
    shift = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise InvalidInputError("truncated varint")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise InvalidInputError("varint is not minimally encoded")
            return value, pos + i + 1
        shift += 7
    raise InvalidInputError("varint is longer than 9 bytes")


def read(stream: BinaryIO) -> int | None:
    """Read one varint from a stream; None at a clean end of stream."""
    value = 0
    shift = 0
    for i in range(MAX_VARINT_BYTES):
        byte_s = stream.read(1)
        if not byte_s:
            if i == 0:
                return None
            raise InvalidInputError("truncated varint")
        byte = byte_s[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise InvalidInputError("varint is not minimally encoded")
            return value
        shift += 7
    raise InvalidInputError("varint is longer than 9 bytes")
