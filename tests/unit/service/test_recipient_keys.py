"""Registered keys that no share manifest can be wrapped for are refused up front, each
in one line that names the recipient."""

from __future__ import annotations

import json

import pytest
from jwcrypto.jwk import JWK

from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.service import access
from sedis.service.engines import Actor, Engines
from tests.unit.service.fakes import FakeDirectory, make_actor
from tests.unit.service.images import PAILLIER_N


def public(key: JWK) -> bytes:
    exported: str = key.export_public()
    return exported.encode()


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


def registered(engines: Engines, directory: FakeDirectory, key: bytes) -> Actor:
    """An identity whose entry in the ledger's key directory is ``key``, as registered."""
    actor = make_actor(engines, "dave", directory, register=False)
    actor.ledger.register_keys(key, PAILLIER_N)
    return actor


@pytest.mark.parametrize("name", sorted(UNUSABLE))
def test_an_unusable_registered_key_is_refused_in_one_line(
    engines: Engines, alice: Actor, directory: FakeDirectory, name: str
) -> None:
    dave = registered(engines, directory, UNUSABLE[name].encode())
    with pytest.raises(InvalidInputError) as caught:
        access.usable_key(engines, alice, dave.address)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"{dave.address} has registered an encryption key that cannot be used ("
    )
    assert message.endswith("); nothing was changed")


@pytest.mark.parametrize("kind", ["EC", "RSA"])
def test_a_usable_key_is_handed_back(
    engines: Engines, alice: Actor, directory: FakeDirectory, kind: str
) -> None:
    key = (
        JWK.generate(kty="EC", crv="P-256") if kind == "EC" else JWK.generate(kty="RSA", size=2048)
    )
    dave = registered(engines, directory, public(key))
    assert access.usable_key(engines, alice, dave.address).thumbprint() == key.thumbprint()


def test_an_address_without_registered_keys_is_not_found(
    engines: Engines, alice: Actor, directory: FakeDirectory
) -> None:
    dave = make_actor(engines, "dave", directory, register=False)
    with pytest.raises(NotFoundError, match=f"{dave.address} has no keys in the key directory"):
        access.usable_key(engines, alice, dave.address)


def test_the_actors_own_key_needs_no_directory_entry(
    engines: Engines, directory: FakeDirectory
) -> None:
    dave = make_actor(engines, "dave", directory, register=False)
    key = access.usable_key(engines, dave, dave.address)
    assert key.thumbprint() == dave.keys.public_key.thumbprint()
