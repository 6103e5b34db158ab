"""The Ledger interface: what sedis records on, and reads from, the ImageLedger contract.

Digests and hashes are ``sha256:<hex>`` strings, addresses ``0x`` strings, and
times Unix seconds of chain time. Writes need an account that signs; they
return the receipt of a transaction that succeeded, or raise a SedisError
that names the refusal. Reads never need an account.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


class Ledger(ABC):
    # -- the chain ------------------------------------------------------------

    @property
    @abstractmethod
    def address(self) -> str | None:
        """The acting account, or None when this ledger only reads."""

    @abstractmethod
    def sign_with(self, account: LocalAccount) -> None:
        """Sign writes with ``account`` from now on (a ledger opened to read, then
        given the account once its key is unlocked)."""

    @abstractmethod
    def info(self) -> LedgerInfo: ...

    @abstractmethod
    def balance(self, address: str) -> int:
        """An account's balance in wei."""

    @abstractmethod
    def close(self) -> None: ...

    def pinned(self) -> AbstractContextManager[None]:
        """Reads inside this block all answer from one block of the chain.

        A use case that reads several things (a record, its status, a grant)
        wraps them in it, so that they agree with each other. Outside one,
        each read answers from the latest block. Nested blocks share the
        outer one's block.
        """
        return nullcontext()

    @abstractmethod
    def now(self) -> int:
        """The time a grant's expiry is judged at: the chain's or the local clock, the later."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- images ---------------------------------------------------------------

    @abstractmethod
    def publish(
        self, digest: str, config_digest: str, root_cid: str, scan: ScanSummary
    ) -> TxReceipt: ...

    @abstractmethod
    def publish_shared(
        self,
        digest: str,
        config_digest: str,
        root_cid: str,
        scan: ScanSummary,
        grants: Sequence[GrantRequest],
        tag: tuple[str, str] | None = None,
    ) -> TxReceipt:
        """Record an image with its first grants and its tag in one transaction, all or none."""

    @abstractmethod
    def image(self, digest: str) -> ImageRecord | None:
        """The record of a published image; None for a digest never published."""

    @abstractmethod
    def images(self, owner: str | None = None) -> list[ImageRecord]:
        """Every published image (or one owner's), oldest first."""

    @abstractmethod
    def images_by_config(self, config_digest: str) -> list[ImageRecord]:
        """The images whose config (the image ID a container runs) has this digest."""

    # -- status -----------------------------------------------------------------

    @abstractmethod
    def set_status(self, digest: str, status: Status, reason: str) -> TxReceipt: ...

    @abstractmethod
    def status(self, digest: str) -> Status:
        """The current status; UNKNOWN for a digest never published."""

    @abstractmethod
    def status_history(self, digest: str) -> list[StatusEntry]:
        """Publication (as TRUSTED) and every change after it, in order."""

    # -- grants -----------------------------------------------------------------

    @abstractmethod
    def grant(
        self,
        digest: str,
        recipient: str,
        manifest_cid: str,
        manifest_hash: str,
        expires_at: int | None = None,
    ) -> TxReceipt: ...

    @abstractmethod
    def revoke_grant(self, digest: str, recipient: str) -> TxReceipt: ...

    @abstractmethod
    def change_grants(
        self, digest: str, revoke: Sequence[str], grants: Sequence[GrantRequest]
    ) -> TxReceipt:
        """Revoke these recipients' grants, then make these grants, in one transaction:
        all or none (a key rotation)."""

    @abstractmethod
    def is_granted(self, digest: str, recipient: str) -> bool:
        """Granted and neither revoked nor expired, by chain time or local time (see now)."""

    @abstractmethod
    def grant_of(self, digest: str, recipient: str) -> Grant | None:
        """The latest grant to a recipient, revoked or expired ones included."""

    @abstractmethod
    def grants(self, digest: str) -> list[Grant]:
        """The latest grant of each recipient of an image."""

    @abstractmethod
    def grants_to(self, recipient: str) -> list[Grant]:
        """The latest grant to a recipient for each image shared with it."""

    # -- attestations, tags, keys, usage ------------------------------------------------

    @abstractmethod
    def attest(self, digest: str, kind: str, payload_hash: str, cid: str = "") -> TxReceipt: ...

    @abstractmethod
    def attestations(self, digest: str) -> list[Attestation]: ...

    @abstractmethod
    def set_tag(self, name: str, tag: str, digest: str) -> TxReceipt: ...

    @abstractmethod
    def resolve(self, name: str, tag: str) -> str | None:
        """The digest that name:tag points at, or None."""

    @abstractmethod
    def tag_history(self, name: str, tag: str) -> list[TagEntry]: ...

    @abstractmethod
    def tags_of(self, digest: str) -> list[TagEntry]:
        """The tags that point at an image now."""

    @abstractmethod
    def name_owner(self, name: str) -> str | None:
        """The account that first tagged a name, and alone may move its tags."""

    @abstractmethod
    def register_keys(self, encryption_key: bytes, paillier_n: bytes) -> TxReceipt:
        """Put the acting account's public keys in the key directory."""

    @abstractmethod
    def keys_of(self, address: str) -> KeyEntry | None: ...

    @abstractmethod
    def report_usage(
        self, digest: str, window_start: int, window_end: int, cid: str, blob_hash: str
    ) -> TxReceipt: ...

    @abstractmethod
    def usage_reports(self, digest: str) -> list[UsageReport]: ...

    # -- the audit log -------------------------------------------------------------

    @abstractmethod
    def audit_log(self, digest: str | None = None) -> list[AuditEvent]:
        """Every event of the contract (or of one image), in chain order."""

    # -- conveniences ------------------------------------------------------------

    def statuses(self, digests: Sequence[str]) -> dict[str, Status]:
        return {d: self.status(d) for d in digests}
