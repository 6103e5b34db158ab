"""ServerReporter against a small HTTP server of the test's own that answers as scripted:
accepted, refused (401, 403, 400), failing (5xx), away (connection refused), over TLS.
The real ``sedis serve`` is in tests/integration/watch/test_report_to_server.py."""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from sedis.core.containers import ContainerState
from sedis.core.errors import ConfigError, InvalidInputError
from sedis.watch.config import parse_watch_config
from sedis.watch.report import ServerReporter
from sedis.watch.watchdog import Watchdog, verdict_document
from tests.alert_peers import make_certificates
from tests.peers import free_port
from tests.unit.watch.verdicts import verdict

TOKEN = "tok-SECRET-0123456789"


@dataclass
class Request:
    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int


class Server:
    """Answers each report as scripted (status, body, headers); then ``default``."""

    def __init__(self, port: int = 0, context: ssl.SSLContext | None = None) -> None:
        self.script: deque[tuple[int, bytes, dict[str, str]]] = deque()
        self.default: tuple[int, bytes, dict[str, str]] = (200, b'{"containers": 0}', {})
        self.requests: list[Request] = []
        self.accept: str | None = None  # when set, any other bearer token gets a 401
        self.cond = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with server.cond:
                    status, reply, headers = (
                        server.script.popleft() if server.script else server.default
                    )
                    if server.accept is not None and (
                        self.headers.get("Authorization") != f"Bearer {server.accept}"
                    ):
                        status, reply, headers = refusal(401, "the token is unknown")
                    server.requests.append(
                        Request(time.monotonic(), self.path, dict(self.headers), json.loads(raw),
                                status)
                    )  # fmt: skip
                    server.cond.notify_all()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.http.daemon_threads = True
        if context is not None:
            self.http.socket = context.wrap_socket(self.http.socket, server_side=True)
        self.port = self.http.server_address[1]
        scheme = "https" if context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count: int, timeout: float = 10.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.requests)} requests, not {count}")
                self.cond.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def refusal(status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
    body = json.dumps({"errors": [{"code": "X", "message": message}]}).encode()
    return status, body, {}


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.01)


def log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("sedis.watch")]


TABLE = [verdict("web", ContainerState.TRUSTED), verdict("db", ContainerState.REVOKED)]


# -- what is sent


def test_a_pass_is_posted_as_the_hosts_whole_table_with_the_token(server: Server) -> None:
    with ServerReporter(server.url + "/", TOKEN, "node-1") as reporter:
        reporter.update(TABLE, whole_pass=True)
        assert reporter.flush(10)
        assert (reporter.sent, reporter.dropped, reporter.pending) == (1, 0, 0)
        assert TOKEN not in repr(reporter)
    (request,) = server.requests
    assert request.path == "/api/v1/watch/report"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {"host": "node-1", "containers": [verdict_document(v) for v in TABLE]}


def test_an_empty_host_is_reported_too(server: Server) -> None:
    with ServerReporter(server.url, TOKEN, "node-1") as reporter:
        reporter.update([], whole_pass=True)
        assert reporter.flush(10)
    assert server.requests[0].body == {"host": "node-1", "containers": []}


def test_every_pass_is_sent_but_a_change_only_when_a_verdict_says_something_else(
    server: Server,
) -> None:
    with ServerReporter(server.url, TOKEN, "node-1", min_interval=0.0) as reporter:
        reporter.update(TABLE, whole_pass=True)
        reporter.flush(10)
        reporter.update(TABLE, whole_pass=True)
        reporter.flush(10)
        assert reporter.sent == 2
        # Judged again, at another time and block: nothing new to say.
        rejudged = [verdict("web", ContainerState.TRUSTED, block=99), TABLE[1]]
        reporter.update(rejudged)
        reporter.flush(10)
        assert reporter.sent == 2
        reporter.update([verdict("web", ContainerState.REVOKED), TABLE[1]])
        reporter.flush(10)
        assert reporter.sent == 3
    assert server.requests[-1].body["containers"][0]["state"] == "REVOKED"


