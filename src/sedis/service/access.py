"""share and unshare: who holds a share manifest that opens an image.

A publisher shares its own record of an image, and only that: the "owner"
below is the publisher of the record at hand. Every grant on the ledger
names a share manifest by CID and hash; the owner holds a grant too, naming
the owner's current manifest. Sharing wraps the existing blob keys for one
more recipient in a new share manifest; the blobs are untouched. Unsharing
revokes the grant, which stops future pulls; ``rotate`` also re-encrypts
every blob under a new key epoch, re-grants the remaining recipients, and
has the store drop the old epoch's ciphertext and share manifests, so the
removed recipient's old keys open nothing the owner's store still serves.
What a recipient already pulled, or could decrypt before, stays theirs: no
encryption takes that back.

A rotation is one ledger transaction (the revoke and every re-grant, all or
none) between store work that a re-run repeats to the same result: blob keys
are derived per epoch, so the new epoch's ciphertext and CIDs come out the
same each time. A re-run after an interrupted rotation, by this version or an
older one that sent its transactions one by one, finishes it.

Stored form of an epoch after the first: a UnixFS directory of that epoch's
sealed blobs (named by their hex digest, as in an OCI layout's blobs/sha256),
pinned, and each share manifest pinned on its own. The directory holds no
share manifest, so it is the same on every run and can be named again from
any manifest of its epoch when that epoch is released.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sedis.core.access import live_grants
from sedis.core.address import Address
from sedis.core.errors import (
    ConflictError,
    CorruptError,
    InvalidInputError,
    NotFoundError,
    SedisError,
)
from sedis.core.records import (
    AuditEvent,
    AuditQuery,
    Grant,
    GrantRequest,
    ImageRecord,
    Status,
    TxReceipt,
    digest_from_bytes,
)
from sedis.crypto import keywrap
from sedis.oci import model
from sedis.oci.checked import CheckedBlob
from sedis.oci.streams import iter_reader
from sedis.service import layout, sealing, trust
from sedis.service.engines import Actor, Engines, recipient_key
from sedis.store import dagpb, reader
from sedis.store.cid import RAW, Cid
from sedis.store.importer import Entry, Importer

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.store.base import ContentStore

MAX_SHARE_MANIFEST = 4 * 1024 * 1024


def fetch_manifest(store: ContentStore, cid: str, expected_hash: str) -> sealing.ShareManifest:
    """A share manifest from the store, checked against the hash the ledger holds."""
    raw = store.read_bytes(cid, MAX_SHARE_MANIFEST)
    if model.sha256_digest(raw) != expected_hash:
        raise CorruptError(f"share manifest {cid} does not match the hash on the ledger")
    return sealing.parse_share_manifest(raw)


def root_manifest(store: ContentStore, root_cid: str) -> tuple[bytes, str]:
    """The share manifest that a published layout's index.json names, and its CID."""
    what = f"index.json of {root_cid}"
    index = model.parse_index(store.read_bytes(f"{root_cid}/index.json", 64 * 1024), None, what)
    if not index.manifests:
        raise CorruptError(f"{what} names no manifest")
    digest = index.manifests[0].digest
    ref = f"{root_cid}/blobs/sha256/{digest.removeprefix('sha256:')}"
    raw = store.read_bytes(ref, MAX_SHARE_MANIFEST)
    if model.sha256_digest(raw) != digest:
        raise CorruptError(f"the manifest in {root_cid} does not match its digest")
    return raw, str(store.resolve(ref))


def owner_view(engines: Engines, owner: Address, record: ImageRecord) -> sealing.ShareManifest:
    """The share manifest the publisher's own grant names (or the published layout's)."""
    grant = engines.ledger.grant_of(record.publisher, record.digest, owner)
    if grant is None:
        raw, _ = root_manifest(engines.store, record.root_cid)
        return sealing.parse_share_manifest(raw)
    return fetch_manifest(engines.store, grant.manifest_cid, grant.manifest_hash)


@dataclass(frozen=True, slots=True)
class ShareResult:
    digest: str
    recipient: Address
    manifest_cid: str
    expires_at: int | None
    transactions: tuple[str, ...] = ()
    block: int | None = None  # the block the grant landed in


