"""`sedis scan SOURCE` and `sedis vulndb import|status`: the offline scanner."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sedis.cli import context
from sedis.cli.output import Format, OutputOption, emit, markup_free, note

if TYPE_CHECKING:
    from sedis.scan.model import ScanReport
    from sedis.service.vulndb_admin import ImportSummary, VulnDBStatus

vulndb_app = typer.Typer(
    help="The offline vulnerability database: import feeds, show what is loaded.",
    rich_markup_mode=None,
    no_args_is_help=True,
)


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"
    cyclonedx = "cyclonedx"


@vulndb_app.command("import")
def vulndb_import(
    paths: list[Path] = typer.Argument(
        ...,
        metavar="PATH...",
        help="OSV files, directories or all.zip; Debian tracker, Alpine secdb, NVD JSON.",
    ),
    output: Format = OutputOption,
) -> None:
    """Import feeds in one transaction: a bad record anywhere imports nothing."""
    from sedis.service import vulndb_admin

    with context.engines() as engines:
        result = vulndb_admin.import_feeds(engines, paths)
    _imported(output, result)


@vulndb_app.command("status")
def vulndb_status(output: Format = OutputOption) -> None:
    """Show the sources, their record counts and import times, and the snapshot digest."""
    from sedis.service import vulndb_admin

    with context.engines() as engines:
        st = vulndb_admin.status(engines)
    _described(output, st)


def scan(
    source: str = typer.Argument(
        ...,
        metavar="SOURCE",
        help="dir:ROOTFS, oci:DIR[:TAG], oci-archive:PATH, docker-archive:PATH, docker://...",
    ),
    fmt: ReportFormat = typer.Option(
        ReportFormat.table,
        "--format",
        "-f",
        metavar="FORMAT",
        help="Report format: table, json, sarif or cyclonedx.",
    ),
    output: Format = OutputOption,
    fail_on: str = typer.Option(
        "none",
        "--fail-on",
        metavar="SEVERITY",
        help="Exit 1 when a finding is at or above: low, medium, high, critical (or none).",
    ),
    ignore_unfixed: bool = typer.Option(
        False, "--ignore-unfixed", help="Hide findings with no fix."
    ),
    vex_file: list[Path] = typer.Option(
        [], "--vex", metavar="FILE", help="OpenVEX file of not_affected statements (repeatable)."
    ),
    report_file: Path | None = typer.Option(
        None, "--report", metavar="FILE", help="Also write the report (in --format) to this file."
    ),
) -> None:
    """Scan an image or root filesystem for known vulnerabilities, offline."""
    from sedis.scan.policy import parse_threshold
    from sedis.service import scanning

    threshold = parse_threshold(fail_on)
    if output == Format.json and fmt == ReportFormat.table:
        fmt = ReportFormat.json
    with context.engines() as engines:
        outcome = scanning.scan_artifact(
            engines, source, fail_on=threshold, ignore_unfixed=ignore_unfixed, vex=vex_file
        )
    _render(outcome.report, fmt, report_file)
    if not outcome.verdict.passed:
        note("sedis: " + outcome.verdict.describe())
        raise typer.Exit(1)


def _imported(output: Format, result: ImportSummary) -> None:
    data = {"files": result.files, "records": dict(result.records), "snapshot": result.snapshot}
    lines = [f"imported {n} records into {src}" for src, n in sorted(result.records.items())]
    emit(output, data, [*lines, f"snapshot {result.snapshot}"])


def _described(output: Format, st: VulnDBStatus) -> None:
    data = {
        "path": st.path,
        "snapshot": st.digest,
        "records": st.records,
        "cvss_records": st.cvss_records,
        "sources": [
            {
                "name": s.name,
                "kind": s.kind,
                "records": s.records,
                "imported_at": s.imported_at,
                "files": s.files,
            }
            for s in st.sources
        ],
    }
    lines = [f"database {st.path}", f"snapshot {st.digest}"]
    lines += [f"{s.name:<28} {s.records:>9} records  imported {s.imported_at}" for s in st.sources]
    emit(output, data, lines)


def _serialize(report: ScanReport, fmt: ReportFormat) -> bytes:
    if fmt == ReportFormat.cyclonedx:
        return report.cyclonedx() + b"\n"
    if fmt == ReportFormat.sarif:
        from sedis.scan.report.sarif import render as sarif

        return (json.dumps(sarif(report), indent=2) + "\n").encode()
    from sedis.scan.report.jsonout import render as as_json

    return (json.dumps(as_json(report), indent=2) + "\n").encode()


def _render(report: ScanReport, fmt: ReportFormat, report_file: Path | None) -> None:
    if report_file is not None:
        from sedis.fsutil import atomic_write_bytes

        atomic_write_bytes(
            report_file, _serialize(report, ReportFormat.json if fmt == ReportFormat.table else fmt)
        )
    if fmt == ReportFormat.table:
        from sedis.scan.report.table import render as table

        table(report, clean=markup_free)
        return
    sys.stdout.buffer.write(_serialize(report, fmt))
    sys.stdout.flush()
