"""Scanning as a use case: inventory, match, VEX, report. What `publish` calls.

report = scan_rootfs(DirRootFS(path), db_path)          # or scan_layers(layers, ...)
verdict = policy.evaluate(report, Severity.CRITICAL)
report.counts(), report.cyclonedx(), report.vulndb_digest
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sedis.core.records import ScanSummary
from sedis.scan import deepstack, inventory, match, vex
from sedis.scan.model import ScanReport, Suppressed
from sedis.scan.rootfs import LayersRootFS, RootFS
from sedis.scan.vulndb.bounded import parse_json, read_file
from sedis.scan.vulndb.db import VulnDB


def load_vex(path: Path) -> list[vex.Statement]:
    data = read_file(path, 64 * 1024 * 1024)
    return vex.parse(deepstack.call(lambda: parse_json(data, str(path))), str(path))


def scan_rootfs(
    rootfs: RootFS,
    db_path: Path,
    *,
    target: str = "",
    ignore_unfixed: bool = False,
    vex_statements: Sequence[vex.Statement] = (),
    image_ids: frozenset[str] = frozenset(),
    now: datetime | None = None,
) -> ScanReport:
    """Scan one root filesystem view against the database at ``db_path``.

    ``image_ids`` are the names a VEX product may use for this image (its
    digests and pkg:oci purl); ``now`` dates the report (UTC now by default).
    """
    db = VulnDB.open(db_path)
    try:
        inv = deepstack.call(lambda: inventory.collect(rootfs))
        found = match.match(inv.packages, db.advisories_for, db.cvss_for)
        digest = db.snapshot_digest()
    finally:
        db.close()
    kept, suppressed, unfixed = [], [], 0
    for f in found:
        st = next((s for s in vex_statements if vex.applies(s, f, image_ids)), None)
        if st is not None:
            suppressed.append(Suppressed(f, st.reason))
        elif ignore_unfixed and f.fixed is None:
            unfixed += 1
        else:
            kept.append(f)
    when = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ScanReport(
        target=target,
        inventory=inv,
        findings=kept,
        vulndb_digest=digest,
        scanned_at=when,
        suppressed=suppressed,
        ignored_unfixed=unfixed,
    )


def scan_layers(layers: Sequence[Any], db_path: Path, **kwargs: Any) -> ScanReport:
    """The same over image layers, merged in order with whiteouts by ``sedis.oci``."""
    return scan_rootfs(LayersRootFS(layers), db_path, **kwargs)


def summary(report: ScanReport, report_cid: str | None = None) -> ScanSummary:
    """The counts and report digest the ledger records for a scan."""
    c = report.counts()
    return ScanSummary(
        critical=c["critical"],
        high=c["high"],
        medium=c["medium"],
        low=c["low"],
        unknown=c["unknown"],
        report_digest=report.cyclonedx_digest(),
        report_cid=report_cid,
        vulndb_digest=report.vulndb_digest,
    )


def report_json(report: ScanReport) -> dict[str, Any]:
    from sedis.scan.report.jsonout import render

    return render(report)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2)
