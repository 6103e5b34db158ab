"""npm packages: node_modules/[@scope/]name/package.json, at any depth."""

from __future__ import annotations

import json
import re

from sedis.scan.inventory import purls
from sedis.scan.model import Package
from sedis.scan.rootfs import Files

_MANIFEST = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/@][^/]*/package\.json$")
_MAX_JSON = 4 * 1024 * 1024


def wants(path: str) -> bool:
    return path.endswith("/package.json") and _MANIFEST.search(path) is not None


def read(files: Files) -> list[Package]:
    out = []
    for path in sorted(p for p in files if wants(p)):
        layer, data = files[path]
        if len(data) > _MAX_JSON:
            continue
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            continue  # a broken manifest names no package we could match
        if not isinstance(doc, dict):
            continue
        name, version = doc.get("name"), doc.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            continue
        lic = doc.get("license")
        out.append(
            Package(
                kind="npm",
                name=name,
                version=version,
                source_name=name,
                source_version=version,
                ecosystem="npm",
                purl=purls.npm(name, version),
                path=path,
                layer=layer,
                license=lic if isinstance(lic, str) else None,
            )
        )
    return out
