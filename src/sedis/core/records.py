"""What the ledger records, as plain values.

Digests and hashes are written the OCI way, ``sha256:<64 hex>``; addresses are
EIP-55 checksummed ``0x`` strings; times are Unix seconds as the chain saw them.
Nothing here reads a clock: callers pass ``now`` where time matters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from sedis.core.address import Address
from sedis.core.errors import InvalidInputError

_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


class Status(Enum):
    """A record's standing. UNKNOWN is what a digest reads as for a publisher who never
    recorded it."""

    UNKNOWN = "UNKNOWN"
    TRUSTED = "TRUSTED"
    UNTRUSTED = "UNTRUSTED"
    UNSUPPORTED = "UNSUPPORTED"
    REVOKED = "REVOKED"

    @classmethod
    def parse(cls, text: str) -> Status:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.value.lower() for s in cls if s is not cls.UNKNOWN)
            raise InvalidInputError(f"unknown status {text!r} (expected one of {names})") from None


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """Vulnerability counts by severity and the scan report that they summarise."""

    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    unknown: int = 0
    not_scanned: bool = False
    report_digest: str | None = None
    report_cid: str | None = None
    vulndb_digest: str | None = None  # the vulnerability database snapshot the scan used

    @classmethod
    def unscanned(cls) -> ScanSummary:
        return cls(not_scanned=True)

    @property
    def total(self) -> int:
        return self.critical + self.high + self.medium + self.low + self.unknown


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One publisher's record of an image. Any number of publishers may record the same
    digest, each with a record of their own that only they can change."""

    publisher: Address
    digest: str
    config_digest: str
    root_cid: str
    published_at: int
    status: Status
    scan: ScanSummary
    status_changes: int = 0
    attestation_count: int = 0
    usage_report_count: int = 0


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """One step of a record's append-only status history; index 0 is the publication."""

    publisher: Address
    digest: str
    index: int
    status: Status
    previous: Status
    reason: str
    at: int


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """A grant to make: who, and the share manifest that carries their wrapped keys."""

    recipient: Address
    manifest_cid: str
    manifest_hash: str
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A recipient's access to a publisher's image, through a manifest carrying its
    wrapped keys."""

    publisher: Address
    digest: str
    recipient: Address
    manifest_cid: str
    manifest_hash: str
    granted_at: int
    expires_at: int | None = None
    revoked_at: int | None = None

    def active_at(self, now: int) -> bool:
        """Granted: neither revoked nor expired at ``now``."""
        return grant_live(self.expires_at, self.revoked_at is not None, now)


def grant_clock(chain_time: int, local_time: int) -> int:
    """The time a grant's expiry is judged at: the later of the two clocks.

    A chain that mines on demand (anvil, geth --dev, many consortium chains)
    keeps the timestamp of its last block while the wall clock moves on, and a
    local clock may lag behind the chain's: whichever says later wins.
    """
    return max(chain_time, local_time)


def grant_live(expires_at: int | None, revoked: bool, now: int) -> bool:
    """The one rule for whether a grant lets its recipient in at ``now``."""
    return not revoked and (expires_at is None or now < expires_at)


@dataclass(frozen=True, slots=True)
class Attestation:
    """What ``attester`` says (``kind``: approved, scan, …) about one publisher's record.

    ``index`` numbers the record's attestations from 1; ``revoked_at`` is when the
    attester took it back, and a revoked attestation never counts.
    """

    publisher: Address
    digest: str
    attester: Address
    kind: str
    payload_hash: str
    cid: str
    at: int
    index: int
    revoked_at: int | None = None

    @property
    def live(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class TagEntry:
    """A publisher's name:tag pointing at an image from ``at`` on; ``previous`` is what that
    publisher's name:tag pointed at before. Tags are scoped per publisher."""

    publisher: Address
    name: str
    tag: str
    digest: str
    previous: str | None
    at: int

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """An account's entry in the key directory."""

    address: Address
    encryption_key: bytes
    paillier_n: bytes
    registered_at: int


@dataclass(frozen=True, slots=True)
class UsageReport:
    publisher: Address
    digest: str
    reporter: Address
    window_start: int
    window_end: int
    cid: str
    blob_hash: str
    at: int
    index: int


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One event of the ledger's audit log.

    ``actor`` is the account whose transaction made the change (a record's
    publisher, an attester, a reporter, a key's owner); ``publisher`` and
    ``digest`` name the record it is about, where there is one. ``at`` is the
    chain time the contract stamped on it. ``fields`` hold every argument of
    the event as JSON values: bytes as 0x hex, addresses checksummed.
    """

    name: str
    block_number: int
    log_index: int
    tx_hash: str
    at: int
    actor: Address
    publisher: Address | None
    digest: str | None
    fields: dict[str, object]


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which events of the audit log to read; every field narrows, None means any.

    ``since`` and ``until`` bound ``at`` (inclusive, Unix seconds); ``kinds`` are
    event names (ImagePublished, StatusChanged, GrantAdded, GrantRevoked, Attested,
    AttestationRevoked, TagMoved, KeysRegistered, UsageReported). ``from_block``
    reads only the events of that block and later ones: what a follower of the
    ledger has not seen yet.
    """

    publisher: Address | None = None
    digest: str | None = None
    actor: Address | None = None
    kinds: frozenset[str] | None = None
    since: int | None = None
    until: int | None = None
    from_block: int | None = None


@dataclass(frozen=True, slots=True)
class TxReceipt:
    """A transaction that the chain accepted."""

    tx_hash: str
    block_number: int
    gas_used: int


@dataclass(frozen=True, slots=True)
class LedgerInfo:
    url: str
    chain_id: int
    contract: str | None
    block_number: int
    account: Address | None = None
    balance_wei: int | None = None


def digest_to_bytes(digest: str) -> bytes:
    """``sha256:<hex>`` to the 32 bytes the contract keys on."""
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise InvalidInputError(
            f"not a sha256 digest: {digest!r} (expected sha256:<64 hex digits>)"
        )
    return bytes.fromhex(match.group(1))


def digest_from_bytes(raw: bytes) -> str:
    if len(raw) != 32:
        raise InvalidInputError(f"a sha256 digest has 32 bytes, not {len(raw)}")
    return "sha256:" + raw.hex()


def optional_digest(raw: bytes) -> str | None:
    """The contract stores 'none' as 32 zero bytes."""
    return None if raw == bytes(32) else digest_from_bytes(raw)


def short_digest(digest: str) -> str:
    """``sha256:0123456789ab…`` for messages."""
    return digest[:19] + "…" if len(digest) > 20 else digest
