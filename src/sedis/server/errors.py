"""Errors as the API answers them: ``{"errors": [{"code", "message"}]}`` with a status
that says what kind of refusal it is.

Every ``SedisError`` a use case raises maps to one status by its class; a
message from the ledger or the network travels inside the JSON string, which
escapes it, and the UI escapes it again where it shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sedis.core.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    CorruptError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PolicyViolationError,
    SedisError,
    UnavailableError,
)


# Not frozen: whoever handles an exception sets its __traceback__ (Starlette does).
@dataclass(eq=False)
class ApiError(Exception):
    """A refusal the server itself makes (not a use case's): a status, a code, a message."""

    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


# Checked in order: the first class that matches decides.
_STATUS_OF: tuple[tuple[type[SedisError], int, str], ...] = (
    (AuthError, 401, "UNAUTHORIZED"),
    (PermissionDeniedError, 403, "FORBIDDEN"),
    (NotFoundError, 404, "NOT_FOUND"),
    (ConflictError, 409, "CONFLICT"),
    (PolicyViolationError, 409, "POLICY_VIOLATION"),
    (InvalidInputError, 400, "BAD_REQUEST"),
    (UnavailableError, 503, "UNAVAILABLE"),
    (CorruptError, 502, "BAD_UPSTREAM_DATA"),
    (ConfigError, 500, "SERVER_MISCONFIGURED"),
)


def status_of(error: SedisError) -> tuple[int, str]:
    """The HTTP status and error code for a use case's refusal."""
    for kind, status, code in _STATUS_OF:
        if isinstance(error, kind):
            return status, code
    return 500, "INTERNAL"


def body(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}]}
