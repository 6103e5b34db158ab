"""Inventories of small roots: dpkg (status and status.d), apk, Python, npm, os-release."""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path

import pytest

from sedis.core.errors import InvalidInputError
from sedis.scan.inventory import collect, osrelease, rpmdb
from sedis.scan.rootfs import DirRootFS
from tests.unit.scan.roots import ALPINE_OS, DEBIAN_OS, dpkg_stanza, write_root


def test_dpkg_binary_and_source_with_epochs(tmp_path: Path) -> None:
    status = (
        dpkg_stanza("zlib1g", "1:1.2.13.dfsg-1", source="zlib")
        + dpkg_stanza("bash", "5.2.15-2+b13", source="bash (5.2.15-2)")
        + dpkg_stanza("libc6", "2.36-9+deb12u14", source="glibc")
        + dpkg_stanza("libc6", "2.36-9+deb12u14", source="glibc", arch="i386")
        + dpkg_stanza("dash", "0.5.12-2")
        + dpkg_stanza("gone", "1.0", status="deinstall ok config-files")
        + dpkg_stanza("purged", "1.0", status="purge ok not-installed")
    )
    root = write_root(
        tmp_path,
        {
            "usr/lib/os-release": DEBIAN_OS,
            "var/lib/dpkg/status": status,
            "var/lib/dpkg/info/zlib1g:amd64.list": "/.\n",
        },
    )
    inv = collect(DirRootFS(root))
    assert inv.os is not None and inv.os.ecosystem == "Debian:12"
    rows = [(p.name, p.version, p.source_name, p.source_version, p.arch) for p in inv.packages]
    assert rows == [
        ("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1", "amd64"),
        ("bash", "5.2.15-2+b13", "bash", "5.2.15-2", "amd64"),
        ("libc6", "2.36-9+deb12u14", "glibc", "2.36-9+deb12u14", "amd64"),
        ("libc6", "2.36-9+deb12u14", "glibc", "2.36-9+deb12u14", "i386"),
        ("dash", "0.5.12-2", "dash", "0.5.12-2", "amd64"),
    ]
    zlib = inv.packages[0]
    assert zlib.purl == (
        "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib"
    )
    assert zlib.ecosystem == "Debian:12"


def test_distroless_status_d(tmp_path: Path) -> None:
    root = write_root(
        tmp_path,
        {
            "etc/os-release": DEBIAN_OS,
            "var/lib/dpkg/status.d/base-files": "Package: base-files\nVersion: 12.4+deb12u15\n"
            "Architecture: amd64\n",
            "var/lib/dpkg/status.d/libssl3": "Package: libssl3\nSource: openssl\n"
            "Version: 3.0.15-1~deb12u1\nArchitecture: amd64\n",
            "var/lib/dpkg/status.d/libssl3.md5sums": "abc  usr/lib/x\n",
        },
    )
    pkgs = collect(DirRootFS(root)).packages
    assert [(p.name, p.source_name, p.source_version) for p in pkgs] == [
        ("base-files", "base-files", "12.4+deb12u15"),
        ("libssl3", "openssl", "3.0.15-1~deb12u1"),
    ]


def test_apk_with_origin(tmp_path: Path) -> None:
    installed = (
        "C:Q1abc=\nP:zlib\nV:1.2.12-r1\nA:x86_64\nS:53000\nL:Zlib\no:zlib\n\n"
        "C:Q1def=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\n"
        "F:usr/lib\nR:libcrypto.so.3\n\n"
        "P:busybox-binsh\nV:1.36.1-r15\nA:x86_64\no:busybox\n"
    )
    root = write_root(tmp_path, {"etc/os-release": ALPINE_OS, "lib/apk/db/installed": installed})
    inv = collect(DirRootFS(root))
    assert inv.os is not None and inv.os.ecosystem == "Alpine:v3.19"
    assert [(p.name, p.version, p.source_name) for p in inv.packages] == [
        ("zlib", "1.2.12-r1", "zlib"),
        ("libcrypto3", "3.1.4-r5", "openssl"),
        ("busybox-binsh", "1.36.1-r15", "busybox"),
    ]
    assert inv.packages[1].purl == (
        "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl"
    )
    assert inv.packages[1].license == "Apache-2.0"


def test_python_and_npm(tmp_path: Path) -> None:
    site = "usr/lib/python3/site-packages"
    root = write_root(
        tmp_path,
        {
            f"{site}/requests-2.31.0.dist-info/METADATA": (
                "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n"
                "License: Apache 2.0\n\nName: not-this\n"
            ),
            f"{site}/Old_Pkg-1.0.egg-info/PKG-INFO": "Metadata-Version: 1.0\nName: Old_Pkg\n"
            "Version: 1.0\n",
            f"{site}/single-0.1.egg-info": "Metadata-Version: 1.0\nName: single\nVersion: 0.1\n",
            "app/node_modules/lodash/package.json": json.dumps(
                {"name": "lodash", "version": "4.17.20"}
            ),
            "app/node_modules/@babel/core/package.json": json.dumps(
                {"name": "@babel/core", "version": "7.24.0"}
            ),
            "app/node_modules/lodash/fp/package.json": json.dumps({"name": "nope", "version": "1"}),
            "app/node_modules/broken/package.json": "{not json",
            "app/package.json": json.dumps({"name": "myapp", "version": "1.0.0"}),
        },
    )
    pkgs = collect(DirRootFS(root)).packages
    got = sorted((p.kind, p.name, p.version, p.purl) for p in pkgs)
    assert got == [
        ("npm", "@babel/core", "7.24.0", "pkg:npm/%40babel/core@7.24.0"),
        ("npm", "lodash", "4.17.20", "pkg:npm/lodash@4.17.20"),
        ("python", "Old_Pkg", "1.0", "pkg:pypi/old-pkg@1.0"),
        ("python", "requests", "2.31.0", "pkg:pypi/requests@2.31.0"),
        ("python", "single", "0.1", "pkg:pypi/single@0.1"),
    ]


