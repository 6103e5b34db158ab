"""`sedis store ...`: look inside the content store, and move content in and out as CARs."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from sedis.cli import context
from sedis.cli.output import Format, OutputOption, emit, progress

app = typer.Typer(
    help="The content store (IPFS): add, read, pin, CAR import and export.",
    rich_markup_mode=None,
    no_args_is_help=True,
)


@app.command("add")
def add(
    paths: list[Path] = typer.Argument(
        ..., metavar="PATH...", help="Files or directories (added recursively)."
    ),
    cid_version: int = typer.Option(1, "--cid-version", metavar="VERSION", help="0 or 1."),
    raw_leaves: bool | None = typer.Option(
        None, "--raw-leaves/--no-raw-leaves", help="Default: raw leaves with CIDv1."
    ),
    hidden: bool = typer.Option(False, "--hidden", help="Include dot-files in directories."),
    pin: bool = typer.Option(True, "--pin/--no-pin", help="Pin what is added."),
    output: Format = OutputOption,
) -> None:
    """Add files and directory trees; print their CIDs (as `ipfs add -r` would)."""
    from sedis.service import store_admin

    settings = store_admin.AddSettings(
        cid_version=cid_version, raw_leaves=raw_leaves, hidden=hidden, pin=pin
    )
    rows = []
    with context.engines() as engines:
        for path in paths:
            total = path.stat().st_size if path.is_file() else None
            with progress(f"adding {path.name}", total, output == Format.text) as advance:
                added = store_admin.add(engines, path, settings, progress=advance)
            rows.append(
                {
                    "path": str(added.path),
                    "cid": added.cid,
                    "size": added.size,
                    "cumulative_size": added.cumulative_size,
                }
            )
    emit(output, rows, [f"added {r['cid']} {r['path']}" for r in rows])


@app.command("cat")
def cat(
    ref: str = typer.Argument(
        ..., metavar="CID[/PATH]", help="CID, or CID/path/inside/a/directory."
    ),
) -> None:
    """Write a file's bytes to stdout; every block is checked against its CID."""
    from sedis.service import store_admin

    out = sys.stdout.buffer
    with context.engines() as engines:
        for piece in store_admin.cat(engines, ref):
            out.write(piece)
    out.flush()


@app.command("ls")
def ls(
    ref: str = typer.Argument(..., metavar="CID[/PATH]", help="CID of a directory, or CID/path."),
    output: Format = OutputOption,
) -> None:
    """List a directory's entries."""
    from sedis.service import store_admin

    with context.engines() as engines:
        entries = store_admin.ls(engines, ref)
    rows = [{"name": e.name, "cid": e.cid, "type": e.kind, "size": e.size} for e in entries]
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
    ref: str = typer.Argument(..., metavar="CID[/PATH]", help="CID or CID/path."),
    output: Format = OutputOption,
) -> None:
    """Show what a CID names: its type, size and links."""
    from sedis.service import store_admin

    with context.engines() as engines:
        node = store_admin.stat(engines, ref)
    data = {
        "cid": node.cid,
        "type": node.kind,
        "size": node.size,
        "links": node.links,
        "block_size": node.block_size,
    }
    emit(output, data, [f"{k}: {v}" for k, v in data.items()])


@app.command("pin")
def pin(
    cid: str = typer.Argument(..., metavar="CID", help="Root CID to pin recursively."),
    output: Format = OutputOption,
) -> None:
    """Pin a DAG, so garbage collection keeps it; every block must be present."""
    from sedis.service import store_admin

    with context.engines() as engines:
        root = store_admin.pin(engines, cid)
    emit(output, {"pinned": root}, f"pinned {root}")


@app.command("unpin")
def unpin(
    cid: str = typer.Argument(..., metavar="CID", help="Root CID to unpin."),
    output: Format = OutputOption,
) -> None:
    """Remove a pin; the blocks stay until the next garbage collection."""
    from sedis.service import store_admin

    with context.engines() as engines:
        root = store_admin.unpin(engines, cid)
    emit(output, {"unpinned": root}, f"unpinned {root}")


@app.command("pins")
def pins(output: Format = OutputOption) -> None:
    """List the pinned roots."""
    from sedis.service import store_admin

    with context.engines() as engines:
        roots = store_admin.pins(engines)
    emit(output, roots, roots)


@app.command("gc")
def gc(output: Format = OutputOption) -> None:
    """Remove every block that no pin reaches."""
    from sedis.service import store_admin

    with context.engines() as engines:
        collected = store_admin.collect_garbage(engines)
    data = {"blocks_removed": collected.blocks_removed, "bytes_freed": collected.bytes_freed}
    emit(
        output,
        data,
        f"removed {collected.blocks_removed} blocks, freed {collected.bytes_freed} bytes",
    )


@app.command("export-car")
def export_car(
    ref: str = typer.Argument(..., metavar="CID[/PATH]", help="Root CID (or CID/path) to export."),
    dest: Path = typer.Argument(..., metavar="FILE", help="CAR file to write ('-' for stdout)."),
    output: Format = OutputOption,
) -> None:
    """Write a DAG as a CARv1, for `ipfs dag import` on any IPFS node."""
    from sedis.service import store_admin

    with context.engines() as engines:
        if str(dest) == "-":
            store_admin.export_car(engines, ref, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        written = store_admin.export_car_file(engines, ref, dest)
    emit(
        output,
        {
            "root": written.root,
            "path": str(written.path),
            "blocks": written.blocks,
            "bytes": written.bytes,
        },
        f"exported {written.blocks} blocks ({written.bytes} bytes) to {written.path}",
    )


@app.command("import-car")
def import_car(
    path: Path = typer.Argument(..., metavar="FILE", help="CAR file (v1 or v2) to import."),
    output: Format = OutputOption,
) -> None:
    """Import a CAR; every block is checked before any becomes visible. Roots are pinned."""
    from sedis.service import store_admin

    with context.engines() as engines:
        roots = store_admin.import_car(engines, path)
    emit(output, {"roots": roots}, [f"imported {r}" for r in roots])
