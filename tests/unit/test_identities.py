"""IdentityStore: the three keys, encrypted at rest, and every refusal."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import threading
from datetime import datetime
from pathlib import Path

import pytest

from sedis.config import Settings
from sedis.core.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    CorruptError,
    InvalidInputError,
    NotFoundError,
)
from sedis.crypto.identities import Identity, IdentityStore, acting_identity

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Identity, Identity]:
    """One home with an EC identity and an RSA identity, made once: keygen costs ~1.5 s."""
    home = tmp_path_factory.mktemp("home")
    store = IdentityStore(home)
    alice = store.create("alice", PASSWORD)
    bob = store.create("bob", PASSWORD, rsa=True)
    return home, alice, bob


@pytest.fixture
def store(populated: tuple[Path, Identity, Identity]) -> IdentityStore:
    return IdentityStore(populated[0])


def _copy_home(populated: tuple[Path, Identity, Identity], tmp_path: Path) -> Path:
    """A private copy of the shared home, for tests that damage files."""
    home = tmp_path / "home"
    shutil.copytree(populated[0], home)
    return home


def test_create_records_public_facts(populated: tuple[Path, Identity, Identity]) -> None:
    _home, alice, bob = populated
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", alice.address)
    assert alice.address != alice.address.lower()  # EIP-55 mixed case
    assert alice.address != bob.address
    assert alice.key_type == "EC"
    assert alice.encryption_jwk["crv"] == "P-256"
    assert bob.key_type == "RSA"
    rsa_n = base64.urlsafe_b64decode(bob.encryption_jwk["n"] + "==")
    assert int.from_bytes(rsa_n, "big").bit_length() == 3072
    assert alice.paillier_n.bit_length() == 2048
    assert alice.paillier_n != bob.paillier_n
    datetime.fromisoformat(alice.created.replace("Z", "+00:00"))
    for jwk in (alice.encryption_jwk, bob.encryption_jwk):
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)


def test_list_and_get(store: IdentityStore, populated: tuple[Path, Identity, Identity]) -> None:
    _home, alice, bob = populated
    assert store.list() == [alice, bob]
    assert store.get("bob") == bob


def test_list_is_empty_without_identities(tmp_path: Path) -> None:
    assert IdentityStore(tmp_path).list() == []


def test_keystore_is_a_valid_v3_file(store: IdentityStore, populated) -> None:  # type: ignore[no-untyped-def]
    from eth_account import Account

    alice = populated[1]
    keystore = json.loads((store.root / "alice" / "keystore.json").read_text())
    assert keystore["version"] == 3
    assert keystore["crypto"]["kdf"] == "scrypt"
    assert keystore["address"].lower() == alice.address[2:].lower()
    key = Account.decrypt(keystore, PASSWORD)
    assert Account.from_key(key).address == alice.address
    with pytest.raises(ValueError, match="MAC mismatch"):
        Account.decrypt(keystore, PASSWORD + "x")


def test_unlock_account_signs_as_the_address(store: IdentityStore, populated) -> None:  # type: ignore[no-untyped-def]
    from eth_account import Account
    from eth_account.messages import encode_defunct

    account = store.unlock_account("alice", PASSWORD)
    assert account.address == populated[1].address
    message = encode_defunct(text="sedis")
    signed = account.sign_message(message)
    assert Account.recover_message(message, signature=signed.signature) == account.address


@pytest.mark.parametrize(("name", "alg"), [("alice", "ECDH-ES+A256KW"), ("bob", "RSA-OAEP")])
def test_unlock_encryption_key_opens_a_jwe_to_the_public_key(
    store: IdentityStore, name: str, alg: str
) -> None:
    from jwcrypto import jwe, jwk

    public = jwk.JWK(**store.get(name).encryption_jwk)
    token = jwe.JWE(b"layer key", protected={"alg": alg, "enc": "A256GCM"})
    token.add_recipient(public)
    wire = token.serialize()

    private = store.unlock_encryption_key(name, PASSWORD)
    assert private.has_private
    opened = jwe.JWE()
    opened.deserialize(wire, key=private)
    assert opened.payload == b"layer key"


def test_unlock_paillier_decrypts(store: IdentityStore, populated) -> None:  # type: ignore[no-untyped-def]
    private = store.unlock_paillier("alice", PASSWORD)
    assert private.public_key.n == populated[1].paillier_n
    total = private.public_key.encrypt(40) + private.public_key.encrypt(2)
    assert private.decrypt(total) == 42


@pytest.mark.parametrize("unlock", ["unlock_account", "unlock_encryption_key", "unlock_paillier"])
def test_wrong_password_is_one_clear_error(store: IdentityStore, unlock: str) -> None:
    with pytest.raises(AuthError) as caught:
        getattr(store, unlock)("alice", "not the password")
    assert str(caught.value) == "wrong password for identity 'alice'"


def test_missing_identity(store: IdentityStore) -> None:
    for call in (store.get, store.public_bundle):
        with pytest.raises(NotFoundError, match=r"^no identity named 'carol'$"):
            call("carol")
    with pytest.raises(NotFoundError, match="no identity named 'carol'"):
        store.unlock_account("carol", PASSWORD)


def test_duplicate_name_is_refused_and_leaves_the_original(store: IdentityStore) -> None:
    before = {p.name: p.read_bytes() for p in (store.root / "alice").iterdir()}
    with pytest.raises(ConflictError, match="an identity named 'alice' already exists"):
        store.create("alice", "another password")
    after = {p.name: p.read_bytes() for p in (store.root / "alice").iterdir()}
    assert after == before
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]


def test_concurrent_creates_of_one_name_yield_one_identity(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    outcomes: list[object] = []

    def attempt() -> None:
        try:
            outcomes.append(store.create("dup", PASSWORD))
        except ConflictError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [o for o in outcomes if isinstance(o, Identity)]
    refused = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(made) == 1 and len(refused) == 1
    assert "already exists" in str(refused[0])
    assert store.list() == made
    assert store.unlock_account("dup", PASSWORD).address == made[0].address


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "..",
        ".",
        "",
        "a/b",
        "/abs",
        ".hidden",
        "Alice",
        "a b",
        "x" * 64,
        "-x",
        "é",
        "0x" + "ab" * 20,
    ],
)
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    store = IdentityStore(home)
    with pytest.raises(InvalidInputError, match="name"):
        store.create(name, PASSWORD)
    with pytest.raises(InvalidInputError):
        store.get(name)
    assert list(tmp_path.iterdir()) == []  # not even the home: refused before any write


def test_empty_password_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="empty password"):
        IdentityStore(tmp_path).create("alice", "")
    assert IdentityStore(tmp_path).list() == []


def test_permissions(store: IdentityStore) -> None:
    for name in ("alice", "bob"):
        directory = store.root / name
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        for private in ("keystore.json", "encryption-key.sealed", "paillier-key.sealed"):
            assert stat.S_IMODE((directory / private).stat().st_mode) == 0o600, private
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700


def _b64url(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forms(value: bytes) -> list[bytes]:
    """Ways a secret could sit in a file: raw, hex, base64 and base64url."""
    return [
        value,
        value.hex().encode(),
        value.hex().upper().encode(),
        base64.b64encode(value).rstrip(b"="),
        base64.urlsafe_b64encode(value).rstrip(b"="),
    ]


@pytest.mark.parametrize("name", ["alice", "bob"])
def test_no_private_key_material_in_plaintext(store: IdentityStore, name: str) -> None:
    account = store.unlock_account(name, PASSWORD)
    enc = store.unlock_encryption_key(name, PASSWORD).export_private(as_dict=True)
    paillier = store.unlock_paillier(name, PASSWORD)
    secrets: list[bytes] = _forms(bytes(account.key))
    for field in ("d", "p", "q", "dp", "dq", "qi"):
        if field in enc:
            secrets += _forms(base64.urlsafe_b64decode(enc[field] + "=="))
    for prime in (paillier.p, paillier.q):
        secrets += _forms(prime.to_bytes((prime.bit_length() + 7) // 8, "big"))
        secrets += [str(prime).encode(), hex(prime).encode(), _b64url(prime).encode()]
    # Long secrets are scanned by a 16-byte window, so a partial leak is caught too.
    needles = {s[:16] for s in secrets} | {s[-16:] for s in secrets}
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert len(files) >= 8
    for path in files:
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"{path} holds private key material"


def test_sealed_files_are_bound_to_name_and_kind(populated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = _copy_home(populated, tmp_path)
    store = IdentityStore(home)
    alice, bob = store.root / "alice", store.root / "bob"
    # Alice's Paillier key, moved into Bob's identity, must not open as Bob's.
    shutil.copy(alice / "paillier-key.sealed", bob / "paillier-key.sealed")
    with pytest.raises(AuthError, match="wrong password for identity 'bob'"):
        store.unlock_paillier("bob", PASSWORD)
    # Alice's encryption key file, swapped in for her Paillier key, must not open either.
    shutil.copy(alice / "encryption-key.sealed", alice / "paillier-key.sealed")
    with pytest.raises(AuthError):
        store.unlock_paillier("alice", PASSWORD)


def test_a_flipped_ciphertext_bit_is_refused(populated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = IdentityStore(_copy_home(populated, tmp_path))
    path = store.root / "alice" / "encryption-key.sealed"
    doc = json.loads(path.read_text())
    raw = bytearray(base64.b64decode(doc["ciphertext"]))
    raw[5] ^= 1
    doc["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    path.write_text(json.dumps(doc))
    with pytest.raises(AuthError):
        store.unlock_encryption_key("alice", PASSWORD)


def test_a_sealed_file_asking_for_huge_scrypt_memory_is_refused(populated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = IdentityStore(_copy_home(populated, tmp_path))
    path = store.root / "alice" / "paillier-key.sealed"
    doc = json.loads(path.read_text())
    doc["kdf"]["n"] = 2**30
    path.write_text(json.dumps(doc))
    with pytest.raises(CorruptError, match="identity 'alice' is damaged"):
        store.unlock_paillier("alice", PASSWORD)


def test_a_public_record_with_private_parts_is_refused(populated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = IdentityStore(_copy_home(populated, tmp_path))
    path = store.root / "alice" / "identity.json"
    doc = json.loads(path.read_text())
    doc["encryption_jwk"]["d"] = "AAAA"
    path.write_text(json.dumps(doc))
    with pytest.raises(CorruptError, match="private key material"):
        store.get("alice")


def test_a_keystore_for_another_account_is_refused(populated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = IdentityStore(_copy_home(populated, tmp_path))
    shutil.copy(store.root / "bob" / "keystore.json", store.root / "alice" / "keystore.json")
    with pytest.raises(CorruptError, match="its keystore holds"):
        store.unlock_account("alice", PASSWORD)


def test_public_bundle(store: IdentityStore, populated) -> None:  # type: ignore[no-untyped-def]
    alice = populated[1]
    bundle = store.public_bundle("alice")
    assert bundle["address"] == alice.address
    assert bundle["encryption_jwk"] == alice.encryption_jwk
    assert int(bundle["paillier_n"], 16) == alice.paillier_n
    assert json.loads(json.dumps(bundle)) == bundle


def test_key_directory_encodings(populated) -> None:  # type: ignore[no-untyped-def]
    alice = populated[1]
    raw = alice.encryption_key_bytes()
    assert json.loads(raw) == alice.encryption_jwk
    assert b" " not in raw and list(json.loads(raw)) == sorted(alice.encryption_jwk)
    n = alice.paillier_n_bytes()
    assert len(n) == 256 and n[0] != 0
    assert int.from_bytes(n, "big") == alice.paillier_n


def test_list_ignores_a_half_built_identity(populated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = IdentityStore(_copy_home(populated, tmp_path))
    (store.root / ".carol.0123.partial").mkdir()
    assert [i.name for i in store.list()] == ["alice", "bob"]


def test_acting_identity(tmp_path: Path, populated) -> None:  # type: ignore[no-untyped-def]
    empty = Settings(home=tmp_path / "empty")
    with pytest.raises(ConfigError, match="no identity to act as"):
        acting_identity(empty, None)

    home = _copy_home(populated, tmp_path)
    settings = Settings(home=home)
    with pytest.raises(ConfigError, match=r"several identities \(alice, bob\)"):
        acting_identity(settings, None)
    assert acting_identity(settings, "bob") == "bob"
    assert acting_identity(Settings(home=home, identity="alice"), None) == "alice"
    assert acting_identity(Settings(home=home, identity="alice"), "bob") == "bob"
    with pytest.raises(NotFoundError, match="no identity named 'zed'"):
        acting_identity(settings, "zed")

    shutil.rmtree(home / "identities" / "bob")
    assert acting_identity(settings, None) == "alice"


def test_nothing_is_left_behind_when_keygen_fails(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sedis.crypto import keys

    def broken() -> None:
        raise RuntimeError("no entropy today")

    monkeypatch.setattr(keys, "new_paillier_key", broken)
    store = IdentityStore(tmp_path)
    with pytest.raises(RuntimeError):
        store.create("alice", PASSWORD)
    assert os.listdir(store.root) == []
