"""Engines and an actor for an identity on disk, as a host builds them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sedis.config import load
from sedis.crypto.contacts import AddressBook, AddressBookDirectory
from sedis.crypto.identities import IdentityStore
from sedis.service.engines import Actor, Engines

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.core.address import Address
    from sedis.core.policy import TrustPolicy
    from sedis.ledger.base import LedgerReader, LedgerWriter
    from sedis.store.base import ContentStore


@contextmanager
def acting(name: str, password: str) -> Iterator[tuple[Engines, Actor]]:
    """The settings' engines, and ``name`` unlocked with ``password`` to act on them."""
    settings = load()
    with Engines.from_settings(settings) as engines:
        directory = AddressBookDirectory(IdentityStore(settings.home), AddressBook(settings.home))
        yield engines, Actor.unlock(engines, name, password, directory)


class Owner:
    """An image owner's engines and actor under the names a test reaches for."""

    def __init__(self, name: str, password: str) -> None:
        self._acting = acting(name, password)
        self.engines, self.actor = self._acting.__enter__()

    @property
    def reader(self) -> LedgerReader:
        return self.engines.ledger

    @property
    def ledger(self) -> LedgerWriter:
        return self.actor.ledger

    @property
    def store(self) -> ContentStore:
        return self.engines.store

    @property
    def address(self) -> Address:
        return self.actor.address

    @property
    def encryption_key(self) -> JWK:
        return self.actor.keys.private_key()

    @property
    def public_key(self) -> JWK:
        return self.actor.keys.public_key

    def close(self) -> None:
        self._acting.__exit__(None, None, None)


@contextmanager
def writing_as(name: str, password: str) -> Iterator[LedgerWriter]:
    """A ledger writer signing as the identity ``name`` (the settings' ledger)."""
    from sedis.ledger import open_ledger

    settings = load()
    reader = open_ledger(settings)
    try:
        yield reader.writer(IdentityStore(settings.home).unlock_signer(name, password))
    finally:
        reader.close()


def settings_policy() -> TrustPolicy:
    """The trust policy the settings give, as a command with no --policy would use it."""
    from sedis.service.trust import load_policy

    settings = load()
    directory = AddressBookDirectory(IdentityStore(settings.home), AddressBook(settings.home))
    return load_policy(settings, directory)
