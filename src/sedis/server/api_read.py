"""The read endpoints under ``/api/v1``: images, verdicts, the audit log, the key
directory, the policy, the vulnerability database, the watchdogs, live events.

Every route but ``/health`` admits only a reader (``deps.reader``). Each body is
what the CLI's ``-o json`` prints for the same question (``queries`` builds
them), written with every non-ASCII and control character escaped, so text
from the ledger reaches no terminal or page raw. Lists come in pages, with
``X-Total-Count`` and an RFC 8288 ``Link`` header of absolute URLs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from sedis.server import queries, schemas
from sedis.server.auth import Caller
from sedis.server.context import ServerContext
from sedis.server.deps import context, reader
from sedis.server.queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_TEXT, Page
from sedis.service.reports import CYCLONEDX_JSON


class EscapedJSONResponse(JSONResponse):
    """JSON as ``json.dumps`` writes it by default: every character past ASCII and every
    control character escaped."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


class CycloneDXResponse(Response):
    media_type = CYCLONEDX_JSON


TAG = "read"
router = APIRouter(prefix="/api/v1", tags=[TAG], default_response_class=EscapedJSONResponse)

_WHY = {
    400: "A parameter is malformed or out of range; the message names it.",
    401: "No credentials, or dead ones, and this server allows no anonymous reads.",
    403: "The signed-in address has no role on this server.",
    404: "No such image, account or database.",
    503: "The ledger or the store cannot be reached.",
}
_PAGE_HEADERS = {
    "X-Total-Count": {
        "description": "How many items match, over all pages.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "Link": {
        "description": 'RFC 8288 links to the first, prev, next and last pages (rel="...").',
        "required": True,
        "schema": {"type": "string"},
    },
}


def _responses(
    ok: schemas.Schema,
    *refusals: int,
    media_type: str = "application/json",
    headers: dict[str, Any] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of a route: its body, then its refusals' error bodies."""
    error = {"application/json": {"schema": schemas.ERROR}}
    answer: dict[str, Any] = {"description": "OK", "content": {media_type: {"schema": ok}}}
    if headers:
        answer["headers"] = headers
    out: dict[int | str, dict[str, Any]] = {200: answer}
    for status in refusals:
        out[status] = {"description": _WHY[status], "content": error}
    out["default"] = {"description": "Any other refusal.", "content": error}
    return out


_READER = (400, 401, 403, 503)
_PageNumber = Query(1, ge=1, le=10**9, description="The page, from 1.")
_PageSize = Query(
    DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description=f"Items a page, 1 to {MAX_PAGE_SIZE}."
)
_ADDRESS_PATTERN = schemas.ADDRESS["pattern"]


def _text(description: str, *, pattern: str | None = None) -> Any:
    return Query(None, max_length=MAX_TEXT, pattern=pattern, description=description)


def _link_base(request: Request, ctx: ServerContext) -> str:
    if ctx.config.public_url:
        return ctx.config.public_url.rstrip("/") + request.url.path
    return str(request.base_url).rstrip("/") + request.url.path.removeprefix(
        request.scope.get("root_path", "")
    )


def _links(request: Request, ctx: ServerContext, page: Page, total: int) -> str:
    """RFC 8288 links to the pages around ``page``, each keeping the request's other
    parameters."""
    base = _link_base(request, ctx)
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]

    def url(number: int) -> str:
        return base + "?" + urlencode([*kept, ("page", str(number))])

    last = page.last(total)
    rels = [("first", 1)]
    if page.number > 1:
        rels.append(("prev", min(page.number - 1, last)))
    if page.number < last:
        rels.append(("next", page.number + 1))
    rels.append(("last", last))
    return ", ".join(f'<{url(n)}>; rel="{rel}"' for rel, n in rels)


def _paged(
    request: Request, ctx: ServerContext, rows: Sequence[Any], total: int, page: Page
) -> EscapedJSONResponse:
    headers = {"X-Total-Count": str(total), "Link": _links(request, ctx, page, total)}
    return EscapedJSONResponse(list(rows), headers=headers)


# -- images -----------------------------------------------------------------------------


