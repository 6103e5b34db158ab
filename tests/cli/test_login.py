"""``sedis login URL``: the real CLI signs in to a real server over HTTP(S)."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from sedis.core.address import Address
from sedis.server.config import Role
from sedis.server.context import ServerContext
from tests.conftest import CliResult
from tests.server.world import PASSWORD, ServerWorld, free_port, running, server_world

Run = Callable[..., CliResult]
PASSWORD_ENV = {"LOGIN_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerWorld]:
    with server_world(tmp_path_factory.mktemp("login-world")) as made:
        yield made


@contextlib.contextmanager
def serving(world: ServerWorld, **changes: Any) -> Iterator[tuple[str, ServerContext]]:
    """A server that grants alice (an identity in the world's home) the operator role."""
    uvicorn_options = changes.pop("uvicorn", {})
    roles = {Address.parse(str(world.alice.address)): Role.operator}
    ctx = world.context(world.config(roles=roles, **changes))
    with running(ctx, **uvicorn_options) as url:
        # Only now is the port known: the sign-in domain is the address it serves at.
        ctx.config = replace(ctx.config, port=urlsplit(url).port or 0)
        yield url, ctx


def login(sedis: Run, world: ServerWorld, *args: str) -> CliResult:
    env = {"SEDIS_HOME": str(world.home), **PASSWORD_ENV}
    result: CliResult = sedis("login", *args, "--password-env", "LOGIN_PASSWORD", env=env)
    return result


def one_line_error(result: CliResult) -> str:
    assert result.code != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_login_prints_a_token_that_works_and_keeps_it_private(
    sedis: Run, world: ServerWorld
) -> None:
    with serving(world) as (url, _):
        result = login(sedis, world, url, "--as", "alice")
        assert result.code == 0, result.stderr
        token = result.stdout.strip()
        assert result.stdout == token + "\n" and len(token) > 30
        assert "signed in to" in result.stderr and "operator" in result.stderr
        me = httpx.get(url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["address"] == str(world.alice.address)
        assert me.json()["via"] == "token" and me.json()["role"] == "operator"
        port = urlsplit(url).port
        saved = world.home / "tokens" / f"127.0.0.1_{port}.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
        document = json.loads(saved.read_text())
        assert document["token"] == token and document["url"] == url

        as_json = login(sedis, world, url, "--as", "alice", "-o", "json")
        assert as_json.code == 0, as_json.stderr
        answer = json.loads(as_json.stdout)
        assert set(answer) == {"address", "role", "via", "expires_at", "token"}
        assert answer["token"] != token
        assert json.loads(saved.read_text())["token"] == answer["token"]
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "url", ["not-a-url", "ftp://127.0.0.1:21", "http://127.0.0.1:port", "http://u@127.0.0.1:1"]
)
def test_a_bad_url_is_one_line(sedis: Run, world: ServerWorld, url: str) -> None:
    assert "not a server URL" in one_line_error(login(sedis, world, url, "--as", "alice"))


def test_an_unreachable_server_is_one_line(sedis: Run, world: ServerWorld) -> None:
    result = login(sedis, world, f"http://127.0.0.1:{free_port()}", "--as", "alice")
    assert "cannot reach" in one_line_error(result)
    assert result.code == 5


def test_an_address_without_a_role_is_refused_in_one_line(sedis: Run, world: ServerWorld) -> None:
    with serving(world) as (url, _):
        result = login(sedis, world, url, "--as", "server")
    assert "grants it no role" in one_line_error(result)
    assert result.code == 8


def test_a_server_known_by_another_name_refuses_in_one_line(sedis: Run, world: ServerWorld) -> None:
    with serving(world, public_url="https://sedis.example.org") as (url, _):
        result = login(sedis, world, url, "--as", "alice")
    line = one_line_error(result)
    assert "this server is sedis.example.org" in line and result.code == 7


def test_a_wrong_password_is_one_line(sedis: Run, world: ServerWorld) -> None:
    with serving(world) as (url, _):
        result = sedis(
            "login",
            url,
            "--as",
            "alice",
            env={"SEDIS_HOME": str(world.home), "SEDIS_PASSWORD": "x"},
        )
    assert "password" in one_line_error(result)


# -- a server that lies about itself ----------------------------------------------------


@contextlib.contextmanager
def lying_server(seen: list[dict[str, Any]]) -> Iterator[str]:
    """A server whose nonce claims another domain and offers a message for it."""
    app = FastAPI()

    @app.get("/api/v1/auth/nonce")
    def nonce() -> dict[str, Any]:
        return {
            "nonce": "a1b2c3d4e5f6a7b8",
            "expires_at": int(time.time()) + 300,
            "domain": "victim.example",
            "uri": "https://victim.example",
            "chain_id": 1,
            "statement": "Sign in to sedis.",
            "message_for": None,
            "message": "victim.example wants you to sign in with your Ethereum account:",
        }

    @app.post("/api/v1/auth/signin")
    async def sign_in(request: Request) -> dict[str, Any]:
        seen.append(await request.json())
        return {"errors": [{"code": "UNAUTHORIZED", "message": "no"}]}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_login_signs_only_for_the_url_it_was_given(sedis: Run, world: ServerWorld) -> None:
    seen: list[dict[str, Any]] = []
    with lying_server(seen) as url:
        result = login(sedis, world, url, "--as", "alice")
    assert result.code != 0 and "Traceback" not in result.stderr
    (body,) = seen
    domain = urlsplit(url).netloc
    assert body["message"].startswith(f"{domain} wants you to sign in")
    assert f"\nURI: {url}\n" in body["message"]
    assert "victim.example" not in body["message"]


# -- TLS with a private CA ---------------------------------------------------------------


def make_certificates(root: Path) -> tuple[Path, Path, Path]:
    """A private CA, and a certificate it signed for 127.0.0.1: (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

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
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = root / "ca.pem", root / "cert.pem", root / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_login_over_tls_with_a_private_ca(sedis: Run, world: ServerWorld, tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    with serving(world, tls_cert=cert, tls_key=key, uvicorn=tls) as (url, _):
        assert url.startswith("https://")
        untrusted = login(sedis, world, url, "--as", "alice")
        assert "cannot reach" in one_line_error(untrusted)
        result = login(sedis, world, url, "--as", "alice", "--ca-file", str(ca))
        assert result.code == 0, result.stderr
        token = result.stdout.strip()
        me = httpx.get(
            url + "/api/v1/auth/me",
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=str(ca)),
        )
        assert me.status_code == 200 and me.json()["address"] == str(world.alice.address)
        missing = login(sedis, world, url, "--as", "alice", "--ca-file", str(tmp_path / "no"))
        assert "no such file" in one_line_error(missing)
        (tmp_path / "junk.pem").write_text("not a certificate\n")
        junk = login(sedis, world, url, "--as", "alice", "--ca-file", str(tmp_path / "junk.pem"))
        assert "not a PEM certificate" in one_line_error(junk) and junk.code == 2


def test_composing_the_message_needs_no_web_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from sedis.cli import login_cmd; "
        "login_cmd.signed_message({'nonce': 'abcdef0123456789', 'chain_id': 1, "
        "'statement': 'Sign in to sedis.', 'expires_at': 2000000000}, "
        "'http://127.0.0.1:1', '127.0.0.1:1', '0x' + '11' * 20); "
        "print([m for m in ('fastapi', 'starlette', 'siwe', 'web3') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
