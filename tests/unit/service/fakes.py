"""In-memory stand-ins for the engines that use cases run on, for unit tests.

``FakeLedger`` keeps the ImageLedger contract's state in dicts and enforces
the contract's rules that use cases meet (ownership, revocation, name
ownership, all-or-none batches), refusing with the same SedisError classes
as the real ledger. ``FakeStore`` is a ContentStore over dicts whose CIDs are
the real importer's. The keys are real jwcrypto keys, so wrapping and
unwrapping are real too; only signing is skipped, as the fake ledger takes
its writer's address as the sender.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from eth_hash.auto import keccak
from jwcrypto.jwk import JWK

from sedis.core.address import Address, is_address
from sedis.core.errors import (
    ConflictError,
    CorruptError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from sedis.core.records import (
    Attestation,
    AuditEvent,
    Grant,
    GrantRequest,
    ImageRecord,
    KeyEntry,
    LedgerInfo,
    ScanSummary,
    Status,
    StatusEntry,
    TagEntry,
    TxReceipt,
    UsageReport,
    digest_to_bytes,
    grant_clock,
)
from sedis.crypto import keys
from sedis.crypto.signer import Signer
from sedis.ledger.abi import tag_ref
from sedis.ledger.base import LedgerReader, LedgerWriter
from sedis.service.engines import Actor, Engines
from sedis.store import car, reader
from sedis.store.base import ContentStore, GcReport
from sedis.store.cid import DAG_PB, Cid
from sedis.store.importer import Entry, Importer, ImportOptions, Progress

START_TIME = 1_767_225_600  # 2026-01-01 00:00:00 UTC
CHAIN_ID = 31337
_ZERO = Address("0x" + "00" * 20)
_MAX_KEY_BYTES = 4096
_STATUS_CODES = {status: code for code, status in enumerate(Status)}


# -- the ledger ------------------------------------------------------------------


@dataclass
class _Image:
    owner: Address
    config_digest: str
    root_cid: str
    published_at: int
    scan: ScanSummary
    status: Status = Status.TRUSTED
    status_changes: int = 0
    attestations: int = 0
    usage_reports: int = 0


@dataclass
class _State:
    """Everything the contract stores and emits; copied whole for an all-or-none batch."""

    images: dict[str, _Image] = field(default_factory=dict)
    history: dict[str, list[StatusEntry]] = field(default_factory=dict)
    grants: dict[tuple[str, Address], Grant] = field(default_factory=dict)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    tag_history: dict[tuple[str, str], list[TagEntry]] = field(default_factory=dict)
    name_owners: dict[str, Address] = field(default_factory=dict)
    keys: dict[Address, KeyEntry] = field(default_factory=dict)
    attestations: dict[str, list[Attestation]] = field(default_factory=dict)
    usage: dict[str, list[UsageReport]] = field(default_factory=dict)
    events: list[tuple[str | None, AuditEvent]] = field(default_factory=list)
    block_number: int = 0


@dataclass(frozen=True, slots=True)
class SentTransaction:
    """One write the fake ledger accepted: what was called, by whom, in which block."""

    function: str
    sender: Address
    receipt: TxReceipt


class _Tx:
    """One transaction being applied to a copy of the state, with its block and events."""

    def __init__(self, state: _State, sender: Address, at: int, tx_hash: str) -> None:
        self.state = state
        self.sender = sender
        self.at = at
        self.tx_hash = tx_hash
        self.block_number = state.block_number + 1
        self._log_index = itertools.count()

    def emit(self, name: str, digest: str | None, /, **fields: object) -> None:
        event = AuditEvent(name, self.block_number, next(self._log_index), self.tx_hash, fields)
        self.state.events.append((digest, event))


class FakeLedger:
    """A ``LedgerReader`` over in-memory contract state, with a clock tests move.

    Each write is one transaction mined in a block of its own at the current
    ``clock``; the clock moves only when a test moves it (``advance``,
    ``set_time``). Reads never change anything.
    """

    url = "fake"

    def __init__(self, start: int = START_TIME, *, local_time: int | None = None) -> None:
        self.clock = start
        # A chain that mines on demand lags the wall clock: ``now()`` takes the later.
        self.local_time = local_time
        self.contract = Address.from_bytes(hashlib.sha256(b"fake ImageLedger").digest()[:20])
        self.sent: list[SentTransaction] = []
        self.balances: dict[Address, int] = {}
        self._state = _State()
        self._lock = threading.RLock()
        self._faults: list[tuple[BaseException, bool]] = []
        self._tx_numbers = itertools.count(1)
        self.closed = False

    # -- what tests control -----------------------------------------------------------

    def advance(self, seconds: int) -> int:
        """Move chain time forward; returns the new time."""
        if seconds < 0:
            raise ValueError("chain time never goes back")
        with self._lock:
            self.clock += seconds
            return self.clock

    def set_time(self, when: int) -> None:
        with self._lock:
            if when < self.clock:
                raise ValueError("chain time never goes back")
            self.clock = when

    def fail_next_write(self, error: BaseException, *, landed: bool = False) -> None:
        """Make the next write raise ``error``.

        With ``landed`` the transaction is recorded first and only its
        receipt is lost, the way a node that times out after mining does.
        Several calls queue several faults, one per write.
        """
        with self._lock:
            self._faults.append((error, landed))

    def fund(self, address: Address, wei: int) -> None:
        with self._lock:
            self.balances[address] = wei

    # -- the chain ------------------------------------------------------------------------

    def info(self) -> LedgerInfo:
        with self._lock:
            return LedgerInfo(self.url, CHAIN_ID, str(self.contract), self._state.block_number)

    def balance(self, address: Address) -> int:
        with self._lock:
            return self.balances.get(address, 0)

    def now(self) -> int:
        with self._lock:
            local = self.local_time if self.local_time is not None else self.clock
            return grant_clock(self.clock, local)

    def pinned(self) -> AbstractContextManager[None]:
        # Every read takes the lock and no write lands halfway: all agree already.
        return nullcontext()

    def writer(self, signer: Signer) -> FakeWriter:
        return FakeWriter(self, signer.address)

    def close(self) -> None:
        self.closed = True

    # -- images and their status ---------------------------------------------------------

    def image(self, digest: str) -> ImageRecord | None:
        digest_to_bytes(digest)
        with self._lock:
            img = self._state.images.get(digest)
            return None if img is None else _record(digest, img)

    def images(self, owner: Address | None = None) -> list[ImageRecord]:
        with self._lock:
            return [
                _record(d, img)
                for d, img in self._state.images.items()
                if owner is None or img.owner == owner
            ]

    def images_by_config(self, config_digest: str) -> list[ImageRecord]:
        digest_to_bytes(config_digest)
        with self._lock:
            return [
                _record(d, img)
                for d, img in self._state.images.items()
                if img.config_digest == config_digest
            ]

    def statuses(self, digests: Sequence[str]) -> dict[str, Status]:
        with self._lock:
            out: dict[str, Status] = {}
            for digest in digests:
                digest_to_bytes(digest)
                img = self._state.images.get(digest)
                out[digest] = Status.UNKNOWN if img is None else img.status
            return out

    def status_history(self, digest: str) -> list[StatusEntry]:
        digest_to_bytes(digest)
        with self._lock:
            return list(self._state.history.get(digest, []))

    # -- grants -------------------------------------------------------------------------------

    def grant_of(self, digest: str, recipient: Address) -> Grant | None:
        digest_to_bytes(digest)
        with self._lock:
            return self._state.grants.get((digest, recipient))

    def grants(self, digest: str) -> list[Grant]:
        digest_to_bytes(digest)
        with self._lock:
            return [g for (d, _), g in self._state.grants.items() if d == digest]

    def grants_to(self, recipient: Address) -> list[Grant]:
        with self._lock:
            return [g for (_, r), g in self._state.grants.items() if r == recipient]

    # -- attestations, tags, keys, usage, the audit log ---------------------------------------

    def attestations(self, digest: str) -> list[Attestation]:
        digest_to_bytes(digest)
        with self._lock:
            return list(self._state.attestations.get(digest, []))

    def resolve(self, name: str, tag: str) -> str | None:
        with self._lock:
            return self._state.tags.get((name, tag))

    def tag_history(self, name: str, tag: str) -> list[TagEntry]:
        with self._lock:
            return list(self._state.tag_history.get((name, tag), []))

    def tags_of(self, digest: str) -> list[TagEntry]:
        digest_to_bytes(digest)
        with self._lock:
            return [
                entries[-1]
                for ref, entries in self._state.tag_history.items()
                if self._state.tags.get(ref) == digest
            ]

    def name_owner(self, name: str) -> Address | None:
        with self._lock:
            return self._state.name_owners.get(name)

    def keys_of(self, address: Address) -> KeyEntry | None:
        with self._lock:
            return self._state.keys.get(address)

    def usage_reports(self, digest: str) -> list[UsageReport]:
        digest_to_bytes(digest)
        with self._lock:
            return list(self._state.usage.get(digest, []))

    def audit_log(self, digest: str | None = None) -> list[AuditEvent]:
        if digest is not None:
            digest_to_bytes(digest)
        with self._lock:
            return [e for d, e in self._state.events if digest is None or d == digest]

    # -- writing (for FakeWriter) -----------------------------------------------------------

    def transact(self, function: str, sender: Address, body: Callable[[_Tx], None]) -> TxReceipt:
        """Run ``body`` as one transaction of ``sender``: all of it lands, or none."""
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            if fault is not None and not fault[1]:
                raise fault[0]
            number = next(self._tx_numbers)
            tx_hash = "0x" + keccak(b"fake tx %d" % number).hex()
            tx = _Tx(copy.deepcopy(self._state), sender, self.clock, tx_hash)
            body(tx)
            tx.state.block_number = tx.block_number
            self._state = tx.state
            receipt = TxReceipt(tx_hash, tx.block_number, 21_000)
            self.sent.append(SentTransaction(function, sender, receipt))
            if fault is not None:
                raise fault[0]
            return receipt


class FakeWriter:
    """A ``LedgerWriter`` of a ``FakeLedger``, sending as one account."""

    def __init__(self, ledger: FakeLedger, address: Address) -> None:
        self._ledger = ledger
        self._address = address

    @property
    def address(self) -> Address:
        return self._address

    def _send(self, function: str, body: Callable[[_Tx], None]) -> TxReceipt:
        return self._ledger.transact(function, self._address, body)

    def publish(
        self,
        digest: str,
        config_digest: str,
        root_cid: str,
        scan: ScanSummary,
        grants: Sequence[GrantRequest] = (),
        tag: tuple[str, str] | None = None,
    ) -> TxReceipt:
        def body(tx: _Tx) -> None:
            _publish(tx, digest, config_digest, root_cid, scan)
            for request in grants:
                _grant(tx, digest, request)
            if tag is not None:
                _set_tag(tx, tag[0], tag[1], digest)

        return self._send("publish", body)

    def set_status(self, digest: str, status: Status, reason: str) -> TxReceipt:
        return self._send("setStatus", lambda tx: _set_status(tx, digest, status, reason))

    def grant(self, digest: str, grant: GrantRequest) -> TxReceipt:
        return self._send("grant", lambda tx: _grant(tx, digest, grant))

    def revoke_grant(self, digest: str, recipient: Address) -> TxReceipt:
        return self._send("revokeGrant", lambda tx: _revoke(tx, digest, recipient))

    def change_grants(
        self, digest: str, revoke: Sequence[Address], grants: Sequence[GrantRequest]
    ) -> TxReceipt:
        def body(tx: _Tx) -> None:
            for recipient in revoke:
                _revoke(tx, digest, recipient)
            for request in grants:
                _grant(tx, digest, request)

        return self._send("grant", body)

    def attest(self, digest: str, kind: str, payload_hash: str, cid: str = "") -> TxReceipt:
        return self._send("attest", lambda tx: _attest(tx, digest, kind, payload_hash, cid))

    def set_tag(self, name: str, tag: str, digest: str) -> TxReceipt:
        return self._send("setTag", lambda tx: _set_tag(tx, name, tag, digest))

    def register_keys(self, encryption_key: bytes, paillier_n: bytes) -> TxReceipt:
        return self._send("registerKeys", lambda tx: _register(tx, encryption_key, paillier_n))

    def report_usage(
        self, digest: str, window_start: int, window_end: int, cid: str, blob_hash: str
    ) -> TxReceipt:
        def body(tx: _Tx) -> None:
            _report(tx, digest, window_start, window_end, cid, blob_hash)

        return self._send("reportUsage", body)

    def __repr__(self) -> str:
        return f"FakeWriter({self._address})"


# The contract's functions, each a check of its rules and then its effects.


def _publish(tx: _Tx, digest: str, config_digest: str, root_cid: str, scan: ScanSummary) -> None:
    if _zero(digest) or _zero(config_digest):
        raise InvalidInputError("a digest or hash is missing (all zeros)")
    if not root_cid:
        raise InvalidInputError("a CID is missing")
    _check_scan(scan)
    existing = tx.state.images.get(digest)
    if existing is not None:
        raise ConflictError(f"{digest} is already published by {existing.owner}")
    tx.state.images[digest] = _Image(tx.sender, config_digest, root_cid, tx.at, scan)
    tx.state.history[digest] = [
        StatusEntry(digest, 0, Status.TRUSTED, Status.UNKNOWN, "published", tx.at, tx.sender)
    ]
    tx.emit(
        "ImagePublished",
        digest,
        digest=_hex(digest),
        owner=str(tx.sender),
        configDigest=_hex(config_digest),
        rootCid=root_cid,
        publishedAt=tx.at,
        scan={
            "critical": scan.critical,
            "high": scan.high,
            "medium": scan.medium,
            "low": scan.low,
            "unknown": scan.unknown,
            "notScanned": scan.not_scanned,
            "reportDigest": _hex(scan.report_digest),
            "vulndbDigest": _hex(scan.vulndb_digest),
            "reportCid": scan.report_cid or "",
        },
    )


def _set_status(tx: _Tx, digest: str, status: Status, reason: str) -> None:
    img = _owned(tx, digest, "status")
    _not_revoked(digest, img)
    if status is Status.UNKNOWN:
        raise InvalidInputError(f"status {_STATUS_CODES[status]} is not one a publisher may set")
    if status is img.status:
        raise ConflictError(f"{digest} is already {status.value}")
    if not reason:
        raise InvalidInputError("a status change needs a reason (--reason TEXT)")
    previous = img.status
    img.status = status
    img.status_changes += 1
    index = img.status_changes
    tx.state.history[digest].append(
        StatusEntry(digest, index, status, previous, reason, tx.at, tx.sender)
    )
    tx.emit(
        "StatusChanged",
        digest,
        digest=_hex(digest),
        by=str(tx.sender),
        status=_STATUS_CODES[status],
        previous=_STATUS_CODES[previous],
        reason=reason,
        at=tx.at,
        index=index,
    )


def _grant(tx: _Tx, digest: str, request: GrantRequest) -> None:
    img = _owned(tx, digest, "grants")
    _not_revoked(digest, img)
    if request.recipient == _ZERO:
        raise InvalidInputError(f"{request.recipient} cannot receive a grant")
    if not request.manifest_cid:
        raise InvalidInputError("a CID is missing")
    if _zero(request.manifest_hash):
        raise InvalidInputError("a digest or hash is missing (all zeros)")
    expires_at = request.expires_at or None  # the contract's 0 is "never"
    if expires_at is not None and expires_at <= tx.at:
        raise InvalidInputError(f"the expiry {expires_at} is not after the chain's time {tx.at}")
    tx.state.grants[(digest, request.recipient)] = Grant(
        digest,
        request.recipient,
        request.manifest_cid,
        request.manifest_hash,
        tx.at,
        expires_at,
        None,
        tx.sender,
    )
    tx.emit(
        "GrantAdded",
        digest,
        digest=_hex(digest),
        recipient=str(request.recipient),
        by=str(tx.sender),
        manifestCid=request.manifest_cid,
        manifestHash=_hex(request.manifest_hash),
        expiresAt=expires_at or 0,
        grantedAt=tx.at,
    )


def _revoke(tx: _Tx, digest: str, recipient: Address) -> None:
    _owned(tx, digest, "grants")
    held = tx.state.grants.get((digest, recipient))
    if held is None or held.revoked_at is not None:
        raise NotFoundError(f"{recipient} holds no grant of {digest} to revoke")
    tx.state.grants[(digest, recipient)] = replace(held, revoked_at=tx.at)
    tx.emit(
        "GrantRevoked",
        digest,
        digest=_hex(digest),
        recipient=str(recipient),
        by=str(tx.sender),
        revokedAt=tx.at,
    )


def _attest(tx: _Tx, digest: str, kind: str, payload_hash: str, cid: str) -> None:
    img = _published(tx, digest)
    raw_kind = kind.encode("utf-8")
    if not raw_kind or len(raw_kind) > 32:
        raise InvalidInputError(f"an attestation kind has 1 to 32 bytes: {kind!r}")
    if _zero(payload_hash):
        raise InvalidInputError("a digest or hash is missing (all zeros)")
    img.attestations += 1
    index = img.attestations
    tx.state.attestations.setdefault(digest, []).append(
        Attestation(digest, tx.sender, kind, payload_hash, cid, tx.at, index)
    )
    tx.emit(
        "Attested",
        digest,
        digest=_hex(digest),
        attester=str(tx.sender),
        kind="0x" + raw_kind.ljust(32, b"\0").hex(),
        payloadHash=_hex(payload_hash),
        cid=cid,
        at=tx.at,
        index=index,
    )


def _set_tag(tx: _Tx, name: str, tag: str, digest: str) -> None:
    img = _owned(tx, digest, "tags")
    _not_revoked(digest, img)
    if not name or not tag:
        raise InvalidInputError("a tag needs a name and a tag")
    owner = tx.state.name_owners.get(name)
    if owner is None:
        tx.state.name_owners[name] = tx.sender
        tx.emit(
            "NameClaimed",
            None,
            nameHash="0x" + keccak(name.encode()).hex(),
            owner=str(tx.sender),
            name=name,
            at=tx.at,
        )
    elif owner != tx.sender:
        raise PermissionDeniedError(
            f"only {owner}, the first publisher of {name!r}, may move its tags; {tx.sender} may not"
        )
    previous = tx.state.tags.get((name, tag))
    tx.state.tags[(name, tag)] = digest
    tx.state.tag_history.setdefault((name, tag), []).append(
        TagEntry(name, tag, digest, previous, tx.sender, tx.at)
    )
    tx.emit(
        "TagMoved",
        digest,
        digest=_hex(digest),
        refHash="0x" + tag_ref(name, tag).hex(),
        by=str(tx.sender),
        name=name,
        tag=tag,
        previous=_hex(previous),
        at=tx.at,
    )


def _register(tx: _Tx, encryption_key: bytes, paillier_n: bytes) -> None:
    if (
        not encryption_key
        or not paillier_n
        or max(len(encryption_key), len(paillier_n)) > (_MAX_KEY_BYTES)
    ):
        raise InvalidInputError("the public keys are missing or larger than 4096 bytes")
    tx.state.keys[tx.sender] = KeyEntry(tx.sender, encryption_key, paillier_n, tx.at)
    tx.emit(
        "KeysRegistered",
        None,
        account=str(tx.sender),
        encryptionKey="0x" + encryption_key.hex(),
        paillierN="0x" + paillier_n.hex(),
        at=tx.at,
    )


def _report(
    tx: _Tx, digest: str, window_start: int, window_end: int, cid: str, blob_hash: str
) -> None:
    img = _published(tx, digest)
    if window_start >= window_end:
        raise InvalidInputError(
            f"a usage window must end after it starts ({window_start}..{window_end})"
        )
    if not cid:
        raise InvalidInputError("a CID is missing")
    if _zero(blob_hash):
        raise InvalidInputError("a digest or hash is missing (all zeros)")
    img.usage_reports += 1
    index = img.usage_reports
    tx.state.usage.setdefault(digest, []).append(
        UsageReport(digest, tx.sender, window_start, window_end, cid, blob_hash, tx.at, index)
    )
    tx.emit(
        "UsageReported",
        digest,
        digest=_hex(digest),
        reporter=str(tx.sender),
        windowStart=window_start,
        windowEnd=window_end,
        cid=cid,
        blobHash=_hex(blob_hash),
        at=tx.at,
        index=index,
    )


def _published(tx: _Tx, digest: str) -> _Image:
    digest_to_bytes(digest)
    img = tx.state.images.get(digest)
    if img is None:
        raise NotFoundError(f"{digest} is not published on the ledger")
    return img


def _owned(tx: _Tx, digest: str, part: str) -> _Image:
    img = _published(tx, digest)
    if img.owner != tx.sender:
        raise PermissionDeniedError(
            f"only the owner of {digest} ({img.owner}) may change its {part}; "
            f"{tx.sender} is not its owner"
        )
    return img


def _not_revoked(digest: str, img: _Image) -> None:
    if img.status is Status.REVOKED:
        raise ConflictError(
            f"{digest} is revoked; its status, grants and tags can no longer change"
        )


def _check_scan(scan: ScanSummary) -> None:
    empty = scan.total == 0 and not (scan.report_digest or scan.vulndb_digest or scan.report_cid)
    complete = bool(scan.report_digest and scan.vulndb_digest and scan.report_cid)
    if not (empty if scan.not_scanned else complete):
        raise InvalidInputError(
            "the scan summary is inconsistent: a scanned image needs its report digest and "
            "CID; an unscanned one has no counts and no report"
        )
    for digest in (scan.report_digest, scan.vulndb_digest):
        if digest is not None:
            digest_to_bytes(digest)


def _zero(digest: str) -> bool:
    return digest_to_bytes(digest) == bytes(32)


def _hex(digest: str | None) -> str:
    """A digest as the audit log writes a bytes32: 0x and 64 hex digits (zeros for none)."""
    return "0x" + (digest_to_bytes(digest) if digest else bytes(32)).hex()


def _record(digest: str, img: _Image) -> ImageRecord:
    return ImageRecord(
        digest,
        img.owner,
        img.config_digest,
        img.root_cid,
        img.published_at,
        img.status,
        img.scan,
        img.status_changes,
        img.attestations,
        img.usage_reports,
    )


# -- accounts, keys and names ----------------------------------------------------------


def address_of(name: str) -> Address:
    """A fixed address for a test identity's name."""
    return Address.from_bytes(hashlib.sha256(f"fake account {name}".encode()).digest()[:20])


