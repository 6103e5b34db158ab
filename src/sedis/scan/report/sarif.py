"""The report as SARIF 2.1.0: one rule per vulnerability, one result per finding."""

from __future__ import annotations

from typing import Any

from sedis import __version__
from sedis.scan.model import ScanReport
from sedis.scan.policy import worst_first
from sedis.scan.severity import Severity

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.UNKNOWN: "note",
}
# GitHub code scanning reads a 0-10 "security-severity" from the rule's properties.
_DEFAULT_SCORE = {
    Severity.CRITICAL: 9.5,
    Severity.HIGH: 8.0,
    Severity.MEDIUM: 5.5,
    Severity.LOW: 2.0,
    Severity.UNKNOWN: 0.0,
}


def render(report: ScanReport) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for f in worst_first(report.findings):
        score = f.cvss.score if f.cvss else _DEFAULT_SCORE[f.severity]
        rule = rules.setdefault(
            f.id,
            {
                "id": f.id,
                "shortDescription": {"text": f"{f.id} ({f.severity.label})"},
                "fullDescription": {"text": f.summary or f.id},
                "help": {"text": "Upgrade the package to the fixed version, where there is one."},
                "properties": {
                    "security-severity": f"{score:.1f}",
                    "tags": ["vulnerability", "security", f.severity.label],
                },
            },
        )
        if f.references:
            rule["helpUri"] = f.references[0]
        fix = f"fixed in {f.fixed}" if f.fixed else "no fix is known"
        results.append(
            {
                "ruleId": f.id,
                "ruleIndex": list(rules).index(f.id),
                "level": _LEVEL[f.severity],
                "message": {
                    "text": (
                        f"{f.package.name} {f.package.version} is affected by {f.id}"
                        f" ({f.severity.label}); {fix}."
                    )
                },
                "locations": [
                    {
                        "physicalLocation": {"artifactLocation": {"uri": f.package.path}},
                        "message": {"text": f.package.purl},
                    }
                ],
                "properties": {
                    "purl": f.package.purl,
                    "fixed": f.fixed,
                    "layer": f.package.layer,
                    "aliases": list(f.aliases),
                },
            }
        )
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sedis",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
                "properties": {"target": report.target, "vulndb_digest": report.vulndb_digest},
            }
        ],
    }
