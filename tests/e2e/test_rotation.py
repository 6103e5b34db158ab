"""unshare --rotate on the embedded store and chain: the old epoch is gone at once, a
rotation is all or none on the ledger, and a re-run finishes an interrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sedis.config import Settings, load
from sedis.core.address import Address
from sedis.core.errors import UnavailableError
from sedis.core.records import AuditQuery, Grant, GrantRequest
from sedis.crypto.layer_cipher import LayerEncryptor
from sedis.ledger import open_ledger
from sedis.oci import model
from sedis.service import access, layout, sealing
from sedis.store import open_store
from sedis.store.base import ContentStore
from sedis.store.cid import Cid
from sedis.store.embedded import EmbeddedStore
from tests.acting import Owner
from tests.e2e.conftest import PASSWORD, World, layout_digests, only_publisher
from tests.e2e.rotation import Kept, attack, keep


@dataclass
class Published:
    name: str
    digest: str
    source: Path


def publish(world: World, tag: str) -> Published:
    """alice publishes to bob, then shares with carol (a share manifest pinned on its own)."""
    source = world.image(tag, layers=2, size=300_000)
    name = f"rot/{tag}:v1"
    published = world.publish(f"oci:{source}:v1", name, "--to", "bob", "-o", "json")
    assert published.code == 0, published.err
    assert world.sedis("share", name, "--to", "carol", "--as", "alice").code == 0
    return Published(name, json.loads(published.out)["digest"], source)


def rotate(world: World, image: Published, who: str = "carol") -> dict[str, object]:
    result = world.sedis(
        "unshare", image.name, "--from", who, "--rotate", "--as", "alice", "-o", "json"
    )
    assert result.code == 0, result.err
    data: dict[str, object] = json.loads(result.out)
    return data


def grants(digest: str) -> dict[str, Grant]:
    with open_ledger(load()) as ledger:
        return {str(g.recipient): g for g in ledger.grants(only_publisher(ledger, digest), digest)}


def block_number() -> int:
    with open_ledger(load()) as ledger:
        return ledger.info().block_number


def epoch_of(grant: Grant) -> int:
    with open_store(load()) as store:
        raw = store.read_bytes(grant.manifest_cid, 4 * 1024 * 1024)
    return sealing.parse_share_manifest(raw).epoch


def stored_bytes(settings: Settings) -> Iterator[bytes]:
    for pack in sorted((settings.store_dir / "packs").iterdir()):
        yield pack.read_bytes()


def assert_gone(world: World, kept: Kept) -> None:
    """The store serves nothing of the old epoch, and no pack file holds its ciphertext."""
    settings = load()
    assert set(attack(settings, kept)) == {"NotFoundError"}
    with EmbeddedStore(settings.store_dir) as store:
        for cid, _ in kept.blobs:
            assert store.locate(Cid.parse(cid)) is None
            assert Cid.parse(cid) not in store.pins()
    for data in stored_bytes(settings):
        for _, piece in kept.blobs:
            assert piece not in data


def assert_pulls(world: World, image: Published, who: str, dest: str) -> None:
    out = world.work / dest
    pulled = world.sedis("pull", image.name, f"oci:{out}", "--as", who)
    assert pulled.code == 0, pulled.err
    assert layout_digests(out) == layout_digests(image.source)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_a_removed_recipient_decrypts_nothing_from_the_store_after_rotation(
    world: World,
) -> None:
    image = publish(world, "attack")
    settings = load()
    carol = keep(settings, "carol", world.addresses["carol"], image.digest)
    bob_before = keep(settings, "bob", world.addresses["bob"], image.digest)  # epoch 0, in the root

    data = rotate(world, image)

    # carol's own manifest, the published root and every epoch-0 blob: none served, none on disk.
    assert_gone(world, carol)
    assert_gone(world, bob_before)
    assert data["epoch"] == 1 and data["regranted"] == [world.addresses["bob"]]
    assert len(data["transactions"]) == 1  # type: ignore[arg-type]
    assert_pulls(world, image, "bob", "attack-bob")
    assert world.sedis("pull", image.name, f"oci:{world.work / 'attack-c'}", "--as", "carol").code
    # A re-run has nothing left to do, and says so without a transaction.
    again = rotate(world, image)
    assert again["transactions"] == [] and again["released"] == [] and again["epoch"] == 1


def test_a_second_rotation_releases_the_epoch_the_first_one_made(world: World) -> None:
    image = publish(world, "twice")
    rotate(world, image, "carol")
    settings = load()
    bob = keep(settings, "bob", world.addresses["bob"], image.digest)
    assert bob.share().epoch == 1

    data = rotate(world, image, "bob")

    assert data["epoch"] == 2 and data["regranted"] == []
    assert_gone(world, bob)
    assert_pulls(world, image, "alice", "twice-alice")


def test_a_rotation_checks_every_plaintext_before_it_encrypts_any(world: World) -> None:
    """A blob whose HMAC holds but whose plaintext is not what its digest says is refused
    before any ciphertext under the new epoch's key exists."""
    image = publish(world, "lying")
    settings = load()
    owner = Owner("alice", PASSWORD)
    record = owner.reader.image(owner.address, image.digest)
    assert record is not None
    opened = sealing.open_share(
        access.owner_view(owner.engines, owner.address, record), owner.encryption_key
    )
    # The last blob that is checked claims the config's digest over other bytes.
    config = opened.config
    # Forged by hand: sedis itself never seals bytes under another digest's key.
    private = sealing.PrivateOptions(os.urandom(32), config.private.digest, os.urandom(16))
    encryptor = LayerEncryptor(private)
    ciphertext = encryptor.update(b'{"not":"the config"}')
    public, sealed_digest = encryptor.finish()
    stored = owner.store.add_bytes(ciphertext)
    sealed = model.Descriptor(
        config.descriptor.media_type, sealed_digest, len(ciphertext), urls=(f"ipfs://{stored.cid}",)
    )
    liar = sealing.SealedBlob(sealed, private, public, stored.cid, stored.tsize)
    forged = sealing.SealedImage(opened.source, liar, opened.layers, opened.epoch, opened.report)
    raw = sealing.share_manifest(forged, [owner.public_key])
    entry = owner.store.add_bytes(raw)
    owner.ledger.grant(
        image.digest, GrantRequest(owner.address, str(entry.cid), model.sha256_digest(raw))
    )
    owner.close()
    before_grants, before_block = grants(image.digest), block_number()
    with EmbeddedStore(settings.store_dir) as store:
        before_blocks = store.locations()

    result = world.sedis("unshare", image.name, "--from", "carol", "--rotate", "--as", "alice")

    assert result.code == 4
    assert one_line(result.err) == (
        f"sedis: decrypted blob does not match its digest {config.private.digest}"
    )
    assert grants(image.digest) == before_grants and block_number() == before_block
    with EmbeddedStore(settings.store_dir) as store:
        assert store.locations() == before_blocks  # nothing new was encrypted


