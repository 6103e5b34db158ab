"""Secrets at rest under a password: scrypt, then AES-256-GCM.

Why this construction rather than JWE with PBES2: PBES2 stretches the password
with PBKDF2, which GPUs and ASICs make cheap to attack; scrypt is memory-hard,
and it is what the Ethereum keystore beside these files already uses, so one
password costs an attacker the same everywhere. AES-256-GCM from
``cryptography`` authenticates the whole file. Its associated data binds the
format, the KDF parameters and a context string (the identity name and the key
kind), so a sealed file moved to another identity, or swapped for another key
kind, fails to open instead of yielding the wrong key.

The scrypt cost is n=2**17, r=8, p=1 (128 MiB, about 0.3 s), the OWASP
minimum for scrypt. The parameters are stored with each file so that they can
be raised later; files asking for far more are refused as malformed, so a
crafted file cannot exhaust memory.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from sedis.core.errors import AuthError, CorruptError

FORMAT = "sedis-sealed/1"
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
_MAX_N = 2**20
_MAX_R = 16
_MAX_P = 4
_SALT_BYTES = 16
_NONCE_BYTES = 12


def seal(plaintext: bytes, password: str, context: str) -> bytes:
    """Encrypt ``plaintext`` under ``password``; only the same ``context`` opens it."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kdf = {
        "name": "scrypt",
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": _b64(os.urandom(_SALT_BYTES)),
    }
    nonce = os.urandom(_NONCE_BYTES)
    key = _derive(password, kdf)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _aad(kdf, context))
    sealed = {
        "format": FORMAT,
        "kdf": kdf,
        "cipher": "A256GCM",
        "nonce": _b64(nonce),
        "ciphertext": _b64(ciphertext),
    }
    return json.dumps(sealed, indent=2).encode() + b"\n"


def unseal(data: bytes, password: str, context: str) -> bytes:
    """Decrypt what :func:`seal` made. AuthError for a wrong password (or altered bytes)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kdf, nonce, ciphertext = _parse(data)
    key = _derive(password, kdf)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, _aad(kdf, context))
    except InvalidTag:
        raise AuthError("wrong password") from None


def _derive(password: str, kdf: dict[str, Any]) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    salt = _unb64(kdf["salt"])
    scrypt = Scrypt(salt=salt, length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"])
    return scrypt.derive(password.encode("utf-8"))


def _aad(kdf: dict[str, Any], context: str) -> bytes:
    bound = {"format": FORMAT, "context": context, "kdf": kdf, "cipher": "A256GCM"}
    return json.dumps(bound, sort_keys=True, separators=(",", ":")).encode()


def _parse(data: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        if doc.get("cipher") != "A256GCM":
            raise ValueError(f"unknown cipher {doc.get('cipher')!r}")
        kdf = doc["kdf"]
        if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
            raise ValueError("unknown key derivation")
        n, r, p = kdf["n"], kdf["r"], kdf["p"]
        if not all(type(v) is int for v in (n, r, p)):
            raise ValueError("scrypt parameters must be integers")
        if not (
            2**14 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P
        ):
            raise ValueError("scrypt parameters out of range")
        kdf = {"name": "scrypt", "n": n, "r": r, "p": p, "salt": kdf["salt"]}
        if len(_unb64(kdf["salt"])) < _SALT_BYTES:
            raise ValueError("salt too short")
        nonce = _unb64(doc["nonce"])
        if len(nonce) != _NONCE_BYTES:
            raise ValueError("bad nonce length")
        return kdf, nonce, _unb64(doc["ciphertext"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise CorruptError(f"malformed sealed key file: {exc}") from None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("expected base64 text")
    return base64.b64decode(text, validate=True)
