"""pull: the publisher and live grants get the very bytes published, of an image TRUSTED
under the policy; every refusal leaves nothing at the destination."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.core.errors import CorruptError, NotFoundError, PermissionDeniedError
from sedis.core.records import GrantRequest, Status
from sedis.service import access, sealing
from sedis.service.engines import Actor, Engines
from tests.oci_images import sha
from tests.unit.service.fakes import FakeLedger, FakeStore, address_of
from tests.unit.service.images import (
    FRIENDS,
    Layout,
    layout_blobs,
    layout_manifest_digest,
    make_layout,
    publish_layout,
    pull_to,
    source_blobs,
    trusting,
)

ALICE = address_of("alice")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return make_layout(tmp_path / "src", layers=2)


@pytest.fixture
def digest(engines: Engines, alice: Actor, bob: Actor, layout: Layout) -> str:
    return publish_layout(engines, alice, layout, "app:v1", ["bob"]).digest


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty directory that pulls write into."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def assert_identical(dest: Path, layout: Layout) -> None:
    assert layout_manifest_digest(dest) == layout.image.digest
    assert layout_blobs(dest) == source_blobs(layout)


def test_the_owner_pulls_the_published_bytes(
    engines: Engines, alice: Actor, digest: str, layout: Layout, out: Path
) -> None:
    result = pull_to(engines, alice, "app:v1", out / "image")
    assert (result.digest, result.config_digest, result.layers) == (
        digest,
        sha(layout.image.config),
        2,
    )
    assert_identical(out / "image", layout)


def test_the_owner_pulls_without_a_grant_of_its_own(
    engines: Engines, ledger: FakeLedger, alice: Actor, digest: str, layout: Layout, out: Path
) -> None:
    alice.ledger.revoke_grant(digest, alice.address)
    result = pull_to(engines, alice, digest, out / "image")
    assert result.as_owner
    assert_identical(out / "image", layout)


def test_the_owner_pulls_after_its_own_grant_expired(
    engines: Engines, ledger: FakeLedger, alice: Actor, digest: str, layout: Layout, out: Path
) -> None:
    access.share(engines, alice, digest, "alice", expires_at=ledger.now() + 60)
    ledger.advance(120)
    result = pull_to(engines, alice, digest, out / "image")
    assert result.as_owner
    assert_identical(out / "image", layout)


def test_a_recipient_pulls_with_its_grant(
    engines: Engines, bob: Actor, digest: str, layout: Layout, out: Path
) -> None:
    result = pull_to(engines, bob, "app:v1", out / "image")
    assert not result.as_owner
    assert (result.digest, result.layers) == (digest, 2)
    assert_identical(out / "image", layout)


def test_an_account_without_a_grant_is_refused(
    engines: Engines, carol: Actor, digest: str, out: Path
) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        pull_to(engines, carol, "app:v1", out / "image")
    assert str(caught.value) == f"{carol.address} has no grant to {digest} from {ALICE}"
    assert list(out.iterdir()) == []


def test_a_revoked_grant_is_refused(
    engines: Engines, alice: Actor, bob: Actor, digest: str, out: Path
) -> None:
    access.unshare(engines, alice, digest, "bob")
    with pytest.raises(
        PermissionDeniedError, match=f"{bob.address} has no grant to {digest} from {ALICE}"
    ):
        pull_to(engines, bob, digest, out / "image")
    assert list(out.iterdir()) == []


def test_an_expired_grant_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    carol: Actor,
    digest: str,
    layout: Layout,
    out: Path,
) -> None:
    access.share(engines, alice, digest, "carol", expires_at=ledger.now() + 60)
    pull_to(engines, carol, digest, out / "before")
    assert_identical(out / "before", layout)

    ledger.advance(60)
    with pytest.raises(PermissionDeniedError) as caught:
        pull_to(engines, carol, digest, out / "after")
    assert str(caught.value) == (
        f"the grant of {digest} by {ALICE} to {carol.address} expired at 2026-01-01 00:01:00 UTC"
    )
    assert not (out / "after").exists()


@pytest.mark.parametrize("status", [Status.UNTRUSTED, Status.UNSUPPORTED, Status.REVOKED])
def test_an_image_not_trusted_is_refused_with_the_reason(
    engines: Engines, alice: Actor, bob: Actor, digest: str, out: Path, status: Status
) -> None:
    alice.ledger.set_status(digest, status, "CVE-2026-0001 in libfoo")
    for who in (alice, bob):
        with pytest.raises(PermissionDeniedError) as caught:
            pull_to(engines, who, digest, out / "image")
        message = str(caught.value)
        assert message.startswith(f"{digest} is {status.value} under {FRIENDS.source}: ")
        assert message.endswith(f"{status.value} by {alice.address}: CVE-2026-0001 in libfoo")
    assert list(out.iterdir()) == []


def test_an_image_never_published_is_refused(engines: Engines, alice: Actor, out: Path) -> None:
    unknown = "sha256:" + "cd" * 32
    with pytest.raises(NotFoundError, match=f"{unknown} was never published"):
        pull_to(engines, alice, unknown, out / "image")
    with pytest.raises(NotFoundError, match="no image named app:v9 by a publisher the policy"):
        pull_to(engines, alice, "app:v9", out / "image")
    assert list(out.iterdir()) == []


def test_a_corrupted_stored_block_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    bob: Actor,
    digest: str,
    out: Path,
) -> None:
    grant = ledger.grant_of(alice.address, digest, bob.address)
    assert grant is not None
    share = access.fetch_manifest(store, grant.manifest_cid, grant.manifest_hash)
    layer = sealing.blob_cid(share.manifest.layers[1])
    store.corrupt(layer)
    with pytest.raises(CorruptError, match=f"block {layer} is corrupt"):
        pull_to(engines, bob, digest, out / "image")
    assert list(out.iterdir()) == []


def test_a_corrupted_share_manifest_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    bob: Actor,
    digest: str,
    out: Path,
) -> None:
    grant = ledger.grant_of(alice.address, digest, bob.address)
    assert grant is not None
    store.corrupt(grant.manifest_cid)
    with pytest.raises(CorruptError, match=f"block {grant.manifest_cid} is corrupt"):
        pull_to(engines, bob, digest, out / "image")
    assert list(out.iterdir()) == []


def test_a_share_manifest_that_does_not_match_the_ledgers_hash_is_refused(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, digest: str, out: Path
) -> None:
    grant = ledger.grant_of(alice.address, digest, bob.address)
    assert grant is not None
    alice.ledger.grant(digest, GrantRequest(bob.address, grant.manifest_cid, sha(b"another")))
    with pytest.raises(CorruptError, match="does not match the hash on the ledger"):
        pull_to(engines, bob, digest, out / "image")
    assert list(out.iterdir()) == []


def test_a_grant_naming_another_images_share_manifest_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    bob: Actor,
    digest: str,
    out: Path,
    tmp_path: Path,
) -> None:
    other = publish_layout(engines, alice, make_layout(tmp_path / "other", "other"), "other:v1")
    access.share(engines, alice, other.digest, "bob")
    swapped = ledger.grant_of(alice.address, other.digest, bob.address)
    assert swapped is not None
    alice.ledger.grant(
        digest, GrantRequest(bob.address, swapped.manifest_cid, swapped.manifest_hash)
    )
    with pytest.raises(CorruptError, match=f"the sealed manifest does not match {digest}"):
        pull_to(engines, bob, digest, out / "image")
    assert list(out.iterdir()) == []


def test_an_image_the_policy_does_not_trust_is_refused_even_with_a_grant(
    engines: Engines, alice: Actor, bob: Actor, digest: str, out: Path
) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        pull_to(engines, bob, digest, out / "image", policy=trusting(bob))
    assert str(caught.value).startswith(f"{digest} is UNKNOWN under {FRIENDS.source}: ")
    assert f"recorded only by {alice.address}" in str(caught.value)
    assert list(out.iterdir()) == []


def test_the_actors_own_record_comes_before_a_grant(
    engines: Engines, alice: Actor, bob: Actor, digest: str, layout: Layout, out: Path
) -> None:
    publish_layout(engines, bob, layout, "bob/app:v1")  # the same image, recorded by bob too
    mine = pull_to(engines, bob, digest, out / "mine")
    assert (mine.as_owner, mine.publisher) == (True, bob.address)
    granted = pull_to(engines, bob, digest, out / "granted", publisher=alice.address)
    assert (granted.as_owner, granted.publisher) == (False, alice.address)
    assert_identical(out / "mine", layout)
    assert_identical(out / "granted", layout)


def test_a_record_that_does_not_count_is_not_opened(
    engines: Engines, alice: Actor, bob: Actor, carol: Actor, digest: str, out: Path
) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        pull_to(engines, bob, digest, out / "image", publisher=carol.address)
    assert str(caught.value) == (
        f"{carol.address}'s record of {digest} does not count under {FRIENDS.source} "
        f"(the records of {alice.address} do)"
    )
    assert list(out.iterdir()) == []


def test_without_a_grant_of_any_counting_record_the_refusal_names_them(
    engines: Engines, alice: Actor, bob: Actor, carol: Actor, digest: str, layout: Layout, out: Path
) -> None:
    publish_layout(engines, bob, layout, "bob/app:v1")
    with pytest.raises(PermissionDeniedError) as caught:
        pull_to(engines, carol, digest, out / "image")
    whose = ", ".join(sorted([str(alice.address), str(bob.address)]))
    assert str(caught.value) == (
        f"{carol.address} holds no live grant of a record of {digest} that counts "
        f"(the records of {whose})"
    )