def share(
    engines: Engines, actor: Actor, ref: str, who: str, *, expires_at: int | None = None
) -> ShareResult:
    """Give ``who`` access to the actor's own record of an image: a share manifest with the image's
    keys wrapped for them, and a grant on the ledger (lapsing at ``expires_at``)."""
    address = actor.directory.resolve(who)
    ledger = engines.ledger
    with ledger.pinned():
        record = trust.own_record(engines, actor, ref)
        now = ledger.now()
    # Refused before a share manifest is stored: the contract would refuse the grant.
    if record.status is Status.REVOKED:
        raise ConflictError(
            f"{record.digest} is revoked; its status, grants and tags can no longer change"
        )
    if expires_at is not None and expires_at <= now:
        raise InvalidInputError("the grant would have expired already: give a later expiry")
    cid, receipt = grant_receipt(engines, actor, record, address, expires_at)
    return ShareResult(
        record.digest, address, cid, expires_at, (receipt.tx_hash,), receipt.block_number
    )


def grant_to(
    engines: Engines,
    actor: Actor,
    record: ImageRecord,
    address: Address,
    expires_at: int | None = None,
) -> tuple[str, str]:
    """Wrap the image's current keys for ``address`` (and the owner) in a new share
    manifest and grant it on the ledger; return the manifest's CID and the transaction."""
    cid, receipt = grant_receipt(engines, actor, record, address, expires_at)
    return cid, receipt.tx_hash


def grant_receipt(
    engines: Engines,
    actor: Actor,
    record: ImageRecord,
    address: Address,
    expires_at: int | None = None,
) -> tuple[str, TxReceipt]:
    """As ``grant_to``, with the whole receipt of the grant."""
    keys = [actor.keys.public_key]
    if address != actor.address:
        keys.append(usable_key(engines, actor, address))
    view = owner_view(engines, actor.address, record)
    image = sealing.open_share(view, actor.keys.private_key())
    cid, share_hash = _add_share(engines.store, image, keys)
    receipt = actor.ledger.grant(record.digest, GrantRequest(address, cid, share_hash, expires_at))
    return cid, receipt


def _add_share(store: ContentStore, image: sealing.SealedImage, keys: list[JWK]) -> tuple[str, str]:
    raw = sealing.share_manifest(image, keys)
    entry = store.add_bytes(raw, pin=True)
    return str(entry.cid), model.sha256_digest(raw)


def usable_key(engines: Engines, actor: Actor, address: Address) -> JWK:
    """A recipient's registered key, refused unless keys can be wrapped for it.

    Wrapping a throwaway payload for it runs the very code a share manifest
    will, so whatever that would refuse (a symmetric key, a point off its
    curve) is refused here, before anything is stored or sent.
    """
    from jwcrypto.common import JWException

    try:
        key = recipient_key(engines, actor, address)
        keywrap.wrap(b"{}", [key])
    except (InvalidInputError, JWException, ValueError, TypeError, KeyError) as exc:
        reason = str(exc) or type(exc).__name__
        raise InvalidInputError(
            f"{address} has registered an encryption key that cannot be used ({reason}); "
            "nothing was changed"
        ) from exc
    return key


@dataclass(frozen=True, slots=True)
class UnshareResult:
    digest: str
    recipient: Address
    rotated: bool
    epoch: int
    regranted: tuple[Address, ...] = ()
    transactions: tuple[str, ...] = ()
    released: tuple[str, ...] = ()  # store pins dropped by a rotation
    block: int | None = None  # the block of its last transaction; None when it sent none


def unshare(
    engines: Engines, actor: Actor, ref: str, who: str, *, rotate: bool = False
) -> UnshareResult:
    """Revoke ``who``'s grant to the actor's own record of an image; ``rotate`` also re-encrypts
    it under a new key epoch for everyone who remains."""
    address = actor.directory.resolve(who)
    if address == actor.address:
        raise InvalidInputError("the owner cannot unshare an image from itself")
    ledger = engines.ledger
    if rotate:
        # Not in one pinned block: a rotation reads the ledger again after it writes.
        return _rotate(engines, actor, trust.own_record(engines, actor, ref), address)
    with ledger.pinned():
        record = trust.own_record(engines, actor, ref)
        grant = ledger.grant_of(actor.address, record.digest, address)
        now = ledger.now()
    if grant is None or not grant.active_at(now):
        raise NotFoundError(f"{address} holds no live grant to {record.digest}")
    epoch = owner_view(engines, actor.address, record).epoch
    receipt = actor.ledger.revoke_grant(record.digest, address)
    return UnshareResult(
        record.digest,
        address,
        False,
        epoch,
        transactions=(receipt.tx_hash,),
        block=receipt.block_number,
    )