@router.get(
    "/images",
    dependencies=[Depends(reader)],
    responses=_responses(schemas.IMAGE_LIST, *_READER, headers=_PAGE_HEADERS),
    summary="Images on the ledger, filtered, sorted and paged (sedis list -o json)",
)
def list_images(
    request: Request,
    name: str | None = _text("A substring of any of its names."),
    publisher: str | None = _text("Only this publisher's records.", pattern=_ADDRESS_PATTERN),
    status: str | None = _text("TRUSTED, UNTRUSTED, UNSUPPORTED or REVOKED (any case)."),
    shared_with: str | None = _text(
        "Only records shared by a live grant with this account.", pattern=_ADDRESS_PATTERN
    ),
    sort: str | None = Query(
        None,
        max_length=20,
        description="published_at, name, status, publisher or digest; a leading - descends.",
    ),
    q: str | None = Query(
        None,
        max_length=4 * MAX_TEXT,
        description="Harbor's filter: key=value (exact) or key=~value (a substring), joined "
        "by commas; keys name, publisher, status, digest, shared_with.",
    ),
    page: int = _PageNumber,
    page_size: int = _PageSize,
) -> EscapedJSONResponse:
    ctx = context(request)
    where = queries.image_filter(
        name=name, publisher=publisher, status=status, shared_with=shared_with, sort=sort, q=q
    )
    paging = Page(page, page_size)
    rows, total = queries.image_rows(ctx, where, paging)
    return _paged(request, ctx, rows, total, paging)


_REPORT_HEADERS = {
    "Content-Disposition": {
        "description": "attachment, with a file name made of the image digest's hex digits.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "no-store: a sealed report is kept by no cache.",
        "required": True,
        "schema": {"const": "no-store"},
    },
}
_REPORT_WHY = {
    403: "The signed-in address has no role here; or the caller is anonymous, or neither the "
    "record's publisher nor a live grantee; or the server's own identity is neither, so it "
    "cannot open the report (code SERVER_NOT_GRANTED).",
    404: "No such image or record, or no such scan, or one with no report (published "
    "without a scan).",
    502: "The sealed report in the store does not check out (its size, HMAC or digest): "
    "nothing of it is sent.",
    503: "The ledger or the store cannot be reached, or the server has no identity of its "
    "own (code NO_IDENTITY).",
}


def _report_responses() -> dict[int | str, dict[str, Any]]:
    out = _responses(
        schemas.CYCLONEDX, 400, 401, media_type=CYCLONEDX_JSON, headers=_REPORT_HEADERS
    )
    error = {"application/json": {"schema": schemas.ERROR}}
    for status, why in _REPORT_WHY.items():
        out[status] = {"description": why, "content": error}
    out["default"] = out.pop("default")
    return out


# Before the route of one image: that one's path would take ".../report" in as its ref.
@router.get(
    "/images/{ref:path}/report",
    response_class=CycloneDXResponse,
    responses=_report_responses(),
    summary="A scan's sealed report (CycloneDX JSON), opened by the server for the record's "
    "publisher or a live grantee",
)
def scan_report(
    request: Request,
    caller: Annotated[Caller, Depends(reader)],
    ref: str = Path(..., max_length=MAX_TEXT, description="sha256:DIGEST or NAME:TAG"),
    publisher: str | None = _text("Whose record's report.", pattern=_ADDRESS_PATTERN),
    scan: int = Query(
        0, ge=0, le=10**6, description="Which scan: 0 the one made at publish, then each rescan."
    ),
) -> CycloneDXResponse:
    chosen = queries.address_of("publisher", publisher) if publisher else None
    document = queries.scan_report(context(request), caller, ref, chosen, scan)
    headers = {
        "Content-Disposition": f'attachment; filename="{document.filename}"',
        "Cache-Control": "no-store",
    }
    return CycloneDXResponse(document.content, headers=headers)


@router.get(
    "/images/{ref:path}",
    dependencies=[Depends(reader)],
    responses=_responses(schemas.INSPECTION, *_READER, 404),
    summary="One image whole: every record, history, grants, scans (sedis inspect -o json)",
)
def inspect_image(
    request: Request,
    ref: str = Path(..., max_length=MAX_TEXT, description="sha256:DIGEST or NAME:TAG"),
    publisher: str | None = _text("Whose record to show whole.", pattern=_ADDRESS_PATTERN),
) -> Any:
    chosen = queries.address_of("publisher", publisher) if publisher else None
    return queries.image_document(context(request), ref, chosen)


