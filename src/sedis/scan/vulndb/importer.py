"""`sedis vulndb import`: find out what each file is, check it, and store it.

OSV (single records, arrays of records, directories, per-ecosystem all.zip),
the Debian security tracker JSON, Alpine secdb and NVD CVE 2.0 JSON are told
apart by their shape. Everything named in one call is imported in one
transaction, so a bad record anywhere leaves the database as it was.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sedis.core.errors import InvalidInputError
from sedis.scan.vulndb import alpine, debian, nvd, osv
from sedis.scan.vulndb.bounded import dir_files, parse_json, read_file, zip_members
from sedis.scan.vulndb.db import VulnDB, Writer


@dataclass
class ImportResult:
    records: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    files: int = 0
    digest: str = ""


def import_paths(db: VulnDB, paths: list[Path], now: str) -> ImportResult:
    """``now`` (RFC 3339) stamps the sources and dates the tracker's undated records."""
    from sedis.scan.deepstack import call

    return call(lambda: _import_paths(db, paths, now))


def _import_paths(db: VulnDB, paths: list[Path], now: str) -> ImportResult:
    result = ImportResult()
    seen: dict[str, tuple[str, list[str]]] = {}
    with db.transaction() as w:
        for path in paths:
            if path.is_dir():
                files = dir_files(path)
                if not files:
                    raise InvalidInputError(f"{path}: no .json or .zip feed files in it")
            elif path.exists():
                files = [path]
            else:
                raise InvalidInputError(f"{path}: no such file or directory")
            for f in files:
                _import_file(w, f, now, result, seen)
                result.files += 1
        for name, (kind, names) in seen.items():
            w.source(name, kind, now, names)
    result.digest = db.snapshot_digest()
    return result


def _note(seen: dict[str, tuple[str, list[str]]], name: str, kind: str, path: Path) -> None:
    seen.setdefault(name, (kind, []))[1].append(path.name)


def _import_file(
    w: Writer, path: Path, now: str, result: ImportResult, seen: dict[str, tuple[str, list[str]]]
) -> None:
    if path.suffix == ".zip":
        batch = []
        for member, data in zip_members(path):
            where = f"{path}: {member}"
            batch.append(_osv(parse_json(data, where), where))
            if len(batch) >= 5000:
                result.records["osv"] += w.records(batch)
                batch = []
        result.records["osv"] += w.records(batch)
        _note(seen, "osv", "osv", path)
        return
    doc = parse_json(read_file(path), str(path))
    try:
        if nvd.looks_like_nvd(doc):
            result.records[nvd.SOURCE] += w.cvss(nvd.convert(doc))
            _note(seen, nvd.SOURCE, "nvd", path)
        elif alpine.looks_like_secdb(doc):
            records = alpine.convert(doc, now)
            result.records[alpine.source_name(doc)] += w.records(records)
            _note(seen, alpine.source_name(doc), "alpine-secdb", path)
        elif osv.looks_like_osv(doc) or isinstance(doc, list):
            items = doc if isinstance(doc, list) else [doc]
            records = [_osv(item, f"{path}: [{i}]") for i, item in enumerate(items)]
            result.records["osv"] += w.records(records)
            _note(seen, "osv", "osv", path)
        elif debian.looks_like_tracker(doc):
            result.records[debian.SOURCE] += w.records(debian.convert(doc, now))
            _note(seen, debian.SOURCE, "debian-tracker", path)
        else:
            raise InvalidInputError(
                f"{path}: not an OSV record, Debian tracker, Alpine secdb or NVD CVE 2.0 file"
            )
    except osv.SchemaError as exc:
        raise InvalidInputError(f"{path}: {exc}") from None


def _osv(doc: Any, where: str) -> Any:
    try:
        return osv.normalize(doc)
    except osv.SchemaError as exc:
        rid = doc.get("id") if isinstance(doc, dict) else None
        named = f" record {rid}" if isinstance(rid, str) else ""
        raise InvalidInputError(f"{where}:{named}: breaks the OSV schema: {exc}") from None
