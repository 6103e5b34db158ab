"""apk: lib/apk/db/installed, with each package's origin (its source package)."""

from __future__ import annotations

from sedis.scan.inventory import purls
from sedis.scan.inventory.control import paragraphs
from sedis.scan.model import OSInfo, Package
from sedis.scan.rootfs import Files

INSTALLED = "lib/apk/db/installed"


def wants(path: str) -> bool:
    return path == INSTALLED


def read(files: Files, os_info: OSInfo | None) -> list[Package]:
    if INSTALLED not in files:
        return []
    layer, data = files[INSTALLED]
    out = []
    for fields in paragraphs(data.decode("utf-8", errors="replace")):
        name, version = fields.get("P"), fields.get("V")
        if not name or not version:
            continue
        origin = fields.get("o") or name
        arch = fields.get("A") or None
        out.append(
            Package(
                kind="apk",
                name=name,
                version=version,
                source_name=origin,
                source_version=version,
                ecosystem=os_info.ecosystem if os_info else None,
                purl=purls.apk(os_info, name, version, arch, origin),
                path=INSTALLED,
                layer=layer,
                arch=arch,
                license=fields.get("L") or None,
            )
        )
    return out
