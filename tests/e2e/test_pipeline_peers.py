"""The pipeline against real images and peers: busybox built with umoci, a debootstrap
Debian image, oci-image-tool, podman, docker-registry; and SIGKILL at every stage."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sedis.core.address import Address
from sedis.core.records import AuditQuery
from tests.e2e.conftest import World, layout_digests
from tests.oci_images import build_busybox, docker_registry, require

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_busybox(tmp_path_factory.mktemp("busybox"))


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Debian bookworm image: the debootstrap root, packed into one layer by umoci."""
    from tests.integration.scan.images import debian_layout, debian_rootfs

    require("umoci", "debootstrap")
    return debian_layout(tmp_path_factory.mktemp("debian"), debian_rootfs())


def round_trip(
    world: World, src: str, name: str, src_layout: Path, tag: str, *flags: str
) -> tuple[Path, Path]:
    published = world.sedis("publish", src, "--name", name, "--to", "bob", "--as", "alice", *flags)
    assert published.code == 0, published.err
    layout, archive = world.work / f"{tag}-pulled", world.work / f"{tag}-pulled.tar"
    pulled = world.sedis("pull", name, f"oci:{layout}:{tag}", "--as", "bob")
    assert pulled.code == 0, pulled.err
    assert (
        world.sedis("pull", name, f"docker-archive:{archive}:sedis/{tag}:1", "--as", "bob").code
        == 0
    )
    want = layout_digests(src_layout)
    assert layout_digests(layout) == want
    verified = world.sedis(
        "verify", f"oci:{layout}:{tag}", f"docker-archive:{archive}", "-o", "json"
    )
    assert verified.code == 0
    assert {json.loads(line)["digest"] for line in verified.out.splitlines()} == {want[0]}
    require("oci-image-tool")
    check = subprocess.run(
        ["oci-image-tool", "validate", "--type", "image", str(layout)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    return layout, archive


def podman_load(archive: Path, name: str, tmp: Path) -> str:
    from tests.integration.test_oci_peers import _podman_usable

    reason = _podman_usable()
    if reason:
        pytest.skip(reason)
    runroot = Path(tempfile.mkdtemp(prefix="sedis-pr-", dir="/tmp"))
    try:
        podman = [
            "podman",
            "--root",
            str(tmp / "podman-root"),
            "--runroot",
            str(runroot),
            "--storage-driver",
            "vfs",
        ]
        subprocess.run([*podman, "load", "-q", "-i", str(archive)], check=True, capture_output=True)
        return subprocess.run(
            [*podman, "image", "inspect", "--format", "{{.Id}}", name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def test_busybox_round_trip(world: World, busybox: Path, tmp_path: Path) -> None:
    _, archive = round_trip(world, f"oci:{busybox}:latest", "peers/busybox:1", busybox, "bb")
    config = layout_digests(busybox)[1]
    assert podman_load(archive, "docker.io/sedis/bb:1", tmp_path) == config[7:]


@pytest.mark.slow
def test_debian_round_trip(world: World, debian: Path, tmp_path: Path) -> None:
    # zlib1g in bookworm carries CVE-2023-45853 (critical, no fix): the default policy refuses.
    refused = world.sedis(
        "publish", f"oci:{debian}:12", "--name", "peers/debian:12", "--as", "alice"
    )
    assert refused.code == 10 and "CVE-2023-45853" in refused.out
    assert world.sedis("verify", layout_digests(debian)[0]).code == 2
    _, archive = round_trip(
        world, f"oci:{debian}:12", "peers/debian:12", debian, "deb", "--fail-on", "none"
    )
    scan = json.loads(world.sedis("inspect", "peers/debian:12", "-o", "json").out)["record"]["scan"]
    assert scan["critical"] >= 1 and scan["not_scanned"] is False
    assert podman_load(archive, "docker.io/sedis/deb:1", tmp_path) == layout_digests(debian)[1][7:]


def _plaintext_windows(layout: Path) -> set[bytes]:
    _, config, layers = layout_digests(layout)
    windows: set[bytes] = set()
    for digest in (config, *layers):
        blob = (layout / "blobs" / "sha256" / digest[7:]).read_bytes()
        texts = [blob]
        if blob[:2] == b"\x1f\x8b":
            texts.append(gzip.decompress(blob))
        for text in texts:
            windows.update(text[i : i + 64] for i in range(0, len(text) - 63, 64))
    # A window of a few distinct bytes (tar padding, an ELF header's zeros with a
    # flag in them) says nothing about the content, and the store's own index
    # pages can hold the same shape by chance.
    return {w for w in windows if len(set(w)) >= 8}


def test_no_stored_file_holds_plaintext(world: World, busybox: Path) -> None:
    assert (
        world.sedis(
            "publish", f"oci:{busybox}:latest", "--name", "peers/busybox:1", "--as", "alice"
        ).code
        == 0
    )
    windows = _plaintext_windows(busybox)
    assert len(windows) > 1000
    files = [p for p in (world.home / "store").rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        data = path.read_bytes()
        for i in range(0, max(len(data) - 63, 0)):
            assert data[i : i + 64] not in windows, f"plaintext found in {path}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with docker_registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


def test_publish_from_and_pull_into_a_registry(world: World, busybox: Path, registry: str) -> None:
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"oci:{busybox}:latest",
            f"docker://{registry}/src/busybox:1",
        ],
        check=True,
        capture_output=True,
    )
    published = world.sedis(
        "publish",
        f"docker://{registry}/src/busybox:1",
        "--insecure",
        "--name",
        "peers/registry:1",
        "--to",
        "bob",
        "--as",
        "alice",
        "-o",
        "json",
    )
    assert published.code == 0, published.err
    digest = json.loads(published.out)["digest"]
    assert digest == layout_digests(busybox)[0]
    pulled = world.sedis(
        "pull",
        "peers/registry:1",
        f"docker://{registry}/dst/busybox:1",
        "--insecure",
        "--as",
        "bob",
    )
    assert pulled.code == 0, pulled.err
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry}/dst/busybox:1"],
        check=True,
        capture_output=True,
    ).stdout
    import hashlib

    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest


def _cli(world: World, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
    env.update(SEDIS_HOME=str(world.home), SEDIS_PASSWORD=os.environ["SEDIS_PASSWORD"])
    return subprocess.Popen(
        [sys.executable, "-m", "sedis", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_publish_killed_anywhere_completes_on_rerun_with_one_record(world: World) -> None:
    from sedis.config import load
    from sedis.ledger import open_ledger

    src = world.image("killed", layers=3, size=40_000_000)
    args = ["publish", f"oci:{src}:v1", "--name", "peers/killed:v1", "--to", "bob", "--as", "alice"]
    for delay in (0.8, 1.2, 1.6, 2.0, 2.4, 2.8):
        proc = _cli(world, *args)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = _cli(world, *args, "-o", "json")
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    digest = json.loads(out)["digest"]
    with open_ledger(load()) as ledger:
        events = ledger.audit_log(AuditQuery(digest=digest, kinds=frozenset({"ImagePublished"})))
        assert len(events) == 1
        alice = Address.parse(world.addresses["alice"])
        grant = ledger.grant_of(alice, digest, Address.parse(world.addresses["bob"]))
        assert grant is not None and grant.active_at(ledger.now())
        assert ledger.resolve(alice, "peers/killed", "v1") == digest
    dest = world.work / "killed-pulled"
    assert world.sedis("pull", "peers/killed:v1", f"oci:{dest}", "--as", "bob").code == 0
    assert layout_digests(dest) == layout_digests(src)


def test_a_pull_killed_midway_leaves_no_destination(world: World) -> None:
    src = world.image("pullkill", layers=2, size=120_000_000)
    assert world.publish(f"oci:{src}:v1", "peers/pullkill:v1", "--to", "bob").code == 0
    dest = world.work / "pullkill-out"
    proc = _cli(world, "pull", "peers/pullkill:v1", f"oci:{dest}:v1", "--as", "bob")
    deadline = time.monotonic() + 60
    # Kill once the pull has started writing (its hidden partial directory exists).
    while time.monotonic() < deadline:
        if any(p.name.startswith(".pullkill-out.") for p in world.work.iterdir()):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not dest.exists()
    assert any(p.name.startswith(".pullkill-out.") for p in world.work.iterdir())
