"""An auth service for the docker-registry peer's bearer-token mode.

The registry only verifies tokens; issuing them is the job of a separate
service (Docker Hub's auth.docker.io, Harbor's core). This one does what they
do for the distribution token spec: it checks Basic credentials, grants the
actions each user may have on the scope asked for, and signs an ES256 JWT
whose x5c header carries a self-signed certificate that the registry's
``rootcertbundle`` trusts. So the registry under test checks real tokens.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE = "sedis-test-registry"
ISSUER = "sedis-test-auth"


@dataclass
class TokenService:
    realm: str
    cert: Path
    # user -> (password, actions granted on any repository)
    users: dict[str, tuple[str, tuple[str, ...]]]
    # What each token request asked for, and who asked: (user or "", scopes).
    asked: list[tuple[str, list[str]]] = field(default_factory=list)
    stop: Callable[[], None] = lambda: None

    def registry_auth(self) -> str:
        """The registry config's ``auth:`` section that trusts this service."""
        return (
            "auth:\n  token:\n"
            f"    realm: {self.realm}\n    service: {SERVICE}\n"
            f"    issuer: {ISSUER}\n    rootcertbundle: {self.cert}\n"
        )


def _signing_pair(workdir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (workdir / "token-signer.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, claims: dict[str, object]) -> str:
    from jwcrypto import jwk, jws

    header = {
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
    }
    signer = jwk.JWK.from_pem(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    token = jws.JWS(json.dumps(claims).encode())
    token.add_signature(signer, alg="ES256", protected=json.dumps(header))
    compact: str = token.serialize(compact=True)
    return compact


def _granted(scopes: list[str], actions: tuple[str, ...]) -> list[dict[str, object]]:
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, asked = rest.rpartition(":")
        if kind != "repository" or not name:
            continue
        allowed = [a for a in asked.split(",") if a in actions]
        access.append({"type": kind, "name": name, "actions": allowed})
    return access


@contextmanager
def token_service(
    workdir: Path, users: dict[str, tuple[str, tuple[str, ...]]]
) -> Iterator[TokenService]:
    key, cert = _signing_pair(workdir)
    service: TokenService

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            user, actions = "", ()
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                known = users.get(name)
                if known is None or not secrets.compare_digest(known[0], password):
                    self.send_response(401)
                    self.end_headers()
                    return
                user, actions = name, known[1]
            scopes = query.get("scope", [])
            service.asked.append((user, scopes))
            now = int(time.time())
            claims = {
                "iss": ISSUER,
                "sub": user,
                "aud": query.get("service", [""])[0],
                "exp": now + 300,
                "nbf": now - 10,
                "iat": now,
                "jti": secrets.token_hex(8),
                "access": _granted(scopes, actions),
            }
            body = json.dumps({"token": _jwt(key, cert, claims), "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service = TokenService(
        f"http://127.0.0.1:{server.server_address[1]}/token", workdir / "token-signer.pem", users
    )
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            server.shutdown()
            server.server_close()

    service.stop = stop
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield service
    finally:
        stop()
