"""A small HTTP server on 127.0.0.1 that plays a hostile registry, token service or node.

Each test hands it a function that answers one request. The server reads every
request body in full first (plain or chunked), as a real peer would, so that
what the client sees is the answer and not a broken upload. It can stream an
endless body, bounded only by ``cap`` so that a client that never stops
reading still ends the test, and it counts what it managed to send before the
client hung up.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ENDLESS_CAP = 256 * 1024 * 1024
_PIECE = b"x" * 65536


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Hostile:
    url: str
    host: str  # HOST:PORT, as a docker:// reference names it
    seen: list[Seen] = field(default_factory=list)
    # Bytes of endless bodies written before the client hung up (or the cap was hit).
    endless_sent: list[int] = field(default_factory=list)


Answer = Callable[["Handler", Hostile], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answer: Answer
    hostile: Hostile

    def _drain(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        else:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        self._drain()
        self.hostile.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
        self.answer(self, self.hostile)

    do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = _handle

    def send_body(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_endless(
        self, status: int, headers: dict[str, str] | None = None, cap: int = ENDLESS_CAP
    ) -> None:
        """A chunked body that goes on until the client hangs up (or ``cap`` is sent)."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        frame = f"{len(_PIECE):x}\r\n".encode() + _PIECE + b"\r\n"
        try:
            while sent < cap:
                self.wfile.write(frame)
                sent += len(_PIECE)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        finally:
            self.hostile.endless_sent.append(sent)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        return


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A certificate for IP:127.0.0.1 and its key; the certificate is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "hostile-cert.pem", workdir / "hostile-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client that hangs up mid-request is what these tests make happen


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port until the block ends; yields HOST:PORT."""
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def hostile_server(answer: Answer, tls: tuple[Path, Path] | None = None) -> Iterator[Hostile]:
    server = _Server(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    hostile = Hostile(f"{scheme}://127.0.0.1:{port}", f"127.0.0.1:{port}")
    handler = type("BoundHandler", (Handler,), {"answer": staticmethod(answer), "hostile": hostile})
    server.RequestHandlerClass = handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hostile
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
