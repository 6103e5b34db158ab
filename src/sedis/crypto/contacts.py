"""The address book: short aliases for the Ethereum addresses of other people.

It lives in ``SEDIS_HOME/contacts.json``. A contact added as trusted
(``sedis contacts add NAME 0x… --trust``) is one whose records the default
trust policy counts, beside the local identities'. Changes are made under a file lock
and written atomically, so concurrent edits neither tear the file nor lose
each other's entries.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Contact:
    alias: str
    address: str  # checksummed
    trusted: bool = False  # its records count under the default trust policy


class AddressBook:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / CONTACTS_FILE

    def add(self, alias: str, address: str, *, replace: bool = False, trusted: bool = False) -> str:
        """Record ``alias`` for ``address``, trusted when asked; return the checksummed
        address. Adding an alias again for its own address keeps it, and trusts it if
        asked; pointing it elsewhere (``replace``) starts its trust afresh."""
        check_name("contact", alias)
        checksummed = checksum_address(address)
        with self._locked():
            contacts = self._load()
            existing = contacts.get(alias)
            if existing is not None and existing.address != checksummed and not replace:
                raise ConflictError(
                    f"a contact named '{alias}' already exists ({existing.address}); "
                    "use --replace to point it elsewhere"
                )
            keep_trust = existing is not None and existing.address == checksummed
            trust = trusted or (keep_trust and existing is not None and existing.trusted)
            contacts[alias] = Contact(alias, checksummed, trust)
            self._save(contacts)
        return checksummed

    def set_trusted(self, alias: str, trusted: bool) -> str:
        """Mark ``alias`` trusted or not; return the address it names."""
        with self._locked():
            contacts = self._load()
            existing = contacts.get(alias)
            if existing is None:
                raise NotFoundError(f"no contact named '{alias}'")
            contacts[alias] = Contact(alias, existing.address, trusted)
            self._save(contacts)
        return existing.address

    def remove(self, alias: str) -> str:
        """Forget ``alias`` (and any trust in it); return the address it named."""
        with self._locked():
            contacts = self._load()
            if alias not in contacts:
                raise NotFoundError(f"no contact named '{alias}'")
            removed = contacts.pop(alias)
            self._save(contacts)
        return removed.address

    def get(self, alias: str) -> str | None:
        found = self._load().get(alias)
        return None if found is None else found.address

    def list(self) -> dict[str, str]:
        return {c.alias: c.address for c in self.entries()}

    def entries(self) -> builtins.list[Contact]:
        """Every contact, by alias."""
        return [c for _, c in sorted(self._load().items())]

    def trusted(self) -> builtins.list[Address]:
        """The addresses of the trusted contacts, by alias."""
        return [Address.parse(c.address) for c in self.entries() if c.trusted]

    def _load(self) -> dict[str, Contact]:
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
            # Files written before contacts could be trusted have no "trusted" list.
            trusted = doc.get("trusted", [])
            if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
                raise ValueError("'trusted' is not a list of aliases")
            contacts: dict[str, Contact] = {}
            for alias, address in entries.items():
                if not is_valid_name(alias) or not isinstance(address, str):
                    raise ValueError(f"bad entry {alias!r}")
                contacts[alias] = Contact(alias, checksum_address(address), alias in trusted)
            unknown = sorted(set(trusted) - set(contacts))
            if unknown:
                raise ValueError(f"trusted alias {unknown[0]!r} is not a contact")
            return contacts
        except (ValueError, KeyError, InvalidInputError) as exc:
            raise CorruptError(f"{self.path} is damaged: {exc}") from None

    def _save(self, contacts: dict[str, Contact]) -> None:
        # The trusted aliases are a list beside the entries, so the entries keep the
        # shape that earlier versions read.
        ordered = sorted(contacts.items())
        doc = {
            "format": FORMAT,
            "contacts": {alias: c.address for alias, c in ordered},
            "trusted": [alias for alias, c in ordered if c.trusted],
        }
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
