"""publish: check, scan, encrypt, store and record an image.

Every step can be re-run: keys are derived (see sealing), so sealing the same
image again gives the same CIDs; the ledger record, the grants and the tag
are each written only if the ledger does not already hold them. A publish
killed at any point completes when run again, with exactly one record.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from sedis.core.errors import ConflictError, InvalidInputError
from sedis.core.records import ScanSummary, Status
from sedis.oci import model
from sedis.oci.source import ImageSource
from sedis.service import access, layout, scanning, sealing
from sedis.service.naming import ImageName
from sedis.service.session import Session
from sedis.store.importer import Entry

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.store.cid import Cid

Progress = Callable[[int], None]


@dataclass
class PublishResult:
    digest: str
    config_digest: str
    root_cid: str
    name: str | None
    recipients: list[str] = field(default_factory=list)
    transactions: list[str] = field(default_factory=list)
    already_recorded: bool = False
    scan: ScanSummary | None = None


def publish(
    session: Session,
    source: ImageSource,
    name: ImageName | None,
    recipients: list[str],
    *,
    scan: scanning.ScanHook = scanning.skip,
    progress: Progress | None = None,
) -> PublishResult:
    manifest = source.manifest
    if any(desc.encrypted for desc in manifest.descriptors()):
        raise InvalidInputError(
            f"{source.reference} is encrypted: give --decryption-key to publish it"
        )
    digest = manifest.digest
    addresses = [session.resolve_recipient(who) for who in recipients]
    keys = {address: session.recipient_key(address) for address in addresses}
    ledger = session.ledger
    me = session.address
    result = PublishResult(digest, manifest.config.digest, "", str(name) if name else None)

    record = ledger.image(digest)
    if record is not None and record.owner.lower() != me.lower():
        raise ConflictError(f"{digest} is already published by {record.owner}")
    if record is not None and record.status is not Status.TRUSTED:
        raise ConflictError(f"{digest} is recorded but {record.status.value}")
    # A record made just now has no grants and no tag yet: nothing to look up.
    fresh = record is None
    if record is None:
        # Scan first: a refusal leaves nothing stored and nothing recorded.
        scanned = scan(source)
        root, manifest_entry, share, report_cid = _seal(
            session, source, name, list(keys.values()), scanned, progress
        )
        summary = _summary(scanned, report_cid)
        result.scan = summary
        ledger_tx = ledger.publish(digest, manifest.config.digest, str(root), summary)
        result.transactions.append(ledger_tx.tx_hash)
        result.root_cid = str(root)
        manifest_cid = str(manifest_entry)
    else:
        result.already_recorded = True
        result.scan = record.scan
        share, manifest_cid = access.root_manifest(session, record.root_cid)
        result.root_cid = record.root_cid

    share_hash = model.sha256_digest(share)
    # The owner's own grant names the owner's current share manifest.
    grantees = {address.lower(): address for address in [me, *addresses]}
    for address in grantees.values():
        if fresh or not ledger.is_granted(digest, address):
            tx = ledger.grant(digest, address, manifest_cid, share_hash)
            result.transactions.append(tx.tx_hash)
    result.recipients = addresses
    if name is not None and (fresh or ledger.resolve(name.name, name.tag) != digest):
        result.transactions.append(ledger.set_tag(name.name, name.tag, digest).tx_hash)
    return result


def _seal(
    session: Session,
    source: ImageSource,
    name: ImageName | None,
    recipients: list[JWK],
    scanned: scanning.PreShareScan | None,
    progress: Progress | None,
) -> tuple[Cid, Cid, bytes, Cid | None]:
    """Encrypt every blob into the store and add the layout.

    Returns the root, the share manifest's CID and bytes, and the sealed scan report's CID.
    """
    store = session.store
    secret = sealing.owner_secret(session.encryption_key)
    manifest = source.manifest

    def seal(digest: str, stream: BinaryIO, media_type: str) -> sealing.SealedBlob:
        private = sealing.derive_private_options(secret, digest, 0)
        return sealing.seal_blob(store, stream, media_type, private, progress)

    layers = []
    for desc in manifest.layers:
        with source.open_blob(desc, hash_aside=True) as stream:
            layers.append(seal(desc.digest, stream, sealing.sealed_type(desc.media_type)))
    with source.open_blob(manifest.config) as stream:
        config = seal(manifest.config.digest, stream, model.OCI_CONFIG_ENCRYPTED)
    source_blob = seal(manifest.digest, io.BytesIO(manifest.raw), sealing.SOURCE_MEDIA_TYPE)
    report = None
    if scanned is not None:
        report = seal(scanned.report_digest, io.BytesIO(scanned.report), sealing.REPORT_MEDIA_TYPE)
    image = sealing.SealedImage(source_blob, config, tuple(layers), 0, report)

    share = sealing.share_manifest(image, [session.public_key, *recipients])
    blobs = {b.descriptor.digest: Entry(b.cid, b.descriptor.size, b.tsize) for b in image.blobs()}
    root, manifest_entry = layout.add_layout(store, share, blobs, name.tag if name else None)
    return root.cid, manifest_entry.cid, share, report.cid if report is not None else None


def _summary(scanned: scanning.PreShareScan | None, report_cid: Cid | None) -> ScanSummary:
    if scanned is None:
        return ScanSummary.unscanned()
    c = scanned.counts
    return ScanSummary(
        critical=c["critical"],
        high=c["high"],
        medium=c["medium"],
        low=c["low"],
        unknown=c["unknown"],
        report_digest=scanned.report_digest,
        report_cid=str(report_cid),
        vulndb_digest=scanned.vulndb_digest,
    )
