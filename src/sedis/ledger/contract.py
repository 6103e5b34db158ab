"""The ledger interfaces implemented once over the ImageLedger contract.

An engine (the embedded chain, a JSON-RPC node) supplies four primitives: a
view call, a transaction signed by a given signer, a log query and chain
facts. Everything else, the encoding, the decoding into records and the
reading of the audit log, is shared here, so both engines answer alike. The
engine is the reader; each writer it makes holds the engine and one signer.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from sedis.core.address import Address
from sedis.core.errors import InvalidInputError, SedisError
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
    digest_from_bytes,
    digest_to_bytes,
    grant_clock,
    optional_digest,
)
from sedis.crypto.signer import Signer
from sedis.ledger.abi import Event, Log, codec, tag_ref, word
from sedis.ledger.refusals import refusal

P = ParamSpec("P")
R = TypeVar("R")
L = TypeVar("L", bound="ContractReader")

_STATUSES = (Status.UNKNOWN, Status.TRUSTED, Status.UNTRUSTED, Status.UNSUPPORTED, Status.REVOKED)
_BATCH = 200
_EVERY_EVENT = AuditQuery()

# Gas for each function before the per-byte part; generous, since only the gas
# actually used is charged, and it keeps py-evm from estimating.
_BASE_GAS = {
    "publish": 250_000,
    "setStatus": 90_000,
    "grant": 150_000,
    "revokeGrant": 60_000,
    "attest": 100_000,
    "revokeAttestation": 60_000,
    "setTag": 150_000,
    "registerKeys": 150_000,
    "reportUsage": 90_000,
    "multicall": 30_000,  # its own loop and delegatecalls, beside each call's gas
}
# Covers storing calldata bytes (registerKeys keeps its keys in storage).
_GAS_PER_BYTE = 800


def _gas(function: str, data: bytes) -> int:
    return _BASE_GAS[function] + _GAS_PER_BYTE * len(data)


def _publish_args(
    digest: str, config_digest: str, root_cid: str, scan: ScanSummary
) -> tuple[Any, ...]:
    report = digest_to_bytes(scan.report_digest) if scan.report_digest else bytes(32)
    vulndb = digest_to_bytes(scan.vulndb_digest) if scan.vulndb_digest else bytes(32)
    return (
        digest_to_bytes(digest),
        digest_to_bytes(config_digest),
        root_cid,
        (
            scan.critical,
            scan.high,
            scan.medium,
            scan.low,
            scan.unknown,
            scan.not_scanned,
            report,
            vulndb,
            scan.report_cid or "",
        ),
    )


def _grant_args(digest: str, grant: GrantRequest) -> tuple[Any, ...]:
    return (
        digest_to_bytes(digest),
        account_arg(grant.recipient),
        grant.manifest_cid,
        digest_to_bytes(grant.manifest_hash),
        grant.expires_at or 0,
    )


def _one_block(
    read: Callable[Concatenate[L, P], R],
) -> Callable[Concatenate[L, P], R]:
    """A read whose calls and log queries all answer from one block (see pinned)."""

    @functools.wraps(read)
    def pinned_read(self: L, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.pinned():
            return read(self, *args, **kwargs)

    return pinned_read


class Reverted(Exception):
    """The contract reverted with this data."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data.hex())
        self.data = data


