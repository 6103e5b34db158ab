"""Matching an inventory against advisories, and merging what several feeds say.

OS packages are looked up by their source package (that is what Debian,
Alpine and rpm advisories name) and compared at the source version; language
packages by their own name and version. Records of one CVE (DSA, DEBIAN-CVE,
GHSA, the tracker's CVE entry) become one finding per package.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sedis.scan import ranges, severity
from sedis.scan.model import Finding, Package
from sedis.scan.versions import Scheme, VersionError, parse, scheme_for

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_OS_KINDS = frozenset({"deb", "apk", "rpm"})

Lookup = Callable[[str, str], list[dict[str, Any]]]
CvssLookup = Callable[[str], "dict[str, Any] | None"]


@dataclass
class _Hit:
    record: dict[str, Any]
    verdict: ranges.Verdict
    entry: dict[str, Any]


@dataclass
class _Merged:
    key: str
    ids: set[str] = field(default_factory=set)
    hits: list[_Hit] = field(default_factory=list)


def cves_of(record: Mapping[str, Any]) -> list[str]:
    ids = [record["id"], *record.get("aliases", ()), *record.get("upstream", ())]
    return sorted({i for i in ids if _CVE.match(i)})


def _names(pkg: Package) -> list[str]:
    if pkg.kind in _OS_KINDS:
        # rpm advisories name binary packages in some feeds and source rpms in others.
        return [pkg.source_name] + (
            [pkg.name] if pkg.kind == "rpm" and pkg.name != pkg.source_name else []
        )
    return [pkg.name]


def _version(pkg: Package) -> str:
    return pkg.source_version if pkg.kind in _OS_KINDS else pkg.version


def match_package(pkg: Package, lookup: Lookup) -> list[_Hit]:
    if pkg.ecosystem is None:
        return []
    version = _version(pkg)
    hits = []
    for name in _names(pkg):
        for record in lookup(pkg.ecosystem, name):
            for entry in record.get("affected", ()):
                if not _names_this(entry, pkg.ecosystem, name):
                    continue
                verdict = ranges.evaluate(entry, version)
                if verdict.affected:
                    hits.append(_Hit(record, verdict, entry))
    return hits


def _names_this(entry: Mapping[str, Any], ecosystem: str, name: str) -> bool:
    from sedis.scan.vulndb.records import package_key

    return package_key(str(entry["ecosystem"]), str(entry["name"])) == package_key(ecosystem, name)


def _merge(hits: list[_Hit]) -> list[_Merged]:
    """One group per CVE. A record of several CVEs (a DSA) joins the groups of the
    CVEs it covers; it stands alone only when no per-CVE record found them."""
    groups: dict[str, _Merged] = {}
    multi: list[_Hit] = []
    for hit in hits:
        cves = cves_of(hit.record)
        if len(cves) > 1:
            multi.append(hit)
            continue
        key = cves[0] if cves else hit.record["id"]
        group = groups.setdefault(key, _Merged(key))
        group.hits.append(hit)
        group.ids.add(hit.record["id"])
        group.ids.update(hit.record.get("aliases", ()))
    for hit in multi:
        cves = cves_of(hit.record)
        covered = [groups[c] for c in cves if c in groups]
        if not covered:
            key = hit.record["id"]
            covered = [groups.setdefault(key, _Merged(key))]
            covered[0].hits.append(hit)
            covered[0].ids.update(cves)
        for group in covered:
            group.ids.add(hit.record["id"])
    return list(groups.values())


def _max_fix(scheme: Scheme | None, fixes: list[str]) -> str | None:
    if not fixes:
        return None
    if scheme is None:
        return fixes[0]
    try:
        return max(fixes, key=lambda f: parse(scheme, f))
    except VersionError:
        return fixes[0]


def _cvss_scores(
    group: _Merged, cvss_lookup: CvssLookup
) -> tuple[list[severity.CvssScore], frozenset[str]]:
    scores: list[severity.CvssScore] = []
    own: set[str] = set()
    for hit in group.hits:
        rid = hit.record["id"]
        own.add(rid)
        for item in [*hit.record.get("severity", ()), *hit.entry.get("severity", ())]:
            if item.get("type") in ("CVSS_V3", "CVSS_V4"):
                s = severity.score_vector(item["score"], rid)
                if s is not None:
                    scores.append(s)
    for cve in sorted(i for i in group.ids | {group.key} if _CVE.match(i)):
        doc = cvss_lookup(cve)
        if not doc or doc.get("rejected"):
            continue
        primary = [v for v in doc.get("vectors", ()) if v.get("type") == "Primary"]
        for item in primary or doc.get("vectors", ()):
            s = severity.score_vector(item["vector"], "nvd")
            if s is not None:
                scores.append(s)
    return scores, frozenset(own)


def _urgency(group: _Merged) -> str | None:
    ranked = []
    for hit in group.hits:
        u = hit.entry.get("urgency")
        if isinstance(u, str):
            ranked.append((severity.from_urgency(u), u))
    return max(ranked)[1] if ranked else None


def _summary(group: _Merged, cvss_lookup: CvssLookup) -> str:
    for hit in group.hits:
        if hit.record.get("summary"):
            return str(hit.record["summary"])
    doc = cvss_lookup(group.key) if _CVE.match(group.key) else None
    return str(doc.get("summary", "")) if doc else ""


def findings_for(pkg: Package, hits: list[_Hit], cvss_lookup: CvssLookup) -> list[Finding]:
    out = []
    scheme = scheme_for(pkg.ecosystem or "")
    for group in _merge(hits):
        fixes = [h.verdict.fixed for h in group.hits]
        known = [f for f in fixes if f is not None]
        scores, own = _cvss_scores(group, cvss_lookup)
        assessed = severity.assess(severity.best(scores, own), _urgency(group))
        refs: list[str] = []
        for h in group.hits:
            refs.extend(r for r in h.record.get("references", ()) if r not in refs)
        out.append(
            Finding(
                id=group.key,
                aliases=tuple(sorted(group.ids - {group.key})),
                package=pkg,
                fixed=_max_fix(scheme, known),
                severity=assessed.severity,
                cvss=assessed.cvss,
                urgency=assessed.urgency,
                summary=_summary(group, cvss_lookup),
                sources=tuple(sorted({h.record.get("_source", "") for h in group.hits})),
                references=tuple(refs[:10]),
            )
        )
    return out


def match(packages: Iterable[Package], lookup: Lookup, cvss_lookup: CvssLookup) -> list[Finding]:
    cache: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def cached(ecosystem: str, name: str) -> list[dict[str, Any]]:
        key = (ecosystem, name)
        if key not in cache:
            cache[key] = lookup(ecosystem, name)
        return cache[key]

    cvss_cache: dict[str, dict[str, Any] | None] = {}

    def cvss_cached(cve: str) -> dict[str, Any] | None:
        if cve not in cvss_cache:
            cvss_cache[cve] = cvss_lookup(cve)
        return cvss_cache[cve]

    # Binary packages of one source (libc6, libc-bin, ...) share their verdicts.
    verdicts: dict[tuple[str | None, str, str, str], list[_Hit]] = {}
    findings: list[Finding] = []
    for pkg in packages:
        key = (pkg.ecosystem, pkg.kind, "\0".join(_names(pkg)), _version(pkg))
        if key not in verdicts:
            verdicts[key] = match_package(pkg, cached)
        findings.extend(findings_for(pkg, verdicts[key], cvss_cached))
    return findings
