"""A world for end-to-end tests: a data directory with identities, and images built by sedis."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sedis.core.address import Address
from sedis.ledger.base import LedgerReader
from sedis.oci.builder import FileSpec, ImageSpec, LayerSpec, build
from tests.conftest import pseudo_random

PASSWORD = "e2e-" + hashlib.sha256(b"sedis e2e").hexdigest()[:16]


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class World:
    home: Path
    work: Path
    addresses: dict[str, str]
    capsys: pytest.CaptureFixture[str] | None = None

    def sedis(self, *args: str) -> Run:
        """The real CLI, in-process (identities unlock in ~0.5 s; a subprocess adds ~0.3 s)."""
        from sedis.cli.app import main

        assert self.capsys is not None
        self.capsys.readouterr()
        code = main(list(args))
        captured = self.capsys.readouterr()
        return Run(code, captured.out, captured.err)

    def publish(self, source: str, name: str, *flags: str, as_: str = "alice") -> Run:
        """`sedis publish SOURCE --name NAME [flags] --as alice`."""
        return self.sedis("publish", source, "--name", name, *flags, "--as", as_)

    def image(
        self, name: str, layers: int = 3, size: int = 600_000, vulnerable: bool = False
    ) -> Path:
        extra = (
            [
                # requests 2.31.0 is affected by CVE-2024-35195 (medium) in the test advisories.
                FileSpec(
                    "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
                    b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
                ),
            ]
            if vulnerable
            else []
        )
        specs = [
            LayerSpec([FileSpec("etc/os-release", f"ID={name}\n".encode()), *extra]),
            LayerSpec([FileSpec(f"data/{name}.bin", pseudo_random(size, name))], gzip=False),
            LayerSpec(
                [
                    FileSpec("app/run.sh", b"#!/bin/sh\n", 0o755),
                    FileSpec("app/link", symlink_to="run.sh"),
                ]
            ),
        ][:layers]
        dest = self.work / f"src-{name}"
        build(ImageSpec(specs, cmd=["/app/run.sh"]), dest, "v1")
        return dest


@pytest.fixture(scope="module")
def world_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from sedis.crypto.identities import IdentityStore
    from tests.acting import writing_as

    root = tmp_path_factory.mktemp("world")
    home = root / "home"
    home.mkdir()
    saved = {k: os.environ.get(k) for k in ("SEDIS_HOME", "SEDIS_PASSWORD", "SEDIS_IDENTITY")}
    os.environ.update(SEDIS_HOME=str(home), SEDIS_PASSWORD=PASSWORD)
    os.environ.pop("SEDIS_IDENTITY", None)
    store = IdentityStore(home)
    addresses = {}
    for name in ("alice", "bob", "carol"):
        identity = store.create(name, PASSWORD)
        addresses[name] = identity.address
        with writing_as(name, PASSWORD) as ledger:
            ledger.register_keys(identity.encryption_key_bytes(), identity.paillier_n_bytes())
    # The real advisories the scanner tests use: the Debian image has a critical finding.
    import subprocess
    import sys

    feeds = Path(__file__).resolve().parents[1] / "data" / "vulns"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sedis",
            "vulndb",
            "import",
            str(feeds / "osv"),
            str(feeds / "debian-tracker.json"),
            str(feeds / "nvd-cves.json"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ},
    )
    yield World(home, root, addresses)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def world(world_base: World, capsys: pytest.CaptureFixture[str]) -> World:
    world_base.capsys = capsys
    return world_base


def layout_digests(layout: Path, tag: str | None = None) -> tuple[str, str, list[str]]:
    """(manifest, config, layer digests) of an OCI layout, read straight from its files."""
    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    if tag is not None:
        entry = next(
            m
            for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
        )
    raw = (layout / "blobs" / "sha256" / entry["digest"][7:]).read_bytes()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == entry["digest"]
    manifest = json.loads(raw)
    return entry["digest"], manifest["config"]["digest"], [d["digest"] for d in manifest["layers"]]


def only_publisher(ledger: LedgerReader, digest: str) -> Address:
    """The publisher of the one record of ``digest`` (the tests here have one publisher)."""
    records = ledger.records(digest)
    assert len(records) == 1, records
    return records[0].publisher
