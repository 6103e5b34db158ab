"""The verdict is a pure function of the ledger's record: every branch, and its exit code."""

from __future__ import annotations

import pytest

from sedis.core.address import Address
from sedis.core.records import Attestation, ImageRecord, ScanSummary, Status
from sedis.core.verdict import decide, decide_named

DIGEST = "sha256:" + "ab" * 32
OWNER = Address("0x" + "1a" * 20)
COSIGNER = Address("0x" + "22" * 20)
STRANGER = Address("0x" + "33" * 20)


def record(status: Status = Status.TRUSTED, scanned: bool = True) -> ImageRecord:
    scan = ScanSummary(high=2) if scanned else ScanSummary.unscanned()
    return ImageRecord(DIGEST, OWNER, "sha256:" + "cd" * 32, "bafy", 1, status, scan)


def attested_by(who: Address) -> Attestation:
    return Attestation(DIGEST, who, "approval", "sha256:" + "ef" * 32, "", 2, 0)


def test_never_published_is_unknown_exit_2() -> None:
    verdict = decide(DIGEST, None)
    assert (verdict.status, verdict.exit_code) == (Status.UNKNOWN, 2)


@pytest.mark.parametrize(
    ("status", "code"),
    [(Status.TRUSTED, 0), (Status.UNTRUSTED, 1), (Status.UNSUPPORTED, 3), (Status.REVOKED, 4)],
)
def test_the_recorded_status_decides(status: Status, code: int) -> None:
    verdict = decide(DIGEST, record(status))
    assert (verdict.status, verdict.exit_code, verdict.owner) == (status, code, OWNER)


def test_signers_limit_whose_word_counts() -> None:
    # A signer given in another case is the same account.
    given = Address.parse("0x" + OWNER.hex[2:].upper())
    assert decide(DIGEST, record(), allowed_signers=[given]).exit_code == 0
    refused = decide(DIGEST, record(), allowed_signers=[STRANGER])
    assert refused.status is Status.UNKNOWN and "not a given signer" in refused.reason
    cosigned = decide(DIGEST, record(), [attested_by(COSIGNER)], allowed_signers=[COSIGNER])
    assert cosigned.status is Status.TRUSTED and cosigned.signers == (COSIGNER,)
    # An attestation from someone not on the list does not help.
    assert decide(DIGEST, record(), [attested_by(STRANGER)], [COSIGNER]).exit_code == 2


def test_a_revoked_image_stays_revoked_whoever_vouches() -> None:
    verdict = decide(DIGEST, record(Status.REVOKED), [attested_by(COSIGNER)], [COSIGNER])
    assert verdict.status is Status.REVOKED


def test_unscanned_images_say_so() -> None:
    assert "without a vulnerability scan" in decide(DIGEST, record(scanned=False)).reason
    assert "scan" not in decide(DIGEST, record()).reason


OTHER = "sha256:" + "99" * 32


def test_a_source_checked_against_a_name_must_be_what_the_name_names() -> None:
    verdict = decide_named("acme/app:1.0", OTHER, DIGEST, None)
    assert (verdict.status, verdict.exit_code) == (Status.UNTRUSTED, 1)
    assert verdict.reason == f"{OTHER} is not acme/app:1.0, which names {DIGEST}"
    assert (verdict.digest, verdict.name, verdict.name_digest) == (OTHER, "acme/app:1.0", DIGEST)


def test_a_trusted_record_of_another_digest_does_not_make_it_the_name() -> None:
    other = ImageRecord(
        OTHER, STRANGER, "sha256:" + "cd" * 32, "bafy", 1, Status.TRUSTED, ScanSummary()
    )
    verdict = decide_named("acme/app:1.0", OTHER, DIGEST, other)
    assert verdict.status is Status.UNTRUSTED and verdict.owner == STRANGER


def test_a_source_that_is_the_named_image_is_judged_by_its_record() -> None:
    trusted = decide_named("acme/app:1.0", DIGEST, DIGEST, record())
    assert (trusted.status, trusted.name, trusted.name_digest) == (
        Status.TRUSTED,
        "acme/app:1.0",
        DIGEST,
    )
    revoked = decide_named("acme/app:1.0", DIGEST, DIGEST, record(Status.REVOKED))
    assert revoked.exit_code == 4
    unvouched = decide_named("acme/app:1.0", DIGEST, DIGEST, record(), allowed_signers=[STRANGER])
    assert unvouched.status is Status.UNKNOWN


def test_a_name_that_names_nothing_is_unknown() -> None:
    verdict = decide_named("acme/app:1.0", DIGEST, None, record())
    assert (verdict.status, verdict.name_digest) == (Status.UNKNOWN, None)
    assert verdict.reason == "no image is named acme/app:1.0 on this ledger"


def test_a_reason_names_the_owner_checksummed() -> None:
    refused = decide(DIGEST, record(), allowed_signers=[STRANGER])
    assert f"published by {OWNER.checksummed}," in refused.reason
    assert OWNER.checksummed != OWNER.hex  # the owner's address has letters to case
