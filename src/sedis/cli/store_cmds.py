"""`sedis store ...`: look inside the content store, and move content in and out as CARs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sedis.cli import context
from sedis.cli.output import Format, OutputOption, emit, progress

if TYPE_CHECKING:
    from sedis.store.cid import Cid

app = typer.Typer(
    help="The content store (IPFS): add, read, pin, CAR import and export.",
    rich_markup_mode=None,
    no_args_is_help=True,
)


@app.command("add")
def add(
    paths: list[Path] = typer.Argument(..., help="Files or directories (added recursively)."),
    cid_version: int = typer.Option(1, "--cid-version", help="0 or 1."),
    raw_leaves: bool | None = typer.Option(
        None, "--raw-leaves/--no-raw-leaves", help="Default: raw leaves with CIDv1."
    ),
    hidden: bool = typer.Option(False, "--hidden", help="Include dot-files in directories."),
    pin: bool = typer.Option(True, "--pin/--no-pin", help="Pin what is added."),
    output: Format = OutputOption,
) -> None:
    """Add files and directory trees; print their CIDs (as `ipfs add -r` would)."""
    from sedis.store.importer import ImportOptions

    options = ImportOptions(cid_version=cid_version, raw_leaves=raw_leaves, hidden=hidden)
    rows = []
    with context.store() as store:
        for path in paths:
            total = path.stat().st_size if path.is_file() else None
            with progress(f"adding {path.name}", total, output == Format.text) as advance:
                entry = store.add_path(path, options, pin=pin, progress=advance)
            rows.append(
                {
                    "path": str(path),
                    "cid": str(entry.cid),
                    "size": entry.size,
                    "cumulative_size": entry.tsize,
                }
            )
    emit(output, rows, [f"added {r['cid']} {r['path']}" for r in rows])


@app.command("cat")
def cat(ref: str = typer.Argument(..., help="CID, or CID/path/inside/a/directory.")) -> None:
    """Write a file's bytes to stdout; every block is checked against its CID."""
    out = sys.stdout.buffer
    with context.store() as store:
        for piece in store.cat(ref):
            out.write(piece)
    out.flush()


@app.command("ls")
def ls(
    ref: str = typer.Argument(..., help="CID of a directory, or CID/path."),
    output: Format = OutputOption,
) -> None:
    """List a directory's entries."""
    with context.store() as store:
        rows = []
        for entry in store.ls(ref):
            node = store.stat(str(entry.cid))
            rows.append(
                {"name": entry.name, "cid": str(entry.cid), "type": node.kind, "size": node.size}
            )
    emit(
        output,
        rows,
        [
            f"{r['cid']} {r['size']:>12} {r['name']}" + ("/" if r["type"] == "directory" else "")
            for r in rows
        ],
    )


@app.command("stat")
def stat(
    ref: str = typer.Argument(..., help="CID or CID/path."), output: Format = OutputOption
) -> None:
    """Show what a CID names: its type, size and links."""
    with context.store() as store:
        node = store.stat(ref)
    data = {
        "cid": str(node.cid),
        "type": node.kind,
        "size": node.size,
        "links": node.links,
        "block_size": node.block_size,
    }
    emit(output, data, [f"{k}: {v}" for k, v in data.items()])


@app.command("pin")
def pin(
    cid: str = typer.Argument(..., help="Root CID to pin recursively."),
    output: Format = OutputOption,
) -> None:
    """Pin a DAG, so garbage collection keeps it; every block must be present."""
    root = _parse(cid)
    with context.store() as store:
        store.pin(root)
    emit(output, {"pinned": str(root)}, (f"pinned {root}"))


@app.command("unpin")
def unpin(
    cid: str = typer.Argument(..., help="Root CID to unpin."), output: Format = OutputOption
) -> None:
    """Remove a pin; the blocks stay until the next garbage collection."""
    root = _parse(cid)
    with context.store() as store:
        store.unpin(root)
    emit(output, {"unpinned": str(root)}, (f"unpinned {root}"))


@app.command("pins")
def pins(output: Format = OutputOption) -> None:
    """List the pinned roots."""
    with context.store() as store:
        roots = [str(c) for c in store.pins()]
    emit(output, roots, roots)


@app.command("gc")
def gc(output: Format = OutputOption) -> None:
    """Remove every block that no pin reaches."""
    with context.store() as store:
        report = store.gc()
    data = {"blocks_removed": report.blocks_removed, "bytes_freed": report.bytes_freed}
    emit(
        output,
        data,
        (f"removed {report.blocks_removed} blocks, freed {report.bytes_freed} bytes"),
    )


@app.command("export-car")
def export_car(
    ref: str = typer.Argument(..., help="Root CID (or CID/path) to export."),
    dest: Path = typer.Argument(..., help="CAR file to write ('-' for stdout)."),
    output: Format = OutputOption,
) -> None:
    """Write a DAG as a CARv1, for `ipfs dag import` on any IPFS node."""
    from sedis.fsutil import atomic_output

    with context.store() as store:
        if str(dest) == "-":
            count = store.export_car(ref, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        with atomic_output(dest) as out:
            count = store.export_car(ref, out)
    size = os.path.getsize(dest)
    emit(
        output,
        {"root": ref, "path": str(dest), "blocks": count, "bytes": size},
        (f"exported {count} blocks ({size} bytes) to {dest}"),
    )


@app.command("import-car")
def import_car(
    path: Path = typer.Argument(..., help="CAR file (v1 or v2) to import."),
    output: Format = OutputOption,
) -> None:
    """Import a CAR; every block is checked before any becomes visible. Roots are pinned."""
    from sedis.core.errors import InvalidInputError

    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc
    with stream, context.store() as store:
        roots = [str(c) for c in store.import_car(stream, name=str(path))]
    emit(output, {"roots": roots}, [f"imported {r}" for r in roots])


def _parse(text: str) -> Cid:
    from sedis.store.cid import Cid

    return Cid.parse(text)
