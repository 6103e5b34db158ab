"""The actions under ``/api/v1``: status, share, unshare, attest, rescan, and watchdog reports.

Each is performed by the server's own identity (``ctx.actor``), only for a
caller whose role the configuration allows for it (``deps.acting``). After
the action, the server records who asked: an attestation of kind
``sedis.request`` on the same record, whose stored payload names the action,
the caller's address, the request id and the action's transactions. The
answer is the use case's JSON (as the CLI's ``-o json``) with the
transaction, its block and that record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sedis.core.address import Address
from sedis.core.errors import InvalidInputError, SedisError
from sedis.core.records import Status
from sedis.server import deps, schemas
from sedis.server.auth import Caller
from sedis.server.context import ServerContext
from sedis.server.errors import ApiError
from sedis.service.access import ShareResult, UnshareResult
from sedis.service.attest import AttestResult, AttestRevokeResult
from sedis.service.engines import Actor
from sedis.service.query import StatusChange
from sedis.service.rescan import RescanResult
from sedis.service.shapes import plain

router = APIRouter(prefix="/api/v1", tags=["actions"])

MAX_REF = 300
MAX_REASON = 1000
MAX_KIND = 32  # the contract holds a kind in 32 bytes
MAX_PAYLOAD = 64 * 1024
MAX_REPORTED = 10_000
MAX_REPORT_BYTES = 16 * 1024 * 1024
# What each action made, for a message that says it was made.
_DONE = {
    "status": "status change",
    "share": "grant",
    "unshare": "grant's revocation",
    "attest": "attestation",
    "unattest": "attestation's revocation",
    "rescan": "scan attestation",
}
# Kinds the server writes itself: a caller may neither make nor take back one.
_RESERVED_KIND_PREFIX = "sedis."

_ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
Ref = Annotated[str, Path(min_length=1, max_length=MAX_REF, description="NAME:TAG or sha256:…")]
AddressText = Annotated[str, Field(pattern=_ADDRESS_PATTERN)]
AddressPath = Annotated[str, Path(pattern=_ADDRESS_PATTERN)]
KindPath = Annotated[str, Path(min_length=1, max_length=MAX_KIND)]
PublisherQuery = Annotated[
    str | None,
    Query(pattern=_ADDRESS_PATTERN, description="Whose record, when several have one."),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusBody(_Body):
    status: Literal["TRUSTED", "UNTRUSTED", "UNSUPPORTED", "REVOKED"]
    reason: str = Field(min_length=1, max_length=MAX_REASON)


class ShareBody(_Body):
    to: AddressText
    expires: str | None = Field(default=None, max_length=16, description="e.g. 30d, 12h")


class AttestBody(_Body):
    kind: str = Field(min_length=1, max_length=MAX_KIND, pattern=r"^[A-Za-z0-9._:/-]+$")
    payload: str | None = Field(default=None, max_length=MAX_PAYLOAD)


_Short = Annotated[str, Field(max_length=256)]
_Long = Annotated[str, Field(max_length=4096)]


class ReportedCause(_Body):
    event: _Short
    actor: _Short
    block: int | None = None
    tx_hash: _Short | None = None
    at: int | float | None = None


class ReportedContainer(_Body):
    """One container's verdict, as ``sedis watch --once -o json`` prints it."""

    container: _Short
    container_id: _Short
    image: _Long
    image_id: _Short
    digests: list[_Short] = Field(default_factory=list, max_length=64)
    digest: _Short | None = None
    state: Literal[
        "TRUSTED",
        "UNTRUSTED",
        "UNSUPPORTED",
        "REVOKED",
        "UNKNOWN",
        "NOT_GRANTED",
        "EXEMPT",
        "ERROR",
    ]
    reason: _Long
    decision: _Short
    policy: _Long
    publishers: list[_Short] = Field(default_factory=list, max_length=256)
    vouching: list[_Short] = Field(default_factory=list, max_length=256)
    block: int | None = None
    judged_at: float
    exemption: _Long | None = None
    cause: ReportedCause | None = None
    host: _Short


class WatchReport(_Body):
    host: str = Field(min_length=1, max_length=256)
    containers: list[ReportedContainer] = Field(max_length=MAX_REPORTED)


# -- response schemas ------------------------------------------------------------------------
# Each action's answer is its result's JSON (the schema made from its dataclass, so a
# field added there is documented with it) with the transaction, its block and the
# record of who asked.

_TRANSACTION_OR_NONE: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
_BLOCK_OR_NONE: dict[str, Any] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}


