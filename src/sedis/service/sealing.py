"""The sealed image: how sedis encrypts an image into the content store.

Every blob of the plaintext image (each layer, the config, and the plaintext
manifest itself) is encrypted with ocicrypt's layer cipher and added to the
store once. A *share manifest* (an OCI image manifest whose descriptors carry
``+encrypted`` media types, ``urls: ["ipfs://CID"]`` and ocicrypt's
annotations) wraps every blob's key for a set of recipients. Sharing writes a
new share manifest; the blobs stay as they are.

The plaintext manifest is sealed too, and referenced from the share manifest's
annotations: it names the plaintext layers, and pull checks its digest against
the ledger record before trusting anything it says.

Keys are derived, not drawn: HKDF over the owner's private key, the blob's
plaintext digest and a key epoch. Re-running an interrupted publish therefore
produces the same ciphertext, CIDs and root, and `unshare --rotate` moves to a
new epoch, so old key material opens nothing new.

What makes a derived key safe is what binds it: a key and nonce derived from
a digest encrypt only the bytes that hash to that digest. So a key is derived
only for a ``CheckedBlob`` (whose bytes were checked whole against the digest
before: see oci.checked), and only those checked bytes are ever encrypted with
it. Two different plaintexts would need two different digests, which give
two different keys; the same plaintext under the same key gives the same
ciphertext, which tells nobody anything new.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from sedis.core.errors import CorruptError, InvalidInputError
from sedis.crypto import keywrap
from sedis.crypto.layer_cipher import (
    KEY_SIZE,
    NONCE_SIZE,
    LayerEncryptor,
    PrivateOptions,
    PublicOptions,
    decrypt_checked,
)
from sedis.oci import model
from sedis.store.base import RereadsWithoutHashing

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.oci.checked import CheckedBlob
    from sedis.store.base import ContentStore
    from sedis.store.cid import Cid

READ_SIZE = 1024 * 1024
SOURCE_PREFIX = "io.sedis.source-manifest"
REPORT_PREFIX = "io.sedis.scan-report"
EPOCH_ANNOTATION = "io.sedis.key-epoch"
SOURCE_MEDIA_TYPE = "application/vnd.sedis.source-manifest.v1+json+encrypted"
REPORT_MEDIA_TYPE = "application/vnd.cyclonedx+json+encrypted"


@dataclass(frozen=True, slots=True)
class SealedBlob:
    """One encrypted blob in the store, and what it takes to open it."""

    descriptor: model.Descriptor  # of the ciphertext: +encrypted type, urls, no keys yet
    private: PrivateOptions
    public: PublicOptions
    cid: Cid
    tsize: int


def derive_private_options(secret: bytes, blob: CheckedBlob, epoch: int) -> PrivateOptions:
    """The key and nonce for ``blob`` at ``epoch``, from its checked digest."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    material = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE + NONCE_SIZE,
        salt=b"sedis sealed blob v1",
        info=f"{blob.digest}|epoch={epoch}".encode(),
    ).derive(secret)
    return PrivateOptions(material[:KEY_SIZE], blob.digest, material[KEY_SIZE:])


def owner_secret(private_key: JWK) -> bytes:
    """Key-derivation input from the owner's private encryption key (its 'd')."""
    exported = json.loads(private_key.export_private())
    return hashlib.sha256(b"sedis owner secret v1|" + exported["d"].encode()).digest()


class _EncryptingReader:
    """A read()-able stream of ciphertext over a plaintext stream."""

    def __init__(
        self, plaintext: BinaryIO, encryptor: LayerEncryptor, progress: Callable[[int], None] | None
    ) -> None:
        self._plain = plaintext
        self._enc = encryptor
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        chunk = self._plain.read(size if size > 0 else READ_SIZE)
        if chunk and self._progress is not None:
            self._progress(len(chunk))
        return self._enc.update(chunk) if chunk else b""


def seal_blob(
    store: ContentStore,
    blob: CheckedBlob,
    sealed_media_type: str,
    private: PrivateOptions,
    progress: Callable[[int], None] | None = None,
) -> SealedBlob:
    """Encrypt one checked blob straight into the store, which sees only ciphertext.

    ``private`` must be for this blob's checked digest (derived from it, or
    drawn at random for it): it encrypts the checked bytes and nothing else."""
    if private.digest != blob.digest:
        raise ValueError(f"the key for {private.digest} cannot seal {blob.digest}")
    encryptor = LayerEncryptor(private)
    with blob.open() as plaintext:
        reader: Any = _EncryptingReader(plaintext, encryptor, progress)
        entry = store.add_stream(reader, pin=False)
    if encryptor.size != blob.descriptor.size:
        raise CorruptError(
            f"blob {blob.digest} gave {encryptor.size} bytes, not the "
            f"{blob.descriptor.size} that were checked"
        )
    public, digest = encryptor.finish()
    descriptor = model.Descriptor(
        media_type=sealed_media_type,
        digest=digest,
        size=encryptor.size,
        urls=(f"ipfs://{entry.cid}",),
    )
    return SealedBlob(descriptor, private, public, entry.cid, entry.tsize)


