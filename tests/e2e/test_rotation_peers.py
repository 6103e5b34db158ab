"""unshare --rotate against real peers: js-ipfs as the owner's Kubo node, anvil as the
JSON-RPC node. A removed recipient's script finds nothing of the old epoch after the
node's garbage collection, and an unusable key stops a rotation before any transaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sedis.config import load
from sedis.core.address import Address
from sedis.core.errors import InvalidInputError
from sedis.core.records import Grant, GrantRequest
from sedis.crypto.identities import IdentityStore
from sedis.ledger import open_ledger
from sedis.store.kubo import KuboStore
from tests.acting import writing_as
from tests.e2e.conftest import PASSWORD, World, layout_digests, only_publisher
from tests.e2e.rotation import attack, keep
from tests.integration.ledger.conftest import anvil_node

pytestmark = pytest.mark.integration

NAMES = ("alice", "bob", "carol", "erin")
OCT_KEY = json.dumps({"kty": "oct", "k": "c2VkaXMgdGVzdCBrZXkgb2YgMzIgYnl0ZXMgISEhIQ"}).encode()


@pytest.fixture(scope="module")
def world_base(tmp_path_factory: pytest.TempPathFactory, jsipfs_url: str) -> Iterator[World]:
    """A data directory whose store is js-ipfs and whose ledger is a fresh anvil."""
    from sedis.ledger import deploy_contract

    root = tmp_path_factory.mktemp("peer-world")
    home = root / "home"
    home.mkdir()
    keys = ("SEDIS_HOME", "SEDIS_PASSWORD", "SEDIS_IDENTITY", "SEDIS_LEDGER_URL")
    saved = {k: os.environ.get(k) for k in (*keys, "SEDIS_STORE_URL", "SEDIS_LEDGER_CONTRACT")}
    with anvil_node() as anvil:
        os.environ.update(
            SEDIS_HOME=str(home),
            SEDIS_PASSWORD=PASSWORD,
            SEDIS_LEDGER_URL=anvil,
            SEDIS_STORE_URL=jsipfs_url,
        )
        os.environ.pop("SEDIS_IDENTITY", None)
        os.environ.pop("SEDIS_LEDGER_CONTRACT", None)
        identities = IdentityStore(home)
        addresses = {}
        for name in NAMES:
            identity = identities.create(name, PASSWORD)
            addresses[name] = identity.address
        deploy_contract(load(), identities.unlock_signer("alice", PASSWORD))
        for name in NAMES:
            identity = identities.get(name)
            with writing_as(name, PASSWORD) as ledger:
                ledger.register_keys(identity.encryption_key_bytes(), identity.paillier_n_bytes())
        feeds = Path(__file__).resolve().parents[1] / "data" / "vulns"
        subprocess.run(
            [sys.executable, "-m", "sedis", "vulndb", "import", str(feeds / "osv")],
            check=True,
            capture_output=True,
            env={**os.environ},
        )
        yield World(home, root, addresses)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def world(world_base: World, capsys: pytest.CaptureFixture[str]) -> World:
    world_base.capsys = capsys
    return world_base


def publish(world: World, tag: str, *recipients: str) -> tuple[str, str, Path]:
    source = world.image(tag, layers=2, size=300_000)
    name = f"peers/{tag}:v1"
    flags = [flag for who in recipients for flag in ("--to", who)]
    published = world.publish(f"oci:{source}:v1", name, *flags, "-o", "json")
    assert published.code == 0, published.err
    return name, json.loads(published.out)["digest"], source


def grants(digest: str) -> dict[str, Grant]:
    with open_ledger(load()) as ledger:
        return {str(g.recipient): g for g in ledger.grants(only_publisher(ledger, digest), digest)}


def nonce(address: str) -> int:
    reply = httpx.post(
        load().ledger_url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_getTransactionCount",
            "params": [address, "pending"],
        },
        timeout=10,
    )
    return int(reply.json()["result"], 16)


def register(world: World, name: str, encryption_key: bytes) -> None:
    identities = IdentityStore(world.home)
    identity = identities.get(name)
    with writing_as(name, PASSWORD) as ledger:
        ledger.register_keys(encryption_key, identity.paillier_n_bytes())


def test_a_removed_recipient_decrypts_nothing_from_the_kubo_node_after_rotation(
    world: World, jsipfs_url: str
) -> None:
    name, digest, source = publish(world, "kubo-attack", "bob", "carol")
    settings = load()
    carol = keep(settings, "carol", world.addresses["carol"], digest)  # inside the root
    with open_ledger(settings) as ledger:
        record = ledger.image(only_publisher(ledger, digest), digest)
    assert record is not None

    rotated = world.sedis("unshare", name, "--from", "carol", "--rotate", "--as", "alice")
    assert rotated.code == 0, rotated.err

    node = KuboStore(jsipfs_url)
    node.gc()  # the node's own collection: what no pin holds goes
    assert set(attack(settings, carol)) == {"NotFoundError"}
    pins = {str(cid) for cid in node.pins()}
    assert record.root_cid not in pins and carol.manifest_cid not in pins
    node.close()
    pulled = world.work / "kubo-attack-bob"
    assert world.sedis("pull", name, f"oci:{pulled}", "--as", "bob").code == 0
    assert layout_digests(pulled) == layout_digests(source)


def test_an_unusable_key_stops_a_rotation_before_any_transaction(
    world: World, jsipfs_url: str
) -> None:
    name, digest, source = publish(world, "kubo-oct", "bob", "carol", "erin")
    erin = world.addresses["erin"]
    register(world, "erin", OCT_KEY)  # after the share: erin's grant stays, its key is useless
    alice = world.addresses["alice"]
    node = KuboStore(jsipfs_url)
    before = (grants(digest), nonce(alice), node.pins())

    refused = world.sedis("unshare", name, "--from", "carol", "--rotate", "--as", "alice")

    assert refused.code == 2
    assert (grants(digest), nonce(alice), node.pins()) == before
    assert refused.err.strip() == (
        f"sedis: {erin} has registered an encryption key that cannot be used "
        "(cannot wrap keys for a oct key (EC or RSA only)); nothing was changed"
    )
    # With a usable key registered again, the same command does the whole rotation.
    register(world, "erin", IdentityStore(world.home).get("erin").encryption_key_bytes())
    done = world.sedis(
        "unshare", name, "--from", "carol", "--rotate", "--as", "alice", "-o", "json"
    )
    assert done.code == 0, done.err
    data = json.loads(done.out)
    assert sorted(data["regranted"]) == sorted([world.addresses["bob"], erin])
    assert len(data["transactions"]) == 1 and nonce(alice) == before[1] + 1
    pulled = world.work / "kubo-oct-erin"
    assert world.sedis("pull", name, f"oci:{pulled}", "--as", "erin").code == 0
    assert layout_digests(pulled) == layout_digests(source)
    node.close()


def test_the_rotation_transaction_is_all_or_none_on_a_json_rpc_node(world: World) -> None:
    """A revoke and a grant that the contract refuses, in one change: neither happens."""
    _, digest, _ = publish(world, "kubo-atomic", "bob", "carol")
    before = grants(digest)
    bob, carol = world.addresses["bob"], world.addresses["carol"]
    with writing_as("alice", PASSWORD) as ledger:
        expired = GrantRequest(
            Address.parse(bob), before[bob].manifest_cid, before[bob].manifest_hash, 1
        )
        with pytest.raises(InvalidInputError, match="is not after the chain's time"):
            ledger.change_grants(digest, [Address.parse(carol)], [expired])
    assert grants(digest) == before


def test_an_unusable_key_stops_a_publish_and_a_share_before_anything_is_stored(
    world: World, jsipfs_url: str
) -> None:
    erin = world.addresses["erin"]
    register(world, "erin", OCT_KEY)
    node = KuboStore(jsipfs_url)
    alice = world.addresses["alice"]
    refusal = (
        f"sedis: {erin} has registered an encryption key that cannot be used "
        "(cannot wrap keys for a oct key (EC or RSA only)); nothing was changed"
    )
    try:
        source = world.image("oct-publish", layers=1, size=1000)
        pins, sent = node.pins(), nonce(alice)
        refused = world.publish(f"oci:{source}:v1", "peers/oct-publish:v1", "--to", "erin")
        assert refused.code == 2
        assert refused.err.strip() == refusal
        assert (node.pins(), nonce(alice)) == (pins, sent)

        name, _, _ = publish(world, "oct-share", "bob")
        pins, sent = node.pins(), nonce(alice)
        refused = world.sedis("share", name, "--to", "erin", "--as", "alice")
        assert refused.code == 2
        assert refused.err.strip() == refusal
        assert (node.pins(), nonce(alice)) == (pins, sent)
    finally:
        register(world, "erin", IdentityStore(world.home).get("erin").encryption_key_bytes())
