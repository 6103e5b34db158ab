"""Small CAR files built for tests."""

from __future__ import annotations

import io

from sedis.store import car
from sedis.store.cid import RAW, Cid


def one_block_car(size: int, version: int = 1) -> tuple[bytes, Cid, bytes]:
    """(CAR bytes, CID, block) for a CAR whose root is one raw block of ``size`` bytes."""
    block = bytes(range(251)) * (size // 251) + bytes(size % 251)
    cid = Cid.for_block(block, RAW)
    out = io.BytesIO()
    car.write(out, [cid], [(cid, block)])
    data = out.getvalue()
    if version == 2:
        data = as_carv2(data)
    return data, cid, block


def as_carv2(v1: bytes) -> bytes:
    """The same payload behind a CARv2 pragma and header (no index)."""
    pragma = bytes.fromhex("0aa16776657273696f6e02")
    header_size = 40
    offset = len(pragma) + header_size
    header = bytes(16) + offset.to_bytes(8, "little") + len(v1).to_bytes(8, "little")
    return pragma + header + bytes(8) + v1
