"""The watchdog's Prometheus metrics, and the small HTTP server that exposes them.

Every running container has a one-hot ``sedis_container_status`` series per
state (1 for the state it is in, 0 for the others), labelled by what it runs
(``image_digest`` is the config digest, the engine's image ID) and by its
name and the image it was started as, never by its ID: a container that is
recreated under its name keeps its series, and a container that is gone has
its series removed. ``sedis_containers`` counts the containers per state,
with every state present, so a rule or a panel never meets a missing series.

The metrics live in a registry of their own, so several watchdogs (or tests)
in one process never share a series.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from sedis.core.containers import ContainerState, ContainerVerdict
from sedis.core.errors import ConfigError

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())

ALERT_RESULTS = ("sent", "failed", "dropped")
ACTIONS = ("stop", "kill")
ACTION_RESULTS = ("done", "dry_run", "failed")

# A pass judges every container on the host: from a few milliseconds (all cached)
# to the per-lookup timeout and beyond.
_PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# What one container's status series is known by: name, image as started, image ID.
_SeriesKey = tuple[str, str, str]


class WatchMetrics:
    """The metrics of one watchdog, in ``registry`` (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._lock = threading.Lock()
        self._shown: dict[_SeriesKey, ContainerState] = {}
        self._status = Gauge(
            "sedis_container_status",
            "1 for the state each running container is in, 0 for every other state.",
            ["container", "image", "image_digest", "status"],
            registry=self.registry,
        )
        self._containers = Gauge(
            "sedis_containers",
            "The running containers in each state.",
            ["status"],
            registry=self.registry,
        )
        self._ledger_up = Gauge(
            "sedis_ledger_up",
            "1 while the ledger can be read, 0 while it cannot.",
            registry=self.registry,
        )
        self._ledger_block = Gauge(
            "sedis_ledger_block_number",
            "The newest ledger block the watchdog has read.",
            registry=self.registry,
        )
        self._last_pass = Gauge(
            "sedis_watch_last_pass_timestamp_seconds",
            "When the last full pass over the running containers finished (Unix seconds).",
            registry=self.registry,
        )
        self._pass_duration = Histogram(
            "sedis_watch_pass_duration_seconds",
            "How long each full pass over the running containers took.",
            buckets=_PASS_BUCKETS,
            registry=self.registry,
        )
        self._alerts = Counter(
            "sedis_alerts_sent",
            "Alerts by channel and outcome: sent, failed (given up after retries), dropped.",
            ["channel", "result"],
            registry=self.registry,
        )
        self._actions = Counter(
            "sedis_watch_actions",
            "Enforcement actions by action (stop, kill) and result (done, dry_run, failed).",
            ["action", "result"],
            registry=self.registry,
        )
        for state in ContainerState:
            self._containers.labels(state.value).set(0)
        for action in ACTIONS:
            for result in ACTION_RESULTS:
                self._actions.labels(action, result)

    def observe(self, verdicts: Sequence[ContainerVerdict]) -> None:
        """Show ``verdicts`` as the whole set of running containers: the series of
        containers not among them are removed."""
        current: dict[_SeriesKey, ContainerState] = {}
        for verdict in verdicts:
            key = (verdict.container, verdict.image, verdict.image_id)
            # Names are unique on an engine; should two verdicts still share a key,
            # the worse state is the one shown.
            seen = current.get(key)
            if seen is None or (verdict.state.failed and not seen.failed):
                current[key] = verdict.state
        counts = dict.fromkeys(ContainerState, 0)
        for verdict in verdicts:
            counts[verdict.state] += 1
        with self._lock:
            for key in self._shown.keys() - current.keys():
                for state in ContainerState:
                    self._status.remove(*key, state.value)
            for key, state in current.items():
                if self._shown.get(key) is state:
                    continue
                for other in ContainerState:
                    self._status.labels(*key, other.value).set(1 if other is state else 0)
            self._shown = current
            for state, count in counts.items():
                self._containers.labels(state.value).set(count)

    def ledger(self, up: bool, block: int | None) -> None:
        """Whether the ledger could be read, and at which block (kept while unknown)."""
        self._ledger_up.set(1 if up else 0)
        if block is not None:
            self._ledger_block.set(block)

    def pass_done(self, finished_at: float, duration: float) -> None:
        self._last_pass.set(finished_at)
        self._pass_duration.observe(max(0.0, duration))

    def alert_sent(self, channel: str, result: str) -> None:
        if result not in ALERT_RESULTS:
            raise ValueError(f"unknown alert result {result!r} (one of {', '.join(ALERT_RESULTS)})")
        self._alerts.labels(channel, result).inc()

    def action(self, action: str, result: str) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
        if result not in ACTION_RESULTS:
            raise ValueError(
                f"unknown action result {result!r} (one of {', '.join(ACTION_RESULTS)})"
            )
        self._actions.labels(action, result).inc()

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        with self._lock:
            return generate_latest(self.registry)


Health = Callable[[], tuple[bool, str]]


class _MetricsHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # A restarted watchdog binds its port again at once.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], metrics: WatchMetrics, health: Health) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.metrics = metrics
        self.health = health
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _MetricsHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "sedis-watch"
    sys_version = ""
    # A client that opens a connection and sends nothing holds a thread no longer.
    timeout = 30.0

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, CONTENT_TYPE_PLAIN_0_0_4, self.server.metrics.exposition(), send_body)
        elif path == "/healthz":
            try:
                ok, reason = self.server.health()
            except Exception as exc:  # a broken check is itself unhealthy
                ok, reason = False, f"the health check failed: {exc}"
            text = "ok" if ok else _one_line(reason) or "unhealthy"
            body = f"{text}\n".encode()
            self._reply(200 if ok else 503, "text/plain; charset=utf-8", body, send_body)
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found\n", send_body)

    def _reply(self, status: int, content_type: str, body: bytes, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("metrics request: " + format, *args)


def _one_line(text: str, limit: int = 500) -> str:
    return "".join(c if c.isprintable() else " " for c in text[:limit]).strip()


class MetricsServer:
    """``/metrics`` and ``/healthz`` on a thread of their own; ``close()`` stops it."""

    def __init__(self, metrics: WatchMetrics, host: str, port: int, health: Health) -> None:
        try:
            self._server = _MetricsHTTPServer((host, port), metrics, health)
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {why}") from None
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"sedis-metrics-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(metrics: WatchMetrics, host: str, port: int, health: Health) -> MetricsServer:
    """Serve ``metrics`` on ``host:port`` (port 0: a free one) until ``close()``."""
    return MetricsServer(metrics, host, port, health)
