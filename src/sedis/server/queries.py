"""What the API and the UI read, in one place: the list of images (filtered, sorted,
paged), one image whole, verdicts, the audit log, the key directory, and the
documents of the policy, the vulnerability database and the watchdogs.

Both adapters call these and render the same data, the API as the CLI's JSON
and the UI as pages. The list of every record is read once per ledger block
and kept until the head moves, so a page of a thousand images costs a sort
and a slice, not a thousand reads.

Every filter is built here from the text a caller sent (``image_filter``,
``audit_filter``), and a bad value is refused with the parameter's name in the
message, so that the API's 400 and the UI's notice say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sedis.core.address import Address
from sedis.core.audit import as_row, parse_kinds, parse_time
from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.core.policy import TrustPolicy, TrustRule
from sedis.core.records import AuditQuery, KeyEntry, Status
from sedis.server.auth import Caller
from sedis.server.context import ServerContext
from sedis.server.errors import ApiError
from sedis.service import audit, naming, query, reports, trust, verify, vulndb_admin
from sedis.service.query import ImageSummary
from sedis.service.reports import ScanReportDocument
from sedis.service.shapes import plain, verdict_line

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
SORT_KEYS = ("published_at", "name", "status", "publisher", "digest")
# The keys of Harbor's ``q=`` filter on the image list.
Q_KEYS = ("name", "publisher", "status", "digest", "shared_with")
MAX_Q_TERMS = 16
MAX_TEXT = 256  # the longest filter value, image reference or time a caller may send
MAX_KINDS = 32
# A watchdog that has not reported for this long is shown as stale.
REPORT_STALE_AFTER = 300.0
_Q_TERM = re.compile(r"([a-z_]+)=(~?)(.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Term:
    """One ``q=`` condition: ``key=value`` matches exactly, ``key=~value`` a substring;
    both ignore case. ``value`` is kept lowercased."""

    key: str
    value: str
    fuzzy: bool


@dataclass(frozen=True, slots=True)
class ImageFilter:
    """Which images a list shows; every field narrows, None means any."""

    name: str | None = None  # a substring of any of its names ("app", "app:1.0")
    publisher: Address | None = None
    status: Status | None = None
    shared_with: Address | None = None
    sort: str = "published_at"
    descending: bool = False
    terms: tuple[Term, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.sort not in SORT_KEYS:
            raise InvalidInputError(
                f"sort: cannot sort by {self.sort!r}: sort by one of {', '.join(SORT_KEYS)}"
                " (a leading - sorts in descending order)"
            )


@dataclass(frozen=True, slots=True)
class Page:
    number: int  # from 1
    size: int

    def __post_init__(self) -> None:
        if self.number < 1:
            raise InvalidInputError(f"page: a page number is 1 or more, not {self.number}")
        if not 1 <= self.size <= MAX_PAGE_SIZE:
            raise InvalidInputError(
                f"page_size: a page holds 1 to {MAX_PAGE_SIZE} items, not {self.size}"
            )

    def of(self, rows: Sequence[Any]) -> list[Any]:
        start = (self.number - 1) * self.size
        return list(rows[start : start + self.size])

    def last(self, total: int) -> int:
        """The number of the last page for ``total`` items (1 when there are none)."""
        return max(1, -(-total // self.size))


# -- parsing what callers send ----------------------------------------------------------


def _bounded(parameter: str, text: str) -> str:
    if len(text) > MAX_TEXT:
        raise InvalidInputError(f"{parameter}: at most {MAX_TEXT} characters, not {len(text)}")
    return text


def address_of(parameter: str, text: str) -> Address:
    """The 0x address ``text`` writes, refused with the parameter's name."""
    try:
        return Address.parse(_bounded(parameter, text).strip())
    except InvalidInputError as exc:
        raise InvalidInputError(f"{parameter}: {exc}") from None


def ref_of(parameter: str, text: str) -> str:
    """An image on the ledger as ``text`` names it: ``sha256:DIGEST`` or ``NAME[:TAG]``."""
    ref = _bounded(parameter, text).strip()
    if naming.is_digest(ref):
        return ref
    if ref.startswith("sha256:"):
        raise InvalidInputError(
            f"{parameter}: invalid digest {ref!r} (expected sha256:<64 hex digits>)"
        )
    try:
        naming.parse_name(ref)
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"{parameter}: {exc}; an image here is sha256:DIGEST or NAME:TAG"
        ) from None
    return ref


def status_of(parameter: str, text: str) -> Status:
    try:
        return Status.parse(_bounded(parameter, text))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{parameter}: {exc}") from None


