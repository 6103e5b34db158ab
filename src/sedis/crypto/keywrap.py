"""Wrapping a blob's private options for recipients: one JSON-serialized JWE.

As in ocicrypt's "jwe" key wrapper, the privopts JSON is the JWE payload,
encrypted with A256GCM, and the content key is wrapped per recipient with
ECDH-ES+A256KW (EC keys) or RSA-OAEP (RSA keys). The descriptor annotation
``org.opencontainers.image.enc.keys.jwe`` holds the JWE's base64, and
several such values may be joined with commas.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sedis.core.errors import AuthError, InvalidInputError
from sedis.core.jsonsafe import check_depth

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

KEYS_ANNOTATION = "org.opencontainers.image.enc.keys.jwe"
PUBOPTS_ANNOTATION = "org.opencontainers.image.enc.pubopts"
CONTENT_ALG = "A256GCM"
_MAX_JWE = 1024 * 1024
_ALLOWED = ["ECDH-ES+A256KW", "RSA-OAEP", "RSA-OAEP-256", CONTENT_ALG]


def key_alg(key: JWK) -> str:
    kty = key.get("kty")
    if kty == "EC":
        return "ECDH-ES+A256KW"
    if kty == "RSA":
        return "RSA-OAEP"
    raise InvalidInputError(f"cannot wrap keys for a {kty} key (EC or RSA only)")


def wrap(payload: bytes, recipients: Sequence[JWK]) -> str:
    """One JWE for all recipients; returns the annotation value (base64 of its JSON)."""
    from jwcrypto import jwe

    if not recipients:
        raise InvalidInputError("an encrypted blob needs at least one recipient")
    token = jwe.JWE(payload, protected=json.dumps({"enc": CONTENT_ALG}))
    for key in recipients:
        public = _public(key)
        token.add_recipient(public, header=json.dumps({"alg": key_alg(public)}))
    serialized: str = token.serialize(compact=False)
    return base64.b64encode(serialized.encode()).decode()


def unwrap(annotation: str, private_key: JWK) -> bytes:
    """The payload, from the first JWE in the annotation that the key opens."""
    from jwcrypto import jwe
    from jwcrypto.common import JWException

    parts = [p for p in annotation.split(",") if p]
    if not parts or len(annotation) > _MAX_JWE:
        raise InvalidInputError("the keys annotation is empty or oversized")
    for part in parts:
        try:
            serialized = base64.b64decode(part, validate=True)
        except ValueError as exc:
            raise InvalidInputError("the keys annotation is not valid base64") from exc
        check_depth(serialized, limit=8, what="the keys annotation")
        token = jwe.JWE()
        token.allowed_algs = _ALLOWED
        try:
            token.deserialize(serialized.decode(), key=private_key)
        except (JWException, ValueError, KeyError, TypeError):
            continue
        payload: bytes = token.payload
        return payload
    raise AuthError("none of the wrapped keys opens with this identity's key")


def _public(key: JWK) -> JWK:
    from jwcrypto.jwk import JWK as _JWK

    if key.has_private:
        return _JWK(**json.loads(key.export_public()))
    return key
