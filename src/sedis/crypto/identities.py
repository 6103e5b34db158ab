"""Identities: an Ethereum account, a JWE encryption key and a Paillier key, under one name.

Each identity is a directory ``SEDIS_HOME/identities/NAME/`` (mode 0700):

- ``identity.json``: the public facts (address, public JWK, Paillier n).
- ``keystore.json``: the account as a keystore v3 file (scrypt), which geth,
  foundry's ``cast wallet`` and eth-account all read.
- ``encryption-key.sealed`` and ``paillier-key.sealed``: the other two private
  keys, sealed under the same password (see :mod:`sedis.crypto.sealed` for
  the construction and why).

Private files are mode 0600. An identity is built in a hidden temporary
directory and renamed into place whole, so a crash never leaves half an
identity, and two concurrent creates of one name cannot both succeed.
"""

from __future__ import annotations

import builtins
import errno
import functools
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sedis.core.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    CorruptError,
    InvalidInputError,
    NotFoundError,
)
from sedis.crypto import keys, sealed
from sedis.crypto.names import check_name, checksum_address, is_valid_name
from sedis.fsutil import atomic_output

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from jwcrypto.jwk import JWK
    from phe import PaillierPrivateKey

    from sedis.config import Settings
    from sedis.crypto.signer import AccountSigner