class FakeSigner:
    """A ``Signer`` for the fake ledger, which takes the writer's address as the sender."""

    def __init__(self, address: Address) -> None:
        self._address = address

    @property
    def address(self) -> Address:
        return self._address

    def sign_transaction(self, transaction: Mapping[str, Any]) -> bytes:
        raise AssertionError(
            f"{self._address} was asked to sign a transaction: only a real ledger asks that"
        )

    def __repr__(self) -> str:
        return f"FakeSigner({self._address})"


class FakeKeyring:
    """A ``Keyring`` over a freshly generated encryption key, as an identity makes it."""

    def __init__(self, key: JWK | None = None, *, rsa: bool = False) -> None:
        self._key: JWK = key if key is not None else keys.new_encryption_key(rsa)
        self._public = JWK(**keys.public_jwk(self._key))
        self.unlocks = 0

    @property
    def public_key(self) -> JWK:
        return self._public

    def private_key(self) -> JWK:
        self.unlocks += 1
        return self._key

    def encryption_key_bytes(self) -> bytes:
        """The public key as ``sedis identity register`` puts it in the key directory."""
        return keys.canonical_json(keys.public_jwk(self._key))


class FakeDirectory:
    """A ``Directory`` of test identities by name; an address stands for itself."""

    def __init__(self, names: Mapping[str, Address] | None = None) -> None:
        self.names: dict[str, Address] = dict(names or {})

    def add(self, name: str, address: Address) -> None:
        self.names[name] = address

    def resolve(self, who: str) -> Address:
        if who in self.names:
            return self.names[who]
        if is_address(who):
            return Address.parse(who)
        known = ", ".join(sorted(self.names)) or "none"
        raise NotFoundError(f"no identity or contact is named {who!r} (known: {known})")


