"""The fakes keep the rules that the real ledger and stores keep, where use cases meet them."""

from __future__ import annotations

import hashlib
import io
import threading
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
from sedis.core.records import GrantRequest, ScanSummary, Status
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


# -- the ledger: images and status -------------------------------------------------------


def test_a_digest_is_published_once(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    sent = len(ledger.sent)
    with pytest.raises(ConflictError, match="already published by"):
        bob.ledger.publish(digest, CONFIG, ROOT, NO_SCAN)
    with pytest.raises(ConflictError):
        alice.ledger.publish(digest, CONFIG, ROOT, NO_SCAN)
    record = ledger.image(digest)
    assert record is not None and record.owner == alice.address
    assert len(ledger.sent) == sent


def test_publication_is_the_first_status_entry(ledger: FakeLedger, alice: Actor) -> None:
    digest = publish(alice)
    ledger.advance(60)
    alice.ledger.set_status(digest, Status.UNTRUSTED, "CVE-2026-0001")
    first, change = ledger.status_history(digest)
    assert (first.index, first.status, first.previous, first.reason, first.by) == (
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
    record = ledger.image(digest)
    assert record is not None and (record.status, record.status_changes) == (Status.UNTRUSTED, 1)
    assert ledger.statuses([digest, digest_of("never")]) == {
        digest: Status.UNTRUSTED,
        digest_of("never"): Status.UNKNOWN,
    }


def test_status_changes_follow_the_contract(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    with pytest.raises(PermissionDeniedError, match="only the owner"):
        bob.ledger.set_status(digest, Status.REVOKED, "mine now")
    with pytest.raises(ConflictError, match="already TRUSTED"):
        alice.ledger.set_status(digest, Status.TRUSTED, "again")
    with pytest.raises(InvalidInputError, match="needs a reason"):
        alice.ledger.set_status(digest, Status.UNTRUSTED, "")
    with pytest.raises(InvalidInputError):
        alice.ledger.set_status(digest, Status.UNKNOWN, "forget it")
    with pytest.raises(NotFoundError, match="not published"):
        alice.ledger.set_status(digest_of("never"), Status.REVOKED, "gone")
    alice.ledger.set_status(digest, Status.REVOKED, "leaked key")
    with pytest.raises(ConflictError, match="revoked"):
        alice.ledger.set_status(digest, Status.TRUSTED, "undo")
    with pytest.raises(ConflictError, match="revoked"):
        alice.ledger.grant(digest, share_for(bob))
    with pytest.raises(ConflictError, match="revoked"):
        alice.ledger.set_tag("acme/app", "1.0", digest)
    assert [e.status for e in ledger.status_history(digest)] == [Status.TRUSTED, Status.REVOKED]


def test_an_inconsistent_scan_summary_is_refused(alice: Actor) -> None:
    with pytest.raises(InvalidInputError, match="scan summary"):
        alice.ledger.publish(digest_of("app"), CONFIG, ROOT, ScanSummary(high=1))
    with pytest.raises(InvalidInputError, match="scan summary"):
        alice.ledger.publish(digest_of("app"), CONFIG, ROOT, ScanSummary(not_scanned=True, low=1))
    scanned = ScanSummary(
        high=1, report_digest=digest_of("report"), report_cid=ROOT, vulndb_digest=digest_of("db")
    )
    alice.ledger.publish(digest_of("app"), CONFIG, ROOT, scanned)


def test_images_are_listed_by_owner_and_config(
    ledger: FakeLedger, alice: Actor, bob: Actor
) -> None:
    first, second = publish(alice, "one"), publish(bob, "two")
    other_config = digest_of("other config")
    alice.ledger.publish(digest_of("three"), other_config, ROOT, NO_SCAN)
    assert [r.digest for r in ledger.images()] == [first, second, digest_of("three")]
    assert [r.digest for r in ledger.images(owner=bob.address)] == [second]
    assert [r.digest for r in ledger.images_by_config(other_config)] == [digest_of("three")]


# -- grants --------------------------------------------------------------------------------


def test_only_the_owner_grants_and_revokes(
    ledger: FakeLedger, alice: Actor, bob: Actor, carol: Actor
) -> None:
    digest = publish(alice)
    with pytest.raises(PermissionDeniedError, match="may change its grants"):
        bob.ledger.grant(digest, share_for(carol))
    alice.ledger.grant(digest, share_for(bob))
    with pytest.raises(PermissionDeniedError):
        carol.ledger.revoke_grant(digest, bob.address)
    assert ledger.grants(digest) == [ledger.grant_of(digest, bob.address)]


def test_a_revoked_grant_says_when(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    alice.ledger.grant(digest, share_for(bob))
    granted = ledger.grant_of(digest, bob.address)
    assert granted is not None
    assert (granted.granted_at, granted.revoked_at, granted.by) == (
        ledger.now(),
        None,
        alice.address,
    )
    ledger.advance(300)
    alice.ledger.revoke_grant(digest, bob.address)
    revoked = ledger.grant_of(digest, bob.address)
    assert revoked is not None and revoked.revoked_at == granted.granted_at + 300
    assert not revoked.active_at(ledger.now())
    with pytest.raises(NotFoundError, match="holds no grant"):
        alice.ledger.revoke_grant(digest, bob.address)
    # A new grant replaces the revoked one.
    alice.ledger.grant(digest, share_for(bob))
    again = ledger.grant_of(digest, bob.address)
    assert again is not None and again.revoked_at is None
    assert ledger.grants_to(bob.address) == [again]


def test_a_grant_expires_by_the_clock(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    with pytest.raises(InvalidInputError, match="not after the chain's time"):
        alice.ledger.grant(digest, share_for(bob, expires_at=ledger.now()))
    alice.ledger.grant(digest, share_for(bob, expires_at=ledger.now() + 10))
    grant = ledger.grant_of(digest, bob.address)
    assert grant is not None and grant.active_at(ledger.now())
    ledger.advance(10)
    assert not grant.active_at(ledger.now())


def test_change_grants_is_all_or_none(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    alice.ledger.grant(digest, share_for(bob))
    before = ledger.audit_log(digest)
    expired = share_for(alice, expires_at=ledger.now() - 1)
    with pytest.raises(InvalidInputError):
        alice.ledger.change_grants(digest, [bob.address], [expired])
    still = ledger.grant_of(digest, bob.address)
    assert still is not None and still.revoked_at is None
    assert ledger.audit_log(digest) == before

    receipt = alice.ledger.change_grants(digest, [bob.address], [share_for(alice)])
    events = ledger.audit_log(digest)[len(before) :]
    assert [e.name for e in events] == ["GrantRevoked", "GrantAdded"]
    assert {e.tx_hash for e in events} == {receipt.tx_hash}
    assert [e.log_index for e in events] == [0, 1]


def test_a_publish_with_grants_and_tag_is_all_or_none(
    ledger: FakeLedger, alice: Actor, bob: Actor
) -> None:
    bob.ledger.publish(digest_of("bob's"), CONFIG, ROOT, NO_SCAN, tag=("acme/app", "1.0"))
    digest = digest_of("app")
    with pytest.raises(PermissionDeniedError, match="first publisher of 'acme/app'"):
        alice.ledger.publish(
            digest, CONFIG, ROOT, NO_SCAN, [share_for(bob)], tag=("acme/app", "2.0")
        )
    assert ledger.image(digest) is None and ledger.grant_of(digest, bob.address) is None
    receipt = alice.ledger.publish(
        digest, CONFIG, ROOT, NO_SCAN, [share_for(bob)], tag=("alice/app", "1.0")
    )
    assert ledger.resolve("alice/app", "1.0") == digest
    assert [e.name for e in ledger.audit_log(digest)] == [
        "ImagePublished",
        "GrantAdded",
        "TagMoved",
    ]
    assert {e.block_number for e in ledger.audit_log(digest)} == {receipt.block_number}


# -- tags, attestations, keys, usage --------------------------------------------------------


def test_a_names_first_tagger_owns_it(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    first, second = publish(alice, "one"), publish(alice, "two")
    alice.ledger.set_tag("acme/app", "latest", first)
    ledger.advance(5)
    alice.ledger.set_tag("acme/app", "latest", second)
    assert ledger.name_owner("acme/app") == alice.address
    history = ledger.tag_history("acme/app", "latest")
    assert [(t.digest, t.previous) for t in history] == [(first, None), (second, first)]
    assert history[1].at == history[0].at + 5 and history[1].ref == "acme/app:latest"
    assert [t.digest for t in ledger.tags_of(second)] == [second]
    assert ledger.tags_of(first) == []

    bobs = publish(bob, "bob's")
    with pytest.raises(PermissionDeniedError, match="may move its tags"):
        bob.ledger.set_tag("acme/app", "latest", bobs)
    with pytest.raises(PermissionDeniedError, match="may change its tags"):
        bob.ledger.set_tag("bob/app", "1.0", first)  # only to one's own images
    assert ledger.resolve("acme/app", "latest") == second
    assert ledger.resolve("acme/app", "nope") is None


def test_anyone_attests_to_a_published_image(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    bob.ledger.attest(digest, "approval", digest_of("payload"), "bafy-approval")
    with pytest.raises(NotFoundError):
        bob.ledger.attest(digest_of("never"), "approval", digest_of("payload"))
    with pytest.raises(InvalidInputError):
        bob.ledger.attest(digest, "", digest_of("payload"))
    (attestation,) = ledger.attestations(digest)
    assert (attestation.attester, attestation.kind, attestation.index) == (
        bob.address,
        "approval",
        1,
    )
    record = ledger.image(digest)
    assert record is not None and record.attestation_count == 1


def test_usage_reports_need_a_window(ledger: FakeLedger, alice: Actor, bob: Actor) -> None:
    digest = publish(alice)
    with pytest.raises(InvalidInputError, match="usage window"):
        bob.ledger.report_usage(digest, 10, 10, ROOT, digest_of("blob"))
    bob.ledger.report_usage(digest, 10, 20, ROOT, digest_of("blob"))
    (report,) = ledger.usage_reports(digest)
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
    assert ledger.image(digest_of("lost")) is None
    ledger.fail_next_write(UnavailableError("timed out"), landed=True)
    with pytest.raises(UnavailableError):
        publish(alice, "landed")
    assert ledger.image(digest_of("landed")) is not None
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
    alice.ledger.grant(digest, share_for(bob))
    added = [e for e in ledger.audit_log(digest) if e.name == "GrantAdded"]
    (event,) = added
    assert event.fields["recipient"] == str(bob.address)  # checksummed
    assert event.fields["manifestHash"] == "0x" + share_for(bob).manifest_hash[7:]
    assert event.fields["manifestCid"] == ROOT
    # Events of no image (keys, names) appear only in the whole log.
    names = {e.name for e in ledger.audit_log()}
    assert "KeysRegistered" in names and "KeysRegistered" not in {
        e.name for e in ledger.audit_log(digest)
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
    for read in (ledger.image, ledger.grants, ledger.status_history, ledger.audit_log):
        with pytest.raises(InvalidInputError, match="not a sha256 digest"):
            read("sha256:nope")
