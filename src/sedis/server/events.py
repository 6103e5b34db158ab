"""The ledger followed for the UI: each new block's changes, pushed as server-sent events.

One thread polls the ledger (``LedgerFollower``) and hands each change to
every subscriber's bounded queue. A subscriber that falls behind loses its
oldest changes and is told to reload everything (a ``resync`` event), so a
slow browser never holds memory or another subscriber back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sedis.core.errors import SedisError
from sedis.ledger.base import LedgerReader
from sedis.watch.follow import LedgerChange, LedgerFollower

_LOG = logging.getLogger("sedis.serve")
QUEUE_LENGTH = 256
KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One transaction's change, as the UI hears of it."""

    block: int
    event: str
    digests: tuple[str, ...]
    actor: str
    tx_hash: str
    at: int

    def to_json(self) -> dict[str, object]:
        return {
            "block": self.block,
            "event": self.event,
            "digests": list(self.digests),
            "actor": self.actor,
            "tx_hash": self.tx_hash,
            "at": self.at,
        }


def _event_of(change: LedgerChange) -> LedgerEvent:
    cause = change.cause
    return LedgerEvent(
        cause.block,
        cause.event,
        tuple(sorted(change.digests)),
        str(cause.actor),
        cause.tx_hash,
        cause.at,
    )


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[LedgerEvent | None] = asyncio.Queue(QUEUE_LENGTH)
        self.overflowed = False

    def offer(self, event: LedgerEvent | None) -> None:
        """Runs on the subscriber's loop."""
        if self.queue.full():
            self.overflowed = True
            return
        self.queue.put_nowait(event)


class EventHub:
    """Follows ``ledger`` every ``interval`` seconds and fans its changes out."""

    def __init__(self, ledger: LedgerReader, *, interval: float = 0.5) -> None:
        self._follower = LedgerFollower(ledger)
        self._interval = interval
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sedis-serve-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            with contextlib.suppress(RuntimeError):
                sub.loop.call_soon_threadsafe(sub.offer, None)

    def poll_once(self) -> list[LedgerEvent]:
        """One poll, fanned out: what the thread does each interval."""
        events = [_event_of(c) for c in self._follower.poll()]
        if events:
            with self._lock:
                subscribers = list(self._subscribers)
            for sub in subscribers:
                for event in events:
                    with contextlib.suppress(RuntimeError):  # its loop has closed
                        sub.loop.call_soon_threadsafe(sub.offer, event)
        return events

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll_once()
            except SedisError as exc:
                _LOG.warning("ledger unreadable for live updates: %s", exc)

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events for one client, until it goes or the hub stops."""
        sub = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event is None:
                    return
                if sub.overflowed:
                    sub.overflowed = False
                    while not sub.queue.empty():
                        sub.queue.get_nowait()
                    yield "event: resync\ndata: {}\n\n"
                    continue
                yield f"event: ledger\ndata: {json.dumps(event.to_json())}\n\n"
        finally:
            with self._lock:
                self._subscribers.discard(sub)
