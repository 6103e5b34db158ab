"""The ImageLedger contract suite, run on the embedded chain and on a real anvil.

Records are keyed by (publisher, digest). Every test uses fresh accounts and
random digests, so the tests that share one anvil contract cannot see each
other's records. What a hostile account holder could do is done through raw
calls (raw.py), which name any publisher they like: the client never would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account

from sedis.core.address import Address
from sedis.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from sedis.core.records import AuditQuery, GrantRequest, ScanSummary, Status, digest_to_bytes
from sedis.ledger.base import LedgerReader, LedgerWriter
from sedis.ledger.refusals import refusal
from tests.integration.ledger.conftest import Chain, addr
from tests.integration.ledger.raw import RawRevert

pytestmark = pytest.mark.integration

REVOKED = 4


def rand_digest() -> str:
    return "sha256:" + os.urandom(32).hex()


def scan() -> ScanSummary:
    return ScanSummary(
        critical=1,
        high=2,
        medium=3,
        low=4,
        unknown=5,
        report_digest=rand_digest(),
        report_cid="bafkreport" + os.urandom(4).hex(),
        vulndb_digest=rand_digest(),
    )


def raw_scan(summary: ScanSummary | None = None) -> tuple[Any, ...]:
    """A Scan tuple as a raw call passes it."""
    s = summary or scan()
    return (
        s.critical,
        s.high,
        s.medium,
        s.low,
        s.unknown,
        s.not_scanned,
        digest_to_bytes(s.report_digest) if s.report_digest else bytes(32),
        digest_to_bytes(s.vulndb_digest) if s.vulndb_digest else bytes(32),
        s.report_cid or "",
    )


def is_granted(reader: LedgerReader, publisher: Address, digest: str, recipient: Address) -> bool:
    """Whether the recipient's latest grant of the record lets it in now."""
    grant = reader.grant_of(publisher, digest, recipient)
    return grant is not None and grant.active_at(reader.now())


def published(ledger: LedgerWriter, summary: ScanSummary | None = None) -> tuple[str, str]:
    digest, config = rand_digest(), rand_digest()
    ledger.publish(digest, config, "bafyroot" + os.urandom(4).hex(), summary or scan())
    return digest, config


def state_of(reader: LedgerReader, publisher: Address, digest: str) -> tuple[Any, ...]:
    """Everything the ledger says about one record, to compare before and after."""
    with reader.pinned():
        return (
            reader.image(publisher, digest),
            reader.status_history(publisher, digest),
            sorted(reader.grants(publisher, digest), key=lambda g: g.recipient),
            reader.tags_of(publisher, digest),
            reader.attestations(publisher, digest),
            reader.usage_reports(publisher, digest),
            len(reader.audit_log(AuditQuery(publisher=publisher, digest=digest))),
        )


def refused(error: str, attempt: Callable[[], object]) -> RawRevert:
    with pytest.raises(RawRevert) as caught:
        attempt()
    assert caught.value.error == error, caught.value
    return caught.value


# -- records -----------------------------------------------------------------------------


def test_publish_records_the_image(chain: Chain) -> None:
    owner = Account.create()
    ledger = chain.writer(owner)
    summary = scan()
    digest, config = rand_digest(), rand_digest()
    receipt = ledger.publish(digest, config, "bafyrootcid", summary)
    assert receipt.gas_used <= 250_000
    reader = chain.reader()
    record = reader.image(addr(owner), digest)
    assert record is not None
    assert (record.publisher, record.digest, record.config_digest, record.root_cid) == (
        addr(owner),
        digest,
        config,
        "bafyrootcid",
    )
    assert record.scan == summary
    assert record.status is Status.TRUSTED
    assert abs(record.published_at - time.time()) < 60
    assert reader.records(digest) == [record]
    assert reader.images_by_config(config) == [record]
    assert reader.images(addr(owner)) == [record]
    assert reader.image(addr(Account.create()), digest) is None


def test_publish_with_grants_and_tag_is_one_transaction(chain: Chain) -> None:
    owner, friend, other = Account.create(), Account.create(), Account.create()
    ledger = chain.writer(owner)
    digest, config, manifest_hash = rand_digest(), rand_digest(), rand_digest()
    name = "org/one-" + os.urandom(3).hex()
    grants = [
        GrantRequest(addr(owner), "bafyshare", manifest_hash),
        GrantRequest(addr(friend), "bafyshare", manifest_hash),
    ]
    receipt = ledger.publish(digest, config, "bafyroot", scan(), grants, (name, "v1"))
    events = chain.reader().audit_log(AuditQuery(digest=digest))
    assert [e.name for e in events] == ["ImagePublished", "GrantAdded", "GrantAdded", "TagMoved"]
    assert {e.tx_hash for e in events} == {receipt.tx_hash}
    # Cheaper than the four transactions it replaces, each of which pays 21k up front.
    apart, other_name = rand_digest(), name + "-apart"
    separate = [
        ledger.publish(apart, config, "bafyroot", scan()),
        *(ledger.grant(apart, g) for g in grants),
        ledger.set_tag(other_name, "v1", apart),
    ]
    assert receipt.gas_used < sum(r.gas_used for r in separate) - 40_000
    reader = chain.reader()
    for who in (owner, friend):
        got = reader.grant_of(addr(owner), digest, addr(who))
        assert got is not None
        assert (got.publisher, got.manifest_cid, got.manifest_hash) == (
            addr(owner),
            "bafyshare",
            manifest_hash,
        )
    assert not is_granted(reader, addr(owner), digest, addr(other))
    assert reader.resolve(addr(owner), name, "v1") == digest


