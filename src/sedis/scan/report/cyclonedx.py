"""The report as CycloneDX 1.6 JSON: the SBOM and its vulnerabilities.

The serial number is derived from the content, so the same scan of the same
image against the same database gives the same bytes (and digest).

The library's serializer writes what its typed model holds, and the tests
check its output with the library's strict schema validator. The command does
not validate again: the validator's import alone takes 0.75 s (jsonschema's
format checks build dozens of IRI parsers), and its uniqueItems checks grow
with the square of the findings, which is seconds on every scanned publish.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sedis import __version__
from sedis.scan.model import ScanReport
from sedis.scan.policy import worst_first
from sedis.scan.severity import Severity


def render(report: ScanReport) -> bytes:
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.contact import OrganizationalEntity
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.model.vulnerability import (
        BomTarget,
        BomTargetVersionRange,
        Vulnerability,
        VulnerabilityRating,
        VulnerabilityReference,
        VulnerabilityScoreSource,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from packageurl import PackageURL

    inv = report.inventory
    subject = Component(
        name=report.target or "rootfs", type=ComponentType.CONTAINER, bom_ref="image"
    )
    tools = ToolRepository(
        components=[
            Component(
                name="sedis",
                version=__version__,
                type=ComponentType.APPLICATION,
                supplier=OrganizationalEntity(name="sedis"),
            )
        ]
    )
    meta = BomMetaData(
        component=subject,
        tools=tools,
        timestamp=datetime.fromisoformat(report.scanned_at.replace("Z", "+00:00")),
    )
    from cyclonedx.model import Property

    components = []
    refs: dict[str, str] = {}
    for n, p in enumerate(inv.packages):
        ref = f"pkg-{n}"
        refs[p.ref] = ref
        props = [
            Property(name="sedis:package:kind", value=p.kind),
            Property(name="sedis:package:path", value=p.path),
        ]
        if p.source_name != p.name or p.source_version != p.version:
            props.append(
                Property(name="sedis:package:source", value=f"{p.source_name} {p.source_version}")
            )
        if p.layer is not None:
            props.append(Property(name="sedis:package:layer", value=str(p.layer)))
        components.append(
            Component(
                name=p.name,
                version=p.version,
                purl=PackageURL.from_string(p.purl),
                bom_ref=ref,
                type=ComponentType.LIBRARY,
                properties=props,
            )
        )
    vulns = []
    for n, f in enumerate(worst_first(report.findings)):
        ratings = []
        if f.cvss is not None:
            method = (
                VulnerabilityScoreSource.CVSS_V4
                if f.cvss.version == "4.0"
                else VulnerabilityScoreSource.CVSS_V3_1
                if f.cvss.version == "3.1"
                else VulnerabilityScoreSource.CVSS_V3
            )
            ratings.append(
                VulnerabilityRating(
                    source=VulnerabilitySource(name=f.cvss.origin),
                    score=_decimal(f.cvss.score),
                    severity=_cdx_severity(VulnerabilitySeverity, f.severity),
                    method=method,
                    vector=f.cvss.vector,
                )
            )
        if f.urgency:
            ratings.append(
                VulnerabilityRating(
                    source=VulnerabilitySource(name="distro"),
                    severity=_cdx_severity(VulnerabilitySeverity, _urgency_level(f.urgency)),
                    method=VulnerabilityScoreSource.OTHER,
                    justification=f"urgency: {f.urgency}",
                )
            )
        affected_range = BomTargetVersionRange(version=f.package.version)
        vulns.append(
            Vulnerability(
                bom_ref=f"vuln-{n}",
                id=f.id,
                source=VulnerabilitySource(name=",".join(f.sources)),
                references=[
                    VulnerabilityReference(id=a, source=VulnerabilitySource(name=a.split("-")[0]))
                    for a in f.aliases
                ],
                ratings=ratings,
                description=f.summary or None,
                recommendation=f"Upgrade to {f.fixed}" if f.fixed else "No fix is known",
                affects=[BomTarget(ref=refs[f.package.ref], versions=[affected_range])],
            )
        )
    bom = Bom(components=components, metadata=meta, vulnerabilities=vulns)
    # Every package sits in the image; that is all the graph an inventory can know.
    bom.register_dependency(subject, components)
    bom.serial_number = uuid.uuid5(
        uuid.NAMESPACE_URL, f"sedis:{report.target}:{report.vulndb_digest}:{report.scanned_at}"
    )
    out = make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=None)
    return out.encode()


def _decimal(score: float) -> Any:
    from decimal import Decimal

    return Decimal(str(score))


def _urgency_level(urgency: str) -> Severity:
    from sedis.scan.severity import from_urgency

    return from_urgency(urgency)


def _cdx_severity(enum: Any, sev: Severity) -> Any:
    return {
        Severity.CRITICAL: enum.CRITICAL,
        Severity.HIGH: enum.HIGH,
        Severity.MEDIUM: enum.MEDIUM,
        Severity.LOW: enum.LOW,
        Severity.UNKNOWN: enum.UNKNOWN,
    }[sev]
