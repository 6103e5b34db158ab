"""attest and revoke: which record an attestation is about, what its hash says, and every
refusal before anything is sent."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sedis.core.errors import ConflictError, InvalidInputError, NotFoundError, SedisError
from sedis.core.records import ScanSummary
from sedis.service import attest
from sedis.service.engines import Actor, Engines
from tests.unit.service.fakes import FakeLedger, FakeStore
from tests.unit.service.images import FRIENDS, Layout, make_layout, publish_layout, trusting

CONFIG = "sha256:" + "cf" * 32
ROOT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return make_layout(tmp_path / "app")


@pytest.fixture
def digest(engines: Engines, alice: Actor, layout: Layout) -> str:
    return publish_layout(engines, alice, layout, "acme/app:1.0").digest


def test_an_attestation_without_a_payload_hashes_what_it_says(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, digest: str
) -> None:
    before = len(ledger.sent)
    result = attest.attest(engines, bob, "acme/app:1.0", "approved", policy=FRIENDS)
    (write,) = ledger.sent[before:]
    assert (write.function, write.sender, write.receipt.tx_hash) == (
        "attest",
        bob.address,
        result.transaction,
    )
    said = json.dumps(
        {"image": digest, "kind": "approved", "publisher": str(alice.address)},
        separators=(",", ":"),
    ).encode()
    assert result == attest.AttestResult(
        digest,
        alice.address,
        "approved",
        1,
        "sha256:" + hashlib.sha256(said).hexdigest(),
        result.transaction,
        "",
        write.receipt.block_number,
    )
    (made,) = ledger.attestations(alice.address, digest)
    assert (made.attester, made.kind, made.payload_hash, made.cid, made.index) == (
        bob.address,
        "approved",
        result.payload_hash,
        "",
        1,
    )


def test_a_payload_is_stored_and_its_hash_and_cid_recorded(
    engines: Engines, ledger: FakeLedger, store: FakeStore, alice: Actor, bob: Actor, digest: str
) -> None:
    payload = b'{"ticket": "SEC-1234", "approved": true}'
    result = attest.attest(engines, bob, digest, "approved", payload=payload, policy=FRIENDS)
    assert result.payload_hash == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert store.read_bytes(result.cid, 1 << 10) == payload
    (made,) = ledger.attestations(alice.address, digest)
    assert (made.payload_hash, made.cid) == (result.payload_hash, result.cid)


def test_an_attestation_on_a_digest_nobody_recorded_is_refused(
    engines: Engines, ledger: FakeLedger, bob: Actor
) -> None:
    unknown = "sha256:" + "ab" * 32
    before = len(ledger.sent)
    with pytest.raises(NotFoundError, match=f"^nobody has recorded {unknown}$"):
        attest.attest(engines, bob, unknown, "approved", policy=FRIENDS)
    with pytest.raises(NotFoundError, match=f"^{bob.address} has no record of {unknown}$"):
        attest.attest(engines, bob, unknown, "approved", policy=FRIENDS, publisher=bob.address)
    with pytest.raises(NotFoundError, match=r"no image named acme/nothing:1\.0"):
        attest.attest(engines, bob, "acme/nothing:1.0", "approved", policy=FRIENDS)
    assert len(ledger.sent) == before


def test_a_kind_the_ledger_cannot_hold_is_refused(
    engines: Engines, ledger: FakeLedger, bob: Actor, digest: str
) -> None:
    with pytest.raises(InvalidInputError, match="1 to 32 bytes"):
        attest.attest(engines, bob, digest, "k" * 33, policy=FRIENDS)


def test_a_digest_with_several_records_needs_the_policy_or_a_publisher_to_pick_one(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    digest: str,
    layout: Layout,
) -> None:
    publish_layout(engines, bob, layout, "bob/app:1.0")
    before = len(ledger.sent)
    with pytest.raises(ConflictError) as both:
        attest.attest(engines, carol, digest, "approved", policy=FRIENDS)
    assert str(both.value) == (
        f"{digest} has records by {alice.address}, {bob.address}, which the policy counts: "
        "pick one with --publisher"
    )
    with pytest.raises(ConflictError) as neither:
        attest.attest(engines, carol, digest, "approved", policy=trusting(carol))
    assert "none of which the policy counts" in str(neither.value)
    assert len(ledger.sent) == before

    by_policy = attest.attest(engines, carol, digest, "approved", policy=trusting(bob))
    assert by_policy.publisher == bob.address
    picked = attest.attest(
        engines, carol, digest, "approved", policy=FRIENDS, publisher=alice.address
    )
    assert picked.publisher == alice.address
    assert [a.attester for a in ledger.attestations(bob.address, digest)] == [carol.address]


def test_a_revoke_takes_back_every_live_attestation_of_the_kind(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, digest: str
) -> None:
    attest.attest(engines, bob, digest, "approved", policy=FRIENDS)
    attest.attest(engines, bob, digest, "approved", payload=b"again", policy=FRIENDS)
    attest.attest(engines, bob, digest, "reviewed", policy=FRIENDS)
    ledger.advance(30)
    result = attest.revoke(engines, bob, "acme/app:1.0", "approved", policy=FRIENDS)
    assert (result.digest, result.publisher, result.kind, result.indexes) == (
        digest,
        alice.address,
        "approved",
        (1, 2),
    )
    assert len(result.transactions) == 2
    made = ledger.attestations(alice.address, digest)
    assert [(a.kind, a.live) for a in made] == [
        ("approved", False),
        ("approved", False),
        ("reviewed", True),
    ]
    with pytest.raises(NotFoundError) as again:
        attest.revoke(engines, bob, digest, "approved", policy=FRIENDS)
    assert str(again.value) == (
        f"you have no live 'approved' attestation of {alice.address}'s record of {digest} to revoke"
    )


def test_a_revoke_with_nothing_to_revoke_is_refused(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, carol: Actor, digest: str
) -> None:
    attest.attest(engines, bob, digest, "approved", policy=FRIENDS)
    before = len(ledger.sent)
    with pytest.raises(NotFoundError, match="you have no live 'approved' attestation"):
        attest.revoke(engines, carol, digest, "approved", policy=FRIENDS)  # only its attester
    with pytest.raises(NotFoundError, match="you have no live 'scan' attestation"):
        attest.revoke(engines, bob, digest, "scan", policy=FRIENDS)
    assert len(ledger.sent) == before


def test_a_revoke_on_a_digest_with_several_records_finds_the_one_attested(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    digest: str,
) -> None:
    bob.ledger.publish(digest, CONFIG, ROOT, ScanSummary.unscanned())
    attest.attest(engines, carol, digest, "approved", policy=FRIENDS, publisher=bob.address)
    result = attest.revoke(engines, carol, digest, "approved", policy=FRIENDS)
    assert (result.publisher, result.indexes) == (bob.address, (1,))
    with pytest.raises(NotFoundError, match="attestation of any record of"):
        attest.revoke(engines, carol, digest, "approved", policy=FRIENDS)


def test_a_ledger_that_accepts_an_attestation_but_shows_none_is_an_error(
    engines: Engines,
    ledger: FakeLedger,
    bob: Actor,
    digest: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fault no real node makes on demand: the transaction succeeds, its event is missing.
    monkeypatch.setattr(ledger, "audit_log", lambda query=None: [])
    with pytest.raises(SedisError, match=r"accepted transaction 0x[0-9a-f]+ but shows no"):
        attest.attest(engines, bob, "acme/app:1.0", "approved", policy=FRIENDS)
