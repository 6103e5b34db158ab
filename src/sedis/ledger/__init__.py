"""Ledgers: the ImageLedger contract on the embedded chain or on any Ethereum JSON-RPC node."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sedis.config import Settings
    from sedis.core.records import LedgerInfo, TxReceipt
    from sedis.crypto.signer import Signer
    from sedis.ledger.base import LedgerReader


def open_ledger(settings: Settings, *, need_contract: bool = True) -> LedgerReader:
    """The ledger that the settings name, to read; ``writer(signer)`` on it writes.

    One reader serves every thread of a process. ``need_contract=False`` opens a
    JSON-RPC node with no ImageLedger configured or deployed yet, to say what
    it is (``info``) and nothing more.
    """
    if settings.ledger_url == "embedded":
        from sedis.ledger.embedded import EmbeddedLedger

        return EmbeddedLedger(settings.ledger_dir)
    from sedis.ledger.jsonrpc import JsonRpcLedger

    return JsonRpcLedger.connect(settings, need_contract=need_contract)


def deploy_contract(
    settings: Settings, signer: Signer | None
) -> tuple[LedgerInfo, TxReceipt | None]:
    """Deploy an ImageLedger signed by ``signer`` and remember it for the chain.

    The embedded chain deploys its own on first use: then nothing is sent (no
    signer is needed), and the receipt is None. The facts describe the ledger
    with its new contract.
    """
    if settings.ledger_url == "embedded":
        from sedis.ledger.embedded import EmbeddedLedger

        with EmbeddedLedger(settings.ledger_dir) as embedded:
            return embedded.info(), None
    from sedis.core.errors import ConfigError
    from sedis.ledger.jsonrpc import JsonRpcLedger

    if signer is None:
        raise ConfigError("deploying the contract needs an identity (--as NAME)")
    with JsonRpcLedger.connect(settings, need_contract=False) as node:
        _, receipt = node.deploy(signer)
        return node.info(), receipt
