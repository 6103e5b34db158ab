"""The image commands: publish, share, unshare, pull, verify, status, inspect, list."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from sedis.cli import context
from sedis.cli.identity_cmds import AsOption, PasswordEnvOption
from sedis.cli.output import Format, OutputOption, emit, info, progress

if TYPE_CHECKING:
    from sedis.core.errors import PolicyViolationError
    from sedis.core.records import ImageRecord, ScanSummary
    from sedis.oci.source import ImageSource
    from sedis.oci.transports import RegistryOptions
    from sedis.service.publish import Checked
    from sedis.service.sealing import ShareManifest
    from sedis.service.session import Session

PlatformOption = typer.Option("linux/amd64", "--platform", help="Platform to pick from an index.")
InsecureOption = typer.Option(False, "--insecure", help="Plain HTTP to docker:// registries.")
T = TypeVar("T")


def session(as_name: str | None, password_env: str | None) -> Session:
    from sedis.crypto.password import read_password
    from sedis.service.session import Session

    return Session(context.settings(), as_name, lambda: read_password(password_env))


def unlock(acting: Session, *, sign: bool = True, decrypt: bool = True) -> None:
    unlock_while(acting, lambda: None, sign=sign, decrypt=decrypt)


def unlock_while(
    acting: Session, work: Callable[[], T], *, sign: bool = True, decrypt: bool = True
) -> T:
    """Unlock what the command needs, doing ``work`` (which needs no key) meanwhile;
    what that loaded is then frozen (see context)."""
    result = acting.unlock_while(work, sign=sign, decrypt=decrypt)
    context.freeze_collector()
    return result


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


def _checked_while_unlocking(acting: Session, src: ImageSource, to: list[str]) -> Checked:
    """Publish's key-free checks, beside scrypt: the ledger reads on the loader
    thread, and the blobs' hashes on a thread of their own from the start."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from sedis.service import publish as publishing

    cancel = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="sedis-check") as pool:
        hashing = pool.submit(publishing.check_local_blobs, acting, src, cancel)

        def call_off() -> None:
            cancel.set()
            with suppress(Exception):
                blobs = hashing.result()
                if blobs is not None:
                    blobs.close()

        try:
            checked = unlock_while(acting, lambda: publishing.check(acting, src, to))
        except BaseException:
            call_off()  # the unlock's (or the ledger's) error is the one to report, at once
            raise
        if checked.record is not None:
            call_off()  # recorded already: nothing will be sealed
            return checked
        return checked.with_blobs(hashing.result())