def parse_q(text: str) -> tuple[Term, ...]:
    """Harbor's ``q=``: ``key=value`` or ``key=~value`` terms joined by commas, all of
    which must hold."""
    if len(text) > 4 * MAX_TEXT:
        raise InvalidInputError(f"q: at most {4 * MAX_TEXT} characters, not {len(text)}")
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) > MAX_Q_TERMS:
        raise InvalidInputError(f"q: at most {MAX_Q_TERMS} terms, not {len(parts)}")
    terms = []
    for part in parts:
        match = _Q_TERM.fullmatch(part.strip())
        if match is None:
            raise InvalidInputError(
                f"q: {part.strip()!r} is not key=value or key=~value (keys: {', '.join(Q_KEYS)})"
            )
        key, fuzzy, value = match.group(1), bool(match.group(2)), match.group(3).strip()
        if key not in Q_KEYS:
            raise InvalidInputError(f"q: unknown key {key!r} (filter by {', '.join(Q_KEYS)})")
        if not value:
            raise InvalidInputError(f"q: {key} needs a value")
        if not fuzzy and key in ("publisher", "shared_with"):
            value = address_of(f"q: {key}", value).hex
        elif not fuzzy and key == "status":
            value = status_of(f"q: {key}", value).value
        elif fuzzy and key == "shared_with":
            raise InvalidInputError("q: shared_with takes one whole address (shared_with=0x…)")
        terms.append(Term(key, _bounded(f"q: {key}", value).lower(), fuzzy))
    return tuple(terms)


def image_filter(
    *,
    name: str | None = None,
    publisher: str | None = None,
    status: str | None = None,
    shared_with: str | None = None,
    sort: str | None = None,
    q: str | None = None,
) -> ImageFilter:
    """The filter that a list request's parameters (as text) describe."""
    order = _bounded("sort", sort or "published_at").strip()
    terms = parse_q(q) if q else ()
    shared = address_of("shared_with", shared_with) if shared_with else None
    for term in terms:
        if term.key != "shared_with":
            continue
        given = Address.parse(term.value)
        if shared is not None and shared != given:
            raise InvalidInputError(
                "q: shared_with names another address than the shared_with parameter"
            )
        shared = given
    return ImageFilter(
        name=_bounded("name", name) if name else None,
        publisher=address_of("publisher", publisher) if publisher else None,
        status=status_of("status", status) if status else None,
        shared_with=shared,
        sort=order.removeprefix("-"),
        descending=order.startswith("-"),
        terms=tuple(t for t in terms if t.key != "shared_with"),
    )


# -- images -----------------------------------------------------------------------------


def _sort_key(sort: str) -> Any:
    # Ties keep the ledger's order (the sort is stable): the CLI's order, oldest first.
    if sort == "name":
        return lambda r: (r.names[0] if r.names else "\uffff", r.published_at)
    if sort == "status":
        return lambda r: (r.status.value, r.published_at)
    if sort == "publisher":
        return lambda r: (str(r.publisher).lower(), r.published_at)
    if sort == "digest":
        return lambda r: r.digest
    return lambda r: r.published_at


def _texts(key: str, row: ImageSummary) -> Iterable[str]:
    if key == "name":
        return (n.lower() for n in row.names)
    if key == "publisher":
        return (row.publisher.hex,)
    if key == "status":
        return (row.status.value.lower(),)
    return (row.digest.lower(),)


def _holds(term: Term, row: ImageSummary) -> bool:
    if term.fuzzy:
        return any(term.value in text for text in _texts(term.key, row))
    return any(term.value == text for text in _texts(term.key, row))


def images(ctx: ServerContext, where: ImageFilter) -> list[ImageSummary]:
    """The images ``where`` selects, in its order."""
    if where.shared_with is not None:
        rows = query.list_images(ctx.engines, shared_with=where.shared_with)
    else:
        rows = ctx.image_list.rows(ctx.engines)
    if where.publisher is not None:
        rows = [r for r in rows if r.publisher == where.publisher]
    if where.status is not None:
        rows = [r for r in rows if r.status == where.status]
    if where.name:
        needle = where.name.lower()
        rows = [r for r in rows if any(needle in n.lower() for n in r.names)]
    for term in where.terms:
        rows = [r for r in rows if _holds(term, r)]
    return sorted(rows, key=_sort_key(where.sort), reverse=where.descending)


def image_rows(ctx: ServerContext, where: ImageFilter, page: Page) -> tuple[list[Any], int]:
    """One page of the list as JSON rows (``sedis list -o json``'s), and the total."""
    rows = images(ctx, where)
    return plain(page.of(rows)), len(rows)


