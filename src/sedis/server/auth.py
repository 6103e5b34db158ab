"""Who is calling, and what they may do.

A caller proves an address by signing an EIP-4361 (Sign-In with Ethereum)
message for a nonce the server issued. The server then holds a session for
it: a cookie for a browser, or a bearer token for a script (what ``sedis
login`` gets). Each session's secret is random and kept only as its hash.
The address's role comes from the server's configuration.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from sedis.core.address import Address
from sedis.server.config import Role, ServeConfig
from sedis.server.errors import ApiError

SESSION_COOKIE = "sedis_session"
CSRF_COOKIE = "sedis_csrf"
CSRF_HEADER = "X-CSRF-Token"

Via = Literal["session", "token", "anonymous"]


@dataclass(frozen=True, slots=True)
class Caller:
    """One request's caller: the address it proved (None: anonymous) and its role."""

    address: Address | None
    role: Role
    via: Via
    csrf: str | None = None  # the session's CSRF token, for cookie sessions


@dataclass(slots=True)
class Session:
    address: Address
    expires_at: float
    via: Via
    csrf: str | None


def _hashed(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SessionStore:
    """Live sessions by the hash of their secret; expired ones are dropped as met."""

    def __init__(self, ttl: int, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, address: Address, via: Via, *, ttl: int | None = None) -> tuple[str, Session]:
        """A new session's secret (given out once) and the session."""
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24) if via == "session" else None
        session = Session(address, self._clock() + (ttl or self._ttl), via, csrf)
        with self._lock:
            self._drop_expired()
            self._sessions[_hashed(secret)] = session
        return secret, session

    def find(self, secret: str) -> Session | None:
        key = _hashed(secret)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.expires_at <= self._clock():
                del self._sessions[key]
                return None
            return session

    def close(self, secret: str) -> bool:
        with self._lock:
            return self._sessions.pop(_hashed(secret), None) is not None

    def _drop_expired(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]


def caller_of(request: Request, config: ServeConfig, sessions: SessionStore) -> Caller | None:
    """The caller a request proves, or None when it brings no live credentials.

    A bearer token wins over a cookie; credentials that are given but dead are
    refused outright rather than read as anonymous.
    """
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "UNAUTHORIZED", "the Authorization header is not 'Bearer TOKEN'")
        session = sessions.find(secret.strip())
        if session is None or session.via != "token":
            raise ApiError(401, "UNAUTHORIZED", "the bearer token is unknown or has expired")
        return _with_role(config, session)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = sessions.find(cookie)
        if session is not None and session.via == "session":
            return _with_role(config, session)
    return None


def _with_role(config: ServeConfig, session: Session) -> Caller:
    role = config.role_of(session.address)
    if role is None:
        raise ApiError(
            403, "FORBIDDEN", f"{session.address} signed in, but this server grants it no role"
        )
    return Caller(session.address, role, session.via, session.csrf)


def anonymous(config: ServeConfig) -> Caller:
    if not config.anonymous_read:
        raise ApiError(401, "UNAUTHORIZED", "sign in first: this server allows no anonymous reads")
    return Caller(None, Role.viewer, "anonymous")