def publish(
    source: str = typer.Argument(
        ..., help="docker-archive:PATH, oci:DIR[:TAG], oci-archive:PATH, docker://…"
    ),
    name: str = typer.Option(..., "--name", help="NAME:TAG to record it under."),
    to: list[str] = typer.Option([], "--to", help="Recipient: identity, contact or 0x address."),
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
    from contextlib import closing

    from sedis.core.errors import PolicyViolationError
    from sedis.scan.policy import parse_threshold
    from sedis.service import publish as publishing
    from sedis.service import scanning
    from sedis.service.naming import parse_name

    image_name = parse_name(name)
    settings = context.settings()
    policy = scanning.ScanPolicy(parse_threshold(fail_on), ignore_unfixed, vex)
    hook = scanning.skip if skip_scan else scanning.gate(settings.home, policy)
    with (
        session(as_name, password_env) as acting,
        open_source(source, platform, insecure, decryption_key) as src,
    ):
        checked = _checked_while_unlocking(acting, src, to)
        # A remote source's layers are read twice here: checked whole as they
        # are fetched, then sealed (a local one was checked while the keys unlocked).
        total = sum(d.size for d in src.manifest.descriptors())
        if checked.image is None and checked.record is None:
            total += sum(d.size for d in src.manifest.layers)
        try:
            with (
                closing(checked),
                progress("publishing", total, output == Format.text) as advance,
            ):
                result = publishing.publish_checked(
                    acting, src, image_name, checked, scan=hook, progress=advance
                )
        except PolicyViolationError as refusal:
            _print_violations(refusal, output)
            raise
    data = {
        "digest": result.digest,
        "config_digest": result.config_digest,
        "root_cid": result.root_cid,
        "name": result.name,
        "recipients": result.recipients,
        "transactions": result.transactions,
        "already_recorded": result.already_recorded,
        "scanned": bool(result.scan and not result.scan.not_scanned),
        "scan": _scan_counts(result.scan),
    }
    lines = [
        f"published {result.name}",
        f"  digest       {result.digest}",
        f"  config       {result.config_digest}",
        f"  root CID     {result.root_cid}",
        *[f"  shared with  {r}" for r in result.recipients],
        *[f"  transaction  {t}" for t in result.transactions],
    ]
    if result.scan is not None:
        lines.insert(4, f"  scan         {_scan_text(result.scan)}")
    if result.already_recorded:
        lines.insert(1, "  (already on the ledger: completed what was missing)")
    emit(output, data, lines)


def _scan_counts(scan: ScanSummary | None) -> dict[str, object] | None:
    if scan is None:
        return None
    return {
        "not_scanned": scan.not_scanned,
        "critical": scan.critical,
        "high": scan.high,
        "medium": scan.medium,
        "low": scan.low,
        "unknown": scan.unknown,
        "report_digest": scan.report_digest,
        "report_cid": scan.report_cid,
        "vulndb_digest": scan.vulndb_digest,
    }


def _scan_text(scan: ScanSummary) -> str:
    if scan.not_scanned:
        return "not scanned (--skip-scan)"
    return (
        f"critical {scan.critical}, high {scan.high}, medium {scan.medium}, "
        f"low {scan.low}, unknown {scan.unknown}"
    )


def _print_violations(refusal: PolicyViolationError, output: Format) -> None:
    """The worst findings, on stdout, before the one-line refusal on stderr."""
    rows = []
    for finding in refusal.findings[:10]:
        f: Any = finding
        rows.append(
            {
                "id": f.id,
                "severity": f.severity.label,
                "package": f.package.name,
                "version": f.package.version,
                "fixed": f.fixed,
            }
        )
    if output == Format.json:
        sys.stdout.write(json.dumps({"refused": True, "worst_findings": rows}) + "\n")
        return
    for r in rows:
        info(
            f"  {r['severity']:<9} {r['id']:<20} {r['package']} {r['version']}"
            f"  (fixed in {r['fixed'] or 'no release yet'})"
        )


def share(
    image: str = typer.Argument(..., help="NAME:TAG or sha256:DIGEST"),
    to: str = typer.Option(..., "--to", help="Recipient: identity, contact or 0x address."),
    expires: str | None = typer.Option(None, "--expires", help="e.g. 30d, 12h: the grant lapses."),
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Give a recipient access: wrap the image's keys for them and record a grant."""
    from sedis.core.durations import parse_duration
    from sedis.service import access

    expires_at = int(time.time()) + parse_duration(expires) if expires else None
    with session(as_name, password_env) as acting:
        unlock(acting)
        result = access.share(acting, image, to, expires_at)
    data = {
        "digest": result.digest,
        "recipient": result.recipient,
        "manifest_cid": result.manifest_cid,
        "expires_at": result.expires_at,
        "transactions": result.transactions,
    }
    until = f" until {_when(result.expires_at)}" if result.expires_at else ""
    emit(output, data, f"shared {result.digest} with {result.recipient}{until}")


def unshare(
    image: str = typer.Argument(..., help="NAME:TAG or sha256:DIGEST"),
    from_: str = typer.Option(..., "--from", help="Recipient to remove."),
    rotate: bool = typer.Option(False, "--rotate", help="Re-encrypt with fresh keys as well."),
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Revoke a recipient's grant; --rotate also re-encrypts for those who remain."""
    from sedis.service import access

    with session(as_name, password_env) as acting:
        unlock(acting, decrypt=rotate)
        result = access.unshare(acting, image, from_, rotate)
    data = {
        "digest": result.digest,
        "recipient": result.recipient,
        "rotated": result.rotated,
        "epoch": result.epoch,
        "regranted": result.regranted,
        "transactions": result.transactions,
        "released": result.released,
    }
    text = f"revoked the grant of {result.digest} to {result.recipient}"
    if result.rotated:
        text += (
            f"; re-encrypted under key epoch {result.epoch} for {len(result.regranted)} remaining"
            f"; the store dropped {len(result.released)} pins of older epochs"
        )
    emit(output, data, text)


def pull(
    image: str = typer.Argument(..., help="NAME:TAG or sha256:DIGEST"),
    dest: str = typer.Argument(..., help="oci:DIR[:TAG], docker-archive:PATH[:NAME:TAG], …"),
    insecure: bool = InsecureOption,
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Fetch, check, decrypt and verify an image, and write it to DEST atomically."""
    from sedis.oci import transports
    from sedis.service import pull as pulling

    with session(as_name, password_env) as acting:

        def check() -> tuple[ImageRecord, ShareManifest]:
            granted = pulling.check_access(acting, image)
            transports.load_code(dest)
            return granted

        record, share = unlock_while(acting, check, sign=False)
        source = pulling.open_checked(acting, record, share)
        sink = transports.open_sink(dest, registry_options(insecure))
        total = sum(d.size for d in source.manifest.descriptors())
        with progress("pulling", total, output == Format.text) as advance:
            source.progress = advance  # plaintext bytes, as they are decrypted
            transports.copy_image(source, sink)
    data = {
        "digest": source.manifest.digest,
        "config_digest": source.manifest.config.digest,
        "dest": dest,
        "layers": len(source.manifest.layers),
    }
    emit(
        output,
        data,
        [
            f"pulled {image} to {dest}",
            f"  digest  {source.manifest.digest}",
            f"  config  {source.manifest.config.digest}",
        ],
    )


def verify(
    artifacts: list[str] = typer.Argument(
        ..., help="Images (NAME:TAG, sha256:…) or sources (oci:…)."
    ),
    name: str | None = typer.Option(
        None,
        "--name",
        metavar="NAME:TAG",
        help="Check that each source is the image NAME:TAG names on the ledger.",
    ),
    signer: list[str] = typer.Option([], "--signer", help="Only these owners/attesters count."),
    platform: str = PlatformOption,
    insecure: bool = InsecureOption,
    output: Format = OutputOption,
) -> None:
    """Check artifacts against the ledger; the exit code is the status (0 only if TRUSTED)."""
    from sedis.core.verdict import Verdict
    from sedis.service import naming, query

    _refuse_unbound_mix(artifacts, name)
    if name is not None:
        name = str(naming.parse_name(name))
    settings = context.settings()
    from sedis.ledger import open_ledger

    verdicts: list[tuple[str, Verdict]] = []
    with ExitStack() as stack:
        sources = {
            artifact: stack.enter_context(open_source(artifact, platform, insecure))
            for artifact in artifacts
            if _is_source(artifact)
        }
        # The blobs are hashed on other cores while the ledger opens here.
        checks = stack.enter_context(query.BlobChecks(sources.values()))
        ledger = stack.enter_context(open_ledger(settings))
        for artifact in artifacts:
            src = sources.get(artifact)
            if src is not None:
                checks.wait(src)
                if name is not None:
                    verdict = query.verify_named_source(
                        ledger, src, name, signer, check_blobs=False
                    )
                else:
                    verdict = query.verify_source(ledger, src, signer, check_blobs=False)
            else:
                verdict = query.verify_digest(ledger, naming.resolve(ledger, artifact), signer)
            verdicts.append((artifact, verdict))
    for artifact, verdict in verdicts:
        data = {
            "artifact": artifact,
            "digest": verdict.digest,
            "name": verdict.name,
            "name_digest": verdict.name_digest,
            "status": verdict.status.value,
            "reason": verdict.reason,
            "owner": verdict.owner,
            "signers": list(verdict.signers),
            "exit_code": verdict.exit_code,
        }
        if output == Format.json:
            sys.stdout.write(json.dumps(data) + "\n")
        else:
            checked = f"{artifact} as {verdict.name}" if verdict.name else artifact
            info(f"{verdict.status.value:<11} {checked}  {verdict.digest}")
            info(
                f"            {verdict.reason}"
                + (f" (owner {verdict.owner})" if verdict.owner else "")
            )
    worst = max((v.exit_code for _, v in verdicts), default=0)
    if worst:
        raise typer.Exit(worst)


def _refuse_unbound_mix(artifacts: list[str], name: str | None) -> None:
    """Names and sources side by side read as "this source is that image", which a list
    of artifacts, each judged on its own, never checked: such a list is refused with
    the command that does check it. With --name every artifact must be a source."""
    from sedis.core.errors import InvalidInputError
    from sedis.service.naming import is_digest

    images = [a for a in artifacts if not _is_source(a)]
    sources = [a for a in artifacts if _is_source(a)]
    if name is not None and images:
        raise InvalidInputError(
            f"--name checks sources against {name}, and {images[0]} is not a source "
            "(docker-archive:, oci:, oci-archive:, docker://)"
        )
    if name is None and images and sources:
        if is_digest(images[0]):
            how = "verify them one at a time and compare the digests"
        else:
            how = (
                f"to check that it is that image, run 'sedis verify {sources[0]} "
                f"--name {images[0]}'; to judge each on its own, verify them one at a time"
            )
        raise InvalidInputError(f"verify does not check {sources[0]} against {images[0]}: {how}")


def _is_source(text: str) -> bool:
    return text.startswith(("docker-archive:", "oci:", "oci-archive:", "docker://"))


def status(
    image: str = typer.Argument(..., help="NAME:TAG or sha256:DIGEST"),
    new_status: str = typer.Argument(
        ..., metavar="STATUS", help="trusted, untrusted, unsupported or revoked"
    ),
    reason: str = typer.Option(..., "--reason", help="Why: recorded on the ledger for auditors."),
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Append a status change to an image's history on the ledger."""
    from sedis.core.records import Status
    from sedis.service import query

    parsed = Status.parse(new_status)
    with session(as_name, password_env) as acting:
        unlock(acting, decrypt=False)
        data = query.set_status(acting, image, parsed, reason)
    emit(output, data, f"{data['digest']} is now {data['status']}: {reason}")


def inspect(
    image: str = typer.Argument(..., help="NAME:TAG or sha256:DIGEST"),
    output: Format = OutputOption,
) -> None:
    """The record, status history, grants, attestations and tags of an image."""
    from sedis.ledger import open_ledger
    from sedis.service import query

    with open_ledger(context.settings()) as ledger, context.store() as store:
        data = query.inspect(ledger, image, store)
    emit(output, data, _inspect_lines(data))


def _when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "-"


def _inspect_lines(data: dict[str, Any]) -> list[str]:
    rec = data["record"]
    scan = rec["scan"]
    scan_text = (
        "not scanned"
        if scan["not_scanned"]
        else (
            f"critical {scan['critical']}, high {scan['high']}, medium {scan['medium']}, "
            f"low {scan['low']}, unknown {scan['unknown']}"
        )
    )
    lines = [
        f"digest     {rec['digest']}",
        f"owner      {rec['owner']}",
        f"config     {rec['config_digest']}",
        f"root CID   {rec['root_cid']}",
        f"published  {_when(rec['published_at'])}",
        f"status     {rec['status']}",
        f"scan       {scan_text}",
        "names      " + (", ".join(f"{t['name']}:{t['tag']}" for t in data["tags"]) or "-"),
        "status history:",
        *[
            f"  {_when(e.get('at'))}  {e['status']:<11} {e.get('reason') or ''}"
            for e in data["status_history"]
        ],
        "grants:",
    ]
    for g in data["grants"]:
        state = (
            "revoked " + _when(g["revoked_at"])
            if g["revoked_at"]
            else ("expires " + _when(g["expires_at"]) if g["expires_at"] else "active")
        )
        lines.append(f"  {g['recipient']}  {state}")
    lines.append("scans:")
    for scan_entry in data["scans"]:
        counts = scan_entry["counts"]
        found = (
            "not scanned"
            if scan_entry["not_scanned"]
            else (", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "report sealed")
        )
        db = scan_entry["vulndb_digest"]
        lines.append(
            f"  {_when(scan_entry['at'])}  {scan_entry['kind']:<8} {found}"
            + (f"  (db {db[:19]}…)" if db else "")
        )
    lines.append("attestations:" + ("" if data["attestations"] else " none"))
    lines += [f"  {a['kind']} by {a['attester']} at {_when(a['at'])}" for a in data["attestations"]]
    return lines


def list_(
    mine: bool = typer.Option(False, "--mine", help="Only images the acting identity owns."),
    shared: bool = typer.Option(False, "--shared-with-me", help="Only images shared with it."),
    as_name: str | None = AsOption,
    output: Format = OutputOption,
) -> None:
    """Images on the ledger."""
    from sedis.crypto.identities import IdentityStore, acting_identity
    from sedis.ledger import open_ledger
    from sedis.service import query

    settings = context.settings()
    me = None
    if mine or shared:
        me = IdentityStore(settings.home).get(acting_identity(settings, as_name)).address
    with open_ledger(settings) as ledger:
        rows = query.list_images(ledger, me, mine, shared)
    emit(
        output,
        rows,
        [f"{r['status']:<11} {r['digest'][:19]}…  {_names(r):<28} {r['owner']}" for r in rows]
        or ["no images"],
    )


def export(
    image: str = typer.Argument(..., help="NAME:TAG or sha256:DIGEST"),
    dest: str = typer.Argument(..., help="oci:DIR[:TAG], oci-archive:PATH or docker://…"),
    ocicrypt: bool = typer.Option(False, "--ocicrypt", help="Write ocicrypt's standard form."),
    recipient: list[str] = typer.Option(
        [], "--recipient", metavar="jwe:PUB.pem", help="Also wrap the keys for this public key."
    ),
    insecure: bool = InsecureOption,
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Write an image with encrypted layers and a plaintext config, for ocicrypt tools."""
    from sedis.core.errors import InvalidInputError
    from sedis.oci.transports import open_sink
    from sedis.service import pull as pulling
    from sedis.service.ocicrypt_io import export_ocicrypt, load_key

    if not ocicrypt:
        raise InvalidInputError(
            "export writes ocicrypt's form: give --ocicrypt (pull writes plaintext)"
        )
    keys = []
    for text in recipient:
        if not text.startswith("jwe:"):
            raise InvalidInputError(f"--recipient {text!r}: use jwe:PATH to a public key PEM")
        keys.append(load_key(Path(text[4:]), private=False))
    with session(as_name, password_env) as acting:
        record, share = unlock_while(
            acting, lambda: pulling.check_access(acting, image), sign=False
        )
        source = pulling.open_checked(acting, record, share)
        manifest = export_ocicrypt(
            source, share, acting.encryption_key, keys, open_sink(dest, registry_options(insecure))
        )
    data = {
        "digest": record.digest,
        "exported_manifest": manifest.digest,
        "dest": dest,
        "recipients": len(keys) + 1,
    }
    emit(
        output,
        data,
        [
            f"exported {image} to {dest} (ocicrypt, {len(keys) + 1} recipients)",
            f"  manifest  {manifest.digest}",
        ],
    )


def rescan(
    image: str = typer.Argument(..., help="NAME:TAG or sha256:DIGEST"),
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    output: Format = OutputOption,
) -> None:
    """Scan a published image again with today's database, and attest to it on the ledger."""
    from sedis.service import rescan as rescanning

    with session(as_name, password_env) as acting:
        unlock(acting)
        result = rescanning.rescan(acting, image)
    data = {
        "digest": result.digest,
        "counts": result.counts,
        "report_digest": result.report_digest,
        "vulndb_digest": result.vulndb_digest,
        "envelope_cid": result.envelope_cid,
        "transaction": result.transaction,
        "sealed_for": result.sealed_for,
    }
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
    emit(
        output,
        data,
        [
            f"rescanned {result.digest}: {counts}",
            f"  database   {result.vulndb_digest}",
            f"  attested   {result.transaction}",
        ],
    )


def _names(row: dict[str, Any]) -> str:
    return ", ".join(row["names"]) or "-"


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
