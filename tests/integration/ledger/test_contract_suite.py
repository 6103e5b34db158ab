"""The ImageLedger contract suite, run on the embedded chain and on a real anvil.

Every test uses fresh accounts and random digests, so the tests that share one
anvil contract cannot see each other's records.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
from eth_account import Account

from sedis.core.address import Address
from sedis.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from sedis.core.records import GrantRequest, ScanSummary, Status, TxReceipt
from sedis.ledger.base import LedgerReader, LedgerWriter
from tests.integration.ledger.conftest import Chain, addr

pytestmark = pytest.mark.integration


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


def is_granted(reader: LedgerReader, digest: str, recipient: Address) -> bool:
    """Whether the recipient's latest grant lets it in now."""
    grant = reader.grant_of(digest, recipient)
    return grant is not None and grant.active_at(reader.now())


def published(ledger: LedgerWriter, summary: ScanSummary | None = None) -> tuple[str, str]:
    digest, config = rand_digest(), rand_digest()
    ledger.publish(digest, config, "bafyroot" + os.urandom(4).hex(), summary or scan())
    return digest, config


def test_publish_records_the_image(chain: Chain) -> None:
    owner = Account.create()
    ledger = chain.writer(owner)
    summary = scan()
    digest, config = rand_digest(), rand_digest()
    receipt = ledger.publish(digest, config, "bafyrootcid", summary)
    assert receipt.gas_used <= 250_000
    record = chain.reader().image(digest)
    assert record is not None
    assert (record.owner, record.config_digest, record.root_cid) == (
        addr(owner),
        config,
        "bafyrootcid",
    )
    assert record.scan == summary
    assert record.status is Status.TRUSTED
    assert abs(record.published_at - time.time()) < 60
    reader = chain.reader()
    assert reader.image(digest) == record
    assert [r.digest for r in reader.images_by_config(config)] == [digest]
    assert [r.digest for r in reader.images(addr(owner))] == [digest]


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
    events = chain.reader().audit_log(digest)
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
    record = reader.image(digest)
    assert record is not None and record.owner == addr(owner)
    for who in (owner, friend):
        got = reader.grant_of(digest, addr(who))
        assert got is not None
        assert (got.manifest_cid, got.manifest_hash, got.by) == (
            "bafyshare",
            manifest_hash,
            addr(owner),
        )
    assert not is_granted(reader, digest, addr(other))
    assert reader.resolve(name, "v1") == digest
    assert reader.name_owner(name) == addr(owner)


def test_a_failing_part_of_a_publish_records_nothing(chain: Chain) -> None:
    first, second, friend = Account.create(), Account.create(), Account.create()
    name = "org/held-" + os.urandom(3).hex()
    held, _ = published(chain.writer(first))
    chain.writer(first).set_tag(name, "v1", held)
    ledger = chain.writer(second)
    digest = rand_digest()
    grants = [GrantRequest(addr(friend), "bafyshare", rand_digest())]
    with pytest.raises(PermissionDeniedError, match=f"only {first.address}, the first publisher"):
        ledger.publish(digest, rand_digest(), "bafyroot", scan(), grants, (name, "v1"))
    reader = chain.reader()
    assert reader.image(digest) is None
    assert reader.grant_of(digest, addr(friend)) is None
    assert reader.resolve(name, "v1") == held
    bad = [GrantRequest(addr(friend), "bafyshare", rand_digest(), expires_at=1)]
    with pytest.raises(InvalidInputError):
        ledger.publish(digest, rand_digest(), "bafyroot", scan(), bad)
    assert reader.image(digest) is None


def test_an_unpublished_digest_reads_as_unknown(chain: Chain) -> None:
    reader = chain.reader()
    digest = rand_digest()
    assert reader.image(digest) is None
    assert reader.statuses([digest])[digest] is Status.UNKNOWN
    assert reader.status_history(digest) == []
    assert reader.statuses([digest]) == {digest: Status.UNKNOWN}


def test_unscanned_image_and_inconsistent_scans(chain: Chain) -> None:
    ledger = chain.writer(Account.create())
    digest, _ = published(ledger, ScanSummary.unscanned())
    record = chain.reader().image(digest)
    assert record is not None and record.scan == ScanSummary.unscanned()
    with pytest.raises(InvalidInputError, match="scan summary is inconsistent"):
        ledger.publish(rand_digest(), rand_digest(), "bafy", ScanSummary(critical=1))
    with pytest.raises(InvalidInputError, match="scan summary is inconsistent"):
        ledger.publish(
            rand_digest(), rand_digest(), "bafy", ScanSummary(not_scanned=True, critical=2)
        )
    with pytest.raises(InvalidInputError, match="CID is missing"):
        ledger.publish(rand_digest(), rand_digest(), "", ScanSummary.unscanned())