def test_busybox_like_root_is_empty_without_error(tmp_path: Path) -> None:
    root = write_root(
        tmp_path, {"bin/busybox": b"\x7fELF", "etc/passwd": "root:x:0:0::/:/bin/sh\n"}
    )
    (root / "bin" / "sh").symlink_to("busybox")
    inv = collect(DirRootFS(root))
    assert inv.os is None and inv.packages == ()


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "status").write_text(dpkg_stanza("evil", "1.0"))
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").symlink_to(outside / "status")
    assert collect(DirRootFS(root)).packages == ()


def test_missing_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is not a directory"):
        DirRootFS(tmp_path / "nope")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('ID=debian\nVERSION_ID="12"\n', "Debian:12"),
        (
            'ID=ubuntu\nVERSION_ID="22.04"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\n',
            "Ubuntu:22.04:LTS",
        ),
        ('ID=ubuntu\nVERSION_ID="23.10"\nVERSION="23.10 (Mantic Minotaur)"\n', "Ubuntu:23.10"),
        ("ID=alpine\nVERSION_ID=3.19.1\n", "Alpine:v3.19"),
        ('ID="rocky"\nVERSION_ID="9.3"\n', "Rocky Linux:9"),
        ('ID="almalinux"\nVERSION_ID="8.9"\n', "AlmaLinux:8"),
        ("ID=wolfi\n", "Wolfi"),
        ('ID=debian\nPRETTY_NAME="Debian GNU/Linux trixie/sid"\n', None),
        ("ID=gentoo\n", None),
    ],
)
def test_os_release_ecosystems(text: str, want: str | None) -> None:
    assert osrelease.ecosystem(osrelease.parse(text)) == want


def _header(entries: list[tuple[int, int, bytes]]) -> bytes:
    store, index = b"", b""
    for tag, typ, value in entries:
        index += struct.pack(">iIiI", tag, typ, len(store), 1)
        store += value
    return struct.pack(">II", len(entries), len(store)) + index + store


def _rpmdb(tmp_path: Path, blobs: list[bytes]) -> Path:
    db = tmp_path / "var/lib/rpm/rpmdb.sqlite"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
    )
    conn.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b,) for b in blobs])
    conn.commit()
    conn.close()
    return tmp_path


def test_rpm_header_blobs(tmp_path: Path) -> None:
    blob = _header(
        [
            (1000, 6, b"openssl-libs\0"),
            (1001, 6, b"3.0.7\0"),
            (1002, 6, b"24.el9\0"),
            (1003, 4, struct.pack(">i", 1)),
            (1022, 6, b"x86_64\0"),
            (1044, 6, b"openssl-3.0.7-24.el9.src.rpm\0"),
        ]
    )
    root = _rpmdb(tmp_path, [blob])
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text('ID="rocky"\nVERSION_ID="9.3"\n')
    [pkg] = collect(DirRootFS(root)).packages
    assert (pkg.name, pkg.version, pkg.source_name, pkg.ecosystem) == (
        "openssl-libs",
        "1:3.0.7-24.el9",
        "openssl",
        "Rocky Linux:9",
    )
    assert pkg.purl.startswith(
        "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rocky-9.3&epoch=1"
    )


@pytest.mark.parametrize(
    "blob",
    [
        b"\x00\x00",  # shorter than its counts
        struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 6, 0, 1),  # truncated store
        struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 6, 9, 1) + b"abc\0",  # outside
        struct.pack(">II", 1, 3) + struct.pack(">iIiI", 1000, 6, 0, 1) + b"abc",  # unterminated
        struct.pack(">II", 10**6, 0),  # absurd counts
    ],
)
def test_bad_rpm_headers_are_refused(tmp_path: Path, blob: bytes) -> None:
    root = _rpmdb(tmp_path, [blob])
    with pytest.raises(InvalidInputError, match=r"rpmdb\.sqlite: package 1"):
        collect(DirRootFS(root))


def test_rpmdb_that_is_not_sqlite(tmp_path: Path) -> None:
    root = write_root(tmp_path, {"var/lib/rpm/rpmdb.sqlite": b"not a database" * 100})
    with pytest.raises(InvalidInputError, match="not a readable rpm database"):
        collect(DirRootFS(root))


def test_rpm_srpm_names() -> None:
    assert rpmdb._srpm_name("openssl-3.0.7-24.el9.src.rpm") == "openssl"
    assert rpmdb._srpm_name("python3.11-3.11.5-1.el9.src.rpm") == "python3.11"
