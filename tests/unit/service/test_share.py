"""share: a grant with its own share manifest for one more recipient, of the actor's own
record only."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.service import access
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
    register_unusable_key,
    source_blobs,
)

ALICE = address_of("alice")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return make_layout(tmp_path / "src")


@pytest.fixture
def digest(engines: Engines, alice: Actor, layout: Layout) -> str:
    return publish_layout(engines, alice, layout, "app:v1").digest


def test_a_share_records_a_grant_with_its_expiry(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    bob: Actor,
    digest: str,
    layout: Layout,
    tmp_path: Path,
) -> None:
    expires_at = ledger.now() + 3600
    before = len(ledger.sent)
    result = access.share(engines, alice, "app:v1", "bob", expires_at=expires_at)

    (write,) = ledger.sent[before:]
    assert (write.function, write.sender) == ("grant", alice.address)
    assert result.transactions == (write.receipt.tx_hash,)
    assert (result.digest, result.recipient, result.expires_at) == (
        digest,
        bob.address,
        expires_at,
    )
    grant = ledger.grant_of(ALICE, digest, bob.address)
    assert grant is not None
    assert (grant.manifest_cid, grant.expires_at, grant.revoked_at, grant.publisher) == (
        result.manifest_cid,
        expires_at,
        None,
        alice.address,
    )
    assert Cid.parse(result.manifest_cid) in store.pins()
    share = access.fetch_manifest(store, grant.manifest_cid, grant.manifest_hash)
    assert share.epoch == 0

    pull_to(engines, bob, digest, tmp_path / "bob")
    assert layout_blobs(tmp_path / "bob") == source_blobs(layout)


def test_a_share_without_expiry_never_lapses(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, digest: str
) -> None:

    result = access.share(engines, alice, digest, bob.address.hex)
    assert result.expires_at is None and result.recipient == bob.address
    grant = ledger.grant_of(ALICE, digest, bob.address)
    assert grant is not None and grant.expires_at is None
    ledger.advance(10 * 365 * 24 * 3600)
    assert grant.active_at(ledger.now())


def test_sharing_again_replaces_the_grant(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, digest: str
) -> None:
    first = access.share(engines, alice, digest, "bob", expires_at=ledger.now() + 60)
    ledger.advance(30)
    second = access.share(engines, alice, digest, "bob")
    grant = ledger.grant_of(ALICE, digest, bob.address)
    assert grant is not None
    assert grant.manifest_cid == second.manifest_cid != first.manifest_cid
    assert grant.expires_at is None


def test_a_record_the_actor_does_not_have_is_not_shared(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, carol: Actor, digest: str
) -> None:
    before = len(ledger.sent)
    with pytest.raises(NotFoundError) as by_name:
        access.share(engines, bob, "app:v1", "carol")
    assert str(by_name.value) == f"you have no image named app:v1 (tagged by {alice.address})"
    with pytest.raises(NotFoundError) as by_digest:
        access.share(engines, bob, digest, "carol")
    assert str(by_digest.value) == f"you have no record of {digest} (recorded by {alice.address})"
    assert len(ledger.sent) == before
    assert ledger.grant_of(ALICE, digest, carol.address) is None


def test_an_image_never_published_cannot_be_shared(
    engines: Engines, alice: Actor, bob: Actor
) -> None:
    unknown = "sha256:" + "ab" * 32
    with pytest.raises(NotFoundError, match=f"^you have no record of {unknown}$"):
        access.share(engines, alice, unknown, "bob")
    with pytest.raises(NotFoundError, match=r"^you have no image named nothing:v1$"):
        access.share(engines, alice, "nothing:v1", "bob")


def test_an_unknown_recipient_is_refused(
    engines: Engines, ledger: FakeLedger, alice: Actor, digest: str
) -> None:
    before = len(ledger.sent)
    with pytest.raises(NotFoundError, match="no identity or contact is named 'mallory'"):
        access.share(engines, alice, digest, "mallory")
    assert len(ledger.sent) == before


def test_a_recipient_without_keys_or_with_an_unusable_key_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    directory: FakeDirectory,
    digest: str,
) -> None:
    dave = make_actor(engines, "dave", directory, register=False)
    before, blocks = len(ledger.sent), store.block_count()
    with pytest.raises(NotFoundError, match=f"{dave.address} has no keys in the key directory"):
        access.share(engines, alice, digest, "dave")
    register_unusable_key(dave)
    before += 1
    with pytest.raises(InvalidInputError, match="has registered an encryption key that cannot"):
        access.share(engines, alice, digest, "dave")
    assert len(ledger.sent) == before
    assert store.block_count() == blocks
    assert ledger.grant_of(ALICE, digest, dave.address) is None


def test_a_past_expiry_is_refused_before_anything_is_stored(
    engines: Engines, ledger: FakeLedger, store: FakeStore, alice: Actor, bob: Actor, digest: str
) -> None:
    before, blocks = len(ledger.sent), store.block_count()
    with pytest.raises(InvalidInputError, match="the grant would have expired already"):
        access.share(engines, alice, digest, "bob", expires_at=ledger.now())
    assert (len(ledger.sent), store.block_count()) == (before, blocks)


def test_a_revoked_image_is_refused_before_anything_is_stored(
    engines: Engines, ledger: FakeLedger, store: FakeStore, alice: Actor, bob: Actor, digest: str
) -> None:
    from sedis.core.errors import ConflictError
    from sedis.core.records import Status

    alice.ledger.set_status(digest, Status.REVOKED, "withdrawn")
    before, blocks = len(ledger.sent), store.block_count()
    with pytest.raises(ConflictError, match=f"{digest} is revoked; its status, grants"):
        access.share(engines, alice, digest, "bob")
    assert (len(ledger.sent), store.block_count()) == (before, blocks)
