"""unshare: a revoked grant, by the record's publisher only; with rotate, a new key epoch
that the removed recipient's keys do not open, and the old epoch released from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from sedis.core.records import Grant, Status
from sedis.service import access, sealing
from sedis.service.engines import Actor, Engines
from sedis.store.cid import Cid
from tests.unit.service.fakes import (
    FakeDirectory,
    FakeLedger,
    FakeStore,
    address_of,
    make_actor,
)
from tests.unit.service.images import (
    Layout,
    layout_blobs,
    make_layout,
    publish_layout,
    pull_to,
    source_blobs,
)

ALICE = address_of("alice")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return make_layout(tmp_path / "src", layers=2)


@pytest.fixture
def digest(engines: Engines, alice: Actor, bob: Actor, carol: Actor, layout: Layout) -> str:
    return publish_layout(engines, alice, layout, "app:v1", ["bob", "carol"]).digest


def held(ledger: FakeLedger, digest: str, who: Actor) -> Grant:
    grant = ledger.grant_of(ALICE, digest, who.address)
    assert grant is not None
    return grant


def root_of(ledger: FakeLedger, digest: str) -> str:
    record = ledger.image(ALICE, digest)
    assert record is not None
    return record.root_cid


def epoch_of(store: FakeStore, grant: Grant) -> int:
    return access.fetch_manifest(store, grant.manifest_cid, grant.manifest_hash).epoch


def sealed_blob_cids(store: FakeStore, grant: Grant) -> list[Cid]:
    """The CIDs of the ciphertext that a grant's share manifest opens."""
    share = access.fetch_manifest(store, grant.manifest_cid, grant.manifest_hash)
    blobs = [*share.manifest.descriptors(), share.source]
    return [sealing.blob_cid(desc) for desc in blobs]


def test_unshare_revokes_the_grant(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    digest: str,
    tmp_path: Path,
) -> None:

    ledger.advance(5)
    before = len(ledger.sent)
    result = access.unshare(engines, alice, "app:v1", "bob")

    (write,) = ledger.sent[before:]
    assert (write.function, write.sender) == ("revokeGrant", alice.address)
    assert result.transactions == (write.receipt.tx_hash,)
    assert (result.digest, result.recipient, result.rotated, result.epoch) == (
        digest,
        bob.address,
        False,
        0,
    )
    assert result.regranted == () and result.released == ()
    assert held(ledger, digest, bob).revoked_at == ledger.clock
    assert held(ledger, digest, carol).revoked_at is None

    with pytest.raises(
        PermissionDeniedError, match=f"{bob.address} has no grant to {digest} from {ALICE}"
    ):
        pull_to(engines, bob, digest, tmp_path / "bob")
    assert not (tmp_path / "bob").exists()


def test_only_the_records_publisher_may_unshare(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, carol: Actor, digest: str
) -> None:
    before = len(ledger.sent)
    for rotate in (False, True):
        with pytest.raises(NotFoundError, match=f"^you have no record of {digest} \\(recorded"):
            access.unshare(engines, bob, digest, "carol", rotate=rotate)
    assert len(ledger.sent) == before
    assert held(ledger, digest, carol).revoked_at is None


def test_unsharing_someone_without_a_live_grant_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    digest: str,
) -> None:
    access.unshare(engines, alice, digest, "bob")
    before = len(ledger.sent)
    with pytest.raises(NotFoundError, match=f"{bob.address} holds no live grant to {digest}"):
        access.unshare(engines, alice, digest, "bob")

    stranger = "0x" + "42" * 20
    with pytest.raises(NotFoundError, match="holds no live grant"):
        access.unshare(engines, alice, digest, stranger)
    with pytest.raises(NotFoundError, match=f"holds no grant to {digest}"):
        access.unshare(engines, alice, digest, stranger, rotate=True)
    assert len(ledger.sent) == before


def test_an_expired_grant_is_not_live(
    engines: Engines, ledger: FakeLedger, alice: Actor, carol: Actor, digest: str
) -> None:
    access.share(engines, alice, digest, "carol", expires_at=ledger.now() + 60)
    ledger.advance(61)
    with pytest.raises(NotFoundError, match=f"{carol.address} holds no live grant"):
        access.unshare(engines, alice, digest, "carol")


def test_the_owner_cannot_unshare_itself(
    engines: Engines, ledger: FakeLedger, alice: Actor, digest: str
) -> None:
    before = len(ledger.sent)
    for rotate in (False, True):
        with pytest.raises(
            InvalidInputError, match="the owner cannot unshare an image from itself"
        ):
            access.unshare(engines, alice, digest, "alice", rotate=rotate)
    assert len(ledger.sent) == before
    assert held(ledger, digest, alice).revoked_at is None


