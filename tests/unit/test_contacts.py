"""The address book, and naming recipients by identity, alias or address."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sedis.core.address import Address
from sedis.core.errors import ConflictError, CorruptError, InvalidInputError, NotFoundError
from sedis.crypto.contacts import AddressBook, AddressBookDirectory, resolve_recipient
from sedis.crypto.identities import Identity, IdentityStore

# EIP-55's own test vector.
CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
OTHER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


@pytest.fixture(scope="module")
def with_identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Identity]:
    home = tmp_path_factory.mktemp("home")
    return home, IdentityStore(home).create("alice", "pw")


def test_add_list_remove(tmp_path: Path) -> None:
    book = AddressBook(tmp_path)
    assert book.list() == {}
    assert book.add("zoe", CHECKSUMMED.lower()) == CHECKSUMMED
    assert book.add("bob", OTHER.upper().replace("0X", "0x")) == OTHER
    assert book.list() == {"bob": OTHER, "zoe": CHECKSUMMED}
    assert list(book.list()) == ["bob", "zoe"]
    # Another instance reads what the first wrote: it is on disk.
    assert AddressBook(tmp_path).get("zoe") == CHECKSUMMED
    assert book.remove("zoe") == CHECKSUMMED
    assert AddressBook(tmp_path).list() == {"bob": OTHER}
    doc = json.loads((tmp_path / "contacts.json").read_text())
    assert doc == {"format": "sedis-contacts/1", "contacts": {"bob": OTHER}, "trusted": []}


def test_remove_unknown(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"^no contact named 'nobody'$"):
        AddressBook(tmp_path).remove("nobody")


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "wrong EIP-55 checksum"),
        ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae", "not an Ethereum address"),
        ("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "not an Ethereum address"),
        ("0xZZaeb6053f3e94c9b9a09f33669435e7ef1beaed", "not an Ethereum address"),
        ("alice", "not an Ethereum address"),
    ],
)
def test_bad_addresses_are_refused(tmp_path: Path, address: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        AddressBook(tmp_path).add("x", address)
    assert not (tmp_path / "contacts.json").exists()


@pytest.mark.parametrize("alias", ["../x", "", "Bob", "a/b", CHECKSUMMED])
def test_bad_aliases_are_refused(tmp_path: Path, alias: str) -> None:
    with pytest.raises(InvalidInputError, match="contact name"):
        AddressBook(tmp_path).add(alias, CHECKSUMMED)


def test_existing_alias_needs_replace(tmp_path: Path) -> None:
    book = AddressBook(tmp_path)
    book.add("bob", CHECKSUMMED)
    book.add("bob", CHECKSUMMED)  # the same entry again is harmless
    with pytest.raises(ConflictError, match=r"already exists .*--replace"):
        book.add("bob", OTHER)
    assert book.get("bob") == CHECKSUMMED
    book.add("bob", OTHER, replace=True)
    assert book.get("bob") == OTHER


def test_trusted_contacts_are_marked_on_disk(tmp_path: Path) -> None:
    book = AddressBook(tmp_path)
    book.add("zoe", CHECKSUMMED, trusted=True)
    book.add("bob", OTHER)
    assert book.trusted() == [Address.parse(CHECKSUMMED)]
    assert [(c.alias, c.trusted) for c in book.entries()] == [("bob", False), ("zoe", True)]
    doc = json.loads((tmp_path / "contacts.json").read_text())
    assert doc["trusted"] == ["zoe"]
    assert doc["contacts"] == {"bob": OTHER, "zoe": CHECKSUMMED}
    assert book.set_trusted("bob", True) == OTHER
    book.set_trusted("zoe", False)
    assert AddressBook(tmp_path).trusted() == [Address.parse(OTHER)]
    with pytest.raises(NotFoundError, match=r"^no contact named 'nobody'$"):
        book.set_trusted("nobody", True)


def test_adding_again_keeps_trust_and_a_new_address_starts_untrusted(tmp_path: Path) -> None:
    book = AddressBook(tmp_path)
    book.add("bob", OTHER, trusted=True)
    book.add("bob", OTHER)  # the same entry again, without --trust, keeps its trust
    assert book.trusted() == [Address.parse(OTHER)]
    book.add("bob", CHECKSUMMED, replace=True)
    assert book.trusted() == []
    book.add("bob", CHECKSUMMED, trusted=True)
    assert book.trusted() == [Address.parse(CHECKSUMMED)]
    book.remove("bob")
    book.add("bob", CHECKSUMMED)
    assert book.trusted() == []


def test_a_book_written_before_trust_still_reads(tmp_path: Path) -> None:
    old = {"format": "sedis-contacts/1", "contacts": {"bob": OTHER.lower()}}
    (tmp_path / "contacts.json").write_text(json.dumps(old))
    book = AddressBook(tmp_path)
    assert book.list() == {"bob": OTHER}
    assert book.trusted() == []
    book.set_trusted("bob", True)
    assert AddressBook(tmp_path).trusted() == [Address.parse(OTHER)]


def test_concurrent_adds_lose_nothing(tmp_path: Path) -> None:
    book = AddressBook(tmp_path)
    threads = [threading.Thread(target=book.add, args=(f"c{i}", CHECKSUMMED)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(book.list()) == 20


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"format": "other"}',
        b'{"format": "sedis-contacts/1", "contacts": {"bob": "0x12"}}',
        b'{"format": "sedis-contacts/1", "contacts": {}, "trusted": "bob"}',
        b'{"format": "sedis-contacts/1", "contacts": {}, "trusted": ["bob"]}',
    ],
)
def test_damaged_book_is_an_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "contacts.json").write_bytes(content)
    with pytest.raises(CorruptError, match=r"contacts\.json is damaged"):
        AddressBook(tmp_path).list()


def test_resolve_identity_then_contact_then_address(with_identity: tuple[Path, Identity]) -> None:
    home, alice = with_identity
    identities, book = IdentityStore(home), AddressBook(home)
    book.add("bob", OTHER)
    book.add("alice", CHECKSUMMED, replace=True)  # shadowed by the identity of that name
    try:
        assert resolve_recipient("alice", identities, book) == alice.address
        assert resolve_recipient("bob", identities, book) == OTHER
        assert resolve_recipient(CHECKSUMMED.lower(), identities, book) == CHECKSUMMED
    finally:
        book.remove("alice")
        book.remove("bob")


@pytest.mark.parametrize("who", ["carol", "../alice", "0x123", "", "Alice"])
def test_resolve_unknown(with_identity: tuple[Path, Identity], who: str) -> None:
    home, _ = with_identity
    with pytest.raises(NotFoundError) as caught:
        resolve_recipient(who, IdentityStore(home), AddressBook(home))
    assert str(caught.value) == (
        f"unknown recipient '{who}': not an identity, a contact or a 0x address"
    )


def test_resolve_refuses_a_mistyped_checksum(with_identity: tuple[Path, Identity]) -> None:
    home, _ = with_identity
    with pytest.raises(InvalidInputError, match="checksum"):
        resolve_recipient(CHECKSUMMED[:-1] + "D", IdentityStore(home), AddressBook(home))


def test_the_directory_names_one_address_whatever_its_case(
    with_identity: tuple[Path, Identity],
) -> None:
    home, _ = with_identity
    directory = AddressBookDirectory(IdentityStore(home), AddressBook(home))
    spellings = [CHECKSUMMED, CHECKSUMMED.lower(), "0x" + CHECKSUMMED[2:].upper()]
    assert {directory.resolve(s) for s in spellings} == {Address.parse(CHECKSUMMED)}
    assert str(directory.resolve(CHECKSUMMED.lower())) == CHECKSUMMED
