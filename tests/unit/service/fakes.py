"""In-memory stand-ins for the engines that use cases run on, for unit tests.

``FakeLedger`` keeps the ImageLedger contract's state in dicts: records per
(publisher, digest), per-publisher tags with history, attestations and their
revocation, grants, keys and usage reports, all-or-none batches. It refuses
what the contract refuses, with the same SedisError classes (and words) as
the real ledger's client. ``FakeStore`` is a ContentStore over dicts whose
CIDs are the real importer's. The keys are real jwcrypto keys, so wrapping
and unwrapping are real too; only signing is skipped, as the fake ledger
takes its writer's address as the sender.
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
    AuditQuery,
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
    short_digest,
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
# The account that did what each event says, where it is not the record's publisher.
_ACTOR_FIELD = {
    "Attested": "attester",
    "AttestationRevoked": "attester",
    "UsageReported": "reporter",
    "KeysRegistered": "account",
}

Key = tuple[Address, str]  # (publisher, digest): one record
_EVERY_EVENT = AuditQuery()


# -- the ledger ------------------------------------------------------------------


@dataclass
class _Record:
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

    records: dict[Key, _Record] = field(default_factory=dict)
    history: dict[Key, list[StatusEntry]] = field(default_factory=dict)
    grants: dict[tuple[Address, str, Address], Grant] = field(default_factory=dict)
    tags: dict[tuple[Address, str, str], str] = field(default_factory=dict)
    tag_moves: list[TagEntry] = field(default_factory=list)
    keys: dict[Address, KeyEntry] = field(default_factory=dict)
    attestations: dict[Key, list[Attestation]] = field(default_factory=dict)
    usage: dict[Key, list[UsageReport]] = field(default_factory=dict)
    events: list[AuditEvent] = field(default_factory=list)
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

    def emit(self, name: str, /, **fields: object) -> None:
        """An event as the client decodes it: addresses checksummed, bytes as 0x hex."""
        fields["at"] = self.at
        publisher = fields.get("publisher")
        digest = fields.get("digest")
        actor = fields[_ACTOR_FIELD.get(name, "publisher")]
        self.state.events.append(
            AuditEvent(
                name,
                self.block_number,
                next(self._log_index),
                self.tx_hash,
                self.at,
                Address.parse(str(actor)),
                Address.parse(str(publisher)) if publisher is not None else None,
                _digest_of_hex(str(digest)) if digest is not None else None,
                fields,
            )
        )


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

    def raw_writer(self, sender: Address, publisher: Address) -> FakeWriter:
        """A writer that sends as ``sender`` but names ``publisher``'s record in every
        record write: what anyone holding an account can send the contract directly."""
        return FakeWriter(self, sender, publisher)

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

    # -- records and their status ---------------------------------------------------------

    def image(self, publisher: Address, digest: str) -> ImageRecord | None:
        digest_to_bytes(digest)
        with self._lock:
            found = self._state.records.get((publisher, digest))
            return None if found is None else _record((publisher, digest), found)

    def records(self, digest: str) -> list[ImageRecord]:
        digest_to_bytes(digest)
        with self._lock:
            return [_record(k, r) for k, r in self._state.records.items() if k[1] == digest]

    def images(self, publisher: Address | None = None) -> list[ImageRecord]:
        with self._lock:
            return [
                _record(k, r)
                for k, r in self._state.records.items()
                if publisher is None or k[0] == publisher
            ]

    def images_by_config(self, config_digest: str) -> list[ImageRecord]:
        digest_to_bytes(config_digest)
        with self._lock:
            return [
                _record(k, r)
                for k, r in self._state.records.items()
                if r.config_digest == config_digest
            ]

    def statuses(self, keys: Sequence[Key]) -> dict[Key, Status]:
        with self._lock:
            out: dict[Key, Status] = {}
            for key in keys:
                digest_to_bytes(key[1])
                found = self._state.records.get(key)
                out[key] = Status.UNKNOWN if found is None else found.status
            return out

    def status_history(self, publisher: Address, digest: str) -> list[StatusEntry]:
        digest_to_bytes(digest)
        with self._lock:
            return list(self._state.history.get((publisher, digest), []))

    # -- grants -------------------------------------------------------------------------------

    def grant_of(self, publisher: Address, digest: str, recipient: Address) -> Grant | None:
        digest_to_bytes(digest)
        with self._lock:
            return self._state.grants.get((publisher, digest, recipient))

    def grants(self, publisher: Address, digest: str) -> list[Grant]:
        digest_to_bytes(digest)
        with self._lock:
            return [
                g for (p, d, _), g in self._state.grants.items() if (p, d) == (publisher, digest)
            ]

    def grants_to(self, recipient: Address) -> list[Grant]:
        with self._lock:
            return [g for (_, _, r), g in self._state.grants.items() if r == recipient]

    # -- attestations, tags, keys, usage, the audit log ---------------------------------------

    def attestations(self, publisher: Address, digest: str) -> list[Attestation]:
        digest_to_bytes(digest)
        with self._lock:
            return list(self._state.attestations.get((publisher, digest), []))

    def resolve(self, publisher: Address, name: str, tag: str) -> str | None:
        with self._lock:
            return self._state.tags.get((publisher, name, tag))

    def taggers(self, name: str, tag: str) -> list[TagEntry]:
        with self._lock:
            latest: dict[Address, TagEntry] = {}
            for entry in self._state.tag_moves:
                if (entry.name, entry.tag) == (name, tag):
                    latest.pop(entry.publisher, None)  # in the order of the latest moves
                    latest[entry.publisher] = entry
            return list(latest.values())

    def tag_history(self, name: str, tag: str, publisher: Address | None = None) -> list[TagEntry]:
        with self._lock:
            return [
                t
                for t in self._state.tag_moves
                if (t.name, t.tag) == (name, tag) and publisher in (None, t.publisher)
            ]

    def tags_of(self, publisher: Address, digest: str) -> list[TagEntry]:
        digest_to_bytes(digest)
        with self._lock:
            latest: dict[tuple[str, str], TagEntry] = {}
            for entry in self._state.tag_moves:
                if entry.publisher == publisher:
                    latest[(entry.name, entry.tag)] = entry
            return [t for t in latest.values() if t.digest == digest]

    def keys_of(self, address: Address) -> KeyEntry | None:
        with self._lock:
            return self._state.keys.get(address)

    def usage_reports(self, publisher: Address, digest: str) -> list[UsageReport]:
        digest_to_bytes(digest)
        with self._lock:
            return list(self._state.usage.get((publisher, digest), []))

    def audit_log(self, query: AuditQuery = _EVERY_EVENT) -> list[AuditEvent]:
        if query.digest is not None:
            digest_to_bytes(query.digest)
        with self._lock:
            return [e for e in self._state.events if _selected(e, query)]

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


def _selected(event: AuditEvent, query: AuditQuery) -> bool:
    if query.kinds is not None and event.name not in query.kinds:
        return False
    if query.publisher is not None and event.publisher != query.publisher:
        return False
    if query.digest is not None and event.digest != query.digest:
        return False
    if query.actor is not None and event.actor != query.actor:
        return False
    if query.since is not None and event.at < query.since:
        return False
    if query.from_block is not None and event.block_number < query.from_block:
        return False
    return query.until is None or event.at <= query.until


class FakeWriter:
    """A ``LedgerWriter`` of a ``FakeLedger``, sending as one account.

    Every record write names the sender as the record's publisher, as the real
    writer does, unless ``publisher`` is given (``FakeLedger.raw_writer``).
    """

    def __init__(
        self, ledger: FakeLedger, address: Address, publisher: Address | None = None
    ) -> None:
        self._ledger = ledger
        self._address = address
        self._publisher = publisher if publisher is not None else address

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
        key = (self._publisher, digest)

        def body(tx: _Tx) -> None:
            _publish(tx, key, config_digest, root_cid, scan)
            for request in grants:
                _grant(tx, key, request)
            if tag is not None:
                _set_tag(tx, key, tag[0], tag[1])

        return self._send("publish", body)

    def set_status(self, digest: str, status: Status, reason: str) -> TxReceipt:
        key = (self._publisher, digest)
        return self._send("setStatus", lambda tx: _set_status(tx, key, status, reason))

    def grant(self, digest: str, grant: GrantRequest) -> TxReceipt:
        key = (self._publisher, digest)
        return self._send("grant", lambda tx: _grant(tx, key, grant))

    def revoke_grant(self, digest: str, recipient: Address) -> TxReceipt:
        key = (self._publisher, digest)
        return self._send("revokeGrant", lambda tx: _revoke(tx, key, recipient))

    def change_grants(
        self, digest: str, revoke: Sequence[Address], grants: Sequence[GrantRequest]
    ) -> TxReceipt:
        key = (self._publisher, digest)

        def body(tx: _Tx) -> None:
            for recipient in revoke:
                _revoke(tx, key, recipient)
            for request in grants:
                _grant(tx, key, request)

        return self._send("grant", body)

    def set_tag(self, name: str, tag: str, digest: str) -> TxReceipt:
        key = (self._publisher, digest)
        return self._send("setTag", lambda tx: _set_tag(tx, key, name, tag))

    def attest(
        self, publisher: Address, digest: str, kind: str, payload_hash: str, cid: str = ""
    ) -> TxReceipt:
        if len(kind.encode("utf-8")) > 32:  # the client refuses it before anything is sent
            raise InvalidInputError(f"an attestation kind has 1 to 32 bytes: {kind!r}")
        key = (publisher, digest)
        return self._send("attest", lambda tx: _attest(tx, key, kind, payload_hash, cid))

    def revoke_attestation(self, publisher: Address, digest: str, index: int) -> TxReceipt:
        key = (publisher, digest)
        return self._send("revokeAttestation", lambda tx: _revoke_attestation(tx, key, index))

    def register_keys(self, encryption_key: bytes, paillier_n: bytes) -> TxReceipt:
        return self._send("registerKeys", lambda tx: _register(tx, encryption_key, paillier_n))

    def report_usage(
        self,
        publisher: Address,
        digest: str,
        window_start: int,
        window_end: int,
        cid: str,
        blob_hash: str,
    ) -> TxReceipt:
        key = (publisher, digest)

        def body(tx: _Tx) -> None:
            _report(tx, key, window_start, window_end, cid, blob_hash)

        return self._send("reportUsage", body)

    def __repr__(self) -> str:
        return f"FakeWriter({self._address})"


# The contract's functions, each a check of its rules and then its effects.

_OWNED_PART = {
    "publish": "record",
    "setStatus": "status",
    "grant": "grants",
    "revokeGrant": "grants",
    "setTag": "tags",
}


def _only_publisher(tx: _Tx, key: Key, function: str) -> None:
    publisher, digest = key
    digest_to_bytes(digest)
    if tx.sender != publisher:
        raise PermissionDeniedError(
            f"{tx.sender} is not the publisher of this record of {short_digest(digest)} "
            f"({publisher} is); only its publisher may change its {_OWNED_PART[function]}"
        )


def _publish(tx: _Tx, key: Key, config_digest: str, root_cid: str, scan: ScanSummary) -> None:
    _only_publisher(tx, key, "publish")
    publisher, digest = key
    if _zero(digest) or _zero(config_digest):
        raise InvalidInputError("a digest or hash is missing (all zeros)")
    if not root_cid:
        raise InvalidInputError("a CID is missing")
    _check_scan(scan)
    if key in tx.state.records:
        raise ConflictError(f"{publisher} has already published {digest}")
    tx.state.records[key] = _Record(config_digest, root_cid, tx.at, scan)
    tx.state.history[key] = [
        StatusEntry(publisher, digest, 0, Status.TRUSTED, Status.UNKNOWN, "published", tx.at)
    ]
    tx.emit(
        "ImagePublished",
        publisher=str(publisher),
        digest=_hex(digest),
        configDigest=_hex(config_digest),
        rootCid=root_cid,
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


def _set_status(tx: _Tx, key: Key, status: Status, reason: str) -> None:
    _only_publisher(tx, key, "setStatus")
    record = _existing(tx, key)
    _not_revoked(key, record)
    if status is Status.UNKNOWN:
        raise InvalidInputError(f"status {_STATUS_CODES[status]} is not one a publisher may set")
    if status is record.status:
        raise ConflictError(f"{_name(key)} is already {status.value}")
    if not reason:
        raise InvalidInputError("a status change needs a reason (--reason TEXT)")
    previous = record.status
    record.status = status
    record.status_changes += 1
    index = record.status_changes
    publisher, digest = key
    tx.state.history[key].append(
        StatusEntry(publisher, digest, index, status, previous, reason, tx.at)
    )
    tx.emit(
        "StatusChanged",
        publisher=str(publisher),
        digest=_hex(digest),
        status=_STATUS_CODES[status],
        previous=_STATUS_CODES[previous],
        reason=reason,
        index=index,
    )


def _grant(tx: _Tx, key: Key, request: GrantRequest) -> None:
    _only_publisher(tx, key, "grant")
    record = _existing(tx, key)
    _not_revoked(key, record)
    if request.recipient == _ZERO:
        raise InvalidInputError(f"{request.recipient} cannot receive a grant")
    if not request.manifest_cid:
        raise InvalidInputError("a CID is missing")
    if _zero(request.manifest_hash):
        raise InvalidInputError("a digest or hash is missing (all zeros)")
    expires_at = request.expires_at or None  # the contract's 0 is "never"
    if expires_at is not None and expires_at <= tx.at:
        raise InvalidInputError(f"the expiry {expires_at} is not after the chain's time {tx.at}")
    publisher, digest = key
    tx.state.grants[(publisher, digest, request.recipient)] = Grant(
        publisher,
        digest,
        request.recipient,
        request.manifest_cid,
        request.manifest_hash,
        tx.at,
        expires_at,
        None,
    )
    tx.emit(
        "GrantAdded",
        publisher=str(publisher),
        digest=_hex(digest),
        recipient=str(request.recipient),
        manifestCid=request.manifest_cid,
        manifestHash=_hex(request.manifest_hash),
        expiresAt=expires_at or 0,
    )


def _revoke(tx: _Tx, key: Key, recipient: Address) -> None:
    _only_publisher(tx, key, "revokeGrant")
    _existing(tx, key)
    publisher, digest = key
    held = tx.state.grants.get((publisher, digest, recipient))
    if held is None or held.revoked_at is not None:
        raise NotFoundError(f"{recipient} holds no grant of {_name(key)} to revoke")
    tx.state.grants[(publisher, digest, recipient)] = replace(held, revoked_at=tx.at)
    tx.emit(
        "GrantRevoked",
        publisher=str(publisher),
        digest=_hex(digest),
        recipient=str(recipient),
    )


def _attest(tx: _Tx, key: Key, kind: str, payload_hash: str, cid: str) -> None:
    raw_kind = kind.encode("utf-8")
    record = _existing(tx, key)
    if not raw_kind:
        raise InvalidInputError("an attestation needs a kind")
    if _zero(payload_hash):
        raise InvalidInputError("a digest or hash is missing (all zeros)")
    record.attestations += 1
    index = record.attestations
    publisher, digest = key
    tx.state.attestations.setdefault(key, []).append(
        Attestation(publisher, digest, tx.sender, kind, payload_hash, cid, tx.at, index)
    )
    tx.emit(
        "Attested",
        publisher=str(publisher),
        digest=_hex(digest),
        attester=str(tx.sender),
        kind="0x" + raw_kind.ljust(32, b"\0").hex(),
        payloadHash=_hex(payload_hash),
        cid=cid,
        index=index,
    )


def _revoke_attestation(tx: _Tx, key: Key, index: int) -> None:
    _existing(tx, key)
    made = tx.state.attestations.get(key, [])
    found = next((a for a in made if a.index == index), None)
    if found is None:
        raise NotFoundError(f"{_name(key)} has no attestation {index}")
    if found.attester != tx.sender:
        raise PermissionDeniedError(
            f"only its attester can revoke attestation {index} of {_name(key)}; "
            f"{tx.sender} is not it"
        )
    if found.revoked_at is not None:
        raise ConflictError(f"attestation {index} of {_name(key)} is already revoked")
    made[made.index(found)] = replace(found, revoked_at=tx.at)
    publisher, digest = key
    tx.emit(
        "AttestationRevoked",
        publisher=str(publisher),
        digest=_hex(digest),
        attester=str(tx.sender),
        index=index,
    )


def _set_tag(tx: _Tx, key: Key, name: str, tag: str) -> None:
    _only_publisher(tx, key, "setTag")
    record = _existing(tx, key)
    _not_revoked(key, record)
    if not name or not tag:
        raise InvalidInputError("a tag needs a name and a tag")
    publisher, digest = key
    previous = tx.state.tags.get((publisher, name, tag))
    tx.state.tags[(publisher, name, tag)] = digest
    tx.state.tag_moves.append(TagEntry(publisher, name, tag, digest, previous, tx.at))
    tx.emit(
        "TagMoved",
        publisher=str(publisher),
        digest=_hex(digest),
        refHash="0x" + tag_ref(name, tag).hex(),
        name=name,
        tag=tag,
        previous=_hex(previous),
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
        account=str(tx.sender),
        encryptionKey="0x" + encryption_key.hex(),
        paillierN="0x" + paillier_n.hex(),
    )


def _report(
    tx: _Tx, key: Key, window_start: int, window_end: int, cid: str, blob_hash: str
) -> None:
    record = _existing(tx, key)
    publisher, digest = key
    grant = tx.state.grants.get((publisher, digest, tx.sender))
    if tx.sender != publisher and (grant is None or not grant.active_at(tx.at)):
        raise PermissionDeniedError(
            f"{tx.sender} may not report usage of {_name(key)}: only its publisher "
            "or a recipient with a live grant may"
        )
    if window_start >= window_end:
        raise InvalidInputError(
            f"a usage window must end after it starts ({window_start}..{window_end})"
        )
    if not cid:
        raise InvalidInputError("a CID is missing")
    if _zero(blob_hash):
        raise InvalidInputError("a digest or hash is missing (all zeros)")
    record.usage_reports += 1
    index = record.usage_reports
    tx.state.usage.setdefault(key, []).append(
        UsageReport(
            publisher, digest, tx.sender, window_start, window_end, cid, blob_hash, tx.at, index
        )
    )
    tx.emit(
        "UsageReported",
        publisher=str(publisher),
        digest=_hex(digest),
        reporter=str(tx.sender),
        windowStart=window_start,
        windowEnd=window_end,
        cid=cid,
        blobHash=_hex(blob_hash),
        index=index,
    )


def _existing(tx: _Tx, key: Key) -> _Record:
    digest_to_bytes(key[1])
    found = tx.state.records.get(key)
    if found is None:
        raise NotFoundError(f"{key[0]} has no record of {key[1]}")
    return found


def _not_revoked(key: Key, record: _Record) -> None:
    if record.status is Status.REVOKED:
        raise ConflictError(
            f"{_name(key)} is revoked; its status, grants and tags can no longer change"
        )


def _name(key: Key) -> str:
    return f"{key[0]}'s record of {key[1]}"


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


def _digest_of_hex(text: str) -> str:
    return "sha256:" + text.removeprefix("0x")


def _record(key: Key, found: _Record) -> ImageRecord:
    return ImageRecord(
        key[0],
        key[1],
        found.config_digest,
        found.root_cid,
        found.published_at,
        found.status,
        found.scan,
        found.status_changes,
        found.attestations,
        found.usage_reports,
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