@router.get(
    "/verify",
    dependencies=[Depends(reader)],
    responses=_responses(schemas.VERDICT_LINE, *_READER, 404),
    summary="The verdict on one image under the server's policy (sedis verify -o json)",
)
def verify_image(
    request: Request,
    image: str = Query(..., max_length=MAX_TEXT, description="NAME:TAG or sha256:DIGEST"),
    signer: Annotated[
        list[str] | None,
        Query(max_length=16, description="Count only these signers' records (repeatable)."),
    ] = None,
    publisher: str | None = _text(
        "Whose tag a name means when trusted publishers disagree.", pattern=_ADDRESS_PATTERN
    ),
) -> Any:
    signers = [queries.address_of("signer", s) for s in signer or ()]
    chosen = queries.address_of("publisher", publisher) if publisher else None
    return queries.verify_document(context(request), image, signers=signers, publisher=chosen)


# -- the audit log and the key directory ------------------------------------------------


@router.get(
    "/audit",
    dependencies=[Depends(reader)],
    responses=_responses(schemas.AUDIT_LOG, *_READER, 404, headers=_PAGE_HEADERS),
    summary="The ledger's events, oldest first, filtered and paged (sedis audit -o json)",
)
def audit_log(
    request: Request,
    image: str | None = _text("sha256:DIGEST, or NAME[:TAG]: every digest tagged so."),
    publisher: str | None = _text("Only records of this publisher.", pattern=_ADDRESS_PATTERN),
    by: str | None = _text("Only what this account did.", pattern=_ADDRESS_PATTERN),
    kind: Annotated[
        list[str] | None,
        Query(
            max_length=queries.MAX_KINDS,
            description="published, status, grant, ungrant, attest, unattest, tag, keys, usage "
            "(repeatable, or comma-separated).",
        ),
    ] = None,
    since: str | None = _text("ISO-8601 date or date-time, Unix seconds, or a duration ago."),
    until: str | None = _text("As since; a bare date takes in the whole day."),
    page: int = _PageNumber,
    page_size: int = _PageSize,
) -> EscapedJSONResponse:
    ctx = context(request)
    where = queries.audit_filter(
        now=int(ctx.clock()),
        image=image,
        publisher=publisher,
        by=by,
        kinds=kind or (),
        since=since,
        until=until,
    )
    paging = Page(page, page_size)
    rows, total = queries.audit_rows(ctx, where, paging)
    return _paged(request, ctx, rows, total, paging)


@router.get(
    "/keys",
    dependencies=[Depends(reader)],
    responses=_responses(schemas.KEY_DIRECTORY, *_READER, headers=_PAGE_HEADERS),
    summary="The key directory: every account with registered keys",
)
def key_directory(
    request: Request, page: int = _PageNumber, page_size: int = _PageSize
) -> EscapedJSONResponse:
    ctx = context(request)
    paging = Page(page, page_size)
    rows, total = queries.key_rows(ctx, paging)
    return _paged(request, ctx, rows, total, paging)


@router.get(
    "/keys/{address}",
    dependencies=[Depends(reader)],
    responses=_responses(schemas.KEY_ENTRY, *_READER, 404),
    summary="One account's registered keys",
)
def keys_of(
    request: Request, address: str = Path(..., max_length=MAX_TEXT, pattern=_ADDRESS_PATTERN)
) -> Any:
    return queries.key_document(context(request), queries.address_of("address", address))


# -- what the server holds --------------------------------------------------------------


@router.get(
    "/policy",
    dependencies=[Depends(reader)],
    responses=_responses(schemas.POLICY, *_READER),
    summary="The trust policy in force",
)
def policy(request: Request) -> Any:
    return queries.policy_document(context(request).policy)


@router.get(
    "/vulndb",
    dependencies=[Depends(reader)],
    responses=_responses(schemas.VULNDB, *_READER, 404),
    summary="The vulnerability database's sources and snapshot (sedis vulndb status -o json)",
)
def vulndb(request: Request) -> Any:
    return queries.vulndb_document(context(request))


@router.get(
    "/watch",
    dependencies=[Depends(reader)],
    responses=_responses(schemas.WATCH, *_READER),
    summary="The watchdogs' hosts and their containers' verdicts",
)
def watch(request: Request) -> Any:
    return queries.watch_document(context(request))


@router.get(
    "/events",
    dependencies=[Depends(reader)],
    response_class=EventStreamResponse,
    responses=_responses({"type": "string"}, *_READER, media_type="text/event-stream"),
    summary="The ledger's changes as they happen, as server-sent events",
)
async def events(request: Request) -> EventStreamResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return EventStreamResponse(context(request).events.stream(), headers=headers)


@router.get(
    "/health",
    responses=_responses(schemas.HEALTH, 503),
    summary="Whether the ledger answers, and its head (no sign-in needed)",
)
def health(request: Request) -> Any:
    return queries.health_document(context(request))
