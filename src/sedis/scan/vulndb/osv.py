"""OSV records: checked against the OSV schema's rules, then normalized.

The checks are the schema's (types, required fields, enumerations, the
one-key event objects, a range's `introduced`, RFC 3339 times) written out
by hand so that every failure names the field it is about.
"""

from __future__ import annotations

import re
from typing import Any

from sedis.scan.vulndb.records import Record

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,254}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_SEVERITY_TYPES = frozenset({"CVSS_V2", "CVSS_V3", "CVSS_V4", "Ubuntu"})
_RANGE_TYPES = frozenset({"GIT", "SEMVER", "ECOSYSTEM"})
_EVENT_KINDS = frozenset({"introduced", "fixed", "last_affected", "limit"})
_REF_TYPES = frozenset(
    {
        "ADVISORY",
        "ARTICLE",
        "DETECTION",
        "DISCUSSION",
        "REPORT",
        "FIX",
        "INTRODUCED",
        "GIT",
        "PACKAGE",
        "EVIDENCE",
        "WEB",
    }
)
_MAX_LIST = 100_000
_MAX_SUMMARY = 500


class SchemaError(ValueError):
    """A record that breaks the OSV schema; the message names the field."""


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise SchemaError(f"{where}: {what}")


def _list(doc: dict[str, Any], key: str, where: str) -> list[Any]:
    value = doc.get(key, [])
    _need(isinstance(value, list), f"{where}{key}", "must be an array")
    _need(len(value) <= _MAX_LIST, f"{where}{key}", f"has more than {_MAX_LIST} items")
    return value  # type: ignore[no-any-return]


def _strings(doc: dict[str, Any], key: str, where: str) -> list[str]:
    items = _list(doc, key, where)
    for i, item in enumerate(items):
        _need(isinstance(item, str), f"{where}{key}[{i}]", "must be a string")
    return items


def _string(doc: dict[str, Any], key: str, where: str, required: bool = False) -> str | None:
    if key not in doc:
        _need(not required, f"{where}{key}", "is required")
        return None
    value = doc[key]
    _need(isinstance(value, str), f"{where}{key}", "must be a string")
    return value  # type: ignore[no-any-return]


def _time(doc: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = _string(doc, key, "", required)
    if value is not None:
        _need(bool(_TIME.match(value)), key, f"{value!r} is not an RFC 3339 date-time")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    _need(isinstance(value, dict), where, "must be an object")
    return value  # type: ignore[no-any-return]


def _severity(items: list[Any], where: str) -> list[dict[str, str]]:
    out = []
    for i, item in enumerate(items):
        at = f"{where}severity[{i}]"
        obj = _object(item, at)
        kind = _string(obj, "type", at + ".", required=True)
        _need(kind in _SEVERITY_TYPES, at + ".type", f"{kind!r} is not a severity type")
        score = _string(obj, "score", at + ".", required=True)
        out.append({"type": str(kind), "score": str(score)})
    return out


def _events(rng: dict[str, Any], at: str) -> list[dict[str, str]]:
    events = _list(rng, "events", at + ".")
    _need(len(events) >= 1, at + ".events", "must not be empty")
    out = []
    for k, event in enumerate(events):
        where = f"{at}.events[{k}]"
        obj = _object(event, where)
        keys = set(obj) & _EVENT_KINDS
        _need(
            len(keys) == 1 and len(obj) == 1,
            where,
            "an event has exactly one of introduced, fixed, last_affected, limit",
        )
        kind = keys.pop()
        _need(
            isinstance(obj[kind], str) and obj[kind] != "",
            f"{where}.{kind}",
            "must be a non-empty string",
        )
        out.append({kind: obj[kind]})
    _need(any("introduced" in e for e in out), at + ".events", "needs an introduced event")
    return out


def _affected(items: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(items):
        at = f"affected[{i}]"
        obj = _object(item, at)
        ranges = []
        for j, rng in enumerate(_list(obj, "ranges", at + ".")):
            rat = f"{at}.ranges[{j}]"
            robj = _object(rng, rat)
            kind = _string(robj, "type", rat + ".", required=True)
            _need(kind in _RANGE_TYPES, rat + ".type", f"{kind!r} is not a range type")
            if kind == "GIT":
                _string(robj, "repo", rat + ".", required=True)
            ranges.append({"type": kind, "events": _events(robj, rat)})
        versions = _strings(obj, "versions", at + ".")
        severity = _severity(_list(obj, "severity", at + "."), at + ".")
        for key in ("ecosystem_specific", "database_specific"):
            if key in obj:
                _object(obj[key], f"{at}.{key}")
        if "package" not in obj:
            continue  # a GIT-only entry names no package an image could hold
        pkg = _object(obj["package"], at + ".package")
        ecosystem = _string(pkg, "ecosystem", at + ".package.", required=True)
        name = _string(pkg, "name", at + ".package.", required=True)
        _string(pkg, "purl", at + ".package.")
        entry: dict[str, Any] = {
            "ecosystem": ecosystem,
            "name": name,
            "ranges": ranges,
            "versions": versions,
        }
        if severity:
            entry["severity"] = severity
        urgency = _urgency(obj)
        if urgency:
            entry["urgency"] = urgency
        out.append(entry)
    return out


def _urgency(obj: dict[str, Any]) -> str | None:
    for key in ("ecosystem_specific", "database_specific"):
        extra = obj.get(key)
        if isinstance(extra, dict):
            value = extra.get("urgency") or extra.get("severity")
            if isinstance(value, str):
                return value
    return None


def normalize(doc: Any, source: str = "osv") -> Record:
    """Check one OSV record and return it in the normalized shape."""
    obj = _object(doc, "record")
    rid = _string(obj, "id", "", required=True)
    _need(bool(_ID.match(str(rid))), "id", f"{rid!r} is not a valid OSV id")
    modified = _time(obj, "modified", required=True)
    _time(obj, "published")
    withdrawn = _time(obj, "withdrawn")
    _string(obj, "schema_version", "")
    aliases = _strings(obj, "aliases", "")
    upstream = _strings(obj, "upstream", "")
    related = _strings(obj, "related", "")
    summary = _string(obj, "summary", "") or ""
    details = _string(obj, "details", "") or ""
    severity = _severity(_list(obj, "severity", ""), "")
    affected = _affected(_list(obj, "affected", ""))
    refs = []
    for i, ref in enumerate(_list(obj, "references", "")):
        robj = _object(ref, f"references[{i}]")
        kind = _string(robj, "type", f"references[{i}].", required=True)
        _need(kind in _REF_TYPES, f"references[{i}].type", f"{kind!r} is not a reference type")
        refs.append(str(_string(robj, "url", f"references[{i}].", required=True)))
    for i, credit in enumerate(_list(obj, "credits", "")):
        _string(_object(credit, f"credits[{i}]"), "name", f"credits[{i}].", required=True)
    if "database_specific" in obj:
        _object(obj["database_specific"], "database_specific")
    norm: dict[str, Any] = {
        "id": rid,
        "aliases": aliases,
        "upstream": upstream,
        "related": related,
        "summary": (summary or details.strip().split("\n", 1)[0])[:_MAX_SUMMARY],
        "modified": modified,
        "severity": severity,
        "affected": affected,
        "references": refs[:20],
    }
    if withdrawn:
        norm["withdrawn"] = withdrawn
    return Record(source, str(rid), str(modified), withdrawn, norm)


def looks_like_osv(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and "id" in doc
        and ("modified" in doc or "schema_version" in doc or "affected" in doc)
    )
