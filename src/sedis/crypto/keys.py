"""Making the three keys of an identity, and turning them into bytes and back."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sedis.core.errors import CorruptError

if TYPE_CHECKING:
    from phe import PaillierPrivateKey

PAILLIER_BITS = 2048
RSA_BITS = 3072
EC_CURVE = "P-256"


def new_account_keystore(password: str) -> tuple[str, dict[str, Any]]:
    """A fresh secp256k1 account: its checksummed address and its keystore v3 document."""
    from eth_account import Account

    from sedis.crypto import keystore

    account = Account.create()
    return str(account.address), keystore.encrypt(account.key, password)


def new_encryption_key(rsa: bool) -> Any:
    """A JWE recipient key pair (a jwcrypto JWK), its kid set to its RFC 7638 thumbprint."""
    from jwcrypto import jwk

    if rsa:
        key = jwk.JWK.generate(kty="RSA", size=RSA_BITS)
    else:
        key = jwk.JWK.generate(kty="EC", crv=EC_CURVE)
    key.update({"kid": key.thumbprint()})
    return key


def public_jwk(key: Any) -> dict[str, Any]:
    public: dict[str, Any] = key.export_public(as_dict=True)
    return public


def new_paillier_key() -> PaillierPrivateKey:
    from phe import paillier

    _public, private = paillier.generate_paillier_keypair(n_length=PAILLIER_BITS)
    return private


def paillier_to_bytes(private: PaillierPrivateKey) -> bytes:
    doc = {"n": hex(private.public_key.n), "p": hex(private.p), "q": hex(private.q)}
    return json.dumps(doc, sort_keys=True).encode()


def paillier_from_bytes(raw: bytes, expected_n: int) -> PaillierPrivateKey:
    from phe import paillier

    try:
        doc = json.loads(raw)
        n, p, q = (int(doc[k], 16) for k in ("n", "p", "q"))
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptError(f"malformed Paillier key: {exc}") from None
    if n != expected_n or p * q != n:
        raise CorruptError("the Paillier private key does not match the identity's public key")
    return paillier.PaillierPrivateKey(paillier.PaillierPublicKey(n), p, q)


def canonical_json(doc: dict[str, Any]) -> bytes:
    """Compact JSON with sorted keys: the same key always gives the same bytes."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def int_to_bytes(value: int) -> bytes:
    """Big-endian, no leading zero bytes."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
