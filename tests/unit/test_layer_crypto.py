"""The ocicrypt layer cipher and JWE key wrapping: round trips and every refusal."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from jwcrypto.jwk import JWK

from sedis.core.errors import AuthError, CorruptError, InvalidInputError
from sedis.crypto import keywrap
from sedis.crypto.layer_cipher import (
    PrivateOptions,
    PublicOptions,
    decrypt_checked,
    encrypt_stream,
    new_private_options,
)

PLAIN = [bytes(range(256)) * 1000, b"tail bytes", b""]
DIGEST = "sha256:" + hashlib.sha256(b"".join(PLAIN)).hexdigest()


def encrypt() -> tuple[list[bytes], PrivateOptions, PublicOptions, str]:
    private = new_private_options(DIGEST)
    stream, finish = encrypt_stream(PLAIN, private)
    ciphertext = list(stream)
    public, cipher_digest = finish()
    return ciphertext, private, public, cipher_digest


def test_round_trip_and_ciphertext_digest() -> None:
    ciphertext, private, public, cipher_digest = encrypt()
    assert b"".join(ciphertext) != b"".join(PLAIN)
    assert cipher_digest == "sha256:" + hashlib.sha256(b"".join(ciphertext)).hexdigest()
    plain = b"".join(decrypt_checked(lambda: ciphertext, private, public))
    assert plain == b"".join(PLAIN)


def test_a_flipped_ciphertext_bit_releases_no_plaintext() -> None:
    ciphertext, private, public, _ = encrypt()
    damaged = bytearray(b"".join(ciphertext))
    damaged[12345] ^= 0x01
    released: list[bytes] = []
    with pytest.raises(CorruptError, match="HMAC"):
        released.extend(decrypt_checked(lambda: [bytes(damaged)], private, public))
    assert released == []


def test_wrong_digest_in_private_options_is_refused_at_the_end() -> None:
    ciphertext, private, public, _ = encrypt()
    lying = PrivateOptions(private.symkey, "sha256:" + "0" * 64, private.nonce)
    with pytest.raises(CorruptError, match="does not match its digest"):
        b"".join(decrypt_checked(lambda: ciphertext, lying, public))


def test_options_json_is_ocicrypts_shape() -> None:
    _, private, public, _ = encrypt()
    pub = json.loads(base64.b64decode(public.annotation()))
    assert pub["cipher"] == "AES_256_CTR_HMAC_SHA256"
    assert base64.b64decode(pub["hmac"]) == public.hmac
    assert pub["cipheroptions"] == {}
    early_form = {"cipher": pub["cipher"], "hmac": None, "cipheroptions": {"hmac": pub["hmac"]}}
    early = base64.b64encode(json.dumps(early_form).encode()).decode()
    assert PublicOptions.from_annotation(early) == public
    priv = json.loads(private.to_json())
    assert set(priv) == {"symkey", "digest", "cipheroptions"}
    assert len(base64.b64decode(priv["symkey"])) == 32
    assert len(base64.b64decode(priv["cipheroptions"]["nonce"])) == 16
    assert PrivateOptions.from_json(private.to_json()) == private
    assert PublicOptions.from_annotation(public.annotation()) == public


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"symkey": "!!", "digest": "sha256:00", "cipheroptions": {"nonce": "AA=="}}',
        b'{"symkey": "AAAA", "digest": "md5:00", "cipheroptions": {"nonce": "AAAA"}}',
        b"{" + b" " * 70000 + b"}",
    ],
)
def test_malformed_private_options(payload: bytes) -> None:
    with pytest.raises(InvalidInputError):
        PrivateOptions.from_json(payload)


def test_unknown_cipher_is_refused() -> None:
    bad = base64.b64encode(b'{"cipher": "AES_128_GCM", "cipheroptions": {}}').decode()
    with pytest.raises(InvalidInputError, match="unsupported layer cipher"):
        PublicOptions.from_annotation(bad)


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def keys() -> tuple[JWK, JWK, JWK]:
    return (
        JWK.generate(kty="EC", crv="P-256"),
        JWK.generate(kty="RSA", size=2048),
        JWK.generate(kty="EC", crv="P-256"),
    )


def test_one_jwe_opens_for_every_recipient_and_no_one_else() -> None:
    alice, bob, mallory = keys()
    annotation = keywrap.wrap(b"secret options", [alice, bob])
    document = json.loads(base64.b64decode(annotation))
    algs = sorted(r["header"]["alg"] for r in document["recipients"])
    assert algs == ["ECDH-ES+A256KW", "RSA-OAEP"]
    assert json.loads(b64url(document["protected"]))["enc"] == "A256GCM"
    assert keywrap.unwrap(annotation, alice) == b"secret options"
    assert keywrap.unwrap(annotation, bob) == b"secret options"
    with pytest.raises(AuthError):
        keywrap.unwrap(annotation, mallory)
    # Comma-joined values: the key that opens the second one still gets in.
    joined = keywrap.wrap(b"other", [mallory]) + "," + annotation
    assert keywrap.unwrap(joined, bob) == b"secret options"


def test_wrapped_keys_do_not_carry_private_material() -> None:
    alice, _, _ = keys()
    text = base64.b64decode(keywrap.wrap(b"x", [alice])).decode()
    assert json.loads(alice.export_private())["d"] not in text


@pytest.mark.parametrize("annotation", ["", "***", "e30="])
def test_malformed_annotations(annotation: str) -> None:
    alice, _, _ = keys()
    with pytest.raises((InvalidInputError, AuthError)):
        keywrap.unwrap(annotation, alice)


def test_no_recipients_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="at least one recipient"):
        keywrap.wrap(b"x", [])
