"""status, inspect and list: what the ledger says of images, and marking them.

A status is a publisher's word on its own record, so ``set_status`` marks the
actor's own. ``inspect`` shows every publisher's record of a digest, which of
them the trust policy counted, and the whole of one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sedis.core.access import live_grants
from sedis.core.address import Address
from sedis.core.errors import NotFoundError, SedisError
from sedis.core.policy import Evaluation, TrustPolicy
from sedis.core.records import (
    Attestation,
    Grant,
    ImageRecord,
    ScanSummary,
    Status,
    StatusEntry,
    TagEntry,
)
from sedis.core.verdict import Verdict, verdict_of
from sedis.service import trust
from sedis.service.engines import Actor, Engines


@dataclass(frozen=True, slots=True)
class StatusChange:
    digest: str
    status: Status
    reason: str
    transaction: str
    block: int | None = None  # the block the change landed in


def set_status(
    engines: Engines, actor: Actor, ref: str, status: Status, reason: str
) -> StatusChange:
    """Append a status change to the history of the actor's own record of an image."""
    record = trust.own_record(engines, actor, ref)
    receipt = actor.ledger.set_status(record.digest, status, reason)
    return StatusChange(record.digest, status, reason, receipt.tx_hash, receipt.block_number)


@dataclass(frozen=True, slots=True)
class ScanEntry:
    """One scan of an image: the one made at publish, or a later rescan's attestation."""

    kind: str  # "publish" or "rescan"
    at: int
    by: Address
    not_scanned: bool
    counts: Mapping[str, int] | None  # None: not scanned, or the counts are sealed
    report_digest: str | None
    report_cid: str | None  # publish: the sealed report
    envelope_cid: str | None  # rescan: the scan envelope
    vulndb_digest: str | None
    unreadable: str | None = None  # why a rescan's envelope could not be read


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """One publisher's record of the inspected digest."""

    publisher: Address
    status: Status
    published_at: int
    counted: bool  # the trust policy counted this record for the verdict
    tags: tuple[str, ...]  # its publisher's "name:tag" refs pointing at it now


@dataclass(frozen=True, slots=True)
class Inspection:
    """Every record of a digest and the verdict on it; the other fields are the
    whole of one record (the one asked for, else one that counted)."""

    record: ImageRecord
    status_history: tuple[StatusEntry, ...]
    grants: tuple[Grant, ...]
    attestations: tuple[Attestation, ...]
    tags: tuple[TagEntry, ...]
    scans: tuple[ScanEntry, ...]
    tag_history: Mapping[str, tuple[TagEntry, ...]]  # the record's publisher's moves
    now: int  # the time the grants' expiry is judged at
    records: tuple[RecordSummary, ...]
    verdict: Verdict


def scan_counts(scan: ScanSummary) -> dict[str, int] | None:
    """The counts by severity of a scan summary; None when the image was not scanned."""
    if scan.not_scanned:
        return None
    return {
        "critical": scan.critical,
        "high": scan.high,
        "medium": scan.medium,
        "low": scan.low,
        "unknown": scan.unknown,
    }


def inspect(
    engines: Engines, ref: str, *, policy: TrustPolicy, publisher: Address | None = None
) -> Inspection:
    """Everything the ledger holds on an image, from one block, with its scan history
    and its verdict under ``policy``; ``publisher`` picks whose record to show whole."""
    ledger = engines.ledger
    with ledger.pinned():
        named = trust.resolve(engines, policy, ref, publisher)
        digest = named.digest
        evaluation = trust.judge(engines, policy, digest, trust.names_of(ref))
        record = chosen_record(evaluation, publisher or named.publisher)
        who = record.publisher
        tags = tuple(ledger.tags_of(who, digest))
        attestations = next(
            e.attestations for e in evaluation.evidence if e.record.publisher == who
        )
        history = tuple(ledger.status_history(who, digest))
        grants = tuple(ledger.grants(who, digest))
        tag_history = {t.ref: tuple(ledger.tag_history(t.name, t.tag, who)) for t in tags}
        now = ledger.now()
    scans = scan_history(record, attestations, engines)
    counted = set(evaluation.counted)
    records = tuple(
        RecordSummary(
            e.record.publisher,
            e.record.status,
            e.record.published_at,
            e.record.publisher in counted,
            e.tags,
        )
        for e in evaluation.evidence
    )
    return Inspection(
        record,
        history,
        grants,
        attestations,
        tags,
        scans,
        tag_history,
        now,
        records,
        verdict_of(evaluation, policy=policy),
    )


