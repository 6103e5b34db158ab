"""Severity: CVSS base scores and distro urgencies, and how one finding's are merged.

Pure: no I/O. The CVSS arithmetic is the `cvss` library's; this module only
decides which score counts and keeps the distro's urgency beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from sedis.core.errors import InvalidInputError


class Severity(IntEnum):
    """Ordered so that a policy threshold is a plain comparison."""

    UNKNOWN = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise InvalidInputError(
                f"unknown severity {text!r} (expected one of {names})"
            ) from None


def from_score(score: float) -> Severity:
    """CVSS v3/v4 qualitative rating; a 0.0 ('none') still names a known issue, so LOW."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    return Severity.LOW


# Debian tracker urgencies (with their '*' uncertainty marks stripped), Ubuntu
# priorities and the words OSV databases put in database_specific.
_URGENCY = {
    "unimportant": Severity.LOW,
    "negligible": Severity.LOW,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "high": Severity.HIGH,
    "important": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


def from_urgency(urgency: str | None) -> Severity:
    if not urgency:
        return Severity.UNKNOWN
    return _URGENCY.get(urgency.strip().rstrip("*").lower(), Severity.UNKNOWN)


@dataclass(frozen=True, slots=True)
class CvssScore:
    version: str  # "3.0", "3.1" or "4.0"
    vector: str
    score: float
    origin: str  # the record id or "nvd" that supplied the vector


def score_vector(vector: str, origin: str) -> CvssScore | None:
    """Compute a base score with the cvss library; None for a vector it cannot read."""
    import cvss  # type: ignore[import-untyped]
    from cvss.exceptions import CVSSError  # type: ignore[import-untyped]

    text = vector.strip()
    try:
        if text.startswith("CVSS:4.0/"):
            v4 = cvss.CVSS4(text)
            return CvssScore("4.0", v4.clean_vector(), float(v4.base_score), origin)
        if text.startswith(("CVSS:3.1/", "CVSS:3.0/")):
            v3 = cvss.CVSS3(text)
            return CvssScore(text[5:8], v3.clean_vector(), float(v3.scores()[0]), origin)
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


# The record's own vector beats NVD's (it is about this package, not the CVE at
# large); within one origin the newest CVSS version wins.
_VERSION_RANK = {"4.0": 3, "3.1": 2, "3.0": 1}


def best(scores: list[CvssScore], preferred_origins: frozenset[str]) -> CvssScore | None:
    if not scores:
        return None
    return max(
        scores,
        key=lambda s: (s.origin in preferred_origins, _VERSION_RANK.get(s.version, 0), s.score),
    )


@dataclass(frozen=True, slots=True)
class Assessment:
    severity: Severity
    cvss: CvssScore | None
    urgency: str | None
    basis: str  # "cvss", "urgency" or "none"


def assess(cvss_score: CvssScore | None, urgency: str | None) -> Assessment:
    """CVSS decides when there is one; the distro's urgency is the fallback, and kept."""
    if cvss_score is not None:
        return Assessment(from_score(cvss_score.score), cvss_score, urgency, "cvss")
    by_urgency = from_urgency(urgency)
    basis = "urgency" if by_urgency is not Severity.UNKNOWN else "none"
    return Assessment(by_urgency, None, urgency, basis)
