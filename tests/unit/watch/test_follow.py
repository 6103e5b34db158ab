"""The ledger follower: from the head on, each transaction's digests and who made it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.core.errors import UnavailableError
from sedis.core.records import GrantRequest, ScanSummary, Status
from sedis.service.engines import Actor
from sedis.watch.follow import MAX_BLOCKS_PER_READ, LedgerFollower
from tests.unit.service.fakes import FakeDirectory, FakeLedger, make_actor, make_engines
from tests.unit.watch.fakes import FlakyLedger, digest_of

ROOT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
MANIFEST = digest_of("manifest")
CONFIG = digest_of("config")


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def alice(tmp_path: Path, ledger: FakeLedger) -> Actor:
    return make_actor(make_engines(tmp_path, ledger), "alice", FakeDirectory())


def test_the_first_poll_learns_the_head_and_later_ones_the_changes(
    ledger: FakeLedger, alice: Actor
) -> None:
    alice.ledger.publish(MANIFEST, CONFIG, ROOT, ScanSummary.unscanned())
    follower = LedgerFollower(ledger)
    assert follower.poll() == []  # what came before is the first pass's to read
    assert follower.last_block == ledger.info().block_number
    assert follower.poll() == []
    status = alice.ledger.set_status(MANIFEST, Status.REVOKED, "leaked")
    other = digest_of("another manifest")
    published = alice.ledger.publish(other, CONFIG, ROOT, ScanSummary.unscanned())
    first, second = follower.poll()
    assert first.digests == {MANIFEST}
    assert (first.cause.event, first.cause.actor) == ("StatusChanged", alice.address)
    assert (first.cause.block, first.cause.tx_hash) == (status.block_number, status.tx_hash)
    # A new record names its config digest too: the image ID a container runs.
    assert second.digests == {other, CONFIG}
    assert second.cause.event == "ImagePublished"
    assert second.cause.block == published.block_number
    assert follower.poll() == []


def test_grants_and_attestations_are_changes_and_key_registrations_are_not(
    tmp_path: Path, ledger: FakeLedger, alice: Actor
) -> None:
    bob = make_actor(make_engines(tmp_path, ledger), "bob", FakeDirectory(), register=False)
    alice.ledger.publish(MANIFEST, CONFIG, ROOT, ScanSummary.unscanned())
    follower = LedgerFollower(ledger)
    follower.poll()
    alice.ledger.grant(MANIFEST, GrantRequest(bob.address, ROOT, digest_of("share")))
    alice.ledger.revoke_grant(MANIFEST, bob.address)
    bob.ledger.attest(alice.address, MANIFEST, "approved", digest_of("payload"))
    bob.ledger.register_keys(b"k" * 65, b"\x01" * 256)
    events = [c.cause.event for c in follower.poll()]
    assert events == ["GrantAdded", "GrantRevoked", "Attested"]


def test_an_unreadable_ledger_raises_and_the_next_poll_starts_where_it_failed(
    ledger: FakeLedger, alice: Actor
) -> None:
    alice.ledger.publish(MANIFEST, CONFIG, ROOT, ScanSummary.unscanned())
    flaky = FlakyLedger(ledger)
    follower = LedgerFollower(flaky)  # type: ignore[arg-type]
    follower.poll()
    flaky.down = True
    alice.ledger.set_status(MANIFEST, Status.UNTRUSTED, "review")
    with pytest.raises(UnavailableError):
        follower.poll()
    flaky.down = False
    (change,) = follower.poll()
    assert change.cause.event == "StatusChanged"


def test_a_long_absence_is_caught_up_in_bounded_steps(ledger: FakeLedger, alice: Actor) -> None:
    alice.ledger.publish(MANIFEST, CONFIG, ROOT, ScanSummary.unscanned())
    follower = LedgerFollower(ledger, after_block=0)
    head = ledger.info().block_number
    assert head < MAX_BLOCKS_PER_READ
    changes = follower.poll()
    assert [c.cause.event for c in changes][-1] == "ImagePublished"
    assert follower.last_block == head
