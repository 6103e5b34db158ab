"""The pre-share scan: what publish runs before anything leaves the machine.

The plaintext image is scanned against the local vulnerability database and
the policy applied; a refusal stops publish before a byte is encrypted,
stored or recorded. What passes carries its CycloneDX report (SBOM and
vulnerabilities) on into the sealed image, for the same recipients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sedis.core.errors import PolicyViolationError
from sedis.core.records import ScanSummary

if TYPE_CHECKING:
    from sedis.oci.source import ImageSource
    from sedis.scan.model import ScanReport
    from sedis.scan.severity import Severity


@dataclass(frozen=True, slots=True)
class ScanPolicy:
    fail_on: Severity | None  # None: report, never refuse
    ignore_unfixed: bool = False
    vex: Path | None = None


@dataclass(frozen=True, slots=True)
class PreShareScan:
    summary: ScanSummary  # what the ledger records, less the report's CID (known once sealed)
    report: bytes  # CycloneDX 1.6 JSON
    scanned_at: str


ScanHook = Callable[["ImageSource"], PreShareScan | None]


def skip(source: ImageSource) -> PreShareScan | None:
    """No scan: the ledger records the image as "not scanned"."""
    return None


def scan_source(source: ImageSource, vulndb: Path, policy: ScanPolicy) -> ScanReport:
    from sedis.oci.layers import source_layers
    from sedis.scan import service

    vex = service.load_vex(policy.vex) if policy.vex is not None else ()
    return service.scan_layers(
        source_layers(source),
        vulndb,
        target=source.reference,
        ignore_unfixed=policy.ignore_unfixed,
        vex_statements=vex,
        image_ids=frozenset({source.manifest.digest}),
    )


def gate(vulndb: Path, policy: ScanPolicy) -> ScanHook:
    """The hook that scans, applies the policy, and refuses or passes the image on."""

    def hook(source: ImageSource) -> PreShareScan:
        from sedis.scan import policy as policies

        report = scan_source(source, vulndb, policy)
        verdict = policies.evaluate(report, policy.fail_on)
        if not verdict.passed:
            raise PolicyViolationError(
                f"publish refused by the vulnerability policy: {verdict.describe()}",
                tuple(verdict.violations),
            )
        from sedis.scan.service import summary

        return PreShareScan(
            summary=summary(report), report=report.cyclonedx(), scanned_at=report.scanned_at
        )

    return hook