def test_a_failing_part_of_a_publish_records_nothing(chain: Chain) -> None:
    owner, friend = Account.create(), Account.create()
    ledger = chain.writer(owner)
    digest = rand_digest()
    name = "org/held-" + os.urandom(3).hex()
    bad = [GrantRequest(addr(friend), "bafyshare", rand_digest(), expires_at=1)]
    with pytest.raises(InvalidInputError, match="not after the chain's time"):
        ledger.publish(digest, rand_digest(), "bafyroot", scan(), bad, (name, "v1"))
    reader = chain.reader()
    assert reader.image(addr(owner), digest) is None
    assert reader.records(digest) == []
    assert reader.grant_of(addr(owner), digest, addr(friend)) is None
    assert reader.resolve(addr(owner), name, "v1") is None
    assert reader.taggers(name, "v1") == []


def test_an_unpublished_digest_reads_as_unknown(chain: Chain) -> None:
    reader = chain.reader()
    digest, nobody = rand_digest(), addr(Account.create())
    assert reader.image(nobody, digest) is None
    assert reader.records(digest) == []
    assert reader.status_history(nobody, digest) == []
    assert reader.statuses([(nobody, digest)]) == {(nobody, digest): Status.UNKNOWN}


def test_unscanned_image_and_inconsistent_scans(chain: Chain) -> None:
    account = Account.create()
    ledger = chain.writer(account)
    digest, _ = published(ledger, ScanSummary.unscanned())
    record = chain.reader().image(addr(account), digest)
    assert record is not None and record.scan == ScanSummary.unscanned()
    with pytest.raises(InvalidInputError, match="scan summary is inconsistent"):
        ledger.publish(rand_digest(), rand_digest(), "bafy", ScanSummary(critical=1))
    with pytest.raises(InvalidInputError, match="scan summary is inconsistent"):
        ledger.publish(
            rand_digest(), rand_digest(), "bafy", ScanSummary(not_scanned=True, critical=2)
        )
    with pytest.raises(InvalidInputError, match="CID is missing"):
        ledger.publish(rand_digest(), rand_digest(), "", ScanSummary.unscanned())


def test_a_publisher_records_a_digest_once_and_others_record_it_too(chain: Chain) -> None:
    first, second = Account.create(), Account.create()
    digest, _ = published(chain.writer(first))
    with pytest.raises(ConflictError, match=f"{first.address} has already published {digest}"):
        chain.writer(first).publish(digest, rand_digest(), "bafyother", ScanSummary.unscanned())
    chain.writer(second).publish(digest, rand_digest(), "bafysecond", ScanSummary.unscanned())
    reader = chain.reader()
    records = reader.records(digest)
    assert [(r.publisher, r.root_cid) for r in records] == [
        (addr(first), records[0].root_cid),
        (addr(second), "bafysecond"),
    ]
    assert all(r.status is Status.TRUSTED for r in records)
    keys = [(addr(first), digest), (addr(second), digest)]
    assert reader.statuses(keys) == dict.fromkeys(keys, Status.TRUSTED)


def test_each_writer_of_one_reader_signs_as_its_own_account(chain: Chain) -> None:
    first, second = Account.create(), Account.create()
    mine, theirs = chain.writer(first), chain.writer(second)
    assert (mine.address, theirs.address) == (addr(first), addr(second))
    d1, _ = published(mine)
    d2, _ = published(theirs)
    d3, _ = published(mine)
    reader = chain.reader()
    assert [r.digest for r in reader.images(addr(first))] == [d1, d3]
    assert [r.digest for r in reader.images(addr(second))] == [d2]
    everyone = {(r.publisher, r.digest) for r in reader.images()}
    assert {(addr(first), d1), (addr(second), d2), (addr(first), d3)} <= everyone


# -- nobody but the publisher changes a record ---------------------------------------------