def chosen_record(evaluation: Evaluation, publisher: Address | None) -> ImageRecord:
    """The record to show: ``publisher``'s, else the first that counted, else the first."""
    digest = evaluation.digest
    if not evaluation.evidence:
        raise NotFoundError(f"{digest} was never published")
    if publisher is not None:
        record = evaluation.record_of(publisher)
        if record is None:
            raise NotFoundError(f"{publisher} has no record of {digest}")
        return record
    counted = [e.record for e in evaluation.evidence if e.record.publisher in evaluation.counted]
    return (counted or [evaluation.evidence[0].record])[0]


def scan_history(
    record: ImageRecord, attestations: tuple[Attestation, ...], engines: Engines | None
) -> tuple[ScanEntry, ...]:
    """Every scan of an image: the one made at publish, then each rescan attestation
    (with its envelope's counts from the store, opened only when there is one)."""
    # Imported here: it brings the decryption stack, which `verify` never needs.
    from sedis.service.rescan import SCAN_KIND, read_envelope

    first = record.scan
    history = [
        ScanEntry(
            "publish",
            record.published_at,
            record.publisher,
            first.not_scanned,
            scan_counts(first),
            first.report_digest,
            first.report_cid,
            None,
            first.vulndb_digest,
        )
    ]
    for attestation in attestations:
        if attestation.kind != SCAN_KIND:
            continue
        counts: dict[str, int] | None = None
        vulndb: str | None = None
        unreadable: str | None = None
        if engines is not None and attestation.cid:
            try:
                envelope = read_envelope(engines.store, attestation.cid)
                counts = _counts(envelope.get("counts"))
                raw_db = envelope.get("vulndbDigest")
                vulndb = raw_db if isinstance(raw_db, str) else None
            except SedisError as exc:
                unreadable = str(exc)
        history.append(
            ScanEntry(
                "rescan",
                attestation.at,
                attestation.attester,
                False,
                counts,
                attestation.payload_hash,
                None,
                attestation.cid or None,
                vulndb,
                unreadable,
            )
        )
    return tuple(history)


def _counts(raw: object) -> dict[str, int] | None:
    """An envelope's counts, kept only if they are what a scan writes (names to numbers)."""
    if not isinstance(raw, dict):
        return None
    counts = {k: v for k, v in raw.items() if isinstance(k, str) and type(v) is int}
    return counts if len(counts) == len(raw) else None


@dataclass(frozen=True, slots=True)
class ImageSummary:
    digest: str
    names: tuple[str, ...]  # its publisher's tags on it
    publisher: Address
    status: Status
    published_at: int
    root_cid: str
    scan: Mapping[str, int] | None = None  # counts by severity; None: not scanned


def list_images(
    engines: Engines,
    *,
    publisher: Address | None = None,
    shared_with: Address | None = None,
) -> list[ImageSummary]:
    """The records on the ledger, oldest first: all, one publisher's, or those shared (by
    a live grant) with an account that did not publish them."""
    ledger = engines.ledger
    with ledger.pinned():
        if publisher is not None:
            records = ledger.images(publisher)
        elif shared_with is not None:
            granted = live_grants(ledger.grants_to(shared_with), ledger.now())
            found = (ledger.image(g.publisher, g.digest) for g in granted)
            records = [r for r in found if r is not None and r.publisher != shared_with]
            # The grants come in the order they were first given, not published.
            records.sort(key=lambda record: record.published_at)
        else:
            records = ledger.images()
        return [_summary(r, ledger.tags_of(r.publisher, r.digest)) for r in records]


def _summary(record: ImageRecord, tags: list[TagEntry]) -> ImageSummary:
    return ImageSummary(
        record.digest,
        tuple(t.ref for t in tags),
        record.publisher,
        record.status,
        record.published_at,
        record.root_cid,
        scan_counts(record.scan),
    )
