"""create_app: the REST API, the sign-in routes and the web UI, in one FastAPI app.

Every response carries ``X-Request-Id`` (the caller's, when it sent a sane
one) and headers that keep a browser from framing, sniffing or running
anything the app did not serve itself. No route sends a CORS header: the UI
is served from the same origin as the API, and nothing else needs one.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sedis import __version__
from sedis.core.errors import SedisError
from sedis.server import api_actions, api_read, signin, ui
from sedis.server.context import ServerContext
from sedis.server.errors import ApiError, body, status_of

_LOG = logging.getLogger("sedis.serve")
REQUEST_ID = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(ctx: ServerContext, *, start_events: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_events:
            ctx.events.start()
        try:
            yield
        finally:
            ctx.events.stop()

    app = FastAPI(
        title="sedis",
        version=__version__,
        description="The ledger's images, grants, scans and audit log; actions by the "
        "server's own identity for the addresses its configuration allows.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.sedis = ctx

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get(REQUEST_ID, "")
        rid = given if _SANE_REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        request.state.request_id = rid
        response = await call_next(request)
        response.headers[REQUEST_ID] = rid
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if ctx.config.tls:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        return response

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(body(exc.code, exc.message), exc.status, dict(exc.headers))

    @app.exception_handler(SedisError)
    async def sedis_error(request: Request, exc: SedisError) -> JSONResponse:
        status, code = status_of(exc)
        if status >= 500:
            _LOG.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(body(code, str(exc)), status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()))
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse(body("BAD_REQUEST", "; ".join(problems) or "invalid request"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return JSONResponse(body(code, message), exc.status_code, getattr(exc, "headers", None))

    app.include_router(api_read.router)
    app.include_router(api_actions.router)
    app.include_router(signin.router)
    ui.mount(app)
    return app
