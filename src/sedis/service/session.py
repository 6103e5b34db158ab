"""Who is acting, and the engines they act on, opened lazily.

A command that only reads the ledger never unlocks a key; one that signs or
decrypts asks for the identity's password once, however many keys it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from sedis.core.errors import NotFoundError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from jwcrypto.jwk import JWK

    from sedis.config import Settings
    from sedis.crypto.identities import Identity, IdentityStore
    from sedis.ledger.base import Ledger
    from sedis.store.base import ContentStore


T = TypeVar("T")


def _nothing() -> None:
    return None


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
        """Unlock the keys a command will need now (see unlock_while)."""
        self.unlock_while(_nothing, sign=sign, decrypt=decrypt)

    def unlock_while(self, work: Callable[[], T], *, sign: bool = True, decrypt: bool = True) -> T:
        """Unlock the keys a command will need, doing ``work`` meanwhile; returns its result.

        Key derivation (scrypt) runs in C without the GIL, so the half second
        of imports that signing and the EVM need (eth-account, py-evm) is done
        on another thread meanwhile, and the embedded engines are opened there
        too. The sealed key goes first: it needs none of those imports, which
        gives the loader a head start on eth-account.

        ``work`` is what the command can do before it has a key (ledger reads,
        say): it runs on that thread once the code is loaded, so its time hides
        behind scrypt's. What it raises is raised here, after the unlocking;
        a failed unlock wins.
        """
        from sedis import ledger, store

        self.identity  # noqa: B018 - both threads read it: load it before they start
        outcome: list[T] = []
        failure: list[Exception] = []

        def prepare() -> None:
            try:
                ledger.load_code(self.settings, sign=sign)
                if decrypt:  # the commands that decrypt (un)wrap keys and use the store
                    from sedis.service import sealing

                    store.load_code(self.settings)
                    sealing.load_code()
                self._open_local_engines(with_store=decrypt)
                outcome.append(work())
            except Exception as exc:  # handed to the caller's thread
                failure.append(exc)

        loader = threading.Thread(target=prepare, daemon=True)
        loader.start()
        try:
            if decrypt:
                self.encryption_key  # noqa: B018 - unlocking is the point
            if sign:
                self.account  # noqa: B018
        finally:
            loader.join()
        if failure:
            raise failure[0]
        return outcome[0]

    def _open_local_engines(self, *, with_store: bool) -> None:
        """Open the embedded ledger (and store) ahead of use.

        Only local engines: a failure here is left for the first use to raise
        again, which costs a remote engine its timeout twice but a local one nothing.
        """
        if self.settings.ledger_url == "embedded":
            with suppress(Exception):
                self.reader  # noqa: B018 - opening is the point
        if with_store and self.settings.store_url == "embedded":
            with suppress(Exception):
                self.store  # noqa: B018

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
        """The ledger, for reads: no password needed."""
        from sedis.ledger import open_ledger

        return open_ledger(self.settings)

    @cached_property
    def ledger(self) -> Ledger:
        """The same ledger, with the acting identity's account signing writes."""
        ledger = self.reader
        ledger.sign_with(self.account)
        return ledger

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
        self.__dict__.pop("ledger", None)  # the reader, signing
        for name in ("store", "reader"):
            engine = self.__dict__.pop(name, None)
            if engine is not None:
                engine.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
