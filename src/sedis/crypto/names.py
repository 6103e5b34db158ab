"""Names that become paths, and Ethereum addresses that people type."""

from __future__ import annotations

import re

from sedis.core.address import Address, is_address
from sedis.core.errors import InvalidInputError

# Lowercase only, so that two names never collide on a case-insensitive file
# system; a leading letter or digit keeps '.', '..' and hidden files out.
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def is_valid_name(text: str) -> bool:
    return _NAME.fullmatch(text) is not None and not is_address(text)


def check_name(kind: str, text: str) -> str:
    """Return ``text`` if it can name an identity or a contact; refuse it otherwise."""
    if is_address(text):
        # A name that reads as an address would shadow that address for recipients.
        raise InvalidInputError(f"{kind} name {text!r} must not look like a 0x address")
    if _NAME.fullmatch(text) is None:
        raise InvalidInputError(
            f"invalid {kind} name {text!r}: use 1-63 characters of a-z, 0-9, '.', '_' and '-',"
            " starting with a letter or digit"
        )
    return text


def parse_address(text: str) -> Address:
    """The address ``text`` writes, by ``Address.parse``'s rule, with refusals that say
    which mistake a person made."""
    if not is_address(text):
        raise InvalidInputError(f"{text!r} is not an Ethereum address (0x and 40 hex digits)")
    try:
        return Address.parse(text)
    except InvalidInputError:
        # The form is right, so the checksum is what Address.parse refused.
        raise InvalidInputError(f"address {text} has a wrong EIP-55 checksum (a typo?)") from None


def checksum_address(text: str) -> str:
    """The EIP-55 form of an address; a mixed-case address must already carry a valid checksum."""
    return str(parse_address(text))
