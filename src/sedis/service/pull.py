"""pull: from the ledger and the store back to a byte-identical plaintext image.

Trust flows from the ledger alone. The grant names the share manifest by hash;
the sealed plaintext manifest must hash to the image's digest; its config must
hash to the recorded config digest; every blob's ciphertext must match its
descriptor and HMAC before a byte is decrypted, and its plaintext must match
the digest the plaintext manifest gives. The destination sink writes to a
temporary place and renames into place only after all of that holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from sedis.core.access import PullDecision, check_sealed_manifest, decide_pull
from sedis.core.access import latest_status_reason as _reason
from sedis.core.errors import CorruptError, NotFoundError
from sedis.core.records import ImageRecord, Status
from sedis.oci import model
from sedis.oci.source import ImageSource
from sedis.oci.streams import iter_reader
from sedis.oci.transports import copy_image
from sedis.service import access, naming, sealing
from sedis.service.engines import Actor, Engines
from sedis.service.progress import Progress

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.oci.sink import ImageSink
    from sedis.store.base import ContentStore


@dataclass(frozen=True, slots=True)
class PullResult:
    digest: str
    config_digest: str
    layers: int
    as_owner: bool  # the actor owns the image (and needs no grant)


@dataclass(frozen=True, slots=True)
class Access:
    """What the ledger let through: the record, and the share manifest that opens it."""

    record: ImageRecord
    share: sealing.ShareManifest
    as_owner: bool


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
        manifest = model.parse_manifest(raw, None, "sealed manifest")
        sealed = (share.manifest.config, *share.manifest.layers)
        plain = manifest.descriptors()
        check_sealed_manifest(
            record, model.sha256_digest(raw), manifest.config.digest, len(plain), len(sealed)
        )
        self.manifest = manifest
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


def check_access(engines: Engines, actor: Actor, ref: str) -> Access:
    """The ledger's word on whether the actor may open ``ref``, and its share manifest."""
    ledger = engines.ledger
    digest = naming.resolve(ledger, ref)
    # One block for every answer: the status and the grant must agree.
    with ledger.pinned():
        decision = _decide(engines, actor, digest)
    record, grant = decision.record, decision.grant
    if grant is None:
        share = access.owner_view(engines, actor.address, record)
    else:
        share = access.fetch_manifest(engines.store, grant.manifest_cid, grant.manifest_hash)
    return Access(record, share, decision.as_owner)


def _decide(engines: Engines, actor: Actor, digest: str) -> PullDecision:
    ledger = engines.ledger
    record = ledger.image(digest)
    if record is None:
        raise NotFoundError(f"{digest} was never published")
    reason = _reason(ledger.status_history(digest)) if record.status is not Status.TRUSTED else ""
    grant = ledger.grant_of(digest, actor.address)
    return decide_pull(record, grant, actor.address, ledger.now(), reason)


def open_image(
    engines: Engines,
    actor: Actor,
    granted: Access,
    progress: Callable[[int], None] | None = None,
) -> SealedImageSource:
    """Open, with the actor's key, what ``check_access`` let through."""
    return SealedImageSource(
        engines.store, granted.share, actor.keys.private_key(), granted.record, progress
    )


def pull(
    engines: Engines,
    actor: Actor,
    ref: str,
    sink: ImageSink,
    *,
    progress: Progress | None = None,
) -> PullResult:
    """Fetch, check, decrypt and verify the image ``ref`` names, and write it to ``sink``,
    which puts it in place only once every byte has checked out."""
    with sink:  # a refusal leaves nothing behind at the destination
        granted = check_access(engines, actor, ref)
        source = open_image(engines, actor, granted, progress.advance if progress else None)
        if progress is not None:
            progress.start(sum(d.size for d in source.manifest.descriptors()))
        copy_image(source, sink)
    manifest = source.manifest
    return PullResult(
        manifest.digest, manifest.config.digest, len(manifest.layers), granted.as_owner
    )
