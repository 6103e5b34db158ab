"""Which verdicts become alerts: transitions only, deduplicated, with reminders.

Pure logic: the watchdog tells it each verdict, each container gone, the
ledger's reachability and the time, and it answers with the alerts to send.
It keeps, per container, the state last seen and the alert left open (the
failing state last alerted), so:

- a container's first sight alerts only if it is failing; a change of state
  alerts once (TRANSITION); the same state again alerts never;
- a failing container that becomes TRUSTED or EXEMPT, or goes away, resolves
  its open alert (RESOLVED); a change between two allowed states is nothing
  to act on and alerts nothing;
- with ``reminder`` set, a container still failing that long after its last
  alert is alerted again (REMINDER);
- the ledger unreachable for ``ledger_grace`` seconds is one alert of its own
  (repeated as a reminder), and one more when it is back. While it is down,
  a container that turns ERROR (the ledger could not be read for it) is
  recorded but not alerted: that alert would only repeat the ledger's, once
  per container. Once the ledger is back its next verdict is compared with
  what was alerted before, so nothing is lost and nothing repeats.

It holds one entry per container seen until ``gone`` forgets it, and is
meant for one caller at a time (the watchdog serialises its calls).
"""

from __future__ import annotations

from dataclasses import dataclass

from sedis.core.containers import ContainerState, ContainerVerdict
from sedis.watch.alerts.base import Alert, AlertKind


@dataclass(slots=True)
class _Seen:
    verdict: ContainerVerdict
    alerted: ContainerState | None = None  # the failing state of the open alert
    last_alert: float = 0.0
    failing_since: float = 0.0


