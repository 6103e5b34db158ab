"""Addresses: parsed from any case, compared as bytes, written in EIP-55 mixed case."""

from __future__ import annotations

import random

import pytest
from eth_utils.address import to_checksum_address

from sedis.core.address import Address, is_address
from sedis.core.errors import InvalidInputError

# The test cases of EIP-55 itself: each is its own checksummed form, including
# the two whose checksum happens to be all upper case and the two all lower.
EIP55_VECTORS = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]
MIXED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@pytest.mark.parametrize("text", EIP55_VECTORS)
def test_eip55_vectors_are_written_as_the_eip_writes_them(text: str) -> None:
    address = Address.parse(text)
    assert str(address) == text == address.checksummed
    assert address.hex == text.lower()


@pytest.mark.parametrize("text", [MIXED.lower(), "0x" + MIXED[2:].upper(), MIXED])
def test_one_address_in_any_accepted_case(text: str) -> None:
    address = Address.parse(text)
    assert address == Address.parse(MIXED)
    assert hash(address) == hash(Address.parse(MIXED))
    assert str(address) == MIXED
    assert {address, Address.parse(MIXED.lower())} == {Address.parse(MIXED)}


def test_a_wrong_checksum_is_refused_as_a_likely_typo() -> None:
    typo = MIXED.replace("aA", "AA", 1)
    assert typo != MIXED and typo.lower() == MIXED.lower()
    with pytest.raises(InvalidInputError, match="wrong EIP-55 checksum") as refused:
        Address.parse(typo)
    assert typo in str(refused.value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x",
        MIXED[:-1],  # 39 digits
        MIXED + "0",  # 41 digits
        MIXED[2:],  # no 0x
        "0X" + MIXED[2:],
        "0x" + "g" * 40,
        " " + MIXED,
        MIXED + "\n",
    ],
)
def test_text_that_is_not_an_address_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="is not an address"):
        Address.parse(text)
    assert not is_address(text)


def test_a_long_value_is_not_repeated_in_the_message() -> None:
    with pytest.raises(InvalidInputError) as refused:
        Address.parse("0x" + "ab" * 500)
    assert "ab" * 40 not in str(refused.value)


def test_only_the_canonical_form_builds_an_address_directly() -> None:
    assert Address(MIXED.lower()).hex == MIXED.lower()
    with pytest.raises(InvalidInputError, match="not a canonical address"):
        Address(MIXED)


def test_str_is_eth_utils_checksum() -> None:
    rng = random.Random(55)
    for _ in range(50):
        raw = rng.randbytes(20)
        assert str(Address.from_bytes(raw)) == to_checksum_address(raw)


def test_from_bytes_and_raw() -> None:
    raw = bytes(range(20))
    address = Address.from_bytes(raw)
    assert address.raw == raw
    assert address.hex == "0x" + raw.hex()
    for wrong in (b"", bytes(19), bytes(21), bytes(32)):
        with pytest.raises(InvalidInputError, match=f"not {len(wrong)}"):
            Address.from_bytes(wrong)


def test_any_twenty_bytes_round_trip() -> None:
    """A property over random addresses: bytes, text in every form, and back."""
    rng = random.Random(20)
    samples = [bytes(20), b"\xff" * 20] + [rng.randbytes(20) for _ in range(500)]
    for raw in samples:
        address = Address.from_bytes(raw)
        text = str(address)
        assert Address.parse(text) == address
        assert Address.parse(text.lower()) == address
        assert Address.parse("0x" + text[2:].upper()) == address
        assert Address.parse(text).raw == raw
        assert is_address(text)


def test_addresses_sort_by_their_bytes() -> None:
    low, high = Address.from_bytes(bytes(20)), Address.from_bytes(b"\xff" * 20)
    assert sorted([high, low]) == [low, high]
