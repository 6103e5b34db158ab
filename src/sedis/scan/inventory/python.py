"""Python distributions: *.dist-info/METADATA and *.egg-info (directory or file)."""

from __future__ import annotations

from sedis.scan.inventory import purls
from sedis.scan.model import Package
from sedis.scan.rootfs import Files

_MAX_HEADER_LINES = 2000


def wants(path: str) -> bool:
    return (
        path.endswith(".dist-info/METADATA")
        or path.endswith(".egg-info/PKG-INFO")
        or path.endswith(".egg-info")
    )


def _headers(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines()):
        if not line.strip() or n > _MAX_HEADER_LINES:
            break  # the body (the long description) starts after the first blank line
        if line[0] in " \t":
            continue
        key, found, value = line.partition(":")
        if found:
            out.setdefault(key.strip().lower(), value.strip())
    return out


def read(files: Files) -> list[Package]:
    out = []
    for path in sorted(p for p in files if wants(p)):
        layer, data = files[path]
        h = _headers(data.decode("utf-8", errors="replace"))
        name, version = h.get("name"), h.get("version")
        if not name or not version:
            continue
        out.append(
            Package(
                kind="python",
                name=name,
                version=version,
                source_name=name,
                source_version=version,
                ecosystem="PyPI",
                purl=purls.pypi(name, version),
                path=path,
                layer=layer,
                license=h.get("license-expression") or h.get("license") or None,
            )
        )
    return out
