"""`sedis contacts ...`: a local address book, so accounts can be named by alias, and
the contacts whose records the default trust policy counts (``--trust``)."""

from __future__ import annotations

import typer

from sedis.cli import context
from sedis.cli.output import Format, OutputOption, emit, info, note

app = typer.Typer(
    help="The address book: aliases for other people's Ethereum addresses, and whom to trust.",
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
    trust: bool = typer.Option(
        False, "--trust", help="Count this contact's records when no policy file is given."
    ),
    output: Format = OutputOption,
) -> None:
    """Add an alias for an address."""
    from sedis.crypto.contacts import AddressBook

    book = AddressBook(context.settings().home)
    checksummed = book.add(alias, address, replace=replace, trusted=trust)
    # Adding a trusted contact again for its own address keeps the trust.
    trusted = any(c.alias == alias and c.trusted for c in book.entries())
    said = " (trusted)" if trusted else ""
    emit(
        output,
        {"alias": alias, "address": checksummed, "trusted": trusted},
        lambda: info(f"added {alias} {checksummed}{said}"),
    )


@app.command("list")
def list_(output: Format = OutputOption) -> None:
    """List the aliases, their addresses, and which are trusted."""
    from sedis.crypto.contacts import AddressBook

    entries = AddressBook(context.settings().home).entries()
    rows = [{"alias": c.alias, "address": c.address, "trusted": c.trusted} for c in entries]

    def text() -> None:
        if not rows:
            note("no contacts; add one with 'sedis contacts add ALIAS 0x...'")
        for row in rows:
            mark = "  trusted" if row["trusted"] else ""
            info(f"{row['alias']:<20} {row['address']}{mark}")

    emit(output, rows, text)


@app.command("trust")
def trust(
    alias: str = typer.Argument(..., metavar="ALIAS", help="The contact to trust."),
    output: Format = OutputOption,
) -> None:
    """Count a contact's records when no policy file is given."""
    _set_trust(alias, True, output)


@app.command("untrust")
def untrust(
    alias: str = typer.Argument(..., metavar="ALIAS", help="The contact to stop trusting."),
    output: Format = OutputOption,
) -> None:
    """Stop counting a contact's records (the contact stays in the address book)."""
    _set_trust(alias, False, output)


def _set_trust(alias: str, trusted: bool, output: Format) -> None:
    from sedis.crypto.contacts import AddressBook

    address = AddressBook(context.settings().home).set_trusted(alias, trusted)
    said = "trusts" if trusted else "no longer trusts"
    emit(
        output,
        {"alias": alias, "address": address, "trusted": trusted},
        lambda: info(f"the default policy {said} {alias} ({address})"),
    )


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
