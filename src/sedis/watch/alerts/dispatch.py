"""The dispatcher: every alert to every channel, without ever making the watchdog wait.

Each channel has a bounded queue of its own and one worker thread. ``submit``
only appends to the queues (when one is full its oldest alert is dropped and
reported so), the worker sends the alerts in order, and an alert that fails
is retried with exponential backoff, capped, until it is sent or has used
its attempts. A channel that hangs or fails holds up only its own queue.
Every outcome goes to ``on_result(channel, result)``, with results "sent",
"failed" (given up) and "dropped" (pushed out of a full queue, or still
queued at close).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from sedis.core.errors import SedisError
from sedis.watch.alerts.base import Alert, AlertChannel
from sedis.watch.alerts.text import one_line

log = logging.getLogger(__name__)

SENT = "sent"
FAILED = "failed"
DROPPED = "dropped"


def ignore(channel: str, result: str) -> None:
    """An ``on_result`` that reports nothing."""


class AlertDispatcher:
    def __init__(
        self,
        channels: Sequence[AlertChannel],
        *,
        on_result: Callable[[str, str], None] = ignore,
        queue_size: int = 1000,
        backoff_initial: float = 0.5,
        backoff_max: float = 60.0,
        max_attempts: int = 10,
    ) -> None:
        if queue_size < 1 or max_attempts < 1:
            raise ValueError("the queue size and the attempts are at least 1")
        if backoff_initial < 0 or backoff_max < backoff_initial:
            raise ValueError("the backoff starts at 0 or more and its cap is no less")
        self._on_result = on_result
        self._workers = [
            _Worker(
                channel,
                self._report,
                queue_size=queue_size,
                backoff_initial=backoff_initial,
                backoff_max=backoff_max,
                max_attempts=max_attempts,
            )
            for channel in channels
        ]
        for worker in self._workers:
            worker.start()

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(worker.name for worker in self._workers)

    def submit(self, alert: Alert) -> None:
        """Queue ``alert`` for every channel; returns at once, whatever the channels do."""
        for worker in self._workers:
            worker.put(alert)

    def pending(self) -> int:
        """The alerts queued or being sent, over all channels."""
        return sum(worker.pending() for worker in self._workers)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued alert is sent or given up; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        return all(worker.wait_idle(deadline) for worker in self._workers)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued for up to ``timeout`` seconds, then stop; the rest is dropped."""
        self.flush(timeout)
        for worker in self._workers:
            worker.stop()
        deadline = time.monotonic() + 1.0
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            close = getattr(worker.channel, "close", None)
            # A channel still inside a send keeps its connection until that send ends.
            if callable(close) and not worker.alive:
                try:
                    close()
                except Exception:
                    log.exception("closing the %s channel failed", worker.name)

    def _report(self, channel: str, result: str) -> None:
        try:
            self._on_result(channel, result)
        except Exception:
            log.exception("reporting the %s result of the %s channel failed", result, channel)


class _Worker:
    def __init__(
        self,
        channel: AlertChannel,
        report: Callable[[str, str], None],
        *,
        queue_size: int,
        backoff_initial: float,
        backoff_max: float,
        max_attempts: int,
    ) -> None:
        self.channel = channel
        self.name = channel.name
        self._report = report
        self._queue: deque[Alert] = deque()
        self._queue_size = queue_size
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_attempts = max_attempts
        self._busy = False
        self._stopping = False
        self._changed = threading.Condition()
        # A daemon, so that a channel hung in a send never keeps the process alive.
        self._thread = threading.Thread(target=self._run, name=f"alerts-{self.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, alert: Alert) -> None:
        dropped = 0
        with self._changed:
            if self._stopping:
                dropped = 1
            else:
                while len(self._queue) >= self._queue_size:
                    self._queue.popleft()
                    dropped += 1
                self._queue.append(alert)
                self._changed.notify_all()
        for _ in range(dropped):
            log.warning("the %s alert queue is full: dropped its oldest alert", self.name)
            self._report(self.name, DROPPED)

    def pending(self) -> int:
        with self._changed:
            return len(self._queue) + (1 if self._busy else 0)

    def wait_idle(self, deadline: float) -> bool:
        with self._changed:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            left = len(self._queue)
            self._queue.clear()
            self._changed.notify_all()
        for _ in range(left):
            self._report(self.name, DROPPED)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    return
                alert = self._queue.popleft()
                self._busy = True
            try:
                result = self._deliver(alert)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
            self._report(self.name, result)

    def _deliver(self, alert: Alert) -> str:
        """Send ``alert`` until it goes or its attempts are spent (or the worker stops)."""
        delay = self._backoff_initial
        for attempt in range(1, self._max_attempts + 1):
            try:
                self.channel.send(alert)
                return SENT
            except SedisError as exc:
                why = str(exc)
            except Exception as exc:  # a fault in a channel must not end its worker
                why = f"{type(exc).__name__}: {exc}"
            if attempt == self._max_attempts:
                log.warning(
                    "gave up sending an alert through %s after %d attempts: %s (%s)",
                    self.name,
                    attempt,
                    one_line(why, 300),
                    one_line(alert.summary, 200),
                )
                return FAILED
            log.info(
                "sending an alert through %s failed (attempt %d of %d, next in %.1f s): %s",
                self.name,
                attempt,
                self._max_attempts,
                delay,
                one_line(why, 300),
            )
            with self._changed:
                if self._changed.wait_for(lambda: self._stopping, timeout=delay):
                    return DROPPED
            delay = min(delay * 2, self._backoff_max)
        return FAILED
