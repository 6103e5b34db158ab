"""The ledger interfaces implemented once over the ImageLedger contract.

An engine (the embedded chain, a JSON-RPC node) supplies four primitives: a
view call, a transaction signed by a given signer, a log query and chain
facts. Everything else, the encoding, the decoding into records and the
reading of the audit log, is shared here, so both engines answer alike. The
engine is the reader; each writer it makes holds the engine and one signer.
"""

from __future__ import annotations

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

# Gas for each function before the per-byte part; generous, since only the gas
# actually used is charged, and it keeps py-evm from estimating.
_BASE_GAS = {
    "publish": 250_000,
    "setStatus": 90_000,
    "grant": 150_000,
    "revokeGrant": 60_000,
    "attest": 80_000,
    "setTag": 150_000,
    "registerKeys": 150_000,
    "reportUsage": 80_000,
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
    def _logs(self, event_names: Sequence[str], topics: Sequence[bytes | None]) -> list[Log]:
        """The contract's logs of these events, filtered by topics 1..3, in chain order."""

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

    def _events(self, names: Sequence[str], *topics: bytes | None) -> list[Event]:
        c = codec()
        out = []
        for log in self._logs(names, topics):
            event = c.event(log)
            if event is not None and log.address == self.contract:
                out.append(event)
        return out

    # -- images -------------------------------------------------------------------------

    @_one_block
    def image(self, digest: str) -> ImageRecord | None:
        raw = digest_to_bytes(digest)
        view = self._read("image", raw)
        if _address(view["owner"]) == _NOBODY:
            return None
        published = self._events(["ImagePublished"], raw)
        if not published:
            raise SedisError(f"the ledger holds {digest} but not the event that published it")
        return _record(raw, view, published[0])

    @_one_block
    def images(self, owner: Address | None = None) -> list[ImageRecord]:
        topic = None if owner is None else word(account_arg(owner))
        return self._records(self._events(["ImagePublished"], None, topic))

    @_one_block
    def images_by_config(self, config_digest: str) -> list[ImageRecord]:
        return self._records(
            self._events(["ImagePublished"], None, None, digest_to_bytes(config_digest))
        )

    def _records(self, published: list[Event]) -> list[ImageRecord]:
        out: list[ImageRecord] = []
        for start in range(0, len(published), _BATCH):
            chunk = published[start : start + _BATCH]
            views = self._read("imagesOf", [e.args["digest"] for e in chunk])
            out.extend(_record(e.args["digest"], v, e) for e, v in zip(chunk, views, strict=True))
        return out

    @_one_block
    def statuses(self, digests: Sequence[str]) -> dict[str, Status]:
        out: dict[str, Status] = {}
        for start in range(0, len(digests), _BATCH):
            chunk = list(digests[start : start + _BATCH])
            views = self._read("imagesOf", [digest_to_bytes(d) for d in chunk])
            out.update((d, _STATUSES[v["status"]]) for d, v in zip(chunk, views, strict=True))
        return out

    # -- status ----------------------------------------------------------------------------

    @_one_block
    def status_history(self, digest: str) -> list[StatusEntry]:
        record = self.image(digest)
        if record is None:
            return []
        history = [
            StatusEntry(
                digest,
                0,
                Status.TRUSTED,
                Status.UNKNOWN,
                "published",
                record.published_at,
                record.owner,
            )
        ]
        for e in self._events(["StatusChanged"], digest_to_bytes(digest)):
            a = e.args
            history.append(
                StatusEntry(
                    digest,
                    a["index"],
                    _STATUSES[a["status"]],
                    _STATUSES[a["previous"]],
                    a["reason"],
                    a["at"],
                    _address(a["by"]),
                )
            )
        return history

    # -- grants ------------------------------------------------------------------------------

    @_one_block
    def grant_of(self, digest: str, recipient: Address) -> Grant | None:
        found = self._grants(digest_to_bytes(digest), word(account_arg(recipient)))
        return found[0] if found else None

    @_one_block
    def grants(self, digest: str) -> list[Grant]:
        return self._grants(digest_to_bytes(digest), None)

    @_one_block
    def grants_to(self, recipient: Address) -> list[Grant]:
        return self._grants(None, word(account_arg(recipient)))

    def _grants(self, digest: bytes | None, recipient: bytes | None) -> list[Grant]:
        latest: dict[tuple[bytes, Address], Grant] = {}
        for e in self._events(["GrantAdded", "GrantRevoked"], digest, recipient):
            a = e.args
            key = (a["digest"], _address(a["recipient"]))
            if e.name == "GrantAdded":
                latest[key] = Grant(
                    digest=digest_from_bytes(a["digest"]),
                    recipient=key[1],
                    manifest_cid=a["manifestCid"],
                    manifest_hash=digest_from_bytes(a["manifestHash"]),
                    granted_at=a["grantedAt"],
                    expires_at=a["expiresAt"] or None,
                    by=_address(a["by"]),
                )
            elif key in latest:
                g = latest[key]
                latest[key] = Grant(
                    g.digest,
                    g.recipient,
                    g.manifest_cid,
                    g.manifest_hash,
                    g.granted_at,
                    g.expires_at,
                    a["revokedAt"],
                    g.by,
                )
        return list(latest.values())

    # -- attestations ---------------------------------------------------------------------------

    @_one_block
    def attestations(self, digest: str) -> list[Attestation]:
        return [
            Attestation(
                digest,
                _address(a["attester"]),
                a["kind"].rstrip(b"\0").decode("utf-8", "replace"),
                digest_from_bytes(a["payloadHash"]),
                a["cid"],
                a["at"],
                a["index"],
            )
            for a in (e.args for e in self._events(["Attested"], digest_to_bytes(digest)))
        ]

    # -- tags --------------------------------------------------------------------------------

    @_one_block
    def resolve(self, name: str, tag: str) -> str | None:
        return optional_digest(self._read("resolve", name, tag))

    @_one_block
    def tag_history(self, name: str, tag: str) -> list[TagEntry]:
        return [_tag(e) for e in self._events(["TagMoved"], None, tag_ref(name, tag))]

    @_one_block
    def tags_of(self, digest: str) -> list[TagEntry]:
        latest: dict[tuple[str, str], TagEntry] = {}
        for e in self._events(["TagMoved"], digest_to_bytes(digest)):
            entry = _tag(e)
            latest[(entry.name, entry.tag)] = entry
        return [t for t in latest.values() if self.resolve(t.name, t.tag) == digest]

    @_one_block
    def name_owner(self, name: str) -> Address | None:
        owner = _address(self._read("nameOwner", name))
        return None if owner == _NOBODY else owner

    # -- keys and usage ------------------------------------------------------------------------

    @_one_block
    def keys_of(self, address: Address) -> KeyEntry | None:
        key, n, at = self._read("keysOf", account_arg(address))
        return None if at == 0 else KeyEntry(address, key, n, at)

    @_one_block
    def usage_reports(self, digest: str) -> list[UsageReport]:
        return [
            UsageReport(
                digest,
                _address(a["reporter"]),
                a["windowStart"],
                a["windowEnd"],
                a["cid"],
                digest_from_bytes(a["blobHash"]),
                a["at"],
                a["index"],
            )
            for a in (e.args for e in self._events(["UsageReported"], digest_to_bytes(digest)))
        ]

    # -- the audit log ---------------------------------------------------------------------

    @_one_block
    def audit_log(self, digest: str | None = None) -> list[AuditEvent]:
        topic = None if digest is None else digest_to_bytes(digest)
        return [
            AuditEvent(
                e.name,
                e.block_number,
                e.log_index,
                "0x" + e.tx_hash.hex(),
                {k: _plain(v) for k, v in e.args.items()},
            )
            for e in self._events(codec().event_names(), topic)
        ]


class ContractWriter:
    """The LedgerWriter over the contract: the engine's transactions, signed by one signer."""

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

    def publish(
        self,
        digest: str,
        config_digest: str,
        root_cid: str,
        scan: ScanSummary,
        grants: Sequence[GrantRequest] = (),
        tag: tuple[str, str] | None = None,
    ) -> TxReceipt:
        calls = [("publish", _publish_args(digest, config_digest, root_cid, scan))]
        calls.extend(("grant", _grant_args(digest, g)) for g in grants)
        if tag is not None:
            calls.append(("setTag", (tag[0], tag[1], digest_to_bytes(digest))))
        return self._write_all("publish", calls)

    def set_status(self, digest: str, status: Status, reason: str) -> TxReceipt:
        return self._write("setStatus", digest_to_bytes(digest), _STATUSES.index(status), reason)

    def grant(self, digest: str, grant: GrantRequest) -> TxReceipt:
        return self._write("grant", *_grant_args(digest, grant))

    def revoke_grant(self, digest: str, recipient: Address) -> TxReceipt:
        return self._write("revokeGrant", digest_to_bytes(digest), account_arg(recipient))

    def change_grants(
        self, digest: str, revoke: Sequence[Address], grants: Sequence[GrantRequest]
    ) -> TxReceipt:
        raw = digest_to_bytes(digest)
        calls: list[tuple[str, tuple[Any, ...]]] = [
            ("revokeGrant", (raw, account_arg(recipient))) for recipient in revoke
        ]
        calls.extend(("grant", _grant_args(digest, g)) for g in grants)
        if not calls:
            raise InvalidInputError("a change of grants needs a grant to revoke or to make")
        return self._write_all("grant", calls)

    def attest(self, digest: str, kind: str, payload_hash: str, cid: str = "") -> TxReceipt:
        return self._write(
            "attest", digest_to_bytes(digest), _kind(kind), digest_to_bytes(payload_hash), cid
        )

    def set_tag(self, name: str, tag: str, digest: str) -> TxReceipt:
        return self._write("setTag", name, tag, digest_to_bytes(digest))

    def register_keys(self, encryption_key: bytes, paillier_n: bytes) -> TxReceipt:
        return self._write("registerKeys", encryption_key, paillier_n)

    def report_usage(
        self, digest: str, window_start: int, window_end: int, cid: str, blob_hash: str
    ) -> TxReceipt:
        return self._write(
            "reportUsage",
            digest_to_bytes(digest),
            window_start,
            window_end,
            cid,
            digest_to_bytes(blob_hash),
        )


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _record(digest: bytes, view: dict[str, Any], published: Event) -> ImageRecord:
    scan = published.args["scan"]
    return ImageRecord(
        digest=digest_from_bytes(digest),
        owner=_address(view["owner"]),
        config_digest=digest_from_bytes(view["configDigest"]),
        root_cid=published.args["rootCid"],
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
        a["name"],
        a["tag"],
        digest_from_bytes(a["digest"]),
        optional_digest(a["previous"]),
        _address(a["by"]),
        a["at"],
    )


_NOBODY = Address("0x" + "00" * 20)


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
