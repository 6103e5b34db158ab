"""LedgerFollower: the ledger's new events, as the digests they touch and who caused them.

The follower polls the head block; when it has moved, it reads the audit log
from the block after the last one it saw, and says which digests each
transaction touched: the record's digest of every event that names one
(status changes, grants, attestations, tags), and the config digest of an
``ImagePublished`` (a new record of the image a container runs). The first
poll only learns the head: what happened before the watchdog started is
what its first full pass reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sedis.core.address import Address
from sedis.core.containers import LedgerCause
from sedis.core.records import AuditEvent, AuditQuery
from sedis.ledger.base import LedgerReader

# At most this many blocks' events are read at once, so a follower that was away
# for long catches up in steps of bounded memory.
MAX_BLOCKS_PER_READ = 1000


@dataclass(frozen=True, slots=True)
class LedgerChange:
    """One transaction's events: the digests they touch, and the change that names them."""

    digests: frozenset[str]
    cause: LedgerCause


class LedgerFollower:
    """Follows one ledger's blocks (see the module's docstring); not thread-safe."""

    def __init__(self, ledger: LedgerReader, *, after_block: int | None = None) -> None:
        self._ledger = ledger
        self._last = after_block  # the last block whose events were read

    @property
    def last_block(self) -> int | None:
        return self._last

    def poll(self) -> list[LedgerChange]:
        """The changes since the last poll, oldest first; raises the ledger's SedisError
        when it cannot be read (the next poll starts where this one failed)."""
        head = self._ledger.info().block_number
        if self._last is None:
            self._last = head
            return []
        if head <= self._last:
            return []
        until = min(head, self._last + MAX_BLOCKS_PER_READ)
        events = [
            e
            for e in self._ledger.audit_log(AuditQuery(from_block=self._last + 1))
            if e.block_number <= until
        ]
        self._last = until
        return changes_of(events)


def changes_of(events: Iterable[AuditEvent]) -> list[LedgerChange]:
    """The events grouped by transaction, in chain order, each with the digests it touches."""
    touched: dict[str, set[str]] = {}
    causes: dict[str, LedgerCause] = {}
    for event in sorted(events, key=lambda e: (e.block_number, e.log_index)):
        digests = touched_by(event)
        if not digests:
            continue
        touched.setdefault(event.tx_hash, set()).update(digests)
        causes.setdefault(event.tx_hash, cause_of(event))
    return [LedgerChange(frozenset(touched[tx]), causes[tx]) for tx in touched]


def touched_by(event: AuditEvent) -> set[str]:
    digests: set[str] = set()
    if event.digest is not None:
        digests.add(event.digest)
    if event.name == "ImagePublished":
        config = event.fields.get("configDigest")
        if isinstance(config, str) and config.startswith("sha256:"):
            digests.add(config)
        elif isinstance(config, str) and config.startswith("0x") and len(config) == 66:
            digests.add("sha256:" + config[2:].lower())
    return digests


def cause_of(event: AuditEvent) -> LedgerCause:
    actor: Address = event.actor
    return LedgerCause(event.name, actor, event.block_number, event.tx_hash, event.at)