def test_every_publisher_only_function_refuses_anyone_else(chain: Chain) -> None:
    owner, intruder, friend = Account.create(), Account.create(), Account.create()
    mine = chain.writer(owner)
    digest, _ = published(mine)
    mine.grant(digest, GrantRequest(addr(friend), "bafymanifest", rand_digest()))
    name = "team/app-" + os.urandom(3).hex()
    mine.set_tag(name, "v1", digest)
    reader = chain.reader()
    before = state_of(reader, addr(owner), digest)
    raw, d = chain.raw(intruder), digest_to_bytes(digest)
    victim = owner.address
    attempts: dict[str, Callable[[], object]] = {
        "publish": lambda: raw.send("publish", victim, d, os.urandom(32), "bafyx", raw_scan()),
        "setStatus": lambda: raw.send("setStatus", victim, d, REVOKED, "hostile"),
        "grant": lambda: raw.send("grant", victim, d, intruder.address, "bafyx", os.urandom(32), 0),
        "revokeGrant": lambda: raw.send("revokeGrant", victim, d, friend.address),
        "setTag": lambda: raw.send("setTag", victim, name, "v1", d),
    }
    for function, attempt in attempts.items():
        caught = refused("NotPublisher", attempt)
        assert caught.args_by_name["publisher"].lower() == victim.lower()
        assert caught.args_by_name["caller"].lower() == intruder.address.lower()
        assert caught.args_by_name["digest"] == d
        message = str(refusal(function, caught.data))
        assert message.startswith(f"{intruder.address} is not the publisher of this record")
        assert f"({victim} is)" in message
    assert state_of(reader, addr(owner), digest) == before
    assert is_granted(reader, addr(owner), digest, addr(friend))
    assert reader.image(addr(intruder), digest) is None
    assert reader.resolve(addr(intruder), name, "v1") is None


def test_a_multicall_cannot_act_for_another_publisher(chain: Chain) -> None:
    owner, intruder = Account.create(), Account.create()
    digest, _ = published(chain.writer(owner))
    before = state_of(chain.reader(), addr(owner), digest)
    raw = chain.raw(intruder)
    own_digest = os.urandom(32)
    calls = [
        raw.encode("publish", intruder.address, own_digest, os.urandom(32), "bafyx", raw_scan()),
        raw.encode("setStatus", owner.address, digest_to_bytes(digest), REVOKED, "x"),
    ]
    refused("NotPublisher", lambda: raw.send("multicall", calls))
    assert state_of(chain.reader(), addr(owner), digest) == before
    assert chain.reader().image(addr(intruder), "sha256:" + own_digest.hex()) is None


def test_the_client_only_ever_writes_its_own_record(chain: Chain) -> None:
    owner, other = Account.create(), Account.create()
    digest, _ = published(chain.writer(owner))
    before = state_of(chain.reader(), addr(owner), digest)
    theirs = chain.writer(other)
    with pytest.raises(NotFoundError, match=f"{other.address} has no record of {digest}"):
        theirs.set_status(digest, Status.REVOKED, "not mine")
    with pytest.raises(NotFoundError, match="has no record"):
        theirs.grant(digest, GrantRequest(addr(other), "bafyx", rand_digest()))
    with pytest.raises(NotFoundError, match="has no record"):
        theirs.set_tag("any/name", "v1", digest)
    assert state_of(chain.reader(), addr(owner), digest) == before


def test_only_its_attester_revokes_an_attestation_and_only_once(chain: Chain) -> None:
    owner, approver, intruder = Account.create(), Account.create(), Account.create()
    digest, _ = published(chain.writer(owner))
    chain.writer(approver).attest(addr(owner), digest, "approved", rand_digest())
    reader = chain.reader()
    before = state_of(reader, addr(owner), digest)
    d = digest_to_bytes(digest)
    for who in (intruder, owner):  # not even the record's publisher
        with pytest.raises(RawRevert) as raised:
            chain.raw(who).send("revokeAttestation", owner.address, d, 1)
        caught = raised.value
        assert caught.error == "NotAttester"
        assert caught.args_by_name["index"] == 1
        message = str(refusal("revokeAttestation", caught.data))
        assert message.startswith("only its attester can revoke attestation 1 of ")
        assert who.address in message
    refused(
        "UnknownAttestation",
        lambda: chain.raw(approver).send("revokeAttestation", owner.address, d, 2),
    )
    refused(
        "UnknownRecord",
        lambda: chain.raw(approver).send("revokeAttestation", intruder.address, d, 1),
    )
    assert state_of(reader, addr(owner), digest) == before
    chain.writer(approver).revoke_attestation(addr(owner), digest, 1)
    [attestation] = reader.attestations(addr(owner), digest)
    assert attestation.revoked_at is not None and not attestation.live
    with pytest.raises(ConflictError, match=r"attestation 1 of .* is already revoked"):
        chain.writer(approver).revoke_attestation(addr(owner), digest, 1)
    with pytest.raises(NotFoundError, match="has no attestation 7"):
        chain.writer(approver).revoke_attestation(addr(owner), digest, 7)
    with pytest.raises(PermissionDeniedError, match="only its attester"):
        chain.writer(owner).revoke_attestation(addr(owner), digest, 1)


