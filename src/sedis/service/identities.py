"""Use cases about the identities on this machine.

A password is asked for (``password()``) only once the name is known to be
free, so a taken name costs no typing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sedis.core.errors import ConflictError

if TYPE_CHECKING:
    from sedis.config import Settings
    from sedis.crypto.identities import Identity
    from sedis.service.ledger_admin import Password


def create_identity(
    settings: Settings, name: str, password: Password, *, rsa: bool = False
) -> Identity:
    """Make a new identity ``name``: an Ethereum account, an encryption key (EC P-256, or
    RSA 3072 with ``rsa``) and a Paillier key, sealed under the password."""
    from sedis.crypto.identities import IdentityStore

    store = IdentityStore(settings.home)
    if store.exists(name):
        raise ConflictError(f"an identity named '{name}' already exists")
    return store.create(name, password(), rsa=rsa)
