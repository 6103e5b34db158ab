"""`sedis demo`: the main job, step by step, on the embedded defaults."""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import typer

from sedis.cli.output import info


def _pseudo_random(size: int, seed: bytes) -> bytes:
    """Deterministic, incompressible bytes (sha256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the demo's data directory."),
) -> None:
    """Run the demo in a throw-away data directory: add, export, import, read back checked."""
    from sedis.store.embedded import EmbeddedStore

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="sedis-demo-"))
    info(f"sedis demo (data in {work})\n")

    sample = work / "input" / "app.bin"
    tree = work / "input" / "site"
    (tree / "assets").mkdir(parents=True)
    (tree / "docs").mkdir()
    sample.write_bytes(_pseudo_random(3 * 1024 * 1024 + 17, b"sedis-demo"))
    (tree / "index.html").write_text("<h1>hello from sedis</h1>\n")
    (tree / "assets" / "logo.bin").write_bytes(_pseudo_random(300 * 1024, b"logo"))
    (tree / "empty.txt").write_bytes(b"")

    from sedis.store.importer import ImportOptions

    publisher = EmbeddedStore(work / "publisher" / "store")
    info("1. Add a 3 MiB file and a directory tree to the embedded store")
    v1 = publisher.add_path(sample)
    v0 = publisher.add_path(sample, ImportOptions(cid_version=0))
    root = publisher.add_path(tree)
    info(f"   app.bin  CIDv1 {v1.cid}")
    info(f"   app.bin  CIDv0 {v0.cid}   (the same CIDs `ipfs add` gives)")
    info(f"   site/    {root.cid}")
    for entry in publisher.ls(str(root.cid)):
        info(f"            {entry.name:<12} {entry.cid}")

    info("\n2. Export the tree and the file as CAR files")
    car_tree = work / "site.car"
    car_file = work / "app.car"
    with open(car_tree, "wb") as out:
        blocks = publisher.export_car(str(root.cid), out)
    with open(car_file, "wb") as out:
        blocks += publisher.export_car(str(v1.cid), out)
    info(f"   {blocks} blocks, {car_tree.stat().st_size + car_file.stat().st_size} bytes")

    info("\n3. Import both CARs into a fresh store (every block checked first)")
    recipient = EmbeddedStore(work / "recipient" / "store")
    for car in (car_tree, car_file):
        with open(car, "rb") as stream:
            for imported in recipient.import_car(stream, car.name):
                info(f"   imported and pinned {imported}")

    info("\n4. Read the content back from the fresh store, checked")
    got = hashlib.sha256(b"".join(recipient.cat(str(v1.cid)))).hexdigest()
    want = hashlib.sha256(sample.read_bytes()).hexdigest()
    status = "identical" if got == want else "DIFFERENT"
    info(f"   app.bin          sha256 {got[:16]}...  {status}")
    page = b"".join(recipient.cat(f"{root.cid}/index.html"))
    info(f"   site/index.html  {page.decode().strip()}")
    if got != want:
        raise typer.Exit(1)

    info("\n5. Flip one byte of a stored block, and read again")
    leaf = recipient.ls(str(root.cid))[0].cid
    path = recipient.root / "blocks" / leaf.key[:2] / leaf.key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    from sedis.core.errors import CorruptError

    try:
        b"".join(recipient.cat(str(leaf)))
    except CorruptError as exc:
        info(f"   refused: {exc}")
    else:
        info("   the damaged block was served: this is a bug")
        raise typer.Exit(1)

    elapsed = time.monotonic() - started
    info(
        f"\nDone in {elapsed:.1f} s: CIDs computed as kubo does, content moved by CAR, "
        "every byte read back verified, and damage caught."
    )
    if keep:
        info(f"Data kept in {work}")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
