"""publish: one record with its grants and tag, re-runs that complete it, and every refusal
leaving nothing stored or recorded."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sedis.core.errors import (
    ConflictError,
    CorruptError,
    InvalidInputError,
    NotFoundError,
    PolicyViolationError,
    UnavailableError,
)
from sedis.core.records import ScanSummary, Status
from sedis.oci.checked import CheckCancelled
from sedis.oci.source import ImageSource
from sedis.service import publish, scanning
from sedis.service.engines import Actor, Engines
from sedis.service.naming import parse_name
from sedis.store.cid import Cid
from tests.oci_images import file, make_image, make_tar, sha, write_layout
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
    make_vulndb,
    publish_layout,
    pull_to,
    register_unusable_key,
    source_blobs,
)

ALICE = address_of("alice")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return make_layout(tmp_path / "src", layers=2)


def functions(ledger: FakeLedger, since: int = 0) -> list[str]:
    return [sent.function for sent in ledger.sent[since:]]


def stored_anywhere(store: FakeStore, data: bytes) -> bool:
    return any(data in block for _, block in store.blocks())


def test_a_new_image_is_recorded_with_its_grants_and_tag_in_one_write(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    layout: Layout,
) -> None:

    before = len(ledger.sent)
    result = publish_layout(engines, alice, layout, "app:v1", ["bob", "carol", "bob"])

    (write,) = ledger.sent[before:]
    assert (write.function, write.sender) == ("publish", alice.address)
    assert result.transactions == (write.receipt.tx_hash,)
    assert result.digest == layout.image.digest
    assert result.config_digest == sha(layout.image.config)
    assert result.name == "app:v1"
    assert result.recipients == (bob.address, carol.address)
    assert not result.already_recorded
    assert result.scan == ScanSummary.unscanned()

    record = ledger.image(ALICE, result.digest)
    assert record is not None
    assert (record.publisher, record.root_cid, record.config_digest, record.status) == (
        alice.address,
        result.root_cid,
        result.config_digest,
        Status.TRUSTED,
    )
    assert record.scan == ScanSummary.unscanned()
    grants = {g.recipient: g for g in ledger.grants(ALICE, result.digest)}
    assert set(grants) == {alice.address, bob.address, carol.address}
    assert all(g.expires_at is None and g.revoked_at is None for g in grants.values())
    assert ledger.resolve(ALICE, "app", "v1") == result.digest
    assert Cid.parse(result.root_cid) in store.pins()


def test_the_owner_named_as_a_recipient_is_wrapped_for_once(
    engines: Engines, ledger: FakeLedger, store: FakeStore, alice: Actor, layout: Layout
) -> None:
    import json

    result = publish_layout(engines, alice, layout, "app:v1", ["alice"])
    assert result.recipients == ()
    (grant,) = ledger.grants(ALICE, result.digest)
    share = json.loads(store.read_bytes(grant.manifest_cid, 1 << 20))
    wrapped = share["layers"][0]["annotations"]["org.opencontainers.image.enc.keys.jwe"]
    jwe = json.loads(__import__("base64").b64decode(wrapped))
    # One recipient is the flattened form; two would be listed under "recipients".
    assert "recipients" not in jwe and "encrypted_key" in jwe


def test_nothing_of_the_image_is_stored_in_plaintext(
    engines: Engines, store: FakeStore, alice: Actor, layout: Layout
) -> None:
    publish_layout(engines, alice, layout)
    for data in (layout.image.manifest, layout.image.config, *layout.image.layers):
        assert not stored_anywhere(store, data)


def test_without_a_name_no_tag_is_set(
    engines: Engines, ledger: FakeLedger, alice: Actor, layout: Layout
) -> None:
    result = publish_layout(engines, alice, layout, name=None)
    assert result.name is None
    assert ledger.tags_of(ALICE, result.digest) == []
    assert ledger.image(ALICE, result.digest) is not None


def test_publishing_again_adds_only_the_missing_grants_and_tag(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    layout: Layout,
    tmp_path: Path,
) -> None:
    first = publish_layout(engines, alice, layout, "app:v1", ["bob"])
    bob_grant = ledger.grant_of(ALICE, first.digest, bob.address)
    ledger.advance(10)

    before = len(ledger.sent)
    again = publish_layout(engines, alice, layout, "app:v2", ["bob", "carol"])
    assert again.already_recorded
    assert functions(ledger, before) == ["grant", "setTag"]
    assert again.transactions == tuple(s.receipt.tx_hash for s in ledger.sent[before:])
    assert (again.digest, again.root_cid, again.name) == (first.digest, first.root_cid, "app:v2")
    assert again.recipients == (bob.address, carol.address)
    assert ledger.grant_of(ALICE, first.digest, bob.address) == bob_grant
    assert ledger.resolve(ALICE, "app", "v1") == ledger.resolve(ALICE, "app", "v2") == first.digest
    assert len(ledger.images()) == 1

    # The grant added later wraps the keys for its recipient.
    pull_to(engines, carol, "app:v2", tmp_path / "carol")
    assert layout_blobs(tmp_path / "carol") == source_blobs(layout)

    before = len(ledger.sent)
    third = publish_layout(engines, alice, layout, "app:v2", ["carol"])
    assert third.already_recorded and third.transactions == ()
    assert functions(ledger, before) == []


def test_a_scan_is_recorded_and_its_report_sealed(
    engines: Engines, ledger: FakeLedger, store: FakeStore, alice: Actor, layout: Layout
) -> None:
    make_vulndb(engines.vulndb)
    hook = scanning.gate(engines.vulndb, scanning.ScanPolicy(None))
    with layout.open() as source:
        result = publish.publish(engines, alice, source, scan=hook)
    scan = result.scan
    assert scan is not None and not scan.not_scanned
    assert scan.report_digest is not None and scan.vulndb_digest is not None
    assert scan.report_cid is not None and store.has(Cid.parse(scan.report_cid))
    record = ledger.image(ALICE, result.digest)
    assert record is not None and record.scan == scan


# -- refusals --------------------------------------------------------------------------------


class Unchanged:
    """What a refused publish must leave as it was: the ledger's writes and the store."""

    def __init__(self, ledger: FakeLedger, store: FakeStore) -> None:
        self.ledger = ledger
        self.store = store
        self.sent = len(ledger.sent)
        self.blocks = store.block_count()
        self.pins = store.pins()

    def check(self) -> None:
        assert len(self.ledger.sent) == self.sent
        assert self.store.block_count() == self.blocks
        assert self.store.pins() == self.pins


