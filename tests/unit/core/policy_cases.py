"""Accounts, digests and small builders shared by the trust policy's tests."""

from __future__ import annotations

import itertools

from sedis.core.address import Address
from sedis.core.policy import APPROVED, AttestationRequirement, RecordEvidence, TrustRule
from sedis.core.records import Attestation, ImageRecord, ScanSummary, Status

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "99" * 32
CONFIG = "sha256:" + "cd" * 32

ALICE = Address("0x" + "a1" * 20)  # the image's owner
CAROL = Address("0x" + "c3" * 20)  # a second publisher of the same image
MALLORY = Address("0x" + "de" * 20)  # records digests and names she does not own
BOB = Address("0x" + "b0" * 20)  # a co-signer
APPROVER = Address("0x" + "5e" * 20)
SCANNER = Address("0x" + "5c" * 20)

NOW = 1_767_225_600
HOUR = 3600
DAY = 86400

CLEAN = ScanSummary()
UNSCANNED = ScanSummary.unscanned()

_indices = itertools.count(1)


def att(
    attester: Address,
    kind: str = APPROVED,
    *,
    on: Address = ALICE,
    age: int = HOUR,
    revoked: bool = False,
    digest: str = DIGEST,
) -> Attestation:
    """An attestation by ``attester`` about ``on``'s record, made ``age`` seconds ago."""
    at = NOW - age
    return Attestation(
        on,
        digest,
        attester,
        kind,
        "sha256:" + "ef" * 32,
        "bafy-payload",
        at,
        next(_indices),
        at + 60 if revoked else None,
    )


def rec(
    publisher: Address = ALICE,
    status: Status = Status.TRUSTED,
    *,
    scan: ScanSummary = CLEAN,
    age: int = DAY,
    tags: tuple[str, ...] = (),
    attestations: tuple[Attestation, ...] = (),
    reason: str = "",
    digest: str = DIGEST,
) -> RecordEvidence:
    """``publisher``'s record of the digest, published (and scanned) ``age`` seconds ago."""
    record = ImageRecord(publisher, digest, CONFIG, "bafy-root", NOW - age, status, scan)
    return RecordEvidence(record, attestations, tags, reason)


def need(kind: str, *by: Address, least: int = 1) -> AttestationRequirement:
    """At least ``least`` of ``by`` (the rule's publishers when none) attest ``kind``."""
    return AttestationRequirement(kind, frozenset(by) if by else None, least)


def rule(
    *publishers: Address,
    images: tuple[str, ...] = ("*",),
    attestations: tuple[AttestationRequirement, ...] = (),
    max_severity: str | None = None,
    max_scan_age: int | None = None,
    require_scan: bool = False,
    line: int = 0,
) -> TrustRule:
    return TrustRule(
        images,
        frozenset(publishers),
        attestations,
        max_severity,
        max_scan_age,
        require_scan,
        line,
    )
