"""What sedis reads from, and records on, the ImageLedger contract.

Two interfaces. A ``LedgerReader`` answers questions and never signs: one
is shared by every thread of a host, and never changes whose identity it
acts as, since it acts as nobody. A ``LedgerWriter`` is bound, when it is
made (``LedgerReader.writer``), to one ``Signer``; every write it sends is
signed by that signer and no other.

Digests and hashes are ``sha256:<hex>`` strings, accounts ``Address``
values, and times Unix seconds of chain time. A write returns the receipt of
a transaction that succeeded, or raises a SedisError that names the refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from sedis.core.address import Address
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
)
from sedis.crypto.signer import Signer


class LedgerReader(Protocol):
    # -- the chain ------------------------------------------------------------

    def info(self) -> LedgerInfo: ...

    def balance(self, address: Address) -> int:
        """An account's balance in wei."""
        ...

    def now(self) -> int:
        """The time a grant's expiry is judged at: the chain's or the local clock, the later."""
        ...

    def pinned(self) -> AbstractContextManager[None]:
        """Reads inside this block all answer from one block of the chain.

        A use case that reads several things (a record, its status, a grant)
        wraps them in it, so that they agree with each other. Outside one,
        each read answers from the latest block. Nested blocks share the
        outer one's block; each thread pins on its own.
        """
        ...

    def writer(self, signer: Signer) -> LedgerWriter:
        """A new writer on this ledger whose writes ``signer`` signs."""
        ...

    def close(self) -> None: ...

    # -- records and their status -------------------------------------------------
    #
    # A record is one publisher's: (publisher, digest). Any number of publishers may
    # record the same digest; each record has its own scan summary, status
    # history, grants, tags, attestations and usage reports.

    def image(self, publisher: Address, digest: str) -> ImageRecord | None:
        """One publisher's record of a digest; None where that publisher never recorded it."""
        ...

    def records(self, digest: str) -> list[ImageRecord]:
        """Every publisher's record of a digest, oldest first."""
        ...

    def images(self, publisher: Address | None = None) -> list[ImageRecord]:
        """Every record (or one publisher's), oldest first."""
        ...

    def images_by_config(self, config_digest: str) -> list[ImageRecord]:
        """The records whose config (the image ID a container runs) has this digest."""
        ...

    def statuses(self, keys: Sequence[tuple[Address, str]]) -> dict[tuple[Address, str], Status]:
        """The current status of each (publisher, digest); UNKNOWN where there is no record."""
        ...

    def status_history(self, publisher: Address, digest: str) -> list[StatusEntry]:
        """Publication (as TRUSTED) and every change after it, in order."""
        ...

    # -- grants -----------------------------------------------------------------

    def grant_of(self, publisher: Address, digest: str, recipient: Address) -> Grant | None:
        """The latest grant of a record to a recipient, revoked or expired ones included."""
        ...

    def grants(self, publisher: Address, digest: str) -> list[Grant]:
        """The latest grant of a record to each of its recipients."""
        ...

    def grants_to(self, recipient: Address) -> list[Grant]:
        """The latest grant to a recipient of each record shared with it."""
        ...

    # -- attestations, tags, keys, usage, the audit log --------------------------

    def attestations(self, publisher: Address, digest: str) -> list[Attestation]:
        """Every attestation about a record, in order, revoked ones marked so."""
        ...

    def resolve(self, publisher: Address, name: str, tag: str) -> str | None:
        """The digest that this publisher's name:tag points at, or None."""
        ...

    def taggers(self, name: str, tag: str) -> list[TagEntry]:
        """Where each publisher's name:tag points now: one entry per publisher that
        ever tagged it and has it pointing somewhere."""
        ...

    def tag_history(self, name: str, tag: str, publisher: Address | None = None) -> list[TagEntry]:
        """Every move of name:tag (by one publisher, or by all), in order."""
        ...

    def tags_of(self, publisher: Address, digest: str) -> list[TagEntry]:
        """The publisher's tags that point at its record of this digest now."""
        ...

    def keys_of(self, address: Address) -> KeyEntry | None: ...

    def usage_reports(self, publisher: Address, digest: str) -> list[UsageReport]: ...

    def audit_log(self, query: AuditQuery = AuditQuery()) -> list[AuditEvent]:  # noqa: B008 (frozen)
        """The contract's events that ``query`` selects, in chain order."""
        ...


class LedgerWriter(Protocol):
    @property
    def address(self) -> Address:
        """The account every write is signed as."""
        ...

    # Every write about a record is about the signer's own record: the contract
    # refuses a call that names another publisher's.

    def publish(
        self,
        digest: str,
        config_digest: str,
        root_cid: str,
        scan: ScanSummary,
        grants: Sequence[GrantRequest] = (),
        tag: tuple[str, str] | None = None,
    ) -> TxReceipt:
        """Record an image with its first grants and its tag in one transaction, all or none."""
        ...

    def set_status(self, digest: str, status: Status, reason: str) -> TxReceipt: ...

    def grant(self, digest: str, grant: GrantRequest) -> TxReceipt: ...

    def revoke_grant(self, digest: str, recipient: Address) -> TxReceipt: ...

    def change_grants(
        self, digest: str, revoke: Sequence[Address], grants: Sequence[GrantRequest]
    ) -> TxReceipt:
        """Revoke these recipients' grants, then make these grants, in one transaction:
        all or none (a key rotation)."""
        ...

    def set_tag(self, name: str, tag: str, digest: str) -> TxReceipt: ...

    def attest(
        self, publisher: Address, digest: str, kind: str, payload_hash: str, cid: str = ""
    ) -> TxReceipt:
        """Attest to another's (or one's own) record: anyone may."""
        ...

    def revoke_attestation(self, publisher: Address, digest: str, index: int) -> TxReceipt:
        """Take back one's own attestation ``index`` about a record."""
        ...

    def register_keys(self, encryption_key: bytes, paillier_n: bytes) -> TxReceipt:
        """Put the signer's public keys in the key directory."""
        ...

    def report_usage(
        self,
        publisher: Address,
        digest: str,
        window_start: int,
        window_end: int,
        cid: str,
        blob_hash: str,
    ) -> TxReceipt:
        """Report usage of a record: its publisher or a recipient with a live grant may."""
        ...