class ContractReader(ABC):
    """The LedgerReader over the contract; an engine subclasses it with its primitives."""

    contract: bytes

    # -- the engine's primitives ---------------------------------------------------

    @abstractmethod
    def _call(self, data: bytes) -> bytes:
        """Run a view call against the state reads answer from; raise Reverted on a revert."""

    @abstractmethod
    def _transact(self, signer: Signer, data: bytes, gas: int) -> TxReceipt:
        """Send a call of the contract signed by ``signer``; raise Reverted."""

    @abstractmethod
    def _logs(
        self, event_names: Sequence[str], topics: Sequence[bytes | None], from_block: int = 0
    ) -> list[Log]:
        """The contract's logs of these events from block ``from_block`` on, filtered by
        topics 1..3, in chain order."""

    @abstractmethod
    def _chain_time(self) -> int:
        """The timestamp of the block that reads answer from."""

    @abstractmethod
    def pinned(self) -> AbstractContextManager[None]:
        """Reads inside this block all answer from one block (see LedgerReader.pinned)."""

    @abstractmethod
    def info(self) -> LedgerInfo: ...

    @abstractmethod
    def balance(self, address: Address) -> int: ...

    @abstractmethod
    def close(self) -> None: ...

    def writer(self, signer: Signer) -> ContractWriter:
        return ContractWriter(self, signer)

    def _local_time(self) -> int:
        return int(time.time())

    def now(self) -> int:
        return grant_clock(self._chain_time(), self._local_time())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------

    def _read(self, function: str, *args: Any) -> Any:
        c = codec()
        try:
            return c.result(function, self._call(c.call_data(function, *args)))
        except Reverted as exc:
            raise refusal(function, exc.data) from None

    def _events(
        self, names: Sequence[str], *topics: bytes | None, from_block: int = 0
    ) -> list[Event]:
        c = codec()
        out = []
        for log in self._logs(names, topics, from_block):
            event = c.event(log)
            if event is not None and log.address == self.contract:
                out.append(event)
        return out

    # -- records -------------------------------------------------------------------------

    @_one_block
    def image(self, publisher: Address, digest: str) -> ImageRecord | None:
        raw, who = digest_to_bytes(digest), account_arg(publisher)
        view = self._read("record", who, raw)
        if view["publishedAt"] == 0:
            return None
        published = self._events(["ImagePublished"], word(who), raw)
        if not published:
            raise SedisError(
                f"the ledger holds {publisher}'s record of {digest} but not the event that "
                "published it"
            )
        return _record(published[0], view)

    @_one_block
    def records(self, digest: str) -> list[ImageRecord]:
        return self._records(self._events(["ImagePublished"], None, digest_to_bytes(digest)))

    @_one_block
    def images(self, publisher: Address | None = None) -> list[ImageRecord]:
        topic = None if publisher is None else word(account_arg(publisher))
        return self._records(self._events(["ImagePublished"], topic))

    @_one_block
    def images_by_config(self, config_digest: str) -> list[ImageRecord]:
        return self._records(
            self._events(["ImagePublished"], None, None, digest_to_bytes(config_digest))
        )

    def _records(self, published: list[Event]) -> list[ImageRecord]:
        out: list[ImageRecord] = []
        for start in range(0, len(published), _BATCH):
            chunk = published[start : start + _BATCH]
            views = self._read(
                "recordsOf",
                [_address(e.args["publisher"]).raw for e in chunk],
                [e.args["digest"] for e in chunk],
            )
            out.extend(_record(e, v) for e, v in zip(chunk, views, strict=True))
        return out

    @_one_block
    def statuses(self, keys: Sequence[tuple[Address, str]]) -> dict[tuple[Address, str], Status]:
        out: dict[tuple[Address, str], Status] = {}
        for start in range(0, len(keys), _BATCH):
            chunk = list(keys[start : start + _BATCH])
            views = self._read(
                "recordsOf",
                [account_arg(p) for p, _ in chunk],
                [digest_to_bytes(d) for _, d in chunk],
            )
            out.update((k, _STATUSES[v["status"]]) for k, v in zip(chunk, views, strict=True))
        return out

    # -- status ----------------------------------------------------------------------------

    @_one_block
    def status_history(self, publisher: Address, digest: str) -> list[StatusEntry]:
        record = self.image(publisher, digest)
        if record is None:
            return []
        history = [
            StatusEntry(
                record.publisher,
                digest,
                0,
                Status.TRUSTED,
                Status.UNKNOWN,
                "published",
                record.published_at,
            )
        ]
        topics = (word(account_arg(publisher)), digest_to_bytes(digest))
        for e in self._events(["StatusChanged"], *topics):
            a = e.args
            history.append(
                StatusEntry(
                    record.publisher,
                    digest,
                    a["index"],
                    _STATUSES[a["status"]],
                    _STATUSES[a["previous"]],
                    a["reason"],
                    a["at"],
                )
            )
        return history

    # -- grants ------------------------------------------------------------------------------

    @_one_block
    def grant_of(self, publisher: Address, digest: str, recipient: Address) -> Grant | None:
        found = self._grants(
            word(account_arg(publisher)), digest_to_bytes(digest), word(account_arg(recipient))
        )
        return found[0] if found else None

    @_one_block
    def grants(self, publisher: Address, digest: str) -> list[Grant]:
        return self._grants(word(account_arg(publisher)), digest_to_bytes(digest), None)

    @_one_block
    def grants_to(self, recipient: Address) -> list[Grant]:
        return self._grants(None, None, word(account_arg(recipient)))

    def _grants(
        self, publisher: bytes | None, digest: bytes | None, recipient: bytes | None
    ) -> list[Grant]:
        latest: dict[tuple[Address, bytes, Address], Grant] = {}
        for e in self._events(["GrantAdded", "GrantRevoked"], publisher, digest, recipient):
            a = e.args
            key = (_address(a["publisher"]), a["digest"], _address(a["recipient"]))
            if e.name == "GrantAdded":
                latest[key] = Grant(
                    publisher=key[0],
                    digest=digest_from_bytes(a["digest"]),
                    recipient=key[2],
                    manifest_cid=a["manifestCid"],
                    manifest_hash=digest_from_bytes(a["manifestHash"]),
                    granted_at=a["at"],
                    expires_at=a["expiresAt"] or None,
                )
            elif key in latest:
                latest[key] = dataclasses.replace(latest[key], revoked_at=a["at"])
        return list(latest.values())

    # -- attestations ---------------------------------------------------------------------------

    @_one_block
    def attestations(self, publisher: Address, digest: str) -> list[Attestation]:
        topics = (word(account_arg(publisher)), digest_to_bytes(digest))
        found: dict[int, Attestation] = {}
        for e in self._events(["Attested", "AttestationRevoked"], *topics):
            a = e.args
            if e.name == "Attested":
                found[a["index"]] = Attestation(
                    _address(a["publisher"]),
                    digest,
                    _address(a["attester"]),
                    _kind_text(a["kind"]),
                    digest_from_bytes(a["payloadHash"]),
                    a["cid"],
                    a["at"],
                    a["index"],
                )
            elif a["index"] in found:
                found[a["index"]] = dataclasses.replace(found[a["index"]], revoked_at=a["at"])
        return list(found.values())

    # -- tags --------------------------------------------------------------------------------

    @_one_block
    def resolve(self, publisher: Address, name: str, tag: str) -> str | None:
        return optional_digest(self._read("resolve", account_arg(publisher), name, tag))

    @_one_block
    def taggers(self, name: str, tag: str) -> list[TagEntry]:
        latest: dict[Address, TagEntry] = {}
        for entry in self._tag_moves(None, None, tag_ref(name, tag)):
            latest.pop(entry.publisher, None)  # keeps the order of the latest moves
            latest[entry.publisher] = entry
        return [t for t in latest.values() if t.digest != _NO_DIGEST]

    @_one_block
    def tag_history(self, name: str, tag: str, publisher: Address | None = None) -> list[TagEntry]:
        topic = None if publisher is None else word(account_arg(publisher))
        return self._tag_moves(topic, None, tag_ref(name, tag))

    @_one_block
    def tags_of(self, publisher: Address, digest: str) -> list[TagEntry]:
        who = word(account_arg(publisher))
        latest: dict[tuple[str, str], TagEntry] = {}
        for entry in self._tag_moves(who, digest_to_bytes(digest), None):
            latest[(entry.name, entry.tag)] = entry
        return [t for t in latest.values() if self.resolve(publisher, t.name, t.tag) == digest]

    def _tag_moves(
        self, publisher: bytes | None, digest: bytes | None, ref: bytes | None
    ) -> list[TagEntry]:
        return [_tag(e) for e in self._events(["TagMoved"], publisher, digest, ref)]

    # -- keys and usage ------------------------------------------------------------------------

    @_one_block
    def keys_of(self, address: Address) -> KeyEntry | None:
        key, n, at = self._read("keysOf", account_arg(address))
        return None if at == 0 else KeyEntry(address, key, n, at)

    @_one_block
    def usage_reports(self, publisher: Address, digest: str) -> list[UsageReport]:
        topics = (word(account_arg(publisher)), digest_to_bytes(digest))
        return [
            UsageReport(
                _address(a["publisher"]),
                digest,
                _address(a["reporter"]),
                a["windowStart"],
                a["windowEnd"],
                a["cid"],
                digest_from_bytes(a["blobHash"]),
                a["at"],
                a["index"],
            )
            for a in (e.args for e in self._events(["UsageReported"], *topics))
        ]

    # -- the audit log ---------------------------------------------------------------------

    @_one_block
    def audit_log(self, query: AuditQuery = _EVERY_EVENT) -> list[AuditEvent]:
        names = [n for n in codec().event_names() if query.kinds is None or n in query.kinds]
        if query.publisher is not None or query.digest is not None:
            # Its topic 1 is the account whose keys they are, and it names no record.
            names = [n for n in names if n != "KeysRegistered"]
        if not names:
            return []
        publisher = None if query.publisher is None else word(account_arg(query.publisher))
        digest = None if query.digest is None else digest_to_bytes(query.digest)
        out: list[AuditEvent] = []
        for e in self._events(names, publisher, digest, from_block=query.from_block or 0):
            a = e.args
            at: int = a["at"]
            if (query.since is not None and at < query.since) or (
                query.until is not None and at > query.until
            ):
                continue
            actor = _address(a[_ACTOR_FIELD.get(e.name, "publisher")])
            if query.actor is not None and actor != query.actor:
                continue
            out.append(
                AuditEvent(
                    e.name,
                    e.block_number,
                    e.log_index,
                    "0x" + e.tx_hash.hex(),
                    at,
                    actor,
                    _address(a["publisher"]) if "publisher" in a else None,
                    digest_from_bytes(a["digest"]) if "digest" in a else None,
                    {k: _plain(v) for k, v in a.items()},
                )
            )
        return out


