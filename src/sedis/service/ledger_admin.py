"""Use cases about the ledger itself: where it is, deploying its contract, registering keys.

They take the settings rather than the engines: a JSON-RPC node with no
ImageLedger yet is still one to describe and deploy to, where the engines'
reader needs the contract. A password is asked for (``password()``) only once
it is known to be needed and the identity to exist.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sedis.core.address import Address
from sedis.core.errors import ConfigError

if TYPE_CHECKING:
    from sedis.config import Settings
    from sedis.crypto.signer import Signer

Password = Callable[[], str]


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    """The ledger that the settings name, and the acting identity's standing on it."""

    url: str
    chain_id: int
    contract: Address | None
    block_number: int
    identity: str | None = None
    address: Address | None = None
    balance_wei: int | None = None


@dataclass(frozen=True, slots=True)
class Deployment:
    """The contract the ledger uses now; ``deployed`` when this call sent it."""

    contract: Address
    chain_id: int
    deployed: bool
    transaction: str | None = None
    block_number: int | None = None
    gas_used: int | None = None
    configured: Address | None = None  # ledger.contract, which wins over the deployment


@dataclass(frozen=True, slots=True)
class KeyRegistration:
    """An identity's public keys, now in the ledger's key directory."""

    name: str
    address: Address
    transaction: str
    block_number: int
    gas_used: int


def ledger_status(settings: Settings, as_name: str | None = None) -> LedgerStatus:
    """The node (or embedded chain), chain, contract and height, with the acting identity's
    balance when there is one (``as_name``, SEDIS_IDENTITY or the only one)."""
    from sedis.ledger import open_ledger

    who = _optional_identity(settings, as_name)
    with closing(open_ledger(settings, need_contract=False)) as reader:
        facts = reader.info()
        balance = reader.balance(who[1]) if who else None
    return LedgerStatus(
        url=facts.url,
        chain_id=facts.chain_id,
        contract=_optional_address(facts.contract),
        block_number=facts.block_number,
        identity=who[0] if who else None,
        address=who[1] if who else None,
        balance_wei=balance,
    )


def deploy(settings: Settings, as_name: str | None, password: Password) -> Deployment:
    """Deploy the ImageLedger contract signed by the acting identity, and remember it for the
    chain. The embedded chain has deployed its own on first use: nothing is signed then."""
    from sedis.ledger import deploy_contract

    signer = None if settings.ledger_url == "embedded" else _unlock(settings, as_name, password)
    facts, receipt = deploy_contract(settings, signer)
    if facts.contract is None:
        raise ConfigError(f"the ledger at {facts.url} has no contract after deploying one")
    configured = _optional_address(settings.ledger_contract)
    return Deployment(
        contract=Address.parse(facts.contract),
        chain_id=facts.chain_id,
        deployed=receipt is not None,
        transaction=receipt.tx_hash if receipt else None,
        block_number=receipt.block_number if receipt else None,
        gas_used=receipt.gas_used if receipt else None,
        configured=configured,
    )


def register_keys(settings: Settings, name: str, password: Password) -> KeyRegistration:
    """Publish an identity's public keys in the key directory, so others can share by
    address."""
    from sedis.crypto.identities import IdentityStore
    from sedis.crypto.signer import AccountSigner

    store = IdentityStore(settings.home)
    identity = store.get(name)  # an unknown name fails before the password is asked
    signer = AccountSigner(store.unlock_account(name, password()))
    # The ledger stack (web3, py-evm) is heavy; load it only once the password is known good.
    from sedis.ledger import open_ledger

    with closing(open_ledger(settings)) as reader:
        receipt = reader.writer(signer).register_keys(
            encryption_key=identity.encryption_key_bytes(),
            paillier_n=identity.paillier_n_bytes(),
        )
    return KeyRegistration(
        identity.name, signer.address, receipt.tx_hash, receipt.block_number, receipt.gas_used
    )


def _optional_identity(settings: Settings, as_name: str | None) -> tuple[str, Address] | None:
    """The acting identity's name and address; None when none is chosen and there is not
    exactly one."""
    from sedis.crypto.identities import IdentityStore, acting_identity

    try:
        name = acting_identity(settings, as_name)
    except ConfigError:
        if as_name or settings.identity:
            raise
        return None
    return name, Address.parse(IdentityStore(settings.home).get(name).address)


def _unlock(settings: Settings, as_name: str | None, password: Password) -> Signer:
    from sedis.crypto.identities import IdentityStore, acting_identity
    from sedis.crypto.signer import AccountSigner

    name = acting_identity(settings, as_name)
    return AccountSigner(IdentityStore(settings.home).unlock_account(name, password()))


def _optional_address(text: str | None) -> Address | None:
    return None if text is None else Address.parse(text)
