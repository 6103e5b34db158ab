"""Keystore v3 files: sedis reads what eth-account writes, and refuses bad ones cleanly."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from eth_account import Account

from sedis.core.errors import AuthError, CorruptError
from sedis.crypto import keystore

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")


@pytest.fixture(scope="module")
def written() -> dict[str, Any]:
    return keystore.encrypt(KEY, "correct horse")


def test_new_keystores_cost_what_the_sealed_keys_cost(written: dict[str, Any]) -> None:
    params = written["crypto"]["kdfparams"]
    assert (written["crypto"]["kdf"], params["n"], params["r"], params["p"]) == (
        "scrypt",
        2**17,
        8,
        1,
    )


def test_reads_its_own_and_agrees_with_eth_account(written: dict[str, Any]) -> None:
    assert keystore.decrypt(written, "correct horse") == KEY
    assert bytes(Account.decrypt(written, "correct horse")) == KEY


@pytest.mark.parametrize("kdf", ["scrypt", "pbkdf2"])
def test_reads_eth_account_keystores(kdf: str) -> None:
    other = os.urandom(32)
    rounds = 2**14 if kdf == "scrypt" else 10_000
    doc = Account.encrypt(other, "pw", kdf=kdf, iterations=rounds)
    assert keystore.decrypt(doc, "pw") == other


def test_wrong_password_is_an_auth_error(written: dict[str, Any]) -> None:
    with pytest.raises(AuthError, match="wrong password"):
        keystore.decrypt(written, "wrong horse")


def test_altered_ciphertext_fails_the_mac(written: dict[str, Any]) -> None:
    doc = copy.deepcopy(written)
    text = doc["crypto"]["ciphertext"]
    doc["crypto"]["ciphertext"] = ("0" if text[0] != "0" else "1") + text[1:]
    with pytest.raises(AuthError):
        keystore.decrypt(doc, "correct horse")


def _altered(written: dict[str, Any], path: list[str], value: object) -> dict[str, Any]:
    doc = copy.deepcopy(written)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["version"], 1, "not a version 3 keystore"),
        (["crypto", "kdfparams", "n"], 2**30, "out of range"),
        (["crypto", "kdfparams", "n"], 3000, "out of range"),
        (["crypto", "kdfparams", "r"], 1000, "out of range"),
        (["crypto", "kdfparams", "dklen"], 16, "under 32 bytes"),
        (["crypto", "kdf"], "argon2id", "unsupported keystore KDF"),
        (["crypto", "mac"], "zz", "malformed keystore"),
        (["crypto", "kdfparams", "salt"], _DELETE, "malformed keystore"),
        (["crypto"], "not an object", "malformed keystore"),
    ],
)
def test_malformed_keystores_are_refused(
    written: dict[str, Any], path: list[str], value: object, message: str
) -> None:
    with pytest.raises(CorruptError, match=message):
        keystore.decrypt(_altered(written, path, value), "correct horse")


def test_pbkdf2_rounds_are_bounded() -> None:
    doc = Account.encrypt(KEY, "pw", kdf="pbkdf2", iterations=1000)
    doc["crypto"]["kdfparams"]["c"] = 10**9
    with pytest.raises(CorruptError, match="PBKDF2 rounds out of range"):
        keystore.decrypt(doc, "pw")


def test_unsupported_cipher_is_refused() -> None:
    doc = Account.encrypt(KEY, "pw", kdf="pbkdf2", iterations=1000)
    doc["crypto"]["cipher"] = "aes-256-gcm"
    with pytest.raises(CorruptError, match="unsupported keystore cipher 'aes-256-gcm'"):
        keystore.decrypt(doc, "pw")
