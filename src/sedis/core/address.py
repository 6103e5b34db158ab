"""Ethereum account addresses: one value type, compared without regard to case.

An address is written in EIP-55 mixed case for people and compared as its
twenty bytes. Text in one case (all lower or all upper) is taken as it is;
mixed-case text must carry a correct EIP-55 checksum, since a typo in it
would otherwise name an account nobody holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sedis.core.errors import InvalidInputError

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """An account, held as ``0x`` and forty lower-case hex digits."""

    hex: str

    def __post_init__(self) -> None:
        if _HEX_ADDRESS.fullmatch(self.hex) is None or self.hex != self.hex.lower():
            raise InvalidInputError(f"not a canonical address: {self.hex!r}")

    @classmethod
    def parse(cls, text: str) -> Address:
        """The address ``text`` writes; InvalidInputError unless it is one."""
        if not isinstance(text, str) or _HEX_ADDRESS.fullmatch(text) is None:
            shown = text if isinstance(text, str) and len(text) <= 64 else "that value"
            raise InvalidInputError(f"{shown!r} is not an address (0x and 40 hex digits)")
        lower = text.lower()
        body = text[2:]
        if body != body.lower() and body != body.upper() and _checksummed(lower) != text:
            raise InvalidInputError(f"{text} has a wrong EIP-55 checksum: check for a typo")
        return cls(lower)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Address:
        if len(raw) != 20:
            raise InvalidInputError(f"an address is 20 bytes, not {len(raw)}")
        return cls("0x" + raw.hex())

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.hex[2:])

    @property
    def checksummed(self) -> str:
        return _checksummed(self.hex)

    def __str__(self) -> str:
        return _checksummed(self.hex)


def is_address(text: str) -> bool:
    """Whether ``text`` has the form of an address (its checksum is not checked)."""
    return _HEX_ADDRESS.fullmatch(text) is not None


@lru_cache(maxsize=4096)
def _checksummed(lower: str) -> str:
    # pycryptodome's Keccak-256: small to import, unlike eth_utils.
    from Crypto.Hash import keccak

    body = lower[2:]
    digest = keccak.new(data=body.encode("ascii"), digest_bits=256).hexdigest()
    return "0x" + "".join(
        char.upper() if int(nibble, 16) >= 8 else char
        for char, nibble in zip(body, digest[: len(body)], strict=True)
    )
