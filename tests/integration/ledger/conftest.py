"""Fixtures for the ledger suite: the embedded chain, and a real anvil that the suite starts."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from sedis.config import Settings
from sedis.core.address import Address
from sedis.crypto.signer import AccountSigner
from sedis.ledger import open_ledger
from sedis.ledger.base import LedgerReader, LedgerWriter
from tests import peers
from tests.integration.ledger.raw import EmbeddedRaw, RawContract

ANVIL = peers.PEERS / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


@contextmanager
def anvil_node(chain_id: int | None = None, *options: str) -> Iterator[str]:
    """A fresh anvil on a free loopback port; yields its URL, stops it by PID."""
    exe = peers.require_peer(ANVIL)
    port = peers.free_port()
    extra = ([] if chain_id is None else ["--chain-id", str(chain_id)]) + list(options)
    proc = subprocess.Popen(
        [str(exe), "--host", "127.0.0.1", "--port", str(port), "--silent", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(
                    url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                    timeout=1,
                ).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"anvil did not start on {url}") from None
                time.sleep(0.05)
        yield url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    with anvil_node() as url:
        yield url


@pytest.fixture(scope="session")
def anvil_contract(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    from sedis.ledger.jsonrpc import JsonRpcLedger

    settings = Settings(home=tmp_path_factory.mktemp("deployer"), ledger_url=anvil_url)
    with JsonRpcLedger.connect(settings, need_contract=False) as ledger:
        address, _ = ledger.deploy(AccountSigner(Account.create()))
    return address


def addr(account: LocalAccount) -> Address:
    return Address.parse(account.address)


@dataclass
class Chain:
    """One engine under test: one reader shared by the test, and writers on it."""

    kind: str
    settings: Settings
    _opened: list[LedgerReader] = field(default_factory=list)

    def reader(self) -> LedgerReader:
        """The test's reader (the same one each time)."""
        if not self._opened:
            self._opened.append(open_ledger(self.settings))
        return self._opened[0]

    def fresh_reader(self) -> LedgerReader:
        """A reader of its own, as another process on this SEDIS_HOME would open."""
        reader = open_ledger(self.settings)
        self._opened.append(reader)
        return reader

    def writer(self, account: LocalAccount) -> LedgerWriter:
        return self.reader().writer(AccountSigner(account))

    def raw(self, account: LocalAccount) -> RawContract | EmbeddedRaw:
        """Raw calls of the contract signed by ``account``, bypassing sedis's client."""
        if self.kind == "embedded":
            return EmbeddedRaw(self.reader(), account.key)
        assert self.settings.ledger_contract is not None
        return RawContract(self.settings.ledger_url, self.settings.ledger_contract, account.key)

    def close(self) -> None:
        for reader in self._opened:
            reader.close()
        self._opened.clear()


@pytest.fixture(params=["embedded", "anvil"])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chain]:
    home = tmp_path / "home"
    home.mkdir()
    if request.param == "embedded":
        opened = Chain("embedded", Settings(home=home))
    else:
        url = request.getfixturevalue("anvil_url")
        contract = request.getfixturevalue("anvil_contract")
        opened = Chain("anvil", Settings(home=home, ledger_url=url, ledger_contract=contract))
    yield opened
    opened.close()


@pytest.fixture
def new_account() -> Callable[[], LocalAccount]:
    return Account.create  # type: ignore[no-any-return]
