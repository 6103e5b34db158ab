"""The report for people: a Rich table per severity, worst first."""

from __future__ import annotations

from collections.abc import Callable

from sedis.scan.model import ScanReport
from sedis.scan.policy import worst_first
from sedis.scan.severity import Severity

_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.UNKNOWN: "dim",
}


def render(
    report: ScanReport, width: int | None = None, clean: Callable[[str], str] | None = None
) -> None:
    """Print the report; ``clean`` readies each text it quotes (from the image, the
    database, the command line) for Rich markup, by default by escaping its brackets."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    clean = clean or escape
    console = Console(width=width, highlight=False)
    inv = report.inventory
    os_name = clean(inv.os.pretty_name) if inv.os else "no OS detected"
    counts = report.counts()
    console.print(f"[bold]{clean(report.target)}[/bold] ({os_name}): {len(inv.packages)} packages")
    console.print("vulnerability database " + clean(report.vulndb_digest))
    console.print(
        "  ".join(f"{name}: {n}" for name, n in counts.items()) or "no findings",
        style="bold" if report.findings else None,
    )
    if report.suppressed:
        console.print(f"{len(report.suppressed)} finding(s) suppressed by VEX")
    if report.ignored_unfixed:
        console.print(f"{report.ignored_unfixed} finding(s) without a fix not shown")
    ordered = worst_first(report.findings)
    for sev in sorted(Severity, reverse=True):
        rows = [f for f in ordered if f.severity is sev]
        if not rows:
            continue
        table = Table(
            title=f"{sev.label.upper()} ({len(rows)})",
            title_style=_STYLE[sev],
            title_justify="left",
            expand=False,
        )
        for col in ("Vulnerability", "Package", "Installed", "Fixed", "Layer", "Score"):
            table.add_column(col, overflow="fold")
        for f in rows:
            score = f"{f.cvss.score:.1f}" if f.cvss else (f.urgency or "")
            table.add_row(
                clean(f.id),
                clean(f.package.name),
                clean(f.package.version),
                clean(f.fixed) if f.fixed else "no fix",
                "" if f.package.layer is None else str(f.package.layer),
                clean(score),
            )
        console.print(table)