def test_only_the_publisher_or_a_grantee_reports_usage(chain: Chain) -> None:
    owner, grantee, stranger = Account.create(), Account.create(), Account.create()
    mine = chain.writer(owner)
    digest, _ = published(mine)
    mine.grant(digest, GrantRequest(addr(grantee), "bafym", rand_digest()))
    reader = chain.reader()
    before = state_of(reader, addr(owner), digest)
    d, blob = digest_to_bytes(digest), os.urandom(32)
    caught = refused(
        "NotGranted",
        lambda: chain.raw(stranger).send(
            "reportUsage", owner.address, d, 10, 20, "bafyusage", blob
        ),
    )
    assert caught.args_by_name["account"].lower() == stranger.address.lower()
    with pytest.raises(PermissionDeniedError, match=f"{stranger.address} may not report usage"):
        chain.writer(stranger).report_usage(addr(owner), digest, 10, 20, "bafyusage", rand_digest())
    assert state_of(reader, addr(owner), digest) == before
    chain.writer(grantee).report_usage(addr(owner), digest, 10, 20, "bafyg", rand_digest())
    mine.report_usage(addr(owner), digest, 20, 30, "bafyo", rand_digest())
    mine.revoke_grant(digest, addr(grantee))
    with pytest.raises(PermissionDeniedError, match="may not report usage"):
        chain.writer(grantee).report_usage(addr(owner), digest, 30, 40, "bafyg", rand_digest())
    reports = reader.usage_reports(addr(owner), digest)
    assert [(r.reporter, r.cid, r.index) for r in reports] == [
        (addr(grantee), "bafyg", 1),
        (addr(owner), "bafyo", 2),
    ]


def test_keys_are_registered_for_the_sender_only(chain: Chain) -> None:
    alice, mallory = Account.create(), Account.create()
    chain.writer(alice).register_keys(b'{"kty":"EC"}', b"\x01" * 256)
    before = chain.reader().keys_of(addr(alice))
    chain.raw(mallory).send("registerKeys", b'{"kty":"evil"}', b"\x02" * 256)
    assert chain.reader().keys_of(addr(alice)) == before
    theirs = chain.reader().keys_of(addr(mallory))
    assert theirs is not None and theirs.encryption_key == b'{"kty":"evil"}'


# -- squatting, as the review reproduced it -------------------------------------------------


def test_a_squatted_digest_blocks_nobody(chain: Chain) -> None:
    alice, mallory = Account.create(), Account.create()
    digest, config = rand_digest(), rand_digest()
    squatter = chain.raw(mallory)
    d = digest_to_bytes(digest)
    # Mallory learns alice's digest and records it first, under her own name.
    squatter.send("publish", mallory.address, d, digest_to_bytes(config), "bafyfake", raw_scan())
    # Alice still publishes hers.
    chain.writer(alice).publish(digest, config, "bafyalice", scan())
    reader = chain.reader()
    assert [(r.publisher, r.root_cid) for r in reader.records(digest)] == [
        (addr(mallory), "bafyfake"),
        (addr(alice), "bafyalice"),
    ]
    # Mallory revokes her own record, which is final for hers and nothing else.
    squatter.send("setStatus", mallory.address, d, REVOKED, "mine")
    refused("NotPublisher", lambda: squatter.send("setStatus", alice.address, d, REVOKED, "x"))
    statuses = reader.statuses([(addr(alice), digest), (addr(mallory), digest)])
    assert statuses == {
        (addr(alice), digest): Status.TRUSTED,
        (addr(mallory), digest): Status.REVOKED,
    }
    alices = reader.image(addr(alice), digest)
    assert alices is not None and alices.status is Status.TRUSTED
    assert [e.status for e in reader.status_history(addr(alice), digest)] == [Status.TRUSTED]


def test_a_squatted_name_blocks_nobody(chain: Chain) -> None:
    alice, mallory = Account.create(), Account.create()
    name = "acme/app-" + os.urandom(3).hex()
    squatter = chain.raw(mallory)
    fake = os.urandom(32)
    squatter.send("publish", mallory.address, fake, os.urandom(32), "bafyfake", raw_scan())
    squatter.send("setTag", mallory.address, name, "1.0", fake)
    ledger = chain.writer(alice)
    digest = rand_digest()
    ledger.publish(digest, rand_digest(), "bafyalice", scan(), tag=(name, "1.0"))
    reader = chain.reader()
    mallorys = "sha256:" + fake.hex()
    assert reader.resolve(addr(alice), name, "1.0") == digest
    assert reader.resolve(addr(mallory), name, "1.0") == mallorys
    assert [(t.publisher, t.digest) for t in reader.taggers(name, "1.0")] == [
        (addr(mallory), mallorys),
        (addr(alice), digest),
    ]
    # Nor can she point alice's tag anywhere, nor hers at alice's record.
    refused(
        "NotPublisher",
        lambda: squatter.send("setTag", alice.address, name, "1.0", fake),
    )
    refused(
        "UnknownRecord",
        lambda: squatter.send("setTag", mallory.address, name, "1.0", digest_to_bytes(digest)),
    )
    assert reader.resolve(addr(alice), name, "1.0") == digest


# -- status --------------------------------------------------------------------------------