# A stand-in Paillier modulus: only usage reports use it, and the directory
# only asks that it be present.
_PAILLIER_N = keys.int_to_bytes((1 << 2047) + 0x1F)


def make_engines(
    tmp_path: Path, ledger: FakeLedger | None = None, store: FakeStore | None = None
) -> Engines:
    """Engines over a fake ledger and store (new ones unless given), at home ``tmp_path``."""
    fake_ledger = ledger if ledger is not None else FakeLedger()
    fake_store = store if store is not None else FakeStore()
    return Engines(tmp_path, ledger=lambda: fake_ledger, store=lambda: fake_store, threads=2)


def make_actor(
    engines: Engines,
    name: str,
    directory: FakeDirectory | None = None,
    *,
    register: bool = True,
) -> Actor:
    """An identity called ``name`` acting on ``engines``; its keys in the key directory.

    The actor's name is added to ``directory``, which actors made with the
    same one share, so that each can name the others as recipients.
    """
    address = address_of(name)
    names = directory if directory is not None else FakeDirectory()
    names.add(name, address)
    keyring = FakeKeyring()
    actor = Actor.of(engines, FakeSigner(address), keyring, names)
    if register:
        actor.ledger.register_keys(keyring.encryption_key_bytes(), _PAILLIER_N)
    return actor


