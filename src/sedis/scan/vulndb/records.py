"""The normalized advisory every feed is turned into, and the keys it is found by.

The shape follows OSV, trimmed to what matching and reports read. Feeds that
are not OSV (the Debian tracker, Alpine secdb) are converted into it, so one
evaluator serves them all.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

_PEP503 = re.compile(r"[-_.]+")


def package_key(ecosystem: str, name: str) -> tuple[str, str]:
    """How an affected package is indexed; lookups normalize the same way."""
    if ecosystem.startswith("Red Hat:"):
        ecosystem = ":".join(ecosystem.split(":")[:3])
    if ecosystem == "PyPI":
        name = _PEP503.sub("-", name).lower()
    return ecosystem, name


def new_advisory(advisory_id: str, references: list[str] | None = None) -> dict[str, Any]:
    """An advisory with no content yet, for a converted feed to fill in."""
    return {
        "id": advisory_id,
        "aliases": [],
        "upstream": [],
        "related": [],
        "summary": "",
        "severity": [],
        "affected": [],
        "references": references or [],
    }


@dataclass(frozen=True, slots=True)
class Record:
    source: str  # the feed: "osv", "debian-tracker", "alpine-secdb:v3.19/main"
    id: str
    modified: str
    withdrawn: str | None
    doc: dict[str, Any]

    def encoded(self) -> bytes:
        return json.dumps(self.doc, sort_keys=True, separators=(",", ":")).encode()

    def package_keys(self) -> set[tuple[str, str]]:
        return {package_key(a["ecosystem"], a["name"]) for a in self.doc.get("affected", ())}


@dataclass(frozen=True, slots=True)
class CvssRecord:
    cve: str
    doc: dict[str, Any]  # {"summary": str, "vectors": [{"version","vector","type","source"}]}

    def encoded(self) -> bytes:
        return json.dumps(self.doc, sort_keys=True, separators=(",", ":")).encode()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