def test_status_history_is_append_only(chain: Chain) -> None:
    owner = Account.create()
    ledger = chain.writer(owner)
    digest, _ = published(ledger)
    friend = Account.create()
    ledger.grant(digest, GrantRequest(addr(friend), "bafym", rand_digest()))
    steps = [
        (Status.UNTRUSTED, "CVE-2024-3094 in xz"),
        (Status.TRUSTED, "patched upstream"),
        (Status.UNSUPPORTED, "end of life"),
        (Status.REVOKED, "key compromised"),
    ]
    for status, reason in steps:
        receipt = ledger.set_status(digest, status, reason)
        assert receipt.gas_used <= 80_000
    with pytest.raises(ConflictError, match="is revoked"):
        ledger.set_status(digest, Status.TRUSTED, "undo the revocation")
    with pytest.raises(ConflictError, match="is revoked"):
        ledger.grant(digest, GrantRequest(addr(Account.create()), "bafym", rand_digest()))
    with pytest.raises(ConflictError, match="is revoked"):
        ledger.set_tag("late/name", "v1", digest)
    ledger.revoke_grant(digest, addr(friend))  # ending access stays possible
    history = chain.reader().status_history(addr(owner), digest)
    assert [(e.index, e.status, e.reason) for e in history] == [
        (0, Status.TRUSTED, "published"),
        *[(i + 1, s, r) for i, (s, r) in enumerate(steps)],
    ]
    assert [e.previous for e in history] == [Status.UNKNOWN] + [e.status for e in history[:-1]]
    assert all(e.publisher == addr(owner) and e.digest == digest for e in history)
    assert [e.at for e in history] == sorted(e.at for e in history)
    assert chain.reader().statuses([(addr(owner), digest)])[(addr(owner), digest)] is (
        Status.REVOKED
    )


def test_status_changes_that_are_refused(chain: Chain) -> None:
    owner = Account.create()
    ledger = chain.writer(owner)
    digest, _ = published(ledger)
    with pytest.raises(ConflictError, match="is already TRUSTED"):
        ledger.set_status(digest, Status.TRUSTED, "again")
    with pytest.raises(InvalidInputError, match="not one a publisher may set"):
        ledger.set_status(digest, Status.UNKNOWN, "forget it")
    with pytest.raises(InvalidInputError, match="needs a reason"):
        ledger.set_status(digest, Status.UNTRUSTED, "")
    with pytest.raises(NotFoundError, match="has no record of"):
        ledger.set_status(rand_digest(), Status.REVOKED, "never was")
    assert len(chain.reader().status_history(addr(owner), digest)) == 1


# -- grants --------------------------------------------------------------------------------


def test_an_expired_grant_reads_as_not_granted(chain: Chain) -> None:
    owner, reader_account = Account.create(), Account.create()
    ledger = chain.writer(owner)
    digest, _ = published(ledger)
    me, them = addr(owner), addr(reader_account)
    expires = int(time.time()) + 3
    receipt = ledger.grant(digest, GrantRequest(them, "bafymanifest", rand_digest(), expires))
    assert receipt.gas_used <= 120_000
    assert is_granted(chain.reader(), me, digest, them)
    grant = chain.reader().grant_of(me, digest, them)
    assert grant is not None and grant.expires_at == expires
    assert grant.active_at(expires - 1) and not grant.active_at(expires)
    time.sleep(max(0.0, expires - time.time()) + 1.1)
    published(ledger)  # a new block, so chain time moves past the expiry on any node
    assert not is_granted(chain.reader(), me, digest, them)
    assert [(g.publisher, g.digest) for g in chain.reader().grants_to(them)] == [(me, digest)]
    with pytest.raises(InvalidInputError, match="not after the chain's time"):
        ledger.grant(digest, GrantRequest(them, "bafym", rand_digest(), int(time.time()) - 10))


def test_revoked_grants_and_grants_again(chain: Chain) -> None:
    owner, reader_account = Account.create(), Account.create()
    ledger = chain.writer(owner)
    digest, _ = published(ledger)
    me, them = addr(owner), addr(reader_account)
    with pytest.raises(NotFoundError, match="holds no grant"):
        ledger.revoke_grant(digest, them)
    ledger.grant(digest, GrantRequest(them, "bafyfirst", rand_digest()))
    ledger.revoke_grant(digest, them)
    assert not is_granted(chain.reader(), me, digest, them)
    grant = chain.reader().grant_of(me, digest, them)
    assert grant is not None and grant.revoked_at is not None and not grant.active_at(0)
    with pytest.raises(NotFoundError, match="holds no grant"):
        ledger.revoke_grant(digest, them)
    manifest_hash = rand_digest()
    ledger.grant(digest, GrantRequest(them, "bafysecond", manifest_hash))
    assert is_granted(chain.reader(), me, digest, them)
    again = chain.reader().grant_of(me, digest, them)
    assert again is not None
    assert (again.manifest_cid, again.manifest_hash, again.revoked_at) == (
        "bafysecond",
        manifest_hash,
        None,
    )
    assert [g.recipient for g in chain.reader().grants(me, digest)] == [them]


