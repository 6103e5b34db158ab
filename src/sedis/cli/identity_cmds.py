"""`sedis identity ...`: make identities, show their public keys, publish them on the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from sedis.cli import context
from sedis.cli.output import Format, OutputOption, emit, info, note

app = typer.Typer(
    help="Identities: an Ethereum account, an encryption key and a Paillier key under one name.",
    rich_markup_mode=None,
    no_args_is_help=True,
)

PasswordEnvOption = typer.Option(
    None,
    "--password-env",
    metavar="VAR",
    help="Read the password from this environment variable (SEDIS_PASSWORD wins if set).",
)
# For commands elsewhere that act as an identity; SEDIS_IDENTITY reaches them through settings.
AsOption = typer.Option(
    None, "--as", metavar="NAME", help="The identity that acts (default: SEDIS_IDENTITY)."
)

OutOption = typer.Option(None, "--out", metavar="FILE", help="Write to this file, not stdout.")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="A name: a-z, 0-9, '.', '_', '-'."),
    rsa: bool = typer.Option(False, "--rsa", help="An RSA 3072 encryption key, not EC P-256."),
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Make a new identity: an Ethereum account, an encryption key and a Paillier key."""
    from sedis.crypto.password import read_password
    from sedis.service.identities import create_identity

    identity = create_identity(
        context.settings(), name, lambda: read_password(password_env, confirm=True), rsa=rsa
    )
    kind = "RSA 3072" if identity.key_type == "RSA" else "EC P-256"
    emit(
        output,
        identity.to_dict(),
        lambda: info(
            f"created identity '{identity.name}' {identity.address} "
            f"({kind} encryption key, Paillier 2048)"
        ),
    )


@app.command("list")
def list_(output: Format = OutputOption) -> None:
    """List the identities on this machine."""
    from sedis.crypto.identities import IdentityStore

    identities, damaged = IdentityStore(context.settings().home).survey()
    rows = [i.to_dict() for i in identities]
    for problem in damaged:  # one damaged identity must not hide the others
        note(f"sedis: {problem}")

    def text() -> None:
        if not identities:
            note("no identities; create one with 'sedis identity create NAME'")
        for i in identities:
            info(f"{i.name:<20} {i.address} {i.key_type:<3} {i.created}")

    emit(output, rows, text)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Identity name."), output: Format = OutputOption
) -> None:
    """Show an identity's public keys."""
    from sedis.crypto.identities import IdentityStore

    identity = IdentityStore(context.settings().home).get(name)
    data = identity.to_dict()

    def text() -> None:
        info(f"name:            {identity.name}")
        info(f"address:         {identity.address}")
        info(f"encryption key:  {identity.key_type} (kid {identity.encryption_jwk.get('kid')})")
        info(f"paillier n:      {identity.paillier_n.bit_length()} bits")
        info(f"created:         {identity.created}")

    emit(output, data, text)


@app.command("export-public")
def export_public(
    name: str = typer.Argument(..., help="Identity name."),
    out: Path | None = OutOption,
    output: Format = OutputOption,
) -> None:
    """Print the public bundle (address, encryption JWK, Paillier n) as JSON, for others."""
    from sedis.crypto.identities import IdentityStore
    from sedis.fsutil import atomic_write_bytes

    bundle = IdentityStore(context.settings().home).public_bundle(name)
    document = json.dumps(bundle, indent=2) + "\n"
    if out is None:
        # The bundle is JSON already; -o json and text print the same document.
        typer.echo(document, nl=False)
        return
    atomic_write_bytes(out, document.encode())
    emit(output, {"name": name, "path": str(out)}, lambda: info(f"wrote {out}"))


@app.command("register")
def register(
    name: str = typer.Argument(..., help="Identity name."),
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Publish the public keys in the ledger's key directory, so others can share by address."""
    from sedis.crypto.password import read_password
    from sedis.service.ledger_admin import register_keys

    done = register_keys(context.settings(), name, lambda: read_password(password_env))
    data: dict[str, Any] = {
        "name": done.name,
        "address": str(done.address),
        "transaction": done.transaction,
        "block": done.block_number,
        "gas_used": done.gas_used,
    }
    emit(
        output,
        data,
        lambda: info(f"registered the public keys of '{done.name}' ({done.address})"),
    )
