"""The scanner's values: packages found in an image, findings, and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sedis.scan.severity import CvssScore, Severity

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class OSInfo:
    id: str  # os-release ID: debian, alpine, ubuntu, rhel, ...
    version_id: str
    pretty_name: str
    ecosystem: str | None  # the OSV ecosystem its packages are matched in


@dataclass(frozen=True, slots=True)
class Package:
    kind: str  # deb, apk, rpm, python, npm
    name: str
    version: str
    source_name: str  # the source package (deb, apk origin, srpm); the name otherwise
    source_version: str
    ecosystem: str | None  # None: an OS package on an OS the scanner cannot place
    purl: str
    path: str  # the file it was read from, inside the image
    layer: int | None = None
    arch: str | None = None
    license: str | None = None

    @property
    def ref(self) -> str:
        """A key unique within one inventory (two arches or paths may share a name)."""
        return f"{self.purl}#{self.path}"


@dataclass(frozen=True, slots=True)
class Inventory:
    os: OSInfo | None
    packages: tuple[Package, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    id: str  # the CVE id when one is known: records of one CVE merge into one finding
    aliases: tuple[str, ...]  # every other id seen for it (DSA, DEBIAN-CVE, GHSA, ...)
    package: Package
    fixed: str | None  # None: affected, and no fix is known
    severity: Severity
    cvss: CvssScore | None
    urgency: str | None  # the distro's own rating, kept beside the CVSS
    summary: str
    sources: tuple[str, ...]  # which imported feeds said so
    references: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


@dataclass(frozen=True, slots=True)
class Suppressed:
    finding: Finding
    statement: str  # why: the VEX justification or impact statement


@dataclass
class ScanReport:
    target: str
    inventory: Inventory
    findings: list[Finding]
    vulndb_digest: str
    scanned_at: str  # RFC 3339, UTC
    suppressed: list[Suppressed] = field(default_factory=list)
    ignored_unfixed: int = 0
    _cyclonedx: bytes | None = field(default=None, repr=False)

    def counts(self) -> Mapping[str, int]:
        out = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for f in self.findings:
            out[f.severity.label] += 1
        return out

    def cyclonedx(self) -> bytes:
        """The CycloneDX 1.6 JSON document (SBOM and vulnerabilities), cached."""
        if self._cyclonedx is None:
            from sedis.scan.report.cyclonedx import render

            self._cyclonedx = render(self)
        return self._cyclonedx

    def cyclonedx_digest(self) -> str:
        import hashlib

        return "sha256:" + hashlib.sha256(self.cyclonedx()).hexdigest()