def _rotate(engines: Engines, actor: Actor, record: ImageRecord, address: Address) -> UnshareResult:
    """Revoke ``address`` and move everyone left to keys it never held; re-runnable.

    Each grant's share manifest says its key epoch. A removed recipient whose
    keys are of the owner's current epoch means a fresh rotation: re-encrypt.
    One whose keys are older (or whose revoke went in one transaction with a
    grant to the owner, the mark of a rotation whose old epoch is released)
    means an interrupted rotation, by this version or an older one that sent
    its transactions one by one: re-grant whoever is still on an older epoch,
    then release the older epochs.
    """
    digest = record.digest
    if record.status is Status.REVOKED:  # the contract would refuse the grants, after the work
        raise ConflictError(
            f"{digest} is revoked; its status, grants and tags can no longer change"
        )
    ledger = engines.ledger
    removed = ledger.grant_of(actor.address, digest, address)
    if removed is None:
        raise NotFoundError(f"{address} holds no grant to {digest}")
    events = ledger.audit_log(AuditQuery(publisher=actor.address, digest=digest))
    key = actor.keys.private_key()
    store = engines.store
    current = owner_view(engines, actor.address, record)
    image = sealing.open_share(current, key)
    if image.source.private.digest != digest:
        raise CorruptError(f"the owner's share manifest of {digest} seals another image")

    remaining = _live_recipients(engines, actor, record, exclude=address)
    # Keys are derived from (digest, epoch): rotating from an owner manifest
    # older than one a recipient holds would make that recipient's keys again.
    for grant in (removed, *remaining):
        held = _epoch_of(store, grant)
        if held is not None and held > current.epoch:
            raise CorruptError(
                f"the owner's share manifest of {digest} is of key epoch {current.epoch}, "
                f"but {grant.recipient} holds epoch {held}: the ledger's answers disagree"
            )
    reseal = not _rotated_out(store, actor.address, events, removed, current.epoch)
    movers = [g for g in remaining if reseal or _epoch_of(store, g) != current.epoch]
    # Every key is checked before anything is stored or sent.
    keys = {g.recipient: usable_key(engines, actor, g.recipient) for g in movers}

    grants: list[GrantRequest] = []
    regranted: list[Address] = []
    transactions: list[str] = []
    block: int | None = None
    target = image
    if reseal:
        for blob in image.blobs():  # every plaintext checked before any new ciphertext
            _check_plaintext(store, blob)
        target = _reseal(store, key, image)
        _pin_blob_set(store, target)
        owner_cid, owner_hash = _add_share(store, target, [actor.keys.public_key])
        grants.append(GrantRequest(actor.address, owner_cid, owner_hash))
    for g in movers:
        cid, share_hash = _add_share(store, target, [actor.keys.public_key, keys[g.recipient]])
        grants.append(GrantRequest(g.recipient, cid, share_hash, g.expires_at))
        regranted.append(g.recipient)
    revoke = [address] if removed.revoked_at is None else []
    if revoke or grants:
        receipt = actor.ledger.change_grants(digest, revoke, grants)
        transactions.append(receipt.tx_hash)
        block = receipt.block_number

    keep = {g.manifest_cid for g in grants}
    keep.update(g.manifest_cid for g in remaining if g not in movers)
    if not reseal:
        owner_grant = ledger.grant_of(actor.address, digest, actor.address)
        if owner_grant is not None:
            keep.add(owner_grant.manifest_cid)
    history = [e for e in events if e.name == "GrantAdded"]
    released = _release_older_epochs(engines, actor, record, history, target, keep)
    return UnshareResult(
        digest,
        address,
        True,
        target.epoch,
        tuple(regranted),
        tuple(transactions),
        tuple(str(cid) for cid in released),
        block,
    )


