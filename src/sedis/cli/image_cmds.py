"""The image commands: publish, share, unshare, pull, verify, status, inspect, list.

verify, pull and inspect judge an image under a trust policy (``--policy``), and a
name resolves through it: to the image that a publisher the policy trusts tagged so.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sedis.cli import context, render, trust_cmds
from sedis.cli.identity_cmds import AsOption, PasswordEnvOption
from sedis.cli.output import Format, OutputOption, progress_bar
from sedis.cli.trust_cmds import (
    PolicyOption,
    PublisherOption,
    SignerOption,
    publisher_of,
    trust_policy,
)

if TYPE_CHECKING:
    from sedis.oci.source import ImageSource
    from sedis.oci.transports import RegistryOptions

PlatformOption = typer.Option(
    "linux/amd64", "--platform", metavar="OS/ARCH", help="Platform to pick from an index."
)
InsecureOption = typer.Option(False, "--insecure", help="Plain HTTP to docker:// registries.")
ImageArgument = typer.Argument(..., metavar="IMAGE", help="NAME:TAG or sha256:DIGEST")


def registry_options(insecure: bool) -> RegistryOptions:
    import os

    from sedis.oci.transports import RegistryOptions

    # Registry credentials come from the environment, never from the command line.
    return RegistryOptions(
        username=os.environ.get("SEDIS_REGISTRY_USERNAME"),
        password=os.environ.get("SEDIS_REGISTRY_PASSWORD"),
        insecure=insecure,
    )


def open_source(
    ref: str, platform: str, insecure: bool, decryption_key: Path | None = None
) -> ImageSource:
    from sedis.oci.transports import open_source as _open

    source = _open(ref, platform, registry_options(insecure))
    if decryption_key is None:
        return source
    from sedis.service.ocicrypt_io import DecryptingSource, load_key

    try:
        return DecryptingSource(source, load_key(decryption_key, private=True))
    except BaseException:
        source.close()
        raise


def publish(
    source: str = typer.Argument(
        ...,
        metavar="SOURCE",
        help="docker-archive:PATH, oci:DIR[:TAG], oci-archive:PATH, docker://…",
    ),
    name: str = typer.Option(..., "--name", metavar="NAME:TAG", help="Record it under this."),
    to: list[str] = typer.Option(
        [], "--to", metavar="WHO", help="Recipient: identity, contact or 0x address."
    ),
    platform: str = PlatformOption,
    insecure: bool = InsecureOption,
    decryption_key: Path | None = typer.Option(
        None,
        "--decryption-key",
        metavar="FILE",
        help="Private key (PEM) to read a source that ocicrypt tools encrypted.",
    ),
    fail_on: str = typer.Option(
        "critical",
        "--fail-on",
        metavar="SEVERITY",
        help="Refuse at this severity or worse (critical, high, medium, low, unknown, none).",
    ),
    ignore_unfixed: bool = typer.Option(
        False, "--ignore-unfixed", help="Findings with no fix do not count."
    ),
    vex: Path | None = typer.Option(
        None, "--vex", metavar="FILE", help="OpenVEX statements of what does not apply."
    ),
    skip_scan: bool = typer.Option(
        False, "--skip-scan", help="Publish unscanned; the ledger records it as not scanned."
    ),
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Scan, encrypt, store and record an image, and share it with recipients."""
    from sedis.core.errors import PolicyViolationError
    from sedis.scan.policy import parse_threshold
    from sedis.service import publish as publishing
    from sedis.service import scanning
    from sedis.service.naming import parse_name

    image_name = parse_name(name)
    policy = scanning.ScanPolicy(parse_threshold(fail_on), ignore_unfixed, vex)
    with context.engines() as engines:
        hook = scanning.skip if skip_scan else scanning.gate(engines.vulndb, policy)
        with (
            context.acting(engines, as_name, password_env) as me,
            open_source(source, platform, insecure, decryption_key) as src,
            progress_bar("publishing", output == Format.text) as bar,
        ):
            bar.start(publishing.bytes_to_process(src))
            try:
                result = publishing.publish(
                    engines,
                    me.actor,
                    src,
                    name=image_name,
                    recipients=to,
                    scan=hook,
                    progress=bar.advance,
                    cancel=me.cancel,
                )
            except PolicyViolationError as refusal:
                render.refused_by_policy(output, refusal)
                raise
    render.published(output, result)


