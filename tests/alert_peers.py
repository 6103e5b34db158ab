"""Real receivers of the watchdog's alerts, started by the tests on 127.0.0.1.

- ``alertmanager``: a real Prometheus Alertmanager whose own webhook
  receiver points at a local ``WebhookReceiver``, so what Alertmanager makes
  of an alert is seen as it would notify it;
- ``smtp_server``: a real aiosmtpd SMTP server that requires STARTTLS and
  AUTH (PLAIN), with a certificate whose SAN is IP:127.0.0.1 and a CA the
  client trusts;
- ``WebhookReceiver``: a small HTTP server that records every JSON document
  POSTed to it and can fail on demand.

Each runs on a free port with its state in a temporary directory and is
stopped by PID (Alertmanager) or by its own thread's shutdown.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import httpx

from tests.peers import PeerMissing, free_port

MAX_BODY = 1 << 20


# --- a JSON webhook receiver -------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """Records each POST; answers 200, or ``fail_status`` while failures are owed."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Condition()
        self._failures = 0
        self._fail_status = 500
        self._delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY))
                status = receiver._record(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                reply = b"ok\n" if status < 300 else b"failing on purpose\n"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, times: int, status: int = 500) -> None:
        """Answer the next ``times`` requests with ``status`` (recorded all the same)."""
        with self._lock:
            self._failures, self._fail_status = times, status

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.received.append(Received(path, headers, body))
            self._lock.notify_all()
            if self._failures > 0:
                self._failures -= 1
                return self._fail_status
            return 200

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class SilentServer:
    """A TCP server that accepts every connection and never answers: a receiver that hangs."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def connections(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._listener.close()


# --- Alertmanager ----------------------------------------------------------------------


def require_alertmanager() -> str:
    exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if exe is None:
        raise PeerMissing(
            "prometheus-alertmanager is missing: apt-get install prometheus-alertmanager"
        )
    return exe


@contextmanager
def alertmanager(state: Path, webhook_url: str) -> Iterator[str]:
    """A real Alertmanager notifying ``webhook_url`` of every alert, each in a group of its
    own, firing and resolved, about a second after it changes; yields its URL."""
    exe = require_alertmanager()
    state.mkdir(parents=True, exist_ok=True)
    config = state / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: hook\n"
        "  group_by: ['...']\n"
        "  group_wait: 1s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: hook\n"
        "    webhook_configs:\n"
        f"      - url: {webhook_url}/alertmanager\n"
        "        send_resolved: true\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(state / "alertmanager.log", "wb")  # noqa: SIM115 - closed on stop
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={config}",
            f"--storage.path={state / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                text = (state / "alertmanager.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Alertmanager exited: {text}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Alertmanager did not become ready in 30 s")
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# --- SMTP with STARTTLS and AUTH ------------------------------------------------------


@dataclass
class Certificates:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only, verifying host (IP) and chain."""
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        return context

    def server_context(self, directory: Path) -> ssl.SSLContext:
        cert, key = directory / "smtp.crt", directory / "smtp.key"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        key.chmod(0o600)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context


def make_certificates(ip: str = "127.0.0.1") -> Certificates:
    """A test CA and a server certificate it signed, whose SAN is IP:``ip``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sedis test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address(ip))]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Certificates(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None
    over_tls: bool

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpServer:
    host: str
    port: int
    username: str
    password: str
    certificates: Certificates
    received: list[ReceivedMail] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, accepted)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True


@contextmanager
def smtp_server(directory: Path, username: str, password: str) -> Iterator[SmtpServer]:
    """A real aiosmtpd server on 127.0.0.1 that refuses mail before STARTTLS and AUTH."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError as exc:
        raise PeerMissing(f"aiosmtpd is missing ({exc}): install the dev dependencies") from exc

    certificates = make_certificates()
    server = SmtpServer("127.0.0.1", free_port(), username, password, certificates)

    def authenticator(
        smtp: object, session: Any, envelope: object, mechanism: str, auth_data: object
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        ok = user == username and auth_data.password == password.encode()
        with server._changed:
            server.logins.append((user, ok))
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    class Handler:
        async def handle_DATA(self, smtp: object, session: Any, envelope: Any) -> str:
            mail = ReceivedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                data=bytes(envelope.original_content or envelope.content),
                login=session.auth_data if session.authenticated else None,
                over_tls=session.ssl is not None,
            )
            with server._changed:
                server.received.append(mail)
                server._changed.notify_all()
            return "250 Message accepted for delivery"

    controller = Controller(
        Handler(),
        hostname=server.host,
        port=server.port,
        tls_context=certificates.server_context(directory),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_exclude_mechanism=["LOGIN"],
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