def _epoch_of(store: ContentStore, grant: Grant) -> int | None:
    """The key epoch of a grant's share manifest; None when the store no longer has it."""
    try:
        return fetch_manifest(store, grant.manifest_cid, grant.manifest_hash).epoch
    except NotFoundError:
        return None


def _rotated_out(
    store: ContentStore,
    owner: Address,
    events: Sequence[AuditEvent],
    removed: Grant,
    owner_epoch: int,
) -> bool:
    """Whether the removed recipient's keys are of an epoch before the owner's current one."""
    recipient = removed.recipient
    granted = [e for e in events if e.name == "GrantAdded" and _who(e) == recipient]
    revoked = [e for e in events if e.name == "GrantRevoked" and _who(e) == recipient]
    if (
        removed.revoked_at is not None
        and granted
        and revoked
        and _position(revoked[-1]) > _position(granted[-1])
    ):
        rotations = {e.tx_hash for e in events if e.name == "GrantAdded" and _who(e) == owner}
        if revoked[-1].tx_hash in rotations:
            return True
    epoch = _epoch_of(store, removed)
    # A manifest the store lost tells nothing: re-encrypting is the safe answer.
    return epoch is not None and epoch < owner_epoch


def _who(event: AuditEvent) -> Address:
    return Address.parse(str(event.fields["recipient"]))


def _position(event: AuditEvent) -> tuple[int, int]:
    return event.block_number, event.log_index


def _live_recipients(
    engines: Engines, actor: Actor, record: ImageRecord, exclude: Address
) -> list[Grant]:
    """Everyone but the owner and ``exclude`` whose grant lets them in now."""
    ledger = engines.ledger
    live = live_grants(ledger.grants(record.publisher, record.digest), ledger.now())
    return [g for g in live if g.recipient not in (exclude, actor.address)]


def _verified_plaintext(store: ContentStore, blob: sealing.SealedBlob) -> Iterator[bytes]:
    """A sealed blob's plaintext: HMAC checked first, digest checked at the end.

    Both passes read blocks checked against the blob's CID (never ``reread``),
    so every read of a CID yields the same ciphertext, and so the same plaintext.
    """
    return sealing.open_sealed(
        store, blob.descriptor, blob.private, blob.public, hashed_reread=True
    )


OCTET_STREAM = "application/octet-stream"


def _check_plaintext(store: ContentStore, blob: sealing.SealedBlob) -> None:
    for _ in _verified_plaintext(store, blob):
        pass


def _reseal(store: ContentStore, key: JWK, image: sealing.SealedImage) -> sealing.SealedImage:
    """Encrypt every blob again under the next key epoch.

    The caller has checked every blob's plaintext against its digest to the
    end; this pass reads the same CID-checked ciphertext again, so the key
    derived from that digest only ever meets that plaintext.
    """
    secret = sealing.owner_secret(key)
    epoch = image.epoch + 1

    def again(blob: sealing.SealedBlob) -> sealing.SealedBlob:
        plain = model.Descriptor(OCTET_STREAM, blob.private.digest, blob.descriptor.size)
        checked = CheckedBlob(plain, lambda: iter_reader(_verified_plaintext(store, blob)))
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


# -- the stored epochs ---------------------------------------------------------------


def _blob_set(store: ContentStore, blobs: Sequence[model.Descriptor]) -> list[tuple[str, Entry]]:
    """The entries of an epoch's blob directory, from its blobs' descriptors alone."""
    children: dict[str, Entry] = {}
    for desc in blobs:
        cid = sealing.blob_cid(desc)
        children[desc.digest.removeprefix("sha256:")] = Entry(
            cid, desc.size, _tsize(store, cid, desc.size)
        )
    return sorted(children.items())


def _tsize(store: ContentStore, cid: Cid, size: int) -> int:
    """A file's cumulative DAG size, as a directory link records it."""
    if cid.codec == RAW:
        return size
    block = store.get_block(cid)
    return len(block) + sum(link.tsize or 0 for link in dagpb.decode(block).links)


def _pin_blob_set(store: ContentStore, image: sealing.SealedImage) -> Cid:
    return store.add_directory(_blob_set(store, [b.descriptor for b in image.blobs()])).cid


class _Discard:
    def put_block(self, cid: Cid, data: bytes | memoryview) -> None:
        return None


