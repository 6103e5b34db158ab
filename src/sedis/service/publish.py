"""publish: check, scan, encrypt, store and record an image.

Nothing is encrypted, scanned or sent anywhere before every blob has been
checked whole against its digest (see oci.checked): a source that lies about
a blob ends the publish with nothing stored.

Every step can be re-run: keys are derived (see sealing), so sealing the same
image again gives the same CIDs, and the ledger record is written with its
grants and tag in one transaction (the contract's multicall), all or none.
A publish killed at any point completes when run again, with exactly one
record; one that finds a record adds only the grants and tag it lacks.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sedis.core.errors import ConflictError, InvalidInputError
from sedis.core.records import GrantRequest, ImageRecord, ScanSummary, Status
from sedis.oci import model
from sedis.oci.checked import CheckedBlob, CheckedImage, CheckedSource
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


@dataclass(frozen=True, slots=True)
class Checked:
    """What publish learns before it needs a key: whom it shares with, and the record."""

    addresses: list[str]
    keys: dict[str, JWK]  # each recipient's public encryption key, from the key directory
    record: ImageRecord | None  # an earlier run's, when there was one
    # Every blob checked whole, when the source's blobs are local files and
    # nothing is recorded yet (a remote source is checked as it is fetched,
    # in publish_checked, where its progress can be shown).
    image: CheckedImage | None = None

    def close(self) -> None:
        if self.image is not None:
            self.image.close()

    def with_blobs(self, image: CheckedImage | None) -> Checked:
        """These checks with ``image``'s checked blobs, if there is still something to seal."""
        if image is None or self.record is not None:
            if image is not None:
                image.close()
            return self
        self.close()
        return dataclasses.replace(self, image=image)


def check(session: Session, source: ImageSource, recipients: list[str]) -> Checked:
    """The checks that need no key: the CLI runs them while the keys unlock.

    Publish_checked takes over what this returns (with any checked blobs, see
    ``Checked.with_blobs``), and closes it; a caller that does not go on
    closes it itself."""
    manifest = source.manifest
    if any(desc.encrypted for desc in manifest.descriptors()):
        raise InvalidInputError(
            f"{source.reference} is encrypted: give --decryption-key to publish it"
        )
    addresses = [session.resolve_recipient(who) for who in recipients]
    # Refused here, before anything is hashed, scanned or stored, when no
    # share manifest could be wrapped for a recipient's registered key.
    keys = {address: access.usable_key(session, address) for address in addresses}
    record = session.reader.image(manifest.digest)
    if record is not None and record.owner.lower() != session.address.lower():
        raise ConflictError(f"{manifest.digest} is already published by {record.owner}")
    if record is not None and record.status is not Status.TRUSTED:
        raise ConflictError(f"{manifest.digest} is recorded but {record.status.value}")
    return Checked(addresses, keys, record)


def check_local_blobs(
    session: Session, source: ImageSource, cancel: threading.Event | None = None
) -> CheckedImage | None:
    """Every blob checked whole, when all of them are local files (they need no
    key, so the CLI checks them while the keys unlock); None for a remote source,
    which publish checks as it fetches it. Setting ``cancel`` calls the checks
    off (CheckCancelled) within a read of a mebibyte."""
    if not all(source.blob_file(d) is not None for d in source.manifest.layers):
        return None
    # One thread: this runs beside scrypt and the code loading.
    return CheckedImage(source, spool_dir=_spool_dir(session), threads=1, cancel=cancel)


def _spool_dir(session: Session) -> Path:
    return session.settings.home / "tmp"


def publish(
    session: Session,
    source: ImageSource,
    name: ImageName | None,
    recipients: list[str],
    *,
    scan: scanning.ScanHook = scanning.skip,
    progress: Progress | None = None,
) -> PublishResult:
    checked = check(session, source, recipients)
    try:
        return publish_checked(session, source, name, checked, scan=scan, progress=progress)
    finally:
        checked.close()


