"""Scanning an artifact and looking after the vulnerability database, as use cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.scan.severity import Severity
from sedis.service import scanning, vulndb_admin
from sedis.service.engines import Engines
from tests.unit.scan.roots import DATA, DEBIAN_OS, dpkg_stanza, write_root

FEEDS = [DATA / "osv", DATA / "debian-tracker.json", DATA / "nvd-cves.json"]


def _root(tmp_path: Path) -> Path:
    status = dpkg_stanza("zlib1g", "1:1.2.13.dfsg-1", "zlib") + dpkg_stanza(
        "libc6", "2.36-9+deb12u2", "glibc"
    )
    return write_root(
        tmp_path / "root", {"etc/os-release": DEBIAN_OS, "var/lib/dpkg/status": status}
    )


def test_status_needs_a_database(engines: Engines) -> None:
    with pytest.raises(NotFoundError, match="sedis vulndb import"):
        vulndb_admin.status(engines)
    assert not engines.vulndb.exists()


def test_import_then_status_agree(engines: Engines) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    imported = vulndb_admin.import_feeds(engines, FEEDS, now=when)
    assert dict(imported.records) == {"osv": 5, "debian-tracker": 7, "nvd": 7}
    described = vulndb_admin.status(engines)
    assert described.path == str(engines.vulndb)
    assert described.digest == imported.snapshot
    assert {s.name: s.records for s in described.sources} == imported.records
    assert {s.imported_at for s in described.sources} == {"2026-01-02T03:04:05Z"}
    assert sum(len(s.files) for s in described.sources) == imported.files


def test_a_bad_feed_imports_nothing(engines: Engines, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such file"):
        vulndb_admin.import_feeds(engines, [DATA / "osv", tmp_path / "missing.json"])
    assert vulndb_admin.status(engines).sources == []


def test_scan_reports_and_judges(engines: Engines, tmp_path: Path) -> None:
    vulndb_admin.import_feeds(engines, FEEDS)
    target = f"dir:{_root(tmp_path)}"

    passing = scanning.scan_artifact(engines, target, fail_on=None)
    assert passing.verdict.passed
    assert passing.report.target == target
    assert passing.report.counts()["critical"] == 1

    refused = scanning.scan_artifact(engines, target, fail_on=Severity.CRITICAL)
    assert not refused.verdict.passed
    assert [f.id for f in refused.verdict.violations] == ["CVE-2023-45853"]

    # The only critical finding has no fix: hiding unfixed ones leaves the high one.
    fixable = scanning.scan_artifact(engines, target, fail_on=Severity.HIGH, ignore_unfixed=True)
    assert [f.id for f in fixable.verdict.violations] == ["CVE-2023-4911"]
    assert fixable.report.ignored_unfixed == 1


def test_scan_refusals(engines: Engines, tmp_path: Path) -> None:
    root = _root(tmp_path)
    with pytest.raises(NotFoundError, match="no vulnerability database"):
        scanning.scan_artifact(engines, f"dir:{root}", fail_on=None)
    vulndb_admin.import_feeds(engines, FEEDS)
    with pytest.raises(InvalidInputError, match=f"as dir:{root}$"):
        scanning.scan_artifact(engines, str(root), fail_on=None)
    with pytest.raises(InvalidInputError, match="not an OpenVEX"):
        scanning.scan_artifact(
            engines, str(root), fail_on=None, vex=[DATA / "nvd-cves.json"]
        )  # the VEX file is read, and refused, before the target is looked at
