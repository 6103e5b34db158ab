"""Every committed advisory, matched at affected versions and not at fixed ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sedis.scan import policy
from sedis.scan.model import ScanReport
from sedis.scan.rootfs import DirRootFS
from sedis.scan.service import load_vex, scan_rootfs
from sedis.scan.severity import Severity
from sedis.scan.vulndb.db import VulnDB
from sedis.scan.vulndb.importer import import_paths
from tests.cyclonedx_schema import strictly_valid
from tests.unit.scan.roots import ALPINE_OS, DATA, DEBIAN_OS, dpkg_stanza, write_root

FEEDS = [
    DATA / "osv",
    DATA / "debian-tracker.json",
    DATA / "alpine-v3.19-main.json",
    DATA / "nvd-cves.json",
]
WHEN = datetime(2025, 5, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vulndb") / "vulndb.sqlite"
    db = VulnDB.open(path, create=True)
    import_paths(db, FEEDS, "2025-05-20T00:00:00Z")
    db.close()
    return path


def debian_root(
    tmp_path: Path, packages: list[tuple[str, str, str | None]], extra: dict[str, str] | None = None
) -> Path:
    status = "".join(dpkg_stanza(n, v, s) for n, v, s in packages)
    return write_root(
        tmp_path, {"etc/os-release": DEBIAN_OS, "var/lib/dpkg/status": status, **(extra or {})}
    )


def scan(root: Path, db_path: Path, **kw: object) -> ScanReport:
    return scan_rootfs(DirRootFS(root), db_path, target="test", now=WHEN, **kw)  # type: ignore[arg-type]


def by_id(report: ScanReport) -> dict[tuple[str, str], object]:
    return {(f.package.name, f.id): f for f in report.findings}


AFFECTED = [
    ("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
    ("libc6", "2.36-9+deb12u2", "glibc"),
    ("tar", "1.34+dfsg-1.2", None),
    ("apt", "2.6.1", None),
    ("util-linux", "2.38.1-5", None),
    ("liblzma5", "5.4.1-1", "xz-utils"),
]
FIXED = [
    ("libc6", "2.36-9+deb12u3", "glibc"),
    ("tar", "1.34+dfsg-1.2+deb12u1", None),
    ("util-linux", "2.38.1-5+deb12u1", None),
    ("liblzma5", "5.4.1-1", "xz-utils"),
]


def test_debian_advisories_at_affected_versions(tmp_path: Path, db_path: Path) -> None:
    report = scan(debian_root(tmp_path, AFFECTED), db_path)
    found = {(f.package.name, f.id): f for f in report.findings}
    assert set(found) == {
        ("zlib1g", "CVE-2023-45853"),
        ("libc6", "CVE-2023-4911"),
        ("tar", "CVE-2005-2541"),
        ("tar", "CVE-2023-39804"),
        ("apt", "CVE-2011-3374"),
        ("util-linux", "CVE-2024-28085"),
    }  # and not CVE-2024-3094: bookworm's xz-utils was never affected (fixed "0")
    zlib = found[("zlib1g", "CVE-2023-45853")]
    assert zlib.fixed is None and zlib.severity is Severity.CRITICAL
    assert zlib.cvss is not None and zlib.cvss.score == 9.8 and zlib.cvss.origin == "nvd"
    assert zlib.aliases == ("DEBIAN-CVE-2023-45853",)
    assert zlib.sources == ("debian-tracker", "osv")
    glibc = found[("libc6", "CVE-2023-4911")]
    # The DEBIAN-CVE record, the tracker's entry and the DSA are one finding.
    assert glibc.aliases == ("DEBIAN-CVE-2023-4911", "DSA-5514-1")
    assert glibc.fixed == "2.36-9+deb12u3" and glibc.severity is Severity.HIGH
    tar = found[("tar", "CVE-2005-2541")]
    # NVD has only a CVSS v2 score for it: the distro urgency decides.
    assert (tar.severity, tar.cvss, tar.urgency) == (Severity.LOW, None, "unimportant")
    assert found[("tar", "CVE-2023-39804")].fixed == "1.34+dfsg-1.2+deb12u1"
    assert found[("apt", "CVE-2011-3374")].severity is Severity.LOW


def test_debian_advisories_not_at_fixed_versions(tmp_path: Path, db_path: Path) -> None:
    found = [(f.package.name, f.id) for f in scan(debian_root(tmp_path, FIXED), db_path).findings]
    # tar's CVE-2005-2541 stays open in every release: it is the only one left.
    assert found == [("tar", "CVE-2005-2541")]


def test_matching_uses_the_source_version(tmp_path: Path, db_path: Path) -> None:
    # A binNMU (+b1) of a fixed source is fixed; the binary name is not what advisories name.
    root = debian_root(
        tmp_path,
        [
            ("libc-bin", "2.36-9+deb12u3+b1", "glibc (2.36-9+deb12u3)"),
            ("libc-l10n", "2.36-9+deb12u2", "glibc"),
        ],
    )
    assert [(f.package.name, f.id) for f in scan(root, db_path).findings] == [
        ("libc-l10n", "CVE-2023-4911")
    ]


def test_alpine_secdb(tmp_path: Path, db_path: Path) -> None:
    def root(version: str) -> Path:
        d = tmp_path / version
        return write_root(
            d,
            {
                "etc/os-release": ALPINE_OS,
                "lib/apk/db/installed": f"P:zlib\nV:{version}\nA:x86_64\no:zlib\n",
            },
        )

    report = scan(root("1.2.12-r1"), db_path)
    assert [(f.id, f.fixed, f.severity) for f in report.findings] == [
        ("CVE-2022-37434", "1.2.12-r2", Severity.CRITICAL)
    ]
    assert strictly_valid(report.cyclonedx())["vulnerabilities"][0]["id"] == "CVE-2022-37434"
    old = {f.id for f in scan(root("1.2.11-r3"), db_path).findings}
    assert old == {"CVE-2022-37434", "CVE-2018-25032"}  # and never CVE-2023-45853 ("0")
    assert scan(root("1.2.12-r2"), db_path).findings == []
    assert scan(root("1.3.1-r0"), db_path).findings == []


def test_language_advisories(tmp_path: Path, db_path: Path) -> None:
    def root(req: str, lodash: str) -> Path:
        d = tmp_path / f"{req}-{lodash}"
        return write_root(
            d,
            {
                f"usr/lib/python3.11/site-packages/requests-{req}.dist-info/METADATA": (
                    f"Metadata-Version: 2.1\nName: requests\nVersion: {req}\n"
                ),
                "srv/node_modules/lodash/package.json": json.dumps(
                    {"name": "lodash", "version": lodash}
                ),
            },
        )

    report = scan(root("2.31.0", "4.17.20"), db_path)
    found = {f.id: f for f in report.findings}
    assert set(found) == {"CVE-2024-35195", "CVE-2021-23337"}
    bom = strictly_valid(report.cyclonedx())
    assert {c["purl"] for c in bom["components"]} == {
        "pkg:pypi/requests@2.31.0",
        "pkg:npm/lodash@4.17.20",
    }
    req = found["CVE-2024-35195"]
    # The advisory's own vector (5.6) is used, and the GHSA id is kept.
    assert req.aliases == ("GHSA-9wx4-h78v-vm56",) and req.fixed == "2.32.0"
    assert req.cvss is not None and req.cvss.score == 5.6 and req.severity is Severity.MEDIUM
    assert found["CVE-2021-23337"].severity is Severity.HIGH
    assert scan(root("2.32.0", "4.17.21"), db_path).findings == []
    assert scan(root("2.32.3", "4.18.0"), db_path).findings == []


def test_ignore_unfixed_and_vex(tmp_path: Path, db_path: Path) -> None:
    root = debian_root(tmp_path, AFFECTED)
    report = scan(root, db_path, ignore_unfixed=True)
    assert all(f.fixed for f in report.findings) and report.ignored_unfixed == 3
    vex_file = tmp_path / "vex.json"
    vex_file.write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns/v0.2.0",
                "@id": "https://example.com/vex/1",
                "author": "test",
                "timestamp": "2025-05-20T00:00:00Z",
                "version": 1,
                "statements": [
                    {
                        "vulnerability": {"name": "CVE-2023-45853"},
                        "status": "not_affected",
                        "justification": "vulnerable_code_not_present",
                        "products": [
                            {
                                "@id": "pkg:oci/test@sha256:abc",
                                "subcomponents": [{"@id": "pkg:deb/debian/zlib1g"}],
                            }
                        ],
                    },
                    {
                        "vulnerability": {"name": "CVE-2011-3374"},
                        "status": "affected",
                        "products": [{"@id": "pkg:deb/debian/apt"}],
                    },
                    {
                        "vulnerability": {"name": "DSA-5514-1"},
                        "status": "not_affected",
                        "justification": "vulnerable_code_not_in_execute_path",
                        "products": [{"@id": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u2"}],
                    },
                ],
            }
        )
    )
    report = scan(root, db_path, vex_statements=load_vex(vex_file))
    ids = {f.id for f in report.findings}
    assert "CVE-2023-45853" not in ids and "CVE-2023-4911" not in ids
    assert "CVE-2011-3374" in ids
    assert {s.finding.id: s.statement for s in report.suppressed} == {
        "CVE-2023-45853": "vulnerable_code_not_present",
        "CVE-2023-4911": "vulnerable_code_not_in_execute_path",
    }
    assert policy.evaluate(report, Severity.CRITICAL).passed
    # What VEX suppressed is not in the report; the rest is, and validates.
    listed = {v["id"] for v in strictly_valid(report.cyclonedx())["vulnerabilities"]}
    assert listed == ids


def test_a_clean_scan_renders_a_valid_report_with_no_vulnerabilities(
    tmp_path: Path, db_path: Path
) -> None:
    report = scan(debian_root(tmp_path, [("zlib1g", "1:1.3.dfsg+really1.3.1-1", None)]), db_path)
    assert report.findings == []
    bom = strictly_valid(report.cyclonedx())
    assert bom.get("vulnerabilities", []) == [] and len(bom["components"]) == 1


def test_report_formats(tmp_path: Path, db_path: Path) -> None:
    from sedis.scan.report import jsonout, sarif

    report = scan(debian_root(tmp_path, AFFECTED), db_path)
    cdx = strictly_valid(report.cyclonedx())
    assert cdx["specVersion"] == "1.6" and len(cdx["components"]) == len(AFFECTED)
    assert {v["id"] for v in cdx["vulnerabilities"]} == {f.id for f in report.findings}
    assert report.cyclonedx() == scan(debian_root(tmp_path, AFFECTED), db_path).cyclonedx()
    assert report.cyclonedx_digest().startswith("sha256:")
    doc = sarif.render(report)
    assert doc["version"] == "2.1.0"
    results = doc["runs"][0]["results"]
    assert results[0]["ruleId"] == "CVE-2023-45853" and results[0]["level"] == "error"
    out = jsonout.render(report)
    assert out["counts"] == {"critical": 1, "high": 1, "medium": 0, "low": 2, "unknown": 2}
    assert out["findings"][0]["status"] == "affected, no fix"
    assert out["vulndb_digest"] == report.vulndb_digest


def test_ledger_summary(tmp_path: Path, db_path: Path) -> None:
    from sedis.scan.service import summary

    report = scan(debian_root(tmp_path, AFFECTED), db_path)
    s = summary(report, report_cid="bafyexample")
    assert (s.critical, s.high, s.medium, s.low, s.unknown) == (1, 1, 0, 2, 2)
    assert s.report_digest == report.cyclonedx_digest() and s.report_cid == "bafyexample"
    assert not s.not_scanned


def test_the_strict_check_refuses_what_the_schema_does_not_allow(
    tmp_path: Path, db_path: Path
) -> None:
    bom = json.loads(scan(debian_root(tmp_path, AFFECTED), db_path).cyclonedx())
    bom["vulnerabilities"][0]["ratings"][0]["severity"] = "catastrophic"
    with pytest.raises(AssertionError, match="does not validate"):
        strictly_valid(json.dumps(bom).encode())
