"""Sign-In with Ethereum (EIP-4361): nonces, sign-in, sessions and tokens, sign-out.

A caller asks for a nonce, signs a message naming this server's domain, URI
and chain with it, and posts message and signature back. The ``siwe``
library parses the message and checks the signature, the nonce it names and
the message's own times; the domain, URI and chain id, and that the nonce is
one this server issued and nobody used, are checked here. A browser gets a
session cookie and a CSRF token; a script (``sedis login``) a bearer token.
Every route under ``/auth`` is rate-limited per client address.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import siwe  # type: ignore[import-untyped]
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from sedis.core.address import Address
from sedis.core.errors import InvalidInputError
from sedis.server import schemas
from sedis.server.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    STATEMENT,
    Caller,
    Session,
    anonymous,
    caller_of,
    compose_message,
    session_of,
    siwe_time,
)
from sedis.server.config import Role
from sedis.server.context import ServerContext
from sedis.server.deps import context
from sedis.server.errors import ApiError

router = APIRouter(prefix="/api/v1")

# The longest message taken: ours are a few hundred characters, and the EIP-4361
# grammar's parser takes time that grows much faster than a message's length.
MAX_MESSAGE = 1024
# How far a message's issue time may run ahead of this server's clock.
CLOCK_SKEW = 60.0
_SIGNATURE = r"^0x[0-9a-fA-F]{130}$"
_SHOWN = 80  # characters of a caller's value quoted back in a refusal


# -- bodies ---------------------------------------------------------------------------


RoleName = Literal["viewer", "operator", "admin"]


class NonceAnswer(BaseModel):
    nonce: str
    expires_at: int = Field(description="Seconds since the epoch when the nonce lapses.")
    domain: str
    uri: str
    chain_id: int
    statement: str
    message_for: str | None = Field(description="The address `message` was composed for.")
    message: str | None = Field(
        None, description="The EIP-4361 message to sign, when an address was given."
    )


class SignInRequest(BaseModel):
    message: str = Field(max_length=MAX_MESSAGE, description="The signed EIP-4361 message.")
    signature: str = Field(pattern=_SIGNATURE, description="The EIP-191 signature, 65 bytes.")
    mode: Literal["cookie", "token"]


class SessionAnswer(BaseModel):
    address: str
    role: RoleName
    via: Literal["session"]
    expires_at: int
    csrf: str = Field(description="Send back as the X-CSRF-Token header on actions.")


class TokenAnswer(BaseModel):
    address: str
    role: RoleName
    via: Literal["token"]
    expires_at: int
    token: str = Field(description="Send as 'Authorization: Bearer TOKEN'.")


class MeAnswer(BaseModel):
    address: str | None
    role: RoleName
    via: Literal["session", "token", "anonymous"]
    expires_at: int | None
    csrf: str | None


def _refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of a route's refusals, each an error body."""
    described = {
        400: "The request is malformed; the message names what.",
        401: "No credentials, dead credentials, or a sign-in refused (the message says why).",
        403: "The address signed in, but this server grants it no role.",
        429: "Too many requests from this address: wait Retry-After seconds.",
        503: "The ledger is unavailable.",
    }
    error = {"application/json": {"schema": schemas.ERROR}}
    answers: dict[int | str, dict[str, Any]] = {
        status: {"description": described[status], "content": error} for status in statuses
    }
    answers[429]["headers"] = {
        "Retry-After": {
            "description": "Seconds to wait.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    }
    # Validation errors are answered as 400, never as FastAPI's 422.
    answers["default"] = {"description": "Any other refusal.", "content": error}
    return answers


# -- rate limit -----------------------------------------------------------------------


def rate_limited(request: Request) -> None:
    ctx = context(request)
    client = request.client.host if request.client is not None else "unknown"
    wait = ctx.sign_ins.admit(client)
    if wait is not None:
        seconds = math.ceil(wait)
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"too many sign-in requests from {client}: try again in {seconds} s",
            (("Retry-After", str(seconds)),),
        )


_LIMITED = [Depends(rate_limited)]


# -- routes ---------------------------------------------------------------------------


@router.get(
    "/auth/nonce",
    response_model=NonceAnswer,
    responses=_refusals(400, 429, 503),
    dependencies=_LIMITED,
    tags=["auth"],
)
def nonce(
    request: Request,
    address: str | None = Query(
        None, description="Compose the message for this address.", max_length=42
    ),
) -> NonceAnswer:
    """A single-use nonce, and the message to sign for ``address`` when one is given."""
    ctx = context(request)
    signer = None
    if address is not None:
        try:
            signer = Address.parse(address)
        except InvalidInputError as exc:
            raise ApiError(400, "BAD_REQUEST", str(exc)) from None
    chain_id = _chain_id(ctx)
    value, expires_at = ctx.nonces.issue()
    domain, uri = _domain(ctx), ctx.config.origin
    message = None
    if signer is not None:
        message = compose_message(
            domain=domain,
            uri=uri,
            address=signer,
            chain_id=chain_id,
            nonce=value,
            issued_at=ctx.clock(),
            expires_at=expires_at,
        )
    return NonceAnswer(
        nonce=value,
        expires_at=int(expires_at),
        domain=domain,
        uri=uri,
        chain_id=chain_id,
        statement=STATEMENT,
        message_for=str(signer) if signer is not None else None,
        message=message,
    )


@router.post(
    "/auth/signin",
    response_model=SessionAnswer | TokenAnswer,
    responses=_refusals(400, 401, 403, 429, 503),
    dependencies=_LIMITED,
    tags=["auth"],
)
def sign_in(request: Request, response: Response, body: SignInRequest) -> Any:
    """Check a signed EIP-4361 message; open a cookie session or give out a bearer token."""
    ctx = context(request)
    address = verified_signer(ctx, body.message, body.signature)
    role = ctx.config.role_of(address)
    if role is None:
        raise ApiError(403, "FORBIDDEN", f"{address} signed in, but this server grants it no role")
    if body.mode == "token":
        secret, session = ctx.sessions.open(address, "token")
        return TokenAnswer(
            address=str(address),
            role=_role_name(role),
            via="token",
            expires_at=int(session.expires_at),
            token=secret,
        )
    return _cookie_session(ctx, request, response, address, role)


@router.post(
    "/auth/session",
    response_model=SessionAnswer,
    responses=_refusals(401, 403, 429),
    dependencies=_LIMITED,
    tags=["auth"],
)
def token_to_session(request: Request, response: Response) -> SessionAnswer:
    """Turn a bearer token (from ``sedis login``) into a browser's cookie session."""
    ctx = context(request)
    if "authorization" not in request.headers:
        raise ApiError(401, "UNAUTHORIZED", "send the token as 'Authorization: Bearer TOKEN'")
    caller = caller_of(request, ctx.config, ctx.sessions)
    found = session_of(request, ctx.sessions)
    if caller is None or caller.address is None or found is None:
        raise ApiError(401, "UNAUTHORIZED", "the bearer token is unknown or has expired")
    _, token = found
    # The session lives no longer than the token it came from.
    left = max(1, int(token.expires_at - ctx.clock()))
    return _cookie_session(ctx, request, response, caller.address, caller.role, ttl=left)


@router.get(
    "/auth/me",
    response_model=MeAnswer,
    responses=_refusals(401, 403, 429),
    dependencies=_LIMITED,
    tags=["auth"],
)
def me(request: Request) -> MeAnswer:
    """Who this request is signed in as (or anonymous, when the server allows that)."""
    ctx = context(request)
    caller: Caller | None = caller_of(request, ctx.config, ctx.sessions)
    if caller is None:
        caller = anonymous(ctx.config)
    found: tuple[str, Session] | None = None
    if caller.via != "anonymous":
        found = session_of(request, ctx.sessions)
    return MeAnswer(
        address=str(caller.address) if caller.address is not None else None,
        role=_role_name(caller.role),
        via=caller.via,
        expires_at=int(found[1].expires_at) if found is not None else None,
        csrf=caller.csrf,
    )


@router.post(
    "/auth/signout",
    status_code=204,
    response_class=Response,
    responses=_refusals(401, 429),
    dependencies=_LIMITED,
    tags=["auth"],
)
def sign_out(request: Request) -> Response:
    """Close the session or token the request brings, and clear the cookies."""
    ctx = context(request)
    found = session_of(request, ctx.sessions)
    if found is None and "authorization" in request.headers:
        # A dead or malformed token is refused, as on every other route; a dead
        # cookie is cleared all the same.
        raise ApiError(401, "UNAUTHORIZED", "the bearer token is unknown or has expired")
    if found is not None:
        ctx.sessions.close(found[0])
    answer = Response(status_code=204)
    secure = ctx.config.tls
    answer.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    answer.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")
    return answer


# -- checks ---------------------------------------------------------------------------


def verified_signer(ctx: ServerContext, text: str, signature: str) -> Address:
    """The address that signed ``text``, a sign-in message for this server; else a 401
    naming what was wrong. The message's nonce is used up only by a good signature."""
    domain = _domain(ctx)
    origin = ctx.config.origin
    # The grammar's parser is slow on long or odd text: the regular expression,
    # fast on anything, turns away what is no sign-in message first.
    try:
        named = siwe.SiweMessage.from_message(text, abnf=False).domain
    except ValueError:
        raise _refused("the message is not an EIP-4361 sign-in message") from None
    if named != domain:
        raise _refused(f"the message names domain {_shown(named)}; this server is {domain}")
    try:
        message = siwe.SiweMessage.from_message(text)
    except ValueError:
        raise _refused("the message is not an EIP-4361 sign-in message") from None
    scheme = urlsplit(origin).scheme
    if message.scheme is not None and message.scheme != scheme:
        raise _refused(
            f"the message names scheme {_shown(message.scheme)}; this server is {scheme}"
        )
    uri = str(message.uri)
    if uri != origin and not uri.startswith(origin + "/"):
        raise _refused(f"the message names URI {_shown(uri)}; this server is {origin}")
    chain_id = _chain_id(ctx)
    if message.chain_id != chain_id:
        raise _refused(f"the message names chain {message.chain_id}; this server is on {chain_id}")
    now = ctx.clock()
    # The grammar admits only times that name their zone (RFC 3339).
    issued_at = datetime.fromisoformat(str(message.issued_at).replace("Z", "+00:00"))
    if issued_at.timestamp() > now + CLOCK_SKEW:
        raise _refused(
            f"the message was issued at {message.issued_at}, in the future of this server's "
            f"clock ({siwe_time(now)})"
        )
    try:
        message.verify(
            signature,
            domain=domain,
            nonce=message.nonce,
            timestamp=datetime.fromtimestamp(now, tz=UTC),
        )
    except siwe.ExpiredMessage:
        raise _refused(f"the message expired at {message.expiration_time}") from None
    except siwe.NotYetValidMessage:
        raise _refused(f"the message is not valid before {message.not_before}") from None
    except siwe.InvalidSignature:
        raise _refused(
            f"the signature is not {message.address}'s signature of this message"
        ) from None
    except Exception:
        # Below siwe each key library has its own errors: a signature that is no point on
        # the curve surfaces as one of eth_keys.
        raise _refused("the message or its signature is malformed") from None
    state = ctx.nonces.take(message.nonce)
    if state == "used":
        raise _refused("the message's nonce was used already: ask for a new one")
    if state == "expired":
        raise _refused("the message's nonce has expired: ask for a new one")
    if state == "unknown":
        raise _refused(f"this server did not issue the nonce {_shown(message.nonce)}")
    return Address.parse(message.address)


def _cookie_session(
    ctx: ServerContext,
    request: Request,
    response: Response,
    address: Address,
    role: Role,
    *,
    ttl: int | None = None,
) -> SessionAnswer:
    """A new cookie session; the one the browser had, if any, ends: a cookie someone
    planted before the sign-in is worth nothing after it."""
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        found = ctx.sessions.find(previous)
        if found is not None and found.via == "session":
            ctx.sessions.close(previous)
    secret, session = ctx.sessions.open(address, "session", ttl=ttl)
    assert session.csrf is not None  # every cookie session has one
    max_age = max(1, int(session.expires_at - ctx.clock()))
    secure = ctx.config.tls
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    # Readable by the page's script, which sends it back as the CSRF header.
    response.set_cookie(
        CSRF_COOKIE, session.csrf, max_age=max_age, path="/", secure=secure, samesite="strict"
    )
    return SessionAnswer(
        address=str(address),
        role=_role_name(role),
        via="session",
        expires_at=int(session.expires_at),
        csrf=session.csrf,
    )


def _role_name(role: Role) -> RoleName:
    return cast(RoleName, role.name)


def _domain(ctx: ServerContext) -> str:
    """The EIP-4361 domain of this server: the host and port people reach it at."""
    return urlsplit(ctx.config.origin).netloc


def _chain_id(ctx: ServerContext) -> int:
    configured = ctx.config.chain_id
    return configured if configured is not None else ctx.engines.ledger.info().chain_id


def _shown(value: str) -> str:
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "..."


def _refused(message: str) -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message)
