"""The report as sedis's own JSON."""

from __future__ import annotations

from typing import Any

from sedis.scan.model import Finding, Package, ScanReport
from sedis.scan.policy import worst_first


def package(p: Package) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "name": p.name,
        "version": p.version,
        "source_name": p.source_name,
        "source_version": p.source_version,
        "ecosystem": p.ecosystem,
        "purl": p.purl,
        "path": p.path,
        "layer": p.layer,
        "arch": p.arch,
        "license": p.license,
    }


def finding(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "aliases": list(f.aliases),
        "package": f.package.name,
        "installed": f.package.version,
        "source_package": f.package.source_name,
        "source_version": f.package.source_version,
        "purl": f.package.purl,
        "layer": f.package.layer,
        "fixed": f.fixed,
        "status": "fixed" if f.fixed else "affected, no fix",
        "severity": f.severity.label,
        "cvss": None
        if f.cvss is None
        else {
            "version": f.cvss.version,
            "vector": f.cvss.vector,
            "score": f.cvss.score,
            "origin": f.cvss.origin,
        },
        "urgency": f.urgency,
        "summary": f.summary,
        "sources": list(f.sources),
        "references": list(f.references),
    }


def render(report: ScanReport) -> dict[str, Any]:
    inv = report.inventory
    return {
        "target": report.target,
        "scanned_at": report.scanned_at,
        "vulndb_digest": report.vulndb_digest,
        "os": None
        if inv.os is None
        else {
            "id": inv.os.id,
            "version_id": inv.os.version_id,
            "name": inv.os.pretty_name,
            "ecosystem": inv.os.ecosystem,
        },
        "counts": dict(report.counts()),
        "findings": [finding(f) for f in worst_first(report.findings)],
        "suppressed": [{**finding(s.finding), "vex": s.statement} for s in report.suppressed],
        "ignored_unfixed": report.ignored_unfixed,
        "packages": [package(p) for p in inv.packages],
    }