def test_grants_of_one_digest_are_per_record(chain: Chain) -> None:
    first, second, friend = Account.create(), Account.create(), Account.create()
    digest = rand_digest()
    chain.writer(first).publish(digest, rand_digest(), "bafy1", scan())
    chain.writer(second).publish(digest, rand_digest(), "bafy2", scan())
    chain.writer(first).grant(digest, GrantRequest(addr(friend), "bafym1", rand_digest()))
    reader = chain.reader()
    assert is_granted(reader, addr(first), digest, addr(friend))
    assert not is_granted(reader, addr(second), digest, addr(friend))
    assert reader.grants(addr(second), digest) == []
    assert [g.publisher for g in reader.grants_to(addr(friend))] == [addr(first)]


# -- tags ----------------------------------------------------------------------------------


def test_tags_resolve_and_keep_their_history(chain: Chain) -> None:
    owner = Account.create()
    ledger = chain.writer(owner)
    me = addr(owner)
    name = "org/svc-" + os.urandom(3).hex()
    d1, _ = published(ledger)
    d2, _ = published(ledger)
    ledger.set_tag(name, "stable", d1)
    ledger.set_tag(name, "edge", d1)
    ledger.set_tag(name, "stable", d2)
    reader = chain.reader()
    assert reader.resolve(me, name, "stable") == d2
    assert reader.resolve(me, name, "edge") == d1
    assert reader.resolve(me, name, "missing") is None
    history = reader.tag_history(name, "stable")
    assert [(t.digest, t.previous) for t in history] == [(d1, None), (d2, d1)]
    assert all(t.publisher == me and t.ref == f"{name}:stable" for t in history)
    assert reader.tag_history(name, "stable", me) == history
    assert reader.tag_history(name, "stable", addr(Account.create())) == []
    assert [t.ref for t in reader.tags_of(me, d1)] == [f"{name}:edge"]
    assert [t.ref for t in reader.tags_of(me, d2)] == [f"{name}:stable"]
    assert [(t.publisher, t.digest) for t in reader.taggers(name, "stable")] == [(me, d2)]
    # "a:b" + "c" and "a" + "b:c" are different references.
    ledger.set_tag(name + ":x", "y", d1)
    assert reader.resolve(me, name, "x:y") is None


def test_two_publishers_tag_one_name_each_their_own_way(chain: Chain) -> None:
    first, second = Account.create(), Account.create()
    name = "org/app-" + os.urandom(3).hex()
    a, b = chain.writer(first), chain.writer(second)
    d1, _ = published(a)
    d2, _ = published(b)
    d3, _ = published(a)
    a.set_tag(name, "latest", d1)
    b.set_tag(name, "latest", d2)
    a.set_tag(name, "latest", d3)
    reader = chain.reader()
    assert reader.resolve(addr(first), name, "latest") == d3
    assert reader.resolve(addr(second), name, "latest") == d2
    # The latest move of each publisher, in the order those moves were made.
    assert [(t.publisher, t.digest, t.previous) for t in reader.taggers(name, "latest")] == [
        (addr(second), d2, None),
        (addr(first), d3, d1),
    ]
    assert len(reader.tag_history(name, "latest")) == 3
    assert [t.digest for t in reader.tag_history(name, "latest", addr(first))] == [d1, d3]
    assert reader.tags_of(addr(first), d1) == []
    with pytest.raises(NotFoundError, match="has no record"):
        b.set_tag(name, "latest", d1)  # a publisher's tag points at its own records only


# -- attestations, keys, usage ------------------------------------------------------------


def test_attestations_come_from_any_account(chain: Chain) -> None:
    owner, scanner = Account.create(), Account.create()
    digest, _ = published(chain.writer(owner))
    me = addr(owner)
    theirs = chain.writer(scanner)
    payload = rand_digest()
    theirs.attest(me, digest, "vuln-scan", payload, "bafyattest")
    chain.writer(owner).attest(me, digest, "cosign", rand_digest())
    found = chain.reader().attestations(me, digest)
    assert [(a.publisher, a.digest, a.attester, a.kind, a.index, a.live) for a in found] == [
        (me, digest, addr(scanner), "vuln-scan", 1, True),
        (me, digest, me, "cosign", 2, True),
    ]
    assert (found[0].payload_hash, found[0].cid) == (payload, "bafyattest")
    record = chain.reader().image(me, digest)
    assert record is not None and record.attestation_count == 2
    raw = chain.raw(scanner).call("attestationOf", owner.address, digest_to_bytes(digest), 1)
    assert str(raw[0]).lower() == scanner.address.lower() and raw[1] == found[0].at
    assert raw[2] == 0
    with pytest.raises(NotFoundError, match="has no record"):
        theirs.attest(me, rand_digest(), "cosign", rand_digest())
    with pytest.raises(NotFoundError, match="has no record"):
        theirs.attest(addr(scanner), digest, "cosign", rand_digest())
    with pytest.raises(InvalidInputError):
        theirs.attest(me, digest, "", rand_digest())
    theirs.revoke_attestation(me, digest, 1)
    again = chain.reader().attestations(me, digest)
    assert [a.live for a in again] == [False, True]
    assert again[0].revoked_at is not None and again[0].revoked_at >= again[0].at