def sealed_type(plain_type: str) -> str:
    if plain_type in model.CONFIG_TYPES:
        return model.OCI_CONFIG_ENCRYPTED
    return model.to_oci_type(plain_type) + model.ENCRYPTED_SUFFIX


def wrap_for(blob: SealedBlob, recipients: list[JWK]) -> dict[str, str]:
    """The ocicrypt annotations that open ``blob`` for ``recipients``."""
    return _annotations(blob, recipients)


def _annotations(blob: SealedBlob, recipients: list[JWK]) -> dict[str, str]:
    return {
        keywrap.KEYS_ANNOTATION: keywrap.wrap(blob.private.to_json(), recipients),
        keywrap.PUBOPTS_ANNOTATION: blob.public.annotation(),
    }


@dataclass(frozen=True, slots=True)
class SealedImage:
    """Every sealed blob of one image at one key epoch."""

    source: SealedBlob
    config: SealedBlob
    layers: tuple[SealedBlob, ...]
    epoch: int
    report: SealedBlob | None = None  # the CycloneDX scan report made at publish

    def blobs(self) -> tuple[SealedBlob, ...]:
        extra = (self.report,) if self.report is not None else ()
        return (*self.layers, self.config, self.source, *extra)


def share_manifest(image: SealedImage, recipients: list[JWK]) -> bytes:
    """The OCI manifest that opens this image for ``recipients`` (owner included)."""

    def described(blob: SealedBlob) -> dict[str, Any]:
        doc = blob.descriptor.to_json()
        doc["annotations"] = _annotations(blob, recipients)
        return doc

    annotations = {EPOCH_ANNOTATION: str(image.epoch)}
    annotations.update(_flat(SOURCE_PREFIX, image.source, recipients))
    if image.report is not None:
        annotations.update(_flat(REPORT_PREFIX, image.report, recipients))
    doc = {
        "schemaVersion": 2,
        "mediaType": model.OCI_MANIFEST,
        "config": described(image.config),
        "layers": [described(layer) for layer in image.layers],
        "annotations": annotations,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _flat(prefix: str, blob: SealedBlob, recipients: list[JWK]) -> dict[str, str]:
    """A sealed blob as flat manifest annotations (annotation values are strings)."""
    keys = _annotations(blob, recipients)
    return {
        f"{prefix}.digest": blob.descriptor.digest,
        f"{prefix}.size": str(blob.descriptor.size),
        f"{prefix}.url": blob.descriptor.urls[0],
        f"{prefix}.keys.jwe": keys[keywrap.KEYS_ANNOTATION],
        f"{prefix}.pubopts": keys[keywrap.PUBOPTS_ANNOTATION],
    }


def _unflat(prefix: str, media_type: str, notes: Mapping[str, str]) -> model.Descriptor:
    return model.Descriptor(
        media_type=media_type,
        digest=model.check_digest(notes[f"{prefix}.digest"]),
        size=int(notes[f"{prefix}.size"]),
        urls=(notes[f"{prefix}.url"],),
        annotations={
            keywrap.KEYS_ANNOTATION: notes[f"{prefix}.keys.jwe"],
            keywrap.PUBOPTS_ANNOTATION: notes[f"{prefix}.pubopts"],
        },
    )


@dataclass(frozen=True, slots=True)
class ShareManifest:
    """A parsed share manifest: every sealed blob with its annotations."""

    manifest: model.Manifest
    source: model.Descriptor
    epoch: int
    report: model.Descriptor | None = None

    @property
    def raw(self) -> bytes:
        return self.manifest.raw


def parse_share_manifest(raw: bytes) -> ShareManifest:
    manifest = model.parse_manifest(raw, model.OCI_MANIFEST, "share manifest")
    notes = manifest.annotations
    try:
        source = _unflat(SOURCE_PREFIX, SOURCE_MEDIA_TYPE, notes)
        report = (
            _unflat(REPORT_PREFIX, REPORT_MEDIA_TYPE, notes)
            if f"{REPORT_PREFIX}.digest" in notes
            else None
        )
        epoch = int(notes.get(EPOCH_ANNOTATION, "0"))
    except (KeyError, ValueError) as exc:
        raise InvalidInputError(f"share manifest lacks a sealed blob's annotations: {exc}") from exc
    extra = (source,) if report is None else (source, report)
    for desc in (*manifest.descriptors(), *extra):
        if not desc.encrypted:
            raise InvalidInputError(f"share manifest holds a plaintext blob {desc.digest}")
        blob_cid(desc)
        for key in (keywrap.KEYS_ANNOTATION, keywrap.PUBOPTS_ANNOTATION):
            if key not in desc.annotations:
                raise InvalidInputError(f"sealed blob {desc.digest} has no {key} annotation")
    return ShareManifest(manifest, source, epoch, report)


def open_share(share: ShareManifest, key: JWK) -> SealedImage:
    """Unwrap every blob's options with ``key`` (for re-wrapping them for others)."""

    def sealed(desc: model.Descriptor) -> SealedBlob:
        private, public = unwrap(desc, key)
        bare = model.Descriptor(desc.media_type, desc.digest, desc.size, urls=desc.urls)
        return SealedBlob(bare, private, public, blob_cid(desc), desc.size)

    manifest = share.manifest
    return SealedImage(
        sealed(share.source),
        sealed(manifest.config),
        tuple(sealed(layer) for layer in manifest.layers),
        share.epoch,
        sealed(share.report) if share.report is not None else None,
    )


def blob_cid(desc: model.Descriptor) -> Cid:
    from sedis.store.cid import Cid

    urls = [u for u in desc.urls if u.startswith("ipfs://")]
    if len(urls) != 1:
        raise InvalidInputError(f"sealed blob {desc.digest} has no single ipfs:// url")
    return Cid.parse(urls[0].removeprefix("ipfs://"))


def unwrap(desc: model.Descriptor, key: JWK) -> tuple[PrivateOptions, PublicOptions]:
    private = PrivateOptions.from_json(
        keywrap.unwrap(desc.annotations[keywrap.KEYS_ANNOTATION], key)
    )
    public = PublicOptions.from_annotation(desc.annotations[keywrap.PUBOPTS_ANNOTATION])
    return private, public


def open_sealed(
    store: ContentStore,
    desc: model.Descriptor,
    private: PrivateOptions,
    public: PublicOptions,
    *,
    check_digest: bool = True,
    hashed_reread: bool = False,
) -> Iterator[bytes]:
    """Verified plaintext of one sealed blob.

    Pass one reads the ciphertext, every block checked against its CID, and
    checks its size and HMAC; only then does pass two decrypt. The ciphertext
    is not hashed again here: the blob's CID comes from the same authenticated
    manifest as its digest, so the CID pins the bytes. Pass two reads them
    again without re-hashing where the store can (``RereadsWithoutHashing``): any change
    in between changes the plaintext, whose digest is checked at the end
    (by the caller, when it says so) before any output is renamed into place.
    ``hashed_reread`` checks every block against its CID on pass two as well,
    for a caller that encrypts what it reads (a rotation), where any change in
    between must not reach a key.
    """
    cid = str(blob_cid(desc))
    reread = store.reread if isinstance(store, RereadsWithoutHashing) else store.cat

    def ciphertext(again: bool = False) -> Iterator[bytes]:
        size = 0
        for piece in reread(cid) if again else store.cat(cid):
            size += len(piece)
            if size > desc.size:
                raise CorruptError(f"sealed blob {desc.digest} is larger than its descriptor says")
            yield piece
        if size != desc.size:
            raise CorruptError(f"sealed blob {desc.digest} is smaller than its descriptor says")

    return decrypt_checked(
        ciphertext,
        private,
        public,
        check_digest=check_digest,
        reopen=None if hashed_reread else lambda: ciphertext(True),
    )


def read_sealed(store: ContentStore, desc: model.Descriptor, key: JWK, limit: int) -> bytes:
    """A small sealed blob (a manifest or config), whole, verified."""
    if desc.size > limit + 64:
        raise InvalidInputError(f"sealed blob {desc.digest} is larger than {limit} bytes")
    private, public = unwrap(desc, key)
    return b"".join(open_sealed(store, desc, private, public))


def encode_recipient_key(key_bytes: bytes) -> JWK:
    """A recipient's public JWK from the key directory's bytes."""
    from jwcrypto.jwk import JWK

    try:
        doc = json.loads(key_bytes)
        key = JWK(**doc)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("a registered encryption key is not a valid JWK") from exc
    if key.has_private:
        raise InvalidInputError("a registered encryption key must be public")
    return key
