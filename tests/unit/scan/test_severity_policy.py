"""Severity from CVSS and urgency, and the policy threshold."""

from __future__ import annotations

import pytest

from sedis.core.errors import InvalidInputError
from sedis.scan import policy
from sedis.scan.model import Finding, Inventory, Package, ScanReport
from sedis.scan.severity import CvssScore, Severity, assess, best, from_urgency, score_vector


def test_cvss_vectors_are_scored_by_the_library() -> None:
    v31 = score_vector("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "nvd")
    assert v31 is not None and v31.score == 9.8 and v31.version == "3.1"
    v4 = score_vector("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "x")
    assert v4 is not None and v4.version == "4.0" and v4.score == 9.3
    assert score_vector("CVSS:3.1/AV:X", "nvd") is None
    assert score_vector("AV:N/AC:L/Au:N/C:C/I:C/A:C", "nvd") is None  # v2 is not used


def test_cvss_wins_and_urgency_is_kept() -> None:
    s = CvssScore("3.1", "v", 9.8, "nvd")
    a = assess(s, "unimportant")
    assert (a.severity, a.urgency, a.basis) == (Severity.CRITICAL, "unimportant", "cvss")
    fallback = assess(None, "unimportant")
    assert (fallback.severity, fallback.basis) == (Severity.LOW, "urgency")
    assert assess(None, "not yet assigned").severity is Severity.UNKNOWN
    assert from_urgency("low**") is Severity.LOW


def test_record_vector_beats_nvd_and_v4_beats_v3() -> None:
    nvd = CvssScore("3.1", "a", 9.8, "nvd")
    own = CvssScore("3.1", "b", 5.6, "GHSA-x")
    own4 = CvssScore("4.0", "c", 6.0, "GHSA-x")
    assert best([nvd, own], frozenset({"GHSA-x"})) is own
    assert best([nvd, own, own4], frozenset({"GHSA-x"})) is own4
    assert best([nvd], frozenset({"GHSA-x"})) is nvd


def _finding(sev: Severity, fid: str = "CVE-1") -> Finding:
    pkg = Package("deb", "zlib1g", "1", "zlib", "1", "Debian:12", "pkg:deb/debian/zlib1g@1", "p")
    return Finding(fid, (), pkg, None, sev, None, None, "", ("osv",))


def test_policy_threshold() -> None:
    report = ScanReport(
        "t",
        Inventory(None, ()),
        [_finding(Severity.HIGH, "A"), _finding(Severity.LOW, "B")],
        "d",
        "now",
    )
    assert policy.evaluate(report, Severity.CRITICAL).passed
    v = policy.evaluate(report, Severity.HIGH)
    assert not v.passed and [f.id for f in v.violations] == ["A"]
    assert "A (high) in zlib1g" in v.describe()
    assert len(policy.evaluate(report, Severity.LOW).violations) == 2
    assert policy.evaluate(report, None).passed
    assert report.counts() == {"critical": 0, "high": 1, "medium": 0, "low": 1, "unknown": 0}


def test_thresholds_parse() -> None:
    assert policy.parse_threshold("Critical") is Severity.CRITICAL
    assert policy.parse_threshold("none") is None
    with pytest.raises(InvalidInputError, match="unknown severity"):
        policy.parse_threshold("severe")
