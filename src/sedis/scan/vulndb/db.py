"""The local vulnerability database: one SQLite file under SEDIS_HOME.

Every import runs in one transaction: all of its files are parsed and
checked inside it, and a failure anywhere rolls all of it back. The snapshot
digest covers every stored record's content (never an import time), so it
changes exactly when the data does.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sedis.core.errors import NotFoundError, UnavailableError
from sedis.scan.vulndb.records import CvssRecord, Record, digest, package_key
from sedis.sqlitewal import connect_wal

FILENAME = "vulndb.sqlite"
SCHEMA_VERSION = "1"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"").hexdigest()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, imported_at TEXT NOT NULL, files TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS advisories (
    source TEXT NOT NULL, id TEXT NOT NULL, modified TEXT NOT NULL, withdrawn TEXT,
    digest TEXT NOT NULL, doc BLOB NOT NULL, PRIMARY KEY (source, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS affected (
    ecosystem TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (ecosystem, name, source, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS affected_by_record ON affected (source, id);
CREATE TABLE IF NOT EXISTS cvss (
    cve TEXT PRIMARY KEY, digest TEXT NOT NULL, doc BLOB NOT NULL) WITHOUT ROWID;
"""


def path_in(home: Path) -> Path:
    return home / FILENAME


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    kind: str
    records: int
    imported_at: str
    files: list[str]


@dataclass(frozen=True, slots=True)
class Status:
    path: str
    digest: str
    records: int
    cvss_records: int
    sources: list[SourceStatus]


class VulnDB:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, create: bool = False) -> VulnDB:
        if not create and not path.exists():
            raise NotFoundError(
                f"no vulnerability database at {path}; import one with `sedis vulndb import`"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Imports run on a parser thread (see deepstack); one caller at a time.
            conn = connect_wal(path, _SCHEMA, synchronous="FULL")
            conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )
        except sqlite3.Error as exc:
            raise UnavailableError(f"cannot open {path}: {exc}") from exc
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Writer]:
        """Everything written inside lands together, or (on any exception) not at all."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield Writer(self.conn)
            self._store_digest()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _store_digest(self) -> None:
        h = hashlib.sha256()
        for source, rid, d in self.conn.execute(
            "SELECT source, id, digest FROM advisories ORDER BY source, id"
        ):
            h.update(f"a\0{source}\0{rid}\0{d}\n".encode())
        for cve, d in self.conn.execute("SELECT cve, digest FROM cvss ORDER BY cve"):
            h.update(f"c\0{cve}\0{d}\n".encode())
        self.conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('snapshot', ?)", ("sha256:" + h.hexdigest(),)
        )

    def snapshot_digest(self) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key='snapshot'").fetchone()
        return str(row[0]) if row else EMPTY_DIGEST

    def status(self) -> Status:
        counts = dict(
            self.conn.execute("SELECT source, count(*) FROM advisories GROUP BY source").fetchall()
        )
        cvss_count = self.conn.execute("SELECT count(*) FROM cvss").fetchone()[0]
        sources = []
        for name, kind, at, files in self.conn.execute(
            "SELECT name, kind, imported_at, files FROM sources ORDER BY name"
        ):
            n = cvss_count if kind == "nvd" else counts.get(name, 0)
            sources.append(SourceStatus(name, kind, int(n), at, json.loads(files)))
        return Status(
            str(self.path), self.snapshot_digest(), sum(counts.values()), int(cvss_count), sources
        )

    def advisories_for(self, ecosystem: str, name: str) -> list[dict[str, Any]]:
        """Records naming this package, withdrawn ones left out."""
        eco, key = package_key(ecosystem, name)
        rows = self.conn.execute(
            "SELECT a.source, a.doc FROM affected f JOIN advisories a"
            " ON a.source = f.source AND a.id = f.id"
            " WHERE f.ecosystem = ? AND f.name = ? AND a.withdrawn IS NULL",
            (eco, key),
        ).fetchall()
        out = []
        for source, doc in rows:
            parsed = json.loads(doc)
            parsed["_source"] = source
            out.append(parsed)
        return out

    def cvss_for(self, cve: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT doc FROM cvss WHERE cve = ?", (cve,)).fetchone()
        return json.loads(row[0]) if row else None


class Writer:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def records(self, records: Iterable[Record]) -> int:
        n = 0
        rows: list[tuple[str, str, str, str | None, str, bytes]] = []
        keys: list[tuple[str, str, str, str]] = []
        ids: list[tuple[str, str]] = []
        for rec in records:
            data = rec.encoded()
            rows.append((rec.source, rec.id, rec.modified, rec.withdrawn, digest(data), data))
            ids.append((rec.source, rec.id))
            keys.extend((eco, name, rec.source, rec.id) for eco, name in rec.package_keys())
            n += 1
        self.conn.executemany("DELETE FROM affected WHERE source = ? AND id = ?", ids)
        self.conn.executemany("INSERT OR REPLACE INTO advisories VALUES (?,?,?,?,?,?)", rows)
        self.conn.executemany("INSERT OR IGNORE INTO affected VALUES (?,?,?,?)", keys)
        return n

    def cvss(self, records: Iterable[CvssRecord]) -> int:
        rows = []
        for rec in records:
            data = rec.encoded()
            rows.append((rec.cve, digest(data), data))
        self.conn.executemany("INSERT OR REPLACE INTO cvss VALUES (?,?,?)", rows)
        return len(rows)

    def source(self, name: str, kind: str, imported_at: str, files: list[str]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sources VALUES (?,?,?,?)",
            (name, kind, imported_at, json.dumps(sorted(set(files)))),
        )