class AlertTracker:
    def __init__(self, host: str, *, reminder: float | None = None, ledger_grace: float = 30.0):
        if reminder is not None and reminder <= 0:
            raise ValueError("a reminder period is positive")
        if ledger_grace < 0:
            raise ValueError("the ledger's grace period is not negative")
        self.host = host
        self.reminder = reminder
        self.ledger_grace = ledger_grace
        self._seen: dict[str, _Seen] = {}
        self._ledger_down_since: float | None = None
        self._ledger_reason = ""
        self._ledger_alerted_at: float | None = None

    @property
    def ledger_down(self) -> bool:
        return self._ledger_down_since is not None

    def open_alerts(self) -> dict[str, ContainerState]:
        """The containers with an open alert, and the state it was raised for."""
        return {cid: s.alerted for cid, s in self._seen.items() if s.alerted is not None}

    def observe(self, verdict: ContainerVerdict, now: float) -> list[Alert]:
        seen = self._seen.get(verdict.container_id)
        previous = None if seen is None else seen.verdict.state
        if seen is None:
            seen = self._seen[verdict.container_id] = _Seen(verdict)
        seen.verdict = verdict
        if verdict.failed and (previous is None or not previous.failed):
            seen.failing_since = now
        if verdict.state is ContainerState.ERROR and self.ledger_down:
            return []
        if verdict.failed:
            if seen.alerted is verdict.state:
                return []
            # Alertmanager knows an open alert by its state: name that one as the previous.
            before = seen.alerted or previous
            seen.alerted = verdict.state
            seen.last_alert = now
            return [self._about(verdict, AlertKind.TRANSITION, now, previous=before)]
        if seen.alerted is None:
            return []
        alerted, seen.alerted = seen.alerted, None
        return [self._about(verdict, AlertKind.RESOLVED, now, previous=alerted)]

    def gone(self, container_id: str, now: float) -> list[Alert]:
        seen = self._seen.pop(container_id, None)
        if seen is None or seen.alerted is None:
            return []
        verdict = seen.verdict
        return [
            Alert(
                kind=AlertKind.RESOLVED,
                host=self.host,
                summary=f"container {_name(verdict)} on {self.host} is gone, "
                f"was {seen.alerted.value}",
                at=now,
                container=verdict.container,
                container_id=verdict.container_id,
                image=verdict.image,
                image_id=verdict.image_id,
                digest=verdict.digest,
                status=verdict.state.value,
                previous=seen.alerted.value,
                reason="the container is no longer running",
            )
        ]

    def tick(self, now: float) -> list[Alert]:
        alerts = self._ledger_due(now)
        if self.reminder is None:
            return alerts
        for seen in self._seen.values():
            verdict = seen.verdict
            if seen.alerted is None or seen.alerted is not verdict.state:
                continue  # nothing open, or open for a state it has left while the ledger is down
            if now - seen.last_alert < self.reminder:
                continue
            seen.last_alert = now
            alerts.append(self._about(verdict, AlertKind.REMINDER, now, previous=None))
        return alerts

    def ledger(self, up: bool, now: float, reason: str = "") -> list[Alert]:
        if up:
            down_since, alerted_at = self._ledger_down_since, self._ledger_alerted_at
            self._ledger_down_since = self._ledger_alerted_at = None
            self._ledger_reason = ""
            if down_since is None or alerted_at is None:
                return []
            return [
                Alert(
                    kind=AlertKind.LEDGER_REACHABLE,
                    host=self.host,
                    summary=f"ledger reachable again after {_seconds(now - down_since)} s",
                    at=now,
                    reason=reason,
                )
            ]
        if self._ledger_down_since is None:
            self._ledger_down_since = now
        if reason:
            self._ledger_reason = reason
        return self._ledger_due(now)

    def action(
        self,
        verdict: ContainerVerdict,
        action: str,
        *,
        dry_run: bool,
        ok: bool,
        detail: str,
        now: float,
    ) -> Alert:
        what = f"container {_name(verdict)} on {self.host} ({verdict.state.value})"
        if dry_run:
            headline = f"would {action} {what}"
        elif ok:
            headline = f"{_past(action)} {what}"
        else:
            headline = f"failed to {action} {what}"
        return Alert(
            kind=AlertKind.ACTION,
            host=self.host,
            summary=f"{headline}: {detail}" if detail else headline,
            at=now,
            container=verdict.container,
            container_id=verdict.container_id,
            image=verdict.image,
            image_id=verdict.image_id,
            digest=verdict.digest,
            status=verdict.state.value,
            reason=verdict.reason,
            set_by=None if verdict.cause is None else verdict.cause.actor,
            block=None if verdict.cause is None else verdict.cause.block,
            tx_hash=None if verdict.cause is None else verdict.cause.tx_hash,
            action=action,
            dry_run=dry_run,
        )

    def _ledger_due(self, now: float) -> list[Alert]:
        """LEDGER_UNREACHABLE once the grace has passed, then once per reminder period."""
        down_since = self._ledger_down_since
        if down_since is None or now - down_since < self.ledger_grace:
            return []
        alerted_at = self._ledger_alerted_at
        if alerted_at is not None and (self.reminder is None or now - alerted_at < self.reminder):
            return []
        self._ledger_alerted_at = now
        kind = AlertKind.LEDGER_UNREACHABLE
        summary = f"ledger unreachable for {_seconds(now - down_since)} s"
        if self._ledger_reason:
            summary += f": {self._ledger_reason}"
        return [
            Alert(kind=kind, host=self.host, summary=summary, at=now, reason=self._ledger_reason)
        ]

    def _about(
        self,
        verdict: ContainerVerdict,
        kind: AlertKind,
        now: float,
        *,
        previous: ContainerState | None,
    ) -> Alert:
        name, state = _name(verdict), verdict.state.value
        if kind is AlertKind.REMINDER:
            since = self._seen[verdict.container_id].failing_since
            summary = (
                f"container {name} on {self.host} is still {state} after {_seconds(now - since)} s"
            )
        elif kind is AlertKind.RESOLVED:
            was = previous.value if previous else "failing"
            summary = f"container {name} on {self.host} is {state}, was {was}"
        elif previous is None:
            summary = f"container {name} on {self.host} is {state}"
        else:
            summary = f"container {name} on {self.host} is {state}, was {previous.value}"
        cause = verdict.cause
        return Alert(
            kind=kind,
            host=self.host,
            summary=summary,
            at=now,
            container=verdict.container,
            container_id=verdict.container_id,
            image=verdict.image,
            image_id=verdict.image_id,
            digest=verdict.digest,
            status=state,
            previous=None if previous is None else previous.value,
            reason=verdict.reason,
            set_by=None if cause is None else cause.actor,
            block=None if cause is None else cause.block,
            tx_hash=None if cause is None else cause.tx_hash,
        )


def _name(verdict: ContainerVerdict) -> str:
    return verdict.container or verdict.container_id[:12]


def _seconds(span: float) -> int:
    return max(0, int(span))


def _past(action: str) -> str:
    return {"stop": "stopped", "kill": "killed"}.get(action, f"{action} done on")
