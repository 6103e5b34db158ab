"""verify refuses a signer that is not an address in one line, before it reads anything."""

from __future__ import annotations

from typing import Any


def test_a_signer_that_is_not_an_address_is_one_clear_refusal(sedis: Any) -> None:
    result = sedis("verify", "sha256:" + "a" * 64, "--signer", "0x1234")
    assert result.code == 2
    assert result.stderr == "sedis: '0x1234' is not an address (0x and 40 hex digits)\n"
    assert result.stdout == ""


def test_a_signer_with_a_wrong_checksum_is_refused(sedis: Any) -> None:
    typo = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"
    result = sedis("verify", "sha256:" + "a" * 64, "--signer", typo)
    assert result.code == 2
    assert result.stderr == f"sedis: {typo} has a wrong EIP-55 checksum: check for a typo\n"
