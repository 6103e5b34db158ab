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

    # -- images and their status ------------------------------------------------

    def image(self, digest: str) -> ImageRecord | None:
        """The record of a published image; None for a digest never published."""
        ...

    def images(self, owner: Address | None = None) -> list[ImageRecord]:
        """Every published image (or one owner's), oldest first."""
        ...

    def images_by_config(self, config_digest: str) -> list[ImageRecord]:
        """The images whose config (the image ID a container runs) has this digest."""
        ...

    def statuses(self, digests: Sequence[str]) -> dict[str, Status]:
        """The current status of each digest; UNKNOWN for one never published."""
        ...

    def status_history(self, digest: str) -> list[StatusEntry]:
        """Publication (as TRUSTED) and every change after it, in order."""
        ...

    # -- grants -----------------------------------------------------------------

    def grant_of(self, digest: str, recipient: Address) -> Grant | None:
        """The latest grant to a recipient, revoked or expired ones included."""
        ...

    def grants(self, digest: str) -> list[Grant]:
        """The latest grant of each recipient of an image."""
        ...

    def grants_to(self, recipient: Address) -> list[Grant]:
        """The latest grant to a recipient for each image shared with it."""
        ...

    # -- attestations, tags, keys, usage, the audit log --------------------------

    def attestations(self, digest: str) -> list[Attestation]: ...

    def resolve(self, name: str, tag: str) -> str | None:
        """The digest that name:tag points at, or None."""
        ...

    def tag_history(self, name: str, tag: str) -> list[TagEntry]: ...

    def tags_of(self, digest: str) -> list[TagEntry]:
        """The tags that point at an image now."""
        ...

    def name_owner(self, name: str) -> Address | None:
        """The account that first tagged a name, and alone may move its tags."""
        ...

    def keys_of(self, address: Address) -> KeyEntry | None: ...

    def usage_reports(self, digest: str) -> list[UsageReport]: ...

    def audit_log(self, digest: str | None = None) -> list[AuditEvent]:
        """Every event of the contract (or of one image), in chain order."""
        ...


class LedgerWriter(Protocol):
    @property
    def address(self) -> Address:
        """The account every write is signed as."""
        ...

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

    def attest(self, digest: str, kind: str, payload_hash: str, cid: str = "") -> TxReceipt: ...

    def set_tag(self, name: str, tag: str, digest: str) -> TxReceipt: ...

    def register_keys(self, encryption_key: bytes, paillier_n: bytes) -> TxReceipt:
        """Put the signer's public keys in the key directory."""
        ...

    def report_usage(
        self, digest: str, window_start: int, window_end: int, cid: str, blob_hash: str
    ) -> TxReceipt: ...
