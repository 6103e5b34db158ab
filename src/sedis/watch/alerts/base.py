"""Alert and AlertChannel: what the watchdog says when something changes, and to whom.

An alert is raised on a transition only: a container whose state changed, a
reminder after a configured period in a failing state, the ledger
unreachable for longer than allowed (and reachable again), and each
enforcement action. A channel sends one alert and raises on failure; the
dispatcher retries with backoff, on a thread of its own per channel, so a
failing channel never blocks the watchdog.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from sedis.core.address import Address


class AlertKind(Enum):
    TRANSITION = "transition"  # a container's state changed
    REMINDER = "reminder"  # still failing after the reminder period
    RESOLVED = "resolved"  # a failing container is fine again, or gone
    LEDGER_UNREACHABLE = "ledger_unreachable"
    LEDGER_REACHABLE = "ledger_reachable"
    ACTION = "action"  # the watchdog stopped or killed a container (or would have)


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    host: str
    summary: str  # one line, for a subject or a title
    at: float  # Unix seconds
    container: str = ""
    container_id: str = ""
    image: str = ""
    image_id: str = ""
    digest: str | None = None
    status: str = ""  # a ContainerState's value
    previous: str | None = None
    reason: str = ""
    set_by: Address | None = None  # who made the ledger change that caused it
    block: int | None = None
    tx_hash: str | None = None
    action: str | None = None  # for ACTION: stop, kill
    dry_run: bool = False

    @property
    def key(self) -> str:
        """What deduplicates it: one open alert per container (or one for the ledger)."""
        if self.kind in (AlertKind.LEDGER_UNREACHABLE, AlertKind.LEDGER_REACHABLE):
            return f"{self.host}/ledger"
        return f"{self.host}/{self.container_id}"

    @property
    def firing(self) -> bool:
        return self.kind not in (AlertKind.RESOLVED, AlertKind.LEDGER_REACHABLE)


class AlertChannel(Protocol):
    @property
    def name(self) -> str:
        """The channel's label in metrics: alertmanager, webhook, email."""
        ...

    def send(self, alert: Alert) -> None:
        """Deliver one alert, or raise UnavailableError saying why it was not delivered."""
        ...
