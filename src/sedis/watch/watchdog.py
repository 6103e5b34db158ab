"""The watchdog: every running container judged against the ledger, kept up to date.

Three sources of change keep one state table (container ID to verdict):

- the engine's event stream: a started container is judged at once, an ended
  one forgotten; when the stream breaks it is reopened with capped backoff
  and a full pass follows, since events may have been missed;
- the ledger: a ``LedgerFollower`` polls the head, and each transaction
  re-judges exactly the containers whose digests it touched, with the change
  (who, which block and transaction) attached as the verdict's cause;
- a full pass every ``interval``, the safety net: every container listed
  and judged again.

Verdicts are cached by image (image ID and manifest digests), so a pass
judges each distinct image once, in parallel on the engines' executor, with
a time limit per lookup: one slow lookup is ERROR for that pass and stalls
nothing else. A ledger event drops the cached verdicts of every image it
touches. A full pass reuses what is cached, so a warm pass costs the engine's
listing and the images that changed; every verdict is judged afresh at least
every RECHECK_PASSES intervals, and when a live grant to the node expires, for
what time alone changes (a grant's expiry, a scan's age). A ledger that cannot
be read gives ERROR, never UNKNOWN.

After every change the metrics see the whole table, InfluxDB gets the changed
verdicts (the whole table after a pass), a ``sedis serve`` reported to gets the
whole table, and the alert tracker turns changes into alerts for the dispatcher.
Enforcement is opt-in: a container that has stayed in an enforced state for
the grace period is stopped or killed (or, dry-run, only logged); never one
that is EXEMPT, never one in ERROR unless ERROR is configured; each action is
logged, alerted and counted.

Judgements, the passes and the table's changes are serialised by one lock,
so a pass that listed a container before it ended cannot bring it back, and
a stale pass cannot overwrite a fresher ledger change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sedis.core.address import Address
from sedis.core.containers import (
    ContainerState,
    ContainerVerdict,
    LedgerCause,
    RunningContainer,
    error_verdict,
    exempt_verdict,
    exemption_for,
)
from sedis.core.errors import NotFoundError, SedisError
from sedis.core.policy import TrustPolicy
from sedis.service.containers import Judgement, judge_container
from sedis.service.engines import Engines
from sedis.watch.alerts.base import Alert
from sedis.watch.config import WatchConfig
from sedis.watch.follow import LedgerChange, LedgerFollower
from sedis.watch.runtime.base import ENDED, STARTED, ContainerRuntime, RuntimeEvent

log = logging.getLogger("sedis.watch")

# Backoff of a broken engine stream or an unreadable ledger: doubling, capped.
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0
# A cached verdict is judged afresh after this many full-pass intervals at the latest.
RECHECK_PASSES = 10
# How often the watchdog looks at grace periods, reminders and reload requests.
TICK = 0.25
# How often a pass looks at the time its lookups have taken.
_LOOKUP_CHECK = 0.05


# -- what the watchdog reports to (metrics.WatchMetrics, influx.InfluxSink, alerts.*) --------


class MetricsSink(Protocol):
    def observe(self, verdicts: Sequence[ContainerVerdict]) -> None: ...
    def ledger(self, up: bool, block: int | None) -> None: ...
    def pass_done(self, finished_at: float, duration: float) -> None: ...
    def action(self, action: str, result: str) -> None: ...


class PointSink(Protocol):
    def write(self, verdicts: Sequence[ContainerVerdict], at: float) -> None: ...
    def flush(self, timeout: float) -> bool: ...


class StateSink(Protocol):
    def update(self, verdicts: Sequence[ContainerVerdict], *, whole_pass: bool = False) -> None: ...
    def flush(self, timeout: float) -> bool: ...


class AlertSink(Protocol):
    def submit(self, alert: Alert) -> None: ...
    def flush(self, timeout: float) -> bool: ...


class Tracker(Protocol):
    def observe(self, verdict: ContainerVerdict, now: float) -> list[Alert]: ...
    def gone(self, container_id: str, now: float) -> list[Alert]: ...
    def tick(self, now: float) -> list[Alert]: ...
    def ledger(self, up: bool, now: float, reason: str = "") -> list[Alert]: ...
    def action(
        self,
        verdict: ContainerVerdict,
        action: str,
        *,
        dry_run: bool,
        ok: bool,
        detail: str,
        now: float,
    ) -> Alert: ...


@dataclass(frozen=True, slots=True)
class Reloaded:
    """What a reload (SIGHUP) read: the policy, the configuration, the node's address."""

    policy: TrustPolicy
    config: WatchConfig
    node: Address | None = None


