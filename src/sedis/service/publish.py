"""publish: check, scan, encrypt, store and record an image.

Nothing is encrypted, scanned or sent anywhere before every blob has been
checked whole against its digest (see oci.checked): a source that lies about
a blob ends the publish with nothing stored.

Every step can be re-run: keys are derived (see sealing), so sealing the same
image again gives the same CIDs, and the ledger record is written with its
grants and tag in one transaction (the contract's multicall), all or none.
A publish killed at any point completes when run again, with exactly one
record; one that finds a record adds only the grants and tag it lacks.

A record is the publisher's own: another publisher's record of the same
digest, or its tag of the same name, is no obstacle and is left alone.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sedis.core.access import live_grants
from sedis.core.address import Address
from sedis.core.errors import ConflictError, InvalidInputError
from sedis.core.records import GrantRequest, ImageRecord, ScanSummary, Status
from sedis.oci import model
from sedis.oci.checked import CheckCancelled, CheckedBlob, CheckedImage, CheckedSource
from sedis.oci.source import ImageSource
from sedis.service import access, layout, scanning, sealing
from sedis.service.engines import Actor, Engines
from sedis.service.naming import ImageName
from sedis.store.importer import Entry

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.store.cid import Cid

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class PublishResult:
    digest: str
    config_digest: str
    root_cid: str
    name: str | None
    recipients: tuple[Address, ...] = ()
    transactions: tuple[str, ...] = ()
    already_recorded: bool = False
    scan: ScanSummary | None = None


@dataclass(frozen=True, slots=True)
class _LedgerChecks:
    """What publish learns from the ledger before it seals: whom it shares with, their
    keys, and the record an earlier run left (if any)."""

    addresses: tuple[Address, ...]
    keys: tuple[JWK, ...]
    record: ImageRecord | None


def bytes_to_process(source: ImageSource) -> int:
    """How many bytes a publish of ``source`` reads, for a progress bar: every blob is
    checked whole, then its layers are read again as they are sealed."""
    manifest = source.manifest
    return sum(d.size for d in manifest.descriptors()) + sum(d.size for d in manifest.layers)


def publish(
    engines: Engines,
    actor: Actor,
    source: ImageSource,
    *,
    name: ImageName | None = None,
    recipients: Sequence[str] = (),
    scan: scanning.ScanHook = scanning.skip,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> PublishResult:
    """Check, scan, seal, store and record ``source`` as the actor, shared with
    ``recipients`` (names the actor's directory resolves) and tagged ``name``.

    Setting ``cancel`` calls the blob checks off (CheckCancelled) within a read
    of a mebibyte; publish sets it itself when the ledger refuses, or holds a
    record already, before the checks are done.
    """
    manifest = source.manifest
    if any(desc.encrypted for desc in manifest.descriptors()):
        raise InvalidInputError(
            f"{source.reference} is encrypted: give --decryption-key to publish it"
        )
    if cancel is not None and cancel.is_set():
        # Called off already: a record found on the ledger must not get grants either.
        raise CheckCancelled(f"{source.reference}: publish was called off before it started")
    # The ledger is asked on a worker while the blobs are checked here: either
    # one's refusal calls the other off (the ledger's sets ``stop``).
    stop = cancel if cancel is not None else threading.Event()
    asked = engines.executor.submit(_ask_ledger, engines, actor, manifest.digest, recipients)
    asked.add_done_callback(lambda done: _stop_unless_new(done, stop))
    image: CheckedImage | None = None
    try:
        image = CheckedImage(
            source,
            spool_dir=engines.spool_dir,
            progress=progress,
            executor=engines.executor,
            cancel=stop,
        )
    except CheckCancelled:
        # The ledger's refusal or its record stopped the checks, or the caller did.
        if asked.exception() is None and asked.result().record is None:
            raise
    except BaseException:
        stop.set()
        asked.exception()  # the ledger's question ends before the caller goes on
        raise
    try:
        checks = asked.result()
        if checks.record is not None:
            return _complete(engines, actor, checks, manifest, name)
        assert image is not None, "the checks stop early only for a record or a refusal"
        return _publish_new(engines, actor, image, name, checks, scan, progress)
    finally:
        if image is not None:
            image.close()


def _stop_unless_new(done: Future[_LedgerChecks], stop: threading.Event) -> None:
    if done.exception() is not None or done.result().record is not None:
        stop.set()


def _ask_ledger(
    engines: Engines, actor: Actor, digest: str, recipients: Sequence[str]
) -> _LedgerChecks:
    """The checks that need no key: refused here, before anything is scanned or stored,
    when a recipient is unknown or has no usable key, or the actor's own record of the
    image can no longer change. Others' records of the same digest are no obstacle."""
    named = (actor.directory.resolve(who) for who in recipients)
    # The owner's own grant is always made; naming it as a recipient adds nothing.
    addresses = tuple(a for a in dict.fromkeys(named) if a != actor.address)
    keys = tuple(access.usable_key(engines, actor, address) for address in addresses)
    record = engines.ledger.image(actor.address, digest)
    if record is not None and record.status is not Status.TRUSTED:
        raise ConflictError(f"your record of {digest} is {record.status.value}")
    return _LedgerChecks(addresses, keys, record)


def _publish_new(
    engines: Engines,
    actor: Actor,
    image: CheckedImage,
    name: ImageName | None,
    checks: _LedgerChecks,
    scan: scanning.ScanHook,
    progress: Progress | None,
) -> PublishResult:
    manifest = image.manifest
    # Scan first: a refusal leaves nothing stored and nothing recorded.
    scanned = scan(CheckedSource(image))
    root, manifest_entry, share, report_cid = _seal(
        engines, actor, image, name, list(checks.keys), scanned, progress
    )
    summary = _summary(scanned, report_cid)
    # The owner's own grant names the owner's current share manifest.
    share_hash = model.sha256_digest(share)
    grantees = dict.fromkeys([actor.address, *checks.addresses])
    grants = [GrantRequest(a, str(manifest_entry), share_hash) for a in grantees]
    tag = (name.name, name.tag) if name is not None else None
    # The record, its grants and its tag in one transaction: all or none.
    receipt = actor.ledger.publish(
        manifest.digest, manifest.config.digest, str(root), summary, grants, tag
    )
    return PublishResult(
        manifest.digest,
        manifest.config.digest,
        str(root),
        str(name) if name else None,
        checks.addresses,
        (receipt.tx_hash,),
        False,
        summary,
    )


def _complete(
    engines: Engines,
    actor: Actor,
    checks: _LedgerChecks,
    manifest: model.Manifest,
    name: ImageName | None,
) -> PublishResult:
    """Recorded already (by an earlier run, perhaps for fewer recipients or another
    tag): add whatever of the grants and the tag is missing."""
    record = checks.record
    assert record is not None
    digest = record.digest
    ledger = engines.ledger
    transactions = []
    with ledger.pinned():
        live = {
            g.recipient for g in live_grants(ledger.grants(actor.address, digest), ledger.now())
        }
        tagged = ledger.resolve(actor.address, name.name, name.tag) if name is not None else None
    for address in dict.fromkeys([actor.address, *checks.addresses]):
        if address not in live:
            # A share manifest of its own: the recorded one wraps no keys for a
            # recipient added since (and is stale after a rotation).
            _, tx_hash = access.grant_to(engines, actor, record, address)
            transactions.append(tx_hash)
    if name is not None and tagged != digest:
        transactions.append(actor.ledger.set_tag(name.name, name.tag, digest).tx_hash)
    return PublishResult(
        digest,
        manifest.config.digest,
        record.root_cid,
        str(name) if name else None,
        checks.addresses,
        tuple(transactions),
        True,
        record.scan,
    )


def _seal(
    engines: Engines,
    actor: Actor,
    image: CheckedImage,
    name: ImageName | None,
    recipients: list[JWK],
    scanned: scanning.PreShareScan | None,
    progress: Progress | None,
) -> tuple[Cid, Cid, bytes, Cid | None]:
    """Encrypt every checked blob into the store and add the layout.

    Returns the root, the share manifest's CID and bytes, and the sealed scan report's CID.
    """
    store = engines.store
    secret = sealing.owner_secret(actor.keys.private_key())
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

    share = sealing.share_manifest(sealed, [actor.keys.public_key, *recipients])
    blobs = {b.descriptor.digest: Entry(b.cid, b.descriptor.size, b.tsize) for b in sealed.blobs()}
    root, manifest_entry = layout.add_layout(store, share, blobs, name.tag if name else None)
    return root.cid, manifest_entry.cid, share, report.cid if report is not None else None


def _summary(scanned: scanning.PreShareScan | None, report_cid: Cid | None) -> ScanSummary:
    if scanned is None:
        return ScanSummary.unscanned()
    return dataclasses.replace(scanned.summary, report_cid=str(report_cid))
