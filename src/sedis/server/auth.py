"""Who is calling, and what they may do.

A caller proves an address by signing an EIP-4361 (Sign-In with Ethereum)
message for a nonce the server issued. The server then holds a session for
it: a cookie for a browser, or a bearer token for a script (what ``sedis
login`` gets). Each session's secret is random and kept only as its hash.
The address's role comes from the server's configuration.

Here too: the nonce store (single use, short-lived, bounded), the per-address
rate limit of the sign-in routes (fixed memory), and the layout of the
message itself, which ``sedis login`` composes with this module alone (it
imports neither the web framework nor the ``siwe`` library).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from sedis.core.address import Address
from sedis.server.config import Role, ServeConfig
from sedis.server.errors import ApiError

if TYPE_CHECKING:
    # Only for annotations: ``sedis login`` composes its message with this module and
    # should not pay for the web framework's import.
    from fastapi import Request

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


def session_of(request: Request, sessions: SessionStore) -> tuple[str, Session] | None:
    """The live session a request's credentials name (bearer token first), with its secret."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() == "bearer" and secret:
            session = sessions.find(secret)
            if session is not None and session.via == "token":
                return secret, session
        return None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = sessions.find(cookie)
        if session is not None and session.via == "session":
            return cookie, session
    return None


# -- nonces ----------------------------------------------------------------------------

NonceState = Literal["fresh", "used", "expired", "unknown"]


class NonceStore:
    """Sign-in nonces: random, each good for one sign-in within ``ttl`` seconds.

    At most ``capacity`` nonces wait to be used; issuing one more forgets the
    oldest, which is the nearest to expiring anyway. Used nonces are
    remembered (as many, until they would have expired) only to tell a replay
    from a nonce never issued.
    """

    def __init__(
        self, ttl: int, *, capacity: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: OrderedDict[str, float] = OrderedDict()  # nonce -> expires at
        self._used: OrderedDict[str, float] = OrderedDict()

    def issue(self) -> tuple[str, float]:
        """A new nonce (letters and digits, as EIP-4361 asks) and when it expires."""
        nonce = secrets.token_hex(16)
        with self._lock:
            now = self._clock()
            expires_at = now + self._ttl
            self._forget_expired(now)
            while len(self._waiting) >= self._capacity:
                self._waiting.popitem(last=False)
            self._waiting[nonce] = expires_at
        return nonce, expires_at

    def take(self, nonce: str) -> NonceState:
        """Use ``nonce`` up: "fresh" if it was ours, unused and unexpired, else what it was."""
        with self._lock:
            now = self._clock()
            expires_at = self._waiting.pop(nonce, None)
            if expires_at is None:
                return "used" if nonce in self._used else "unknown"
            if expires_at <= now:
                return "expired"
            self._used[nonce] = expires_at
            while len(self._used) > self._capacity:
                self._used.popitem(last=False)
            return "fresh"

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)

    def _forget_expired(self, now: float) -> None:
        # Both are in order of issue, so of expiry: the expired ones lead.
        for table in (self._waiting, self._used):
            while table and next(iter(table.values())) <= now:
                table.popitem(last=False)


# -- rate limit ------------------------------------------------------------------------


class RateLimiter:
    """At most ``per_minute`` requests per client address a minute (a token bucket each).

    The table holds at most ``capacity`` addresses. When it is full of
    addresses still being held back, newcomers share one bucket: memory stays
    fixed, and cycling through many addresses buys no more requests than one.
    """

    _SHARED = "*"

    def __init__(
        self, per_minute: int, *, capacity: int = 4096, clock: Callable[[], float] = time.time
    ) -> None:
        self._burst = float(max(1, per_minute))
        self._rate = self._burst / 60.0  # tokens a second
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def admit(self, client: str) -> float | None:
        """None if ``client`` may go on; else the seconds until it may try again."""
        with self._lock:
            now = self._clock()
            key = client
            if key not in self._buckets and len(self._buckets) >= self._capacity:
                self._drop_refilled(now)
                if len(self._buckets) >= self._capacity:
                    key = self._SHARED
            tokens, at = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return max(1.0, math.ceil((1.0 - tokens) / self._rate))
            self._buckets[key] = (tokens - 1.0, now)
            return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)

    def _drop_refilled(self, now: float) -> None:
        # A bucket that has filled up again holds back nothing: as good as absent.
        for key in [
            k
            for k, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self._rate >= self._burst
        ]:
            del self._buckets[key]


# -- the message -----------------------------------------------------------------------

STATEMENT = "Sign in to sedis."


def siwe_time(at: float) -> str:
    """An instant as EIP-4361 writes it: ISO 8601 in UTC, to the millisecond."""
    moment = datetime.fromtimestamp(at, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def compose_message(
    *,
    domain: str,
    uri: str,
    address: Address,
    chain_id: int,
    nonce: str,
    issued_at: float,
    expires_at: float | None,
    statement: str = STATEMENT,
) -> str:
    """The EIP-4361 message that signs ``address`` in at ``domain`` with ``nonce``.

    Laid out field by field as the specification (and the ``siwe`` library
    that checks it) writes it, so that what is signed is what is checked.
    """
    lines = [
        f"{domain} wants you to sign in with your Ethereum account:",
        address.checksummed,
        "",
        statement,
        "",
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {siwe_time(issued_at)}",
    ]
    if expires_at is not None:
        lines.append(f"Expiration Time: {siwe_time(expires_at)}")
    return "\n".join(lines)
