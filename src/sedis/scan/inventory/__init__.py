"""The package inventory of a root filesystem: the OS and every package it holds."""

from __future__ import annotations

from sedis.scan.inventory import apk, dpkg, npm, osrelease, python, rpmdb
from sedis.scan.model import Inventory
from sedis.scan.rootfs import RootFS


def wants(path: str) -> bool:
    return (
        path in osrelease.PATHS
        or dpkg.wants(path)
        or apk.wants(path)
        or rpmdb.wants(path)
        or python.wants(path)
        or npm.wants(path)
    )


def collect(rootfs: RootFS) -> Inventory:
    """Read every package database and metadata file in one pass over the files."""
    files = rootfs.files(wants)
    os_info = osrelease.detect({p: data for p, (_, data) in files.items() if p in osrelease.PATHS})
    packages = [
        *dpkg.read(files, os_info),
        *apk.read(files, os_info),
        *rpmdb.read(files, os_info),
        *python.read(files),
        *npm.read(files),
    ]
    return Inventory(os=os_info, packages=tuple(packages))
