"""How the image commands show their results: JSON made from the result's dataclass,
and text for people, one function per result type.

Text goes out through ``output.info``, which escapes what a terminal could act
on; JSON needs no such step (``json.dumps`` escapes every control character).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sedis.cli.output import Format, info
from sedis.core.address import Address
from sedis.service.shapes import plain, verdict_json, verdict_line

if TYPE_CHECKING:
    from sedis.core.errors import PolicyViolationError
    from sedis.core.policy import TrustPolicy
    from sedis.core.records import ScanSummary
    from sedis.core.verdict import Verdict
    from sedis.service.access import ShareResult, UnshareResult
    from sedis.service.attest import AttestResult, AttestRevokeResult
    from sedis.service.export import ExportResult
    from sedis.service.publish import PublishResult
    from sedis.service.pull import PullResult
    from sedis.service.query import ImageSummary, Inspection, StatusChange
    from sedis.service.rescan import RescanResult


def show(fmt: Format, result: Any, lines: list[str], **extra: Any) -> None:
    """The result as JSON (with ``extra`` fields the command adds), or ``lines``."""
    if fmt == Format.json:
        sys.stdout.write(json.dumps({**plain(result), **extra}, indent=2) + "\n")
        return
    for line in lines:
        info(line)


def when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "-"


def scan_text(scan: ScanSummary) -> str:
    if scan.not_scanned:
        return "not scanned"
    return (
        f"critical {scan.critical}, high {scan.high}, medium {scan.medium}, "
        f"low {scan.low}, unknown {scan.unknown}"
    )


def counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


# -- one function per result ------------------------------------------------------------


def published(fmt: Format, result: PublishResult) -> None:
    lines = [f"published {result.name or result.digest}"]
    if result.already_recorded:
        lines.append("  (already on the ledger: completed what was missing)")
    lines += [
        f"  digest       {result.digest}",
        f"  config       {result.config_digest}",
        f"  root CID     {result.root_cid}",
    ]
    if result.scan is not None:
        said = "not scanned (--skip-scan)" if result.scan.not_scanned else scan_text(result.scan)
        lines.append(f"  scan         {said}")
    lines += [f"  shared with  {r}" for r in result.recipients]
    lines += [f"  transaction  {t}" for t in result.transactions]
    scanned = bool(result.scan and not result.scan.not_scanned)
    show(fmt, result, lines, scanned=scanned)


def refused_by_policy(fmt: Format, refusal: PolicyViolationError) -> None:
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
    if fmt == Format.json:
        sys.stdout.write(json.dumps({"refused": True, "worst_findings": rows}) + "\n")
        return
    for r in rows:
        info(
            f"  {r['severity']:<9} {r['id']:<20} {r['package']} {r['version']}"
            f"  (fixed in {r['fixed'] or 'no release yet'})"
        )


def shared(fmt: Format, result: ShareResult) -> None:
    until = f" until {when(result.expires_at)}" if result.expires_at else ""
    show(fmt, result, [f"shared {result.digest} with {result.recipient}{until}"])


def unshared(fmt: Format, result: UnshareResult) -> None:
    text = f"revoked the grant of {result.digest} to {result.recipient}"
    if result.rotated:
        text += (
            f"; re-encrypted under key epoch {result.epoch} for {len(result.regranted)} remaining"
            f"; the store dropped {len(result.released)} pins of older epochs"
        )
    show(fmt, result, [text])


def pulled(fmt: Format, result: PullResult, image: str, dest: str) -> None:
    lines = [
        f"pulled {image} to {dest}",
        f"  digest     {result.digest}",
        f"  config     {result.config_digest}",
        f"  publisher  {result.publisher}",
    ]
    show(fmt, result, lines, dest=dest)


def accounts(addresses: Sequence[Address]) -> str:
    return ", ".join(str(a) for a in addresses) or "none"


def verdicts(fmt: Format, judged: list[tuple[str, Verdict]]) -> None:
    for artifact, verdict in judged:
        if fmt == Format.json:
            sys.stdout.write(json.dumps(verdict_line(artifact, verdict)) + "\n")
            continue
        checked = f"{artifact} as {verdict.name}" if verdict.name else artifact
        digest = "" if checked == verdict.digest else f"  {verdict.digest}"
        info(f"{verdict.status.value:<11} {checked}{digest}")
        info(f"            {verdict.reason}")
        info(f"            policy     {verdict.policy}")
        if verdict.publishers:
            info(f"            publishers {accounts(verdict.publishers)}")
        if verdict.vouching:
            info(f"            vouching   {accounts(verdict.vouching)}")


def explained(fmt: Format, artifact: str, verdict: Verdict, policy: TrustPolicy) -> None:
    """A verdict rule by rule: whether each rule covers the image, whose records it
    counted, and each check it made, passed or failed."""
    if fmt == Format.json:
        sys.stdout.write(json.dumps(verdict_json(artifact, verdict), indent=2) + "\n")
        return
    checked = f"{artifact} as {verdict.name}" if verdict.name else artifact
    info(checked if checked == verdict.digest else f"{checked}  {verdict.digest}")
    rules = len(policy.rules)
    counted = f"{rules} rule{'' if rules == 1 else 's'}, default {policy.default.value}"
    info(f"policy  {verdict.policy} ({counted})")
    for outcome in verdict.rules:
        where = f" (line {outcome.line})" if outcome.line else ""
        head = f"rule {outcome.index}{where}"
        if not outcome.covers:
            info(f"{head}: {outcome.scope or 'does not cover this image'}")
            continue
        info(f"{head}: {outcome.status.value}")
        info(f"  {outcome.scope or 'covers this image'}")
        info(f"  counted  {accounts(outcome.counted)}")
        for item in outcome.checks:
            info(f"  {'✓' if item.passed else '✗'} {item.text}")
    if not any(o.covers for o in verdict.rules):
        info(f"no rule covers it: the default decision is {policy.default.value}")
    info(f"verdict {verdict.status.value}: {verdict.reason}")


def policy_checked(fmt: Format, policy: TrustPolicy) -> None:
    rules = len(policy.rules)
    data = {"policy": policy.source, "rules": rules, "default": policy.default.value}
    if fmt == Format.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    info(f"{policy.source}: {rules} rule{'' if rules == 1 else 's'}, default {data['default']}")


def attested(fmt: Format, result: AttestResult) -> None:
    lines = [
        f"attested {result.kind!r} on {result.publisher}'s record of {result.digest}",
        f"  index        {result.index}",
        f"  payload      {result.payload_hash}",
        *([f"  stored at    {result.cid}"] if result.cid else []),
        f"  transaction  {result.transaction}",
    ]
    show(fmt, result, lines)


def attestation_revoked(fmt: Format, result: AttestRevokeResult) -> None:
    indexes = ", ".join(str(i) for i in result.indexes)
    lines = [
        f"revoked {result.kind!r} on {result.publisher}'s record of {result.digest}"
        f" (attestation {indexes})",
        *[f"  transaction  {t}" for t in result.transactions],
    ]
    show(fmt, result, lines)


def status_changed(fmt: Format, result: StatusChange) -> None:
    show(fmt, result, [f"{result.digest} is now {result.status.value}: {result.reason}"])


def inspected(fmt: Format, result: Inspection) -> None:
    record = result.record
    verdict = result.verdict
    lines = [
        f"digest     {record.digest}",
        f"verdict    {verdict.status.value}: {verdict.reason}",
        f"policy     {verdict.policy}",
        "records:",
        *[
            f"  {r.publisher}  {r.status.value:<11} "
            + ("counted" if r.counted else "not counted by the policy")
            + (f"  ({', '.join(r.tags)})" if r.tags else "")
            for r in result.records
        ],
        f"publisher  {record.publisher}",
        f"config     {record.config_digest}",
        f"root CID   {record.root_cid}",
        f"published  {when(record.published_at)}",
        f"status     {record.status.value}",
        f"scan       {scan_text(record.scan)}",
        "names      " + (", ".join(t.ref for t in result.tags) or "-"),
        "status history:",
        *[f"  {when(e.at)}  {e.status.value:<11} {e.reason}" for e in result.status_history],
        "grants:",
    ]
    for grant in result.grants:
        if grant.revoked_at:
            state = "revoked " + when(grant.revoked_at)
        elif grant.expires_at and not grant.active_at(result.now):
            state = "expired " + when(grant.expires_at)
        elif grant.expires_at:
            state = "expires " + when(grant.expires_at)
        else:
            state = "active"
        lines.append(f"  {grant.recipient}  {state}")
    lines.append("scans:")
    for scan in result.scans:
        if scan.not_scanned:
            found = "not scanned"
        elif scan.counts is not None:
            found = counts_text(scan.counts)
        else:
            found = "report sealed"
        db = f"  (db {scan.vulndb_digest[:19]}…)" if scan.vulndb_digest else ""
        lines.append(f"  {when(scan.at)}  {scan.kind:<8} {found}{db}")
    lines.append("attestations:" + ("" if result.attestations else " none"))
    for a in result.attestations:
        revoked = f", revoked {when(a.revoked_at)}" if a.revoked_at else ""
        lines.append(f"  {a.index}. {a.kind} by {a.attester} at {when(a.at)}{revoked}")
    show(fmt, result, lines)


def listed(fmt: Format, rows: list[ImageSummary]) -> None:
    if fmt == Format.json:
        sys.stdout.write(json.dumps(plain(rows), indent=2) + "\n")
        return
    if not rows:
        info("no images")
    for r in rows:
        names = ", ".join(r.names) or "-"
        info(f"{r.status.value:<11} {r.digest[:19]}…  {names:<28} {r.publisher}")


def exported(fmt: Format, result: ExportResult, image: str, dest: str) -> None:
    lines = [
        f"exported {image} to {dest} (ocicrypt, {result.recipients} recipients)",
        f"  manifest  {result.exported_manifest}",
    ]
    show(fmt, result, lines, dest=dest)


def rescanned(fmt: Format, result: RescanResult) -> None:
    lines = [
        f"rescanned {result.digest}: {counts_text(result.counts)}",
        f"  database   {result.vulndb_digest}",
        f"  attested   {result.transaction}",
    ]
    show(fmt, result, lines)
