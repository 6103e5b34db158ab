"""An action by a server whose identity has no ether, on a real node of a chain that is no
dev chain: a 503 that says so plainly, and nothing sent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from sedis.config import load
from sedis.core.address import Address
from sedis.oci.transports import open_source
from sedis.server.app import create_app
from sedis.server.config import Role, ServeConfig
from sedis.server.context import ServerContext
from sedis.service import ledger_admin, publish
from sedis.service.engines import Actor, Engines
from sedis.service.identities import create_identity
from sedis.service.naming import parse_name
from sedis.service.trust import default_policy
from tests.server.world import PASSWORD, image_layout, token_for

pytestmark = pytest.mark.integration

CHAIN_ID = 4242  # not one that a dev node funds accounts on


@pytest.fixture
def anvil_home(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    from tests.integration.ledger.conftest import anvil_node

    saved = {k: v for k, v in os.environ.items() if k.startswith("SEDIS_")}
    for key in saved:
        del os.environ[key]
    home = tmp_path / "home"
    home.mkdir()
    try:
        with anvil_node(chain_id=CHAIN_ID) as url:
            os.environ["SEDIS_HOME"] = str(home)
            os.environ["SEDIS_LEDGER_URL"] = url
            yield url, home
    finally:
        for key in [k for k in os.environ if k.startswith("SEDIS_")]:
            del os.environ[key]
        os.environ.update(saved)


def rpc(url: str, method: str, *params: object) -> object:
    answer = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=10
    )
    answer.raise_for_status()
    return answer.json()["result"]


def test_an_action_without_funds_is_503_with_a_plain_message(
    anvil_home: tuple[str, Path],
) -> None:
    url, home = anvil_home
    settings = load()
    alice_address = create_identity(settings, "alice", lambda: PASSWORD).address
    create_identity(settings, "server", lambda: PASSWORD)
    dev = rpc(url, "eth_accounts")[0]  # type: ignore[index]
    funding = {"from": dev, "to": str(alice_address), "value": hex(10**20)}
    rpc(url, "eth_sendTransaction", funding)
    ledger_admin.deploy(settings, "alice", lambda: PASSWORD)
    operator = Account.create()
    with Engines.from_settings(load()) as engines:
        alice = Actor.unlock(engines, "alice", PASSWORD)
        server = Actor.unlock(engines, "server", PASSWORD)
        with open_source(image_layout(home.parent / "src", "funds")) as source:
            digest = publish.publish(engines, alice, source, name=parse_name("acme/f:1")).digest
        config = ServeConfig(
            identity="server", roles={Address.parse(operator.address): Role.operator}
        )
        ctx = ServerContext.build(engines, config, default_policy([alice.address], []), server)
        before = len(engines.ledger.audit_log())
        answer = TestClient(create_app(ctx, start_events=False)).post(
            f"/api/v1/images/{digest}/attestations",
            json={"kind": "approved"},
            headers=token_for(ctx, operator),
        )
        assert answer.status_code == 503, answer.text
        (error,) = answer.json()["errors"]
        assert error["code"] == "UNAVAILABLE"
        assert error["message"].startswith(f"{server.address} has 0 wei on chain {CHAIN_ID}")
        assert error["message"].endswith("send it funds first")
        assert len(engines.ledger.audit_log()) == before
