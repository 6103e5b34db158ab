"""`sedis ledger info|deploy` through the real CLI: its output, and one clear line per failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from typing import Any

import pytest

from tests import peers

pytestmark = pytest.mark.integration

Run = Callable[..., Any]


def one_line_error(result: Any, code: int, text: str) -> None:
    assert result.code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sedis: "), result.stderr
    assert text in lines[0]
    assert "Traceback" not in result.stderr


def test_info_on_the_embedded_chain(sedis: Run) -> None:
    result = sedis("ledger", "info", "-o", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["url"] == "embedded" and data["chain_id"] == 1337
    assert data["contract"].startswith("0x") and data["block_number"] >= 1
    again = json.loads(sedis("ledger", "info", "-o", "json").stdout)
    assert again["contract"] == data["contract"]  # deployed once, remembered


def test_info_and_deploy_with_an_identity_on_anvil(sedis: Run, anvil_url: str) -> None:
    env = {"SEDIS_LEDGER_URL": anvil_url, "SEDIS_PASSWORD": "correct horse"}
    created = sedis("identity", "create", "alice", env=env)
    assert created.code == 0, created.stderr
    before = json.loads(sedis("ledger", "info", "-o", "json", env=env).stdout)
    assert before["contract"] is None and before["identity"] == "alice"
    assert before["balance_wei"] == 0 and before["chain_id"] == 31337
    deployed = sedis("ledger", "deploy", "-o", "json", env=env)
    assert deployed.code == 0, deployed.stderr
    contract = json.loads(deployed.stdout)["contract"]
    after = json.loads(sedis("ledger", "info", "-o", "json", env=env).stdout)
    assert after["contract"] == contract
    assert after["balance_wei"] > 0  # funded by the dev node before its first transaction
    assert after["block_number"] > before["block_number"]
    registered = sedis("identity", "register", "alice", env=env)
    assert registered.code == 0, registered.stderr


def test_unreachable_node(sedis: Run) -> None:
    url = f"http://127.0.0.1:{peers.free_port()}"
    one_line_error(
        sedis("ledger", "info", env={"SEDIS_LEDGER_URL": url}),
        5,
        f"cannot reach the ledger node at {url}",
    )


def test_wrong_chain_id(sedis: Run, anvil_url: str) -> None:
    env = {"SEDIS_LEDGER_URL": anvil_url, "SEDIS_LEDGER_CHAIN_ID": "1"}
    one_line_error(
        sedis("ledger", "info", env=env),
        6,
        "serves chain 31337, but the configuration expects chain 1",
    )


def test_no_contract_at_the_configured_address(sedis: Run, anvil_url: str) -> None:
    address = "0x" + "12" * 20
    env = {"SEDIS_LEDGER_URL": anvil_url, "SEDIS_LEDGER_CONTRACT": address}
    one_line_error(sedis("ledger", "info", env=env), 6, "there is no contract at")


def test_a_missing_identity_and_a_wrong_password(sedis: Run, anvil_url: str) -> None:
    env = {"SEDIS_LEDGER_URL": anvil_url, "SEDIS_PASSWORD": "right"}
    one_line_error(sedis("ledger", "info", "--as", "ghost", env=env), 3, "ghost")
    assert sedis("identity", "create", "bob", env=env).code == 0
    wrong = {**env, "SEDIS_PASSWORD": "wrong"}
    result = sedis("ledger", "deploy", "--as", "bob", env=wrong)
    assert result.code == 7 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_damaged_embedded_ledger_is_one_clear_error(sedis: Run, home: Any) -> None:
    assert sedis("ledger", "info").code == 0
    db = home / "ledger" / "chain.sqlite"
    size = db.stat().st_size
    with open(db, "r+b") as f:  # every page but the header page
        f.seek(4096)
        f.write(b"\xa5" * (size - 4096))
    one_line_error(sedis("ledger", "info"), 4, "is damaged")


def test_no_funds_on_a_chain_that_is_not_a_dev_chain(sedis: Run) -> None:
    from tests.integration.ledger.conftest import anvil_node

    with anvil_node(chain_id=4242) as url:
        env = {"SEDIS_LEDGER_URL": url, "SEDIS_PASSWORD": "pw"}
        assert sedis("identity", "create", "carol", env=env).code == 0
        info = json.loads(sedis("ledger", "info", "-o", "json", env=env).stdout)
        assert info["chain_id"] == 4242 and info["balance_wei"] == 0
        one_line_error(sedis("ledger", "deploy", env=env), 5, "has 0 wei on chain 4242")


def test_a_status_change_by_someone_without_a_record_of_it(sedis: Run, home: Any) -> None:
    from sedis.config import Settings
    from sedis.core.address import Address
    from sedis.core.records import ScanSummary
    from sedis.crypto.identities import IdentityStore
    from sedis.crypto.signer import AccountSigner
    from sedis.ledger import open_ledger

    env = {"SEDIS_PASSWORD": "pw"}
    for name in ("alice", "bob"):
        assert sedis("identity", "create", name, env=env).code == 0
    alice = IdentityStore(home).unlock_account("alice", "pw")
    digest = "sha256:" + "5e" * 32
    with closing(open_ledger(Settings(home=home))) as reader:
        writer = reader.writer(AccountSigner(alice))
        writer.publish(digest, "sha256:" + "c0" * 32, "bafyroot", ScanSummary.unscanned())
    result = sedis("status", digest, "revoked", "--reason", "hostile", "--as", "bob", env=env)
    # bob's status change is about bob's own record, and he has none: alice's is untouched.
    one_line_error(result, 3, "no record of")
    with closing(open_ledger(Settings(home=home))) as reader:
        history = reader.status_history(Address.parse(alice.address), digest)
        assert [e.status.value for e in history] == ["TRUSTED"]
