"""What a removed recipient keeps, and the short script it runs against the owner's store.

Before the rotation the recipient reads its grant on the ledger (the share
manifest's CID and hash) and the manifest's bytes from the store, and holds
its own private key. Afterwards it asks the store for the manifest again and
for every sealed blob that manifest names, and decrypts them with sedis's own
functions, as anyone could.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sedis.config import Settings
from sedis.core.address import Address
from sedis.core.errors import SedisError
from sedis.crypto.identities import IdentityStore
from sedis.ledger import open_ledger
from sedis.oci import model
from sedis.service import sealing
from sedis.store import open_store
from tests.e2e.conftest import PASSWORD, only_publisher

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK


@dataclass(frozen=True)
class Kept:
    """What the recipient held before it was removed."""

    manifest_cid: str
    manifest_hash: str
    manifest: bytes
    key: JWK
    blobs: tuple[tuple[str, bytes], ...]  # (CID, a slice of its ciphertext) per sealed blob

    def share(self) -> sealing.ShareManifest:
        return sealing.parse_share_manifest(self.manifest)


def keep(settings: Settings, name: str, address: str, digest: str) -> Kept:
    """The recipient's grant, manifest and key, checked to open the image now."""
    with open_ledger(settings) as ledger:
        grant = ledger.grant_of(only_publisher(ledger, digest), digest, Address.parse(address))
    assert grant is not None
    key = IdentityStore(settings.home).unlock_encryption_key(name, PASSWORD)
    with open_store(settings) as store:
        raw = store.read_bytes(grant.manifest_cid, 4 * 1024 * 1024)
        assert model.sha256_digest(raw) == grant.manifest_hash
        share = sealing.parse_share_manifest(raw)
        slices = []
        for desc in blobs_of(share):
            ciphertext = b"".join(store.cat(str(sealing.blob_cid(desc))))
            slices.append((str(sealing.blob_cid(desc)), ciphertext[-256:]))
            private, public = sealing.unwrap(desc, key)
            assert b"".join(sealing.open_sealed(store, desc, private, public))  # opens now
    return Kept(grant.manifest_cid, grant.manifest_hash, raw, key, tuple(slices))


def blobs_of(share: sealing.ShareManifest) -> list[model.Descriptor]:
    extra = [share.source] + ([share.report] if share.report is not None else [])
    return [*share.manifest.descriptors(), *extra]


def attack(settings: Settings, kept: Kept) -> list[str]:
    """Fetch the manifest and decrypt every blob it names; one outcome per try.

    An outcome is ``opened`` or the name of the SedisError the store's answer led to.
    """
    outcomes = []
    with open_store(settings) as store:
        try:
            store.read_bytes(kept.manifest_cid, 4 * 1024 * 1024)
            outcomes.append("opened")
        except SedisError as exc:
            outcomes.append(type(exc).__name__)
        for desc in blobs_of(kept.share()):
            private, public = sealing.unwrap(desc, kept.key)
            try:
                plain = b"".join(sealing.open_sealed(store, desc, private, public))
                assert model.sha256_digest(plain) == private.digest
                outcomes.append("opened")
            except SedisError as exc:
                outcomes.append(type(exc).__name__)
    return outcomes
