"""The address book: short aliases for the Ethereum addresses of other people.

It lives in ``SEDIS_HOME/contacts.json``. Changes are made under a file lock
and written atomically, so concurrent edits neither tear the file nor lose
each other's entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sedis.core.address import Address, is_address
from sedis.core.errors import (
    ConflictError,
    CorruptError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)
from sedis.crypto.names import check_name, checksum_address, is_valid_name, parse_address
from sedis.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from sedis.crypto.identities import IdentityStore

CONTACTS_FILE = "contacts.json"
FORMAT = "sedis-contacts/1"
_MAX_FILE_BYTES = 4 * 1024 * 1024


class AddressBook:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / CONTACTS_FILE

    def add(self, alias: str, address: str, *, replace: bool = False) -> str:
        """Record ``alias`` for ``address``; return the checksummed address."""
        check_name("contact", alias)
        checksummed = checksum_address(address)
        with self._locked():
            contacts = self._load()
            if alias in contacts and not replace and contacts[alias] != checksummed:
                raise ConflictError(
                    f"a contact named '{alias}' already exists ({contacts[alias]}); "
                    "use --replace to point it elsewhere"
                )
            contacts[alias] = checksummed
            self._save(contacts)
        return checksummed

    def remove(self, alias: str) -> str:
        """Forget ``alias``; return the address it named."""
        with self._locked():
            contacts = self._load()
            if alias not in contacts:
                raise NotFoundError(f"no contact named '{alias}'")
            address = contacts.pop(alias)
            self._save(contacts)
        return address

    def get(self, alias: str) -> str | None:
        return self._load().get(alias)

    def list(self) -> dict[str, str]:
        return dict(sorted(self._load().items()))

    def _load(self) -> dict[str, str]:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CorruptError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            if len(raw) > _MAX_FILE_BYTES:
                raise ValueError("larger than 4 MiB")
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            entries = doc["contacts"]
            if not isinstance(entries, dict):
                raise ValueError("'contacts' is not an object")
            contacts: dict[str, str] = {}
            for alias, address in entries.items():
                if not is_valid_name(alias) or not isinstance(address, str):
                    raise ValueError(f"bad entry {alias!r}")
                contacts[alias] = checksum_address(address)
            return contacts
        except (ValueError, KeyError, InvalidInputError) as exc:
            raise CorruptError(f"{self.path} is damaged: {exc}") from None

    def _save(self, contacts: dict[str, str]) -> None:
        doc = {"format": FORMAT, "contacts": dict(sorted(contacts.items()))}
        atomic_write_bytes(self.path, json.dumps(doc, indent=2).encode() + b"\n")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        self.home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path) + ".lock", timeout=30)
        try:
            lock.acquire()
        except Timeout:
            raise UnavailableError(f"{self.path} stayed locked by another sedis for 30 s") from None
        try:
            yield
        finally:
            lock.release()


class AddressBookDirectory:
    """The CLI's directory of recipients: local identities, then contacts, then addresses."""

    def __init__(self, identities: IdentityStore, contacts: AddressBook) -> None:
        self._identities = identities
        self._contacts = contacts

    def resolve(self, who: str) -> Address:
        return recipient_address(who, self._identities, self._contacts)


def recipient_address(who: str, identities: IdentityStore, contacts: AddressBook) -> Address:
    """The address that ``who`` names: an identity, then a contact, then 0x…."""
    if is_valid_name(who):
        # Only a missing identity falls through; a damaged one is an error worth seeing.
        try:
            return Address.parse(identities.get(who).address)
        except NotFoundError:
            pass
        address = contacts.get(who)
        if address is not None:
            return Address.parse(address)
    if is_address(who):
        return parse_address(who)
    raise NotFoundError(f"unknown recipient '{who}': not an identity, a contact or a 0x address")


def resolve_recipient(who: str, identities: IdentityStore, contacts: AddressBook) -> str:
    """The checksummed text of the address that ``who`` names (see ``recipient_address``)."""
    return str(recipient_address(who, identities, contacts))