def test_key_directory(chain: Chain) -> None:
    account = Account.create()
    ledger = chain.writer(account)
    assert chain.reader().keys_of(addr(account)) is None
    jwk = b'{"kty":"EC","crv":"P-256","x":"abc","y":"def"}'
    modulus = os.urandom(256)
    ledger.register_keys(encryption_key=jwk, paillier_n=modulus)
    entry = chain.reader().keys_of(addr(account))
    assert entry is not None
    assert (entry.address, entry.encryption_key, entry.paillier_n) == (
        addr(account),
        jwk,
        modulus,
    )
    ledger.register_keys(b'{"kty":"RSA"}', modulus[:128])
    rotated = chain.reader().keys_of(addr(account))
    assert rotated is not None and rotated.encryption_key == b'{"kty":"RSA"}'
    with pytest.raises(InvalidInputError, match="public keys are missing"):
        ledger.register_keys(b"", modulus)


def test_usage_reports_are_stored(chain: Chain) -> None:
    owner, user = Account.create(), Account.create()
    digest, _ = published(chain.writer(owner))
    me = addr(owner)
    chain.writer(owner).grant(digest, GrantRequest(addr(user), "bafym", rand_digest()))
    blob = rand_digest()
    chain.writer(user).report_usage(me, digest, 1000, 2000, "bafyusage", blob)
    reports = chain.reader().usage_reports(me, digest)
    assert [
        (r.publisher, r.reporter, r.window_start, r.window_end, r.cid, r.blob_hash, r.index)
        for r in reports
    ] == [(me, addr(user), 1000, 2000, "bafyusage", blob, 1)]
    with pytest.raises(InvalidInputError, match="must end after it starts"):
        chain.writer(user).report_usage(me, digest, 2000, 2000, "bafyusage", blob)


# -- the audit log ---------------------------------------------------------------------------


def test_every_event_carries_the_fields_an_auditor_needs(chain: Chain) -> None:
    owner, friend, scanner = Account.create(), Account.create(), Account.create()
    ledger = chain.writer(owner)
    me = addr(owner)
    summary = scan()
    digest, config = rand_digest(), rand_digest()
    hexd = "0x" + digest[7:]
    name = "audit/app-" + os.urandom(3).hex()
    manifest = rand_digest()
    ledger.publish(digest, config, "bafyroot", summary)
    ledger.set_tag(name, "v1", digest)
    ledger.grant(digest, GrantRequest(addr(friend), "bafymanifest", manifest, 4_000_000_000))
    blob = rand_digest()
    chain.writer(friend).report_usage(me, digest, 10, 20, "bafyusage", blob)
    ledger.revoke_grant(digest, addr(friend))
    payload = rand_digest()
    chain.writer(scanner).attest(me, digest, "vuln-scan", payload, "bafyatt")
    chain.writer(scanner).revoke_attestation(me, digest, 1)
    ledger.set_status(digest, Status.REVOKED, "compromised")
    modulus = os.urandom(256)
    ledger.register_keys(b"{}", modulus)

    reader = chain.reader()
    events = reader.audit_log(AuditQuery(digest=digest))
    assert [(e.name, e.actor) for e in events] == [
        ("ImagePublished", me),
        ("TagMoved", me),
        ("GrantAdded", me),
        ("UsageReported", addr(friend)),
        ("GrantRevoked", me),
        ("Attested", addr(scanner)),
        ("AttestationRevoked", addr(scanner)),
        ("StatusChanged", me),
    ]
    assert all(e.publisher == me and e.digest == digest for e in events)
    blocks = [e.block_number for e in events]
    assert blocks == sorted(blocks) and all(e.tx_hash.startswith("0x") for e in events)
    now = time.time()
    for e in events:
        assert e.fields["at"] == e.at and abs(e.at - now) < 120
    f = [dict(e.fields) for e in events]
    for fields in f:
        assert fields.pop("publisher") == owner.address
        assert fields.pop("digest") == hexd
        del fields["at"]
    assert f[0] == {
        "configDigest": "0x" + config[7:],
        "rootCid": "bafyroot",
        "scan": {
            "critical": 1,
            "high": 2,
            "medium": 3,
            "low": 4,
            "unknown": 5,
            "notScanned": False,
            "reportDigest": "0x" + (summary.report_digest or "")[7:],
            "vulndbDigest": "0x" + (summary.vulndb_digest or "")[7:],
            "reportCid": summary.report_cid,
        },
    }
    assert f[1] == {
        "refHash": f[1]["refHash"],
        "name": name,
        "tag": "v1",
        "previous": "0x" + "00" * 32,
    }
    assert f[2] == {
        "recipient": friend.address,
        "manifestCid": "bafymanifest",
        "manifestHash": "0x" + manifest[7:],
        "expiresAt": 4_000_000_000,
    }
    assert f[3] == {
        "reporter": friend.address,
        "windowStart": 10,
        "windowEnd": 20,
        "cid": "bafyusage",
        "blobHash": "0x" + blob[7:],
        "index": 1,
    }
    assert f[4] == {"recipient": friend.address}
    assert f[5] == {
        "attester": scanner.address,
        "kind": "0x" + b"vuln-scan".ljust(32, b"\0").hex(),
        "payloadHash": "0x" + payload[7:],
        "cid": "bafyatt",
        "index": 1,
    }
    assert f[6] == {"attester": scanner.address, "index": 1}
    assert f[7] == {"status": 4, "previous": 1, "reason": "compromised", "index": 1}

    keys = reader.audit_log(AuditQuery(actor=me, kinds=frozenset({"KeysRegistered"})))
    assert len(keys) == 1 and keys[0].publisher is None and keys[0].digest is None
    assert keys[0].fields["account"] == owner.address
    assert keys[0].fields["encryptionKey"] == "0x" + b"{}".hex()
    assert keys[0].fields["paillierN"] == "0x" + modulus.hex()


