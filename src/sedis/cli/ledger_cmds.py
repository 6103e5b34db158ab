"""`sedis ledger ...`: where the ledger is, and deploying the ImageLedger contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from sedis.cli import context
from sedis.cli.output import Format, OutputOption, emit, info, note

if TYPE_CHECKING:
    from sedis.core.address import Address

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


@app.command("info")
def ledger_info(as_name: str | None = AsOption, output: Format = OutputOption) -> None:
    """Show the node (or embedded chain), chain id, contract, block height, and the acting
    identity's address and balance."""
    from sedis.service.ledger_admin import ledger_status

    facts = ledger_status(context.settings(), as_name)
    data: dict[str, Any] = {
        "url": facts.url,
        "chain_id": facts.chain_id,
        "contract": _text(facts.contract),
        "block_number": facts.block_number,
        "identity": facts.identity,
        "address": _text(facts.address),
        "balance_wei": facts.balance_wei,
    }

    def text() -> None:
        info(f"url:          {facts.url}")
        info(f"chain id:     {facts.chain_id}")
        info(f"contract:     {facts.contract or '(none: run sedis ledger deploy)'}")
        info(f"block height: {facts.block_number}")
        if facts.identity:
            balance = facts.balance_wei or 0
            info(f"identity:     {facts.identity} ({facts.address})")
            info(f"balance:      {_ether(balance)} ETH ({balance} wei)")

    emit(output, data, text)


@app.command("deploy")
def deploy(
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Deploy the ImageLedger contract with the acting identity, and remember its address for
    this chain. The embedded chain deploys its own on first use."""
    from sedis.crypto.password import read_password
    from sedis.service import ledger_admin

    done = ledger_admin.deploy(context.settings(), as_name, lambda: read_password(password_env))
    data: dict[str, Any] = {
        "contract": str(done.contract),
        "chain_id": done.chain_id,
        "deployed": done.deployed,
    }
    if done.deployed:
        data |= {
            "transaction": done.transaction,
            "block_number": done.block_number,
            "gas_used": done.gas_used,
        }

    def text() -> None:
        if not done.deployed:
            info(f"the embedded chain's contract is at {done.contract} (deployed on first use)")
            return
        info(
            f"deployed ImageLedger at {done.contract} on chain {done.chain_id} "
            f"(block {done.block_number}, {done.gas_used} gas)"
        )
        if done.configured is not None and done.configured != done.contract:
            note(
                f"note: ledger.contract still names {done.configured}, which wins; "
                "change it to use the new contract"
            )

    emit(output, data, text)


def _text(address: Address | None) -> str | None:
    return None if address is None else str(address)


def _ether(wei: int) -> str:
    whole, frac = divmod(wei, 10**18)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
