"""Ledgers: the ImageLedger contract on the embedded chain or on any Ethereum JSON-RPC node."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from sedis.config import Settings
    from sedis.ledger.base import Ledger


def open_ledger(settings: Settings, account: LocalAccount | None = None) -> Ledger:
    """The ledger that the settings name; ``account`` signs writes (None: read only)."""
    if settings.ledger_url == "embedded":
        from sedis.ledger.embedded import EmbeddedLedger

        return EmbeddedLedger(settings.ledger_dir, account)
    from sedis.ledger.jsonrpc import JsonRpcLedger

    return JsonRpcLedger.connect(settings, account)
