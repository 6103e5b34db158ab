"""Keystore v3, the Ethereum key file, written at sedis's scrypt cost and read bounded.

eth-account writes and reads the files. New keystores use scrypt n=2**17,
r=8, p=1: the cost of the identity's sealed keys (see sealed), since one
password guards both and an attacker would go for the cheaper file anyway.
geth's own n=2**18 would double the memory of every signing command (256 MiB)
for no gain. Files written at other costs still open, but the KDF parameters
are checked first: eth-account would run whatever a crafted file asks for, and
n=2**30 alone wants a terabyte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sedis.core.errors import AuthError, CorruptError

SCRYPT_N = 2**17
_MAX_SCRYPT_N = 2**20
_MAX_SCRYPT_R = 16
_MAX_SCRYPT_P = 4
_MAX_PBKDF2_ROUNDS = 10_000_000


def encrypt(private_key: bytes, password: str) -> dict[str, Any]:
    from eth_account import Account

    keystore: dict[str, Any] = Account.encrypt(
        private_key, password, kdf="scrypt", iterations=SCRYPT_N
    )
    return keystore


def decrypt(document: Mapping[str, Any], password: str) -> bytes:
    """The private key; AuthError for a wrong password, CorruptError for a bad file."""
    from eth_account import Account

    _check(document)
    try:
        return bytes(Account.decrypt(dict(document), password))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise AuthError("the keystore's MAC does not match: wrong password") from None
        raise CorruptError(f"malformed keystore: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise CorruptError(f"malformed keystore: {exc}") from None


def _check(document: Mapping[str, Any]) -> None:
    """Refuse a file whose KDF would cost more than any sedis writes, before running it."""
    try:
        if document.get("version") != 3:
            raise CorruptError("not a version 3 keystore")
        crypto = document.get("crypto") or document["Crypto"]
        kdf, params = crypto["kdf"], crypto["kdfparams"]
        if crypto["cipher"] != "aes-128-ctr":
            raise CorruptError(f"unsupported keystore cipher {crypto['cipher']!r}")
        if int(params["dklen"]) < 32:
            raise CorruptError("keystore key length is under 32 bytes")
        if kdf == "scrypt":
            n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
            if not (
                2 <= n <= _MAX_SCRYPT_N
                and n & (n - 1) == 0
                and 1 <= r <= _MAX_SCRYPT_R
                and 1 <= p <= _MAX_SCRYPT_P
            ):
                raise CorruptError(f"keystore scrypt parameters out of range (n={n}, r={r}, p={p})")
        elif kdf == "pbkdf2":
            if not 1 <= int(params["c"]) <= _MAX_PBKDF2_ROUNDS:
                raise CorruptError("keystore PBKDF2 rounds out of range")
        else:
            raise CorruptError(f"unsupported keystore KDF {kdf!r}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptError(f"malformed keystore: {exc}") from None
