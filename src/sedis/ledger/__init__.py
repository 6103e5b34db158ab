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


def load_code(settings: Settings, *, sign: bool = False) -> None:
    """Import what opening this ledger (and signing for it) will need, ahead of use.

    For a thread to do while the caller waits on something else (scrypt); an
    import that fails is left for open_ledger to report properly.
    """
    import importlib
    from contextlib import suppress

    embedded = settings.ledger_url == "embedded"
    names = ["eth_account"] if sign else []
    names.append("sedis.ledger.embedded" if embedded else "sedis.ledger.jsonrpc")
    for name in names:
        with suppress(Exception):
            importlib.import_module(name)
    with suppress(Exception):
        from sedis.ledger.abi import codec

        codec().prepare()
