"""Alpine's secdb JSON (one release and repository per file), as records.

secdb lists only fixes: each `secfixes` version fixes the ids under it, and
every earlier version is affected. A version of "0" means never affected.
"""

from __future__ import annotations

import re
from typing import Any

from sedis.scan.versions import Scheme, is_valid
from sedis.scan.vulndb.osv import SchemaError
from sedis.scan.vulndb.records import Record, new_advisory

_RELEASE = re.compile(r"^v\d+\.\d+$|^edge$")
_ID = re.compile(r"^[A-Z][A-Z0-9]*-[A-Za-z0-9._:-]+$")


def looks_like_secdb(doc: Any) -> bool:
    return isinstance(doc, dict) and "packages" in doc and "distroversion" in doc


def source_name(doc: dict[str, Any]) -> str:
    return f"alpine-secdb:{doc.get('distroversion')}/{doc.get('reponame', 'main')}"


def convert(doc: Any, modified: str) -> list[Record]:
    release = doc.get("distroversion")
    if not isinstance(release, str) or not _RELEASE.match(release):
        raise SchemaError(f"distroversion: {release!r} is not like v3.19")
    repo = doc.get("reponame", "main")
    if not isinstance(repo, str):
        raise SchemaError("reponame: must be a string")
    packages = doc.get("packages")
    if not isinstance(packages, list):
        raise SchemaError("packages: must be an array")
    ecosystem = f"Alpine:{release}"
    source = source_name(doc)
    issues: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(packages):
        pkg = item.get("pkg") if isinstance(item, dict) else None
        if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str):
            raise SchemaError(f"packages[{i}]: needs pkg.name")
        name = pkg["name"]
        secfixes = pkg.get("secfixes", {})
        if not isinstance(secfixes, dict):
            raise SchemaError(f"packages[{i}] ({name}): secfixes must be an object")
        for version, ids in secfixes.items():
            where = f"packages[{i}] ({name}) {version}"
            if version != "0" and not is_valid(Scheme.APK, version):
                raise SchemaError(f"{where}: not an apk version")
            if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
                raise SchemaError(f"{where}: must list ids as strings")
            for text in ids:
                # Entries are "CVE-2022-37434", sometimes followed by other ids.
                for token in text.split():
                    if not _ID.match(token):
                        continue
                    rec = issues.setdefault(token, new_advisory(token))
                    rec["affected"].append(
                        {
                            "ecosystem": ecosystem,
                            "name": name,
                            "versions": [],
                            "ranges": [
                                {
                                    "type": "ECOSYSTEM",
                                    "events": [{"introduced": "0"}, {"fixed": version}],
                                }
                            ],
                        }
                    )
    return [Record(source, rid, modified, None, rec) for rid, rec in sorted(issues.items())]
