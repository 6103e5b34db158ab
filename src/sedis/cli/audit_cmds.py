"""``sedis audit``: the ledger's events, filtered, as a table, JSON, JSON lines or CSV."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TextIO

import typer

from sedis.cli import context
from sedis.cli.output import Format, OutputOption, note, printable

if TYPE_CHECKING:
    from sedis.core.address import Address
    from sedis.core.records import AuditEvent
    from sedis.crypto.contacts import AddressBookDirectory


class Layout(StrEnum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"


CSV_COLUMNS = (
    "block",
    "log_index",
    "tx_hash",
    "time",
    "at",
    "actor",
    "kind",
    "event",
    "publisher",
    "digest",
    "change",
    "details",
)
_TABLE_HEADER = ("BLOCK", "TIME", "KIND", "ACTOR", "PUBLISHER", "DIGEST", "TX", "CHANGE")
# What a spreadsheet would read as the start of a formula.
_FORMULA_STARTS = ("=", "+", "-", "@")

_WHO = "local identity, contact or 0x address"


def audit(
    image: str | None = typer.Option(
        None,
        "--image",
        metavar="IMAGE",
        help="sha256:DIGEST, or NAME[:TAG]: every digest anyone has tagged so.",
    ),
    publisher: str | None = typer.Option(
        None, "--publisher", metavar="WHO", help=f"Only records of this publisher ({_WHO})."
    ),
    by: str | None = typer.Option(
        None, "--by", metavar="WHO", help=f"Only what this account did ({_WHO})."
    ),
    kind: list[str] = typer.Option(
        [],
        "--kind",
        metavar="KIND",
        help="Only these kinds (repeatable, or comma-separated): published, status, grant, "
        "ungrant, attest, unattest, tag, keys, usage.",
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="T",
        help="From this time on: ISO-8601 date or date-time (UTC unless it gives an "
        "offset), Unix seconds, or a duration ago (7d, 12h).",
    ),
    until: str | None = typer.Option(
        None,
        "--until",
        metavar="T",
        help="Up to this time (as --since; a bare date takes in the whole day).",
    ),
    limit: int | None = typer.Option(
        None, "--limit", metavar="N", help="Only the latest N events (still oldest first)."
    ),
    layout: Layout | None = typer.Option(
        None,
        "--format",
        metavar="FORMAT",
        help="Text output: table (the default), jsonl (one JSON object a line) or csv.",
    ),
    output: Format = OutputOption,
) -> None:
    """The ledger's events in chain order: who published, shared, revoked, attested,
    tagged and reported what, and when.

    -o json prints one JSON array of events, as every command's JSON does.
    Text output comes as --format FORMAT says: a table for people, or jsonl
    and csv streams for programs and spreadsheets; it does not combine with
    -o json. Text
    from the ledger is escaped in the table and in CSV, and a CSV cell that a
    spreadsheet would take for a formula starts with a quote.
    """
    from sedis.core.audit import as_row, parse_kinds, parse_time
    from sedis.core.errors import InvalidInputError
    from sedis.core.records import AuditQuery
    from sedis.service.audit import audit as read_log

    if output == Format.json and layout is not None:
        raise InvalidInputError(
            "-o json prints one JSON array, --format chooses a text output: give one of them"
        )
    now = int(time.time())
    directory = _directory() if publisher is not None or by is not None else None
    query = AuditQuery(
        publisher=_account(directory, "--publisher", publisher),
        actor=_account(directory, "--by", by),
        kinds=parse_kinds(kind),
        since=None if since is None else parse_time(since, now, label="--since"),
        until=None if until is None else parse_time(until, now, label="--until", end_of_day=True),
    )
    with context.engines() as engines:
        log = read_log(engines, query, image=image, limit=limit)
    rows = [as_row(e) for e in log.events]
    if output == Format.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif layout == Layout.jsonl:
        write_jsonl(rows, sys.stdout)
    elif layout == Layout.csv:
        write_csv(rows, sys.stdout)
    elif rows:
        write_table(log.events, rows, sys.stdout)
    else:
        note("no events match")
    if log.left_out:
        note(f"{log.left_out} earlier events left out (--limit {limit})")


def write_jsonl(rows: Sequence[dict[str, Any]], out: TextIO) -> None:
    """One JSON object a line; ``json.dumps`` escapes every control character."""
    out.write("".join(json.dumps(row) + "\n" for row in rows))


def write_csv(rows: Sequence[dict[str, Any]], out: TextIO) -> None:
    """RFC 4180 CSV with a header; each text cell escaped and kept from reading as a formula."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(row[column]) for column in CSV_COLUMNS])


def write_table(events: Sequence[AuditEvent], rows: Sequence[dict[str, Any]], out: TextIO) -> None:
    """Aligned columns for people, every cell escaped."""
    from sedis.core.records import short_digest

    cells = [_TABLE_HEADER] + [
        (
            str(row["block"]),
            row["time"],
            row["kind"],
            row["actor"],
            row["publisher"] or "-",
            short_digest(event.digest) if event.digest else "-",
            row["tx_hash"],
            row["change"],
        )
        for event, row in zip(events, rows, strict=True)
    ]
    shown = [[printable(cell) for cell in line] for line in cells]
    widths = [max(len(line[i]) for line in shown) for i in range(len(_TABLE_HEADER) - 1)]
    lines = [
        "  ".join(
            [cell.ljust(width) for cell, width in zip(line, widths, strict=False)] + [line[-1]]
        )
        for line in shown
    ]
    out.write("".join(line.rstrip() + "\n" for line in lines))


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading quote where a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_cell(value: Any) -> str | int:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    text = value if isinstance(value, str) else json.dumps(value)
    return spreadsheet_safe(printable(text))


def _directory() -> AddressBookDirectory:
    from sedis.crypto.contacts import AddressBook, AddressBookDirectory
    from sedis.crypto.identities import IdentityStore

    home = context.settings().home
    return AddressBookDirectory(IdentityStore(home), AddressBook(home))


def _account(
    directory: AddressBookDirectory | None, option: str, who: str | None
) -> Address | None:
    """The account ``who`` names: a local identity, a contact, or a 0x address."""
    from sedis.core.errors import InvalidInputError, NotFoundError

    if who is None or directory is None:
        return None
    try:
        return directory.resolve(who.strip())
    except NotFoundError:
        raise NotFoundError(
            f"{option} {who!r} is not a local identity, a contact or a 0x address"
        ) from None
    except InvalidInputError as exc:
        raise InvalidInputError(f"{option}: {exc}") from None
