"""Who may pull an image and what its history says: the rules over ledger records."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sedis.core.access import (
    check_sealed_manifest,
    decide_pull,
    latest_status_reason,
    live_grants,
)
from sedis.core.address import Address
from sedis.core.errors import CorruptError, PermissionDeniedError
from sedis.core.records import Grant, ImageRecord, ScanSummary, Status, StatusEntry

DIGEST = "sha256:" + "ab" * 32
CONFIG = "sha256:" + "cd" * 32
OWNER = Address.from_bytes(b"\x11" * 20)
READER = Address.from_bytes(b"\x22" * 20)
STRANGER = Address.from_bytes(b"\x33" * 20)
NOW = 1_767_225_600


def record(status: Status = Status.TRUSTED) -> ImageRecord:
    return ImageRecord(OWNER, DIGEST, CONFIG, "bafy-root", NOW - 1000, status, ScanSummary())


def grant(
    recipient: Address = READER, expires_at: int | None = None, revoked_at: int | None = None
) -> Grant:
    return Grant(
        OWNER,
        DIGEST,
        recipient,
        "bafy-share",
        "sha256:" + "ef" * 32,
        NOW - 500,
        expires_at,
        revoked_at,
    )


def entry(index: int, status: Status, previous: Status, reason: str) -> StatusEntry:
    return StatusEntry(OWNER, DIGEST, index, status, previous, reason, NOW - 100 + index)


PUBLISHED = entry(0, Status.TRUSTED, Status.UNKNOWN, "published")


# -- live_grants ------------------------------------------------------------------------


def test_live_grants_drop_revoked_and_expired_ones() -> None:
    live = grant(READER)
    later = grant(Address.from_bytes(b"\x44" * 20), expires_at=NOW + 1)
    revoked = grant(STRANGER, revoked_at=NOW - 10)
    expired = grant(Address.from_bytes(b"\x55" * 20), expires_at=NOW)
    assert live_grants([live, revoked, later, expired], NOW) == [live, later]
    assert live_grants([], NOW) == []


# -- latest_status_reason -----------------------------------------------------------------


def test_an_image_never_changed_has_no_status_reason() -> None:
    assert latest_status_reason([]) == ""
    assert latest_status_reason([PUBLISHED]) == ""


def test_the_status_reason_is_the_latest_changes() -> None:
    history = [
        PUBLISHED,
        entry(1, Status.UNTRUSTED, Status.TRUSTED, "CVE-2026-0001"),
        entry(2, Status.REVOKED, Status.UNTRUSTED, "key leaked"),
    ]
    assert latest_status_reason(history) == "key leaked"
    assert latest_status_reason(history[:2]) == "CVE-2026-0001"


# -- decide_pull ------------------------------------------------------------------------------


def test_a_recipient_with_a_live_grant_pulls() -> None:
    held = grant()
    decision = decide_pull(record(), held, READER, NOW)
    assert decision.grant == held and not decision.as_owner
    assert decision.record == record()


def test_the_owner_needs_no_grant() -> None:
    decision = decide_pull(record(), None, OWNER, NOW)
    assert decision.as_owner and decision.grant is None
    assert decision.publisher == OWNER


def test_a_grant_of_another_publishers_record_opens_nothing() -> None:
    # The same digest recorded by someone else: its grants are no grant to this record.
    theirs = replace(grant(), publisher=STRANGER)
    with pytest.raises(PermissionDeniedError) as refused:
        decide_pull(record(), theirs, READER, NOW)
    assert str(refused.value) == f"{READER} has no grant to {DIGEST} from {OWNER}"
    other_digest = replace(grant(), digest="sha256:" + "99" * 32)
    with pytest.raises(PermissionDeniedError, match="has no grant"):
        decide_pull(record(), other_digest, READER, NOW)


def test_a_recipient_pulls_the_counted_record_of_a_second_publisher() -> None:
    cosigned = replace(record(), publisher=STRANGER)
    held = replace(grant(), publisher=STRANGER)
    decision = decide_pull(cosigned, held, READER, NOW)
    assert (decision.publisher, decision.grant, decision.as_owner) == (STRANGER, held, False)
    # Its publisher needs no grant of it; the first publisher is nobody special here.
    assert decide_pull(cosigned, None, STRANGER, NOW).as_owner
    with pytest.raises(PermissionDeniedError, match="has no grant"):
        decide_pull(cosigned, None, OWNER, NOW)


def test_the_owner_pulls_as_owner_past_a_revoked_grant_of_its_own() -> None:
    decision = decide_pull(record(), grant(OWNER, revoked_at=NOW - 1), OWNER, NOW)
    assert decision.as_owner


def test_someone_without_a_grant_is_refused() -> None:
    with pytest.raises(PermissionDeniedError, match="has no grant") as refused:
        decide_pull(record(), None, STRANGER, NOW)
    assert str(STRANGER) in str(refused.value) and DIGEST in str(refused.value)


def test_a_revoked_grant_lets_nobody_in() -> None:
    with pytest.raises(PermissionDeniedError, match="has no grant"):
        decide_pull(record(), grant(revoked_at=NOW - 1), READER, NOW)


def test_a_grant_expires_at_its_expiry_second() -> None:
    held = grant(expires_at=NOW)
    assert decide_pull(record(), held, READER, NOW - 1).grant == held
    with pytest.raises(PermissionDeniedError, match="expired at 2026-01-01 00:00:00 UTC"):
        decide_pull(record(), held, READER, NOW)
    with pytest.raises(PermissionDeniedError, match="expired"):
        decide_pull(record(), held, READER, NOW + 3600)


@pytest.mark.parametrize("status", [Status.UNTRUSTED, Status.UNSUPPORTED, Status.REVOKED])
def test_an_image_not_trusted_is_refused_with_its_status_and_reason(status: Status) -> None:
    with pytest.raises(PermissionDeniedError) as refused:
        decide_pull(record(status), grant(), READER, NOW, "CVE-2026-0001")
    assert str(refused.value) == f"{DIGEST} is {status.value} by {OWNER}: CVE-2026-0001"
    with pytest.raises(PermissionDeniedError) as unexplained:
        decide_pull(record(status), grant(), READER, NOW)
    assert str(unexplained.value) == f"{DIGEST} is {status.value} by {OWNER}"


def test_the_owner_of_a_revoked_image_is_refused_too() -> None:
    with pytest.raises(PermissionDeniedError, match=r"is REVOKED by 0x1{40}: key leaked"):
        decide_pull(record(Status.REVOKED), None, OWNER, NOW, "key leaked")


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(PermissionDeniedError, match="is UNKNOWN"):
        decide_pull(record(Status.UNKNOWN), grant(), READER, NOW)


# -- check_sealed_manifest -----------------------------------------------------------------


def test_a_sealed_manifest_that_is_the_recorded_image_passes() -> None:
    check_sealed_manifest(record(), DIGEST, CONFIG, 3, 3)


def test_a_sealed_manifest_of_another_image_is_corrupt() -> None:
    with pytest.raises(CorruptError, match="sealed manifest does not match") as refused:
        check_sealed_manifest(record(), "sha256:" + "00" * 32, CONFIG, 3, 3)
    assert DIGEST in str(refused.value)


def test_a_sealed_manifest_naming_another_config_is_corrupt() -> None:
    with pytest.raises(CorruptError) as refused:
        check_sealed_manifest(record(), DIGEST, "sha256:" + "00" * 32, 3, 3)
    assert str(refused.value) == f"the config of {DIGEST} does not match the ledger"


@pytest.mark.parametrize(("plain", "sealed"), [(3, 2), (2, 3), (0, 1)])
def test_a_share_with_other_blobs_than_the_manifest_is_corrupt(plain: int, sealed: int) -> None:
    with pytest.raises(CorruptError, match="has the wrong blobs"):
        check_sealed_manifest(record(), DIGEST, CONFIG, plain, sealed)


def test_the_digest_mismatch_is_reported_before_the_others() -> None:
    other = replace(record(), digest="sha256:" + "99" * 32)
    with pytest.raises(CorruptError, match="sealed manifest does not match"):
        check_sealed_manifest(other, DIGEST, "sha256:" + "00" * 32, 1, 2)