def test_unshare_with_rotate_moves_everyone_left_to_a_new_epoch(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    digest: str,
    layout: Layout,
    tmp_path: Path,
) -> None:
    old_bob = held(ledger, digest, bob)
    old_root = Cid.parse(root_of(ledger, digest))
    old_blobs = sealed_blob_cids(store, old_bob)
    assert all(store.has(cid) for cid in old_blobs)

    before = len(ledger.sent)
    result = access.unshare(engines, alice, "app:v1", "bob", rotate=True)

    (write,) = ledger.sent[before:]  # the revoke and every re-grant in one transaction
    assert (write.function, write.sender) == ("grant", alice.address)
    assert result.transactions == (write.receipt.tx_hash,)
    assert (result.digest, result.recipient, result.rotated, result.epoch) == (
        digest,
        bob.address,
        True,
        1,
    )
    assert result.regranted == (carol.address,)
    assert held(ledger, digest, bob).revoked_at is not None
    assert epoch_of(store, held(ledger, digest, carol)) == 1
    assert epoch_of(store, held(ledger, digest, alice)) == 1

    # The old epoch is released: the published layout (holding the share manifest that
    # the first grants name) and its ciphertext leave the store.
    released = {Cid.parse(cid) for cid in result.released}
    assert old_root in released
    assert released.isdisjoint(store.pins())
    assert not store.has(Cid.parse(old_bob.manifest_cid))
    assert not any(store.has(cid) for cid in old_blobs)

    pull_to(engines, carol, "app:v1", tmp_path / "carol")
    assert layout_blobs(tmp_path / "carol") == source_blobs(layout)
    pull_to(engines, alice, "app:v1", tmp_path / "alice")
    assert layout_blobs(tmp_path / "alice") == source_blobs(layout)
    with pytest.raises(PermissionDeniedError, match=f"{bob.address} has no grant"):
        pull_to(engines, bob, "app:v1", tmp_path / "bob")
    assert not (tmp_path / "bob").exists()


def test_a_rotation_whose_write_failed_completes_when_run_again(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    digest: str,
    layout: Layout,
    tmp_path: Path,
) -> None:
    old_root = Cid.parse(root_of(ledger, digest))
    ledger.fail_next_write(UnavailableError("the node went away"))
    with pytest.raises(UnavailableError):
        access.unshare(engines, alice, digest, "bob", rotate=True)
    assert held(ledger, digest, bob).revoked_at is None
    assert old_root in store.pins()  # nothing is released before the ledger has moved

    result = access.unshare(engines, alice, digest, "bob", rotate=True)
    assert (result.epoch, result.regranted) == (1, (carol.address,))
    assert old_root in {Cid.parse(cid) for cid in result.released}
    assert held(ledger, digest, bob).revoked_at is not None
    pull_to(engines, carol, digest, tmp_path / "carol")
    assert layout_blobs(tmp_path / "carol") == source_blobs(layout)


def test_a_rotation_run_again_after_it_landed_changes_nothing(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, carol: Actor, digest: str
) -> None:
    first = access.unshare(engines, alice, digest, "bob", rotate=True)
    before = len(ledger.sent)
    again = access.unshare(engines, alice, digest, "bob", rotate=True)
    assert (again.rotated, again.epoch) == (True, first.epoch)
    assert again.transactions == () and again.regranted == () and again.released == ()
    assert len(ledger.sent) == before


def test_a_revoked_image_is_not_rotated(
    engines: Engines, ledger: FakeLedger, store: FakeStore, alice: Actor, digest: str
) -> None:
    alice.ledger.set_status(digest, Status.REVOKED, "withdrawn")
    before, blocks = len(ledger.sent), store.block_count()
    with pytest.raises(ConflictError, match=f"{digest} is revoked"):
        access.unshare(engines, alice, digest, "bob", rotate=True)
    assert len(ledger.sent) == before and store.block_count() == blocks


def test_a_second_rotation_releases_the_first_rotations_epoch(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    directory: FakeDirectory,
    digest: str,
    layout: Layout,
    tmp_path: Path,
) -> None:
    dave = make_actor(engines, "dave", directory)
    access.share(engines, alice, digest, "dave")
    access.unshare(engines, alice, digest, "bob", rotate=True)
    carol_epoch_1 = held(ledger, digest, carol)
    dave_epoch_1 = held(ledger, digest, dave)
    epoch_1_blobs = sealed_blob_cids(store, carol_epoch_1)

    result = access.unshare(engines, alice, digest, "carol", rotate=True)
    assert (result.epoch, result.regranted) == (2, (dave.address,))
    released = {Cid.parse(cid) for cid in result.released}
    assert Cid.parse(carol_epoch_1.manifest_cid) in released
    assert Cid.parse(dave_epoch_1.manifest_cid) in released
    assert released.isdisjoint(store.pins())
    assert not any(store.has(cid) for cid in epoch_1_blobs)
    assert epoch_of(store, held(ledger, digest, dave)) == 2

    pull_to(engines, dave, digest, tmp_path / "dave")
    assert layout_blobs(tmp_path / "dave") == source_blobs(layout)
    with pytest.raises(PermissionDeniedError, match=f"{carol.address} has no grant"):
        pull_to(engines, carol, digest, tmp_path / "carol")
