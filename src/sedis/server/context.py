"""ServerContext: what every request of one server shares.

Built once at start: one ``Engines``, at most one ``Actor`` (the server's own
identity), the trust policy in force, the sessions, the live-update hub, and
the watchdog's state when one runs in the same process or reports to it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sedis.core.policy import TrustPolicy
from sedis.server.auth import NonceStore, RateLimiter, SessionStore
from sedis.server.config import ServeConfig
from sedis.server.events import EventHub
from sedis.service.engines import Actor, Engines
from sedis.service.query import ImageSummary, list_images


class WatchState(Protocol):
    """A watchdog's latest verdicts, as ``sedis watch --once -o json`` prints them."""

    def documents(self) -> list[dict[str, Any]]: ...


class ReportedWatchState:
    """The verdicts that watchdogs on other hosts push (``POST /api/v1/watch/report``),
    the latest per host, with when each last reported (``queries`` calls a silent host
    stale; it is never dropped)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._by_host: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    def report(self, host: str, verdicts: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            self._by_host[host] = (self._clock(), list(verdicts))

    def reported_at(self) -> dict[str, float]:
        with self._lock:
            return {host: at for host, (at, _) in self._by_host.items()}

    def documents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [d for _, docs in self._by_host.values() for d in docs]


class ImageListCache:
    """Every record's summary, as of one block."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block = -1
        self._rows: list[ImageSummary] = []

    def rows(self, engines: Engines) -> list[ImageSummary]:
        ledger = engines.ledger
        with ledger.pinned():
            block = ledger.info().block_number
            with self._lock:
                if block == self._block:
                    return self._rows
            rows = list_images(engines)
        with self._lock:
            if block >= self._block:
                self._block, self._rows = block, rows
        return rows


@dataclass
class ServerContext:
    engines: Engines
    config: ServeConfig
    policy: TrustPolicy
    actor: Actor | None
    sessions: SessionStore
    events: EventHub
    watch: list[WatchState] = field(default_factory=list)
    reported: ReportedWatchState = field(default_factory=ReportedWatchState)
    image_list: ImageListCache = field(default_factory=ImageListCache)
    clock: Callable[[], float] = time.time
    nonces: NonceStore = field(default_factory=lambda: NonceStore(ServeConfig().nonce_ttl))
    sign_ins: RateLimiter = field(
        default_factory=lambda: RateLimiter(ServeConfig().sign_in_per_minute)
    )

    @classmethod
    def build(
        cls,
        engines: Engines,
        config: ServeConfig,
        policy: TrustPolicy,
        actor: Actor | None = None,
        *,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> ServerContext:
        return cls(
            engines,
            config,
            policy,
            actor,
            SessionStore(config.session_ttl, clock),
            EventHub(engines.ledger, interval=poll_interval),
            clock=clock,
            nonces=NonceStore(config.nonce_ttl, clock=clock),
            sign_ins=RateLimiter(config.sign_in_per_minute, clock=clock),
        )
