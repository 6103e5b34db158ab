"""The standard ocicrypt form, in and out: for skopeo, containerd imgcrypt and nerdctl.

In: an image that ocicrypt tools encrypted is read with a private key, as if it
were the plaintext image. Its manifest is rebuilt exactly as those tools
rebuild it when they decrypt (Go's JSON encoding: struct field order, no
spaces, HTML characters escaped, the enc.* annotations dropped), so the
digest matches what `skopeo copy --decryption-key` gives.

Out: a published image is written with its layers still encrypted (the
stored ciphertext, as it is) and a plaintext config, its layer keys wrapped
for the exporter and for any outside recipients' public keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sedis.core.errors import CorruptError, InvalidInputError
from sedis.crypto import keywrap
from sedis.crypto.layer_cipher import PrivateOptions, PublicOptions, decrypt_checked
from sedis.oci import model
from sedis.oci.source import ImageSource
from sedis.oci.streams import iter_reader
from sedis.service import sealing

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.oci.sink import ImageSink
    from sedis.service.pull import SealedImageSource

_ENC_PREFIX = "org.opencontainers.image.enc."
_DESCRIPTOR_ORDER = (
    "mediaType",
    "digest",
    "size",
    "urls",
    "annotations",
    "data",
    "platform",
    "artifactType",
)
_MANIFEST_ORDER = (
    "schemaVersion",
    "mediaType",
    "artifactType",
    "config",
    "layers",
    "subject",
    "annotations",
)


def load_key(path: Path, *, private: bool) -> JWK:
    """An RSA or EC key from a PEM file (skopeo's key files)."""
    from jwcrypto.jwk import JWK

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read key {path}: {exc.strerror}") from exc
    try:
        key = JWK.from_pem(data)
    except TypeError as exc:
        raise InvalidInputError(
            f"{path} is a password-protected key; give an unprotected one"
        ) from exc
    except (ValueError, Exception) as exc:
        raise InvalidInputError(f"{path} is not a PEM RSA or EC key") from exc
    if private and not key.has_private:
        raise InvalidInputError(f"{path} is a public key; decryption needs the private key")
    if key.get("kty") not in ("RSA", "EC"):
        raise InvalidInputError(f"{path}: only RSA and EC keys are supported")
    return key


def go_json(doc: dict[str, Any], order: tuple[str, ...]) -> bytes:
    """JSON as Go's encoding/json writes these OCI structs."""
    ordered = {k: doc[k] for k in order if k in doc and doc[k] not in (None, {}, [])}
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text.encode()


def _descriptor(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in _DESCRIPTOR_ORDER if k in doc and doc[k] not in (None, {}, [])}


class DecryptingSource(ImageSource):
    """An ocicrypt-encrypted image, read with a private key as its plaintext image."""

    def __init__(self, inner: ImageSource, key: JWK) -> None:
        self.reference = inner.reference
        self._inner = inner
        self._opened: dict[str, tuple[model.Descriptor, PrivateOptions, PublicOptions]] = {}
        doc = json.loads(inner.manifest.raw)
        if inner.manifest.media_type != model.OCI_MANIFEST:
            raise InvalidInputError(f"{inner.reference}: ocicrypt images have OCI manifests")
        sealed = inner.manifest.descriptors()
        plain_docs = [
            self._plain(d, j, key)
            for d, j in zip(sealed, [doc["config"], *doc["layers"]], strict=True)
        ]
        if not self._opened:
            raise InvalidInputError(f"{inner.reference} has no encrypted layers to decrypt")
        doc = {**doc, "config": plain_docs[0], "layers": plain_docs[1:]}
        raw = go_json(doc, _MANIFEST_ORDER)
        self.manifest = model.parse_manifest(
            raw, model.OCI_MANIFEST, f"{inner.reference} (decrypted)"
        )

    def _plain(self, desc: model.Descriptor, doc: dict[str, Any], key: JWK) -> dict[str, Any]:
        if not desc.encrypted:
            return _descriptor(doc)
        notes = desc.annotations
        if keywrap.KEYS_ANNOTATION not in notes:
            raise InvalidInputError(f"{self.reference}: layer {desc.digest} has no JWE-wrapped key")
        private = PrivateOptions.from_json(keywrap.unwrap(notes[keywrap.KEYS_ANNOTATION], key))
        public = PublicOptions.from_annotation(notes.get(keywrap.PUBOPTS_ANNOTATION, ""))
        plain = dict(doc)
        plain["mediaType"] = desc.media_type.removesuffix(model.ENCRYPTED_SUFFIX)
        plain["digest"] = private.digest  # CTR keeps the size; the digest is the plaintext's
        kept = {
            k: v for k, v in (doc.get("annotations") or {}).items() if not k.startswith(_ENC_PREFIX)
        }
        plain["annotations"] = kept
        self._opened[private.digest] = (desc, private, public)
        return _descriptor(plain)

    def _open_raw(self, desc: model.Descriptor) -> BinaryIO:
        opened = self._opened.get(desc.digest)
        if opened is None:
            return self._inner.open_blob(desc)
        sealed, private, public = opened

        def ciphertext() -> Iterator[bytes]:
            with self._inner.open_blob(sealed) as stream:
                while chunk := stream.read(1 << 20):
                    yield chunk

        return iter_reader(decrypt_checked(ciphertext, private, public))

    def close(self) -> None:
        self._inner.close()


def export_ocicrypt(
    source: SealedImageSource,
    share: sealing.ShareManifest,
    key: JWK,
    recipients: list[JWK],
    sink: ImageSink,
) -> model.Manifest:
    """Write the image in ocicrypt's form: encrypted layers, plaintext config."""
    plain = source.manifest
    doc = json.loads(plain.raw)
    layers = []
    for plain_desc, layer_doc, sealed in zip(
        plain.layers, doc["layers"], share.manifest.layers, strict=True
    ):
        private, public = sealing.unwrap(sealed, key)
        if private.digest != plain_desc.digest:
            raise CorruptError(f"sealed layer {sealed.digest} does not hold {plain_desc.digest}")
        out = dict(layer_doc)
        out["mediaType"] = model.to_oci_type(plain_desc.media_type) + model.ENCRYPTED_SUFFIX
        out["digest"] = sealed.digest
        out["size"] = sealed.size
        out["annotations"] = {
            **(layer_doc.get("annotations") or {}),
            keywrap.KEYS_ANNOTATION: keywrap.wrap(private.to_json(), [key, *recipients]),
            keywrap.PUBOPTS_ANNOTATION: public.annotation(),
        }
        layers.append(_descriptor(out))
        sink.put_blob(sealed, _ciphertext_stream(source, sealed))
    config = dict(doc["config"])
    config["mediaType"] = model.to_oci_type(plain.config.media_type)
    sink.put_blob(plain.config, source.open_blob(plain.config))
    manifest_doc = {
        **doc,
        "mediaType": model.OCI_MANIFEST,
        "config": _descriptor(config),
        "layers": layers,
    }
    raw = go_json(manifest_doc, _MANIFEST_ORDER)
    sink.put_manifest(raw, model.OCI_MANIFEST)
    sink.commit()
    return model.parse_manifest(raw, model.OCI_MANIFEST, "exported manifest")


def _ciphertext_stream(source: SealedImageSource, sealed: model.Descriptor) -> BinaryIO:
    return iter_reader(source.sealed_ciphertext(sealed))