IDENTITIES_DIR = "identities"
PUBLIC_FILE = "identity.json"
KEYSTORE_FILE = "keystore.json"
ENCRYPTION_FILE = "encryption-key.sealed"
PAILLIER_FILE = "paillier-key.sealed"
FORMAT = "sedis-identity/1"
BUNDLE_FORMAT = "sedis-public-identity/1"
_MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Identity:
    """The public facts of an identity; nothing here is secret."""

    name: str
    address: str
    encryption_jwk: dict[str, Any]
    key_type: str
    paillier_n: int
    created: str

    def encryption_key_bytes(self) -> bytes:
        """The public JWK as compact JSON with sorted keys, as the key directory stores it."""
        return keys.canonical_json(self.encryption_jwk)

    def paillier_n_bytes(self) -> bytes:
        """The Paillier modulus, big-endian, as the key directory stores it."""
        return keys.int_to_bytes(self.paillier_n)

    def to_dict(self) -> dict[str, Any]:
        # n is hex text: a 617-digit JSON number loses precision in most parsers.
        return {
            "name": self.name,
            "address": self.address,
            "key_type": self.key_type,
            "encryption_jwk": self.encryption_jwk,
            "paillier_n": hex(self.paillier_n),
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Identity:
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        jwk = doc["encryption_jwk"]
        if not isinstance(jwk, dict) or jwk.get("kty") not in ("EC", "RSA"):
            raise ValueError("encryption_jwk is not an EC or RSA JWK")
        if any(k in jwk for k in ("d", "p", "q", "dp", "dq", "qi")):
            raise ValueError("encryption_jwk holds private key material")
        n = doc["paillier_n"]
        if not isinstance(n, str) or not n.startswith("0x"):
            raise ValueError("paillier_n must be 0x-prefixed hex")
        for field in ("name", "address", "created"):
            if not isinstance(doc[field], str):
                raise ValueError(f"{field} must be a string")
        return cls(
            name=doc["name"],
            address=checksum_address(doc["address"]),
            encryption_jwk=jwk,
            key_type=jwk["kty"],
            paillier_n=int(n, 16),
            created=doc["created"],
        )


class IdentityStore:
    """The identities under one SEDIS_HOME."""

    def __init__(self, home: Path) -> None:
        self.root = home / IDENTITIES_DIR

    def create(self, name: str, password: str, *, rsa: bool = False) -> Identity:
        """Make the three keys of a new identity; refuse a name that is taken."""
        check_name("identity", name)
        if not password:
            raise InvalidInputError("an empty password is not accepted")
        final = self.root / name
        if self.exists(name):
            raise ConflictError(f"an identity named '{name}' already exists")
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        building = self.root / f".{name}.{secrets.token_hex(6)}.partial"
        building.mkdir(mode=0o700)
        try:
            identity = self._build(building, name, password, rsa)
            try:
                # rename(2) refuses a non-empty target: the atomic "create if absent".
                building.rename(final)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                    raise ConflictError(f"an identity named '{name}' already exists") from None
                raise
            _fsync_dir(self.root)
            return identity
        finally:
            if building.exists():
                shutil.rmtree(building, ignore_errors=True)

    def exists(self, name: str) -> bool:
        """Whether ``name`` (which must be a valid name) is taken."""
        check_name("identity", name)
        return (self.root / name).exists()

    def list(self) -> list[Identity]:
        identities, damaged = self.survey()
        if damaged:
            raise damaged[0]
        return identities

    # "list" names the method above inside this class, hence builtins.list.
    def survey(self) -> tuple[builtins.list[Identity], builtins.list[CorruptError]]:
        """Every readable identity, and what is wrong with each damaged one."""
        if not self.root.is_dir():
            return [], []
        names = sorted(e.name for e in self.root.iterdir() if is_valid_name(e.name) and e.is_dir())
        found: builtins.list[Identity] = []
        damaged: builtins.list[CorruptError] = []
        for name in names:
            try:
                found.append(self.get(name))
            except CorruptError as exc:
                damaged.append(exc)
        return found, damaged

    def get(self, name: str) -> Identity:
        directory = self._dir(name)
        raw = _read(directory / PUBLIC_FILE, name)
        try:
            identity = Identity.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError, InvalidInputError) as exc:
            raise CorruptError(f"identity '{name}' is damaged: {PUBLIC_FILE}: {exc}") from None
        if identity.name != name:
            raise CorruptError(
                f"identity '{name}' is damaged: {PUBLIC_FILE} names '{identity.name}'"
            )
        return identity

    def unlock_account(self, name: str, password: str) -> LocalAccount:
        """The Ethereum account, decrypted from its keystore."""
        from eth_account import Account

        from sedis.crypto import keystore

        identity = self.get(name)
        raw = _read(self._dir(name) / KEYSTORE_FILE, name)
        try:
            document = json.loads(raw)
            if not isinstance(document, dict):
                raise CorruptError("not a JSON object")
            key = keystore.decrypt(document, password)
        except AuthError:
            raise _wrong_password(name) from None
        except (ValueError, CorruptError) as exc:
            raise CorruptError(f"identity '{name}' is damaged: {KEYSTORE_FILE}: {exc}") from None
        try:
            account: LocalAccount = Account.from_key(key)
        except ValueError as exc:
            raise CorruptError(f"identity '{name}' is damaged: {KEYSTORE_FILE}: {exc}") from None
        if account.address != identity.address:
            raise CorruptError(
                f"identity '{name}' is damaged: its keystore holds "
                f"{account.address}, not {identity.address}"
            )
        return account

    def unlock_encryption_key(self, name: str, password: str) -> JWK:
        """The private JWE key (a jwcrypto JWK), checked against the public one on record."""
        from jwcrypto import jwk

        identity = self.get(name)
        raw = self._unseal(name, ENCRYPTION_FILE, "encryption-key", password)
        try:
            key = jwk.JWK.from_json(raw.decode("utf-8"))
        except (ValueError, jwk.InvalidJWKValue) as exc:
            raise CorruptError(f"identity '{name}' is damaged: {ENCRYPTION_FILE}: {exc}") from None
        if not key.has_private or keys.public_jwk(key) != identity.encryption_jwk:
            raise CorruptError(
                f"identity '{name}' is damaged: its encryption key does not match its public key"
            )
        return key

    def unlock_signer(self, name: str, password: str) -> AccountSigner:
        """A signer for the identity's account (see unlock_account)."""
        from sedis.crypto.signer import AccountSigner

        return AccountSigner(self.unlock_account(name, password))

    def unlock_keys(self, name: str, password: str) -> UnlockedKeys:
        """The identity's encryption keys, the private one unlocked."""
        identity = self.get(name)
        return UnlockedKeys(identity, self.unlock_encryption_key(name, password))

    def unlock(self, name: str, password: str) -> tuple[AccountSigner, UnlockedKeys]:
        """Everything an identity acts with: its signer and its encryption keys."""
        return self.unlock_signer(name, password), self.unlock_keys(name, password)

    def unlock_paillier(self, name: str, password: str) -> PaillierPrivateKey:
        identity = self.get(name)
        raw = self._unseal(name, PAILLIER_FILE, "paillier-key", password)
        return keys.paillier_from_bytes(raw, identity.paillier_n)

    def public_bundle(self, name: str) -> dict[str, Any]:
        """What others need to share with this identity: address, public JWK, Paillier n."""
        identity = self.get(name)
        return {
            "format": BUNDLE_FORMAT,
            "name": identity.name,
            "address": identity.address,
            "key_type": identity.key_type,
            "encryption_jwk": identity.encryption_jwk,
            "paillier_n": hex(identity.paillier_n),
        }

    def _dir(self, name: str) -> Path:
        check_name("identity", name)
        directory = self.root / name
        if not (directory / PUBLIC_FILE).is_file():
            raise NotFoundError(f"no identity named '{name}'")
        return directory

    def _unseal(self, name: str, file: str, kind: str, password: str) -> bytes:
        raw = _read(self._dir(name) / file, name)
        try:
            return sealed.unseal(raw, password, _context(name, kind))
        except AuthError:
            raise _wrong_password(name) from None
        except CorruptError as exc:
            raise CorruptError(f"identity '{name}' is damaged: {file}: {exc}") from None

    def _build(self, directory: Path, name: str, password: str, rsa: bool) -> Identity:
        address, keystore = keys.new_account_keystore(password)
        encryption_key = keys.new_encryption_key(rsa)
        paillier_key = keys.new_paillier_key()
        identity = Identity(
            name=name,
            address=address,
            encryption_jwk=keys.public_jwk(encryption_key),
            key_type=encryption_key["kty"],
            paillier_n=paillier_key.public_key.n,
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        _write_private(directory / KEYSTORE_FILE, json.dumps(keystore, indent=2).encode())
        private_jwk = encryption_key.export_private().encode()
        _write_private(
            directory / ENCRYPTION_FILE,
            sealed.seal(private_jwk, password, _context(name, "encryption-key")),
        )
        _write_private(
            directory / PAILLIER_FILE,
            sealed.seal(
                keys.paillier_to_bytes(paillier_key), password, _context(name, "paillier-key")
            ),
        )
        public = {"format": FORMAT, **identity.to_dict()}
        _write_private(
            directory / PUBLIC_FILE, json.dumps(public, indent=2).encode() + b"\n", mode=0o644
        )
        _fsync_dir(directory)
        return identity


class UnlockedKeys:
    """An identity's encryption keys, its private key in memory."""

    def __init__(self, identity: Identity, private: JWK) -> None:
        self._identity = identity
        self._private = private

    @functools.cached_property
    def public_key(self) -> JWK:
        return public_key_of(self._identity)

    def private_key(self) -> JWK:
        return self._private

    def __repr__(self) -> str:  # never the key
        return f"UnlockedKeys({self._identity.name})"


def public_key_of(identity: Identity) -> JWK:
    """An identity's public encryption key, as recorded in its identity file."""
    from jwcrypto.jwk import JWK

    return JWK(**identity.encryption_jwk)


def acting_identity(settings: Settings, as_name: str | None) -> str:
    """The name of the identity that acts: --as, else SEDIS_IDENTITY, else the only one."""
    store = IdentityStore(settings.home)
    chosen = as_name or settings.identity
    if chosen:
        return store.get(chosen).name
    names = [i.name for i in store.list()]
    if len(names) == 1:
        return names[0]
    if not names:
        raise ConfigError("no identity to act as: create one with 'sedis identity create NAME'")
    raise ConfigError(
        f"several identities ({', '.join(names)}): choose one with --as NAME or SEDIS_IDENTITY"
    )


def _context(name: str, kind: str) -> str:
    return f"sedis identity '{name}' {kind}"


def _wrong_password(name: str) -> AuthError:
    return AuthError(f"wrong password for identity '{name}'")


def _read(path: Path, name: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise CorruptError(f"identity '{name}' is damaged: {path.name} is missing") from None
    except OSError as exc:
        raise CorruptError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise CorruptError(f"identity '{name}' is damaged: {path.name} is too large")
    return raw


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    with atomic_output(path) as out:
        # Set the mode before any byte lands, so no moment exposes the file wider.
        os.fchmod(out.fileno(), mode)
        out.write(data)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
