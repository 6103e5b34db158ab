"""Attacks on what a JSON-RPC ledger answers, through the real CLI and a real anvil.

A chain that mines on demand keeps its last block's time, so grant expiry is
judged by the local clock too. A node (or a proxy in front of one) that
replays old answers, or a lookalike chain with the same id and genesis, is
refused by the high-water mark kept in SEDIS_HOME; a head older than
ledger.max_head_age is refused when that is set.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from sedis.core.access import live_grants
from sedis.core.records import GrantRequest
from sedis.oci.builder import FileSpec, ImageSpec, LayerSpec, build
from tests.integration.ledger.conftest import Chain, addr, anvil_node
from tests.integration.ledger.test_cli_errors import one_line_error
from tests.integration.ledger.test_contract_suite import is_granted, published, rand_digest
from tests.rpc_proxy import replaying_proxy, request_key, rpc

pytestmark = pytest.mark.integration

Run = Callable[..., Any]
PASSWORD = "guarded horse battery"
NAME = "guard/app:1"


@dataclass
class World:
    """alice publishes NAME on the node at ``env['SEDIS_LEDGER_URL']``; bob may receive it."""

    run: Run
    env: dict[str, str]
    work: Path
    digest: str
    bob: str

    def sedis(self, *args: str, **env: str) -> Any:
        return self.run(*args, env={**self.env, **env})


def make_world(sedis: Run, work: Path, url: str, *publish_flags: str) -> World:
    env = {"SEDIS_LEDGER_URL": url, "SEDIS_PASSWORD": PASSWORD}
    addresses = {}
    for who in ("alice", "bob"):
        created = sedis("identity", "create", who, "-o", "json", env=env)
        assert created.code == 0, created.stderr
        addresses[who] = json.loads(created.stdout)["address"]
    deployed = sedis("ledger", "deploy", "--as", "alice", env=env)
    assert deployed.code == 0, deployed.stderr
    for who in ("alice", "bob"):
        registered = sedis("identity", "register", who, env=env)
        assert registered.code == 0, registered.stderr
    layout = work / "src"
    build(
        ImageSpec([LayerSpec([FileSpec("etc/motd", b"guarded\n")])], cmd=["/bin/true"]),
        layout,
        "v1",
    )
    published = sedis(
        "publish", f"oci:{layout}:v1", "--name", NAME, "--skip-scan", "--as", "alice",
        *publish_flags, "-o", "json", env=env,
    )  # fmt: skip
    assert published.code == 0, published.stderr
    return World(sedis, env, work, json.loads(published.stdout)["digest"], addresses["bob"])


def pull(world: World, dest: str) -> Any:
    return world.sedis("pull", NAME, f"oci:{world.work / dest}:v1", "--as", "bob")


# -- item: grant expiry on a chain that mines on demand ------------------------------------


def test_an_expired_grant_is_refused_while_the_chain_mines_no_blocks(
    sedis: Run, tmp_path: Path
) -> None:
    with anvil_node() as url:
        world = make_world(sedis, tmp_path, url)
        shared = world.sedis(
            "share", NAME, "--to", "bob", "--expires", "8s", "--as", "alice", "-o", "json"
        )
        assert shared.code == 0, shared.stderr
        expires_at = json.loads(shared.stdout)["expires_at"]
        in_time = pull(world, "in-time")
        assert in_time.code == 0, in_time.stderr
        assert time.time() < expires_at, "the machine was too slow to pull before the expiry"
        head = rpc(url, "eth_blockNumber")
        time.sleep(max(0.0, expires_at - time.time()) + 1.5)

        late = pull(world, "late")
        one_line_error(late, 8, f"the grant of {world.digest} by 0x")
        assert f" to {world.bob} expired at" in late.stderr
        assert not (tmp_path / "late").exists()
        listed = world.sedis("list", "--shared-with-me", "--as", "bob", "-o", "json")
        assert listed.code == 0, listed.stderr
        assert json.loads(listed.stdout) == []
        # The attack's premise: no block was mined, so the chain's clock stood still.
        assert rpc(url, "eth_blockNumber") == head


def test_every_reader_of_a_grant_sees_it_expire_without_a_new_block(chain: Chain) -> None:
    owner, recipient = Account.create(), Account.create()
    ledger = chain.writer(owner)
    digest, _ = published(ledger)
    expires = int(time.time()) + 3
    ledger.grant(digest, GrantRequest(addr(recipient), "bafymanifest", rand_digest(), expires))
    mine = chain.fresh_reader()
    assert is_granted(mine, addr(owner), digest, addr(recipient))
    assert [g.digest for g in live_grants(mine.grants_to(addr(recipient)), mine.now())] == [digest]
    time.sleep(max(0.0, expires - time.time()) + 1.1)

    assert not is_granted(mine, addr(owner), digest, addr(recipient))
    assert mine.now() >= expires
    grant = mine.grant_of(addr(owner), digest, addr(recipient))
    assert grant is not None and not grant.active_at(mine.now())
    assert live_grants(mine.grants_to(addr(recipient)), mine.now()) == []


# -- item: replayed or forked ledger answers ----------------------------------------------


def test_replayed_answers_cannot_undo_a_revocation(sedis: Run, tmp_path: Path) -> None:
    with anvil_node() as node, replaying_proxy(node) as proxy:
        world = make_world(sedis, tmp_path, proxy.url, "--to", "bob")
        proxy.recording = True  # what the node said while the image was trusted
        trusted = world.sedis("verify", NAME)
        assert trusted.code == 0 and "TRUSTED" in trusted.stdout, trusted.stdout + trusted.stderr
        first = pull(world, "first")
        assert first.code == 0, first.stderr
        proxy.recording = False

        revoked = world.sedis("status", NAME, "revoked", "--reason", "key leaked", "--as", "alice")
        assert revoked.code == 0, revoked.stderr
        seen = world.sedis("verify", NAME)
        assert seen.code != 0 and "REVOKED" in seen.stdout, seen.stdout + seen.stderr

        proxy.replaying = True
        pulled = pull(world, "replayed")
        one_line_error(pulled, 5, "older than block")
        assert not (tmp_path / "replayed").exists()
        verified = world.sedis("verify", NAME)
        one_line_error(verified, 5, f"the ledger node at {proxy.url} (chain 31337) answers from")
        assert "older than block" in verified.stderr and "replayed" in verified.stderr
        assert proxy.replayed > 0  # the old answers were served

        proxy.replaying = False  # the real node again: its answers still count
        honest = world.sedis("verify", NAME)
        assert "REVOKED" in honest.stdout, honest.stdout + honest.stderr


def test_a_lookalike_chain_without_the_revocation_is_refused(sedis: Run, tmp_path: Path) -> None:
    genesis = str(int(time.time()) - 60)  # same chain id, same genesis: the same chain key
    with (
        anvil_node(None, "--timestamp", genesis) as node,
        anvil_node(None, "--timestamp", genesis) as fork,
        replaying_proxy(node) as proxy,
    ):
        assert (
            rpc(node, "eth_getBlockByNumber", "0x0", False)["hash"]
            == (rpc(fork, "eth_getBlockByNumber", "0x0", False)["hash"])
        )
        world = make_world(sedis, tmp_path, proxy.url, "--to", "bob")
        before_revocation = len(proxy.sent)
        revoked = world.sedis("status", NAME, "revoked", "--reason", "key leaked", "--as", "alice")
        assert revoked.code == 0, revoked.stderr
        assert "REVOKED" in world.sedis("verify", NAME).stdout
        height = int(rpc(node, "eth_blockNumber"), 16)

        # The lookalike: the same signed transactions but the revocation, then an empty
        # block at the height where the real chain holds the revocation.
        for request in proxy.sent[:before_revocation]:
            rpc(fork, request["method"], *request["params"])
        rpc(fork, "evm_mine")
        assert int(rpc(fork, "eth_blockNumber"), 16) == height
        proxy.upstream = fork

        same_height = world.sedis("verify", NAME)
        one_line_error(same_height, 5, f"gives block {height} the hash")
        assert "was seen at that height" in same_height.stderr
        pulled = pull(world, "forked")
        one_line_error(pulled, 5, "was seen at that height")
        assert not (tmp_path / "forked").exists()

        rpc(fork, "evm_mine")  # taller than the real chain now, but not descended from it
        taller = world.sedis("verify", NAME)
        one_line_error(taller, 5, f"gives block {height} the hash")


def test_a_head_older_than_max_head_age_is_refused(sedis: Run, home: Path, tmp_path: Path) -> None:
    with anvil_node() as url:
        world = make_world(sedis, tmp_path, url)
        (home / "sedis.toml").write_text('[ledger]\nmax_head_age = "4s"\n')
        latest = rpc(url, "eth_getBlockByNumber", "latest", False)
        time.sleep(max(0.0, int(latest["timestamp"], 16) + 5.5 - time.time()))

        stale = world.sedis("verify", NAME)
        one_line_error(stale, 5, "older than ledger.max_head_age (4s)")
        assert f"the ledger node at {url} serves block {int(latest['number'], 16)}" in stale.stderr
        assert world.sedis("verify", NAME, SEDIS_LEDGER_MAX_HEAD_AGE="1h").code == 0
        assert world.sedis("verify", NAME, SEDIS_LEDGER_MAX_HEAD_AGE="off").code == 0
        one_line_error(
            world.sedis("verify", NAME, SEDIS_LEDGER_MAX_HEAD_AGE="soon"),
            6,
            "ledger.max_head_age must be a duration such as 60s, 5m or 'off', not 'soon'",
        )
        rpc(url, "evm_mine")  # a fresh block: the node is live again
        fresh = world.sedis("verify", NAME)
        assert fresh.code == 0, fresh.stderr


def test_a_node_without_a_head_is_one_clear_error(sedis: Run) -> None:
    with anvil_node() as node, replaying_proxy(node) as proxy:
        latest = request_key({"method": "eth_getBlockByNumber", "params": ["latest", False]})
        proxy.answers[latest] = {"result": None}
        proxy.replaying = True
        refused = sedis("ledger", "info", env={"SEDIS_LEDGER_URL": proxy.url})
        one_line_error(refused, 5, f"the ledger node at {proxy.url}")
        assert "latest" in refused.stderr


def test_a_write_below_a_mark_another_process_raised_still_succeeds(
    anvil_url: str, anvil_contract: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process on the same SEDIS_HOME may see a later block between this one's
    transaction and its receipt: the write landed, and must not be reported as failed."""
    from sedis.config import Settings
    from sedis.crypto.signer import AccountSigner
    from sedis.ledger import open_ledger
    from sedis.ledger.jsonrpc import JsonRpcLedger

    settings = Settings(home=tmp_path, ledger_url=anvil_url, ledger_contract=anvil_contract)
    owner = Account.create()
    reader = open_ledger(settings)
    ledger = reader.writer(AccountSigner(owner))
    other = open_ledger(settings)  # the other process: same marks file
    digest, _ = published(ledger)
    sent = JsonRpcLedger._send

    def racing(self: JsonRpcLedger, *args: Any, **kwargs: Any) -> Any:
        original = self.w3.eth.wait_for_transaction_receipt

        def receipt(*a: Any, **k: Any) -> Any:
            got = original(*a, **k)
            rpc(anvil_url, "evm_mine")
            other.info()  # reads, and raises the mark past the receipt's block
            return got

        monkeypatch.setattr(self.w3.eth, "wait_for_transaction_receipt", receipt)
        try:
            return sent(self, *args, **kwargs)
        finally:
            monkeypatch.setattr(self.w3.eth, "wait_for_transaction_receipt", original)

    monkeypatch.setattr(JsonRpcLedger, "_send", racing)
    recipient = Account.create()
    ledger.grant(digest, GrantRequest(addr(recipient), "bafymanifest", rand_digest()))
    monkeypatch.undo()
    assert is_granted(reader, addr(owner), digest, addr(recipient))
    reader.close()
    other.close()
