"""A ledger that holds the earlier ImageLedger (records keyed by digest alone) is refused in
one line that says what to do: its records do not carry over.

earlier_image_ledger.json holds that contract's bytecode as an earlier sedis deployed it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from sedis.config import Settings
from sedis.core.errors import ConfigError
from sedis.ledger.abi import load_artifact
from tests.integration.ledger.test_cli_errors import one_line_error

pytestmark = pytest.mark.integration

EARLIER = json.loads((Path(__file__).parent / "earlier_image_ledger.json").read_text())
Run = Callable[..., Any]


def earlier_code(field: str) -> bytes:
    return bytes.fromhex(EARLIER[field].removeprefix("0x"))


def test_the_fixture_is_another_contract_than_the_current_one() -> None:
    assert earlier_code("deployedBytecode") != load_artifact().deployed_bytecode
    assert EARLIER["compiler"]["evmVersion"] == "cancun"


def leave_an_earlier_embedded_ledger(home: Path) -> None:
    """An embedded ledger whose contract is the earlier ImageLedger, as an earlier sedis
    would have left it in SEDIS_HOME."""
    from sedis.ledger.embedded import EmbeddedLedger

    ledger = EmbeddedLedger(home / "ledger")
    with ledger._chain.writing():
        outcome = ledger._apply(ledger._dev, None, earlier_code("bytecode"), 5_000_000)
        assert outcome.contract is not None
        ledger._chain.db.set_meta("contract", outcome.contract.hex())
    with ledger._chain.reading():
        assert ledger._chain.account(outcome.contract)[2] == earlier_code("deployedBytecode")
    ledger.close()


def test_an_embedded_ledger_of_the_earlier_contract_is_refused(tmp_path: Path) -> None:
    from sedis.ledger.embedded import EmbeddedLedger

    home = tmp_path / "home"
    leave_an_earlier_embedded_ledger(home)
    with pytest.raises(ConfigError) as caught:
        EmbeddedLedger(home / "ledger")
    message = str(caught.value)
    assert "\n" not in message
    assert f"the embedded ledger in {home / 'ledger'} holds an earlier ImageLedger" in message
    assert "records do not carry over" in message
    assert "move that directory aside" in message and "publish again" in message


def test_the_cli_refuses_an_earlier_embedded_ledger_in_one_line(sedis: Run, home: Path) -> None:
    leave_an_earlier_embedded_ledger(home)
    one_line_error(sedis("ledger", "info"), 6, "holds an earlier ImageLedger")


def deploy_earlier(url: str) -> str:
    w3 = Web3(Web3.HTTPProvider(url))
    tx: Any = {"from": w3.eth.accounts[0], "data": "0x" + earlier_code("bytecode").hex()}
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(tx), poll_latency=0.01)
    assert receipt["status"] == 1
    return str(receipt["contractAddress"])


def test_a_node_with_the_earlier_contract_is_refused(anvil_url: str, tmp_path: Path) -> None:
    from sedis.ledger.jsonrpc import JsonRpcLedger

    contract = deploy_earlier(anvil_url)
    settings = Settings(home=tmp_path, ledger_url=anvil_url, ledger_contract=contract)
    with pytest.raises(ConfigError) as caught:
        JsonRpcLedger.connect(settings)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"the contract at {contract} on chain 31337 is an earlier")
    assert "records do not carry over" in message
    assert "deploy the current one ('sedis ledger deploy') and publish again" in message


def test_the_cli_refuses_a_node_with_the_earlier_contract_in_one_line(
    sedis: Run, anvil_url: str
) -> None:
    contract = deploy_earlier(anvil_url)
    env = {"SEDIS_LEDGER_URL": anvil_url, "SEDIS_LEDGER_CONTRACT": contract}
    one_line_error(sedis("ledger", "info", env=env), 6, "is an earlier ImageLedger")
