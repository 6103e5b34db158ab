"""rescan: a scan attestation on the ledger, pointing at an envelope in the store whose
report is sealed for the live readers with usable keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sedis.core.errors import AuthError, NotFoundError, PermissionDeniedError
from sedis.core.records import Attestation
from sedis.oci import model
from sedis.service import access, query, rescan, sealing
from sedis.service.engines import Actor, Engines
from sedis.store.cid import Cid
from tests.oci_images import directory, file, make_image, make_tar, sha, write_layout
from tests.unit.scan.roots import DEBIAN_OS, dpkg_stanza
from tests.unit.service.fakes import (
    FakeDirectory,
    FakeLedger,
    FakeStore,
    address_of,
    make_actor,
)
from tests.unit.service.images import (
    FRIENDS,
    Layout,
    make_vulndb,
    publish_layout,
    register_unusable_key,
)

ALICE = address_of("alice")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """A Debian root whose zlib has a known vulnerability in the test data."""
    root = make_tar(
        [
            directory("etc"),
            file("etc/os-release", DEBIAN_OS),
            directory("var"),
            directory("var/lib"),
            directory("var/lib/dpkg"),
            file("var/lib/dpkg/status", dpkg_stanza("zlib1g", "1:1.2.13.dfsg-1", "zlib")),
        ]
    )
    image = make_image([root])
    return Layout(write_layout(tmp_path / "src", image, "v1"), image)


@pytest.fixture
def vulndb(engines: Engines) -> Path:
    return make_vulndb(engines.vulndb)


@pytest.fixture
def digest(
    engines: Engines, alice: Actor, bob: Actor, carol: Actor, layout: Layout, vulndb: Path
) -> str:
    return publish_layout(engines, alice, layout, "app:v1", ["bob", "carol"]).digest


def report_descriptor(store: FakeStore, envelope_cid: str) -> model.Descriptor:
    envelope = rescan.read_envelope(store, envelope_cid)
    return model.parse_descriptor(envelope["report"], "the sealed report")


def test_a_rescan_is_attested_and_its_report_sealed_for_the_live_readers(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    directory: FakeDirectory,
    digest: str,
) -> None:

    # Readers the report is not sealed for: a revoked grant, an expired one, an unusable key.
    dave = make_actor(engines, "dave", directory)
    erin = make_actor(engines, "erin", directory)
    access.share(engines, alice, digest, "dave")
    access.share(engines, alice, digest, "erin", expires_at=ledger.now() + 60)
    access.unshare(engines, alice, digest, "carol")
    register_unusable_key(dave)
    ledger.advance(60)

    before = len(ledger.sent)
    result = rescan.rescan(engines, bob, "app:v1", policy=FRIENDS)

    (write,) = ledger.sent[before:]
    assert (write.function, write.sender) == ("attest", bob.address)
    assert result.transaction == write.receipt.tx_hash
    assert (result.digest, result.publisher) == (digest, alice.address)
    assert result.sealed_for == tuple(sorted([alice.address, bob.address]))
    assert ledger.attestations(ALICE, digest) == [
        Attestation(
            alice.address,
            digest,
            bob.address,
            "scan",
            result.report_digest,
            result.envelope_cid,
            ledger.clock,
            1,
        )
    ]

    envelope = rescan.read_envelope(store, result.envelope_cid)
    assert Cid.parse(result.envelope_cid) in store.pins()
    assert envelope["mediaType"] == rescan.ENVELOPE_TYPE
    assert envelope["image"] == digest
    assert envelope["counts"] == dict(result.counts)
    assert envelope["vulndbDigest"] == result.vulndb_digest
    # zlib 1.2.13 has one critical vulnerability in the test data.
    assert result.counts == {"critical": 1, "high": 0, "medium": 0, "low": 0, "unknown": 0}

    sealed = report_descriptor(store, result.envelope_cid)
    assert sealing.blob_cid(sealed) in store.pins()
    for reader in (alice, bob):
        report = sealing.read_sealed(store, sealed, reader.keys.private_key(), 1 << 22)
        assert sha(report) == result.report_digest
        assert json.loads(report)["bomFormat"] == "CycloneDX"
    for outsider in (carol, dave, erin):
        with pytest.raises(AuthError):
            sealing.unwrap(sealed, outsider.keys.private_key())


def test_inspect_shows_the_rescan_beside_the_scan_made_at_publish(
    engines: Engines, alice: Actor, bob: Actor, digest: str
) -> None:
    result = rescan.rescan(engines, bob, digest, policy=FRIENDS)
    at_publish, again = query.inspect(engines, digest, policy=FRIENDS).scans
    assert (at_publish.kind, at_publish.by, at_publish.not_scanned) == (
        "publish",
        alice.address,
        True,
    )
    assert (again.kind, again.by, again.not_scanned, again.unreadable) == (
        "rescan",
        bob.address,
        False,
        None,
    )
    assert again.counts == dict(result.counts)
    assert (again.report_digest, again.envelope_cid, again.vulndb_digest) == (
        result.report_digest,
        result.envelope_cid,
        result.vulndb_digest,
    )


def test_a_rescan_by_an_account_that_may_not_pull_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    carol: Actor,
    digest: str,
) -> None:
    access.unshare(engines, alice, digest, "carol")
    before, blocks = len(ledger.sent), store.block_count()
    with pytest.raises(
        PermissionDeniedError, match=f"{carol.address} has no grant to {digest} from {ALICE}"
    ):
        rescan.rescan(engines, carol, digest, policy=FRIENDS)
    assert len(ledger.sent) == before and store.block_count() == blocks
    assert ledger.attestations(ALICE, digest) == []


def test_a_rescan_without_a_vulnerability_database_attests_nothing(
    engines: Engines, ledger: FakeLedger, bob: Actor, digest: str, vulndb: Path
) -> None:
    vulndb.unlink()
    before = len(ledger.sent)
    with pytest.raises(NotFoundError, match=f"no vulnerability database at {vulndb}"):
        rescan.rescan(engines, bob, digest, policy=FRIENDS)
    assert len(ledger.sent) == before
    assert ledger.attestations(ALICE, digest) == []