def test_changes_are_coalesced_to_one_report_a_second(server: Server) -> None:
    with ServerReporter(server.url, TOKEN, "node-1") as reporter:
        reporter.update(TABLE, whole_pass=True)
        server.wait(1)
        states = [ContainerState.UNTRUSTED, ContainerState.UNKNOWN, ContainerState.REVOKED]
        for state in states:
            reporter.update([verdict("web", state), TABLE[1]])
        # The next report waits for a second after the first, and says the latest.
        time.sleep(0.5)
        assert len(server.requests) == 1
        requests = server.wait(2, timeout=5)
        assert requests[1].at - requests[0].at >= 0.95
        assert requests[1].body["containers"][0]["state"] == "REVOKED"
        time.sleep(1.2)
        assert len(server.requests) == 2
        assert reporter.dropped == 2  # the two tables the third replaced
        # A pass does not wait.
        started = time.monotonic()
        reporter.update(TABLE, whole_pass=True)
        assert server.wait(3, timeout=5)[2].at - started < 0.5


# -- refusals


def test_a_dead_token_is_logged_once_per_reason_and_not_retried_hot(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sedis.watch")
    server.default = refusal(401, "the token is unknown or has expired")
    with ServerReporter(server.url, TOKEN, "node-1", min_interval=0.0, backoff_max=0.3) as reporter:
        reporter.update(TABLE, whole_pass=True)
        server.wait(1)
        time.sleep(0.6)
        # Refused is refused: the same report is not sent again.
        assert len(server.requests) == 1
        assert reporter.refused == 1 and reporter.last_error is not None
        for _ in range(3):
            reporter.update(TABLE, whole_pass=True)
            time.sleep(0.05)
        requests = server.wait(3, timeout=5)
        # Each one after a refusal waits for the backoff.
        assert requests[2].at - requests[1].at >= 0.25
        server.default = refusal(403, "0xabc is viewer here; watch-report needs operator")
        reporter.update(TABLE, whole_pass=True)
        wait_until(lambda: reporter.last_error is not None and "403" in reporter.last_error)
        server.default = (200, b"{}", {})
        reporter.update(TABLE, whole_pass=True)
        wait_until(lambda: reporter.sent == 1)
    lines = log_lines(caplog)
    refused = [line for line in lines if "refused the report" in line]
    assert refused == [
        f"{server.url} refused the report of 2 containers: HTTP 401: "
        "the token is unknown or has expired",
        f"{server.url} refused the report of 2 containers: HTTP 403: "
        "0xabc is viewer here; watch-report needs operator",
    ]
    assert f"reporting to {server.url} again" in lines
    assert not any(TOKEN in line for line in lines)


def test_a_refused_report_is_dropped_and_the_next_one_goes(server: Server) -> None:
    server.script.append(refusal(400, "container 'web' is on host 'x'"))
    with ServerReporter(server.url, TOKEN, "node-1", min_interval=0.0, backoff_max=0.1) as r:
        r.update(TABLE, whole_pass=True)
        wait_until(lambda: r.refused == 1)
        r.update(TABLE[:1], whole_pass=True)
        assert r.flush(10)
        assert (r.sent, r.refused, r.dropped) == (1, 1, 1)
    assert [len(q.body["containers"]) for q in server.requests] == [2, 1]


def test_what_the_server_says_is_escaped_and_cut_short_in_the_log(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.append(refusal(403, "\x1b[2Jno\nX-Evil: 1 " + "x" * 2000))
    with ServerReporter(server.url, TOKEN, "node-1") as reporter:
        reporter.update(TABLE, whole_pass=True)
        wait_until(lambda: reporter.refused == 1)
    (line,) = [line for line in log_lines(caplog) if "refused" in line]
    assert "\x1b" not in line and "\n" not in line
    assert "HTTP 403: [2Jno X-Evil: 1 xxx" in line
    assert len(line) < 450


# -- failures


def test_5xx_is_retried_with_backoff_until_accepted(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.extend([(500, b"{}", {}), (503, b"{}", {"Retry-After": "0"}), (502, b"", {})])
    with ServerReporter(server.url, TOKEN, "node-1", min_interval=0.0, backoff_max=0.2) as reporter:
        reporter.update(TABLE, whole_pass=True)
        requests = server.wait(4)
        assert reporter.flush(10)
        assert (reporter.sent, reporter.dropped, reporter.last_error) == (1, 0, None)
    assert [q.status for q in requests] == [500, 503, 502, 200]
    assert all(q.body == requests[0].body for q in requests)
    # 0.5 s doubling, capped at 0.2 s; a Retry-After of 0 does not make it retry hot.
    assert all(b.at - a.at >= 0.15 for a, b in pairwise(requests))
    retries = [line for line in log_lines(caplog) if "again in" in line]
    assert len(retries) == 3 and retries[0].endswith(": HTTP 500; again in 0.2 s")
    assert not any(TOKEN in line for line in log_lines(caplog))


def test_a_server_away_keeps_only_the_newest_report_and_gets_it_when_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ServerReporter(url, TOKEN, "node-1", backoff_max=0.2) as reporter:
        for i in range(50):
            reporter.update([verdict(f"c{i}", ContainerState.TRUSTED)], whole_pass=True)
            assert reporter.pending <= 2  # the one queued, and the one being tried
        wait_until(lambda: reporter.last_error is not None)
        assert reporter.last_error.startswith("unreachable: ")
        started = time.monotonic()
        assert reporter.flush(0.3) is False
        assert time.monotonic() - started < 1.0
        assert reporter.dropped >= 48
        back = Server(port)
        try:
            back.wait(1)
            assert reporter.flush(10)
            assert reporter.sent == 1
            assert back.requests[0].body["containers"][0]["container"] == "c49"
        finally:
            back.close()
    failures = [line for line in log_lines(caplog) if "unreachable" in line]
    assert failures and all(
        line.startswith(f"reporting to {url}: unreachable: ") for line in failures
    )
    assert not any(TOKEN in line for line in log_lines(caplog))


def test_update_never_waits_on_a_slow_server() -> None:
    port = free_port()
    import socket

    # A server that accepts the connection and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", port))
        silent.listen(16)
        with ServerReporter(f"http://127.0.0.1:{port}", TOKEN, "h", timeout=5.0) as reporter:
            reporter.update(TABLE, whole_pass=True)
            time.sleep(0.2)
            started = time.monotonic()
            for _ in range(100):
                reporter.update(TABLE, whole_pass=True)
            assert time.monotonic() - started < 0.5
            reporter.close(timeout=0.2)


# -- TLS


def test_tls_with_a_ca_file(tmp_path: Path) -> None:
    certificates = make_certificates()
    https = Server(context=certificates.server_context(tmp_path))
    ca = tmp_path / "ca.pem"
    ca.write_bytes(certificates.ca_pem)
    try:
        with ServerReporter(https.url, TOKEN, "node-1", ca_file=ca) as trusting:
            trusting.update(TABLE, whole_pass=True)
            assert trusting.flush(10) and trusting.sent == 1
        # Without the CA the certificate is not trusted: nothing is sent, the token stays home.
        with ServerReporter(https.url, TOKEN, "node-1", backoff_max=0.1) as default:
            default.update(TABLE, whole_pass=True)
            wait_until(lambda: default.last_error is not None)
            assert "CERTIFICATE_VERIFY_FAILED" in (default.last_error or "")
            default.close(timeout=0.1)
        assert len(https.requests) == 1
    finally:
        https.close()


# -- refusing a bad configuration


@pytest.mark.parametrize(
    ("url", "token", "message"),
    [
        ("ftp://h", TOKEN, "invalid server URL 'ftp://h'"),
        ("http://user:pw@h:1", TOKEN, "no user, query or fragment"),
        ("http://h:1/?token=x", TOKEN, "no user, query or fragment"),
        ("http://h:port", TOKEN, "invalid server URL"),
        ("http://h:1", "two words", "the server token must be one word"),
        ("http://h:1", "", "the server token must be one word"),
    ],
)
def test_a_bad_target_is_one_line(url: str, token: str, message: str) -> None:
    with pytest.raises((ConfigError, InvalidInputError), match=re.escape(message)) as caught:
        ServerReporter(url, token, "h")
    assert "\n" not in str(caught.value) and TOKEN not in str(caught.value)


def test_an_unreadable_ca_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=f"the CA file {re.escape(str(bad))} is not"):
        ServerReporter("https://127.0.0.1:1", TOKEN, "h", ca_file=bad)


def test_the_report_table_of_the_configuration(tmp_path: Path) -> None:
    text = (
        '[report]\nurl = "https://sedis.example:8480/"\ntoken_file = "token"\n'
        'ca_file = "/etc/ca.pem"\n'
    )
    config = parse_watch_config(text, "w.toml", {}, base=tmp_path)
    assert config.report is not None
    assert config.report.url == "https://sedis.example:8480"
    assert config.report.token_file == tmp_path / "token"
    assert config.report.ca_file == Path("/etc/ca.pem")
    assert parse_watch_config("", "w.toml", {}).report is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[report]\n", "w.toml:1: key 'url': is required"),
        ('[report]\nurl = "ftp://x"\n', "w.toml:2: key 'url': invalid server URL 'ftp://x'"),
        ('[report]\nurl = "http://u:p@x:1"\n', "w.toml:2: key 'url': invalid server URL"),
        ('[report]\nurl = "http://x:1"\ntoken = "t"\n', "w.toml:3: key 'token': a token is never"),
        (
            '[report]\nurl = "http://x:1"\ntoken_env = "A"\ntoken_file = "f"\n',
            "w.toml:4: key 'token_file': give token_env or token_file, not both",
        ),
        (
            '[report]\nurl = "http://x:1"\nca_file = "ca.pem"\n',
            "w.toml:3: key 'ca_file': a CA file goes with an https:// URL",
        ),
        ('[report]\nurl = "http://x:1"\nbuffer = 3\n', "w.toml:3: key 'buffer': not a key here"),
        ('report = "http://x:1"\n', "w.toml:1: key 'report': must be a table"),
    ],
)
def test_report_configuration_errors_name_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_watch_config(text, "w.toml", {})
    assert str(caught.value).startswith(message), str(caught.value)


