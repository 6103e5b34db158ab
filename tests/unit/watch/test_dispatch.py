"""AlertDispatcher: retries with backoff, and no channel ever holds up another or the caller."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from sedis.core.errors import UnavailableError
from sedis.watch.alerts.base import Alert, AlertKind
from sedis.watch.alerts.dispatch import AlertDispatcher


def alert(n: int) -> Alert:
    return Alert(kind=AlertKind.TRANSITION, host="node-1", summary=f"alert {n}", at=float(n))


class Recording:
    """A channel that fails its first ``failures`` sends, then records what it sends."""

    def __init__(self, name: str, failures: int = 0) -> None:
        self._name = name
        self.failures = failures
        self.attempts: list[float] = []
        self.sent: list[Alert] = []
        self.lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def send(self, alert: Alert) -> None:
        with self.lock:
            self.attempts.append(time.monotonic())
            if len(self.attempts) <= self.failures:
                raise UnavailableError(f"the {self._name} receiver is down")
            self.sent.append(alert)


class Hanging:
    """A channel whose send blocks until released: a receiver that never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.sent: list[Alert] = []

    @property
    def name(self) -> str:
        return "hanging"

    def send(self, alert: Alert) -> None:
        self.entered.set()
        self.release.wait(30)
        self.sent.append(alert)


class Results:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()

    def __call__(self, channel: str, result: str) -> None:
        with self.lock:
            self.counts[(channel, result)] += 1


def test_a_channel_failing_n_times_is_retried_with_growing_backoff_then_sent() -> None:
    channel = Recording("webhook", failures=3)
    results = Results()
    dispatcher = AlertDispatcher(
        [channel], on_result=results, backoff_initial=0.05, backoff_max=0.15, max_attempts=10
    )
    try:
        dispatcher.submit(alert(1))
        assert dispatcher.flush(10)
    finally:
        dispatcher.close()
    assert channel.sent == [alert(1)]
    assert len(channel.attempts) == 4
    gaps = [b - a for a, b in zip(channel.attempts, channel.attempts[1:], strict=False)]
    print("retry gaps:", [f"{g:.3f}" for g in gaps])
    # 0.05, 0.1, then capped at 0.15: each wait at least its backoff.
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.145
    assert gaps[2] < 5  # capped, loosely
    assert results.counts == Counter({("webhook", "sent"): 1})


def test_a_channel_that_never_succeeds_gives_up_and_reports_failed() -> None:
    channel = Recording("email", failures=1000)
    results = Results()
    dispatcher = AlertDispatcher(
        [channel], on_result=results, backoff_initial=0.0, backoff_max=0.0, max_attempts=4
    )
    try:
        dispatcher.submit(alert(1))
        dispatcher.submit(alert(2))
        assert dispatcher.flush(10)
    finally:
        dispatcher.close()
    assert len(channel.attempts) == 8 and channel.sent == []
    assert results.counts == Counter({("email", "failed"): 2})


def test_a_hanging_channel_blocks_neither_submit_nor_the_other_channels() -> None:
    hanging, healthy = Hanging(), Recording("webhook")
    results = Results()
    dispatcher = AlertDispatcher([hanging, healthy], on_result=results, queue_size=1000)
    try:
        started = time.monotonic()
        for n in range(500):
            dispatcher.submit(alert(n))
        submitting = time.monotonic() - started
        print(f"500 submits with a hanging channel: {submitting * 1000:.1f} ms")
        assert submitting < 5
        assert hanging.entered.wait(5)
        deadline = time.monotonic() + 10
        while len(healthy.sent) < 500 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert healthy.sent == [alert(n) for n in range(500)]
        assert hanging.sent == []
        assert not dispatcher.flush(0.1)  # the hanging channel still holds its queue
        assert dispatcher.pending() == 500
    finally:
        hanging.release.set()
        dispatcher.close(10)
    assert hanging.sent == [alert(n) for n in range(500)]
    assert results.counts == Counter({("webhook", "sent"): 500, ("hanging", "sent"): 500})


def test_a_full_queue_drops_the_oldest_and_reports_dropped() -> None:
    hanging = Hanging()
    results = Results()
    dispatcher = AlertDispatcher([hanging], on_result=results, queue_size=3)
    try:
        dispatcher.submit(alert(0))
        assert hanging.entered.wait(5)  # alert 0 is in flight, out of the queue
        for n in range(1, 6):
            dispatcher.submit(alert(n))
        assert results.counts == Counter({("hanging", "dropped"): 2})
        hanging.release.set()
        assert dispatcher.flush(10)
    finally:
        hanging.release.set()
        dispatcher.close()
    # 1 and 2 were the oldest queued when 4 and 5 came.
    assert hanging.sent == [alert(0), alert(3), alert(4), alert(5)]
    assert results.counts == Counter({("hanging", "dropped"): 2, ("hanging", "sent"): 4})


def test_close_drops_what_a_stuck_channel_still_holds_and_returns() -> None:
    hanging = Hanging()
    results = Results()
    dispatcher = AlertDispatcher([hanging], on_result=results)
    dispatcher.submit(alert(0))
    assert hanging.entered.wait(5)
    dispatcher.submit(alert(1))
    dispatcher.submit(alert(2))
    started = time.monotonic()
    dispatcher.close(0.2)
    print(f"close with a stuck channel: {time.monotonic() - started:.2f} s")
    assert time.monotonic() - started < 5
    assert results.counts == Counter({("hanging", "dropped"): 2})
    hanging.release.set()
    dispatcher.submit(alert(3))  # after close: dropped at once, never blocks
    assert results.counts[("hanging", "dropped")] == 3


def test_close_interrupts_a_backoff() -> None:
    channel = Recording("alertmanager", failures=1000)
    results = Results()
    dispatcher = AlertDispatcher([channel], on_result=results, backoff_initial=30, backoff_max=60)
    dispatcher.submit(alert(1))
    deadline = time.monotonic() + 5
    while not channel.attempts and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    dispatcher.close(0.1)
    assert time.monotonic() - started < 5
    assert results.counts == Counter({("alertmanager", "dropped"): 1})


def test_a_channel_that_raises_anything_keeps_its_worker() -> None:
    class Broken(Recording):
        def send(self, alert: Alert) -> None:
            self.attempts.append(0)
            if len(self.attempts) == 1:
                raise KeyError("a bug")
            self.sent.append(alert)

    channel = Broken("webhook")
    results = Results()
    dispatcher = AlertDispatcher([channel], on_result=results, backoff_initial=0, backoff_max=0)
    try:
        dispatcher.submit(alert(1))
        assert dispatcher.flush(5)
    finally:
        dispatcher.close()
    assert channel.sent == [alert(1)]


def test_a_failing_result_callback_changes_nothing() -> None:
    def explode(channel: str, result: str) -> None:
        raise RuntimeError("metrics are down")

    channel = Recording("webhook")
    dispatcher = AlertDispatcher([channel], on_result=explode)
    try:
        dispatcher.submit(alert(1))
        dispatcher.submit(alert(2))
        assert dispatcher.flush(5)
    finally:
        dispatcher.close()
    assert channel.sent == [alert(1), alert(2)]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        AlertDispatcher([], queue_size=0)
    with pytest.raises(ValueError):
        AlertDispatcher([], backoff_initial=5, backoff_max=1)
