"""dpkg: var/lib/dpkg/status and the distroless var/lib/dpkg/status.d/ files."""

from __future__ import annotations

import re

from sedis.scan.inventory import purls
from sedis.scan.inventory.control import paragraphs
from sedis.scan.model import OSInfo, Package
from sedis.scan.rootfs import Files

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
INFO = "var/lib/dpkg/info/"
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")
# Package states in which its files are on disk (dpkg(1) "package states");
# not-installed and config-files leave only configuration behind.
_PRESENT = frozenset(
    {
        "installed",
        "half-installed",
        "unpacked",
        "half-configured",
        "triggers-awaited",
        "triggers-pending",
    }
)


def wants(path: str) -> bool:
    if path == STATUS:
        return True
    if path.startswith(STATUS_D):
        return "/" not in path[len(STATUS_D) :] and not path.endswith((".md5sums", ".list"))
    return path.startswith(INFO) and path.endswith(".list") and "/" not in path[len(INFO) :]


def read(files: Files, os_info: OSInfo | None) -> list[Package]:
    # A package's info/*.list is rewritten whenever it is installed or upgraded,
    # so its layer says which layer brought this version in; the shared status
    # file only says which layer touched the database last.
    list_layer = {
        path[len(INFO) : -len(".list")]: layer
        for path, (layer, _) in files.items()
        if path.startswith(INFO)
    }
    sources = []
    if STATUS in files:
        sources.append((STATUS, files[STATUS]))
    sources += sorted((p, v) for p, v in files.items() if p.startswith(STATUS_D))
    out: list[Package] = []
    for path, (layer, data) in sources:
        text = data.decode("utf-8", errors="replace")
        for fields in paragraphs(text):
            pkg = _package(fields, path, layer, list_layer, os_info, path.startswith(STATUS_D))
            if pkg is not None:
                out.append(pkg)
    return out


def _package(
    fields: dict[str, str],
    path: str,
    layer: int,
    list_layer: dict[str, int],
    os_info: OSInfo | None,
    distroless: bool,
) -> Package | None:
    name, version = fields.get("Package"), fields.get("Version")
    if not name or not version:
        return None
    status = fields.get("Status", "")
    # Distroless status.d entries carry no Status: each file is an installed package.
    if status or not distroless:
        words = status.split()
        if len(words) != 3 or words[2] not in _PRESENT:
            return None
    src_name, src_version = name, version
    m = _SOURCE.match(fields.get("Source", ""))
    if m:
        src_name = m.group(1)
        src_version = m.group(2) or version
    arch = fields.get("Architecture") or None
    found = list_layer.get(f"{name}:{arch}", list_layer.get(name))
    return Package(
        kind="deb",
        name=name,
        version=version,
        source_name=src_name,
        source_version=src_version,
        ecosystem=os_info.ecosystem if os_info else None,
        purl=purls.deb(os_info, name, version, arch, src_name, src_version),
        path=path,
        layer=found if found is not None else layer,
        arch=arch,
    )