# -- the watchdog's side


def test_the_watchdog_reports_each_pass_and_each_change(server: Server, tmp_path: Path) -> None:
    from sedis.watch.config import WatchConfig
    from tests.unit.service.fakes import FakeLedger, FakeStore, make_engines
    from tests.unit.service.images import trusting
    from tests.unit.watch.fakes import FakeRuntime, container

    runtime = FakeRuntime()
    with make_engines(tmp_path, FakeLedger(), FakeStore()) as engines:
        from tests.unit.service.fakes import FakeDirectory, make_actor

        alice = make_actor(engines, "alice", FakeDirectory())
        reporter = ServerReporter(server.url, TOKEN, "node-1", min_interval=0.0)
        watchdog = Watchdog(
            engines,
            runtime,
            trusting(alice),
            WatchConfig(host="node-1"),
            host="node-1",
            reporter=reporter,
        )
        runtime.run(container("web", "sha256:" + "1" * 64), announce=False)
        watchdog.full_pass()
        assert watchdog.flush(10)
        first = server.requests[-1].body
        assert first["host"] == "node-1"
        assert [(c["container"], c["state"]) for c in first["containers"]] == [("web", "UNKNOWN")]
        watchdog.container_ended(runtime.running()[0].id)
        assert watchdog.flush(10)
        assert server.requests[-1].body == {"host": "node-1", "containers": []}
        reporter.close()


