"""Looking after the content store itself: add, read, list, pin, collect, CARs in and out.

These use cases work on ``Engines.store`` through the ``ContentStore``
interface alone, whichever store the settings name. CIDs go in and come out
as text: the caller needs no store type to name or show one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sedis.core.errors import InvalidInputError
from sedis.service.engines import Engines
from sedis.store.cid import Cid
from sedis.store.importer import ImportOptions


@dataclass(frozen=True, slots=True)
class AddSettings:
    """How content is cut into blocks, as ``ipfs add`` takes it."""

    cid_version: int = 1
    raw_leaves: bool | None = None  # None: raw leaves exactly when the CID is version 1
    hidden: bool = False  # dot-files of a directory are added too
    pin: bool = True


@dataclass(frozen=True, slots=True)
class Added:
    path: Path
    cid: str
    size: int
    cumulative_size: int


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry of a directory."""

    name: str
    cid: str
    kind: str  # file, directory, symlink, raw-file
    size: int


@dataclass(frozen=True, slots=True)
class NodeStat:
    cid: str
    kind: str
    size: int
    links: int
    block_size: int


@dataclass(frozen=True, slots=True)
class Collected:
    blocks_removed: int
    bytes_freed: int


@dataclass(frozen=True, slots=True)
class CarWritten:
    root: str
    path: Path
    blocks: int
    bytes: int


def add(
    engines: Engines,
    path: Path,
    settings: AddSettings | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> Added:
    """Add a file, or a directory tree as ``ipfs add -r`` does; ``progress`` hears each
    chunk's byte count."""
    settings = settings or AddSettings()
    options = ImportOptions(
        cid_version=settings.cid_version, raw_leaves=settings.raw_leaves, hidden=settings.hidden
    )
    entry = engines.store.add_path(path, options, pin=settings.pin, progress=progress)
    return Added(path, str(entry.cid), entry.size, entry.tsize)


def cat(engines: Engines, ref: str) -> Iterator[bytes]:
    """The bytes of the file ``CID[/path]`` names, in pieces, each from a checked block."""
    return engines.store.cat(ref)


def ls(engines: Engines, ref: str) -> list[Listed]:
    """The entries of the directory ``CID[/path]`` names, with each one's type and size."""
    store = engines.store
    listed = []
    for entry in store.ls(ref):
        node = store.stat(str(entry.cid))
        listed.append(Listed(entry.name, str(entry.cid), node.kind, node.size))
    return listed


def stat(engines: Engines, ref: str) -> NodeStat:
    """What ``CID[/path]`` names: its type, content size, links and block size."""
    node = engines.store.stat(ref)
    return NodeStat(str(node.cid), node.kind, node.size, node.links, node.block_size)


def pin(engines: Engines, root: str) -> str:
    """Pin the DAG under ``root`` (every block must be present); return the root's CID."""
    cid = Cid.parse(root)
    engines.store.pin(cid)
    return str(cid)


def unpin(engines: Engines, root: str) -> str:
    """Remove the pin on ``root``; its blocks stay until the next collection."""
    cid = Cid.parse(root)
    engines.store.unpin(cid)
    return str(cid)


def pins(engines: Engines) -> list[str]:
    """The roots pinned recursively."""
    return [str(cid) for cid in engines.store.pins()]


def collect_garbage(engines: Engines) -> Collected:
    """Remove every block that no pin reaches."""
    report = engines.store.gc()
    return Collected(report.blocks_removed, report.bytes_freed)


def export_car(engines: Engines, ref: str, out: BinaryIO) -> int:
    """Write the DAG under ``CID[/path]`` to ``out`` as a CARv1; return its block count."""
    return engines.store.export_car(ref, out)


def export_car_file(engines: Engines, ref: str, dest: Path) -> CarWritten:
    """Write the DAG under ``ref`` as a CARv1 file, which appears whole or not at all."""
    from sedis.fsutil import atomic_output

    with atomic_output(dest) as out:
        blocks = engines.store.export_car(ref, out)
    return CarWritten(ref, dest, blocks, dest.stat().st_size)


def import_car(engines: Engines, path: Path) -> list[str]:
    """Import a CAR file (v1 or v2), every block checked before any is visible; its
    roots are pinned and returned."""
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, once the store has it all
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc
    with stream:
        return [str(cid) for cid in engines.store.import_car(stream, name=str(path))]
