"""The scanner on real roots: a debootstrap Debian image and an rpm-installed root."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sedis.scan import policy
from sedis.scan.inventory import collect
from sedis.scan.rootfs import DirRootFS
from sedis.scan.service import scan_rootfs
from sedis.scan.severity import Severity
from sedis.scan.vulndb.db import VulnDB
from sedis.scan.vulndb.importer import import_paths
from tests.cyclonedx_schema import strictly_valid
from tests.integration.scan.images import debian_rootfs, rpm_command, rpm_root

DATA = Path(__file__).resolve().parents[2] / "data" / "vulns"
pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def debian_root() -> Path:
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (make peers)")
    return debian_rootfs()


def test_debian_inventory_equals_dpkg_query(debian_root: Path) -> None:
    fmt = "${Package} ${Version} ${source:Package} ${source:Version}\n"
    oracle = subprocess.run(
        ["dpkg-query", f"--admindir={debian_root}/var/lib/dpkg", "-W", "-f", fmt],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    inv = collect(DirRootFS(debian_root))
    mine = [f"{p.name} {p.version} {p.source_name} {p.source_version}" for p in inv.packages]
    assert len(oracle) > 50
    assert mine == oracle
    assert inv.os is not None and inv.os.ecosystem == "Debian:12"


def test_debian_image_scan_and_gate(debian_root: Path, tmp_path: Path) -> None:
    db = VulnDB.open(tmp_path / "vulndb.sqlite", create=True)
    import_paths(
        db,
        [DATA / "osv", DATA / "debian-tracker.json", DATA / "nvd-cves.json"],
        "2025-05-20T00:00:00Z",
    )
    db.close()
    report = scan_rootfs(DirRootFS(debian_root), tmp_path / "vulndb.sqlite", target="debian")
    found = {(f.package.name, f.id) for f in report.findings}
    assert ("zlib1g", "CVE-2023-45853") in found  # unfixed in bookworm, CVSS 9.8
    assert ("apt", "CVE-2011-3374") in found
    assert not any(f.id == "CVE-2024-3094" for f in report.findings)
    verdict = policy.evaluate(report, Severity.CRITICAL)
    assert not verdict.passed and verdict.violations[0].id == "CVE-2023-45853"
    assert report.counts()["critical"] >= 1
    bom = strictly_valid(report.cyclonedx())
    assert len(bom["components"]) == len(report.inventory.packages)
    assert {v["id"] for v in bom["vulnerabilities"]} == {f.id for f in report.findings}


@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpm tools are not installed")
def test_rpm_inventory_from_a_real_rpmdb(tmp_path: Path) -> None:
    root = rpm_root(
        tmp_path, [("sedis-hello", "1.2.3", "4.el9", 2), ("sedis-other", "0.9", "1.el9", 0)]
    )
    assert (root / "var/lib/rpm/rpmdb.sqlite").is_file()
    oracle = subprocess.run(
        [
            *rpm_command(root),
            "-qa",
            "--qf",
            "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE} %{SOURCERPM}\\n",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    inv = collect(DirRootFS(root))
    mine = [
        f"{p.name} {p.version} {p.source_name}-{p.version.split(':')[-1]}.src.rpm"
        for p in inv.packages
    ]
    assert sorted(mine) == sorted(oracle)
    assert {p.ecosystem for p in inv.packages} == {"Rocky Linux:9"}
    hello = next(p for p in inv.packages if p.name == "sedis-hello")
    assert hello.version == "2:1.2.3-4.el9" and hello.license == "Apache-2.0"


def test_image_reference_scans_like_its_root(debian_root: Path, tmp_path: Path) -> None:
    from sedis.scan.image import scan_image
    from tests.integration.scan.images import debian_layout
    from tests.oci_images import require

    require("umoci")
    layout = debian_layout(tmp_path, debian_root)
    db = VulnDB.open(tmp_path / "vulndb.sqlite", create=True)
    import_paths(db, [DATA / "osv", DATA / "nvd-cves.json"], "2025-05-20T00:00:00Z")
    db.close()
    from_image = scan_image(f"oci:{layout}:12", tmp_path / "vulndb.sqlite")
    from_dir = scan_rootfs(DirRootFS(debian_root), tmp_path / "vulndb.sqlite")
    key = lambda p: (p.name, p.version, p.source_name, p.source_version, p.arch)  # noqa: E731
    assert [key(p) for p in from_image.inventory.packages] == [
        key(p) for p in from_dir.inventory.packages
    ]
    assert {p.layer for p in from_image.inventory.packages} == {0}
    assert [f.id for f in from_image.findings] == [f.id for f in from_dir.findings]


def test_busybox_image_has_an_empty_inventory(tmp_path: Path) -> None:
    from sedis.scan.image import scan_image
    from tests.oci_images import build_busybox

    layout = build_busybox(tmp_path)
    db = VulnDB.open(tmp_path / "vulndb.sqlite", create=True)
    import_paths(db, [DATA / "osv"], "2025-05-20T00:00:00Z")
    db.close()
    report = scan_image(f"oci:{layout}:latest", tmp_path / "vulndb.sqlite")
    assert report.inventory.packages == () and report.findings == []
    assert report.inventory.os is not None and report.inventory.os.ecosystem is None
