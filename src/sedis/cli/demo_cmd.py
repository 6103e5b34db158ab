"""`sedis demo`: the main job, end to end, on the embedded defaults.

Three identities: alice publishes, bob receives, mallory squats. bob's trust
policy names alice. mallory records alice's image and tags alice's name
first; alice publishes and shares it anyway; bob pulls it into two formats
and verifies it, TRUSTED as alice's; mallory's revocation of her own record
changes nothing for bob; alice revokes it and bob's next pull is refused.
Everything runs in a throw-away data directory, through the same commands a
user types.
"""

from __future__ import annotations

import os
import secrets
import shlex
import tempfile
import time
from pathlib import Path

import typer

from sedis.cli.output import info

_NAME = "acme/app:1.0"

# bob's policy: every image, and only alice's word about it. The demo's identities share
# one data directory, where the default policy would trust all three.
_POLICY = """\
# bob trusts alice's records and tags, and nobody else's.
[[trust]]
images = ["*"]
publishers = ["alice"]
max_severity = "high"   # no critical finding

[default]
decision = "deny"
"""


def _squatter_image(work: Path) -> Path:
    """mallory's own image, which she tags with alice's name."""
    from sedis.oci.builder import FileSpec, ImageSpec, LayerSpec, build

    script = b"#!/bin/sh\necho 'not what you asked for'\n"
    spec = ImageSpec(layers=[LayerSpec([FileSpec("app/hello.sh", script, 0o755)])])
    dest = work / "squat-image"
    build(spec, dest, "1.0")
    return dest


def _image(work: Path) -> Path:
    from sedis.oci.builder import FileSpec, ImageSpec, LayerSpec, build

    seed = b"sedis demo data"
    data = bytearray()
    # A layer of several store chunks (256 KiB each), so the demo shows a real DAG.
    while len(data) < 3 * 256 * 1024:
        import hashlib

        data += hashlib.sha256(seed + len(data).to_bytes(8, "big")).digest()
    spec = ImageSpec(
        layers=[
            LayerSpec(
                [
                    FileSpec("etc/os-release", b'NAME="sedis demo"\nID=sedis-demo\n'),
                    FileSpec(
                        "app/hello.sh", b"#!/bin/sh\necho 'hello from a sealed image'\n", 0o755
                    ),
                ],
                comment="base files",
            ),
            LayerSpec(
                [
                    FileSpec("app/model.bin", bytes(data)),
                    # Two real, known-vulnerable dependencies, for the scan to find.
                    FileSpec(
                        "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
                        b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
                    ),
                    FileSpec(
                        "app/node_modules/lodash/package.json",
                        b'{"name": "lodash", "version": "4.17.20"}\n',
                    ),
                ],
                gzip=False,
                comment="app and its dependencies",
            ),
        ],
        cmd=["/app/hello.sh"],
        labels={"org.opencontainers.image.title": "sedis demo"},
    )
    dest = work / "hello-image"
    build(spec, dest, "1.0")
    return dest


def _run(*args: str, expect: int = 0) -> int:
    from sedis.cli.app import main

    info("")
    info(f"  $ sedis {shlex.join(args)}")
    code = main(list(args))
    if code != expect:
        info(f"  (exit code {code}, expected {expect}: the demo stops here)")
        raise typer.Exit(1)
    return code