@pytest.fixture
def unchanged(ledger: FakeLedger, store: FakeStore, alice: Actor, bob: Actor) -> Unchanged:
    """Taken once alice and bob have registered their keys."""
    return Unchanged(ledger, store)


def test_an_encrypted_source_is_refused(
    engines: Engines, alice: Actor, unchanged: Unchanged, tmp_path: Path
) -> None:
    image = make_image(
        [make_tar([file("a.txt", "a")])],
        layer_type="application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
    )
    encrypted = Layout(write_layout(tmp_path / "enc", image, "v1"), image)
    with pytest.raises(InvalidInputError, match="is encrypted: give --decryption-key"):
        publish_layout(engines, alice, encrypted)
    unchanged.check()


def test_an_unknown_recipient_is_refused(
    engines: Engines, alice: Actor, layout: Layout, unchanged: Unchanged
) -> None:
    with pytest.raises(NotFoundError, match="no identity or contact is named 'mallory'"):
        publish_layout(engines, alice, layout, recipients=["bob", "mallory"])
    unchanged.check()


def test_a_recipient_without_registered_keys_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    directory: FakeDirectory,
    layout: Layout,
) -> None:
    dave = make_actor(engines, "dave", directory, register=False)
    unchanged = Unchanged(ledger, store)
    with pytest.raises(NotFoundError, match=f"{dave.address} has no keys in the key directory"):
        publish_layout(engines, alice, layout, recipients=["dave"])
    unchanged.check()


def test_a_recipient_with_an_unusable_key_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    directory: FakeDirectory,
    layout: Layout,
) -> None:
    dave = make_actor(engines, "dave", directory, register=False)
    register_unusable_key(dave)
    unchanged = Unchanged(ledger, store)
    with pytest.raises(InvalidInputError) as caught:
        publish_layout(engines, alice, layout, recipients=["dave"])
    assert str(caught.value).startswith(
        f"{dave.address} has registered an encryption key that cannot be used ("
    )
    unchanged.check()