class ContractWriter:
    """The LedgerWriter over the contract: the engine's transactions, signed by one signer.

    Every write about a record names the signer as its publisher: the contract
    would refuse any other publisher."""

    def __init__(self, engine: ContractReader, signer: Signer) -> None:
        self._engine = engine
        self._signer = signer

    @property
    def address(self) -> Address:
        return self._signer.address

    def __repr__(self) -> str:
        return f"ContractWriter({type(self._engine).__name__}, {self._signer.address})"

    def _write(self, function: str, *args: Any) -> TxReceipt:
        data = codec().call_data(function, *args)
        try:
            return self._engine._transact(self._signer, data, _gas(function, data))
        except Reverted as exc:
            raise refusal(function, exc.data) from None

    def _write_all(self, label: str, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> TxReceipt:
        """Several calls in one transaction (the contract's multicall): all or none."""
        if len(calls) == 1:  # no multicall around it: cheaper, and the same refusals
            function, args = calls[0]
            return self._write(function, *args)
        c = codec()
        datas = [c.call_data(function, *args) for function, args in calls]
        gas = _BASE_GAS["multicall"] + sum(
            _gas(function, data) for (function, _), data in zip(calls, datas, strict=True)
        )
        try:
            return self._engine._transact(self._signer, c.call_data("multicall", datas), gas)
        except Reverted as exc:
            raise refusal(label, exc.data) from None

    @property
    def _me(self) -> bytes:
        return self._signer.address.raw

    def publish(
        self,
        digest: str,
        config_digest: str,
        root_cid: str,
        scan: ScanSummary,
        grants: Sequence[GrantRequest] = (),
        tag: tuple[str, str] | None = None,
    ) -> TxReceipt:
        me = self._me
        calls = [("publish", (me, *_publish_args(digest, config_digest, root_cid, scan)))]
        calls.extend(("grant", (me, *_grant_args(digest, g))) for g in grants)
        if tag is not None:
            calls.append(("setTag", (me, tag[0], tag[1], digest_to_bytes(digest))))
        return self._write_all("publish", calls)

    def set_status(self, digest: str, status: Status, reason: str) -> TxReceipt:
        return self._write(
            "setStatus", self._me, digest_to_bytes(digest), _STATUSES.index(status), reason
        )

    def grant(self, digest: str, grant: GrantRequest) -> TxReceipt:
        return self._write("grant", self._me, *_grant_args(digest, grant))

    def revoke_grant(self, digest: str, recipient: Address) -> TxReceipt:
        return self._write("revokeGrant", self._me, digest_to_bytes(digest), account_arg(recipient))

    def change_grants(
        self, digest: str, revoke: Sequence[Address], grants: Sequence[GrantRequest]
    ) -> TxReceipt:
        me, raw = self._me, digest_to_bytes(digest)
        calls: list[tuple[str, tuple[Any, ...]]] = [
            ("revokeGrant", (me, raw, account_arg(recipient))) for recipient in revoke
        ]
        calls.extend(("grant", (me, *_grant_args(digest, g))) for g in grants)
        if not calls:
            raise InvalidInputError("a change of grants needs a grant to revoke or to make")
        return self._write_all("grant", calls)

    def set_tag(self, name: str, tag: str, digest: str) -> TxReceipt:
        return self._write("setTag", self._me, name, tag, digest_to_bytes(digest))

    def attest(
        self, publisher: Address, digest: str, kind: str, payload_hash: str, cid: str = ""
    ) -> TxReceipt:
        return self._write(
            "attest",
            account_arg(publisher),
            digest_to_bytes(digest),
            _kind(kind),
            digest_to_bytes(payload_hash),
            cid,
        )

    def revoke_attestation(self, publisher: Address, digest: str, index: int) -> TxReceipt:
        if not 0 < index < 2**32:
            raise InvalidInputError(f"attestations are numbered from 1, not {index}")
        return self._write(
            "revokeAttestation", account_arg(publisher), digest_to_bytes(digest), index
        )

    def register_keys(self, encryption_key: bytes, paillier_n: bytes) -> TxReceipt:
        return self._write("registerKeys", encryption_key, paillier_n)

    def report_usage(
        self,
        publisher: Address,
        digest: str,
        window_start: int,
        window_end: int,
        cid: str,
        blob_hash: str,
    ) -> TxReceipt:
        return self._write(
            "reportUsage",
            account_arg(publisher),
            digest_to_bytes(digest),
            window_start,
            window_end,
            cid,
            digest_to_bytes(blob_hash),
        )


# Who sent an event's transaction, where that is not the record's publisher.
_ACTOR_FIELD = {
    "Attested": "attester",
    "AttestationRevoked": "attester",
    "UsageReported": "reporter",
    "KeysRegistered": "account",
}


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _record(published: Event, view: dict[str, Any]) -> ImageRecord:
    a = published.args
    scan = a["scan"]
    return ImageRecord(
        publisher=_address(a["publisher"]),
        digest=digest_from_bytes(a["digest"]),
        config_digest=digest_from_bytes(view["configDigest"]),
        root_cid=a["rootCid"],
        published_at=view["publishedAt"],
        status=_STATUSES[view["status"]],
        scan=ScanSummary(
            critical=view["critical"],
            high=view["high"],
            medium=view["medium"],
            low=view["low"],
            unknown=view["unknown"],
            not_scanned=view["notScanned"],
            report_digest=optional_digest(view["reportDigest"]),
            report_cid=scan["reportCid"] or None,
            vulndb_digest=optional_digest(scan["vulndbDigest"]),
        ),
        status_changes=view["statusChanges"],
        attestation_count=view["attestations"],
        usage_report_count=view["usageReports"],
    )


def _tag(e: Event) -> TagEntry:
    a = e.args
    return TagEntry(
        _address(a["publisher"]),
        a["name"],
        a["tag"],
        digest_from_bytes(a["digest"]),
        optional_digest(a["previous"]),
        a["at"],
    )


_NO_DIGEST = digest_from_bytes(bytes(32))


def _address(text: str) -> Address:
    # The codec decodes an address word to checksummed text: only its case changes.
    return Address(text.lower())


def account_arg(address: Address) -> bytes:
    """An account as the contract takes it; refuses anything but an Address."""
    if not isinstance(address, Address):
        raise InvalidInputError(f"not an Address: {address!r}")
    return address.raw


def _kind(kind: str) -> bytes:
    raw = kind.encode("utf-8")
    if not raw or len(raw) > 32:
        raise InvalidInputError(f"an attestation kind has 1 to 32 bytes: {kind!r}")
    return raw.ljust(32, b"\0")


def _kind_text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("utf-8", "replace")