ImageKey = tuple[str, tuple[str, ...]]  # (image ID, manifest digests)


def image_key(container: RunningContainer) -> ImageKey:
    return container.image_id, tuple(sorted(container.repo_digests))


@dataclass(slots=True)
class _Entry:
    """A container the watchdog knows: what it runs, its verdict, what may change it."""

    container: RunningContainer
    verdict: ContainerVerdict
    digests: frozenset[str]  # the digests whose ledger changes may change its verdict
    enforced_since: float | None = None  # when it entered an enforced state
    acted: bool = False  # acted on (or logged, dry-run) in this enforced spell


class Watchdog:
    """One host's watchdog (see the module's docstring)."""

    def __init__(
        self,
        engines: Engines,
        runtime: ContainerRuntime,
        policy: TrustPolicy,
        config: WatchConfig,
        *,
        node: Address | None = None,
        host: str | None = None,
        metrics: MetricsSink | None = None,
        influx: PointSink | None = None,
        dispatcher: AlertSink | None = None,
        tracker: Tracker | None = None,
        reporter: StateSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engines = engines
        self._runtime = runtime
        self._policy = policy
        self._config = config
        self._node = node
        self._host = host or config.host or ""
        self._metrics = metrics
        self._influx = influx
        self._dispatcher = dispatcher
        self._tracker = tracker
        self._reporter = reporter
        self._clock = clock
        self._lock = threading.RLock()
        self._table: dict[str, _Entry] = {}
        self._cache: dict[ImageKey, tuple[Judgement, float]] = {}  # with when it expires
        self._ledger_up: bool | None = None
        self._ledger_block: int | None = None
        self._ledger_reason = ""
        self._engine_up = True
        self._last_pass: float | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._pass_due = threading.Event()
        self._reload_due = threading.Event()
        self._threads: list[threading.Thread] = []
        self._follower: LedgerFollower | None = None

    # -- what callers see ------------------------------------------------------------------

    @property
    def host(self) -> str:
        if not self._host:
            try:
                self._host = self._runtime.host()
            except SedisError as exc:
                log.warning(
                    "the engine at %s did not say its host name: %s", self._runtime.endpoint, exc
                )
                return "unknown"
        return self._host

    @property
    def config(self) -> WatchConfig:
        return self._config

    @property
    def policy(self) -> TrustPolicy:
        return self._policy

    def verdicts(self) -> list[ContainerVerdict]:
        """The current table, by container name."""
        with self._lock:
            return sorted((e.verdict for e in self._table.values()), key=_by_name)

    def health(self) -> tuple[bool, str]:
        """Whether the watchdog is doing its job: for ``/healthz``."""
        now = self._clock()
        with self._lock:
            last_pass = self._last_pass
            ledger_up = self._ledger_up
            reason = self._ledger_reason
        if last_pass is None:
            return False, "no pass has finished yet"
        late = now - last_pass
        if late > 3 * self._config.interval + 30:
            return False, f"the last pass finished {late:.0f} s ago"
        if ledger_up is False:
            return False, f"the ledger is unreachable: {reason}"
        return True, "ok"

    # -- one pass ----------------------------------------------------------------------------

    def once(self) -> list[ContainerVerdict]:
        """One full pass, and enforcement of what is due; the verdicts, by container name.
        An engine that cannot be listed raises its error: there is nothing to report."""
        self.full_pass(strict=True)
        self.enforce_due()
        return self.verdicts()

    def full_pass(self, *, strict: bool = False) -> list[ContainerVerdict]:
        """List every running container and judge each (distinct images once, in parallel).
        An engine that cannot be listed makes every known container ERROR (``strict``:
        raises its error)."""
        with self._lock:
            started = time.monotonic()
            try:
                running = self._runtime.running()
            except SedisError as exc:
                if strict:
                    raise
                self._engine_unreadable(str(exc))
                return self.verdicts()
            if not self._engine_up:
                log.info("the engine at %s answers again", self._runtime.endpoint)
                self._engine_up = True
            self._check_ledger()
            self._drop_expired(self._clock())
            judged = self._judge(running, use_cache=True)
            now = self._clock()
            seen = {c.id for c in running}
            for container_id in [cid for cid in self._table if cid not in seen]:
                self._forget(container_id, now)
            changed = [self._apply(c, j, now) for c, j in zip(running, judged, strict=True)]
            self._after_change([v for v in changed if v is not None], whole_pass=True)
            duration = time.monotonic() - started
            self._last_pass = self._clock()
            if self._metrics is not None:
                self._metrics.pass_done(self._last_pass, duration)
            log.info(
                "pass: %d containers, %d images, %d failing, in %.3f s",
                len(running),
                len({image_key(c) for c in running}),
                sum(1 for e in self._table.values() if e.verdict.failed),
                duration,
            )
            return self.verdicts()

    def container_started(self, container_id: str) -> ContainerVerdict | None:
        """Judge one container that the engine says has started."""
        try:
            container = self._runtime.container(container_id)
        except SedisError as exc:
            log.warning("could not read the started container %s: %s", container_id[:12], exc)
            self._pass_due.set()
            return None
        if container is None:
            return None
        with self._lock:
            (judgement,) = self._judge([container], use_cache=True)
            now = self._clock()
            verdict = self._apply(container, judgement, now)
            if verdict is not None:
                self._after_change([verdict])
            entry = self._table.get(container.id)
            return None if entry is None else entry.verdict

    def container_ended(self, container_id: str) -> None:
        with self._lock:
            if container_id in self._table:
                self._forget(container_id, self._clock())
                self._after_change([])

    def ledger_changed(self, changes: Sequence[LedgerChange]) -> list[ContainerVerdict]:
        """Re-judge exactly the containers that ``changes`` touch; their new verdicts."""
        touched: set[str] = set()
        for change in changes:
            touched |= change.digests
        with self._lock:
            for key in [k for k, (j, _) in self._cache.items() if _touches(k, j.digests, touched)]:
                del self._cache[key]
            hit = [
                (entry.container, _latest_cause(entry, changes))
                for entry in self._table.values()
                if entry.verdict.state is not ContainerState.EXEMPT and entry.digests & touched
            ]
            if not hit:
                return []
            containers = [c for c, _ in hit]
            judged = self._judge(containers, use_cache=True)
            now = self._clock()
            changed: list[ContainerVerdict] = []
            for (container, cause), judgement in zip(hit, judged, strict=True):
                verdict = self._apply(container, judgement, now, cause=cause)
                if verdict is not None:
                    changed.append(verdict)
            self._after_change(changed)
            for verdict in changed:
                cause = verdict.cause
                log.info(
                    "ledger: %s (%s) is %s after %s by %s in block %s: %s",
                    verdict.container,
                    verdict.image_id[:19],
                    verdict.state.value,
                    cause.event if cause else "a change",
                    cause.actor if cause else "?",
                    cause.block if cause else "?",
                    verdict.reason,
                )
            return changed

    # -- configuration -----------------------------------------------------------------------

    def reload(
        self, policy: TrustPolicy, config: WatchConfig, *, node: Address | None = None
    ) -> None:
        """Judge by a new policy, configuration and node from now on, keeping the table,
        the alerts' memory and the grace periods; a full pass follows at once. The engine
        endpoint changes only at a restart."""
        with self._lock:
            if config.engine != self._config.engine:
                log.warning(
                    "reload: the engine endpoint changes only at a restart (still %s)",
                    self._config.engine,
                )
                config = replace(config, engine=self._config.engine)
            self._policy = policy
            self._config = config
            self._node = node
            self._cache.clear()
            for entry in self._table.values():
                self._track_enforcement(entry, self._clock())
        log.info("reloaded %s and the policy %s", config.source, policy.source)
        self._pass_due.set()
        self._wake.set()

    def request_reload(self) -> None:
        """Ask ``run`` to call its reloader (safe from a signal handler)."""
        self._reload_due.set()
        self._wake.set()

    def request_stop(self) -> None:
        """Ask ``run`` to stop (safe from a signal handler)."""
        self._stopping.set()
        self._wake.set()

    # -- the long-running mode -----------------------------------------------------------------

    def start(self) -> None:
        """Start the engine-event, ledger and pass threads (the first pass runs at once)."""
        if self._threads:
            return
        self._stopping.clear()
        try:
            # The head now: every change after it reaches the table, whatever the first
            # pass read.
            self._follower = LedgerFollower(self._engines.ledger)
            self._follower.poll()
        except SedisError as exc:
            self._follower = None
            self._ledger_state(False, None, str(exc))
        self._pass_due.set()
        for name, target in (
            ("sedis-watch-passes", self._pass_loop),
            ("sedis-watch-engine", self._event_loop),
            ("sedis-watch-ledger", self._ledger_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def run(self, reloader: Callable[[], Reloaded] | None = None) -> None:
        """Run until ``request_stop``: the threads, and on this one enforcement, alert
        reminders and reloads. Returns once every thread has stopped."""
        self.start()
        try:
            while not self._stopping.is_set():
                self._wake.wait(TICK)
                self._wake.clear()
                if self._reload_due.is_set():
                    self._reload_due.clear()
                    if reloader is not None:
                        self._reload_with(reloader)
                if self._stopping.is_set():
                    break
                self.enforce_due()
                self._remind()
        finally:
            self.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every thread (the engine stream is closed to end its wait)."""
        self._stopping.set()
        self._wake.set()
        self._pass_due.set()
        try:
            self._runtime.close()
        except SedisError as exc:
            log.debug("closing the engine connection: %s", exc)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, timeout)
        self._threads = []

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for InfluxDB, the alert channels and the server to take what is queued."""
        ok = True
        for sink in (self._influx, self._dispatcher, self._reporter):
            if sink is not None:
                ok = sink.flush(timeout) and ok
        return ok

    # -- enforcement ---------------------------------------------------------------------------

    def enforce_due(self) -> None:
        """Act on every container whose grace period in an enforced state has passed."""
        enforce = self._config.enforce
        if enforce.action is None:
            return
        now = self._clock()
        with self._lock:
            due = [
                e.verdict
                for e in self._table.values()
                if e.enforced_since is not None
                and not e.acted
                and now - e.enforced_since >= enforce.grace
            ]
        for verdict in due:
            self._act(verdict, enforce.action, enforce.dry_run)

    def _act(self, verdict: ContainerVerdict, action: str, dry_run: bool) -> None:
        with self._lock:
            entry = self._table.get(verdict.container_id)
            # The verdict may have changed since it fell due: act only on what it is now.
            if entry is None or not self._enforced(entry.verdict) or entry.acted:
                return
            verdict = entry.verdict
            entry.acted = True
        what = f"{verdict.container} ({verdict.container_id[:12]}, {verdict.image_id})"
        if dry_run:
            ok, result = True, "dry_run"
            detail = f"dry run: would {action} {what}, {verdict.state.value}: {verdict.reason}"
            log.warning(
                "enforce: would %s %s: %s: %s", action, what, verdict.state.value, verdict.reason
            )
        else:
            try:
                if action == "kill":
                    self._runtime.kill(verdict.container_id)
                else:
                    self._runtime.stop(verdict.container_id, self._config.enforce.stop_timeout)
            except SedisError as exc:
                ok, result = False, "failed"
                detail = f"could not {action} {what}: {exc}"
                log.error("enforce: %s", detail)
                with self._lock:
                    entry = self._table.get(verdict.container_id)
                    if entry is not None and not isinstance(exc, NotFoundError):
                        # Tried again after another grace period.
                        entry.acted = False
                        entry.enforced_since = self._clock()
            else:
                ok, result = True, "done"
                detail = f"{action} {what}, {verdict.state.value}: {verdict.reason}"
                log.warning("enforce: %s", detail)
        if self._metrics is not None:
            self._metrics.action(action, result)
        if self._tracker is not None:
            alert = self._tracker.action(
                verdict, action, dry_run=dry_run, ok=ok, detail=detail, now=self._clock()
            )
            self._send([alert])

    def _enforced(self, verdict: ContainerVerdict) -> bool:
        enforce = self._config.enforce
        if enforce.action is None or verdict.state is ContainerState.EXEMPT:
            return False
        return verdict.state in enforce.states

    def _track_enforcement(self, entry: _Entry, now: float) -> None:
        if self._enforced(entry.verdict):
            if entry.enforced_since is None:
                entry.enforced_since = now
        else:
            entry.enforced_since = None
            entry.acted = False

    # -- judging -----------------------------------------------------------------------------

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, (_, until) in self._cache.items() if until <= now]:
            del self._cache[key]

    def _judge(self, containers: Sequence[RunningContainer], *, use_cache: bool) -> list[Judgement]:
        """A judgement of each container: exemptions first, then each distinct image once,
        on the executor, each within the lookup time limit."""
        config = self._config
        policy = self._policy
        host = self.host
        now = self._clock()
        out: list[Judgement | None] = [None] * len(containers)
        wanted: dict[ImageKey, list[int]] = {}
        for index, container in enumerate(containers):
            exemption = exemption_for(config.exemptions, container)
            if exemption is not None:
                verdict = exempt_verdict(
                    container, exemption, host=host, policy=policy.source, judged_at=now
                )
                out[index] = Judgement(verdict, frozenset())
                continue
            key = image_key(container)
            cached = self._cache.get(key) if use_cache and self._ledger_up is not False else None
            if cached is not None and cached[1] > now:
                out[index] = _for_container(cached[0], container)
            else:
                wanted.setdefault(key, []).append(index)
        if wanted:
            futures = self._lookups(
                {key: containers[indexes[0]] for key, indexes in wanted.items()}, policy, host
            )
            for key, future in futures.items():
                indexes = wanted[key]
                judgement = self._judgement_of(future, containers[indexes[0]], host, policy)
                if judgement.verdict.state is not ContainerState.ERROR:
                    until = now + config.interval * RECHECK_PASSES
                    if judgement.valid_until is not None:
                        until = min(until, judgement.valid_until)
                    self._cache[key] = (judgement, until)
                for index in indexes:
                    out[index] = _for_container(judgement, containers[index])
        judged = [j for j in out if j is not None]
        assert len(judged) == len(containers)
        return judged

    def _lookups(
        self, subjects: dict[ImageKey, RunningContainer], policy: TrustPolicy, host: str
    ) -> dict[ImageKey, Future[Judgement]]:
        """Each image judged on the executor; waits until each is done or has run for the
        lookup time limit (one that never got a worker gives up when the whole batch
        should have finished)."""
        limit = self._config.lookup_timeout
        started: dict[ImageKey, float] = {}

        def lookup(key: ImageKey, container: RunningContainer) -> Judgement:
            started[key] = time.monotonic()
            return judge_container(self._engines, policy, container, host=host, node=self._node)

        executor = self._engines.executor
        futures = {key: executor.submit(lookup, key, c) for key, c in subjects.items()}
        rounds = -(-len(futures) // max(1, self._engines.threads))
        queue_deadline = time.monotonic() + limit * (rounds + 1)
        key_of = {future: key for key, future in futures.items()}
        pending = set(futures.values())
        while pending:
            now = time.monotonic()
            deadlines = {
                f: started[key_of[f]] + limit if key_of[f] in started else queue_deadline
                for f in pending
            }
            pending = {f for f in pending if deadlines[f] > now}
            if not pending:
                break
            nearest = min(deadlines[f] for f in pending)
            # Looked at again soon: a lookup that starts meanwhile has a deadline of its own.
            timeout = min(nearest - now, _LOOKUP_CHECK)
            _, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        return futures

    def _judgement_of(
        self, future: Future[Judgement], container: RunningContainer, host: str, policy: TrustPolicy
    ) -> Judgement:
        if not future.done():
            future.cancel()
            reason = (
                f"the ledger did not answer within {self._config.lookup_timeout:g} s "
                f"for {container.image_id}"
            )
        else:
            try:
                judgement = future.result()
                return replace(
                    judgement, verdict=replace(judgement.verdict, judged_at=self._clock())
                )
            except SedisError as exc:
                reason = f"the ledger could not be read: {exc}"
            except Exception as exc:  # a bug in one lookup must not end the watch
                log.exception("judging %s", container.image_id)
                reason = f"internal error judging the image: {type(exc).__name__}: {exc}"
        verdict = error_verdict(
            container, reason, host=host, policy=policy.source, judged_at=self._clock()
        )
        return Judgement(verdict, frozenset(container.repo_digests))

    def _apply(
        self,
        container: RunningContainer,
        judgement: Judgement,
        now: float,
        *,
        cause: LedgerCause | None = None,
    ) -> ContainerVerdict | None:
        """Put a judgement in the table; the verdict if it differs from what was there."""
        verdict = judgement.verdict
        entry = self._table.get(container.id)
        previous = entry.verdict if entry is not None else None
        if cause is not None:
            verdict = replace(verdict, cause=cause)
        elif previous is not None and previous.state is verdict.state:
            verdict = replace(verdict, cause=previous.cause)  # the change it still rests on
        digests = judgement.digests | {container.image_id, *container.repo_digests}
        if entry is None:
            entry = _Entry(container, verdict, frozenset(digests))
            self._table[container.id] = entry
        else:
            entry.container, entry.verdict, entry.digests = container, verdict, frozenset(digests)
        self._track_enforcement(entry, now)
        if previous is not None and _same(previous, verdict):
            return None
        if previous is None or previous.state is not verdict.state:
            log.info(
                "%s (%s, %s): %s%s: %s",
                verdict.container,
                verdict.container_id[:12],
                verdict.image_id,
                f"{previous.state.value} -> " if previous is not None else "",
                verdict.state.value,
                verdict.reason,
            )
        return verdict

    def _forget(self, container_id: str, now: float) -> None:
        entry = self._table.pop(container_id, None)
        if entry is None:
            return
        log.info("%s (%s) is gone", entry.verdict.container, container_id[:12])
        if self._tracker is not None:
            self._send(self._tracker.gone(container_id, now))

    def _after_change(
        self, changed: Sequence[ContainerVerdict], *, whole_pass: bool = False
    ) -> None:
        now = self._clock()
        current = [e.verdict for e in self._table.values()]
        if self._metrics is not None:
            self._metrics.observe(current)
        if self._influx is not None and (changed or whole_pass):
            self._influx.write(current if whole_pass else changed, now)
        if self._reporter is not None:
            self._reporter.update(current, whole_pass=whole_pass)
        if self._tracker is not None:
            for verdict in changed:
                self._send(self._tracker.observe(verdict, now))

    def _send(self, alerts: Iterable[Alert]) -> None:
        if self._dispatcher is None:
            return
        for alert in alerts:
            self._dispatcher.submit(alert)

    # -- the ledger's state ---------------------------------------------------------------------

    def _check_ledger(self) -> None:
        try:
            block = self._engines.ledger.info().block_number
        except SedisError as exc:
            self._ledger_state(False, None, str(exc))
        else:
            self._ledger_state(True, block, "")

    def _ledger_state(self, up: bool, block: int | None, reason: str) -> bool:
        """Record whether the ledger answers; True when that changed."""
        now = self._clock()
        with self._lock:
            was = self._ledger_up
            self._ledger_up = up
            self._ledger_reason = reason
            if block is not None:
                self._ledger_block = block
            if not up:
                # What was judged before the outage is no verdict on the ledger now.
                self._cache.clear()
        if self._metrics is not None:
            self._metrics.ledger(up, block if up else None)
        if self._tracker is not None:
            self._send(self._tracker.ledger(up, now, reason))
        if was is not up:
            if up:
                log.info("the ledger is reachable (block %s)", block)
            else:
                log.error("the ledger is unreachable: %s", reason)
        return was is not up

    def _engine_unreadable(self, reason: str) -> None:
        """Every known container is ERROR while the engine cannot be listed."""
        if self._engine_up:
            log.error("the engine could not be listed: %s", reason)
        self._engine_up = False
        now = self._clock()
        changed = []
        for entry in self._table.values():
            verdict = error_verdict(
                entry.container,
                f"the engine could not be read: {reason}",
                host=self.host,
                policy=self._policy.source,
                judged_at=now,
            )
            applied = self._apply(entry.container, Judgement(verdict, entry.digests), now)
            if applied is not None:
                changed.append(applied)
        self._after_change(changed)

    # -- the threads --------------------------------------------------------------------------

    def _pass_loop(self) -> None:
        next_pass = time.monotonic()
        while not self._stopping.is_set():
            timeout = max(0.0, next_pass - time.monotonic())
            if self._pass_due.wait(timeout):
                self._pass_due.clear()
            if self._stopping.is_set():
                return
            try:
                self.full_pass()
            except Exception:
                log.exception("the pass failed")
            next_pass = time.monotonic() + self._config.interval

    def _event_loop(self) -> None:
        backoff = BACKOFF_INITIAL
        while not self._stopping.is_set():
            try:
                for event in self._runtime.events():
                    backoff = BACKOFF_INITIAL
                    if self._stopping.is_set():
                        return
                    self._on_event(event)
                if self._stopping.is_set():
                    return
                log.warning("the engine's event stream ended; reconnecting")
            except SedisError as exc:
                if self._stopping.is_set():
                    return
                log.warning("the engine's event stream broke: %s (again in %.1f s)", exc, backoff)
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("the engine's event stream failed")
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, BACKOFF_MAX)
            self._pass_due.set()  # events may have been missed meanwhile

    def _on_event(self, event: RuntimeEvent) -> None:
        try:
            if event.action == STARTED:
                verdict = self.container_started(event.container_id)
                if verdict is not None:
                    log.debug("started: %s is %s", verdict.container, verdict.state.value)
            elif event.action in ENDED:
                self.container_ended(event.container_id)
        except Exception:
            log.exception(
                "handling the engine event %s of %s", event.action, event.container_id[:12]
            )

    def _ledger_loop(self) -> None:
        backoff = BACKOFF_INITIAL
        while not self._stopping.is_set():
            try:
                if self._follower is None:
                    self._follower = LedgerFollower(self._engines.ledger)
                changes = self._follower.poll()
                block = self._follower.last_block
            except SedisError as exc:
                if self._ledger_state(False, None, str(exc)):
                    self._pass_due.set()  # every verdict is ERROR until it is back
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            except Exception:
                log.exception("following the ledger")
                if self._stopping.wait(backoff):
                    return
                continue
            backoff = BACKOFF_INITIAL
            if self._ledger_state(True, block, ""):
                with self._lock:
                    self._cache.clear()
                self._pass_due.set()  # the ERROR verdicts of the outage are judged again
            if changes:
                try:
                    self.ledger_changed(changes)
                except Exception:
                    log.exception("applying the ledger's changes")
            self._stopping.wait(self._config.poll)

    def _reload_with(self, reloader: Callable[[], Reloaded]) -> None:
        try:
            reloaded = reloader()
        except SedisError as exc:
            log.error("reload refused, still running as before: %s", exc)
            return
        self.reload(reloaded.policy, reloaded.config, node=reloaded.node)

    def _remind(self) -> None:
        if self._tracker is not None:
            self._send(self._tracker.tick(self._clock()))


def _for_container(judgement: Judgement, container: RunningContainer) -> Judgement:
    """An image's judgement, as the verdict on one of the containers that run it."""
    verdict = judgement.verdict
    if verdict.container_id == container.id:
        return judgement
    return replace(
        judgement,
        verdict=replace(
            verdict, container=container.name, container_id=container.id, image=container.image
        ),
    )


def _touches(key: ImageKey, digests: frozenset[str], touched: set[str]) -> bool:
    image_id, repo_digests = key
    return (
        image_id in touched or bool(touched.intersection(repo_digests)) or bool(digests & touched)
    )


def _latest_cause(entry: _Entry, changes: Sequence[LedgerChange]) -> LedgerCause | None:
    cause = None
    for change in changes:
        if entry.digests & change.digests:
            cause = change.cause
    return cause


def _same(a: ContainerVerdict, b: ContainerVerdict) -> bool:
    """Whether two verdicts say the same (whenever they were made)."""
    return replace(a, judged_at=0.0, block=None) == replace(b, judged_at=0.0, block=None)


def _by_name(verdict: ContainerVerdict) -> tuple[str, str]:
    return verdict.container, verdict.container_id


def verdict_document(verdict: ContainerVerdict) -> dict[str, Any]:
    """A verdict as JSON data: what ``sedis watch --once -o json`` prints for each container,
    and what the REST API serves."""
    cause = verdict.cause
    return {
        "container": verdict.container,
        "container_id": verdict.container_id,
        "image": verdict.image,
        "image_id": verdict.image_id,
        "digests": list(verdict.digests),
        "digest": verdict.digest,
        "state": verdict.state.value,
        "reason": verdict.reason,
        "decision": verdict.decision.value,
        "policy": verdict.policy,
        "publishers": [str(p) for p in verdict.publishers],
        "vouching": [str(v) for v in verdict.vouching],
        "block": verdict.block,
        "judged_at": verdict.judged_at,
        "exemption": verdict.exemption,
        "cause": None
        if cause is None
        else {
            "event": cause.event,
            "actor": str(cause.actor),
            "block": cause.block,
            "tx_hash": cause.tx_hash,
            "at": cause.at,
        },
        "host": verdict.host,
    }


def exit_code_of(verdicts: Sequence[ContainerVerdict]) -> int:
    """0 when every container is TRUSTED or EXEMPT; 5 when any is ERROR; else 1."""
    if any(v.state is ContainerState.ERROR for v in verdicts):
        return 5
    return 1 if any(v.failed for v in verdicts) else 0