# -- the content store ---------------------------------------------------------------------


class _Staging:
    """The blocks of one add, kept apart until the add is whole."""

    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def put_block(self, cid: Cid, data: bytes | memoryview) -> None:
        block = bytes(data)
        with self._lock:
            self.blocks[cid.digest] = block


class FakeStore(ContentStore):
    """A ``ContentStore`` over dicts, with the real importer's CIDs.

    Blocks are kept by digest, as a blockstore keeps them, so every CID of
    the same bytes finds them. Reads are counted (``reads_of``), and a block
    can be damaged (``corrupt``) or lost (``lose``) the way a hostile or
    broken node would serve it.
    """

    def __init__(self) -> None:
        self.url = "fake"
        self._blocks: dict[bytes, bytes] = {}
        self._pins: set[Cid] = set()
        self._reads: Counter[bytes] = Counter()
        self._lock = threading.RLock()
        self._add_faults: list[BaseException] = []
        self.closed = False

    # -- what tests control -------------------------------------------------------------

    def reads_of(self, cid: Cid | str) -> int:
        """How many times the block was read (whatever CID version asked for it)."""
        with self._lock:
            return self._reads[_cid(cid).digest]

    def corrupt(self, cid: Cid | str) -> None:
        """Flip one byte of a stored block: a read of it then fails its hash check."""
        key = _cid(cid).digest
        with self._lock:
            data = self._blocks.get(key)
            if data is None:
                raise NotFoundError(f"block {cid} is not in the store")
            damaged = bytearray(data or b"\0")
            damaged[len(damaged) // 2] ^= 0x01
            self._blocks[key] = bytes(damaged)

    def fail_next_add(self, error: BaseException) -> None:
        """Make the next add (of a stream, a path or a directory) raise ``error``, storing
        nothing, as a node that fails mid-upload would."""
        with self._lock:
            self._add_faults.append(error)

    def lose(self, cid: Cid | str) -> None:
        """Drop a block, pinned or not, as a node that lost it would."""
        with self._lock:
            self._blocks.pop(_cid(cid).digest, None)

    def block_count(self) -> int:
        with self._lock:
            return len(self._blocks)

    # -- blocks ---------------------------------------------------------------------------

    def get_block(self, cid: Cid) -> bytes:
        with self._lock:
            self._reads[cid.digest] += 1
            data = self._blocks.get(cid.digest)
        if data is None:
            raise NotFoundError(f"block {cid} is not in the store")
        if not cid.matches(data):
            raise CorruptError(f"block {cid} is corrupt: its bytes do not match its CID")
        return data

    def has(self, cid: Cid) -> bool:
        with self._lock:
            return cid.digest in self._blocks

    def close(self) -> None:
        self.closed = True

    # -- adding ---------------------------------------------------------------------------

    def add_stream(
        self,
        stream: BinaryIO,
        options: ImportOptions | None = None,
        *,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> Entry:
        return self._add(lambda importer: importer.add_stream(stream, progress), options, pin)

    def add_path(
        self,
        path: Path,
        options: ImportOptions | None = None,
        *,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> Entry:
        return self._add(lambda importer: importer.add_path(path, progress), options, pin)

    def add_directory(self, children: Sequence[tuple[str, Entry]], *, pin: bool = True) -> Entry:
        return self._add(lambda importer: importer.directory_node(list(children)), None, pin)

    def _add(
        self, build: Callable[[Importer], Entry], options: ImportOptions | None, pin: bool
    ) -> Entry:
        with self._lock:
            fault = self._add_faults.pop(0) if self._add_faults else None
        if fault is not None:
            raise fault
        staging = _Staging()
        entry = build(Importer(staging, options))
        with self._lock:
            self._blocks.update(staging.blocks)
            if pin:
                self._pins.add(entry.cid)
        return entry

    # -- pins -------------------------------------------------------------------------------

    def pin(self, cid: Cid) -> None:
        with self._lock:
            self._check_complete(cid, self.get_block, self.has)
            self._pins.add(cid)

    def unpin(self, cid: Cid) -> None:
        with self._lock:
            if cid not in self._pins:
                raise NotFoundError(f"{cid} is not pinned")
            self._pins.remove(cid)

    def pins(self) -> list[Cid]:
        with self._lock:
            return sorted(self._pins, key=str)

    def release(self, roots: Iterable[Cid]) -> list[Cid]:
        """Unpin these roots and drop at once the blocks only they reached."""
        with self._lock:
            released = [root for root in dict.fromkeys(roots) if root in self._pins]
            self._pins.difference_update(released)
            for key in self._reachable(released) - self._reachable(self._pins):
                self._blocks.pop(key, None)
            return released

    def import_car(self, stream: BinaryIO, name: str = "CAR") -> list[Cid]:
        car_reader = car.CarReader(stream, name)
        staged: dict[bytes, bytes] = {}
        for cid, data in car_reader.blocks():
            staged[cid.digest] = bytes(data)
        with self._lock:

            def has(cid: Cid) -> bool:
                return cid.digest in staged or cid.digest in self._blocks

            def get(cid: Cid) -> bytes:
                if cid.digest in staged:
                    return staged[cid.digest]
                return self.get_block(cid)

            for root in car_reader.roots:
                self._check_complete(root, get, has, context=name)
            self._blocks.update(staged)
            self._pins.update(car_reader.roots)
            return list(car_reader.roots)

    def gc(self) -> GcReport:
        with self._lock:
            live = self._reachable(self._pins)
            doomed = [key for key in self._blocks if key not in live]
            freed = sum(len(self._blocks.pop(key)) for key in doomed)
            return GcReport(len(doomed), freed)

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _check_complete(
        root: Cid,
        get_block: Callable[[Cid], bytes],
        has: Callable[[Cid], bool],
        context: str = "",
    ) -> None:
        stack = [root]
        seen: set[bytes] = set()
        while stack:
            cid = stack.pop()
            if cid.digest in seen:
                continue
            seen.add(cid.digest)
            if cid.codec == DAG_PB:
                stack.extend(reader.links_of(cid, get_block(cid)))
            elif not has(cid):
                where = f"{context}: " if context else ""
                raise NotFoundError(f"{where}DAG {root} is incomplete: block {cid} is missing")

    def _reachable(self, roots: Iterable[Cid]) -> set[bytes]:
        live: set[bytes] = set()
        stack = list(roots)
        while stack:
            cid = stack.pop()
            if cid.digest in live:
                continue
            live.add(cid.digest)
            data = self._blocks.get(cid.digest)
            if cid.codec == DAG_PB and data is not None and cid.matches(data):
                stack.extend(reader.links_of(cid, data))
        return live

    def blocks(self) -> Iterator[tuple[bytes, bytes]]:
        """Every stored block as (sha256 digest, bytes), for tests that inspect them."""
        with self._lock:
            return iter(list(self._blocks.items()))


def _cid(cid: Cid | str) -> Cid:
    return cid if isinstance(cid, Cid) else Cid.parse(cid)


def _conforms(ledger: FakeLedger, signer: FakeSigner) -> tuple[LedgerReader, LedgerWriter, Signer]:
    # Never called: mypy checks here that each fake meets the protocol it stands for.
    return ledger, ledger.writer(signer), signer