def _closed(title: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "title": title,
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_REQUEST = _closed(
    "RequestRecord",
    {
        "caller": schemas.ADDRESS,
        "request_id": {"type": "string"},
        "recorded": _closed(
            "Recorded", {"transaction": {"type": "string"}, "block": _BLOCK_OR_NONE}
        ),
    },
)
_ONE_TRANSACTION = {"request": _REQUEST}
_SOME_TRANSACTIONS = {"transaction": _TRANSACTION_OR_NONE, "request": _REQUEST}
_STATUS_RESULT = schemas.object_of(StatusChange, extra=_ONE_TRANSACTION)
_SHARE_RESULT = schemas.object_of(ShareResult, extra=_SOME_TRANSACTIONS)
_UNSHARE_RESULT = schemas.object_of(UnshareResult, extra=_SOME_TRANSACTIONS)
_ATTEST_RESULT = schemas.object_of(AttestResult, extra=_ONE_TRANSACTION)
_ATTEST_REVOKE_RESULT = schemas.object_of(AttestRevokeResult, extra=_SOME_TRANSACTIONS)
_RESCAN_RESULT = schemas.object_of(RescanResult, extra=_ONE_TRANSACTION)
_REPORT_RESULT = _closed(
    "WatchReportTaken",
    {"host": {"type": "string"}, "containers": {"type": "integer"}, "caller": schemas.ADDRESS},
)


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` put in place of the references to them, for a body
    schema that OpenAPI holds inside an operation rather than in its components."""
    defs: dict[str, Any] = schema.pop("$defs", {})

    def resolved(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolved(defs[ref.removeprefix("#/$defs/")])
            return {k: resolved(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolved(v) for v in node]
        return node

    inlined: dict[str, Any] = resolved(schema)
    return inlined


def _responses(
    ok: dict[str, Any], more: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A route's answer and its refusals' error bodies (``default`` also keeps FastAPI
    from documenting a 422 that this app never sends: bad input is 400)."""
    error = {"application/json": {"schema": schemas.ERROR}}
    every: dict[int | str, dict[str, Any]] = {
        200: {"description": "OK", "content": {"application/json": {"schema": ok}}}
    }
    refusals = {
        400: "Bad input.",
        401: "Not signed in.",
        403: "The caller's role, its CSRF header, or the ledger's permission refused it.",
        404: "No such image, grant or attestation.",
        409: "The ledger's contract refused it.",
        503: "The ledger is unavailable, or the server has no funds or no identity.",
        **(more or {}),
    }
    for status, description in refusals.items():
        every[status] = {"description": description, "content": error}
    every["default"] = {"description": "Any other refusal.", "content": error}
    return every


# -- the routes ------------------------------------------------------------------------------


def _acting(action: str) -> Any:
    return Depends(deps.acting(action))


Context = Annotated[ServerContext, Depends(deps.context)]


@router.post(
    "/images/{ref:path}/status",
    responses=_responses(_STATUS_RESULT),
    summary="Append a status change to the server's own record of an image",
)
def set_status(
    ref: Ref,
    body: StatusBody,
    request: Request,
    ctx: Context,
    caller: Annotated[Caller, _acting("status")],
) -> Any:
    from sedis.service import query

    actor = _actor(ctx)
    result = query.set_status(ctx.engines, actor, ref, Status[body.status], body.reason)
    return _answered(
        ctx, request, caller, "status", result, actor.address, result.digest, [result.transaction]
    )


@router.post(
    "/images/{ref:path}/grants",
    responses=_responses(_SHARE_RESULT),
    summary="Share the server's own record of an image with an address",
)
def share(
    ref: Ref,
    body: ShareBody,
    request: Request,
    ctx: Context,
    caller: Annotated[Caller, _acting("share")],
) -> Any:
    from sedis.core.durations import parse_duration
    from sedis.service import access

    actor = _actor(ctx)
    recipient = Address.parse(body.to)
    expires_at = int(time.time()) + parse_duration(body.expires) if body.expires else None
    result = access.share(ctx.engines, actor, ref, str(recipient), expires_at=expires_at)
    return _answered(
        ctx, request, caller, "share", result, actor.address, result.digest, result.transactions
    )


@router.delete(
    "/images/{ref:path}/grants/{address}",
    responses=_responses(_UNSHARE_RESULT),
    summary="Revoke an address's grant; rotate=true also re-encrypts for those who remain",
)
def unshare(
    ref: Ref,
    address: AddressPath,
    request: Request,
    ctx: Context,
    caller: Annotated[Caller, _acting("unshare")],
    rotate: bool = False,
) -> Any:
    from sedis.service import access

    actor = _actor(ctx)
    recipient = Address.parse(address)
    result = access.unshare(ctx.engines, actor, ref, str(recipient), rotate=rotate)
    return _answered(
        ctx, request, caller, "unshare", result, actor.address, result.digest, result.transactions
    )


@router.post(
    "/images/{ref:path}/attestations",
    responses=_responses(_ATTEST_RESULT),
    summary="Attest to a record of an image, as the server",
)
def attest(
    ref: Ref,
    body: AttestBody,
    request: Request,
    ctx: Context,
    caller: Annotated[Caller, _acting("attest")],
    publisher: PublisherQuery = None,
) -> Any:
    from sedis.service import attest as attesting

    _not_reserved(body.kind)
    actor = _actor(ctx)
    payload = None if body.payload is None else body.payload.encode()
    result = attesting.attest(
        ctx.engines,
        actor,
        ref,
        body.kind,
        payload=payload,
        policy=ctx.policy,
        publisher=_publisher(publisher),
    )
    return _answered(
        ctx, request, caller, "attest", result, result.publisher, result.digest,
        [result.transaction],
    )  # fmt: skip


@router.delete(
    "/images/{ref:path}/attestations/{kind}",
    responses=_responses(_ATTEST_REVOKE_RESULT),
    summary="Take back the server's live attestations of a kind on a record",
)
def revoke_attestation(
    ref: Ref,
    kind: KindPath,
    request: Request,
    ctx: Context,
    caller: Annotated[Caller, _acting("attest")],
    publisher: PublisherQuery = None,
) -> Any:
    from sedis.service import attest as attesting

    _not_reserved(kind)
    actor = _actor(ctx)
    result = attesting.revoke(
        ctx.engines, actor, ref, kind, policy=ctx.policy, publisher=_publisher(publisher)
    )
    return _answered(
        ctx, request, caller, "unattest", result, result.publisher, result.digest,
        result.transactions,
    )  # fmt: skip


@router.post(
    "/images/{ref:path}/rescan",
    responses=_responses(_RESCAN_RESULT),
    summary="Scan an image again with today's database, and attest to the scan",
)
def rescan(
    ref: Ref,
    request: Request,
    ctx: Context,
    caller: Annotated[Caller, _acting("rescan")],
    publisher: PublisherQuery = None,
) -> Any:
    from sedis.service import rescan as rescanning

    actor = _actor(ctx)
    result = rescanning.rescan(
        ctx.engines, actor, ref, policy=ctx.policy, publisher=_publisher(publisher)
    )
    return _answered(
        ctx, request, caller, "rescan", result, result.publisher, result.digest,
        [result.transaction],
    )  # fmt: skip


@router.post(
    "/watch/report",
    responses=_responses(_REPORT_RESULT, {413: "The body is larger than 16 MiB."}),
    summary="A watchdog on another host reports its containers' verdicts",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inlined(WatchReport.model_json_schema())}},
        }
    },
)
async def watch_report(
    request: Request,
    ctx: Context,
    caller: Annotated[Caller, _acting("watch-report")],
) -> Any:
    raw = await _bounded_body(request, MAX_REPORT_BYTES)
    try:
        report = WatchReport.model_validate_json(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()))
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        raise ApiError(400, "BAD_REQUEST", "; ".join(problems) or "invalid report") from None
    for container in report.containers:
        if container.host != report.host:
            raise ApiError(
                400,
                "BAD_REQUEST",
                f"container {container.container!r} is on host {container.host!r}, "
                f"but the report is for {report.host!r}",
            )
    documents = [c.model_dump() for c in report.containers]
    ctx.reported.report(report.host, documents)
    return {"host": report.host, "containers": len(documents), "caller": str(caller.address)}


# -- the pieces ------------------------------------------------------------------------------


def _actor(ctx: ServerContext) -> Actor:
    if ctx.actor is None:  # deps.acting refuses first; this keeps the type checker sure
        raise ApiError(
            503, "NO_IDENTITY", "this server has no identity of its own, so it cannot act"
        )
    return ctx.actor


def _publisher(text: str | None) -> Address | None:
    return None if text is None else Address.parse(text)


def _not_reserved(kind: str) -> None:
    if kind.lower().startswith(_RESERVED_KIND_PREFIX):
        raise InvalidInputError(
            f"attestations of kind {kind!r} are the server's own records; "
            f"no caller may make or revoke one"
        )


async def _bounded_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "TOO_LARGE", f"the body is larger than {limit // (1024 * 1024)} MiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413, "TOO_LARGE", f"the body is larger than {limit // (1024 * 1024)} MiB"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _answered(
    ctx: ServerContext,
    request: Request,
    caller: Caller,
    action: str,
    result: Any,
    publisher: Address,
    digest: str,
    transactions: Sequence[str],
) -> dict[str, Any]:
    """The use case's JSON with its transaction and block, once the caller is recorded."""
    from sedis.service.attest import record_request

    actor = _actor(ctx)
    if caller.address is None:  # deps.acting admits only signed-in callers
        raise ApiError(401, "UNAUTHORIZED", "sign in first")
    request_id: str = request.state.request_id
    transaction = transactions[-1] if transactions else None
    block: int | None = result.block
    try:
        recorded = record_request(
            ctx.engines,
            actor,
            publisher=publisher,
            digest=digest,
            action=action,
            caller=caller.address,
            request_id=request_id,
            transactions=transactions,
        )
    except SedisError as exc:
        made = (
            f"in transaction {transaction} (block {block})"
            if transaction
            else "with no transaction"
        )
        raise ApiError(
            503,
            "UNRECORDED",
            f"the {_DONE.get(action, action)} was made {made}, but recording who asked for it "
            f"failed: {exc}",
        ) from exc
    data: dict[str, Any] = plain(result)
    data["transaction"] = transaction
    data["block"] = block
    data["request"] = {
        "caller": str(caller.address),
        "request_id": request_id,
        "recorded": {"transaction": recorded.transaction, "block": recorded.block},
    }
    return data
