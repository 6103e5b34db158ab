"""share and unshare: who holds a share manifest that opens an image.

Every grant on the ledger names a share manifest by CID and hash; the owner
holds a grant too, naming the owner's current manifest. Sharing wraps the
existing blob keys for one more recipient in a new share manifest; the blobs
are untouched. Unsharing revokes the grant, which stops future pulls;
``rotate`` also re-encrypts every blob under a new key epoch and re-grants
the remaining recipients, so the removed recipient's old keys open nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sedis.core.errors import CorruptError, InvalidInputError, NotFoundError, PermissionDeniedError
from sedis.core.records import Grant, ImageRecord
from sedis.oci import model
from sedis.service import layout, naming, sealing
from sedis.service.session import Session
from sedis.store.importer import Entry

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

MAX_SHARE_MANIFEST = 4 * 1024 * 1024


def fetch_manifest(session: Session, cid: str, expected_hash: str) -> sealing.ShareManifest:
    """A share manifest from the store, checked against the hash the ledger holds."""
    raw = session.store.read_bytes(cid, MAX_SHARE_MANIFEST)
    if model.sha256_digest(raw) != expected_hash:
        raise CorruptError(f"share manifest {cid} does not match the hash on the ledger")
    return sealing.parse_share_manifest(raw)


def root_manifest(session: Session, root_cid: str) -> tuple[bytes, str]:
    """The share manifest that a published layout's index.json names, and its CID."""
    import json

    index = json.loads(session.store.read_bytes(f"{root_cid}/index.json", 64 * 1024))
    digest = model.check_digest(index["manifests"][0]["digest"])
    ref = f"{root_cid}/blobs/sha256/{digest.removeprefix('sha256:')}"
    raw = session.store.read_bytes(ref, MAX_SHARE_MANIFEST)
    if model.sha256_digest(raw) != digest:
        raise CorruptError(f"the manifest in {root_cid} does not match its digest")
    return raw, str(session.store.resolve(ref))


def owned(session: Session, ref: str) -> ImageRecord:
    digest = naming.resolve(session.reader, ref)
    record = session.reader.image(digest)
    if record is None:
        raise NotFoundError(f"{digest} is not on the ledger")
    if record.owner.lower() != session.address.lower():
        raise PermissionDeniedError(
            f"only the owner of {digest} may change its grants ({record.owner})"
        )
    return record


def owner_view(session: Session, record: ImageRecord) -> sealing.ShareManifest:
    grant = session.reader.grant_of(record.digest, session.address)
    if grant is None:
        raw, _ = root_manifest(session, record.root_cid)
        return sealing.parse_share_manifest(raw)
    return fetch_manifest(session, grant.manifest_cid, grant.manifest_hash)


@dataclass
class ShareResult:
    digest: str
    recipient: str
    manifest_cid: str
    expires_at: int | None
    transactions: list[str] = field(default_factory=list)


def share(session: Session, ref: str, who: str, expires_at: int | None) -> ShareResult:
    record = owned(session, ref)
    address = session.resolve_recipient(who)
    cid, tx_hash = grant_to(session, record, address, expires_at)
    return ShareResult(record.digest, address, cid, expires_at, [tx_hash])


def grant_to(
    session: Session, record: ImageRecord, address: str, expires_at: int | None = None
) -> tuple[str, str]:
    """Wrap the image's current keys for ``address`` (and the owner) in a new share
    manifest and grant it on the ledger; return the manifest's CID and the transaction."""
    keys = [session.public_key]
    if address.lower() != session.address.lower():
        keys.append(session.recipient_key(address))
    image = sealing.open_share(owner_view(session, record), session.encryption_key)
    cid, share_hash = _add_share(session, image, keys)
    tx = session.ledger.grant(record.digest, address, cid, share_hash, expires_at)
    return cid, tx.tx_hash


def _add_share(session: Session, image: sealing.SealedImage, keys: list[JWK]) -> tuple[str, str]:
    raw = sealing.share_manifest(image, keys)
    entry = session.store.add_bytes(raw, pin=True)
    return str(entry.cid), model.sha256_digest(raw)


@dataclass
class UnshareResult:
    digest: str
    recipient: str
    rotated: bool
    epoch: int
    regranted: list[str] = field(default_factory=list)
    transactions: list[str] = field(default_factory=list)


def unshare(session: Session, ref: str, who: str, rotate: bool) -> UnshareResult:
    record = owned(session, ref)
    address = session.resolve_recipient(who)
    if address.lower() == session.address.lower():
        raise InvalidInputError("the owner cannot unshare an image from itself")
    ledger = session.ledger
    if not ledger.is_granted(record.digest, address):
        raise NotFoundError(f"{address} holds no live grant to {record.digest}")
    current = owner_view(session, record)
    result = UnshareResult(record.digest, address, rotate, current.epoch)
    result.transactions.append(ledger.revoke_grant(record.digest, address).tx_hash)
    if not rotate:
        return result

    rotated = _reseal(session, sealing.open_share(current, session.encryption_key))
    result.epoch = rotated.epoch
    # The owner's manifest of the new epoch, pinned as a layout of its own.
    owner_raw = sealing.share_manifest(rotated, [session.public_key])
    blobs = {b.descriptor.digest: _entry(b) for b in rotated.blobs()}
    _, owner_entry = layout.add_layout(session.store, owner_raw, blobs, None)
    tx = ledger.grant(
        record.digest, session.address, str(owner_entry.cid), model.sha256_digest(owner_raw)
    )
    result.transactions.append(tx.tx_hash)
    for grant in _live_recipients(session, record, exclude=address):
        cid, share_hash = _add_share(
            session, rotated, [session.public_key, session.recipient_key(grant.recipient)]
        )
        tx = ledger.grant(record.digest, grant.recipient, cid, share_hash, grant.expires_at)
        result.transactions.append(tx.tx_hash)
        result.regranted.append(grant.recipient)
    return result


def _live_recipients(session: Session, record: ImageRecord, exclude: str) -> list[Grant]:
    skip = {exclude.lower(), session.address.lower()}
    return [
        g
        for g in session.ledger.grants(record.digest)
        if g.recipient.lower() not in skip and session.ledger.is_granted(record.digest, g.recipient)
    ]


def _reseal(session: Session, image: sealing.SealedImage) -> sealing.SealedImage:
    """Decrypt every blob and encrypt it again under the next key epoch."""
    store = session.store
    secret = sealing.owner_secret(session.encryption_key)
    epoch = image.epoch + 1

    def again(blob: sealing.SealedBlob) -> sealing.SealedBlob:
        checked = sealing.checked_plaintext(store, blob, "application/octet-stream")
        private = sealing.derive_private_options(secret, checked, epoch)
        return sealing.seal_blob(store, checked, blob.descriptor.media_type, private)

    report = again(image.report) if image.report is not None else None
    return sealing.SealedImage(
        again(image.source),
        again(image.config),
        tuple(again(b) for b in image.layers),
        epoch,
        report,
    )


def _entry(blob: sealing.SealedBlob) -> Entry:
    return Entry(blob.cid, blob.descriptor.size, blob.tsize)
