"""The web UI: server-rendered pages over the same queries as the API, and one script.

Every page reads its data through ``queries`` and the service layer, as the
API does, and renders it with Jinja2 templates that escape everything (and
write control and format characters from the ledger as visible escapes). The
script (``static/app.js``) signs in, sends the actions to the API with the
session's CSRF token, and follows the ledger's server-sent events: on a
change it fetches the same page with ``X-Partial: 1`` and swaps in the part
that changed (``#live``), so the filters a person is typing survive.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import markupsafe
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from sedis.core.audit import as_row, iso_time
from sedis.core.errors import InvalidInputError, NotFoundError, SedisError
from sedis.core.records import Status
from sedis.server import queries
from sedis.server.auth import Caller, anonymous, caller_of
from sedis.server.context import ServerContext
from sedis.server.errors import ApiError, status_of
from sedis.service.audit import audit

_HERE = Path(__file__).parent
PARTIAL_HEADER = "X-Partial"
EVENTS = "/api/v1/events"  # the API's server-sent events, which the script follows
PAGE_SIZE = 50
STATUSES = tuple(s.value for s in Status)
_STATUS_ICON = {
    "TRUSTED": "\u2713",
    "UNTRUSTED": "\u2717",
    "UNSUPPORTED": "\u26a0",
    "REVOKED": "\u2298",
    "UNKNOWN": "?",
}
# A path on this site: one slash, then no slash or backslash (browsers read "/\\x" as "//x").
_SAME_SITE_PATH = re.compile(r"/(?![/\\])[^\\\s]*")
_NAV = (("/images", "Images"), ("/audit", "Audit log"), ("/watch", "Watch"), ("/policy", "Policy"))


def visible(text: str) -> str:
    """``text`` with each character a page could be fooled by written as an escape.

    Control characters, the bidirectional overrides and other format
    characters would reorder or hide what people read; HTML escaping leaves
    them be, so they become their Python escapes (``\\x1b``, ``\\u202e``).
    """
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def _finalize(value: Any) -> Any:
    if isinstance(value, markupsafe.Markup):  # made by a template or macro, escaped already
        return value
    if isinstance(value, str):
        return visible(value)
    if value is None:
        return ""
    return value


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda at: iso_time(int(at)) if at else ""
    env.filters["short"] = _short
    env.globals["status_icon"] = _STATUS_ICON
    return env


def _short(text: Any, keep: int = 12) -> str:
    value = "" if text is None else str(text)
    if value.startswith("sha256:") and len(value) > 7 + keep:
        return value[: 7 + keep] + "\u2026"
    if value.startswith("0x") and len(value) > 12:
        return value[:6] + "\u2026" + value[-4:]
    return value


_ENV = _environment()


class _Redirect(Exception):
    def __init__(self, to: str) -> None:
        self.to = to


class _Refused(Exception):
    """A signed-in caller this server gives no role: a page that says so."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


def _ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.sedis
    return ctx


def _caller(request: Request) -> Caller:
    """The page's caller; anyone not signed in goes to /signin unless anonymous reads are on."""
    ctx = _ctx(request)
    try:
        caller = caller_of(request, ctx.config, ctx.sessions)
    except ApiError as exc:
        if exc.status == 401:
            raise _Redirect(_signin_url(request)) from None
        raise _Refused(exc.status, exc.message) from None
    if caller is not None:
        return caller
    if ctx.config.anonymous_read:
        return anonymous(ctx.config)
    raise _Redirect(_signin_url(request))


def _signin_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/signin?" + urlencode({"next": here})


def _allowed(ctx: ServerContext, caller: Caller) -> set[str]:
    """The actions the caller's role allows (none without a server identity to act as)."""
    if ctx.actor is None or caller.address is None:
        return set()
    return {action for action, needed in ctx.config.action_roles.items() if caller.role >= needed}