def test_the_audit_log_filters_by_publisher_actor_kind_and_time(chain: Chain) -> None:
    alice, bob, carol = Account.create(), Account.create(), Account.create()
    digest = rand_digest()
    chain.writer(alice).publish(digest, rand_digest(), "bafya", scan())
    chain.writer(bob).publish(digest, rand_digest(), "bafyb", scan())
    chain.writer(carol).attest(addr(alice), digest, "approved", rand_digest())
    chain.writer(carol).attest(addr(bob), digest, "approved", rand_digest())
    chain.writer(alice).register_keys(b"{}", b"\x01" * 64)
    reader = chain.reader()
    everything = reader.audit_log()
    ours = [e for e in everything if e.digest == digest]
    assert [(e.name, e.publisher, e.actor) for e in ours] == [
        ("ImagePublished", addr(alice), addr(alice)),
        ("ImagePublished", addr(bob), addr(bob)),
        ("Attested", addr(alice), addr(carol)),
        ("Attested", addr(bob), addr(carol)),
    ]
    assert reader.audit_log(AuditQuery(digest=digest)) == ours
    # KeysRegistered names no record: a publisher filter leaves it out.
    assert [(e.name, e.actor) for e in reader.audit_log(AuditQuery(publisher=addr(alice)))] == [
        ("ImagePublished", addr(alice)),
        ("Attested", addr(carol)),
    ]
    by_carol = reader.audit_log(AuditQuery(actor=addr(carol)))
    assert [(e.name, e.publisher) for e in by_carol] == [
        ("Attested", addr(alice)),
        ("Attested", addr(bob)),
    ]
    assert reader.audit_log(
        AuditQuery(digest=digest, kinds=frozenset({"Attested"}), publisher=addr(bob))
    ) == [ours[3]]
    assert reader.audit_log(AuditQuery(kinds=frozenset())) == []
    first, last = ours[0].at, ours[-1].at
    assert reader.audit_log(AuditQuery(digest=digest, since=first, until=last)) == ours
    assert reader.audit_log(AuditQuery(digest=digest, since=last + 1)) == []
    assert reader.audit_log(AuditQuery(digest=digest, until=first - 1)) == []


def test_the_audit_log_reads_from_a_block_on_for_a_follower(chain: Chain) -> None:
    alice, carol = Account.create(), Account.create()
    digest = rand_digest()
    first = chain.writer(alice).publish(digest, rand_digest(), "bafya", scan())
    second = chain.writer(alice).set_status(digest, Status.UNTRUSTED, "a CVE")
    third = chain.writer(carol).attest(addr(alice), digest, "approved", rand_digest())
    reader = chain.reader()
    assert second.block_number > first.block_number
    seen = reader.audit_log(AuditQuery(digest=digest, from_block=second.block_number))
    assert [(e.name, e.block_number, e.tx_hash) for e in seen] == [
        ("StatusChanged", second.block_number, second.tx_hash),
        ("Attested", third.block_number, third.tx_hash),
    ]
    assert reader.audit_log(AuditQuery(digest=digest, from_block=third.block_number + 1)) == []
    head = reader.info().block_number
    assert reader.audit_log(AuditQuery(from_block=head + 1000)) == []


# -- gas -------------------------------------------------------------------------------------


def test_gas_stays_within_its_targets(chain: Chain) -> None:
    owner, friend = Account.create(), Account.create()
    ledger = chain.writer(owner)
    digest = rand_digest()
    summary = ScanSummary(
        critical=10**6,
        high=10**6,
        medium=10**6,
        low=10**6,
        unknown=10**6,
        report_digest=rand_digest(),
        report_cid="bafkrei" + "a" * 52,
        vulndb_digest=rand_digest(),
    )
    assert ledger.publish(digest, rand_digest(), "bafybei" + "b" * 52, summary).gas_used <= 250_000
    grant = GrantRequest(addr(friend), "bafybei" + "c" * 52, rand_digest(), 4_000_000_000)
    assert ledger.grant(digest, grant).gas_used <= 120_000
    assert ledger.set_status(digest, Status.UNTRUSTED, "a CVE").gas_used <= 80_000
    assert ledger.set_status(digest, Status.REVOKED, "withdrawn " * 8).gas_used <= 80_000
