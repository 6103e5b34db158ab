"""Content identifiers.

A Cid here is a small value type over the binary form. Building one costs a
few hundred nanoseconds, where a full multiformats CID costs ~100 us: that
matters at one CID per 256 KiB block. Text forms in and out go through the
multiformats library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from sedis.core.errors import InvalidInputError
from sedis.store import varint

# The largest block any store here accepts or serves (kubo's own limit for a block).
MAX_BLOCK_SIZE = 2 * 1024 * 1024
RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_DIGEST_LEN = 32
_CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb"}


@dataclass(frozen=True, slots=True)
class Cid:
    version: int
    codec: int
    digest: bytes  # the sha2-256 digest of the block

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise InvalidInputError(f"unsupported CID version {self.version}")
        if self.version == 0 and self.codec != DAG_PB:
            raise InvalidInputError("a CIDv0 can only name a dag-pb block")
        if self.codec not in _CODEC_NAMES:
            raise InvalidInputError(f"unsupported CID codec 0x{self.codec:x}")
        if len(self.digest) != _DIGEST_LEN:
            raise InvalidInputError("a sha2-256 digest must be 32 bytes")

    @classmethod
    def for_block(cls, data: bytes | memoryview, codec: int, version: int = 1) -> Cid:
        return cls(version, codec, hashlib.sha256(data).digest())

    @property
    def multihash(self) -> bytes:
        return bytes((SHA2_256, _DIGEST_LEN)) + self.digest

    @property
    def binary(self) -> bytes:
        if self.version == 0:
            return self.multihash
        return b"\x01" + varint.encode(self.codec) + self.multihash

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES[self.codec]

    @property
    def key(self) -> str:
        """The block's storage key: the hex digest, shared by every CID of the same bytes."""
        return self.digest.hex()

    def matches(self, data: bytes | memoryview) -> bool:
        return hashlib.sha256(data).digest() == self.digest

    def to_v1(self) -> Cid:
        return Cid(1, self.codec, self.digest)

    def __str__(self) -> str:
        return _text(self)

    def __repr__(self) -> str:
        return f"Cid({self})"

    @classmethod
    def from_binary(cls, data: bytes | memoryview) -> Cid:
        cid, end = cls.read_binary(data, 0)
        if end != len(data):
            raise InvalidInputError("trailing bytes after CID")
        return cid

    @classmethod
    def read_binary(cls, data: bytes | memoryview, pos: int) -> tuple[Cid, int]:
        """Parse the binary CID at ``pos``; return it and the position after it."""
        if len(data) - pos >= 2 and data[pos] == SHA2_256 and data[pos + 1] == _DIGEST_LEN:
            end = pos + 2 + _DIGEST_LEN
            if end > len(data):
                raise InvalidInputError("truncated CID")
            return cls(0, DAG_PB, bytes(data[pos + 2 : end])), end
        version, pos = varint.decode(data, pos)
        if version != 1:
            raise InvalidInputError(f"unsupported CID version {version}")
        codec, pos = varint.decode(data, pos)
        hash_code, pos = varint.decode(data, pos)
        length, pos = varint.decode(data, pos)
        if hash_code != SHA2_256:
            raise InvalidInputError(f"unsupported multihash function 0x{hash_code:x}")
        if length != _DIGEST_LEN or pos + length > len(data):
            raise InvalidInputError("malformed sha2-256 multihash in CID")
        return cls(1, codec, bytes(data[pos : pos + length])), pos + length

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse a CID in any multibase text form (CIDv0 base58btc included)."""
        text = text.strip()
        if not text or len(text) > 200:
            raise InvalidInputError(f"not a CID: {text[:60]!r}")
        if text[0] == "b" and text[1:].islower():
            # base32 (what sedis writes): the standard library decodes it without
            # loading multiformats' tables, which costs a process ~50 ms.
            try:
                padded = text[1:].upper() + "=" * (-(len(text) - 1) % 8)
                binary = base64.b32decode(padded)
                if binary[:1] == b"\x01":  # only CIDv1 has a multibase form
                    return cls.from_binary(binary)
            except (binascii.Error, InvalidInputError, ValueError):
                pass  # multiformats gives the proper error below
        from multiformats import CID as _MfCid

        try:
            parsed = _MfCid.decode(text)
        except Exception as exc:
            raise InvalidInputError(f"not a CID: {text!r}") from exc
        return cls.from_binary(bytes(parsed))


def _text(cid: Cid) -> str:
    if cid.version == 1:  # multibase base32: "b", lower case, no padding
        return "b" + base64.b32encode(cid.binary).decode().lower().rstrip("=")
    from multiformats import CID as _MfCid

    return str(_MfCid("base58btc", 0, "dag-pb", cid.multihash))
