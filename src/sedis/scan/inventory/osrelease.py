"""/etc/os-release, and the OSV ecosystem an OS's packages are matched in."""

from __future__ import annotations

import re
import shlex

from sedis.scan.model import OSInfo

PATHS = ("etc/os-release", "usr/lib/os-release")
_LINE = re.compile(r"^([A-Z0-9_]+)=(.*)$")


def parse(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines()[:500]:
        m = _LINE.match(line.strip())
        if not m:
            continue
        try:
            words = shlex.split(m.group(2))
        except ValueError:
            continue  # an unbalanced quote: skip the line, as systemd does
        out[m.group(1)] = " ".join(words)
    return out


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def ecosystem(fields: dict[str, str]) -> str | None:
    os_id = fields.get("ID", "").lower()
    version = fields.get("VERSION_ID", "")
    major = version.split(".")[0]
    if os_id == "debian":
        return f"Debian:{major}" if major.isdigit() else None
    if os_id == "ubuntu":
        if not version:
            return None
        lts = ":LTS" if "LTS" in fields.get("VERSION", "") else ""
        return f"Ubuntu:{version}{lts}"
    if os_id == "alpine":
        return f"Alpine:v{_major_minor(version)}" if version else None
    if os_id in ("wolfi", "chainguard"):
        return os_id.capitalize()
    if os_id == "rocky":
        return f"Rocky Linux:{major}" if major else None
    if os_id == "almalinux":
        return f"AlmaLinux:{major}" if major else None
    if os_id == "rhel":
        return f"Red Hat:enterprise_linux:{major}" if major else None
    if os_id == "opensuse-leap":
        return f"openSUSE:Leap {version}" if version else None
    if os_id == "mageia":
        return f"Mageia:{major}" if major else None
    return None


def detect(files: dict[str, bytes]) -> OSInfo | None:
    """The first os-release found, /etc before /usr/lib as systemd reads them."""
    for path in PATHS:
        if path in files:
            fields = parse(files[path].decode("utf-8", errors="replace"))
            if not fields.get("ID"):
                continue
            return OSInfo(
                id=fields["ID"].lower(),
                version_id=fields.get("VERSION_ID", ""),
                pretty_name=fields.get("PRETTY_NAME") or fields["ID"],
                ecosystem=ecosystem(fields),
            )
    return None