def publish_checked(
    session: Session,
    source: ImageSource,
    name: ImageName | None,
    checked: Checked,
    *,
    scan: scanning.ScanHook = scanning.skip,
    progress: Progress | None = None,
) -> PublishResult:
    """Publish what ``check`` passed (for these recipients, from this source);
    closes ``checked``."""
    manifest = source.manifest
    digest = manifest.digest
    addresses, record = checked.addresses, checked.record
    ledger = session.ledger
    me = session.address
    result = PublishResult(digest, manifest.config.digest, "", str(name) if name else None)
    # The owner's own grant names the owner's current share manifest.
    grantees = list({address.lower(): address for address in [me, *addresses]}.values())
    result.recipients = addresses
    if record is None:
        # Every blob is checked whole before anything reads it for the scan or
        # for sealing: nothing is encrypted before it is checked (oci.checked).
        checking = checked.image or CheckedImage(
            source, spool_dir=_spool_dir(session), progress=progress
        )
        with checking as image:
            # Scan next: a refusal leaves nothing stored and nothing recorded.
            scanned = scan(CheckedSource(image))
            root, manifest_entry, share, report_cid = _seal(
                session, image, name, list(checked.keys.values()), scanned, progress
            )
        result.scan = _summary(scanned, report_cid)
        result.root_cid = str(root)
        # The record, its grants and its tag in one transaction: all or none.
        share_hash = model.sha256_digest(share)
        grants = [GrantRequest(a, str(manifest_entry), share_hash) for a in grantees]
        tag = (name.name, name.tag) if name is not None else None
        receipt = ledger.publish_shared(
            digest, manifest.config.digest, str(root), result.scan, grants, tag
        )
        result.transactions.append(receipt.tx_hash)
        return result

    # Recorded already (by an earlier run, perhaps for fewer recipients or
    # another tag): add whatever of the grants and the tag is missing.
    result.already_recorded = True
    result.scan = record.scan
    result.root_cid = record.root_cid
    for address in grantees:
        if not ledger.is_granted(digest, address):
            # A share manifest of its own: the recorded one wraps no keys for a
            # recipient added since (and is stale after a rotation).
            _, tx_hash = access.grant_to(session, record, address)
            result.transactions.append(tx_hash)
    if name is not None and ledger.resolve(name.name, name.tag) != digest:
        result.transactions.append(ledger.set_tag(name.name, name.tag, digest).tx_hash)
    return result


def _seal(
    session: Session,
    image: CheckedImage,
    name: ImageName | None,
    recipients: list[JWK],
    scanned: scanning.PreShareScan | None,
    progress: Progress | None,
) -> tuple[Cid, Cid, bytes, Cid | None]:
    """Encrypt every checked blob into the store and add the layout.

    Returns the root, the share manifest's CID and bytes, and the sealed scan report's CID.
    """
    store = session.store
    secret = sealing.owner_secret(session.encryption_key)
    manifest = image.manifest

    def seal(blob: CheckedBlob, media_type: str) -> sealing.SealedBlob:
        private = sealing.derive_private_options(secret, blob, 0)
        return sealing.seal_blob(store, blob, media_type, private, progress)

    layers = [
        seal(image.blob(desc), sealing.sealed_type(desc.media_type)) for desc in manifest.layers
    ]
    config = seal(image.blob(manifest.config), model.OCI_CONFIG_ENCRYPTED)
    plain_manifest = CheckedBlob.of_bytes(manifest.raw, manifest.media_type)
    source_blob = seal(plain_manifest, sealing.SOURCE_MEDIA_TYPE)
    report = None
    if scanned is not None:
        report_blob = CheckedBlob.of_bytes(scanned.report, "application/vnd.cyclonedx+json")
        if report_blob.digest != scanned.summary.report_digest:
            raise InvalidInputError("the scan report does not match the digest the scan gave")
        report = seal(report_blob, sealing.REPORT_MEDIA_TYPE)
    sealed = sealing.SealedImage(source_blob, config, tuple(layers), 0, report)

    share = sealing.share_manifest(sealed, [session.public_key, *recipients])
    blobs = {b.descriptor.digest: Entry(b.cid, b.descriptor.size, b.tsize) for b in sealed.blobs()}
    root, manifest_entry = layout.add_layout(store, share, blobs, name.tag if name else None)
    return root.cid, manifest_entry.cid, share, report.cid if report is not None else None


def _summary(scanned: scanning.PreShareScan | None, report_cid: Cid | None) -> ScanSummary:
    if scanned is None:
        return ScanSummary.unscanned()
    return dataclasses.replace(scanned.summary, report_cid=str(report_cid))
