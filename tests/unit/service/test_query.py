"""set_status, inspect and list_images: their typed results, from the fake ledger's state."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.core.errors import ConflictError, NotFoundError
from sedis.core.records import ScanSummary, Status
from sedis.service import access, query
from sedis.service.engines import Actor, Engines
from tests.oci_images import sha
from tests.unit.service.fakes import START_TIME, FakeLedger, FakeStore
from tests.unit.service.images import FRIENDS, make_layout, publish_layout, trusting


@pytest.fixture
def digest(engines: Engines, alice: Actor, bob: Actor, tmp_path: Path) -> str:
    layout = make_layout(tmp_path / "app")
    return publish_layout(engines, alice, layout, "app:v1", ["bob"]).digest


# -- set_status ---------------------------------------------------------------------------


def test_a_status_change_is_recorded_with_its_reason(
    engines: Engines, ledger: FakeLedger, alice: Actor, digest: str
) -> None:
    ledger.advance(30)
    change = query.set_status(engines, alice, "app:v1", Status.UNTRUSTED, "CVE-2026-0001")
    receipt = ledger.sent[-1].receipt
    assert change == query.StatusChange(
        digest, Status.UNTRUSTED, "CVE-2026-0001", receipt.tx_hash, receipt.block_number
    )
    record = ledger.image(alice.address, digest)
    assert record is not None and record.status is Status.UNTRUSTED
    latest = ledger.status_history(alice.address, digest)[-1]
    assert (latest.status, latest.previous, latest.reason, latest.publisher, latest.at) == (
        Status.UNTRUSTED,
        Status.TRUSTED,
        "CVE-2026-0001",
        alice.address,
        START_TIME + 30,
    )


def test_a_status_is_set_on_the_actors_own_record_only(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, digest: str
) -> None:
    with pytest.raises(NotFoundError) as caught:
        query.set_status(engines, bob, digest, Status.REVOKED, "not mine")
    assert str(caught.value) == f"you have no record of {digest} (recorded by {alice.address})"
    with pytest.raises(NotFoundError) as by_name:
        query.set_status(engines, bob, "app:v1", Status.REVOKED, "not mine")
    assert str(by_name.value) == f"you have no image named app:v1 (tagged by {alice.address})"
    record = ledger.image(alice.address, digest)
    assert record is not None and record.status is Status.TRUSTED
    assert [t.function for t in ledger.sent if t.sender == bob.address] == ["registerKeys"]


def test_a_status_change_to_the_status_it_has_is_refused(
    engines: Engines, alice: Actor, digest: str
) -> None:
    with pytest.raises(ConflictError, match=f"record of {digest} is already TRUSTED"):
        query.set_status(engines, alice, digest, Status.TRUSTED, "again")


def test_the_status_of_an_unknown_name_is_not_set(engines: Engines, alice: Actor) -> None:
    with pytest.raises(NotFoundError, match=r"^you have no image named app:v9$"):
        query.set_status(engines, alice, "app:v9", Status.UNTRUSTED, "why")


# -- inspect ----------------------------------------------------------------------------------


def test_inspect_gives_everything_the_ledger_holds_on_an_image(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    digest: str,
) -> None:
    ledger.advance(10)
    alice.ledger.set_tag("app", "latest", digest)
    carol.ledger.attest(alice.address, digest, "approval", sha(b"carol approves"))
    alice.ledger.set_status(digest, Status.UNSUPPORTED, "end of life")
    ledger.advance(10)

    seen = query.inspect(engines, "app:latest", policy=FRIENDS)
    assert seen.record == ledger.image(alice.address, digest)
    assert seen.verdict.status is Status.UNSUPPORTED
    (only,) = seen.records
    assert (only.publisher, only.status, only.counted) == (
        alice.address,
        Status.UNSUPPORTED,
        True,
    )
    assert seen.now == ledger.now() == START_TIME + 20
    assert [(e.status, e.reason) for e in seen.status_history] == [
        (Status.TRUSTED, "published"),
        (Status.UNSUPPORTED, "end of life"),
    ]
    assert {g.recipient for g in seen.grants} == {alice.address, bob.address}
    (attestation,) = seen.attestations
    assert (attestation.attester, attestation.kind) == (carol.address, "approval")
    assert sorted(t.ref for t in seen.tags) == ["app:latest", "app:v1"]
    assert set(seen.tag_history) == {"app:latest", "app:v1"}
    (moved,) = seen.tag_history["app:latest"]
    assert (moved.digest, moved.previous, moved.publisher) == (digest, None, alice.address)

    # The approval is not a scan: the only scan is the one made at publish.
    (scan,) = seen.scans
    assert scan == query.ScanEntry(
        "publish", START_TIME, alice.address, True, None, None, None, None, None
    )


def test_inspect_of_an_image_never_published_is_refused(engines: Engines) -> None:
    unknown = "sha256:" + "12" * 32
    with pytest.raises(NotFoundError, match=f"{unknown} was never published"):
        query.inspect(engines, unknown, policy=FRIENDS)


def test_a_scan_attestation_whose_envelope_cannot_be_read_says_why(
    engines: Engines, store: FakeStore, alice: Actor, carol: Actor, digest: str
) -> None:
    stray = store.add_bytes(b'{"mediaType":"text/plain"}', pin=True)
    carol.ledger.attest(alice.address, digest, "scan", sha(b"a report"), str(stray.cid))
    _, rescan = query.inspect(engines, digest, policy=FRIENDS).scans
    assert (rescan.kind, rescan.by, rescan.counts) == ("rescan", carol.address, None)
    assert (rescan.report_digest, rescan.envelope_cid) == (sha(b"a report"), str(stray.cid))
    assert rescan.unreadable == f"{stray.cid} is not a scan envelope"


def test_scan_counts_are_none_for_an_image_not_scanned() -> None:
    assert query.scan_counts(ScanSummary.unscanned()) is None
    counts = query.scan_counts(ScanSummary(critical=1, high=2, medium=3, low=4, unknown=5))
    assert counts == {"critical": 1, "high": 2, "medium": 3, "low": 4, "unknown": 5}


# -- list_images ------------------------------------------------------------------------------


def test_list_all_and_by_publisher_oldest_first(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, digest: str, tmp_path: Path
) -> None:
    ledger.advance(60)
    bobs = publish_layout(engines, bob, make_layout(tmp_path / "bobs", "bobs"), "bobs:v1")
    ledger.advance(60)
    untagged = publish_layout(engines, alice, make_layout(tmp_path / "two", "two"), None)

    everything = query.list_images(engines)
    assert [s.digest for s in everything] == [digest, bobs.digest, untagged.digest]
    first = everything[0]
    assert first == query.ImageSummary(
        digest,
        ("app:v1",),
        alice.address,
        Status.TRUSTED,
        START_TIME,
        first.root_cid,
    )
    assert everything[2].names == ()
    assert [s.digest for s in query.list_images(engines, publisher=alice.address)] == [
        digest,
        untagged.digest,
    ]
    assert [s.digest for s in query.list_images(engines, publisher=bob.address)] == [bobs.digest]


def test_shared_with_lists_live_grants_to_records_of_others(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    digest: str,
    tmp_path: Path,
) -> None:
    revoked = publish_layout(engines, alice, make_layout(tmp_path / "r", "r"), "r:v1", ["bob"])
    access.unshare(engines, alice, revoked.digest, "bob")
    expiring = publish_layout(engines, alice, make_layout(tmp_path / "e", "e"), "e:v1")
    access.share(engines, alice, expiring.digest, "bob", expires_at=ledger.now() + 60)
    own = publish_layout(engines, bob, make_layout(tmp_path / "own", "own"), "own:v1")
    carols = publish_layout(engines, carol, make_layout(tmp_path / "c", "c"), "c:v1", ["bob"])

    listed = query.list_images(engines, shared_with=bob.address)
    assert [s.digest for s in listed] == [digest, expiring.digest, carols.digest]
    assert [s.publisher for s in listed] == [alice.address, alice.address, carol.address]

    ledger.advance(60)
    listed = query.list_images(engines, shared_with=bob.address)
    assert [s.digest for s in listed] == [digest, carols.digest]
    assert own.digest not in {s.digest for s in listed}
    assert query.list_images(engines, shared_with=alice.address) == []


def test_shared_with_lists_the_oldest_published_first(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, digest: str, tmp_path: Path
) -> None:
    ledger.advance(60)
    older = publish_layout(engines, alice, make_layout(tmp_path / "old", "old"), "old:v1")
    ledger.advance(60)
    newer = publish_layout(engines, alice, make_layout(tmp_path / "new", "new"), "new:v1")
    access.share(engines, alice, newer.digest, "bob")
    ledger.advance(60)
    access.share(engines, alice, older.digest, "bob")  # shared after the newer one
    listed = query.list_images(engines, shared_with=bob.address)
    assert [s.digest for s in listed] == [digest, older.digest, newer.digest]


def test_inspect_shows_every_record_and_which_counted(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, digest: str, tmp_path: Path
) -> None:
    ledger.advance(10)
    layout = make_layout(tmp_path / "app")  # the same image, recorded by bob too
    publish_layout(engines, bob, layout, "bob/app:v1")
    bob.ledger.set_status(digest, Status.REVOKED, "bob's own reasons")

    seen = query.inspect(engines, digest, policy=trusting(alice))
    assert seen.record.publisher == alice.address and seen.verdict.status is Status.TRUSTED
    assert [(r.publisher, r.status, r.counted, r.tags) for r in seen.records] == [
        (alice.address, Status.TRUSTED, True, ("app:v1",)),
        (bob.address, Status.REVOKED, False, ("bob/app:v1",)),
    ]
    bobs = query.inspect(engines, digest, policy=trusting(alice), publisher=bob.address)
    assert bobs.record.publisher == bob.address and bobs.verdict.status is Status.TRUSTED
    assert [t.ref for t in bobs.tags] == ["bob/app:v1"]
    assert [e.status for e in bobs.status_history] == [Status.TRUSTED, Status.REVOKED]
    assert {g.recipient for g in bobs.grants} == {bob.address}
    assert query.inspect(engines, digest, policy=trusting(bob)).verdict.status is Status.REVOKED
    with pytest.raises(NotFoundError, match=f"^{ledger.contract} has no record of {digest}$"):
        query.inspect(engines, digest, policy=FRIENDS, publisher=ledger.contract)