def _blob_set_root(store: ContentStore, blobs: Sequence[model.Descriptor]) -> Cid:
    """The CID that ``_pin_blob_set`` gives these blobs, worked out without storing."""
    return Importer(_Discard()).directory_node(_blob_set(store, blobs)).cid


def _layout_root(store: ContentStore, share: sealing.ShareManifest) -> Cid:
    """The root of the layout an older version pinned for a rotated epoch: its blobs
    and the owner's manifest, as ``layout.add_layout`` builds it, untagged."""
    importer = Importer(_Discard())

    def small(data: bytes) -> Entry:
        return importer.add_stream(io.BytesIO(data))

    manifest = (model.sha256_digest(share.raw).removeprefix("sha256:"), small(share.raw))
    sha256 = importer.directory_node([*_blob_set(store, _share_blobs(share)), manifest])
    blobs = importer.directory_node([("sha256", sha256)])
    index = small(layout.index_json(share.raw, None))
    return importer.directory_node(
        [("blobs", blobs), ("index.json", index), ("oci-layout", small(layout.OCI_LAYOUT))]
    ).cid


def _share_blobs(share: sealing.ShareManifest) -> list[model.Descriptor]:
    extra = (share.source,) if share.report is None else (share.source, share.report)
    return [*share.manifest.descriptors(), *extra]


def _release_older_epochs(
    engines: Engines,
    actor: Actor,
    record: ImageRecord,
    history: Sequence[AuditEvent],
    current: sealing.SealedImage,
    keep: set[str],
) -> list[Cid]:
    """Unpin every share manifest and blob of an epoch before ``current``.

    What is released is found on the ledger (the record's root, every manifest
    ever granted) and checked in the store first: only pins that exist, and
    only manifests that the owner's key opens to this image at an older epoch,
    so a forged ledger answer cannot make the owner drop anything else.
    """
    store = engines.store
    pinned = set(store.pins())
    key = actor.keys.private_key()
    keep_cids = {_plain_cid(ref) for ref in keep} | {
        _blob_set_root(store, [b.descriptor for b in current.blobs()])
    }
    doomed: list[Cid] = []
    epochs_seen: set[int] = set()

    def older_of_this_image(share: sealing.ShareManifest) -> bool:
        if share.epoch >= current.epoch:
            return False
        try:
            private, _ = sealing.unwrap(share.source, key)
        except SedisError:
            return False
        return private.digest == record.digest

    root = _plain_cid(record.root_cid)
    if root is not None and root in pinned and root not in keep_cids:
        try:
            raw, _ = root_manifest(store, record.root_cid)
            if older_of_this_image(sealing.parse_share_manifest(raw)):
                doomed.append(root)
        except (SedisError, KeyError, IndexError, TypeError, ValueError):
            pass
    checked: set[Cid] = set()
    for event in history:
        cid = _plain_cid(str(event.fields["manifestCid"]))
        if cid is None or cid in keep_cids or cid in checked:
            continue
        checked.add(cid)
        # An older version kept the owner's manifest of a later epoch inside a
        # layout of that epoch's blobs, pinned at the layout's root only.
        in_layout = _who(event) == actor.address and cid not in pinned
        if cid not in pinned and not (in_layout and store.has(cid)):
            continue
        try:
            share_hash = digest_from_bytes(bytes.fromhex(str(event.fields["manifestHash"])[2:]))
            share = fetch_manifest(store, str(cid), share_hash)
        except (SedisError, ValueError):
            continue
        if not older_of_this_image(share):
            continue
        roots: list[Cid] = []
        try:
            if share.epoch > 0 and share.epoch not in epochs_seen:
                epochs_seen.add(share.epoch)
                roots.append(_blob_set_root(store, _share_blobs(share)))
            if in_layout and share.epoch > 0:
                roots.append(_layout_root(store, share))
        except NotFoundError:
            pass  # a pinned DAG keeps every block: a missing one means no pin left
        doomed.extend(r for r in roots if r in pinned and r not in keep_cids)
        if cid in pinned:
            doomed.append(cid)
    return store.release(doomed)


def _plain_cid(ref: str) -> Cid | None:
    """The CID that ``ref`` names when it is a bare CID (a pin), else None."""
    try:
        cid, segments = reader.parse_ref(ref)
    except SedisError:
        return None
    return None if segments else cid
