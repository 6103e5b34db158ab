"""In-memory stand-ins for the watchdog's outside systems, for unit tests.

``FakeRuntime`` is a ``ContainerRuntime`` whose containers and event stream
the test drives; ``FlakyLedger`` wraps a ``FakeLedger`` with the faults a
real node gives (unreachable, slow for one digest) and counts reads;
``RecordingChannel`` is an ``AlertChannel`` that keeps what it was sent;
``RecordingPoints`` stands where an InfluxDB sink would.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sedis.core.containers import ContainerVerdict, RunningContainer
from sedis.core.errors import NotFoundError, UnavailableError
from sedis.watch.alerts.base import Alert
from sedis.watch.runtime.base import STARTED, RuntimeEvent
from tests.unit.service.fakes import FakeLedger

_CLOSED = object()


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def container(
    name: str,
    image_id: str,
    repo_digests: Sequence[str] = (),
    *,
    image: str | None = None,
    labels: Sequence[tuple[str, str]] = (),
) -> RunningContainer:
    return RunningContainer(
        id=hashlib.sha256(name.encode()).hexdigest(),
        name=name,
        image=image if image is not None else f"registry.local/{name}:1",
        image_id=image_id,
        repo_digests=tuple(repo_digests),
        labels=tuple(labels),
    )


class FakeRuntime:
    """A container engine in memory: ``run`` and ``end`` change what runs and send events."""

    endpoint = "unix:///fake/docker.sock"

    def __init__(self) -> None:
        self.running_now: dict[str, RunningContainer] = {}
        self.stopped: list[tuple[str, int]] = []
        self.killed: list[str] = []
        self.fail_listing: UnavailableError | None = None
        self.fail_stop: UnavailableError | None = None
        # The next stream breaks once this event is set.
        self.break_stream: threading.Event | None = None
        self.streams_opened = 0
        self._events: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self.closed = False

    # -- what tests do --------------------------------------------------------------------

    def run(self, found: RunningContainer, *, announce: bool = True) -> None:
        with self._lock:
            self.running_now[found.id] = found
        if announce:
            self._events.put(RuntimeEvent(STARTED, found.id, time.time()))

    def end(self, container_id: str, action: str = "die") -> None:
        with self._lock:
            self.running_now.pop(container_id, None)
        self._events.put(RuntimeEvent(action, container_id, time.time()))

    # -- ContainerRuntime -------------------------------------------------------------------

    def host(self) -> str:
        return "node-1"

    def running(self) -> list[RunningContainer]:
        if self.fail_listing is not None:
            raise self.fail_listing
        with self._lock:
            return list(self.running_now.values())

    def container(self, container_id: str) -> RunningContainer | None:
        with self._lock:
            return self.running_now.get(container_id)

    def events(self) -> Iterator[RuntimeEvent]:
        self.streams_opened += 1
        breaking = self.break_stream
        if breaking is not None:
            self.break_stream = None
            breaking.wait(10)
            raise UnavailableError("the container engine at unix:///fake is unreachable: reset")
        while True:
            item = self._events.get()
            if item is _CLOSED:
                return
            assert isinstance(item, RuntimeEvent)
            yield item

    def stop(self, container_id: str, timeout: int) -> None:
        if self.fail_stop is not None:
            raise self.fail_stop
        with self._lock:
            if self.running_now.pop(container_id, None) is None:
                raise NotFoundError(f"no container {container_id}")
        self.stopped.append((container_id, timeout))

    def kill(self, container_id: str) -> None:
        with self._lock:
            if self.running_now.pop(container_id, None) is None:
                raise NotFoundError(f"no container {container_id}")
        self.killed.append(container_id)

    def close(self) -> None:
        self.closed = True
        self._events.put(_CLOSED)


class FlakyLedger:
    """A FakeLedger that can be unreachable, slow for one digest, and counts its reads."""

    def __init__(self, inner: FakeLedger) -> None:
        self.inner = inner
        self.down = False
        self.slow: dict[str, float] = {}  # digest -> seconds each read of it takes
        self.reads: dict[str, int] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute) or name in ("pinned", "close"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise UnavailableError("the ledger node at http://127.0.0.1:1 is unreachable")
            with self._lock:
                self.reads[name] = self.reads.get(name, 0) + 1
            for arg in args:
                if isinstance(arg, str) and arg in self.slow:
                    time.sleep(self.slow[arg])
            return attribute(*args, **kwargs)

        return call


class RecordingChannel:
    """An AlertChannel that keeps every alert it is sent."""

    def __init__(self, name: str = "webhook") -> None:
        self._name = name
        self.sent: list[Alert] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def send(self, alert: Alert) -> None:
        with self._lock:
            self.sent.append(alert)


class RecordingPoints:
    """What an InfluxDB sink was given: each write's verdicts and time."""

    def __init__(self) -> None:
        self.writes: list[tuple[list[ContainerVerdict], float]] = []
        self.flushed = 0

    def write(self, verdicts: Sequence[ContainerVerdict], at: float) -> None:
        self.writes.append((list(verdicts), at))

    def flush(self, timeout: float) -> bool:
        self.flushed += 1
        return True


class Clock:
    """A clock tests move."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
