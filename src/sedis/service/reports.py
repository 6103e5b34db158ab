"""read_report: a record's sealed scan report, opened for one who may read it.

The report made at publish is sealed into the image beside its other blobs,
its keys wrapped in every share manifest of the record; a rescan's report is
sealed for the record's readers of the day and named by its scan envelope.
Either opens only with a key it was wrapped for, and only for the record's
publisher or a live grantee: a grant revoked or lapsed opens nothing here,
whatever keys its holder kept.

Nothing of a report is returned before all of it checks out: the ciphertext
whole (its size, then its HMAC) before a byte is decrypted, and the plaintext
against the digest on the ledger (the record's, or the scan attestation's).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sedis.core.address import Address
from sedis.core.errors import (
    AuthError,
    CorruptError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SedisError,
)
from sedis.core.policy import TrustPolicy
from sedis.core.records import ImageRecord
from sedis.oci import model
from sedis.service import access, query, sealing, trust
from sedis.service.engines import Actor, Engines

CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
MAX_REPORT_BYTES = 64 * 1024 * 1024
PUBLISH_SCAN = 0  # the scan made at publish; rescans follow it from 1, as inspect lists them


@dataclass(frozen=True, slots=True)
class ScanReportDocument:
    """One scan's report, opened and checked: its bytes and what the ledger says of it."""

    digest: str  # the image's
    publisher: Address  # whose record it is a report on
    scan: int  # its place in the record's scan history (0: the scan made at publish)
    kind: str  # "publish" or "rescan"
    by: Address  # who scanned
    media_type: str
    report_digest: str  # the sha256 of ``content``, as the ledger holds it
    content: bytes

    @property
    def filename(self) -> str:
        """A file name for the report, made of hex digits only."""
        return f"sedis-{model.digest_hex(self.digest)[:16]}-scan{self.scan}.cdx.json"


@dataclass(frozen=True, slots=True)
class ScanOnLedger:
    """What the ledger says of one scan of a record: who made it, and its report's digest."""

    record: ImageRecord
    scan: int
    kind: str
    by: Address
    report_digest: str
    envelope_cid: str | None  # a rescan's envelope, which names its sealed report


def report_record(
    engines: Engines, ref: str, *, policy: TrustPolicy, publisher: Address | None = None
) -> ImageRecord:
    """The record whose reports ``ref`` means: ``publisher``'s, else the one ``inspect``
    shows whole (the publisher a name resolved to, else one the policy counted)."""
    with engines.ledger.pinned():
        named = trust.resolve(engines, policy, ref, publisher)
        evaluation = trust.judge(engines, policy, named.digest, trust.names_of(ref))
        return query.chosen_record(evaluation, publisher or named.publisher)


def scan_on_ledger(engines: Engines, record: ImageRecord, scan: int = PUBLISH_SCAN) -> ScanOnLedger:
    """The ``scan``-th scan of ``record``; NotFoundError when it has no such scan, or
    none with a report."""
    # Imported here, as inspect does: it brings the decryption stack.
    from sedis.service.rescan import SCAN_KIND

    if scan == PUBLISH_SCAN:
        summary = record.scan
        if summary.not_scanned or summary.report_digest is None:
            raise NotFoundError(
                f"{record.digest} was published by {record.publisher} without a scan, "
                "so it has no scan report"
            )
        return ScanOnLedger(record, scan, "publish", record.publisher, summary.report_digest, None)
    if scan < 0:
        raise InvalidInputError(f"scan: a scan's number is 0 or more, not {scan}")
    rescans = [
        a
        for a in engines.ledger.attestations(record.publisher, record.digest)
        if a.kind == SCAN_KIND
    ]
    if scan > len(rescans):
        raise NotFoundError(
            f"{record.publisher}'s record of {record.digest} has no scan {scan}: scan 0 is "
            f"the one made at publish, and {len(rescans)} rescans follow it"
        )
    attestation = rescans[scan - 1]
    if not attestation.cid:
        raise NotFoundError(f"scan {scan} of {record.digest} names no scan envelope")
    return ScanOnLedger(
        record, scan, "rescan", attestation.attester, attestation.payload_hash, attestation.cid
    )


def may_read(engines: Engines, record: ImageRecord, who: Address) -> bool:
    """Whether ``who`` may read the record's reports now: its publisher, or the holder of a
    grant of it that is neither revoked nor lapsed."""
    if who == record.publisher:
        return True
    ledger = engines.ledger
    with ledger.pinned():
        grant = ledger.grant_of(record.publisher, record.digest, who)
        return grant is not None and grant.active_at(ledger.now())


def check_reader(engines: Engines, record: ImageRecord, who: Address) -> None:
    """PermissionDeniedError unless ``who`` may read the record's reports (``may_read``)."""
    if not may_read(engines, record, who):
        raise PermissionDeniedError(
            f"{who} neither published {record.digest} nor holds a live grant of "
            f"{record.publisher}'s record of it, so its sealed scan reports are not for {who}"
        )


