"""pull: from the ledger and the store back to a byte-identical plaintext image.

Trust flows from the ledger alone. The grant names the share manifest by hash;
the sealed plaintext manifest must hash to the image's digest; its config must
hash to the recorded config digest; every blob's ciphertext must match its
descriptor and HMAC before a byte is decrypted, and its plaintext must match
the digest the plaintext manifest gives. The destination sink writes to a
temporary place and renames into place only after all of that holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from sedis.core.errors import CorruptError, NotFoundError, PermissionDeniedError
from sedis.core.records import Grant, ImageRecord, Status
from sedis.oci import model
from sedis.oci.source import ImageSource
from sedis.oci.streams import iter_reader
from sedis.service import access, naming, sealing
from sedis.service.session import Session

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.store.base import ContentStore


class SealedImageSource(ImageSource):
    """A sealed image opened with one identity's key, read as a plaintext image."""

    def __init__(
        self,
        store: ContentStore,
        share: sealing.ShareManifest,
        key: JWK,
        record: ImageRecord,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.progress = progress
        self.reference = record.digest
        self._store = store
        self._key = key
        raw = sealing.read_sealed(store, share.source, key, model.MAX_MANIFEST_BYTES)
        if model.sha256_digest(raw) != record.digest:
            raise CorruptError(f"the sealed manifest does not match {record.digest}")
        self.manifest = model.parse_manifest(raw, None, "sealed manifest")
        if self.manifest.config.digest != record.config_digest:
            raise CorruptError(f"the config of {record.digest} does not match the ledger")
        sealed = (share.manifest.config, *share.manifest.layers)
        plain = self.manifest.descriptors()
        if len(sealed) != len(plain):
            raise CorruptError(f"the share manifest of {record.digest} has the wrong blobs")
        self._sealed = {p.digest: s for p, s in zip(plain, sealed, strict=True)}

    def sealed_ciphertext(self, sealed: model.Descriptor) -> Iterator[bytes]:
        """A sealed blob's ciphertext as stored (the sink checks it against ``sealed``)."""
        return self._store.cat(str(sealing.blob_cid(sealed)))

    def _open_raw(self, desc: model.Descriptor) -> BinaryIO:
        sealed = self._sealed.get(desc.digest)
        if sealed is None:
            raise NotFoundError(f"{desc.digest} is not a blob of {self.reference}")
        private, public = sealing.unwrap(sealed, self._key)
        if private.digest != desc.digest:
            raise CorruptError(f"sealed blob {sealed.digest} does not hold {desc.digest}")
        # The ImageSource wrapper checks the plaintext against desc.digest (== private.digest).
        plain = sealing.open_sealed(self._store, sealed, private, public, check_digest=False)
        return iter_reader(self._counted(plain))

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self.progress is not None:
                self.progress(len(chunk))
            yield chunk


def check_access(session: Session, ref: str) -> tuple[ImageRecord, sealing.ShareManifest]:
    """The ledger's word on whether the acting identity may pull, and its share manifest."""
    ledger = session.reader
    # One block for every answer: the status and the grant must agree.
    with ledger.pinned():
        record, grant = _record_and_grant(session, ref)
    if grant is None:
        return record, access.owner_view(session, record)
    return record, access.fetch_manifest(session, grant.manifest_cid, grant.manifest_hash)


def _record_and_grant(session: Session, ref: str) -> tuple[ImageRecord, Grant | None]:
    """The record of a pullable image and the live grant to the acting identity (None: its
    owner, who needs none)."""
    ledger = session.reader
    digest = naming.resolve(ledger, ref)
    record = ledger.image(digest)
    if record is None:
        raise NotFoundError(f"{digest} was never published")
    status = record.status
    if status is not Status.TRUSTED:
        history = ledger.status_history(digest)
        reason = history[-1].reason if history else ""
        raise PermissionDeniedError(f"{digest} is {status.value}: {reason}".rstrip(": "))
    me = session.address
    grant = ledger.grant_of(digest, me)
    if grant is None or grant.revoked_at is not None:
        if record.owner.lower() == me.lower():
            return record, None
        raise PermissionDeniedError(f"{me} has no grant to {digest}")
    if not ledger.is_granted(digest, me):
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(grant.expires_at or 0))
        raise PermissionDeniedError(f"the grant of {digest} to {me} expired at {when}")
    return record, grant


def open_image(
    session: Session, ref: str, progress: Callable[[int], None] | None = None
) -> SealedImageSource:
    record, share = check_access(session, ref)
    return open_checked(session, record, share, progress)


def open_checked(
    session: Session,
    record: ImageRecord,
    share: sealing.ShareManifest,
    progress: Callable[[int], None] | None = None,
) -> SealedImageSource:
    """Open, with the acting identity's key, what check_access let through."""
    return SealedImageSource(session.store, share, session.encryption_key, record, progress)
