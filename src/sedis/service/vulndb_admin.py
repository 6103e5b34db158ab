"""Looking after the local vulnerability database: importing feeds, describing it.

The database is the one at ``Engines.vulndb``; an import creates it when it
is not there yet, a status needs it to exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sedis.scan.vulndb.db import SourceStatus, VulnDB
from sedis.scan.vulndb.db import Status as VulnDBStatus

if TYPE_CHECKING:
    from sedis.service.engines import Engines

__all__ = ["ImportSummary", "SourceStatus", "VulnDBStatus", "import_feeds", "status"]


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What one import stored: records per source, and the database's snapshot after it."""

    files: int
    records: Mapping[str, int]  # source name to records imported, in the order they were met
    snapshot: str


def import_feeds(
    engines: Engines, paths: Sequence[Path], *, now: datetime | None = None
) -> ImportSummary:
    """Import feed files and directories in one transaction: a bad record anywhere imports
    nothing. ``now`` stamps the sources (UTC now by default)."""
    from sedis.scan.vulndb.importer import import_paths

    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    db = VulnDB.open(engines.vulndb, create=True)
    try:
        result = import_paths(db, list(paths), stamp)
    finally:
        db.close()
    return ImportSummary(result.files, dict(result.records), result.digest)


def status(engines: Engines) -> VulnDBStatus:
    """The database's sources, their record counts and import times, and its snapshot."""
    db = VulnDB.open(engines.vulndb)
    try:
        return db.status()
    finally:
        db.close()
