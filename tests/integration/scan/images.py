"""Real test roots: a debootstrap Debian bookworm (minbase), cached; an rpm-installed root.

The Debian root is built once per recipe into .cache/scan-rootfs/ in the
checkout (git-ignored) from the Debian mirror that apt on this machine uses,
then stripped of .debs, apt lists and docs as an image build would be.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CACHE = REPO / ".cache" / "scan-rootfs"
SUITE = "bookworm"
RECIPE = "debootstrap --variant=minbase; strip debs, apt lists, docs; v1"


def debian_mirror() -> str:
    """The first Debian archive URI apt is configured with (not the security archive)."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in candidates:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(
            r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", text, re.M
        ):
            if "/debian" in uri and "security" not in uri and "debian-ports" not in uri:
                return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def debian_rootfs() -> Path:
    mirror = debian_mirror()
    stamp = hashlib.sha256(f"{RECIPE}|{SUITE}|{mirror}".encode()).hexdigest()[:12]
    target = CACHE / f"{SUITE}-minbase-{stamp}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; later callers find it done
        if (target / ".complete").exists():
            return target
        staging = CACHE / f"{target.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(staging), mirror],
            check=True,
            capture_output=True,
            timeout=900,
        )
        for sub in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/info",
        ):
            path = staging / sub
            if path.is_dir():
                for child in path.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        (staging / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


SPEC = """Name: {name}
Version: {version}
Release: {release}
{epoch}Summary: test package
License: Apache-2.0
BuildArch: noarch

%description
A package for inventory tests.

%install
mkdir -p %{{buildroot}}/usr/share/{name}
echo {name} > %{{buildroot}}/usr/share/{name}/README

%files
/usr/share/{name}/README
"""


def rpm_root(work: Path, packages: list[tuple[str, str, str, int]]) -> Path:
    """Build each (name, version, release, epoch) with rpmbuild and install it into a root."""
    top = work / "rpmbuild"
    root = work / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID="rocky"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky"\n')
    for name, version, release, epoch in packages:
        spec = top / "SPECS" / f"{name}.spec"
        spec.parent.mkdir(parents=True, exist_ok=True)
        epoch_line = f"Epoch: {epoch}\n" if epoch else ""  # no Epoch tag at all, as most packages
        spec.write_text(SPEC.format(name=name, version=version, release=release, epoch=epoch_line))
        subprocess.run(
            ["rpmbuild", "-bb", "--define", f"_topdir {top}", str(spec)],
            check=True,
            capture_output=True,
        )
    rpms = sorted((top / "RPMS" / "noarch").glob("*.rpm"))
    subprocess.run(
        [*rpm_command(root), "--nodeps", "--noscripts", "-i", *map(str, rpms)],
        check=True,
        capture_output=True,
    )
    return root


def rpm_command(root: Path) -> list[str]:
    """rpm acting on the sqlite rpmdb inside ``root``, as EL9 keeps it."""
    return [
        "rpm",
        "--root",
        str(root),
        "--dbpath",
        "/var/lib/rpm",
        "--define",
        "_db_backend sqlite",
    ]


def debian_layout(work: Path, rootfs: Path, tag: str = "12") -> Path:
    """The Debian root packed into a one-layer OCI layout by umoci."""
    layout, bundle = work / "debian-oci", work / "bundle"
    for args in (
        ["umoci", "init", "--layout", str(layout)],
        ["umoci", "new", "--image", f"{layout}:{tag}"],
        ["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)],
    ):
        subprocess.run(args, check=True, capture_output=True)
    subprocess.run(["cp", "-a", f"{rootfs}/.", str(bundle / "rootfs")], check=True)
    (bundle / "rootfs" / ".complete").unlink(missing_ok=True)
    subprocess.run(
        ["umoci", "repack", "--image", f"{layout}:{tag}", str(bundle)],
        check=True,
        capture_output=True,
    )
    return layout