def test_a_record_cannot_be_published_twice(chain: Chain) -> None:
    owner, other = Account.create(), Account.create()
    digest, _ = published(chain.writer(owner))
    for who in (owner, other):
        expected = f"{digest} is already published by {owner.address}"
        with pytest.raises(ConflictError, match=expected):
            chain.writer(who).publish(digest, rand_digest(), "bafyother", ScanSummary.unscanned())
    record = chain.reader().image(digest)
    assert record is not None and record.owner == addr(owner)


def test_every_owner_only_function_refuses_anyone_else(chain: Chain) -> None:
    owner, intruder, friend = Account.create(), Account.create(), Account.create()
    mine = chain.writer(owner)
    digest, _ = published(mine)
    mine.grant(digest, GrantRequest(addr(friend), "bafymanifest", rand_digest()))
    mine.set_tag("team/app", "v1", digest)
    theirs = chain.writer(intruder)
    attempts: dict[str, Callable[[], TxReceipt]] = {
        "status": lambda: theirs.set_status(digest, Status.REVOKED, "hostile"),
        "grants": lambda: theirs.grant(
            digest, GrantRequest(addr(intruder), "bafyx", rand_digest())
        ),
        "grants ": lambda: theirs.revoke_grant(digest, addr(friend)),
        "tags": lambda: theirs.set_tag("team/app", "v1", digest),
    }
    for part, attempt in attempts.items():
        with pytest.raises(PermissionDeniedError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(
            f"only the owner of {digest} ({owner.address}) may change its {part.strip()}"
        )
        assert str(addr(intruder)) in message
    assert chain.reader().statuses([digest])[digest] is Status.TRUSTED
    assert is_granted(chain.reader(), digest, addr(friend))
    assert not is_granted(chain.reader(), digest, addr(intruder))
    assert chain.reader().resolve("team/app", "v1") == digest
    assert len(chain.reader().status_history(digest)) == 1


def test_only_a_names_first_publisher_moves_its_tags(chain: Chain) -> None:
    first, second = Account.create(), Account.create()
    name = "org/app-" + os.urandom(3).hex()
    a = chain.writer(first)
    d1, _ = published(a)
    a.set_tag(name, "latest", d1)
    b = chain.writer(second)
    d2, _ = published(b)
    with pytest.raises(PermissionDeniedError, match=f"only {first.address}, the first publisher"):
        b.set_tag(name, "latest", d2)
    with pytest.raises(PermissionDeniedError, match="first publisher"):
        b.set_tag(name, "other-tag", d2)
    assert chain.reader().resolve(name, "latest") == d1
    assert chain.reader().resolve(name, "other-tag") is None
    assert chain.reader().name_owner(name) == addr(first)
    b.set_tag(name + "-fork", "latest", d2)  # a name nobody holds yet is free
    assert chain.reader().name_owner(name + "-fork") == addr(second)


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
    history = chain.reader().status_history(digest)
    assert [(e.index, e.status, e.reason) for e in history] == [
        (0, Status.TRUSTED, "published"),
        *[(i + 1, s, r) for i, (s, r) in enumerate(steps)],
    ]
    assert [e.previous for e in history] == [Status.UNKNOWN] + [e.status for e in history[:-1]]
    assert all(e.by == addr(owner) for e in history)
    assert [e.at for e in history] == sorted(e.at for e in history)
    assert chain.reader().statuses([digest])[digest] is Status.REVOKED


def test_status_changes_that_are_refused(chain: Chain) -> None:
    ledger = chain.writer(Account.create())
    digest, _ = published(ledger)
    with pytest.raises(ConflictError, match="is already TRUSTED"):
        ledger.set_status(digest, Status.TRUSTED, "again")
    with pytest.raises(InvalidInputError, match="not one a publisher may set"):
        ledger.set_status(digest, Status.UNKNOWN, "forget it")
    with pytest.raises(InvalidInputError, match="needs a reason"):
        ledger.set_status(digest, Status.UNTRUSTED, "")
    with pytest.raises(NotFoundError, match="is not published"):
        ledger.set_status(rand_digest(), Status.REVOKED, "never was")
    assert len(chain.reader().status_history(digest)) == 1


def test_an_expired_grant_reads_as_not_granted(chain: Chain) -> None:
    owner, reader = Account.create(), Account.create()
    ledger = chain.writer(owner)
    digest, _ = published(ledger)
    expires = int(time.time()) + 3
    receipt = ledger.grant(
        digest, GrantRequest(addr(reader), "bafymanifest", rand_digest(), expires)
    )
    assert receipt.gas_used <= 120_000
    assert is_granted(chain.reader(), digest, addr(reader))
    grant = chain.reader().grant_of(digest, addr(reader))
    assert grant is not None and grant.expires_at == expires
    assert grant.active_at(expires - 1) and not grant.active_at(expires)
    time.sleep(max(0.0, expires - time.time()) + 1.1)
    published(ledger)  # a new block, so chain time moves past the expiry on any node
    assert not is_granted(chain.reader(), digest, addr(reader))
    assert [g.digest for g in chain.reader().grants_to(addr(reader))] == [digest]
    with pytest.raises(InvalidInputError, match="not after the chain's time"):
        ledger.grant(
            digest, GrantRequest(addr(reader), "bafym", rand_digest(), int(time.time()) - 10)
        )


def test_revoked_grants_and_grants_again(chain: Chain) -> None:
    owner, reader = Account.create(), Account.create()
    ledger = chain.writer(owner)
    digest, _ = published(ledger)
    with pytest.raises(NotFoundError, match="holds no grant"):
        ledger.revoke_grant(digest, addr(reader))
    ledger.grant(digest, GrantRequest(addr(reader), "bafyfirst", rand_digest()))
    ledger.revoke_grant(digest, addr(reader))
    assert not is_granted(chain.reader(), digest, addr(reader))
    grant = chain.reader().grant_of(digest, addr(reader))
    assert grant is not None and grant.revoked_at is not None and not grant.active_at(0)
    with pytest.raises(NotFoundError, match="holds no grant"):
        ledger.revoke_grant(digest, addr(reader))
    manifest_hash = rand_digest()
    ledger.grant(digest, GrantRequest(addr(reader), "bafysecond", manifest_hash))
    assert is_granted(chain.reader(), digest, addr(reader))
    again = chain.reader().grant_of(digest, addr(reader))
    assert again is not None
    assert (again.manifest_cid, again.manifest_hash, again.revoked_at) == (
        "bafysecond",
        manifest_hash,
        None,
    )
    assert [g.recipient for g in chain.reader().grants(digest)] == [addr(reader)]


def test_tags_resolve_and_keep_their_history(chain: Chain) -> None:
    owner = Account.create()
    ledger = chain.writer(owner)
    name = "org/svc-" + os.urandom(3).hex()
    d1, _ = published(ledger)
    d2, _ = published(ledger)
    ledger.set_tag(name, "stable", d1)
    ledger.set_tag(name, "edge", d1)
    ledger.set_tag(name, "stable", d2)
    reader = chain.reader()
    assert reader.resolve(name, "stable") == d2
    assert reader.resolve(name, "edge") == d1
    assert reader.resolve(name, "missing") is None
    history = reader.tag_history(name, "stable")
    assert [(t.digest, t.previous) for t in history] == [(d1, None), (d2, d1)]
    assert all(t.by == addr(owner) and t.ref == f"{name}:stable" for t in history)
    assert [t.ref for t in reader.tags_of(d1)] == [f"{name}:edge"]
    assert [t.ref for t in reader.tags_of(d2)] == [f"{name}:stable"]
    # "a:b" + "c" and "a" + "b:c" are different references.
    ledger.set_tag(name + ":x", "y", d1)
    assert reader.resolve(name, "x:y") is None


def test_attestations_come_from_any_account(chain: Chain) -> None:
    owner, scanner = Account.create(), Account.create()
    digest, _ = published(chain.writer(owner))
    theirs = chain.writer(scanner)
    payload = rand_digest()
    theirs.attest(digest, "vuln-scan", payload, "bafyattest")
    chain.writer(owner).attest(digest, "cosign", rand_digest())
    found = chain.reader().attestations(digest)
    assert [(a.attester, a.kind, a.index) for a in found] == [
        (addr(scanner), "vuln-scan", 1),
        (addr(owner), "cosign", 2),
    ]
    assert (found[0].payload_hash, found[0].cid) == (payload, "bafyattest")
    with pytest.raises(NotFoundError):
        theirs.attest(rand_digest(), "cosign", rand_digest())
    with pytest.raises(InvalidInputError):
        theirs.attest(digest, "", rand_digest())


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
    blob = rand_digest()
    chain.writer(user).report_usage(digest, 1000, 2000, "bafyusage", blob)
    reports = chain.reader().usage_reports(digest)
    assert [
        (r.reporter, r.window_start, r.window_end, r.cid, r.blob_hash, r.index) for r in reports
    ] == [(addr(user), 1000, 2000, "bafyusage", blob, 1)]
    with pytest.raises(InvalidInputError, match="must end after it starts"):
        chain.writer(user).report_usage(digest, 2000, 2000, "bafyusage", blob)


def test_each_writer_of_one_reader_signs_as_its_own_account(chain: Chain) -> None:
    first, second = Account.create(), Account.create()
    mine, theirs = chain.writer(first), chain.writer(second)
    assert (mine.address, theirs.address) == (addr(first), addr(second))
    d1, _ = published(mine)
    d2, _ = published(theirs)
    d3, _ = published(mine)
    owners = {r.digest: r.owner for r in chain.reader().images()}
    assert (owners[d1], owners[d2], owners[d3]) == (addr(first), addr(second), addr(first))


def test_every_event_carries_the_fields_an_auditor_needs(chain: Chain) -> None:
    owner, friend, scanner = Account.create(), Account.create(), Account.create()
    ledger = chain.writer(owner)
    summary = scan()
    digest, config = rand_digest(), rand_digest()
    hexd = "0x" + digest[7:]
    name = "audit/app-" + os.urandom(3).hex()
    manifest = rand_digest()
    ledger.publish(digest, config, "bafyroot", summary)
    ledger.set_tag(name, "v1", digest)
    ledger.grant(digest, GrantRequest(addr(friend), "bafymanifest", manifest, 4_000_000_000))
    ledger.revoke_grant(digest, addr(friend))
    payload = rand_digest()
    chain.writer(scanner).attest(digest, "vuln-scan", payload, "bafyatt")
    blob = rand_digest()
    chain.writer(friend).report_usage(digest, 10, 20, "bafyusage", blob)
    ledger.set_status(digest, Status.REVOKED, "compromised")
    modulus = os.urandom(256)
    ledger.register_keys(b"{}", modulus)

    events = chain.reader().audit_log(digest)
    assert [e.name for e in events] == [
        "ImagePublished",
        "TagMoved",
        "GrantAdded",
        "GrantRevoked",
        "Attested",
        "UsageReported",
        "StatusChanged",
    ]
    blocks = [e.block_number for e in events]
    assert blocks == sorted(blocks) and all(e.tx_hash.startswith("0x") for e in events)
    now = time.time()
    for e in events:
        at = next(
            v for k, v in e.fields.items() if k in ("publishedAt", "at", "grantedAt", "revokedAt")
        )
        assert isinstance(at, int) and abs(at - now) < 120
    f = [dict(e.fields) for e in events]
    for fields in f:
        for key in ("publishedAt", "at", "grantedAt", "revokedAt"):
            fields.pop(key, None)
    assert f[0] == {
        "digest": hexd,
        "owner": owner.address,
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
        "digest": hexd,
        "refHash": f[1]["refHash"],
        "by": owner.address,
        "name": name,
        "tag": "v1",
        "previous": "0x" + "00" * 32,
    }
    assert f[2] == {
        "digest": hexd,
        "recipient": friend.address,
        "by": owner.address,
        "manifestCid": "bafymanifest",
        "manifestHash": "0x" + manifest[7:],
        "expiresAt": 4_000_000_000,
    }
    assert f[3] == {"digest": hexd, "recipient": friend.address, "by": owner.address}
    assert f[4] == {
        "digest": hexd,
        "attester": scanner.address,
        "kind": "0x" + b"vuln-scan".ljust(32, b"\0").hex(),
        "payloadHash": "0x" + payload[7:],
        "cid": "bafyatt",
        "index": 1,
    }
    assert f[5] == {
        "digest": hexd,
        "reporter": friend.address,
        "windowStart": 10,
        "windowEnd": 20,
        "cid": "bafyusage",
        "blobHash": "0x" + blob[7:],
        "index": 1,
    }
    assert f[6] == {
        "digest": hexd,
        "by": owner.address,
        "status": 4,
        "previous": 1,
        "reason": "compromised",
        "index": 1,
    }

    everything = chain.reader().audit_log()
    claimed = [e for e in everything if e.name == "NameClaimed" and e.fields["name"] == name]
    assert len(claimed) == 1 and claimed[0].fields["owner"] == owner.address
    keys = [
        e for e in everything if e.name == "KeysRegistered" and e.fields["account"] == owner.address
    ]
    assert len(keys) == 1
    assert keys[0].fields["encryptionKey"] == "0x" + b"{}".hex()
    assert keys[0].fields["paillierN"] == "0x" + modulus.hex()
