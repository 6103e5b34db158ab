"""The verdict is what the policy's evaluation concluded: its fields, and its exit code."""

from __future__ import annotations

import pytest

from sedis.core.address import Address
from sedis.core.policy import (
    Decision,
    RecordEvidence,
    Subject,
    TrustPolicy,
    TrustRule,
    evaluate,
)
from sedis.core.records import Attestation, ImageRecord, ScanSummary, Status
from sedis.core.verdict import EXIT_CODES, name_mismatch, name_not_found, verdict_of

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "99" * 32
OWNER = Address("0x" + "1a" * 20)
COSIGNER = Address("0x" + "22" * 20)
STRANGER = Address("0x" + "33" * 20)
NOW = 1_767_225_600


def record(
    status: Status = Status.TRUSTED, publisher: Address = OWNER, high: int = 2
) -> ImageRecord:
    return ImageRecord(
        publisher, DIGEST, "sha256:" + "cd" * 32, "bafy", NOW - 10, status, ScanSummary(high=high)
    )


def approved_by(who: Address, publisher: Address = OWNER) -> Attestation:
    return Attestation(publisher, DIGEST, who, "approved", "sha256:" + "ef" * 32, "", NOW, 1)


def policy(*publishers: Address, images: tuple[str, ...] = ("*",)) -> TrustPolicy:
    return TrustPolicy((TrustRule(images, frozenset(publishers)),), source="test.toml")


def test_exit_codes_are_the_statuses_and_zero_only_for_trusted() -> None:
    assert EXIT_CODES == {
        Status.TRUSTED: 0,
        Status.UNTRUSTED: 1,
        Status.UNKNOWN: 2,
        Status.UNSUPPORTED: 3,
        Status.REVOKED: 4,
    }
    assert [s for s, code in EXIT_CODES.items() if code == 0] == [Status.TRUSTED]


@pytest.mark.parametrize(
    ("status", "code"),
    [(Status.TRUSTED, 0), (Status.UNTRUSTED, 1), (Status.UNSUPPORTED, 3), (Status.REVOKED, 4)],
)
def test_the_counted_record_status_is_the_verdict(status: Status, code: int) -> None:
    trusting = policy(OWNER)
    evidence = [RecordEvidence(record(status))]
    verdict = verdict_of(evaluate(trusting, Subject(DIGEST), evidence, NOW), policy=trusting)
    assert (verdict.status, verdict.exit_code) == (status, code)
    assert verdict.publishers == (OWNER,)
    assert verdict.policy == "test.toml"
    assert verdict.decision is (Decision.ALLOW if code == 0 else Decision.DENY)


def test_a_verdict_carries_the_counted_scan_and_the_rule_outcomes() -> None:
    trusting = policy(OWNER)
    evidence = [RecordEvidence(record(publisher=STRANGER, high=9)), RecordEvidence(record())]
    verdict = verdict_of(evaluate(trusting, Subject(DIGEST), evidence, NOW), policy=trusting)
    assert verdict.scan == ScanSummary(high=2)  # the owner's, not the stranger's
    assert len(verdict.rules) == 1 and verdict.rules[0].counted == (OWNER,)
    assert verdict.rules[0].covers


def test_no_counting_record_gives_no_scan() -> None:
    trusting = policy(OWNER)
    evidence = [RecordEvidence(record(publisher=STRANGER))]
    verdict = verdict_of(evaluate(trusting, Subject(DIGEST), evidence, NOW), policy=trusting)
    assert (verdict.status, verdict.scan, verdict.publishers) == (Status.UNKNOWN, None, ())
    assert str(STRANGER) in verdict.reason


def test_an_approval_vouches_and_is_named() -> None:
    trusting = policy(COSIGNER)
    evidence = [RecordEvidence(record(), (approved_by(COSIGNER),))]
    verdict = verdict_of(evaluate(trusting, Subject(DIGEST), evidence, NOW), policy=trusting)
    assert verdict.status is Status.TRUSTED
    assert (verdict.publishers, verdict.vouching) == ((OWNER,), (COSIGNER,))


def test_the_name_asked_for_is_carried_through() -> None:
    trusting = policy(OWNER)
    evaluation = evaluate(
        trusting, Subject(DIGEST, ("acme/app:1.0",)), [RecordEvidence(record())], NOW
    )
    verdict = verdict_of(evaluation, policy=trusting, name="acme/app:1.0", name_digest=DIGEST)
    assert (verdict.name, verdict.name_digest, verdict.exit_code) == ("acme/app:1.0", DIGEST, 0)


def test_a_source_checked_against_a_name_must_be_what_the_name_names() -> None:
    verdict = name_mismatch(OTHER, "acme/app:1.0", DIGEST, policy(OWNER))
    assert (verdict.status, verdict.exit_code, verdict.decision) == (
        Status.UNTRUSTED,
        1,
        Decision.DENY,
    )
    assert verdict.reason == f"{OTHER} is not acme/app:1.0, which names {DIGEST}"
    assert (verdict.digest, verdict.name, verdict.name_digest) == (OTHER, "acme/app:1.0", DIGEST)
    assert verdict.policy == "test.toml"


def test_a_name_no_trusted_publisher_tagged_is_unknown() -> None:
    reason = "no image named acme/app:1.0 by a publisher the policy trusts"
    verdict = name_not_found(DIGEST, "acme/app:1.0", reason, policy(OWNER))
    assert (verdict.status, verdict.exit_code, verdict.reason) == (Status.UNKNOWN, 2, reason)
    assert (verdict.name, verdict.name_digest, verdict.decision) == (
        "acme/app:1.0",
        None,
        Decision.DENY,
    )


def test_a_name_no_rule_speaks_for_follows_the_default() -> None:
    lenient = TrustPolicy(
        (TrustRule(("beta/*",), frozenset({OWNER})),), default=Decision.ALLOW, source="p"
    )
    assert name_not_found(DIGEST, "acme/app:1.0", "-", lenient).decision is Decision.ALLOW
    assert name_not_found(DIGEST, "beta/app:1.0", "-", lenient).decision is Decision.DENY


def test_a_reason_names_publishers_checksummed() -> None:
    trusting = policy(STRANGER)
    verdict = verdict_of(
        evaluate(trusting, Subject(DIGEST), [RecordEvidence(record())], NOW), policy=trusting
    )
    assert OWNER.checksummed in verdict.reason
    assert OWNER.checksummed != OWNER.hex  # the owner's address has letters to case
