"""Alerts to Prometheus Alertmanager, through its API v2 (``POST /api/v2/alerts``).

Alertmanager knows an alert by its label set, so a container's alert carries
the state it is in as a label, and the alert that resolves it carries the
same labels with an end time of now. A container that moves from one failing
state to another resolves the old label set in the same request as it raises
the new one. A firing alert is sent without an end time, and sent again
every ``refresh`` seconds while it fires, as Alertmanager's clients do:
Alertmanager ends an alert that nobody repeats after its ``resolve_timeout``,
so an alert lasts as long as its state, and never outlives a watchdog that
stopped speaking for it.
"""

from __future__ import annotations

import logging
import threading

from sedis.core.containers import ContainerState
from sedis.core.errors import SedisError
from sedis.watch.alerts.base import Alert, AlertKind
from sedis.watch.alerts.posting import http_client, origin, post_json
from sedis.watch.alerts.text import MAX_SUMMARY, http_url, one_line, rfc3339

LEDGER_ALERT = "SedisLedgerUnreachable"
ACTION_ALERT = "SedisWatchAction"

_CRITICAL = frozenset(
    {ContainerState.REVOKED, ContainerState.UNTRUSTED, ContainerState.NOT_GRANTED}
)


def alert_name(state: str) -> str:
    """The alertname for a container in ``state``: SedisContainerUntrusted, …NotGranted, …"""
    return "SedisContainer" + "".join(word.capitalize() for word in state.split("_"))


def severity(state: str) -> str:
    try:
        return "critical" if ContainerState(state) in _CRITICAL else "warning"
    except ValueError:
        return "warning"


_log = logging.getLogger(__name__)
# Well inside Alertmanager's default resolve_timeout (5 minutes).
DEFAULT_REFRESH = 60.0


class AlertmanagerChannel:
    def __init__(
        self, url: str, *, timeout: float = 5.0, refresh: float | None = DEFAULT_REFRESH
    ) -> None:
        self._url = http_url(url, "Alertmanager") + "/api/v2/alerts"
        self._label = f"the Alertmanager at {origin(self._url)}"
        self._client = http_client(timeout)
        self._firing: dict[frozenset[tuple[str, str]], dict[str, object]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._refresher: threading.Thread | None = None
        if refresh is not None:
            self._refresher = threading.Thread(
                target=self._refresh_every,
                args=(refresh,),
                name="alertmanager-refresh",
                daemon=True,
            )
            self._refresher.start()

    @property
    def name(self) -> str:
        return "alertmanager"

    def send(self, alert: Alert) -> None:
        posted = alertmanager_alerts(alert)
        post_json(self._client, self._url, posted, self._label)
        with self._lock:
            for item in posted:
                labels = item["labels"]
                assert isinstance(labels, dict)
                key = frozenset(labels.items())
                if "endsAt" in item or alert.kind is AlertKind.ACTION:
                    self._firing.pop(key, None)  # an action is said once, not held open
                else:
                    self._firing[key] = item

    @property
    def firing(self) -> int:
        """How many alerts this channel holds open (and repeats)."""
        with self._lock:
            return len(self._firing)

    def _refresh_every(self, period: float) -> None:
        while not self._closed.wait(period):
            with self._lock:
                held = list(self._firing.values())
            if not held:
                continue
            try:
                post_json(self._client, self._url, held, self._label)
            except SedisError as exc:  # the next round tries again
                _log.warning("could not repeat %d open alerts: %s", len(held), exc)

    def close(self) -> None:
        self._closed.set()
        if self._refresher is not None:
            self._refresher.join(5)
        self._client.close()


def alertmanager_alerts(alert: Alert) -> list[dict[str, object]]:
    """The API v2 alerts that say ``alert``: one, or two when an old label set ends."""
    at = rfc3339(alert.at)
    annotations = _annotations(alert)
    if alert.kind in (AlertKind.LEDGER_UNREACHABLE, AlertKind.LEDGER_REACHABLE):
        labels = {"alertname": LEDGER_ALERT, "host": one_line(alert.host), "severity": "critical"}
        return [_posted(labels, annotations, at, ended=not alert.firing)]
    if alert.kind is AlertKind.ACTION:
        labels = {
            **_container_labels(alert, alert.status),
            "alertname": ACTION_ALERT,
            "action": one_line(alert.action or ""),
            "dry_run": "true" if alert.dry_run else "false",
            "severity": "warning" if alert.dry_run else "critical",
        }
        return [_posted(labels, annotations, at, ended=False)]
    if alert.kind is AlertKind.RESOLVED:
        # It ends the alert raised for the failing state, whose labels name that state.
        return [
            _posted(_state_labels(alert, alert.previous or alert.status), annotations, at, True)
        ]
    posted = [_posted(_state_labels(alert, alert.status), annotations, at, ended=False)]
    if (
        alert.kind is AlertKind.TRANSITION
        and alert.previous is not None
        and alert.previous != alert.status
        and _failing(alert.previous)
    ):
        posted.append(_posted(_state_labels(alert, alert.previous), annotations, at, ended=True))
    return posted


def _failing(state: str) -> bool:
    try:
        return ContainerState(state).failed
    except ValueError:
        return False


def _container_labels(alert: Alert, state: str) -> dict[str, str]:
    labels = {
        "host": one_line(alert.host),
        "container": one_line(alert.container),
        "image": one_line(alert.image),
        "image_digest": one_line(alert.image_id),
        "status": one_line(state),
    }
    # An empty label is no label to Alertmanager; leaving it out says the same plainly.
    return {key: value for key, value in labels.items() if value}


def _state_labels(alert: Alert, state: str) -> dict[str, str]:
    return {
        "alertname": alert_name(one_line(state, 40)),
        **_container_labels(alert, state),
        "severity": severity(state),
    }


def _annotations(alert: Alert) -> dict[str, str]:
    annotations = {
        "summary": one_line(alert.summary, MAX_SUMMARY),
        "reason": one_line(alert.reason),
    }
    if alert.set_by is not None:
        annotations["set_by"] = alert.set_by.checksummed
    if alert.block is not None:
        annotations["block"] = str(alert.block)
    if alert.tx_hash:
        annotations["tx"] = one_line(alert.tx_hash)
    if alert.digest:
        annotations["digest"] = one_line(alert.digest)
    return {key: value for key, value in annotations.items() if value}


def _posted(
    labels: dict[str, str], annotations: dict[str, str], at: str, ended: bool
) -> dict[str, object]:
    posted: dict[str, object] = {"labels": labels, "annotations": annotations, "startsAt": at}
    if ended:
        posted["endsAt"] = at
    return posted
