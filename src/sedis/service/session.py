"""Who is acting, and the engines they act on, opened lazily.

A command that only reads the ledger never unlocks a key; one that signs or
decrypts asks for the identity's password once, however many keys it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from sedis.core.errors import NotFoundError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from jwcrypto.jwk import JWK

    from sedis.config import Settings
    from sedis.crypto.identities import Identity, IdentityStore
    from sedis.ledger.base import Ledger
    from sedis.store.base import ContentStore


class Session:
    def __init__(
        self, settings: Settings, identity: str | None, password: Callable[[], str]
    ) -> None:
        self.settings = settings
        self._identity_name = identity
        self._password_source = password

    @cached_property
    def identities(self) -> IdentityStore:
        from sedis.crypto.identities import IdentityStore

        return IdentityStore(self.settings.home)

    @cached_property
    def identity(self) -> Identity:
        from sedis.crypto.identities import acting_identity

        return self.identities.get(acting_identity(self.settings, self._identity_name))

    @property
    def address(self) -> str:
        return self.identity.address

    @cached_property
    def _password(self) -> str:
        return self._password_source()

    @cached_property
    def account(self) -> LocalAccount:
        return self.identities.unlock_account(self.identity.name, self._password)

    @cached_property
    def encryption_key(self) -> JWK:
        return self.identities.unlock_encryption_key(self.identity.name, self._password)

    def unlock(self, *, sign: bool = True, decrypt: bool = True) -> None:
        """Unlock the keys a command will need now, loading the engines' code meanwhile.

        Key derivation (scrypt) runs in C without the GIL, so the half second
        of imports that signing and the EVM need (eth-account, py-evm) is done
        on another thread meanwhile. The sealed key goes first: it needs none
        of those imports, which gives the loader a head start on eth-account.
        """
        from sedis import ledger, store
        from sedis.crypto import keywrap

        def load_code() -> None:
            ledger.load_code(self.settings, sign=sign)
            if decrypt:  # the commands that decrypt (un)wrap keys and read the store
                store.load_code(self.settings)
                keywrap.load_code()

        loader = threading.Thread(target=load_code, daemon=True)
        loader.start()
        try:
            if decrypt:
                self.encryption_key  # noqa: B018 - unlocking is the point
            if sign:
                self.account  # noqa: B018
        finally:
            loader.join()

    @cached_property
    def public_key(self) -> JWK:
        from jwcrypto.jwk import JWK

        return JWK(**self.identity.encryption_jwk)

    @cached_property
    def store(self) -> ContentStore:
        from sedis.store import open_store

        return open_store(self.settings)

    @cached_property
    def reader(self) -> Ledger:
        """The ledger for reads only: no password needed.

        Once the account is unlocked, the signing ledger serves reads too
        (views do not depend on their caller), so the ledger opens once.
        """
        if "account" in self.__dict__:
            return self.ledger
        from sedis.ledger import open_ledger

        return open_ledger(self.settings)

    @cached_property
    def ledger(self) -> Ledger:
        """The ledger with the acting identity's account signing writes."""
        from sedis.ledger import open_ledger

        return open_ledger(self.settings, self.account)

    def resolve_recipient(self, who: str) -> str:
        from sedis.crypto.contacts import AddressBook, resolve_recipient

        return resolve_recipient(who, self.identities, AddressBook(self.settings.home))

    def recipient_key(self, address: str) -> JWK:
        """A recipient's public encryption key, from the ledger's key directory."""
        from sedis.service.sealing import encode_recipient_key

        if address.lower() == self.address.lower():
            return self.public_key
        entry = self.reader.keys_of(address)
        if entry is None:
            raise NotFoundError(
                f"{address} has no keys in the key directory "
                "(the recipient must run `sedis identity register`)"
            )
        return encode_recipient_key(entry.encryption_key)

    def close(self) -> None:
        closed: list[object] = []
        for name in ("store", "reader", "ledger"):
            engine = self.__dict__.pop(name, None)
            if engine is not None and not any(engine is done for done in closed):
                engine.close()
                closed.append(engine)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