def image_document(
    ctx: ServerContext, ref: str, publisher: Address | None = None
) -> dict[str, Any]:
    """One image whole, as ``sedis inspect -o json`` prints it."""
    data: dict[str, Any] = plain(
        query.inspect(ctx.engines, ref_of("ref", ref), policy=ctx.policy, publisher=publisher)
    )
    return data


def verify_document(
    ctx: ServerContext,
    image: str,
    *,
    signers: Sequence[Address] = (),
    publisher: Address | None = None,
) -> dict[str, Any]:
    """One image on the ledger judged under the server's policy (narrowed to ``signers``
    when any are named), as ``sedis verify -o json`` prints it. Only ledger references
    are judged: a source (``oci:``, ``docker://``, …) is refused, never opened."""
    ref = ref_of("image", image)
    policy = trust.with_signers(ctx.policy, signers)
    [verdict] = verify.verify(ctx.engines, [ref], policy=policy, publisher=publisher)
    return verdict_line(ref, verdict)


# -- sealed scan reports ----------------------------------------------------------------


def scan_report(
    ctx: ServerContext,
    caller: Caller,
    ref: str,
    publisher: Address | None = None,
    scan: int = reports.PUBLISH_SCAN,
) -> ScanReportDocument:
    """A scan's sealed report, opened by the server's identity for a caller who may read
    it: the record's publisher or a live grantee, as the ledger says, in one block.

    The server opens it with its own key, so it can only for a record that it
    published or holds a live grant of; a caller is never shown more than that
    caller could open with its own key.
    """
    engines = ctx.engines
    with engines.ledger.pinned():
        record = reports.report_record(
            engines, ref_of("ref", ref), policy=ctx.policy, publisher=publisher
        )
        reports.scan_on_ledger(engines, record, scan)  # no such report: 404, whoever asks
        whose = f"{record.publisher}'s record of {record.digest}"
        if caller.address is None:
            raise ApiError(
                403,
                "FORBIDDEN",
                f"sign in: the sealed scan reports of {whose} are for its publisher and "
                "grantees only",
            )
        if not reports.may_read(engines, record, caller.address):
            raise ApiError(
                403,
                "FORBIDDEN",
                f"{caller.address} neither published {record.digest} nor holds a live grant "
                f"of {whose}, so its sealed scan reports are not for you",
            )
        actor = ctx.actor
        if actor is None:
            raise ApiError(
                503,
                "NO_IDENTITY",
                "this server has no identity of its own, so it cannot open sealed reports",
            )
        if not reports.may_read(engines, record, actor.address):
            raise ApiError(
                403,
                "SERVER_NOT_GRANTED",
                f"this server's identity {actor.address} holds no live grant of {whose}, "
                "so the server cannot open its sealed reports: read them with your own "
                f"identity (sedis pull), or have {record.publisher} share the image with "
                f"{actor.address}",
            )
        return reports.read_report(
            engines,
            actor,
            record.digest,
            policy=ctx.policy,
            publisher=record.publisher,
            scan=scan,
        )


def may_read_report(doc: Mapping[str, Any], address: Address | None) -> bool:
    """Whether ``address`` may read the sealed reports of the record an image document
    shows whole: its publisher, or a grantee whose grant is live at the document's time."""
    if address is None:
        return False
    me = str(address)
    if doc["record"]["publisher"] == me:
        return True
    now = doc["now"]
    return any(
        g["recipient"] == me
        and g["revoked_at"] is None
        and (g["expires_at"] is None or now < g["expires_at"])
        for g in doc["grants"]
    )


def report_url(doc: Mapping[str, Any], scan: int) -> str:
    """Where the API serves one scan's report of the record an image document shows."""
    record = doc["record"]
    query_string = urlencode({"publisher": record["publisher"], "scan": str(scan)})
    return f"/api/v1/images/{record['digest']}/report?{query_string}"


# -- the audit log ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events an audit page shows: ``query`` and, if given, one image's."""

    query: AuditQuery = field(default_factory=AuditQuery)
    image: str | None = None


