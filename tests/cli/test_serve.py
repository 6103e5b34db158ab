"""`sedis serve` as a real process: it listens where it is told (loopback unless allowed),
serves TLS, logs one line per request without credentials, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import selectors
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.alert_peers import make_certificates
from tests.server.world import free_port

PASSWORD = "serve-test-password"


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
    env["SEDIS_HOME"] = str(home)
    env["SERVE_TEST_PASSWORD"] = PASSWORD
    return env


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "home"
    path.mkdir()
    made = subprocess.run(
        [sys.executable, "-m", "sedis", "identity", "create", "server"],
        env={**environment(path), "SEDIS_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    return path


class Server:
    """``sedis serve`` in a subprocess, its stderr read line by line."""

    def __init__(self, home: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sedis", "serve", *args],
            env=environment(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._selector = selectors.DefaultSelector()
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), False)
        self._selector.register(self.proc.stderr, selectors.EVENT_READ)
        self._partial = b""

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if text in line:
                    return line
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and not self._read(0)):
                raise AssertionError(f"no {text!r} in:\n" + "\n".join(self.lines))
            self._read(min(left, 0.2))

    def ready(self, url: str, **client: object) -> None:
        """Wait until the server answers its health check."""
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(url + "/api/v1/health", timeout=2, **client)  # type: ignore[arg-type]
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self._read(0.5)
                raise AssertionError("the server did not start:\n" + "\n".join(self.lines))
            self._read(0.1)

    def _read(self, timeout: float) -> bool:
        assert self.proc.stderr is not None
        if not self._selector.select(timeout):
            return False
        chunk = self.proc.stderr.read() or b""
        self._partial += chunk
        *whole, self._partial = self._partial.split(b"\n")
        self.lines += [w.decode(errors="replace") for w in whole]
        return bool(chunk)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(20)
        while self._read(0.2):
            pass
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def run_serve(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sedis", "serve", *args],
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("sedis: ")
    return lines[0]


def test_it_serves_logs_each_request_without_credentials_and_stops_on_sigterm(
    home: Path, servers: list[Server]
) -> None:
    port = free_port()
    server = Server(
        home,
        "--listen",
        f"127.0.0.1:{port}",
        "--identity",
        "server",
        "--password-env",
        "SERVE_TEST_PASSWORD",
    )
    servers.append(server)
    url = f"http://127.0.0.1:{port}"
    server.ready(url)
    started = server.wait_for("info starting http://")
    assert "acting as 0x" in started and PASSWORD not in started
    health = httpx.get(url + "/api/v1/health", timeout=5)
    assert health.status_code == 200 and health.json()["ok"] is True
    secrets = ("tok-SECRET-1", "cookie-SECRET-2", "query-SECRET-3")
    httpx.get(
        url + "/api/v1/health?token=" + secrets[2],
        headers={
            "Authorization": f"Bearer {secrets[0]}",
            "Cookie": f"sedis_session={secrets[1]}",
            "X-Request-Id": "req-log-1",
        },
        timeout=5,
    )
    httpx.get(url + "/api/v1/no/such/%1B[2Jroute", timeout=5)
    line = server.wait_for("id=req-log-1")
    assert "GET /api/v1/health 200" in line and "ms id=req-log-1 caller=-" in line
    server.wait_for("GET /api/v1/no/such/")
    assert server.terminate() == 0
    assert server.lines[-1].endswith("info stopped")
    log = "\n".join(server.lines)
    assert not any(secret in log for secret in secrets)
    assert "\x1b" not in log and "/api/v1/no/such/\\x1b[2Jroute 404" in log
    assert all(line.startswith("sedis serve: ") for line in server.lines), server.lines


def test_tls_with_a_certificate(home: Path, servers: list[Server], tmp_path: Path) -> None:
    certificates = make_certificates()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certificates.cert_pem)
    key.write_bytes(certificates.key_pem)
    key.chmod(0o600)
    port = free_port()
    server = Server(
        home, "--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key)
    )
    servers.append(server)
    url = f"https://127.0.0.1:{port}"
    trusted = certificates.client_context()
    server.ready(url, verify=trusted)
    answer = httpx.get(url + "/api/v1/health", verify=trusted, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/api/v1/health", verify=ssl.create_default_context(), timeout=5)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
    assert server.terminate() == 0


def test_a_watchdog_runs_in_the_same_process(
    home: Path, servers: list[Server], tmp_path: Path
) -> None:
    watch = tmp_path / "watch.toml"
    watch.write_text(f'engine = "unix://{tmp_path}/no-engine.sock"\nlisten = "off"\n')
    port = free_port()
    server = Server(home, "--listen", f"127.0.0.1:{port}", "--watch", str(watch))
    servers.append(server)
    server.ready(f"http://127.0.0.1:{port}")
    server.wait_for("the engine could not be listed")
    assert server.terminate() == 0


def test_a_reachable_address_needs_allow_remote(home: Path) -> None:
    port = free_port()
    refused = run_serve(home, "--listen", f"0.0.0.0:{port}")
    assert refused.returncode == 2
    assert one_line(refused) == (
        f"sedis: 0.0.0.0:{port} can be reached from other hosts: give --allow-remote to "
        "listen there, or listen on 127.0.0.1"
    )
    config = Path(home).parent / "remote.toml"
    config.write_text(f'[server]\nlisten = "[::]:{port}"\n')
    from_file = run_serve(home, "--config", str(config))
    assert from_file.returncode == 2 and "give --allow-remote" in one_line(from_file)


def test_a_bad_configuration_is_one_line(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:8480"\n\n[roles]\nroot = []\n')
    done = run_serve(home, "--config", str(config))
    assert done.returncode == 2
    assert one_line(done).startswith(f"sedis: {config}:5: key 'roles.root': not a role")
    missing = run_serve(home, "--config", str(tmp_path / "none.toml"))
    assert missing.returncode == 3 and "no serve configuration file" in one_line(missing)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--listen", "nowhere"), 2, "--listen: invalid listen address 'nowhere'"),
        (("--tls-cert", "c.pem"), 2, "--tls-cert and --tls-key go together"),
        (("--public-url", "ftp://x"), 2, "--public-url: invalid public URL"),
        (("--password-env", "SERVE_TEST_PASSWORD"), 2, "a password was given but no --identity"),
        (("--identity", "server"), 6, "needs its password from --password-env VAR"),
        (
            ("--identity", "server", "--password-env", "UNSET_SERVE_VAR"),
            6,
            "is to come from $UNSET_SERVE_VAR, which is not set",
        ),
        (("--identity", "nobody", "--password-env", "SERVE_TEST_PASSWORD"), 3, "nobody"),
    ],
)
def test_bad_flags_are_one_line(home: Path, args: tuple[str, ...], code: int, message: str) -> None:
    done = run_serve(home, "--listen", f"127.0.0.1:{free_port()}", *args)
    assert done.returncode == code, done.stderr
    assert message in one_line(done)


def test_a_wrong_password_and_a_readable_password_file(home: Path, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("not the password\n")
    password.chmod(0o600)
    listen = ("--listen", f"127.0.0.1:{free_port()}", "--identity", "server")
    wrong = run_serve(home, *listen, "--password-file", str(password))
    assert wrong.returncode == 7, wrong.stderr
    one_line(wrong)
    password.chmod(0o644)
    readable = run_serve(home, *listen, "--password-file", str(password))
    assert readable.returncode == 6 and "is readable by everyone" in one_line(readable)


def test_an_address_in_use_is_a_clear_error(home: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(home, "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 5, done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1] == f"sedis: could not listen on 127.0.0.1:{port}"
    assert any("address already in use" in line for line in lines)
    assert all(line.startswith(("sedis serve: ", "sedis: ")) for line in lines), lines


@pytest.mark.parametrize(("trusted", "refused"), [((), True), (("127.0.0.1",), False)])
def test_forwarded_addresses_count_only_from_trusted_proxies(
    home: Path, servers: list[Server], tmp_path: Path, trusted: tuple[str, ...], refused: bool
) -> None:
    # A caller that may write X-Forwarded-For would otherwise pick a new address,
    # and so a fresh sign-in allowance, for every request.
    config = tmp_path / "serve.toml"
    proxies = ", ".join(f'"{p}"' for p in trusted)
    config.write_text(f"[server]\nsign_in_per_minute = 3\ntrusted_proxies = [{proxies}]\n")
    port = free_port()
    server = Server(home, "--config", str(config), "--listen", f"127.0.0.1:{port}")
    servers.append(server)
    url = f"http://127.0.0.1:{port}"
    server.ready(url)
    statuses = [
        httpx.get(
            url + "/api/v1/auth/nonce", headers={"X-Forwarded-For": f"203.0.113.{i}"}, timeout=5
        ).status_code
        for i in range(6)
    ]
    assert (429 in statuses) is refused, statuses
    assert statuses[:3] == [200, 200, 200]
    assert server.terminate() == 0
