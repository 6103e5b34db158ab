"""The fakes keep the rules that the real ledger and stores keep, where use cases meet them."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from sedis.core.address import Address
from sedis.core.errors import (
    ConflictError,
    CorruptError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from sedis.core.records import AuditQuery, GrantRequest, ScanSummary, Status
from sedis.crypto import keywrap
from sedis.service.engines import Actor, Engines, recipient_key
from sedis.store.cid import Cid
from sedis.store.embedded import EmbeddedStore
from sedis.store.importer import ImportOptions
from tests.conftest import pseudo_random
from tests.unit.service.fakes import (
    FakeDirectory,
    FakeLedger,
    FakeSigner,
    FakeStore,
    address_of,
)

CONFIG = "sha256:" + "cf" * 32
ROOT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
NO_SCAN = ScanSummary.unscanned()


def digest_of(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def share_for(recipient: Actor, expires_at: int | None = None) -> GrantRequest:
    return GrantRequest(
        recipient.address, ROOT, digest_of(f"share {recipient.address}"), expires_at
    )


def publish(actor: Actor, label: str = "app") -> str:
    digest = digest_of(label)
    actor.ledger.publish(digest, CONFIG, ROOT, NO_SCAN)
    return digest


# -- the ledger: records and status -------------------------------------------------------


def test_each_publisher_records_a_digest_once_and_apart(
    ledger: FakeLedger, alice: Actor, bob: Actor
) -> None:
    digest = publish(bob)  # first, as a squatter would
    ledger.advance(10)
    publish(alice)
    sent = len(ledger.sent)
    with pytest.raises(ConflictError, match=f"^{alice.address} has already published {digest}$"):
        alice.ledger.publish(digest, CONFIG, ROOT, NO_SCAN)
    assert len(ledger.sent) == sent
    bobs, alices = ledger.records(digest)
    assert (bobs.publisher, alices.publisher) == (bob.address, alice.address)
    assert alices.published_at == bobs.published_at + 10
    assert ledger.image(alice.address, digest) == alices
    assert ledger.image(address_of("carol"), digest) is None
    # Bob's revocation of his record leaves Alice's alone.
    bob.ledger.set_status(digest, Status.REVOKED, "mine, revoked")
    assert ledger.statuses([(alice.address, digest), (bob.address, digest)]) == {
        (alice.address, digest): Status.TRUSTED,
        (bob.address, digest): Status.REVOKED,
    }


def test_publication_is_the_first_status_entry(ledger: FakeLedger, alice: Actor) -> None:
    digest = publish(alice)
    ledger.advance(60)
    alice.ledger.set_status(digest, Status.UNTRUSTED, "CVE-2026-0001")
    first, change = ledger.status_history(alice.address, digest)
    assert (first.index, first.status, first.previous, first.reason, first.publisher) == (
        0,
        Status.TRUSTED,
        Status.UNKNOWN,
        "published",
        alice.address,
    )
    assert (change.index, change.status, change.previous, change.reason) == (
        1,
        Status.UNTRUSTED,
        Status.TRUSTED,
        "CVE-2026-0001",
    )
    assert change.at == first.at + 60
    record = ledger.image(alice.address, digest)
    assert record is not None and (record.status, record.status_changes) == (Status.UNTRUSTED, 1)
    never = (alice.address, digest_of("never"))
    assert ledger.statuses([(alice.address, digest), never]) == {
        (alice.address, digest): Status.UNTRUSTED,
        never: Status.UNKNOWN,
    }


def test_status_changes_follow_the_contract(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    with pytest.raises(NotFoundError, match=f"^{bob.address} has no record of {digest}$"):
        bob.ledger.set_status(digest, Status.REVOKED, "mine now")
    with pytest.raises(PermissionDeniedError, match="only its publisher may change its status"):
        ledger.raw_writer(bob.address, alice.address).set_status(digest, Status.REVOKED, "x")
    with pytest.raises(ConflictError, match="already TRUSTED"):
        alice.ledger.set_status(digest, Status.TRUSTED, "again")
    with pytest.raises(InvalidInputError, match="needs a reason"):
        alice.ledger.set_status(digest, Status.UNTRUSTED, "")
    with pytest.raises(InvalidInputError):
        alice.ledger.set_status(digest, Status.UNKNOWN, "forget it")
    alice.ledger.set_status(digest, Status.REVOKED, "leaked key")
    with pytest.raises(ConflictError, match="revoked"):
        alice.ledger.set_status(digest, Status.TRUSTED, "undo")
    with pytest.raises(ConflictError, match="revoked"):
        alice.ledger.grant(digest, share_for(bob))
    with pytest.raises(ConflictError, match="revoked"):
        alice.ledger.set_tag("acme/app", "1.0", digest)
    history = ledger.status_history(alice.address, digest)
    assert [e.status for e in history] == [Status.TRUSTED, Status.REVOKED]


def test_every_record_write_naming_another_publisher_is_refused(
    ledger: FakeLedger, alice: Actor, bob: Actor
) -> None:
    digest = publish(alice)
    alice.ledger.grant(digest, share_for(bob))
    raw = ledger.raw_writer(bob.address, alice.address)
    before = ledger.audit_log()
    writes: list[Callable[[], object]] = [
        lambda: raw.publish(digest_of("new"), CONFIG, ROOT, NO_SCAN),
        lambda: raw.set_status(digest, Status.REVOKED, "squat"),
        lambda: raw.grant(digest, share_for(bob)),
        lambda: raw.revoke_grant(digest, bob.address),
        lambda: raw.change_grants(digest, [bob.address], []),
        lambda: raw.set_tag("acme/app", "1.0", digest),
    ]
    for write in writes:
        with pytest.raises(PermissionDeniedError, match=f"{bob.address} is not the publisher"):
            write()
    assert ledger.audit_log() == before


def test_an_inconsistent_scan_summary_is_refused(alice: Actor) -> None:
    with pytest.raises(InvalidInputError, match="scan summary"):
        alice.ledger.publish(digest_of("app"), CONFIG, ROOT, ScanSummary(high=1))
    with pytest.raises(InvalidInputError, match="scan summary"):
        alice.ledger.publish(digest_of("app"), CONFIG, ROOT, ScanSummary(not_scanned=True, low=1))
    scanned = ScanSummary(
        high=1, report_digest=digest_of("report"), report_cid=ROOT, vulndb_digest=digest_of("db")
    )
    alice.ledger.publish(digest_of("app"), CONFIG, ROOT, scanned)


def test_images_are_listed_by_publisher_and_config(
    ledger: FakeLedger, alice: Actor, bob: Actor
) -> None:
    first, second = publish(alice, "one"), publish(bob, "two")
    other_config = digest_of("other config")
    alice.ledger.publish(digest_of("three"), other_config, ROOT, NO_SCAN)
    publish(bob, "one")
    assert [(r.publisher, r.digest) for r in ledger.images()] == [
        (alice.address, first),
        (bob.address, second),
        (alice.address, digest_of("three")),
        (bob.address, first),
    ]
    assert [r.digest for r in ledger.images(bob.address)] == [second, first]
    assert [r.digest for r in ledger.images_by_config(other_config)] == [digest_of("three")]


# -- grants --------------------------------------------------------------------------------


def test_grants_belong_to_one_record(
    ledger: FakeLedger, alice: Actor, bob: Actor, carol: Actor
) -> None:
    digest = publish(alice)
    with pytest.raises(NotFoundError, match="has no record"):
        bob.ledger.grant(digest, share_for(carol))
    alice.ledger.grant(digest, share_for(bob))
    with pytest.raises(NotFoundError):
        carol.ledger.revoke_grant(digest, bob.address)
    publish(carol)
    assert ledger.grants(alice.address, digest) == [
        ledger.grant_of(alice.address, digest, bob.address)
    ]
    assert ledger.grants(carol.address, digest) == []
    assert ledger.grant_of(carol.address, digest, bob.address) is None


def test_a_revoked_grant_says_when(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    alice.ledger.grant(digest, share_for(bob))
    granted = ledger.grant_of(alice.address, digest, bob.address)
    assert granted is not None
    assert (granted.granted_at, granted.revoked_at, granted.publisher) == (
        ledger.now(),
        None,
        alice.address,
    )
    ledger.advance(300)
    alice.ledger.revoke_grant(digest, bob.address)
    revoked = ledger.grant_of(alice.address, digest, bob.address)
    assert revoked is not None and revoked.revoked_at == granted.granted_at + 300
    assert not revoked.active_at(ledger.now())
    with pytest.raises(NotFoundError, match="holds no grant"):
        alice.ledger.revoke_grant(digest, bob.address)
    # A new grant replaces the revoked one.
    alice.ledger.grant(digest, share_for(bob))
    again = ledger.grant_of(alice.address, digest, bob.address)
    assert again is not None and again.revoked_at is None
    assert ledger.grants_to(bob.address) == [again]


def test_a_grant_expires_by_the_clock(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    with pytest.raises(InvalidInputError, match="not after the chain's time"):
        alice.ledger.grant(digest, share_for(bob, expires_at=ledger.now()))
    alice.ledger.grant(digest, share_for(bob, expires_at=ledger.now() + 10))
    grant = ledger.grant_of(alice.address, digest, bob.address)
    assert grant is not None and grant.active_at(ledger.now())
    ledger.advance(10)
    assert not grant.active_at(ledger.now())


def test_change_grants_is_all_or_none(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    alice.ledger.grant(digest, share_for(bob))
    mine = AuditQuery(publisher=alice.address, digest=digest)
    before = ledger.audit_log(mine)
    expired = share_for(alice, expires_at=ledger.now() - 1)
    with pytest.raises(InvalidInputError):
        alice.ledger.change_grants(digest, [bob.address], [expired])
    still = ledger.grant_of(alice.address, digest, bob.address)
    assert still is not None and still.revoked_at is None
    assert ledger.audit_log(mine) == before

    receipt = alice.ledger.change_grants(digest, [bob.address], [share_for(alice)])
    events = ledger.audit_log(mine)[len(before) :]
    assert [e.name for e in events] == ["GrantRevoked", "GrantAdded"]
    assert {e.tx_hash for e in events} == {receipt.tx_hash}
    assert [e.log_index for e in events] == [0, 1]


def test_a_publish_with_grants_and_tag_is_all_or_none(
    ledger: FakeLedger, alice: Actor, bob: Actor
) -> None:
    digest = digest_of("app")
    bad = share_for(bob, expires_at=ledger.now())
    with pytest.raises(InvalidInputError):
        alice.ledger.publish(digest, CONFIG, ROOT, NO_SCAN, [bad], tag=("acme/app", "2.0"))
    assert ledger.image(alice.address, digest) is None
    assert ledger.taggers("acme/app", "2.0") == []
    receipt = alice.ledger.publish(
        digest, CONFIG, ROOT, NO_SCAN, [share_for(bob)], tag=("acme/app", "1.0")
    )
    assert ledger.resolve(alice.address, "acme/app", "1.0") == digest
    events = ledger.audit_log(AuditQuery(digest=digest))
    assert [e.name for e in events] == ["ImagePublished", "GrantAdded", "TagMoved"]
    assert {e.block_number for e in events} == {receipt.block_number}


# -- tags, attestations, keys, usage --------------------------------------------------------


def test_tags_are_each_publishers_own(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    bobs = publish(bob, "bob's")
    bob.ledger.set_tag("acme/app", "latest", bobs)  # first, as a squatter would
    first, second = publish(alice, "one"), publish(alice, "two")
    alice.ledger.set_tag("acme/app", "latest", first)
    ledger.advance(5)
    alice.ledger.set_tag("acme/app", "latest", second)
    history = ledger.tag_history("acme/app", "latest", alice.address)
    assert [(t.digest, t.previous) for t in history] == [(first, None), (second, first)]
    assert history[1].at == history[0].at + 5 and history[1].ref == "acme/app:latest"
    assert len(ledger.tag_history("acme/app", "latest")) == 3
    assert [t.digest for t in ledger.tags_of(alice.address, second)] == [second]
    assert ledger.tags_of(alice.address, first) == []
    assert [(t.publisher, t.digest) for t in ledger.taggers("acme/app", "latest")] == [
        (bob.address, bobs),
        (alice.address, second),
    ]
    assert ledger.resolve(alice.address, "acme/app", "latest") == second
    assert ledger.resolve(bob.address, "acme/app", "latest") == bobs
    assert ledger.resolve(alice.address, "acme/app", "nope") is None
    with pytest.raises(NotFoundError, match="has no record"):
        bob.ledger.set_tag("bob/app", "1.0", first)  # only to one's own records


def test_anyone_attests_to_a_record_and_only_they_revoke(
    ledger: FakeLedger, alice: Actor, bob: Actor, carol: Actor
) -> None:
    digest = publish(alice)
    bob.ledger.attest(alice.address, digest, "approved", digest_of("payload"), "bafy-approval")
    with pytest.raises(NotFoundError, match=f"{bob.address} has no record"):
        bob.ledger.attest(bob.address, digest, "approved", digest_of("payload"))
    with pytest.raises(InvalidInputError, match="needs a kind"):
        bob.ledger.attest(alice.address, digest, "", digest_of("payload"))
    with pytest.raises(InvalidInputError, match="1 to 32 bytes"):
        bob.ledger.attest(alice.address, digest, "k" * 33, digest_of("payload"))
    (attestation,) = ledger.attestations(alice.address, digest)
    assert (attestation.attester, attestation.kind, attestation.index, attestation.live) == (
        bob.address,
        "approved",
        1,
        True,
    )
    record = ledger.image(alice.address, digest)
    assert record is not None and record.attestation_count == 1

    with pytest.raises(PermissionDeniedError, match="only its attester"):
        carol.ledger.revoke_attestation(alice.address, digest, 1)
    with pytest.raises(NotFoundError, match="has no attestation 2"):
        bob.ledger.revoke_attestation(alice.address, digest, 2)
    ledger.advance(30)
    bob.ledger.revoke_attestation(alice.address, digest, 1)
    (revoked,) = ledger.attestations(alice.address, digest)
    assert revoked.revoked_at == attestation.at + 30 and not revoked.live
    with pytest.raises(ConflictError, match="already revoked"):
        bob.ledger.revoke_attestation(alice.address, digest, 1)


def test_usage_is_reported_by_the_publisher_or_a_grantee(
    ledger: FakeLedger, alice: Actor, bob: Actor, carol: Actor
) -> None:
    digest = publish(alice)
    alice.ledger.grant(digest, share_for(bob))
    with pytest.raises(InvalidInputError, match="usage window"):
        bob.ledger.report_usage(alice.address, digest, 10, 10, ROOT, digest_of("blob"))
    with pytest.raises(PermissionDeniedError, match="may not report usage"):
        carol.ledger.report_usage(alice.address, digest, 10, 20, ROOT, digest_of("blob"))
    bob.ledger.report_usage(alice.address, digest, 10, 20, ROOT, digest_of("blob"))
    (report,) = ledger.usage_reports(alice.address, digest)
    assert (report.reporter, report.window_start, report.window_end) == (bob.address, 10, 20)


def test_actors_keys_are_in_the_directory_and_wrap_for_real(
    engines: Engines, alice: Actor, bob: Actor
) -> None:
    entry = engines.ledger.keys_of(alice.address)
    assert entry is not None and entry.address == alice.address
    key = recipient_key(engines, bob, alice.address)
    assert key.thumbprint() == alice.keys.public_key.thumbprint()
    assert not key.has_private
    wrapped = keywrap.wrap(b"layer key", [key, bob.keys.public_key])
    assert keywrap.unwrap(wrapped, alice.keys.private_key()) == b"layer key"
    assert keywrap.unwrap(wrapped, bob.keys.private_key()) == b"layer key"


def test_key_registration_is_bounded(alice: Actor) -> None:
    with pytest.raises(InvalidInputError, match="public keys"):
        alice.ledger.register_keys(b"", b"\x01")
    with pytest.raises(InvalidInputError, match="public keys"):
        alice.ledger.register_keys(b"k" * 4097, b"\x01")


# -- faults, threads, the audit log ---------------------------------------------------------


def test_an_injected_fault_fails_one_write(ledger: FakeLedger, alice: Actor) -> None:
    ledger.fail_next_write(UnavailableError("node went away"))
    with pytest.raises(UnavailableError):
        publish(alice, "lost")
    assert ledger.image(alice.address, digest_of("lost")) is None
    ledger.fail_next_write(UnavailableError("timed out"), landed=True)
    with pytest.raises(UnavailableError):
        publish(alice, "landed")
    assert ledger.image(alice.address, digest_of("landed")) is not None
    publish(alice, "fine")


def test_writes_from_many_threads_all_land(ledger: FakeLedger, alice: Actor) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            publish(alice, f"image {n}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    published = [t for t in ledger.sent if t.function == "publish"]
    assert len(published) == 16
    assert len({t.receipt.block_number for t in published}) == 16


def test_the_audit_log_reads_like_the_contracts(
    ledger: FakeLedger, alice: Actor, bob: Actor
) -> None:
    digest = publish(alice)
    ledger.advance(100)
    alice.ledger.grant(digest, share_for(bob))
    bob.ledger.attest(alice.address, digest, "approved", digest_of("ok"))
    (event,) = ledger.audit_log(AuditQuery(kinds=frozenset({"GrantAdded"})))
    assert event.fields["recipient"] == str(bob.address)  # checksummed
    assert event.fields["manifestHash"] == "0x" + share_for(bob).manifest_hash[7:]
    assert event.fields["manifestCid"] == ROOT
    assert (event.actor, event.publisher, event.digest) == (alice.address, alice.address, digest)
    assert event.at == event.fields["at"] == ledger.now()
    (attested,) = ledger.audit_log(AuditQuery(actor=bob.address, kinds=frozenset({"Attested"})))
    assert (attested.actor, attested.publisher) == (bob.address, alice.address)
    assert attested.fields["index"] == 1
    published = ledger.audit_log(AuditQuery(until=ledger.now() - 1, digest=digest))
    assert [e.name for e in published] == ["ImagePublished"]
    assert [e.name for e in ledger.audit_log(AuditQuery(since=ledger.now()))] == [
        "GrantAdded",
        "Attested",
    ]
    # Events of no record (keys) appear only where no record is asked for.
    assert "KeysRegistered" in {e.name for e in ledger.audit_log()}
    assert "KeysRegistered" not in {
        e.name for e in ledger.audit_log(AuditQuery(publisher=alice.address))
    }


def test_the_clock_only_goes_forward(tmp_path: Path) -> None:
    ledger = FakeLedger(start=1000, local_time=2000)
    assert ledger.now() == 2000  # the later of the chain's and the local clock
    ledger.advance(5000)
    assert ledger.now() == 6000
    with pytest.raises(ValueError):
        ledger.advance(-1)


# -- accounts and names ---------------------------------------------------------------------


def test_the_directory_names_identities_and_passes_addresses() -> None:
    directory = FakeDirectory({"alice": address_of("alice")})
    assert directory.resolve("alice") == address_of("alice")
    other = str(address_of("other"))
    assert directory.resolve(other.lower()) == Address.parse(other)
    with pytest.raises(NotFoundError, match=r"'mallory'.*known: alice"):
        directory.resolve("mallory")


def test_the_fake_signer_never_signs() -> None:
    signer = FakeSigner(address_of("alice"))
    with pytest.raises(AssertionError):
        signer.sign_transaction({"nonce": 0})


def test_actors_share_the_ledger_and_their_directory(
    directory: FakeDirectory, alice: Actor, bob: Actor
) -> None:
    assert alice.directory.resolve("bob") == bob.address
    assert bob.directory.resolve("alice") == alice.address
    assert alice.ledger.address == alice.address != bob.address


# -- the store ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "options"),
    [
        (0, None),
        (1000, None),
        (600 * 1024, None),  # several chunks under one node
        (600 * 1024, ImportOptions(cid_version=0)),
        (5000, ImportOptions(chunk_size=1024, max_links=2)),  # a deeper tree
    ],
)
def test_store_cids_are_the_real_stores(
    tmp_path: Path, store: FakeStore, size: int, options: ImportOptions | None
) -> None:
    data = pseudo_random(size, seed=f"fake store {size}")
    real = EmbeddedStore(tmp_path / "real")
    try:
        expected = real.add_bytes(data, options)
    finally:
        real.close()
    entry = store.add_bytes(data, options)
    assert entry == expected
    assert b"".join(store.cat(str(entry.cid))) == data
    assert store.pins() == [entry.cid]


def test_store_directories_and_cars_match_the_real_store(tmp_path: Path, store: FakeStore) -> None:
    real = EmbeddedStore(tmp_path / "real")
    try:
        files = [("b.txt", b"bee"), ("a.txt", b"ay" * 200_000)]
        real_children = [(name, real.add_bytes(data, pin=False)) for name, data in files]
        expected = real.add_directory(real_children)
        exported = io.BytesIO()
        real.export_car(str(expected.cid), exported)
    finally:
        real.close()
    children = [(name, store.add_bytes(data, pin=False)) for name, data in files]
    assert store.add_directory(children) == expected
    assert [e.name for e in store.ls(str(expected.cid))] == ["a.txt", "b.txt"]

    fresh = FakeStore()
    assert fresh.import_car(io.BytesIO(exported.getvalue())) == [expected.cid]
    assert b"".join(fresh.cat(f"{expected.cid}/b.txt")) == b"bee"


def test_store_counts_reads_and_catches_a_corrupt_block(store: FakeStore) -> None:
    entry = store.add_bytes(b"manifest bytes")
    assert store.reads_of(entry.cid) == 0
    assert store.read_bytes(str(entry.cid), 1024) == b"manifest bytes"
    assert store.reads_of(entry.cid) == 1
    assert store.reads_of(str(entry.cid)) == 1
    store.corrupt(entry.cid)
    with pytest.raises(CorruptError, match="do not match"):
        store.read_bytes(str(entry.cid), 1024)
    store.lose(entry.cid)
    with pytest.raises(NotFoundError):
        store.get_block(entry.cid)


def test_store_pins_releases_and_collects(store: FakeStore) -> None:
    kept = store.add_bytes(b"kept")
    shared = store.add_bytes(b"shared", pin=False)
    gone = store.add_directory([("x", shared)])
    also = store.add_directory([("y", shared)])
    assert store.release([gone.cid, Cid.parse(str(gone.cid))]) == [gone.cid]
    assert not store.has(gone.cid)
    assert store.has(shared.cid)  # still reached from another pin
    with pytest.raises(NotFoundError, match="not pinned"):
        store.unpin(gone.cid)
    store.add_bytes(b"loose", pin=False)
    report = store.gc()
    assert report.blocks_removed == 1
    assert set(store.pins()) == {kept.cid, also.cid}

    store.lose(shared.cid)
    with pytest.raises(NotFoundError, match="incomplete"):
        store.pin(also.cid)


def test_a_failed_add_stores_nothing(store: FakeStore) -> None:
    store.fail_next_add(UnavailableError("upload cut off"))
    with pytest.raises(UnavailableError):
        store.add_bytes(b"layer")
    assert store.block_count() == 0 and store.pins() == []
    assert b"".join(store.cat(str(store.add_bytes(b"layer").cid))) == b"layer"


def test_malformed_digests_are_refused_by_reads(ledger: FakeLedger) -> None:
    who = address_of("alice")
    reads: list[Callable[[], object]] = [
        lambda: ledger.image(who, "sha256:nope"),
        lambda: ledger.records("sha256:nope"),
        lambda: ledger.grants(who, "sha256:nope"),
        lambda: ledger.status_history(who, "sha256:nope"),
        lambda: ledger.attestations(who, "sha256:nope"),
        lambda: ledger.audit_log(AuditQuery(digest="sha256:nope")),
    ]
    for read in reads:
        with pytest.raises(InvalidInputError, match="not a sha256 digest"):
            read()