def read_report(
    engines: Engines,
    actor: Actor,
    ref: str,
    *,
    policy: TrustPolicy,
    publisher: Address | None = None,
    scan: int = PUBLISH_SCAN,
) -> ScanReportDocument:
    """The report of the ``scan``-th scan (0: the one made at publish) of the record ``ref``
    means (``publisher``'s, else the one ``inspect`` shows), opened with the actor's key,
    if the actor is its publisher or a live grantee, and checked against the ledger."""
    ledger = engines.ledger
    # One block for every answer: the record, the scan and the grant must agree.
    with ledger.pinned():
        record = report_record(engines, ref, policy=policy, publisher=publisher)
        found = scan_on_ledger(engines, record, scan)
        check_reader(engines, record, actor.address)
        if found.envelope_cid is None:
            sealed = _publish_report(engines, actor, record)
        else:
            sealed = _rescan_report(engines, found.envelope_cid, record, scan)
    content = _open(engines, actor, found, sealed)
    return ScanReportDocument(
        record.digest,
        record.publisher,
        scan,
        found.kind,
        found.by,
        CYCLONEDX_JSON,
        found.report_digest,
        content,
    )


def _publish_report(engines: Engines, actor: Actor, record: ImageRecord) -> model.Descriptor:
    """The sealed report of the scan made at publish, as the share manifest that opens the
    record for the actor (its own, or its grant's) describes it now."""
    if record.publisher == actor.address:
        share = access.owner_view(engines, actor.address, record)
    else:
        grant = engines.ledger.grant_of(record.publisher, record.digest, actor.address)
        if grant is None:  # check_reader saw it, in the same block
            raise PermissionDeniedError(f"{actor.address} holds no grant of {record.digest}")
        share = access.fetch_manifest(engines.store, grant.manifest_cid, grant.manifest_hash)
    if share.report is None:
        raise CorruptError(
            f"the share manifest of {record.digest} holds no sealed scan report, "
            "though the ledger records one"
        )
    return share.report


def _rescan_report(
    engines: Engines, envelope_cid: str, record: ImageRecord, scan: int
) -> model.Descriptor:
    """The sealed report that a rescan's envelope names."""
    from sedis.service.rescan import read_envelope

    envelope = read_envelope(engines.store, envelope_cid)
    if envelope.get("image") != record.digest:
        raise CorruptError(
            f"the envelope of scan {scan} is about another image than {record.digest}"
        )
    return _descriptor(envelope.get("report"), f"the sealed report of scan {scan}")


def _descriptor(raw: Any, what: str) -> model.Descriptor:
    """A sealed report's descriptor, as a scan envelope writes it, with its keys."""
    from sedis.crypto import keywrap

    if not isinstance(raw, dict):
        raise CorruptError(f"{what} has no descriptor")
    notes = raw.get("annotations")
    urls = raw.get("urls")
    size = raw.get("size")
    try:
        if raw.get("mediaType") != sealing.REPORT_MEDIA_TYPE:
            raise InvalidInputError(f"it is no {sealing.REPORT_MEDIA_TYPE}")
        if type(size) is not int or size < 0:
            raise InvalidInputError("its size is not a count of bytes")
        if not isinstance(notes, dict) or not isinstance(urls, list):
            raise InvalidInputError("it has no keys or no url")
        keys = {k: notes.get(k) for k in (keywrap.KEYS_ANNOTATION, keywrap.PUBOPTS_ANNOTATION)}
        if not all(isinstance(v, str) for v in keys.values()):
            raise InvalidInputError("it has no wrapped keys")
        if not all(isinstance(u, str) for u in urls):
            raise InvalidInputError("its urls are not text")
        desc = model.Descriptor(
            media_type=sealing.REPORT_MEDIA_TYPE,
            digest=model.check_digest(str(raw.get("digest"))),
            size=size,
            annotations={k: str(v) for k, v in keys.items()},
            urls=tuple(urls),
        )
        sealing.blob_cid(desc)
    except InvalidInputError as exc:
        raise CorruptError(f"{what} has a malformed descriptor: {exc}") from None
    return desc


def _open(engines: Engines, actor: Actor, found: ScanOnLedger, sealed: model.Descriptor) -> bytes:
    """The sealed report's plaintext, whole, only once it checks out against the ledger."""
    what = f"the report of scan {found.scan} of {found.record.digest}"
    if sealed.size > MAX_REPORT_BYTES + 64:
        raise InvalidInputError(f"{what} is larger than {MAX_REPORT_BYTES} bytes")
    try:
        private, public = sealing.unwrap(sealed, actor.keys.private_key())
    except AuthError:
        raise PermissionDeniedError(
            f"{what} is not sealed for the key of {actor.address} "
            "(sealed before its grant, or before its keys changed)"
        ) from None
    except SedisError as exc:
        raise CorruptError(f"{what} has keys that do not open: {exc}") from None
    # The key is bound to one plaintext digest: a report other than the ledger's is
    # refused before its ciphertext is read.
    if private.digest != found.report_digest:
        raise CorruptError(
            f"{what} is sealed as {private.digest}, not as the report "
            f"{found.report_digest} the ledger records"
        )
    # Size and HMAC over the whole ciphertext first; the plaintext's digest at its end.
    content = b"".join(sealing.open_sealed(engines.store, sealed, private, public))
    if "sha256:" + hashlib.sha256(content).hexdigest() != found.report_digest:
        raise CorruptError(f"{what} does not match the digest {found.report_digest}")
    return content
