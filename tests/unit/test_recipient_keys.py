"""Registered keys that no share manifest can be wrapped for are refused up front, each
in one line that names the recipient."""

from __future__ import annotations

import json
from typing import cast

import pytest
from jwcrypto.jwk import JWK

from sedis.core.errors import InvalidInputError
from sedis.service import access, sealing
from sedis.service.session import Session

ADDRESS = "0x" + "ab" * 20


class Directory:
    """A key directory holding one registered key (the bytes as registered)."""

    def __init__(self, registered: bytes) -> None:
        self.registered = registered

    def recipient_key(self, address: str) -> JWK:
        return sealing.encode_recipient_key(self.registered)


def public(key: JWK) -> bytes:
    return key.export_public().encode()


def off_curve() -> bytes:
    doc = json.loads(JWK.generate(kty="EC", crv="P-256").export_public())
    doc["y"] = doc["x"]  # (x, x) is not a point of P-256
    return json.dumps(doc).encode()


UNUSABLE = {
    "symmetric": json.dumps({"kty": "oct", "k": "c2VkaXMgc2VkaXMgc2VkaXMgc2VkaXMgc2VkaXM"}),
    "x25519": public(JWK.generate(kty="OKP", crv="X25519")).decode(),
    "off-curve": off_curve().decode(),
    "rsa-without-exponent": json.dumps({"kty": "RSA", "n": "sXch"}),
    "not-json": "-----BEGIN PUBLIC KEY-----",
    "private": JWK.generate(kty="EC", crv="P-256").export_private(),
}


@pytest.mark.parametrize("name", sorted(UNUSABLE))
def test_an_unusable_registered_key_is_refused_in_one_line(name: str) -> None:
    session = cast(Session, Directory(UNUSABLE[name].encode()))
    with pytest.raises(InvalidInputError) as caught:
        access.usable_key(session, ADDRESS)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{ADDRESS} has registered an encryption key that cannot be used (")
    assert message.endswith("); nothing was changed")


@pytest.mark.parametrize("kind", ["EC", "RSA"])
def test_a_usable_key_is_handed_back(kind: str) -> None:
    key = (
        JWK.generate(kty="EC", crv="P-256") if kind == "EC" else JWK.generate(kty="RSA", size=2048)
    )
    session = cast(Session, Directory(public(key)))
    assert access.usable_key(session, ADDRESS).thumbprint() == key.thumbprint()
