"""``sedis login URL``: sign in to a ``sedis serve`` with a local identity, for a bearer token.

The command asks the server for a nonce, signs an EIP-4361 message for it
with the identity's Ethereum key, and trades message and signature for a
token, which it prints and keeps (owner-only) under the home's ``tokens``.
The domain and URI it signs for are those of the URL it was given, never
what the server says about itself: a server cannot have it sign a message
that would let it sign in somewhere else as this identity.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer

from sedis.cli import context
from sedis.cli.identity_cmds import AsOption, PasswordEnvOption
from sedis.cli.output import Format, OutputOption, emit, info, note
from sedis.core.errors import (
    AuthError,
    CorruptError,
    InvalidInputError,
    PermissionDeniedError,
    SedisError,
    UnavailableError,
)

if TYPE_CHECKING:
    import httpx

TOKENS_DIR = "tokens"
_TIMEOUT = 30.0
_NONCE = re.compile(r"[A-Za-z0-9]{8,128}")
_MAX_STATEMENT = 200


def login(
    url: str = typer.Argument(..., metavar="URL", help="The server: http(s)://HOST:PORT."),
    as_name: str | None = AsOption,
    password_env: str | None = PasswordEnvOption,
    ca_file: Path | None = typer.Option(
        None,
        "--ca-file",
        metavar="FILE",
        help="Trust the server's TLS certificate if this CA (PEM) signed it.",
    ),
    output: Format = OutputOption,
) -> None:
    """Sign in to a sedis server with an identity (Sign-In with Ethereum); print the token."""
    from sedis.crypto.identities import IdentityStore, acting_identity
    from sedis.crypto.password import read_password

    origin, domain = server_origin(url)
    if ca_file is not None and not ca_file.is_file():
        raise InvalidInputError(f"--ca-file {ca_file}: no such file")
    settings = context.settings()
    identities = IdentityStore(settings.home)
    name = acting_identity(settings, as_name)
    password = read_password(password_env)
    with _client(ca_file) as client:
        offer = _call(client, "GET", origin, "/api/v1/auth/nonce")
        account = identities.unlock_account(name, password)
        message = signed_message(offer, origin, domain, account.address)
        answer = _call(
            client,
            "POST",
            origin,
            "/api/v1/auth/signin",
            json={"message": message, "signature": _sign(account, message), "mode": "token"},
        )
    token = answer.get("token")
    if not isinstance(token, str) or not token:
        raise CorruptError(f"{origin} answered the sign-in without a token")
    if str(answer.get("address", "")).lower() != account.address.lower():
        raise CorruptError(f"{origin} answered the sign-in for another address")
    saved = save_token(settings.home, origin, answer)

    def text() -> None:
        info(token)
        note(
            f"signed in to {origin} as {answer.get('address')} ({answer.get('role')}); "
            f"the token is saved in {saved}"
        )

    emit(output, answer, text)


def server_origin(url: str) -> tuple[str, str]:
    """The server's origin (scheme, host and port) and its EIP-4361 domain (host and port)."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - a port that is no number fails here
    except ValueError:
        raise InvalidInputError(f"not a server URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(f"not a server URL: {url!r} (give http(s)://HOST:PORT)")
    if parts.username is not None or parts.query or parts.fragment:
        raise InvalidInputError(f"not a server URL: {url!r} (no user, query or fragment)")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}", parts.netloc


def signed_message(offer: dict[str, Any], origin: str, domain: str, address: str) -> str:
    """The EIP-4361 message for the server's nonce, for this URL's domain and origin."""
    from sedis.core.address import Address
    from sedis.server.auth import compose_message

    nonce, chain_id = offer.get("nonce"), offer.get("chain_id")
    statement, expires_at = offer.get("statement"), offer.get("expires_at")
    if not isinstance(nonce, str) or _NONCE.fullmatch(nonce) is None:
        raise CorruptError(f"{origin} gave no usable sign-in nonce: is it a sedis server?")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id < 0:
        raise CorruptError(f"{origin} named no chain id with its nonce")
    if (
        not isinstance(statement, str)
        or not statement.isprintable()
        or not 0 < len(statement) <= _MAX_STATEMENT
    ):
        raise CorruptError(f"{origin} gave a sign-in statement that is not one short line")
    if not isinstance(expires_at, int) or isinstance(expires_at, bool):
        raise CorruptError(f"{origin} said nothing of when its nonce expires")
    return compose_message(
        domain=domain,
        uri=origin,
        address=Address.parse(address),
        chain_id=chain_id,
        nonce=nonce,
        issued_at=time.time(),
        expires_at=float(expires_at),
        statement=statement,
    )


def token_path(home: Path, origin: str) -> Path:
    """Where the token for ``origin`` is kept: one file per host and port."""
    parts = urlsplit(origin)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = re.sub(r"[^A-Za-z0-9.-]", "_", parts.hostname or "")
    return home / TOKENS_DIR / f"{host}_{port}.json"


def save_token(home: Path, origin: str, answer: dict[str, Any]) -> Path:
    """Keep the sign-in's answer for ``origin``, readable by its owner only."""
    dest = token_path(home, origin)
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    document = json.dumps({"url": origin, **answer}, indent=2) + "\n"
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.partial"
    # Made owner-only from the start: the token is never readable by others, even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(document)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _sign(account: Any, message: str) -> str:
    from eth_account.messages import encode_defunct

    signature: str = account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    return signature


def _client(ca_file: Path | None) -> httpx.Client:
    import httpx

    verify: Any = True
    if ca_file is not None:
        import ssl

        try:
            verify = ssl.create_default_context(cafile=str(ca_file))
        except (ssl.SSLError, OSError) as exc:
            raise InvalidInputError(f"--ca-file {ca_file}: not a PEM certificate ({exc})") from None
    return httpx.Client(timeout=_TIMEOUT, verify=verify, follow_redirects=False)


def _call(
    client: httpx.Client, method: str, origin: str, path: str, **kwargs: Any
) -> dict[str, Any]:
    """The server's JSON answer; its refusal as the error it names."""
    import httpx

    try:
        response = client.request(method, origin + path, **kwargs)
    except httpx.HTTPError as exc:
        raise UnavailableError(f"cannot reach {origin}: {exc}") from None
    try:
        document = response.json()
    except ValueError:
        document = None
    if response.is_success and isinstance(document, dict):
        return document
    if not isinstance(document, dict):
        raise CorruptError(
            f"{origin}{path} answered {response.status_code} without JSON: is it a sedis server?"
        )
    raise _refusal(origin, response.status_code, document)


def _refusal(origin: str, status: int, document: dict[str, Any]) -> SedisError:
    errors = document.get("errors")
    said = "no reason given"
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        said = str(errors[0].get("message", said))
    message = f"{origin} refused the sign-in ({status}): {said}"
    if status == 401:
        return AuthError(message)
    if status == 403:
        return PermissionDeniedError(message)
    if status in (400, 404, 405, 422):
        return InvalidInputError(message)
    return UnavailableError(message)
