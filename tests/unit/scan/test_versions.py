"""Version ordering: Debian checked pair by pair against dpkg itself; the others by example."""

from __future__ import annotations

import itertools
import shutil
import subprocess

import pytest

from sedis.scan.versions import Scheme, VersionError, compare, is_valid, parse, scheme_for

# Epochs, tildes (pre-releases sort first), binNMUs (+bN), stable updates
# (+debNuMM, two-digit uM after one-digit), backports (~debNuM), dfsg repacks,
# native versions, leading zeros, and real bookworm versions.
TRICKY = [
    "0",
    "1.0",
    "1.0-0",
    "1.0-1",
    "1.0-1+b1",
    "1.0-1+b10",
    "1.0-1+b2",
    "1.0-1+deb12u1",
    "1.0-1+deb12u2",
    "1.0-1+deb12u10",
    "1.0-1~deb12u1",
    "1.0-1~bpo12+1",
    "1.0~rc1-1",
    "1.0~rc1",
    "1.0~rc2",
    "1.0~~",
    "1.0~",
    "1:0.9",
    "1:1.0-1",
    "2:0.1",
    "1.0a",
    "1.0+",
    "1.0+dfsg-1",
    "1.0+dfsg1-1",
    "1.0.dfsg-1",
    "1.0-1.1",
    "1.0-1ubuntu1",
    "1.0-10",
    "1.0-9",
    "1.00-1",
    "1.0.0-1",
    "1.01",
    "1.001",
    "2.36-9",
    "2.36-9+b1",
    "2.36-9+deb12u3",
    "2.36-9+deb12u14",
    "1:1.2.13.dfsg-1",
    "1:1.3.dfsg-2",
    "1.2.13.dfsg-1",
    "5.2.15-2",
    "5.2.15-2+b13",
    "7.88.1-10+deb12u5",
    "7.88.1-10+deb12u12",
    "3.0.14-1~deb12u1",
    "3.0.14-1",
    "3.0.13-1~deb12u1",
    "1:4.13+dfsg1-1+deb12u1",
    "252.39-1~deb12u2",
]
# Every pair would be over a thousand dpkg calls; these slices keep each kind
# of trick next to its neighbours while staying well above 150 pairs.
PAIRS = sorted(
    set(itertools.combinations(TRICKY[:24], 2)) | set(itertools.combinations(TRICKY[20:], 2))
)


def _dpkg(a: str, op: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is the oracle")
def test_debian_pairs_agree_with_dpkg() -> None:
    assert len(PAIRS) >= 150
    disagreements = []
    for a, b in PAIRS:
        want = -1 if _dpkg(a, "lt", b) else (1 if _dpkg(a, "gt", b) else 0)
        if compare(Scheme.DEB, a, b) != want:
            disagreements.append((a, b, want))
    assert disagreements == []


def test_debian_examples() -> None:
    assert compare(Scheme.DEB, "1.0~rc1", "1.0") < 0
    assert compare(Scheme.DEB, "1:0.1", "9.9") > 0
    assert compare(Scheme.DEB, "2.36-9+deb12u9", "2.36-9+deb12u10") < 0
    assert compare(Scheme.DEB, "5.2.15-2", "5.2.15-2+b13") < 0


def test_alpine_rpm_pep440_semver() -> None:
    assert compare(Scheme.APK, "1.36.1-r2", "1.36.1-r15") < 0
    assert compare(Scheme.APK, "1.2.12-r1", "1.2.12-r2") < 0
    assert compare(Scheme.APK, "1.3.1-r0", "1.2.12-r2") > 0
    assert compare(Scheme.RPM, "1:1.0-1.el9", "2.0-1.el9") > 0
    assert compare(Scheme.RPM, "3.0.7-24.el9", "3.0.7-25.el9") < 0
    assert compare(Scheme.PEP440, "2.32.0rc1", "2.32.0") < 0
    assert compare(Scheme.PEP440, "2.31.0.post1", "2.32.0") < 0
    assert compare(Scheme.SEMVER, "4.17.21-beta.1", "4.17.21") < 0
    assert compare(Scheme.SEMVER, "v4.17.20", "4.17.21") < 0


def test_invalid_versions_are_refused() -> None:
    with pytest.raises(VersionError):
        parse(Scheme.DEB, "not a version")
    assert not is_valid(Scheme.PEP440, "latest!")
    assert is_valid(Scheme.DEB, "1:2.3-4")


def test_schemes() -> None:
    assert scheme_for("Debian:12") is Scheme.DEB
    assert scheme_for("Ubuntu:22.04:LTS") is Scheme.DEB
    assert scheme_for("Alpine:v3.19") is Scheme.APK
    assert scheme_for("Rocky Linux:9") is Scheme.RPM
    assert scheme_for("PyPI") is Scheme.PEP440
    assert scheme_for("npm") is Scheme.SEMVER
    assert scheme_for("PyPI", "SEMVER") is Scheme.SEMVER
    assert scheme_for("Debian:12", "GIT") is None
    assert scheme_for("Go") is None
