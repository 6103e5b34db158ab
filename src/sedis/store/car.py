"""CAR (content-addressed archive) files: write v1, read v1 and v2.

Reading is streaming and bounded: the header, every section, every block
(the store's MAX_BLOCK_SIZE) and the number of roots have hard limits, and
each block is checked against its CID as it is read. The caller decides what
becomes visible, and when.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from sedis.core.errors import CorruptError, InvalidInputError
from sedis.store import varint
from sedis.store.cid import MAX_BLOCK_SIZE, Cid

MAX_HEADER_SIZE = 64 * 1024
MAX_ROOTS = 1024
_MAX_SECTION = MAX_BLOCK_SIZE + 128  # a block plus its CID
_V2_PRAGMA = bytes.fromhex("0aa16776657273696f6e02")
_V2_HEADER = struct.Struct("<16sQQQ")


def _header_bytes(roots: list[Cid]) -> bytes:
    import dag_cbor
    from multiformats import CID

    header: dict[str, Any] = {"roots": [CID.decode(cid.binary) for cid in roots], "version": 1}
    encoded: bytes = dag_cbor.encode(header)
    return encoded


def write(out: BinaryIO, roots: list[Cid], blocks: Iterable[tuple[Cid, bytes]]) -> int:
    """Write a CARv1; return the number of blocks written."""
    header = _header_bytes(roots)
    out.write(varint.encode(len(header)) + header)
    count = 0
    for cid, data in blocks:
        binary = cid.binary
        out.write(varint.encode(len(binary) + len(data)))
        out.write(binary)
        out.write(data)
        count += 1
    return count


class CarReader:
    """Iterate a CAR's verified blocks after reading its roots."""

    def __init__(self, stream: BinaryIO, name: str = "CAR") -> None:
        self._name = name
        self._stream = stream
        self._remaining: int | None = None  # payload bytes left, for CARv2
        self.roots = self._read_header()

    def _fail(self, message: str) -> InvalidInputError:
        return InvalidInputError(f"{self._name}: {message}")

    def _read_exact(self, size: int) -> bytes:
        data = self._stream.read(size)
        if len(data) != size:
            raise self._fail("truncated")
        if self._remaining is not None:
            self._remaining -= size
        return data

    def _read_varint(self) -> int | None:
        if self._remaining == 0:
            return None
        try:
            value = varint.read(self._stream)
        except InvalidInputError as exc:
            raise self._fail(str(exc)) from exc
        if value is not None and self._remaining is not None:
            self._remaining -= len(varint.encode(value))
        return value

    def _read_header(self) -> list[Cid]:
        length = self._read_varint()
        if length is None:
            raise self._fail("empty file")
        if length == 0 or length > MAX_HEADER_SIZE:
            raise self._fail(f"header length {length} is out of bounds")
        raw = self._read_exact(length)
        if len(varint.encode(length)) + length == len(_V2_PRAGMA) and (
            varint.encode(length) + raw == _V2_PRAGMA
        ):
            return self._enter_v2()
        header = self._decode_header(raw)
        version = header.get("version")
        if version != 1:
            raise self._fail(f"unsupported CAR version {version!r}")
        return self._roots(header)

    def _enter_v2(self) -> list[Cid]:
        _, data_offset, data_size, _ = _V2_HEADER.unpack(self._read_exact(_V2_HEADER.size))
        consumed = len(_V2_PRAGMA) + _V2_HEADER.size
        if data_offset < consumed:
            raise self._fail("CARv2 data offset points into its header")
        skip = data_offset - consumed
        while skip:
            step = min(skip, 1 << 20)
            self._read_exact(step)
            skip -= step
        self._remaining = data_size
        length = self._read_varint()
        if length is None or length == 0 or length > MAX_HEADER_SIZE:
            raise self._fail("CARv2 payload has no valid CARv1 header")
        header = self._decode_header(self._read_exact(length))
        if header.get("version") != 1:
            raise self._fail("CARv2 payload is not a CARv1")
        return self._roots(header)

    def _decode_header(self, raw: bytes) -> dict[str, object]:
        import dag_cbor

        try:
            header: object = dag_cbor.decode(raw)
        except Exception as exc:
            raise self._fail("header is not valid DAG-CBOR") from exc
        if not isinstance(header, dict):
            raise self._fail("header is not a map")
        return header

    def _roots(self, header: dict[str, object]) -> list[Cid]:
        roots = header.get("roots")
        if not isinstance(roots, list) or not roots or len(roots) > MAX_ROOTS:
            raise self._fail("header must list between 1 and 1024 roots")
        try:
            return [Cid.from_binary(bytes(root)) for root in roots]
        except (InvalidInputError, TypeError) as exc:
            raise self._fail(f"bad root CID: {exc}") from exc

    def blocks(self) -> Iterator[tuple[Cid, bytes]]:
        while True:
            length = self._read_varint()
            if length is None:
                return
            if length == 0 or length > _MAX_SECTION:
                raise self._fail(f"section length {length} is out of bounds")
            section = self._read_exact(length)
            try:
                cid, pos = Cid.read_binary(section, 0)
            except InvalidInputError as exc:
                raise self._fail(f"bad block CID: {exc}") from exc
            data = section[pos:]
            if len(data) > MAX_BLOCK_SIZE:
                # The section bound leaves room for a CID; the block itself gets the
                # store's own limit, or it would be pinned and then never served.
                raise self._fail(
                    f"block {cid} is {len(data)} bytes, over the {MAX_BLOCK_SIZE}-byte block limit"
                )
            if not cid.matches(data):
                raise CorruptError(f"{self._name}: block {cid} does not match its CID")
            yield cid, data
