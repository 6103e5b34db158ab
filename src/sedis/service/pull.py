"""pull: from the ledger and the store back to a byte-identical plaintext image.

Trust flows from the ledger alone, under a trust policy: the image must be
TRUSTED, and the record opened one that counted for it. The grant names the share manifest by hash;
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
from sedis.core.address import Address
from sedis.core.errors import CorruptError, NotFoundError, PermissionDeniedError
from sedis.core.policy import Evaluation, TrustPolicy
from sedis.core.records import ImageRecord, Status
from sedis.oci import model
from sedis.oci.source import ImageSource
from sedis.oci.streams import iter_reader
from sedis.oci.transports import copy_image
from sedis.service import access, sealing, trust
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
    as_owner: bool  # the actor published the record it opened (and needs no grant)
    publisher: Address  # whose record of the image was opened


@dataclass(frozen=True, slots=True)
class Access:
    """What the ledger let through: the record, and the share manifest that opens it."""

    record: ImageRecord
    share: sealing.ShareManifest
    as_owner: bool

    @property
    def publisher(self) -> Address:
        return self.record.publisher


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


def check_access(
    engines: Engines,
    actor: Actor,
    ref: str,
    policy: TrustPolicy,
    publisher: Address | None = None,
) -> Access:
    """The ledger's word, under ``policy``, on whether the actor may open ``ref``, and the
    share manifest that opens it.

    The image must be TRUSTED under the policy, and the record opened one that
    counted for that verdict: the actor's own, else one it holds a live grant
    of (``publisher`` picks whose).
    """
    ledger = engines.ledger
    # One block for every answer: the name, the verdict and the grants must agree.
    with ledger.pinned():
        digest = trust.resolve(engines, policy, ref, publisher).digest
        evaluation = trust.judge(engines, policy, digest, trust.names_of(ref))
        decision = _decide(engines, actor, evaluation, policy, publisher)
    record, grant = decision.record, decision.grant
    if grant is None:
        share = access.owner_view(engines, actor.address, record)
    else:
        share = access.fetch_manifest(engines.store, grant.manifest_cid, grant.manifest_hash)
    return Access(record, share, decision.as_owner)


def _decide(
    engines: Engines,
    actor: Actor,
    evaluation: Evaluation,
    policy: TrustPolicy,
    publisher: Address | None,
) -> PullDecision:
    digest = evaluation.digest
    if not evaluation.evidence:
        raise NotFoundError(f"{digest} was never published")
    if evaluation.status is not Status.TRUSTED:
        raise PermissionDeniedError(
            f"{digest} is {evaluation.status.value} under {policy.source}: {evaluation.reason}"
        )
    counted = list(evaluation.counted)
    if publisher is not None:
        if publisher not in counted:
            raise PermissionDeniedError(
                f"{publisher}'s record of {digest} does not count under {policy.source}"
                + (f" (the records of {', '.join(map(str, counted))} do)" if counted else "")
            )
        counted = [publisher]
    # The actor's own record first: it needs no grant.
    counted.sort(key=lambda who: who != actor.address)
    ledger = engines.ledger
    now = ledger.now()
    refusals: list[PermissionDeniedError] = []
    for who in counted:
        record = evaluation.record_of(who)
        if record is None:
            continue
        grant = None if who == actor.address else ledger.grant_of(who, digest, actor.address)
        try:
            return decide_pull(record, grant, actor.address, now)
        except PermissionDeniedError as exc:
            refusals.append(exc)
    if len(refusals) == 1:
        raise refusals[0]
    whose = ", ".join(map(str, counted))
    raise PermissionDeniedError(
        f"{actor.address} holds no live grant of a record of {digest} that counts "
        f"(the records of {whose})"
    )


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
    policy: TrustPolicy,
    publisher: Address | None = None,
    progress: Progress | None = None,
) -> PullResult:
    """Fetch, check, decrypt and verify the image ``ref`` names, if TRUSTED under
    ``policy``, and write it to ``sink``, which puts it in place only once every byte
    has checked out."""
    with sink:  # a refusal leaves nothing behind at the destination
        granted = check_access(engines, actor, ref, policy, publisher)
        source = open_image(engines, actor, granted, progress.advance if progress else None)
        if progress is not None:
            progress.start(sum(d.size for d in source.manifest.descriptors()))
        copy_image(source, sink)
    manifest = source.manifest
    return PullResult(
        manifest.digest,
        manifest.config.digest,
        len(manifest.layers),
        granted.as_owner,
        granted.publisher,
    )
