"""The Debian security tracker's JSON (package -> issue -> release), as records.

Each issue becomes one record (source "debian-tracker") whose affected
entries are its packages in the releases the tracker names. A resolved
issue with fixed_version "0" was never affected, and stays so (fixed "0").
"""

from __future__ import annotations

import re
from typing import Any

from sedis.scan.versions import Scheme, is_valid
from sedis.scan.vulndb.osv import SchemaError
from sedis.scan.vulndb.records import Record, new_advisory

SOURCE = "debian-tracker"
RELEASES = {
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
}
_ISSUE = re.compile(r"^(CVE-\d{4}-\d{4,}|TEMP-\d+-[0-9A-Fa-f]+|DSA-\d+-\d+|DLA-\d+-\d+)$")
_STATUSES = frozenset({"resolved", "open", "undetermined"})


def looks_like_tracker(doc: Any) -> bool:
    if not isinstance(doc, dict) or not doc:
        return False
    first = next(iter(doc.values()))
    return isinstance(first, dict) and all(
        isinstance(v, dict) and "releases" in v for v in list(first.values())[:3]
    )


def convert(doc: Any, modified: str) -> list[Record]:
    """``modified`` is the import time: the tracker's JSON carries no dates of its own."""
    if not isinstance(doc, dict):
        raise SchemaError("record: the tracker JSON must be an object of packages")
    issues: dict[str, dict[str, Any]] = {}
    for package, entries in doc.items():
        if not isinstance(entries, dict):
            raise SchemaError(f"{package}: must be an object of issues")
        for issue, body in entries.items():
            where = f"{package}/{issue}"
            if not _ISSUE.match(issue):
                raise SchemaError(f"{where}: not an issue id")
            if not isinstance(body, dict) or not isinstance(body.get("releases"), dict):
                raise SchemaError(f"{where}: needs a releases object")
            rec = issues.setdefault(
                issue,
                new_advisory(issue, [f"https://security-tracker.debian.org/tracker/{issue}"]),
            )
            desc = body.get("description")
            if isinstance(desc, str) and not rec["summary"]:
                rec["summary"] = desc[:500]
            for release, info in sorted(body["releases"].items()):
                entry = _entry(str(package), release, info, f"{where}/{release}")
                if entry is not None:
                    rec["affected"].append(entry)
    return [Record(SOURCE, rid, modified, None, rec) for rid, rec in sorted(issues.items())]


def _entry(package: str, release: str, info: Any, where: str) -> dict[str, Any] | None:
    if not isinstance(info, dict):
        raise SchemaError(f"{where}: must be an object")
    status = info.get("status")
    if status not in _STATUSES:
        raise SchemaError(f"{where}: status {status!r} is not resolved, open or undetermined")
    if release not in RELEASES:
        return None  # sid and experimental move daily; no image names them by number
    events: list[dict[str, str]] = [{"introduced": "0"}]
    if status == "resolved":
        fixed = info.get("fixed_version")
        if not isinstance(fixed, str) or not (fixed == "0" or is_valid(Scheme.DEB, fixed)):
            raise SchemaError(f"{where}: fixed_version {fixed!r} is not a Debian version")
        events.append({"fixed": fixed})
    urgency = info.get("urgency")
    entry: dict[str, Any] = {
        "ecosystem": f"Debian:{RELEASES[release]}",
        "name": package,
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
        "versions": [],
    }
    if isinstance(urgency, str):
        entry["urgency"] = urgency
    return entry
