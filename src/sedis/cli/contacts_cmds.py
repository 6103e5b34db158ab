"""`sedis contacts ...`: a local address book, so recipients can be named by alias."""

from __future__ import annotations

import typer

from sedis.cli import context
from sedis.cli.output import Format, OutputOption, emit, info, note

app = typer.Typer(
    help="The address book: aliases for other people's Ethereum addresses.",
    rich_markup_mode=None,
    no_args_is_help=True,
)


@app.command("add")
def add(
    alias: str = typer.Argument(
        ..., metavar="ALIAS", help="A short name: a-z, 0-9, '.', '_', '-'."
    ),
    address: str = typer.Argument(..., metavar="ADDR", help="The Ethereum address (0x...)."),
    replace: bool = typer.Option(False, "--replace", help="Repoint an alias that exists."),
    output: Format = OutputOption,
) -> None:
    """Add an alias for an address."""
    from sedis.crypto.contacts import AddressBook

    checksummed = AddressBook(context.settings().home).add(alias, address, replace=replace)
    emit(
        output,
        {"alias": alias, "address": checksummed},
        lambda: info(f"added {alias} {checksummed}"),
    )


@app.command("list")
def list_(output: Format = OutputOption) -> None:
    """List the aliases and their addresses."""
    from sedis.crypto.contacts import AddressBook

    contacts = AddressBook(context.settings().home).list()
    rows = [{"alias": a, "address": addr} for a, addr in contacts.items()]

    def text() -> None:
        if not rows:
            note("no contacts; add one with 'sedis contacts add ALIAS 0x...'")
        for row in rows:
            info(f"{row['alias']:<20} {row['address']}")

    emit(output, rows, text)


@app.command("remove")
def remove(
    alias: str = typer.Argument(..., metavar="ALIAS", help="The alias to forget."),
    output: Format = OutputOption,
) -> None:
    """Forget an alias."""
    from sedis.crypto.contacts import AddressBook

    address = AddressBook(context.settings().home).remove(alias)
    emit(
        output,
        {"alias": alias, "address": address},
        lambda: info(f"removed {alias} ({address})"),
    )
