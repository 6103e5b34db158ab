"""What the API and the UI read, in one place: the list of images (filtered, sorted,
paged), one image whole, the audit log, and the state documents.

Both adapters call these and render the same data, the API as the CLI's JSON
and the UI as pages. The list of every record is read once per ledger block
and kept until the head moves, so a page of a thousand images costs a sort
and a slice, not a thousand reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sedis.core.address import Address
from sedis.core.errors import InvalidInputError
from sedis.core.records import Status
from sedis.server.context import ServerContext
from sedis.service import query
from sedis.service.query import ImageSummary
from sedis.service.shapes import plain

MAX_PAGE_SIZE = 500
SORT_KEYS = ("published_at", "name", "status", "publisher", "digest")


@dataclass(frozen=True, slots=True)
class ImageFilter:
    """Which images a list shows; every field narrows, None means any."""

    name: str | None = None  # a substring of any of its names ("app", "app:1.0")
    publisher: Address | None = None
    status: Status | None = None
    shared_with: Address | None = None
    sort: str = "published_at"
    descending: bool = False

    def __post_init__(self) -> None:
        if self.sort not in SORT_KEYS:
            raise InvalidInputError(
                f"cannot sort by {self.sort!r}: sort by one of {', '.join(SORT_KEYS)}"
            )


@dataclass(frozen=True, slots=True)
class Page:
    number: int  # from 1
    size: int

    def __post_init__(self) -> None:
        if self.number < 1:
            raise InvalidInputError(f"a page number is 1 or more, not {self.number}")
        if not 1 <= self.size <= MAX_PAGE_SIZE:
            raise InvalidInputError(f"a page holds 1 to {MAX_PAGE_SIZE} items, not {self.size}")

    def of(self, rows: Sequence[Any]) -> list[Any]:
        start = (self.number - 1) * self.size
        return list(rows[start : start + self.size])


def _sort_key(sort: str) -> Any:
    if sort == "name":
        return lambda r: (r.names[0] if r.names else "\uffff", r.published_at)
    if sort == "status":
        return lambda r: (r.status.value, r.published_at)
    if sort == "publisher":
        return lambda r: (str(r.publisher).lower(), r.published_at)
    if sort == "digest":
        return lambda r: r.digest
    return lambda r: (r.published_at, r.digest)


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
        query.inspect(ctx.engines, ref, policy=ctx.policy, publisher=publisher)
    )
    return data
