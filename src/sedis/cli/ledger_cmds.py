"""`sedis ledger ...`: where the ledger is, and deploying the ImageLedger contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from sedis.cli import context
from sedis.cli.output import Format, OutputOption, emit, info, note

if TYPE_CHECKING:
    from sedis.config import Settings

app = typer.Typer(
    help="The ledger (Ethereum): its node, chain and contract; deploy the contract.",
    rich_markup_mode=None,
    no_args_is_help=True,
)

AsOption = typer.Option(
    None,
    "--as",
    metavar="NAME",
    help="The identity that acts (default: SEDIS_IDENTITY, or the only one).",
)
PasswordEnvOption = typer.Option(
    None,
    "--password-env",
    metavar="VAR",
    help="Read the password from this environment variable (SEDIS_PASSWORD wins if set).",
)


def _identity(settings: Settings, as_name: str | None, required: bool) -> tuple[str, str] | None:
    """(name, address) of the acting identity; None when none is chosen and none is needed."""
    from sedis.core.errors import ConfigError
    from sedis.crypto.identities import IdentityStore, acting_identity

    try:
        name = acting_identity(settings, as_name)
    except ConfigError:
        if required or as_name or settings.identity:
            raise
        return None
    return name, IdentityStore(settings.home).get(name).address


@app.command("info")
def ledger_info(as_name: str | None = AsOption, output: Format = OutputOption) -> None:
    """Show the node (or embedded chain), chain id, contract, block height, and the acting
    identity's address and balance."""
    settings = context.settings()
    who = _identity(settings, as_name, required=False)
    with _open_readonly(settings) as ledger:
        facts = ledger.info()
        balance = ledger.balance(who[1]) if who else None
    data: dict[str, Any] = {
        "url": facts.url,
        "chain_id": facts.chain_id,
        "contract": facts.contract,
        "block_number": facts.block_number,
        "identity": who[0] if who else None,
        "address": who[1] if who else None,
        "balance_wei": balance,
    }

    def text() -> None:
        info(f"url:          {facts.url}")
        info(f"chain id:     {facts.chain_id}")
        info(f"contract:     {facts.contract or '(none: run sedis ledger deploy)'}")
        info(f"block height: {facts.block_number}")
        if who:
            info(f"identity:     {who[0]} ({who[1]})")
            info(f"balance:      {_ether(balance or 0)} ETH ({balance} wei)")

    emit(output, data, text)


@app.command("deploy")
def deploy(
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Deploy the ImageLedger contract with the acting identity, and remember its address for
    this chain. The embedded chain deploys its own on first use."""
    settings = context.settings()
    if settings.ledger_url == "embedded":
        from sedis.ledger import open_ledger

        with open_ledger(settings) as ledger:
            facts = ledger.info()
        data = {"contract": facts.contract, "chain_id": facts.chain_id, "deployed": False}
        emit(
            output,
            data,
            lambda: info(
                f"the embedded chain's contract is at {facts.contract} (deployed on first use)"
            ),
        )
        return
    from sedis.crypto.identities import IdentityStore
    from sedis.crypto.password import read_password
    from sedis.ledger.jsonrpc import JsonRpcLedger

    who = _identity(settings, as_name, required=True)
    assert who is not None
    account = IdentityStore(settings.home).unlock_account(who[0], read_password(password_env))
    ledger = JsonRpcLedger.connect(settings, account, need_contract=False)
    contract, receipt = ledger.deploy()
    data = {
        "contract": contract,
        "chain_id": ledger.chain_id,
        "deployed": True,
        "transaction": receipt.tx_hash,
        "block_number": receipt.block_number,
        "gas_used": receipt.gas_used,
    }

    def text() -> None:
        info(
            f"deployed ImageLedger at {contract} on chain {ledger.chain_id} "
            f"(block {receipt.block_number}, {receipt.gas_used} gas)"
        )
        if settings.ledger_contract and settings.ledger_contract.lower() != contract.lower():
            note(
                f"note: ledger.contract still names {settings.ledger_contract}, which wins; "
                "change it to use the new contract"
            )

    emit(output, data, text)


def _open_readonly(settings: Settings) -> Any:
    if settings.ledger_url == "embedded":
        from sedis.ledger import open_ledger

        return open_ledger(settings)
    from sedis.ledger.jsonrpc import JsonRpcLedger

    return JsonRpcLedger.connect(settings, None, need_contract=False)


def _ether(wei: int) -> str:
    whole, frac = divmod(wei, 10**18)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