def test_a_token_over_plain_http_to_another_host_is_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for url in ("http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "https://h:1"):
        ServerReporter(url, TOKEN, "h").close(timeout=0)
    assert not [line for line in log_lines(caplog) if "plain HTTP" in line]
    ServerReporter("http://sedis.example:8480", TOKEN, "h").close(timeout=0)
    (line,) = [line for line in log_lines(caplog) if "plain HTTP" in line]
    assert line.startswith("reporting to http://sedis.example:8480 over plain HTTP")


def test_a_flush_gives_up_when_the_next_try_would_come_too_late() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with ServerReporter(url, TOKEN, "h", backoff_max=30.0) as reporter:
        reporter.update(TABLE, whole_pass=True)
        wait_until(lambda: reporter.last_error is not None)
        started = time.monotonic()
        # Tried at once, refused again; the next try (in seconds) is past the timeout.
        assert reporter.flush(0.5) is False
        assert time.monotonic() - started < 0.45
        reporter.close(timeout=0.2)


def test_a_dead_token_is_read_again_from_its_source_and_a_new_one_used(
    server: Server, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    source = tmp_path / "token"
    source.write_text(TOKEN)
    server.accept = TOKEN
    renewed = "tok-SECRET-renewed"
    with ServerReporter(
        server.url, TOKEN, "h", min_interval=0.0, backoff_max=0.1, renew=source.read_text
    ) as reporter:
        reporter.update(TABLE, whole_pass=True)
        assert reporter.flush(10) and reporter.sent == 1
        server.accept = renewed  # the old token has expired
        reporter.update(TABLE, whole_pass=True)
        wait_until(lambda: reporter.refused == 1)  # read again: nothing new, so refused
        source.write_text(renewed)  # `sedis login` once more
        reporter.update(TABLE, whole_pass=True)
        wait_until(lambda: reporter.sent == 2)
        assert reporter.refused == 1
    auth = [q.headers["Authorization"] for q in server.requests]
    assert auth == [f"Bearer {TOKEN}"] * 3 + [f"Bearer {renewed}"]
    lines = log_lines(caplog)
    assert any("HTTP 401: the token is unknown; a new token is read; again in" in x for x in lines)
    assert not any(TOKEN in line or renewed in line for line in lines)
