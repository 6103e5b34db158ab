"""Real metric peers for the watchdog's tests: InfluxDB 1.x, Prometheus, Alertmanager.

Each runs on 127.0.0.1 on free ports, with its state in a directory the test
gives, and is stopped by PID. Configurations are written as JSON, which
Prometheus and Alertmanager read as YAML. A small webhook receiver records
what Alertmanager sends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.peers import PeerMissing, free_port


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PeerMissing(f"{name} is missing: run `make peers` (make test does it)")
    return path


class Daemon:
    """One peer process in a session of its own, with its output in a log file."""

    def __init__(self, argv: Sequence[str], log: Path, ready_url: str, ready_status: int) -> None:
        self.argv = list(argv)
        self.log = log
        self.ready_url = ready_url
        self.ready_status = ready_status
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.ready_url, timeout=1).status_code == self.ready_status:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.argv[0]} was not ready in {timeout:.0f} s")
            time.sleep(0.05)

    def kill(self) -> None:
        """Kill it at once (SIGKILL), as a crash would."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class InfluxPeer:
    """An InfluxDB 1.x server whose data survives a kill and a restart on the same port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = root / "influxdb.conf"
        config.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{root / "meta"}"\n'
            f'[data]\n  dir = "{root / "data"}"\n  wal-dir = "{root / "wal"}"\n'
            "  query-log-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "[monitor]\n  store-enabled = false\n"
        )
        self.daemon = Daemon(
            [require_binary("influxd"), "-config", str(config)],
            root / "influxd.log",
            f"{self.url}/ping",
            204,
        )

    def start(self) -> None:
        self.daemon.start()

    def kill(self) -> None:
        self.daemon.kill()

    def stop(self) -> None:
        self.daemon.stop()

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"', method="POST")

    def query(self, q: str, *, db: str | None = None, method: str = "GET") -> dict[str, Any]:
        """One InfluxQL statement's result (``results[0]``); raises on an error."""
        params = {"q": q, **({"db": db} if db else {})}
        if method == "POST":
            reply = httpx.post(f"{self.url}/query", data=params, timeout=10)
        else:
            reply = httpx.get(f"{self.url}/query", params=params, timeout=10)
        reply.raise_for_status()
        result: dict[str, Any] = reply.json()["results"][0]
        if "error" in result:
            raise RuntimeError(f"InfluxQL {q!r}: {result['error']}")
        return result


@contextmanager
def influxd(root: Path) -> Iterator[InfluxPeer]:
    peer = InfluxPeer(root)
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


class PrometheusPeer:
    def __init__(self, url: str, daemon: Daemon) -> None:
        self.url = url
        self.daemon = daemon

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result of an instant PromQL query, through the HTTP API."""
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        reply = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = reply.json()
        if reply.status_code != 200 or body.get("status") != "success":
            raise RuntimeError(f"PromQL {expr!r}: {body.get('error', reply.text)}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(
        self,
        expr: str,
        check: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Query ``expr`` until ``check`` accepts its result; the last result otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if check(result) or time.monotonic() > deadline:
                return result
            time.sleep(0.2)

    def targets(self) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.url}/api/v1/targets", timeout=10)
        active: list[dict[str, Any]] = reply.json()["data"]["activeTargets"]
        return active


@contextmanager
def prometheus(
    root: Path,
    *,
    targets: Sequence[str],
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
    interval: str = "1s",
) -> Iterator[PrometheusPeer]:
    """A Prometheus scraping ``targets`` (host:port) every ``interval``, evaluating the
    rules in ``rule_files`` as often, and alerting ``alertmanager`` (a URL) if given."""
    root.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": "sedis-watch",
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    if alertmanager is not None:
        am_host = alertmanager.removeprefix("http://").rstrip("/")
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [am_host]}]}]}
    config_file = root / "prometheus.yml"
    config_file.write_text(json.dumps(config, indent=2))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    daemon = Daemon(
        [
            require_binary("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--rules.alert.resend-delay=1s",
        ],
        root / "prometheus.log",
        f"{url}/-/ready",
        200,
    )
    daemon.start()
    try:
        yield PrometheusPeer(url, daemon)
    finally:
        daemon.stop()


@contextmanager
def alertmanager(root: Path, webhook_url: str) -> Iterator[str]:
    """An Alertmanager that sends every alert, quickly, to ``webhook_url``; yields its URL."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname", "container"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {"name": "webhook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
        ],
    }
    config_file = root / "alertmanager.yml"
    config_file.write_text(json.dumps(config, indent=2))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    daemon = Daemon(
        [
            require_binary("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        root / "alertmanager.log",
        f"{url}/-/ready",
        200,
    )
    daemon.start()
    try:
        yield url
    finally:
        daemon.stop()


class WebhookReceiver:
    """Records the JSON bodies POSTed to it, answering 200."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(json.loads(body))
                    receiver._lock.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, check: Callable[[list[Any]], bool], timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: check(self.received), timeout)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()
