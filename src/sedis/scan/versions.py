"""Version ordering for each ecosystem the scanner matches.

Pure. OS package schemes (dpkg, apk, rpm) and PEP 440 / semver come from
univers; parsed versions are cached because a scan compares the same few
installed versions against many range events.
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from typing import Any


class Scheme(Enum):
    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PEP440 = "pep440"
    SEMVER = "semver"


class VersionError(ValueError):
    """A version string that its scheme cannot order."""


_OS_SCHEMES = {
    "Debian": Scheme.DEB,
    "Ubuntu": Scheme.DEB,
    "Alpine": Scheme.APK,
    "Wolfi": Scheme.APK,
    "Chainguard": Scheme.APK,
    "Red Hat": Scheme.RPM,
    "AlmaLinux": Scheme.RPM,
    "Rocky Linux": Scheme.RPM,
    "openSUSE": Scheme.RPM,
    "SUSE": Scheme.RPM,
    "Mageia": Scheme.RPM,
    "openEuler": Scheme.RPM,
    "Fedora": Scheme.RPM,
    "Photon OS": Scheme.RPM,
}


def scheme_for(ecosystem: str, range_type: str = "ECOSYSTEM") -> Scheme | None:
    """The ordering an OSV range uses; None for ecosystems the scanner does not match."""
    if range_type == "SEMVER":
        return Scheme.SEMVER
    if range_type != "ECOSYSTEM":
        return None  # GIT ranges name commits, which an image does not carry
    base = ecosystem.split(":", 1)[0]
    if base in _OS_SCHEMES:
        return _OS_SCHEMES[base]
    if base == "PyPI":
        return Scheme.PEP440
    if base == "npm":
        return Scheme.SEMVER
    return None


@lru_cache(maxsize=1 << 16)
def parse(scheme: Scheme, text: str) -> Any:
    """A comparable object for ``text``; raises VersionError when the scheme rejects it."""
    from univers import versions as uv

    cls: Any = {
        Scheme.DEB: uv.DebianVersion,
        Scheme.APK: uv.AlpineLinuxVersion,
        Scheme.RPM: uv.RpmVersion,
        Scheme.PEP440: uv.PypiVersion,
        Scheme.SEMVER: uv.SemverVersion,
    }[scheme]
    candidate = text.strip()
    if scheme is Scheme.SEMVER and candidate[:1] in ("v", "="):
        candidate = candidate[1:]
    try:
        return cls(candidate)
    except Exception as exc:  # univers raises several types for bad input
        raise VersionError(f"{text!r} is not a valid {scheme.value} version") from exc


def compare(scheme: Scheme, a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, equal to or after ``b``."""
    left, right = parse(scheme, a), parse(scheme, b)
    if left < right:
        return -1
    if right < left:
        return 1
    return 0


def is_valid(scheme: Scheme, text: str) -> bool:
    try:
        parse(scheme, text)
    except VersionError:
        return False
    return True
