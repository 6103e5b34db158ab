"""Small OCI layouts for the use-case tests: made on disk, published, and read back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sedis.core.address import Address
from sedis.core.policy import TrustPolicy
from sedis.oci.source import ImageSource
from sedis.oci.transports import open_sink, open_source
from sedis.scan.vulndb.db import VulnDB
from sedis.scan.vulndb.importer import import_paths
from sedis.service import publish, pull, trust
from sedis.service.engines import Actor, Engines
from sedis.service.naming import parse_name
from tests.oci_images import Image, file, make_image, make_tar, write_layout
from tests.unit.scan.roots import DATA
from tests.unit.service.fakes import address_of

# The policy of a home where alice, bob and carol are known and trusted, and nobody else.
FRIENDS = trust.default_policy([address_of(n) for n in ("alice", "bob", "carol")], [])


def trusting(*actors: Actor) -> TrustPolicy:
    """The default policy of a home whose identities are ``actors``."""
    return trust.default_policy([a.address for a in actors], [])


# A symmetric key: no share manifest can wrap keys for it.
UNUSABLE_KEY = b'{"k":"c2VkaXMgc2VkaXMgc2VkaXMgc2VkaXMgc2VkaXM","kty":"oct"}'
# The key directory only asks that a Paillier modulus be present.
PAILLIER_N = b"\x01" * 256


def register_unusable_key(actor: Actor) -> None:
    actor.ledger.register_keys(UNUSABLE_KEY, PAILLIER_N)


@dataclass(frozen=True, slots=True)
class Layout:
    """An image written as an OCI layout, tagged ``tag``."""

    path: Path
    image: Image
    tag: str = "v1"

    @property
    def ref(self) -> str:
        return f"oci:{self.path}:{self.tag}"

    def open(self) -> ImageSource:
        return open_source(self.ref)

    def blob_path(self, digest: str) -> Path:
        return self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")


def make_layout(root: Path, text: str = "hello", *, layers: int = 1, tag: str = "v1") -> Layout:
    """A layout of ``layers`` one-file layers whose contents depend on ``text``."""
    tars = [make_tar([file(f"layer{i}.txt", f"{text} {i}\n")]) for i in range(layers)]
    image = make_image(tars)
    return Layout(write_layout(root, image, tag), image, tag)


def publish_layout(
    engines: Engines,
    actor: Actor,
    layout: Layout,
    name: str | None = "app:v1",
    recipients: Sequence[str] = (),
) -> publish.PublishResult:
    with layout.open() as source:
        return publish.publish(
            engines,
            actor,
            source,
            name=parse_name(name) if name is not None else None,
            recipients=recipients,
        )


def pull_to(
    engines: Engines,
    actor: Actor,
    ref: str,
    dest: Path,
    *,
    policy: TrustPolicy = FRIENDS,
    publisher: Address | None = None,
) -> pull.PullResult:
    sink = open_sink(f"oci:{dest}:v1")
    return pull.pull(engines, actor, ref, sink, policy=policy, publisher=publisher)


def layout_manifest_digest(root: Path) -> str:
    """The digest of the one manifest a layout's index.json names."""
    index = json.loads((root / "index.json").read_text())
    (entry,) = index["manifests"]
    digest: str = entry["digest"]
    return digest


def layout_blobs(root: Path) -> dict[str, bytes]:
    """Every blob of a layout (manifests too), by digest."""
    return {
        f"sha256:{path.name}": path.read_bytes()
        for path in sorted((root / "blobs" / "sha256").iterdir())
    }


def source_blobs(layout: Layout) -> dict[str, bytes]:
    """The blobs an image is made of, manifest included, by digest."""
    return {**layout.image.blobs, layout.image.digest: layout.image.manifest}


def make_vulndb(path: Path) -> Path:
    """The test vulnerability data (OSV and NVD records), imported at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = VulnDB.open(path, create=True)
    try:
        import_paths(db, [DATA / "osv", DATA / "nvd-cves.json"], "2025-05-20T00:00:00Z")
    finally:
        db.close()
    return path
