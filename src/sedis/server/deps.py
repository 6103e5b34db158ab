"""FastAPI dependencies: the context of the app, and the caller a route demands.

``reader`` admits anyone who may read (a signed-in address with a role, or
anyone when anonymous reads are on). ``acting(action)`` admits a caller whose
role the configuration allows for that action, and for a cookie session
only with the CSRF header that matches the session.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Request

from sedis.server.auth import CSRF_HEADER, Caller, anonymous, caller_of
from sedis.server.config import Role
from sedis.server.context import ServerContext
from sedis.server.errors import ApiError


def context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.sedis
    return ctx


def reader(request: Request) -> Caller:
    ctx = context(request)
    caller = caller_of(request, ctx.config, ctx.sessions)
    return caller if caller is not None else anonymous(ctx.config)


def signed_in(request: Request) -> Caller:
    ctx = context(request)
    caller = caller_of(request, ctx.config, ctx.sessions)
    if caller is None:
        raise ApiError(401, "UNAUTHORIZED", "sign in first")
    return caller


# Actions that change nothing on the ledger, and so need no identity of the server's.
_LEDGER_FREE = frozenset({"watch-report"})


def acting(action: str) -> Callable[[Request], Caller]:
    def allowed(request: Request) -> Caller:
        ctx = context(request)
        caller = signed_in(request)
        needed = ctx.config.action_roles.get(action, Role.admin)
        if caller.role < needed:
            raise ApiError(
                403,
                "FORBIDDEN",
                f"{caller.address} is {caller.role.name} here; {action} needs {needed.name}",
            )
        if caller.via == "session":
            sent = request.headers.get(CSRF_HEADER, "")
            if caller.csrf is None or not hmac.compare_digest(sent, caller.csrf):
                raise ApiError(403, "CSRF", f"a signed-in page must send its {CSRF_HEADER} header")
        if ctx.actor is None and action not in _LEDGER_FREE:
            raise ApiError(
                503, "NO_IDENTITY", "this server has no identity of its own, so it cannot act"
            )
        return caller

    return allowed