def share(
    image: str = ImageArgument,
    to: str = typer.Option(
        ..., "--to", metavar="WHO", help="Recipient: identity, contact or 0x address."
    ),
    expires: str | None = typer.Option(
        None, "--expires", metavar="DURATION", help="e.g. 30d, 12h: the grant lapses."
    ),
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Give a recipient access: wrap the image's keys for them and record a grant."""
    from sedis.core.durations import parse_duration
    from sedis.service import access

    expires_at = int(time.time()) + parse_duration(expires) if expires else None
    with context.engines() as engines, context.acting(engines, as_name, password_env) as me:
        result = access.share(engines, me.actor, image, to, expires_at=expires_at)
    render.shared(output, result)


def unshare(
    image: str = ImageArgument,
    from_: str = typer.Option(..., "--from", metavar="WHO", help="Recipient to remove."),
    rotate: bool = typer.Option(False, "--rotate", help="Re-encrypt with fresh keys as well."),
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Revoke a recipient's grant; --rotate also re-encrypts for those who remain."""
    from sedis.service import access

    with (
        context.engines() as engines,
        context.acting(engines, as_name, password_env, decrypt=rotate) as me,
    ):
        result = access.unshare(engines, me.actor, image, from_, rotate=rotate)
    render.unshared(output, result)


def pull(
    image: str = ImageArgument,
    dest: str = typer.Argument(
        ..., metavar="DEST", help="oci:DIR[:TAG], docker-archive:PATH[:NAME:TAG], …"
    ),
    insecure: bool = InsecureOption,
    policy_file: Path | None = PolicyOption,
    publisher: str | None = PublisherOption,
    signer: list[str] = SignerOption,
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Fetch, check, decrypt and verify an image the policy trusts, and write it to DEST
    atomically."""
    from sedis.oci import transports
    from sedis.service import pull as pulling

    policy = trust_policy(policy_file, signer)
    chosen = publisher_of(publisher)
    sink = transports.open_sink(dest, registry_options(insecure))
    with (
        context.engines() as engines,
        context.acting(engines, as_name, password_env, sign=False) as me,
        progress_bar("pulling", output == Format.text) as bar,
    ):
        result = pulling.pull(
            engines, me.actor, image, sink, policy=policy, publisher=chosen, progress=bar
        )
    render.pulled(output, result, image, dest)


def verify(
    artifacts: list[str] = typer.Argument(
        ..., metavar="ARTIFACT...", help="Images (NAME:TAG, sha256:…) or sources (oci:…)."
    ),
    name: str | None = typer.Option(
        None,
        "--name",
        metavar="NAME:TAG",
        help="Check that each source is the image NAME:TAG names under the policy.",
    ),
    policy_file: Path | None = PolicyOption,
    publisher: str | None = PublisherOption,
    signer: list[str] = SignerOption,
    platform: str = PlatformOption,
    insecure: bool = InsecureOption,
    output: Format = OutputOption,
) -> None:
    """Judge artifacts under the trust policy; the exit code is the status (0 only if
    TRUSTED)."""
    from sedis.service import verify as verifying

    policy = trust_policy(policy_file, signer)
    chosen = publisher_of(publisher)
    with context.engines() as engines, ExitStack() as stack:
        opened: list[verifying.Artifact] = [
            stack.enter_context(open_source(a, platform, insecure)) if is_source(a) else a
            for a in artifacts
        ]
        judged = verifying.verify(engines, opened, policy=policy, name=name, publisher=chosen)
    render.verdicts(output, list(zip(artifacts, judged, strict=True)))
    worst = max((v.exit_code for v in judged), default=0)
    if worst:
        raise typer.Exit(worst)


def is_source(text: str) -> bool:
    return text.startswith(("docker-archive:", "oci:", "oci-archive:", "docker://"))


def status(
    image: str = ImageArgument,
    new_status: str = typer.Argument(
        ..., metavar="STATUS", help="trusted, untrusted, unsupported or revoked"
    ),
    reason: str = typer.Option(
        ..., "--reason", metavar="REASON", help="Why: recorded on the ledger for auditors."
    ),
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Append a status change to an image's history on the ledger."""
    from sedis.core.records import Status
    from sedis.service import query

    parsed = Status.parse(new_status)
    with (
        context.engines() as engines,
        context.acting(engines, as_name, password_env, decrypt=False) as me,
    ):
        result = query.set_status(engines, me.actor, image, parsed, reason)
    render.status_changed(output, result)


def inspect(
    image: str = ImageArgument,
    policy_file: Path | None = PolicyOption,
    publisher: str | None = PublisherOption,
    signer: list[str] = SignerOption,
    output: Format = OutputOption,
) -> None:
    """Every publisher's record of an image, and the chosen record's status history,
    grants, attestations and tags."""
    from sedis.service import query

    policy = trust_policy(policy_file, signer)
    chosen = publisher_of(publisher)
    with context.engines() as engines:
        result = query.inspect(engines, image, policy=policy, publisher=chosen)
    render.inspected(output, result)


def list_(
    mine: bool = typer.Option(False, "--mine", help="Only records the acting identity published."),
    shared: bool = typer.Option(False, "--shared-with-me", help="Only images shared with it."),
    as_name: str | None = AsOption,
    output: Format = OutputOption,
) -> None:
    """Images on the ledger."""
    from sedis.service import query

    me = context.acting_address(as_name) if mine or shared else None
    with context.engines() as engines:
        rows = query.list_images(
            engines,
            publisher=me if mine else None,
            shared_with=me if shared and not mine else None,
        )
    render.listed(output, rows)


def export(
    image: str = ImageArgument,
    dest: str = typer.Argument(
        ..., metavar="DEST", help="oci:DIR[:TAG], oci-archive:PATH or docker://…"
    ),
    ocicrypt: bool = typer.Option(False, "--ocicrypt", help="Write ocicrypt's standard form."),
    recipient: list[str] = typer.Option(
        [], "--recipient", metavar="jwe:PUB.pem", help="Also wrap the keys for this public key."
    ),
    insecure: bool = InsecureOption,
    policy_file: Path | None = PolicyOption,
    publisher: str | None = PublisherOption,
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Write an image with encrypted layers and a plaintext config, for ocicrypt tools."""
    from sedis.core.errors import InvalidInputError
    from sedis.oci.transports import open_sink
    from sedis.service import export as exporting
    from sedis.service.ocicrypt_io import load_key

    if not ocicrypt:
        raise InvalidInputError(
            "export writes ocicrypt's form: give --ocicrypt (pull writes plaintext)"
        )
    keys = []
    for text in recipient:
        if not text.startswith("jwe:"):
            raise InvalidInputError(f"--recipient {text!r}: use jwe:PATH to a public key PEM")
        keys.append(load_key(Path(text[4:]), private=False))
    policy = trust_policy(policy_file)
    chosen = publisher_of(publisher)
    sink = open_sink(dest, registry_options(insecure))
    with (
        context.engines() as engines,
        context.acting(engines, as_name, password_env, sign=False) as me,
    ):
        result = exporting.export(
            engines, me.actor, image, sink, policy=policy, publisher=chosen, recipients=keys
        )
    render.exported(output, result, image, dest)


def rescan(
    image: str = ImageArgument,
    policy_file: Path | None = PolicyOption,
    publisher: str | None = PublisherOption,
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Scan a published image again with today's database, and attest to it on the ledger."""
    from sedis.service import rescan as rescanning

    policy = trust_policy(policy_file)
    chosen = publisher_of(publisher)
    with context.engines() as engines, context.acting(engines, as_name, password_env) as me:
        result = rescanning.rescan(engines, me.actor, image, policy=policy, publisher=chosen)
    render.rescanned(output, result)


def register(app: typer.Typer) -> None:
    app.command("publish")(publish)
    app.command("share")(share)
    app.command("unshare")(unshare)
    app.command("pull")(pull)
    app.command("verify")(verify)
    app.command("status")(status)
    app.command("inspect")(inspect)
    app.command("list")(list_)
    app.command("export")(export)
    app.command("rescan")(rescan)
    app.command("attest")(trust_cmds.attest)
    app.add_typer(trust_cmds.app, name="policy")
