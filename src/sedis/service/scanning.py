"""Scanning: a plaintext artifact on its own, and the pre-share scan of publish.

``scan_artifact`` scans an image or a root filesystem against the local
vulnerability database and judges the report by a policy; it refuses
nothing, the caller decides what a failed policy means.

The pre-share scan is what publish runs before anything leaves the machine:
the plaintext image is scanned and the policy applied; a refusal stops
publish before a byte is encrypted, stored or recorded. What passes carries
its CycloneDX report (SBOM and vulnerabilities) on into the sealed image,
for the same recipients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sedis.core.errors import InvalidInputError, PolicyViolationError
from sedis.core.records import ScanSummary

if TYPE_CHECKING:
    from sedis.oci.source import ImageSource
    from sedis.scan.model import ScanReport
    from sedis.scan.policy import Verdict
    from sedis.scan.severity import Severity
    from sedis.service.engines import Engines

ROOTFS_PREFIX = "dir:"


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """A scan's report, and the policy's verdict on it."""

    report: ScanReport
    verdict: Verdict


def scan_artifact(
    engines: Engines,
    target: str,
    *,
    fail_on: Severity | None,
    ignore_unfixed: bool = False,
    vex: Sequence[Path] = (),
) -> ScanOutcome:
    """Scan ``target`` (``dir:ROOTFS``, or an image reference such as ``oci:DIR[:TAG]``)
    against the engines' vulnerability database, and judge it at ``fail_on`` (None: it
    always passes). ``vex`` files say which findings do not apply."""
    from sedis.scan import policy
    from sedis.scan.service import load_vex

    # Every VEX file is read before the target, so a bad one costs no scan.
    statements = [s for path in vex for s in load_vex(path)]
    if target.startswith(ROOTFS_PREFIX):
        from sedis.scan.rootfs import DirRootFS
        from sedis.scan.service import scan_rootfs

        report = scan_rootfs(
            DirRootFS(Path(target.removeprefix(ROOTFS_PREFIX))),
            engines.vulndb,
            target=target,
            ignore_unfixed=ignore_unfixed,
            vex_statements=statements,
        )
    elif ":" not in target and Path(target).is_dir():
        # As an image reference it would fail with no hint of the dir: form it needs.
        raise InvalidInputError(
            f"{target}: name a root filesystem directory as {ROOTFS_PREFIX}{target}"
        )
    else:
        from sedis.scan.image import scan_image

        report = scan_image(
            target, engines.vulndb, ignore_unfixed=ignore_unfixed, vex_statements=statements
        )
    return ScanOutcome(report, policy.evaluate(report, fail_on))


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