def test_a_store_fault_before_the_transaction_changes_nothing_and_a_rerun_completes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = publish(world, "fault")
    carol = keep(load(), "carol", world.addresses["carol"], image.digest)
    before_grants, before_block = grants(image.digest), block_number()
    real_add = ContentStore.add_bytes

    def failing_pinned_add(self: ContentStore, data: bytes, *args: object, **kw: object) -> object:
        if kw.get("pin", True):
            raise UnavailableError("the IPFS node went away")
        return real_add(self, data, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ContentStore, "add_bytes", failing_pinned_add)
    failed = world.sedis("unshare", image.name, "--from", "carol", "--rotate", "--as", "alice")
    monkeypatch.undo()

    assert failed.code == 5
    assert one_line(failed.err) == "sedis: the IPFS node went away"
    assert grants(image.digest) == before_grants and block_number() == before_block
    data = rotate(world, image)
    assert data["epoch"] == 1 and data["regranted"] == [world.addresses["bob"]]
    after = grants(image.digest)
    assert after[world.addresses["carol"]].revoked_at is not None
    assert epoch_of(after[world.addresses["bob"]]) == 1
    assert_gone(world, carol)
    assert_pulls(world, image, "bob", "fault-bob")


def test_a_rotation_killed_after_its_transaction_releases_the_old_epoch_on_rerun(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = publish(world, "late")
    carol = keep(load(), "carol", world.addresses["carol"], image.digest)

    def killed(self: ContentStore, roots: object) -> list[Cid]:
        raise UnavailableError("the IPFS node went away")

    monkeypatch.setattr(EmbeddedStore, "release", killed, raising=False)
    failed = world.sedis("unshare", image.name, "--from", "carol", "--rotate", "--as", "alice")
    monkeypatch.undo()
    assert failed.code == 5
    assert set(attack(load(), carol)) == {"opened"}  # the ledger moved on; the store did not
    block = block_number()

    data = rotate(world, image)

    assert data["transactions"] == [] and data["epoch"] == 1 and block_number() == block
    assert data["released"]
    assert_gone(world, carol)
    assert_pulls(world, image, "bob", "late-bob")


def test_an_older_versions_rotation_stopped_after_the_revoke_completes_on_rerun(
    world: World,
) -> None:
    """The older version sent the revoke first, in a transaction of its own, and died."""
    image = publish(world, "revoked")
    carol = keep(load(), "carol", world.addresses["carol"], image.digest)
    owner = Owner("alice", PASSWORD)
    owner.ledger.revoke_grant(image.digest, Address.parse(world.addresses["carol"]))
    owner.close()

    data = rotate(world, image)

    assert data["epoch"] == 1 and data["regranted"] == [world.addresses["bob"]]
    assert epoch_of(grants(image.digest)[world.addresses["bob"]]) == 1
    assert_gone(world, carol)
    assert_pulls(world, image, "bob", "revoked-bob")


def test_an_older_versions_rotation_that_left_recipients_behind_completes_on_rerun(
    world: World,
) -> None:
    """The older version revoked carol and re-granted the owner at epoch 1 (its own
    layout), then stopped before re-granting bob, who is still on epoch 0."""
    image = publish(world, "behind")
    settings = load()
    carol = keep(settings, "carol", world.addresses["carol"], image.digest)
    owner = Owner("alice", PASSWORD)
    record = owner.reader.image(owner.address, image.digest)
    assert record is not None
    owner.ledger.revoke_grant(image.digest, Address.parse(world.addresses["carol"]))
    current = sealing.open_share(
        access.owner_view(owner.engines, owner.address, record), owner.encryption_key
    )
    rotated = access._reseal(owner.store, owner.encryption_key, current)
    owner_raw = sealing.share_manifest(rotated, [owner.public_key])
    blobs = {
        b.descriptor.digest: access.Entry(b.cid, b.descriptor.size, b.tsize)
        for b in rotated.blobs()
    }
    _, owner_entry = layout.add_layout(owner.store, owner_raw, blobs, None)
    owner.ledger.grant(
        image.digest,
        GrantRequest(owner.address, str(owner_entry.cid), model.sha256_digest(owner_raw)),
    )
    owner.close()
    block = block_number()

    data = rotate(world, image)

    assert data["epoch"] == 1 and data["regranted"] == [world.addresses["bob"]]
    assert len(data["transactions"]) == 1 and block_number() == block + 1  # type: ignore[arg-type]
    assert epoch_of(grants(image.digest)[world.addresses["bob"]]) == 1
    assert_gone(world, carol)
    assert_pulls(world, image, "bob", "behind-bob")
    # The next rotation releases the epoch that the older version stored as a layout.
    bob = keep(settings, "bob", world.addresses["bob"], image.digest)
    assert rotate(world, image, "bob")["epoch"] == 2
    assert_gone(world, bob)
    assert_pulls(world, image, "alice", "behind-alice")


def kill_when(world: World, name: str, reached: Callable[[], bool]) -> None:
    """Run the rotation in a process of its own and SIGKILL it once ``reached`` holds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
    env.update(SEDIS_HOME=str(world.home), SEDIS_PASSWORD=os.environ["SEDIS_PASSWORD"])
    args = ["unshare", name, "--from", "carol", "--rotate", "--as", "alice"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sedis", *args], env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and not reached() and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_rotation_killed_anywhere_completes_on_rerun_with_one_rotation(world: World) -> None:
    source = world.image("killed", layers=2, size=8_000_000)
    name = "rot/killed:v1"
    published = world.publish(f"oci:{source}:v1", name, "--to", "bob", "-o", "json")
    assert published.code == 0, published.err
    digest = json.loads(published.out)["digest"]
    assert world.sedis("share", name, "--to", "carol", "--as", "alice").code == 0
    image = Published(name, digest, source)
    carol = keep(load(), "carol", world.addresses["carol"], digest)
    store_dir = load().store_dir
    packs = set(os.listdir(store_dir / "packs"))
    # Killed once the re-encryption has begun writing, then once the release has begun.
    kill_when(world, name, lambda: bool(set(os.listdir(store_dir / "packs")) - packs))
    assert grants(digest)[world.addresses["carol"]].revoked_at is None  # no transaction yet
    kill_when(world, name, lambda: (store_dir / "releasing.json").exists())
    if (store_dir / "releasing.json").exists():  # killed inside the release, as meant
        assert grants(digest)[world.addresses["carol"]].revoked_at is not None

    data = rotate(world, image)

    assert data["epoch"] == 1
    assert_gone(world, carol)
    with open_ledger(load()) as ledger:
        events = ledger.audit_log(AuditQuery(digest=digest))
    owner_grants = [
        e
        for e in events
        if e.name == "GrantAdded" and e.fields["recipient"] == world.addresses["alice"]
    ]
    assert len(owner_grants) == 2  # the publish's and one rotation's
    assert len([e for e in events if e.name == "GrantRevoked"]) == 1
    assert epoch_of(grants(digest)[world.addresses["bob"]]) == 1
    assert_pulls(world, image, "bob", "killed-bob")


def test_a_revoked_image_is_not_rotated(world: World) -> None:
    image = publish(world, "final")
    revoked = world.sedis("status", image.name, "revoked", "--reason", "gone", "--as", "alice")
    assert revoked.code == 0, revoked.err
    settings = load()
    with EmbeddedStore(settings.store_dir) as store:
        before = store.locations()
    before_grants, before_block = grants(image.digest), block_number()

    result = world.sedis("unshare", image.name, "--from", "carol", "--rotate", "--as", "alice")

    assert result.code == 9
    assert one_line(result.err) == (
        f"sedis: {image.digest} is revoked; its status, grants and tags can no longer change"
    )
    assert grants(image.digest) == before_grants and block_number() == before_block
    with EmbeddedStore(settings.store_dir) as store:
        assert store.locations() == before


def test_a_rotation_keeps_ciphertext_that_another_image_shares(world: World) -> None:
    """Two images of one owner with a layer in common hold one ciphertext of it (the key is
    derived from the owner, the layer's digest and the epoch): rotating one keeps it for
    the other."""
    first = world.image("sibling-a", layers=3, size=200_000)
    second = world.image("sibling-b", layers=3, size=200_000)
    shared = set(layout_digests(first)[2]) & set(layout_digests(second)[2])
    assert shared  # the third layer is the same in both
    names = ("rot/sibling-a:v1", "rot/sibling-b:v1")
    for source, name in zip((first, second), names, strict=True):
        assert world.publish(f"oci:{source}:v1", name, "--to", "bob", "--to", "carol").code == 0
    digests = [
        json.loads(world.sedis("inspect", name, "-o", "json").out)["record"]["digest"]
        for name in names
    ]
    kept = [keep(load(), "carol", world.addresses["carol"], digest) for digest in digests]
    assert {cid for cid, _ in kept[0].blobs} & {cid for cid, _ in kept[1].blobs}  # one copy
    image = Published(names[0], digests[0], first)

    rotate(world, image)

    assert_pulls(world, Published(names[1], "", second), "carol", "sibling-b-carol")
    assert_pulls(world, image, "bob", "sibling-a-bob")


def test_unshare_refuses_the_owner_and_a_recipient_never_granted(world: World) -> None:
    source = world.image("refusals", layers=1, size=1000)
    name = "rot/refusals:v1"
    published = world.publish(f"oci:{source}:v1", name, "--to", "bob", "-o", "json")
    assert published.code == 0, published.err
    digest = json.loads(published.out)["digest"]
    alice, carol = world.addresses["alice"], world.addresses["carol"]
    before = block_number()
    for rotate_flag in ([], ["--rotate"]):
        itself = world.sedis("unshare", name, "--from", "alice", *rotate_flag, "--as", "alice")
        assert itself.code == 2
        assert one_line(itself.err) == "sedis: the owner cannot unshare an image from itself"
    stranger = world.sedis("unshare", name, "--from", "carol", "--rotate", "--as", "alice")
    assert stranger.code == 3
    assert one_line(stranger.err) == f"sedis: {carol} holds no grant to {digest}"
    plain = world.sedis("unshare", name, "--from", "carol", "--as", "alice")
    assert plain.code == 3
    assert one_line(plain.err) == f"sedis: {carol} holds no live grant to {digest}"
    assert block_number() == before and alice in grants(digest)


def test_a_rotation_refuses_an_owner_manifest_of_another_image(world: World) -> None:
    """The owner's grant names a manifest (hash and all) that seals some other image."""
    image, other = publish(world, "target"), publish(world, "decoy")
    settings = load()
    owner = Owner("alice", PASSWORD)
    decoy = owner.reader.grant_of(owner.address, other.digest, owner.address)
    assert decoy is not None
    owner.ledger.grant(
        image.digest, GrantRequest(owner.address, decoy.manifest_cid, decoy.manifest_hash)
    )
    owner.close()
    before_grants, before_block = grants(image.digest), block_number()
    with EmbeddedStore(settings.store_dir) as store:
        before_blocks = store.locations()

    result = world.sedis("unshare", image.name, "--from", "carol", "--rotate", "--as", "alice")

    assert result.code == 4
    assert one_line(result.err) == (
        f"sedis: the owner's share manifest of {image.digest} seals another image"
    )
    assert grants(image.digest) == before_grants and block_number() == before_block
    with EmbeddedStore(settings.store_dir) as store:
        assert store.locations() == before_blocks


def test_a_rotation_from_an_owner_manifest_older_than_a_recipients_is_refused(
    world: World,
) -> None:
    """An owner grant that names an older epoch's manifest (a stale or forged answer)
    would rotate into the very keys a recipient already holds: refused before any work."""
    image = publish(world, "stale-owner")
    owner = Owner("alice", PASSWORD)
    record = owner.reader.image(owner.address, image.digest)
    assert record is not None
    old_owner_raw = access.owner_view(owner.engines, owner.address, record).raw
    owner.close()
    rotate(world, image, "carol")  # bob now holds epoch 1
    owner = Owner("alice", PASSWORD)
    entry = owner.store.add_bytes(old_owner_raw)  # the epoch-0 manifest, back in the store
    owner.ledger.grant(
        image.digest,
        GrantRequest(owner.address, str(entry.cid), model.sha256_digest(old_owner_raw)),
    )
    owner.close()
    before_grants, before_block = grants(image.digest), block_number()

    result = world.sedis("unshare", image.name, "--from", "bob", "--rotate", "--as", "alice")

    assert result.code == 4
    assert one_line(result.err) == (
        f"sedis: the owner's share manifest of {image.digest} is of key epoch 0, "
        f"but {world.addresses['bob']} holds epoch 1: the ledger's answers disagree"
    )
    assert grants(image.digest) == before_grants and block_number() == before_block
