"""Signers: whatever signs ledger transactions for one account.

The ledger asks only for the account's address and a signed transaction;
where the key lives (a keystore unlocked with a password, a hardware token,
a remote signer) is the implementation's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from sedis.core.address import Address

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


class Signer(Protocol):
    @property
    def address(self) -> Address:
        """The account this signer signs as."""
        ...

    def sign_transaction(self, transaction: Mapping[str, Any]) -> bytes:
        """The raw signed transaction (an EIP-2718 envelope) for these fields."""
        ...


class AccountSigner:
    """A signer over a private key held in memory (an unlocked keystore)."""

    def __init__(self, account: LocalAccount) -> None:
        self._account = account
        self._address = Address.parse(account.address)

    @classmethod
    def from_key(cls, private_key: bytes) -> AccountSigner:
        from eth_account import Account

        return cls(Account.from_key(private_key))

    @property
    def address(self) -> Address:
        return self._address

    def sign_transaction(self, transaction: Mapping[str, Any]) -> bytes:
        return bytes(self._account.sign_transaction(dict(transaction)).raw_transaction)

    def __repr__(self) -> str:  # never the key
        return f"AccountSigner({self._address})"
