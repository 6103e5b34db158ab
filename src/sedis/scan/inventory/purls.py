"""Package URLs (purl) for what the inventory finds, built by packageurl-python."""

from __future__ import annotations

import re

from sedis.scan.model import OSInfo


def _build(
    type_: str, namespace: str | None, name: str, version: str | None, qualifiers: dict[str, str]
) -> str:
    from packageurl import PackageURL

    clean = {k: v for k, v in qualifiers.items() if v}
    return str(
        PackageURL(
            type=type_, namespace=namespace, name=name, version=version, qualifiers=clean or None
        ).to_string()
    )


def _distro(os_info: OSInfo | None) -> str:
    return f"{os_info.id}-{os_info.version_id}" if os_info and os_info.version_id else ""


def deb(
    os_info: OSInfo | None,
    name: str,
    version: str,
    arch: str | None,
    src_name: str,
    src_version: str,
) -> str:
    upstream = ""
    if src_name != name or src_version != version:
        upstream = src_name if src_version == version else f"{src_name}@{src_version}"
    namespace = os_info.id if os_info else "debian"
    return _build(
        "deb",
        namespace,
        name,
        version,
        {"arch": arch or "", "distro": _distro(os_info), "upstream": upstream},
    )


def apk(os_info: OSInfo | None, name: str, version: str, arch: str | None, origin: str) -> str:
    namespace = os_info.id if os_info else "alpine"
    return _build(
        "apk",
        namespace,
        name,
        version,
        {
            "arch": arch or "",
            "distro": _distro(os_info),
            "upstream": origin if origin != name else "",
        },
    )


def rpm(
    os_info: OSInfo | None,
    name: str,
    version: str,
    release: str,
    epoch: int | None,
    arch: str | None,
    srpm: str,
) -> str:
    namespace = os_info.id if os_info else "rpm"
    return _build(
        "rpm",
        namespace,
        name,
        f"{version}-{release}",
        {
            "arch": arch or "",
            "epoch": str(epoch) if epoch else "",
            "distro": _distro(os_info),
            "upstream": srpm,
        },
    )


def pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pypi(name: str, version: str) -> str:
    return _build("pypi", None, pep503(name), version, {})


def npm(name: str, version: str) -> str:
    scope, _, bare = name.rpartition("/")
    return _build("npm", scope or None, bare, version, {})
