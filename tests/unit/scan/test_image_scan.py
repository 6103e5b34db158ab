"""Scanning image references: layers merged with whiteouts, layer attribution, VEX by digest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sedis.core.errors import InvalidInputError
from sedis.scan.image import scan_image
from sedis.scan.service import load_vex
from sedis.scan.vulndb.db import VulnDB
from sedis.scan.vulndb.importer import import_paths
from tests.oci_images import directory, file, make_image, make_tar, write_layout
from tests.unit.scan.roots import DATA, DEBIAN_OS, dpkg_stanza


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "vulndb.sqlite"
    db = VulnDB.open(path, create=True)
    import_paths(db, [DATA / "osv", DATA / "nvd-cves.json"], "2025-05-20T00:00:00Z")
    db.close()
    return path


def _layout(tmp_path: Path) -> tuple[Path, str]:
    site = "usr/lib/python3/dist-packages"
    base = make_tar(
        [
            directory("etc"),
            file("etc/os-release", DEBIAN_OS),
            directory("var"),
            directory("var/lib"),
            directory("var/lib/dpkg"),
            directory("var/lib/dpkg/info"),
            file(
                "var/lib/dpkg/status",
                dpkg_stanza("zlib1g", "1:1.2.13.dfsg-1", "zlib")
                + dpkg_stanza("libc6", "2.36-9+deb12u2", "glibc"),
            ),
            file("var/lib/dpkg/info/zlib1g:amd64.list", "/.\n"),
            file("var/lib/dpkg/info/libc6:amd64.list", "/.\n"),
            directory("usr"),
            directory("usr/lib"),
            directory("usr/lib/python3"),
            directory(site),
            directory(f"{site}/requests-2.31.0.dist-info"),
            file(
                f"{site}/requests-2.31.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
            ),
        ]
    )
    # The upgrade layer: glibc fixed (its .list rewritten here), requests removed.
    upgrade = make_tar(
        [
            directory("var"),
            directory("var/lib"),
            directory("var/lib/dpkg"),
            directory("var/lib/dpkg/info"),
            file(
                "var/lib/dpkg/status",
                dpkg_stanza("zlib1g", "1:1.2.13.dfsg-1", "zlib")
                + dpkg_stanza("libc6", "2.36-9+deb12u3", "glibc"),
            ),
            file("var/lib/dpkg/info/libc6:amd64.list", "/.\n"),
            directory("usr"),
            directory("usr/lib"),
            directory("usr/lib/python3"),
            directory(site),
            file(f"{site}/.wh.requests-2.31.0.dist-info"),
        ]
    )
    image = make_image([base, upgrade])
    return write_layout(tmp_path / "layout", image), image.digest


def test_image_layers_are_merged(tmp_path: Path, db_path: Path) -> None:
    layout, digest = _layout(tmp_path)
    report = scan_image(f"oci:{layout}:latest", db_path)
    pkgs = {p.name: p for p in report.inventory.packages}
    assert set(pkgs) == {"zlib1g", "libc6"}  # requests was whited out
    assert pkgs["zlib1g"].layer == 0 and pkgs["libc6"].layer == 1
    assert pkgs["libc6"].version == "2.36-9+deb12u3"
    assert [(f.id, f.package.layer) for f in report.findings] == [("CVE-2023-45853", 0)]
    assert report.target == f"oci:{layout}:latest"

    vex = tmp_path / "vex.json"
    vex.write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns/v0.2.0",
                "statements": [
                    {
                        "vulnerability": {"name": "CVE-2023-45853"},
                        "status": "not_affected",
                        "justification": "vulnerable_code_not_present",
                        "products": [{"@id": f"pkg:oci/app@{digest.replace(':', '%3A')}"}],
                    }
                ],
            }
        )
    )
    suppressed = scan_image(f"oci:{layout}:latest", db_path, vex_statements=load_vex(vex))
    assert suppressed.findings == [] and len(suppressed.suppressed) == 1
    other = vex.read_text().replace(digest[7:], "0" * 64)
    vex.write_text(other)
    kept = scan_image(f"oci:{layout}:latest", db_path, vex_statements=load_vex(vex))
    assert [f.id for f in kept.findings] == ["CVE-2023-45853"]


def test_encrypted_layers_are_refused(tmp_path: Path, db_path: Path) -> None:
    tar = make_tar([file("etc/os-release", DEBIAN_OS)])
    image = make_image([tar], layer_type="application/vnd.oci.image.layer.v1.tar+gzip+encrypted")
    layout = write_layout(tmp_path / "enc", image)
    with pytest.raises(InvalidInputError, match="is encrypted"):
        scan_image(f"oci:{layout}:latest", db_path)
