"""Trust on the command line: the options that pick a policy and whose word counts,
`sedis attest`, and `sedis policy check|explain`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sedis.cli import context, render
from sedis.cli.identity_cmds import AsOption, PasswordEnvOption
from sedis.cli.output import Format, OutputOption

if TYPE_CHECKING:
    from sedis.core.address import Address
    from sedis.core.policy import TrustPolicy
    from sedis.oci.source import ImageSource

PolicyOption = typer.Option(
    None,
    "--policy",
    metavar="FILE",
    help="The trust policy file (TOML), instead of SEDIS_POLICY or SEDIS_HOME/policy.toml.",
)
PublisherOption = typer.Option(
    None,
    "--publisher",
    metavar="WHO",
    help="Take this publisher's record and tag (identity, contact or 0x address).",
)
SignerOption = typer.Option(
    [],
    "--signer",
    metavar="WHO",
    help="Count only these accounts' records and attestations (repeatable).",
)

app = typer.Typer(
    help="Trust policies: check a policy file, explain a verdict rule by rule.",
    rich_markup_mode=None,
    no_args_is_help=True,
)


def trust_policy(path: Path | None, signers: Sequence[str] = ()) -> TrustPolicy:
    """The policy a command judges by, narrowed to ``signers`` when any are named."""
    from sedis.service import trust

    accounts = [context.account(who) for who in signers]
    policy = trust.load_policy(context.settings(), context.Accounts(), path)
    return trust.with_signers(policy, accounts)


def publisher_of(who: str | None) -> Address | None:
    return None if who is None else context.account(who)


def attest(
    image: str = typer.Argument(..., metavar="IMAGE", help="NAME:TAG or sha256:DIGEST"),
    kind: str = typer.Option(
        ..., "--kind", metavar="KIND", help="What the attestation says: approved, scan, …"
    ),
    payload: Path | None = typer.Option(
        None,
        "--payload",
        metavar="FILE",
        help="A document backing it; stored, and its hash recorded.",
    ),
    revoke: bool = typer.Option(
        False, "--revoke", help="Take back your live attestations of KIND on the record."
    ),
    policy_file: Path | None = PolicyOption,
    publisher: str | None = PublisherOption,
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Attest to a publisher's record of an image (co-sign, approve), or revoke that."""
    from sedis.core.errors import InvalidInputError
    from sedis.service import attest as attesting

    if revoke and payload is not None:
        raise InvalidInputError("--revoke takes no --payload: it revokes every live one of KIND")
    content = _read_payload(payload) if payload is not None else None
    policy = trust_policy(policy_file)
    chosen = publisher_of(publisher)
    with (
        context.engines() as engines,
        context.acting(engines, as_name, password_env, decrypt=False) as me,
    ):
        if revoke:
            revoked = attesting.revoke(
                engines, me.actor, image, kind, policy=policy, publisher=chosen
            )
            render.attestation_revoked(output, revoked)
            return
        result = attesting.attest(
            engines, me.actor, image, kind, payload=content, policy=policy, publisher=chosen
        )
    render.attested(output, result)


_MAX_PAYLOAD = 16 * 1024 * 1024


def _read_payload(path: Path) -> bytes:
    from sedis.core.errors import InvalidInputError, NotFoundError

    try:
        with path.open("rb") as f:
            data = f.read(_MAX_PAYLOAD + 1)
    except FileNotFoundError:
        raise NotFoundError(f"no payload file {path}") from None
    except IsADirectoryError:
        raise InvalidInputError(f"the payload {path} is a directory, not a file") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read the payload {path}: {exc.strerror}") from None
    if len(data) > _MAX_PAYLOAD:
        raise InvalidInputError(f"the payload {path} is larger than 16 MiB")
    return data


@app.command("check")
def check(
    file: Path = typer.Argument(..., metavar="FILE", help="The policy file (TOML)."),
    output: Format = OutputOption,
) -> None:
    """Check a policy file; a bad one is refused with the line and key at fault."""
    render.policy_checked(output, trust_policy(file))


@app.command("explain")
def explain(
    artifact: str = typer.Argument(
        ..., metavar="ARTIFACT", help="An image (NAME:TAG, sha256:…) or a source (oci:…)."
    ),
    policy_file: Path | None = PolicyOption,
    name: str | None = typer.Option(
        None, "--name", metavar="NAME:TAG", help="Check that a source is the image NAME:TAG names."
    ),
    publisher: str | None = PublisherOption,
    signer: list[str] = SignerOption,
    platform: str = typer.Option(
        "linux/amd64", "--platform", metavar="OS/ARCH", help="Platform to pick from an index."
    ),
    insecure: bool = typer.Option(False, "--insecure", help="Plain HTTP to docker:// registries."),
    output: Format = OutputOption,
) -> None:
    """Why an image's verdict is what it is: each rule, what it counted, each check."""
    from contextlib import ExitStack

    from sedis.cli.image_cmds import is_source, open_source
    from sedis.service import trust

    policy = trust_policy(policy_file, signer)
    chosen = publisher_of(publisher)
    with context.engines() as engines, ExitStack() as stack:
        subject: str | ImageSource = artifact
        if is_source(artifact):
            subject = stack.enter_context(open_source(artifact, platform, insecure))
        verdict = trust.explain(engines, policy, subject, name=name, publisher=chosen)
    render.explained(output, artifact, verdict, policy)
    if verdict.exit_code:
        raise typer.Exit(verdict.exit_code)