def audit_filter(
    *,
    now: int,
    image: str | None = None,
    publisher: str | None = None,
    by: str | None = None,
    kinds: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
) -> AuditFilter:
    """The filter that an audit request's parameters (as text) describe; times as the
    CLI takes them (``core.audit.parse_time``)."""
    if len(kinds) > MAX_KINDS:
        raise InvalidInputError(f"kind: at most {MAX_KINDS} kinds, not {len(kinds)}")
    for kind in kinds:
        _bounded("kind", kind)
    try:
        chosen = parse_kinds(kinds)
    except InvalidInputError as exc:
        raise InvalidInputError(f"kind: {exc}") from None
    start = None if not since else parse_time(_bounded("since", since), now, label="since")
    end = (
        None
        if not until
        else parse_time(_bounded("until", until), now, label="until", end_of_day=True)
    )
    if start is not None and end is not None and start > end:
        raise InvalidInputError("since: the start of the time range is after its end (until)")
    return AuditFilter(
        AuditQuery(
            publisher=address_of("publisher", publisher) if publisher else None,
            actor=address_of("by", by) if by else None,
            kinds=chosen,
            since=start,
            until=end,
        ),
        ref_of("image", image) if image else None,
    )


def audit_rows(ctx: ServerContext, where: AuditFilter, page: Page) -> tuple[list[Any], int]:
    """One page of the events, oldest first, as ``sedis audit -o json`` rows; the total."""
    log = audit.audit(ctx.engines, where.query, image=where.image)
    return [as_row(e) for e in page.of(log.events)], len(log.events)


# -- the key directory ------------------------------------------------------------------


def key_json(entry: KeyEntry) -> dict[str, Any]:
    """A key directory entry; keys as 0x hex, as the audit log shows them."""
    return {
        "address": str(entry.address),
        "encryption_key": "0x" + entry.encryption_key.hex(),
        "paillier_n": "0x" + entry.paillier_n.hex(),
        "registered_at": entry.registered_at,
    }


def key_rows(ctx: ServerContext, page: Page) -> tuple[list[Any], int]:
    """One page of the key directory, in the order the accounts first registered keys."""
    ledger = ctx.engines.ledger
    with ledger.pinned():
        events = ledger.audit_log(AuditQuery(kinds=frozenset({"KeysRegistered"})))
        accounts = list(dict.fromkeys(e.actor for e in events))
        entries = [ledger.keys_of(a) for a in page.of(accounts)]
    return [key_json(e) for e in entries if e is not None], len(accounts)


def key_document(ctx: ServerContext, address: Address) -> dict[str, Any]:
    entry = ctx.engines.ledger.keys_of(address)
    if entry is None:
        raise NotFoundError(f"{address} has registered no keys")
    return key_json(entry)


# -- state documents --------------------------------------------------------------------


def _listed(value: Any) -> Any:
    """``plain(value)``, with sets as sorted lists (a rule's publishers, say)."""
    if isinstance(value, frozenset | set):
        return sorted(_listed(v) for v in value)
    if isinstance(value, dict):
        return {k: _listed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_listed(v) for v in value]
    return plain(value)


def rule_json(rule: TrustRule) -> dict[str, Any]:
    data: dict[str, Any] = _listed(plain(rule))
    return data


def policy_document(policy: TrustPolicy) -> dict[str, Any]:
    """The trust policy in force: where it came from, its rules, its default."""
    return {
        "policy": policy.source,
        "rules": [rule_json(r) for r in policy.rules],
        "default": policy.default.value,
    }


def vulndb_document(ctx: ServerContext) -> dict[str, Any]:
    """The vulnerability database's sources and snapshot, as ``sedis vulndb status -o json``
    prints them (the snapshot's digest under the name ``snapshot``)."""
    data: dict[str, Any] = plain(vulndb_admin.status(ctx.engines))
    return {"path": data.pop("path"), "snapshot": data.pop("digest"), **data}


def watch_document(ctx: ServerContext) -> dict[str, Any]:
    """The watchdogs' hosts and their containers' verdicts: those of a watchdog in this
    process (``reported_at`` null: it is live), then those reported by other hosts."""
    now = ctx.clock()
    hosts: dict[str, dict[str, Any]] = {}
    containers: list[dict[str, Any]] = []
    for state in ctx.watch:
        for doc in state.documents():
            containers.append(doc)
            host = str(doc.get("host", ""))
            hosts.setdefault(host, {"host": host, "reported_at": None, "stale": False})
    for host, at in sorted(ctx.reported.reported_at().items()):
        hosts[host] = {"host": host, "reported_at": at, "stale": now - at > REPORT_STALE_AFTER}
    containers += ctx.reported.documents()
    return {"hosts": list(hosts.values()), "containers": containers}


def health_document(ctx: ServerContext) -> dict[str, Any]:
    """Whether the ledger answers, and its head."""
    return {"ok": True, "block": ctx.engines.ledger.info().block_number}