def _render(
    request: Request,
    template: str,
    caller: Caller | None,
    data: Mapping[str, Any],
    *,
    status: int = 200,
) -> HTMLResponse:
    ctx = _ctx(request)
    partial = request.headers.get(PARTIAL_HEADER) == "1"
    try:
        block: int | None = ctx.engines.ledger.info().block_number
    except SedisError:  # the page says what failed; the footer just goes without
        block = None
    page = _ENV.get_template(template).render(
        **data,
        partial=partial,
        caller=caller,
        nav=_NAV,
        path=request.url.path,
        # The sign-in page has nothing that the ledger's events change.
        events_url=None if template == "signin.html" else EVENTS,
        block=block,
    )
    response = HTMLResponse(page, status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = PARTIAL_HEADER
    if block is not None:
        response.headers["X-Sedis-Block"] = str(block)
    return response


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def _number(request: Request, name: str, default: int) -> int:
    value = _text(request, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError(f"{name} is a whole number, not {value!r}") from None


def _page_links(request: Request, page: int, size: int, total: int) -> dict[str, Any]:
    last = max(1, -(-total // size))

    def url(number: int) -> str:
        params = dict(request.query_params)
        params["page"] = str(number)
        return request.url.path + "?" + urlencode(params)

    return {
        "number": page,
        "last": last,
        "total": total,
        "prev": url(page - 1) if page > 1 else None,
        "next": url(page + 1) if page < last else None,
    }


# -- pages ------------------------------------------------------------------------------


def images_page(request: Request) -> Response:
    caller = _caller(request)
    ctx = _ctx(request)
    status_text = _text(request, "status")
    sort = _text(request, "sort") or "-published_at"
    form = {
        "name": _text(request, "name") or "",
        "publisher": _text(request, "publisher") or "",
        "status": status_text or "",
        "sort": sort,
    }
    error: str | None = None
    rows: list[Any] = []
    paging = {"number": 1, "last": 1, "total": 0, "prev": None, "next": None}
    try:
        where = queries.image_filter(
            name=form["name"] or None,
            publisher=form["publisher"] or None,
            status=status_text,
            shared_with=_text(request, "shared_with"),
            sort=sort,
            q=_text(request, "q"),
        )
        page = queries.Page(_number(request, "page", 1), PAGE_SIZE)
        rows, total = queries.image_rows(ctx, where, page)
        paging = _page_links(request, page.number, page.size, total)
    except InvalidInputError as exc:
        error = str(exc)
    return _render(
        request,
        "images.html",
        caller,
        {
            "rows": rows,
            "form": form,
            "statuses": STATUSES,
            "sorts": _SORTS,
            "paging": paging,
            "error": error,
        },
        status=400 if error else 200,
    )


_SORTS = (
    ("-published_at", "Newest first"),
    ("published_at", "Oldest first"),
    ("name", "Name"),
    ("status", "Status"),
    ("publisher", "Publisher"),
)


def _report_links(ctx: ServerContext, caller: Caller, doc: Mapping[str, Any]) -> list[str | None]:
    """Per scan of the record shown, the API's link to its sealed report: only for a caller
    who may read it, and only when the server's own identity can open it."""
    server = None if ctx.actor is None else ctx.actor.address
    if not (queries.may_read_report(doc, server) and queries.may_read_report(doc, caller.address)):
        return [None for _ in doc["scans"]]
    return [
        None
        if s["not_scanned"] or not (s["report_cid"] or s["envelope_cid"])
        else queries.report_url(doc, number)
        for number, s in enumerate(doc["scans"])
    ]


def image_page(request: Request, ref: str) -> Response:
    caller = _caller(request)
    ctx = _ctx(request)
    try:
        chosen = _text(request, "publisher")
        publisher = None if chosen is None else queries.address_of("publisher", chosen)
        doc = queries.image_document(ctx, queries.ref_of("image", ref), publisher)
    except (InvalidInputError, NotFoundError) as exc:
        status, _ = status_of(exc)
        return _render(request, "error.html", caller, {"message": str(exc)}, status=status)
    record = doc["record"]
    own = ctx.actor is not None and record["publisher"] == str(ctx.actor.address)
    allowed = _allowed(ctx, caller)
    if not own:
        # The server acts as its own identity: it changes, shares and unshares its own records.
        allowed -= {"status", "share", "unshare"}
    if record["status"] == Status.REVOKED.value:
        allowed -= {"status", "share"}  # final: the contract refuses both
    return _render(
        request,
        "image.html",
        caller,
        {
            "ref": ref,
            "doc": doc,
            "record": record,
            "may_read_report": queries.may_read_report(doc, caller.address),
            "report_links": _report_links(ctx, caller, doc),
            "allowed": allowed,
            "statuses": STATUSES,
            "server_address": None if ctx.actor is None else str(ctx.actor.address),
            "api_ref": record["digest"],
            "api_query": "?" + urlencode({"publisher": record["publisher"]}),
        },
    )


def audit_page(request: Request) -> Response:
    caller = _caller(request)
    ctx = _ctx(request)
    form = {key: _text(request, key) or "" for key in ("image", "publisher", "by", "kind")}
    form |= {key: _text(request, key) or "" for key in ("since", "until")}
    error: str | None = None
    rows: list[dict[str, Any]] = []
    paging = {"number": 1, "last": 1, "total": 0, "prev": None, "next": None}
    try:
        where = queries.audit_filter(
            now=int(time.time()),
            image=form["image"] or None,
            publisher=form["publisher"] or None,
            by=form["by"] or None,
            kinds=[form["kind"]] if form["kind"] else [],
            since=form["since"] or None,
            until=form["until"] or None,
        )
        log = audit(ctx.engines, where.query, image=where.image)
        newest_first = list(reversed(log.events))
        page = queries.Page(_number(request, "page", 1), PAGE_SIZE)
        rows = [as_row(e) for e in page.of(newest_first)]
        paging = _page_links(request, page.number, page.size, len(newest_first))
    except (InvalidInputError, NotFoundError) as exc:
        error = str(exc)
    kinds = ("published", "status", "grant", "ungrant", "attest", "unattest", "tag", "keys")
    return _render(
        request,
        "audit.html",
        caller,
        {"rows": rows, "form": form, "kinds": (*kinds, "usage"), "paging": paging, "error": error},
        status=400 if error else 200,
    )


def watch_page(request: Request) -> Response:
    caller = _caller(request)
    ctx = _ctx(request)
    document = queries.watch_document(ctx)
    return _render(
        request,
        "watch.html",
        caller,
        {**document, "in_process": bool(ctx.watch)},
    )


def policy_page(request: Request) -> Response:
    caller = _caller(request)
    policy = _ctx(request).policy
    return _render(
        request,
        "policy.html",
        caller,
        queries.policy_document(policy),
    )


def signin_page(request: Request) -> Response:
    ctx = _ctx(request)
    try:
        caller = caller_of(request, ctx.config, ctx.sessions)
    except ApiError:
        caller = None
    target = _text(request, "next") or "/images"
    if not _SAME_SITE_PATH.fullmatch(target):
        target = "/images"  # only ever back into this site
    return _render(request, "signin.html", caller, {"next": target})


def home(request: Request) -> Response:
    return RedirectResponse("/images", 303)


def _as_page(endpoint: Callable[..., Response]) -> Callable[..., Response]:
    """``endpoint``, with what the ledger or store refuses shown as a page, not as JSON."""

    @functools.wraps(endpoint)
    def page(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return endpoint(request, *args, **kwargs)
        except SedisError as exc:
            status, _ = status_of(exc)
            caller = None
            with contextlib.suppress(_Redirect, _Refused, ApiError):
                caller = _caller(request)
            return _render(request, "error.html", caller, {"message": str(exc)}, status=status)

    return page


def mount(app: FastAPI) -> None:
    """Adds the UI's pages and static files to ``app``."""

    @app.exception_handler(_Redirect)
    async def redirect(_: Request, exc: _Redirect) -> Response:
        return RedirectResponse(exc.to, 303)

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> Response:
        return _render(request, "error.html", None, {"message": exc.message}, status=exc.status)

    pages: list[tuple[str, Any]] = [
        ("/", home),
        ("/images", images_page),
        ("/images/{ref:path}", image_page),
        ("/audit", audit_page),
        ("/watch", watch_page),
        ("/policy", policy_page),
        ("/signin", signin_page),
    ]
    for path, endpoint in pages:
        app.add_api_route(
            path,
            _as_page(endpoint),
            methods=["GET"],
            include_in_schema=False,
            response_class=HTMLResponse,
        )
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