def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the demo's data directory."),
) -> None:
    """Run the demo in a throw-away data directory: trust, publish, share, pull, verify,
    a squatter's records counting for nothing, revoke."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="sedis-demo-"))
    saved = {k: os.environ.get(k) for k in ("SEDIS_HOME", "SEDIS_PASSWORD", "SEDIS_IDENTITY")}
    os.environ["SEDIS_HOME"] = str(work / "home")
    # The demo's identities share one random throw-away password, given the way a CI job would.
    os.environ["SEDIS_PASSWORD"] = secrets.token_urlsafe(18)
    os.environ.pop("SEDIS_IDENTITY", None)
    try:
        _steps(work)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    info("")
    info(f"Done in {time.monotonic() - started:.1f} s.")
    if keep:
        info(f"Data kept in {work}")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _steps(work: Path) -> None:
    info(f"sedis demo: data in {work}")
    info("")
    info("1. Three identities: alice publishes, bob receives, mallory squats (keys encrypted)")
    _run("identity", "create", "alice")
    _run("identity", "create", "bob")
    _run("identity", "create", "mallory")
    _run("identity", "register", "bob")

    info("")
    info("2. bob trusts alice explicitly: his policy file names her, and nobody else")
    policy = work / "home" / "policy.toml"
    policy.write_text(_POLICY)
    info(f"   {policy}:")
    for line in _POLICY.splitlines():
        info(f"   | {line}")
    _run("policy", "check", str(policy))

    info("")
    info("3. A small real image, built by sedis itself (no container engine)")
    image = _image(work)
    info(f"   built oci:{image}:1.0")

    info("")
    info("4. Scan before share: an offline vulnerability database, and the image's findings")
    feeds = Path(__file__).parent / "demo_data"
    _run("vulndb", "import", *sorted(str(p) for p in feeds.glob("*.json")))
    _run("scan", f"oci:{image}:1.0")

    info("")
    info("5. mallory moves first: she tags alice's name to her own image, and records")
    info("   alice's image herself (its digest leaked from a CI log)")
    squat = _squatter_image(work)
    _run("publish", f"oci:{squat}:1.0", "--name", _NAME, "--skip-scan", "--as", "mallory")
    _run("publish", f"oci:{image}:1.0", "--name", "mallory/copy:1.0", "--as", "mallory")

    info("")
    info("6. alice's policy refuses high findings: nothing is stored or recorded")
    _run(
        "publish",
        f"oci:{image}:1.0",
        "--name",
        _NAME,
        "--fail-on",
        "high",
        "--as",
        "alice",
        expect=10,
    )

    info("")
    info("7. Refusing critical only, alice publishes it under her name, encrypted, for bob:")
    info("   mallory's record and tag block nothing, since they are mallory's own")
    _run("publish", f"oci:{image}:1.0", "--name", _NAME, "--to", "bob", "--as", "alice")

    info("")
    info("8. bob pulls acme/app:1.0 into an OCI layout and a docker-archive: the name is")
    info("   alice's tag under his policy, and both verify as alice's image, TRUSTED")
    layout, archive = work / "pulled-layout", work / "pulled.tar"
    _run("pull", _NAME, f"oci:{layout}:1.0", "--as", "bob")
    _run("pull", _NAME, f"docker-archive:{archive}:acme/app:1.0", "--as", "bob")
    _run("verify", f"oci:{layout}:1.0", f"docker-archive:{archive}", "--name", _NAME)
    info("   mallory's acme/app:1.0 is her word alone, which bob's policy does not count:")
    _run("verify", _NAME, "--publisher", "mallory", expect=2)

    info("")
    info("9. The store holds no plaintext")
    _confidentiality_check(work / "home" / "store", image)

    info("")
    info("10. mallory revokes her own record of alice's image: nothing changes for bob")
    digest = _digest_of(layout)
    _run("status", digest, "revoked", "--reason", "mallory says so", "--as", "mallory")
    _run("verify", _NAME)
    _run("policy", "explain", _NAME)

    info("")
    info("11. alice revokes it; bob's next pull is refused, and verify says so")
    _run("status", _NAME, "revoked", "--reason", "demo: key material leaked", "--as", "alice")
    _run("pull", _NAME, f"oci:{work / 'refused'}", "--as", "bob", expect=8)
    _run("verify", _NAME, expect=4)
    info(f"   nothing was written: {(work / 'refused').exists() is False}")

    info("")
    info("12. The audit trail on the ledger: every publisher's record, and which counted")
    _run("inspect", _NAME)


def _digest_of(layout: Path) -> str:
    import json

    index = json.loads((layout / "index.json").read_text())
    return str(index["manifests"][0]["digest"])


def _confidentiality_check(store: Path, image: Path) -> None:
    """No 64-byte window of any layer's or the config's plaintext is in any stored block."""
    from sedis.oci.oci_layout import OciLayoutSource

    with OciLayoutSource(image, "1.0") as source:
        blobs = [source.read_blob(d, 64 << 20) for d in source.manifest.descriptors()]
    windows = {b[i : i + 64] for b in blobs for i in range(0, len(b) - 63, 64)}
    # A run of one repeated byte (tar padding, an empty database page) says nothing.
    windows = {w for w in windows if len(set(w)) > 1}
    stored = [p for p in store.rglob("*") if p.is_file()]
    leaks = 0
    for block in stored:
        data = block.read_bytes()
        leaks += sum(1 for i in range(0, max(len(data) - 63, 0)) if data[i : i + 64] in windows)
    info(
        f"   scanned {len(stored)} stored files for {len(windows)} windows of layer and "
        f"config plaintext: {leaks} found"
    )
    if leaks:
        raise typer.Exit(1)