def test_a_digest_and_name_someone_else_recorded_first_still_publish(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    layout: Layout,
) -> None:
    squatted = publish_layout(engines, bob, layout, name="acme/app:1.0")
    bob.ledger.set_status(squatted.digest, Status.REVOKED, "squatted and revoked")
    ledger.advance(10)
    result = publish_layout(engines, alice, layout, "acme/app:1.0", ["carol"])
    assert not result.already_recorded and result.digest == squatted.digest
    record = ledger.image(ALICE, result.digest)
    assert record is not None and record.status is Status.TRUSTED
    assert ledger.resolve(ALICE, "acme/app", "1.0") == result.digest
    assert ledger.resolve(bob.address, "acme/app", "1.0") == result.digest
    bobs = ledger.image(bob.address, result.digest)
    assert bobs is not None and bobs.status is Status.REVOKED
    assert {g.recipient for g in ledger.grants(ALICE, result.digest)} == {
        alice.address,
        carol.address,
    }


def test_an_image_recorded_but_not_trusted_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    store: FakeStore,
    alice: Actor,
    bob: Actor,
    layout: Layout,
) -> None:
    result = publish_layout(engines, alice, layout)
    alice.ledger.set_status(result.digest, Status.UNTRUSTED, "CVE-2026-0001")
    unchanged = Unchanged(ledger, store)
    with pytest.raises(ConflictError, match=f"^your record of {result.digest} is UNTRUSTED$"):
        publish_layout(engines, alice, layout, "app:v2", ["bob"])
    unchanged.check()


def test_a_scan_refusal_stores_and_records_nothing(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    layout: Layout,
    unchanged: Unchanged,
) -> None:
    scanned: list[str] = []

    def refuse(source: ImageSource) -> scanning.PreShareScan | None:
        scanned.append(source.manifest.digest)
        raise PolicyViolationError("publish refused by the vulnerability policy: 1 critical")

    with layout.open() as source, pytest.raises(PolicyViolationError, match="1 critical"):
        publish.publish(engines, alice, source, recipients=["bob"], scan=refuse)
    assert scanned == [layout.image.digest]
    unchanged.check()
    assert ledger.image(ALICE, layout.image.digest) is None


def test_a_failed_ledger_write_records_nothing_and_a_rerun_completes(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, layout: Layout
) -> None:
    before = len(ledger.sent)
    ledger.fail_next_write(UnavailableError("the node went away"))
    with pytest.raises(UnavailableError, match="the node went away"):
        publish_layout(engines, alice, layout, "app:v1", ["bob"])
    assert ledger.image(ALICE, layout.image.digest) is None
    assert ledger.grants(ALICE, layout.image.digest) == []
    assert ledger.resolve(ALICE, "app", "v1") is None
    assert len(ledger.sent) == before

    result = publish_layout(engines, alice, layout, "app:v1", ["bob"])
    assert not result.already_recorded
    assert functions(ledger, before) == ["publish"]
    assert {g.recipient for g in ledger.grants(ALICE, result.digest)} == {
        alice.address,
        bob.address,
    }


def test_a_blob_that_does_not_match_its_digest_is_refused(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    layout: Layout,
    unchanged: Unchanged,
) -> None:
    layer = layout.blob_path(layout.image.layer_digests[1])
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0x01
    layer.write_bytes(bytes(data))
    with pytest.raises(CorruptError, match=layout.image.layer_digests[1]):
        publish_layout(engines, alice, layout, recipients=["bob"])
    unchanged.check()
    assert ledger.image(ALICE, layout.image.digest) is None


def test_a_cancel_set_before_the_call_stops_it(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    layout: Layout,
    unchanged: Unchanged,
) -> None:
    cancel = threading.Event()
    cancel.set()
    with layout.open() as source, pytest.raises(CheckCancelled):
        publish.publish(engines, alice, source, name=parse_name("app:v1"), cancel=cancel)
    unchanged.check()
    assert ledger.image(ALICE, layout.image.digest) is None


def test_a_cancel_set_before_the_call_adds_nothing_to_a_record(
    engines: Engines, ledger: FakeLedger, alice: Actor, bob: Actor, layout: Layout
) -> None:
    publish_layout(engines, alice, layout)
    before = len(ledger.sent)
    cancel = threading.Event()
    cancel.set()
    with layout.open() as source, pytest.raises(CheckCancelled, match="called off"):
        publish.publish(engines, alice, source, recipients=["bob"], cancel=cancel)
    assert len(ledger.sent) == before
    assert ledger.grant_of(ALICE, layout.image.digest, bob.address) is None


def test_bytes_to_process_counts_every_blob_and_the_layers_again(layout: Layout) -> None:
    manifest = json.loads(layout.image.manifest)
    layers = sum(layer["size"] for layer in manifest["layers"])
    with layout.open() as source:
        assert publish.bytes_to_process(source) == manifest["config"]["size"] + 2 * layers
