"""`sedis scan` and `sedis vulndb` through the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.unit.scan.roots import DATA, DEBIAN_OS, dpkg_stanza, write_root


def _root(tmp_path: Path) -> Path:
    status = (
        dpkg_stanza("zlib1g", "1:1.2.13.dfsg-1", "zlib")
        + dpkg_stanza("libc6", "2.36-9+deb12u2", "glibc")
        + dpkg_stanza("apt", "2.6.1")
    )
    return write_root(
        tmp_path / "root", {"etc/os-release": DEBIAN_OS, "var/lib/dpkg/status": status}
    )


def test_import_status_scan_and_fail_on(sedis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = sedis("vulndb", "status")
    assert r.code == 3 and "sedis vulndb import" in r.stderr
    r = sedis(
        "vulndb",
        "import",
        str(DATA / "osv"),
        str(DATA / "debian-tracker.json"),
        str(DATA / "nvd-cves.json"),
        "-o",
        "json",
    )
    assert r.code == 0, r.stderr
    imported = json.loads(r.stdout)
    assert imported["records"] == {"osv": 5, "debian-tracker": 7, "nvd": 7}
    status = json.loads(sedis("vulndb", "status", "-o", "json").stdout)
    assert status["snapshot"] == imported["snapshot"]
    assert {s["name"]: s["records"] for s in status["sources"]} == imported["records"]
    root = _root(tmp_path)

    table = sedis("scan", f"dir:{root}")
    assert table.code == 0, table.stderr
    assert "CRITICAL (1)" in table.stdout and "CVE-2023-45853" in table.stdout
    assert "zlib1g" in table.stdout and "no fix" in table.stdout

    refused = sedis("scan", f"dir:{root}", "--fail-on", "critical", "--format", "json")
    assert refused.code == 1
    assert "1 finding(s) at or above critical: CVE-2023-45853" in refused.stderr
    report = json.loads(refused.stdout)
    assert report["counts"]["critical"] == 1 and report["vulndb_digest"] == status["snapshot"]

    high = sedis("scan", f"dir:{root}", "--fail-on", "high", "--ignore-unfixed", "-o", "json")
    assert high.code == 1 and "CVE-2023-4911 (high) in libc6" in high.stderr
    assert sedis("scan", f"dir:{root}", "--fail-on", "critical", "--ignore-unfixed").code == 0

    sarif = sedis("scan", f"dir:{root}", "--format", "sarif")
    assert json.loads(sarif.stdout)["version"] == "2.1.0"
    out = tmp_path / "bom.json"
    cdx = sedis("scan", f"dir:{root}", "--format", "cyclonedx", "--report", str(out))
    assert cdx.code == 0 and json.loads(out.read_text())["specVersion"] == "1.6"


def test_scan_refusals_are_one_line(sedis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sedis("vulndb", "import", str(DATA / "osv"))
    root = _root(tmp_path)
    cases = [
        (("scan", f"dir:{tmp_path / 'nope'}"), "is not a directory"),
        (("scan", f"dir:{root}", "--fail-on", "severe"), "unknown severity 'severe'"),
        (("scan", str(root)), f"dir:{root}"),
        (("scan", "oci:/nonexistent/layout:latest"), "/nonexistent/layout"),
        (("scan", f"dir:{root}", "--vex", str(DATA / "nvd-cves.json")), "not an OpenVEX"),
        (("vulndb", "import", str(tmp_path / "missing.json")), "no such file"),
    ]
    for args, message in cases:
        r = sedis(*args)
        assert r.code != 0 and message in r.stderr, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_help_starts_fast() -> None:
    exe = shutil.which("sedis", path=str(Path(sys.executable).parent))
    assert exe is not None
    subprocess.run([exe, "--help"], capture_output=True, check=True)  # warm the disk cache
    start = time.perf_counter()
    subprocess.run([exe, "scan", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - start < 0.5
