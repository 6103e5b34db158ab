"""The audit log for people: event kinds by friendly name, times as auditors write them,
and each event's change in words and as plain values.

Pure: the caller passes ``now`` where a time is relative.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sedis.core.address import Address
from sedis.core.durations import parse_duration
from sedis.core.errors import InvalidInputError
from sedis.core.records import AuditEvent, AuditQuery, Status, short_digest

# Friendly kinds as the command line takes them, and the contract events they stand for.
KINDS: dict[str, str] = {
    "published": "ImagePublished",
    "status": "StatusChanged",
    "grant": "GrantAdded",
    "ungrant": "GrantRevoked",
    "attest": "Attested",
    "unattest": "AttestationRevoked",
    "tag": "TagMoved",
    "keys": "KeysRegistered",
    "usage": "UsageReported",
}
_KIND_OF_EVENT = {event: kind for kind, event in KINDS.items()}
_EVENT_BY_LOWER_NAME = {event.lower(): event for event in KINDS.values()}

# The contract's Status enum, in its declared order: events carry the index.
_STATUS_ORDER = (
    Status.UNKNOWN,
    Status.TRUSTED,
    Status.UNTRUSTED,
    Status.UNSUPPORTED,
    Status.REVOKED,
)
_ZERO_WORD = "0x" + "00" * 32
_WORD = re.compile(r"0x[0-9a-f]{64}")
_UNIX_SECONDS = re.compile(r"\d{1,12}")
_DURATION_LIKE = re.compile(r"\d+[a-z]+", re.IGNORECASE)
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DAY = 86_400


def kind_of(event_name: str) -> str:
    """The friendly kind of a contract event (its own name for one sedis does not know)."""
    return _KIND_OF_EVENT.get(event_name, event_name)


def parse_kinds(texts: Iterable[str]) -> frozenset[str] | None:
    """The event names that ``texts`` (friendly kinds, each or comma-separated) select;
    None when none is given, which means every kind."""
    chosen: set[str] = set()
    for text in texts:
        for word in text.split(","):
            key = word.strip().lower()
            if not key:
                continue
            event = KINDS.get(key) or _EVENT_BY_LOWER_NAME.get(key)
            if event is None:
                raise InvalidInputError(
                    f"unknown event kind {word.strip()!r} (expected one of {', '.join(KINDS)})"
                )
            chosen.add(event)
    return frozenset(chosen) if chosen else None


def parse_time(text: str, now: int, *, label: str = "time", end_of_day: bool = False) -> int:
    """Unix seconds that ``text`` names: an ISO-8601 date or date-time (UTC where it
    gives no offset), Unix seconds, or a duration meaning that long before ``now``.

    A bare date is its first second, or with ``end_of_day`` its last, so that
    ``--until 2026-11-30`` takes in the whole of that day.
    """
    value = text.strip()
    if _UNIX_SECONDS.fullmatch(value):
        return int(value)
    if _DURATION_LIKE.fullmatch(value):
        try:
            return max(0, now - parse_duration(value))
        except InvalidInputError:
            raise InvalidInputError(
                f"invalid duration {text!r} for {label} (use e.g. 90s, 15m, 12h, 7d, 2w)"
            ) from None
    try:
        if _DATE_ONLY.fullmatch(value):
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return int(start.timestamp()) + (_DAY - 1 if end_of_day else 0)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"invalid time {text!r} for {label} (use an ISO-8601 date or date-time, "
            "Unix seconds, or a duration ago such as 7d or 12h)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int(moment.timestamp()))


def iso_time(at: int) -> str:
    """``at`` as an ISO-8601 UTC date-time, to the second: ``2026-12-02T03:59:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def matches(query: AuditQuery, event: AuditEvent) -> bool:
    """Whether ``query`` selects ``event`` (as the ledger's ``audit_log`` filters)."""
    return (
        (query.kinds is None or event.name in query.kinds)
        and (query.publisher is None or event.publisher == query.publisher)
        and (query.digest is None or event.digest == query.digest)
        and (query.actor is None or event.actor == query.actor)
        and (query.since is None or event.at >= query.since)
        and (query.until is None or event.at <= query.until)
    )


def in_chain_order(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """``events`` once each, in the order the chain made them."""
    unique = {(e.block_number, e.log_index): e for e in events}
    return [unique[key] for key in sorted(unique)]


def latest(events: Sequence[AuditEvent], limit: int | None) -> list[AuditEvent]:
    """The last ``limit`` of ``events`` (all of them when ``limit`` is None)."""
    if limit is None or len(events) <= limit:
        return list(events)
    return list(events[len(events) - limit :])


# -- each event as people and programs read it ----------------------------------------------


def details(event: AuditEvent) -> dict[str, Any]:
    """The event's own arguments as plain values, beyond the record it is about.

    Digests read ``sha256:…`` (none is null), statuses by name, kinds as text,
    expiries and revocations of zero as null.
    """
    fields = event.fields
    if event.name == "ImagePublished":
        scan = _mapping(fields.get("scan"))
        return {
            "config_digest": _digest(fields.get("configDigest")),
            "root_cid": fields.get("rootCid"),
            "scan": {
                "critical": scan.get("critical"),
                "high": scan.get("high"),
                "medium": scan.get("medium"),
                "low": scan.get("low"),
                "unknown": scan.get("unknown"),
                "not_scanned": scan.get("notScanned"),
                "report_digest": _digest(scan.get("reportDigest")),
                "report_cid": scan.get("reportCid") or None,
                "vulndb_digest": _digest(scan.get("vulndbDigest")),
            },
        }
    if event.name == "StatusChanged":
        return {
            "status": _status(fields.get("status")),
            "previous": _status(fields.get("previous")),
            "reason": fields.get("reason"),
            "index": fields.get("index"),
        }
    if event.name == "GrantAdded":
        return {
            "recipient": fields.get("recipient"),
            "manifest_cid": fields.get("manifestCid"),
            "manifest_hash": _digest(fields.get("manifestHash")),
            "expires_at": fields.get("expiresAt") or None,
        }
    if event.name == "GrantRevoked":
        return {"recipient": fields.get("recipient")}
    if event.name == "Attested":
        return {
            "attester": fields.get("attester"),
            "kind": _kind_text(fields.get("kind")),
            "payload_hash": _digest(fields.get("payloadHash")),
            "cid": fields.get("cid") or None,
            "index": fields.get("index"),
        }
    if event.name == "AttestationRevoked":
        return {"attester": fields.get("attester"), "index": fields.get("index")}
    if event.name == "TagMoved":
        return {
            "name": fields.get("name"),
            "tag": fields.get("tag"),
            "previous": _digest(fields.get("previous")),
        }
    if event.name == "KeysRegistered":
        return {
            "account": fields.get("account"),
            "encryption_key": fields.get("encryptionKey"),
            "paillier_n": fields.get("paillierN"),
        }
    if event.name == "UsageReported":
        return {
            "reporter": fields.get("reporter"),
            "window_start": fields.get("windowStart"),
            "window_end": fields.get("windowEnd"),
            "cid": fields.get("cid"),
            "blob_hash": _digest(fields.get("blobHash")),
            "index": fields.get("index"),
        }
    return {k: v for k, v in fields.items() if k not in ("publisher", "digest", "at")}


def change(event: AuditEvent, decoded: dict[str, Any] | None = None) -> str:
    """What the event changed, in words: ``status TRUSTED → REVOKED: <reason>``.

    The words quote the ledger as it is; whoever prints them to a terminal
    escapes them. ``decoded`` is the event's ``details`` where the caller has them.
    """
    d = details(event) if decoded is None else decoded
    if event.name == "ImagePublished":
        scan = d["scan"]
        if scan["not_scanned"]:
            found = "not scanned"
        else:
            found = ", ".join(
                f"{severity} {scan[severity]}"
                for severity in ("critical", "high", "medium", "low", "unknown")
            )
        return f"published, root {d['root_cid']} ({found})"
    if event.name == "StatusChanged":
        said = f"status {d['previous']} → {d['status']}"
        return f"{said}: {d['reason']}" if d["reason"] else said
    if event.name == "GrantAdded":
        until = f"expires {iso_time(d['expires_at'])}" if d["expires_at"] else "no expiry"
        return f"grant to {d['recipient']} ({until})"
    if event.name == "GrantRevoked":
        return f"grant to {d['recipient']} revoked"
    if event.name == "Attested":
        return f"attest {d['kind']} #{d['index']}"
    if event.name == "AttestationRevoked":
        return f"attestation #{d['index']} revoked"
    if event.name == "TagMoved":
        moved = f"tag {d['name']}:{d['tag']} → {_short(event.digest)}"
        return f"{moved} (was {_short(d['previous'])})" if d["previous"] else moved
    if event.name == "KeysRegistered":
        return f"keys registered for {d['account']}"
    if event.name == "UsageReported":
        window = f"{iso_time(d['window_start'])} to {iso_time(d['window_end'])}"
        return f"usage report #{d['index']} for {window}"
    return event.name


def as_row(event: AuditEvent) -> dict[str, Any]:
    """The event as one flat object with stable keys (JSON lines, CSV and ``-o json``)."""
    decoded = details(event)
    return {
        "block": event.block_number,
        "log_index": event.log_index,
        "tx_hash": event.tx_hash,
        "time": iso_time(event.at),
        "at": event.at,
        "actor": _account(event.actor),
        "kind": kind_of(event.name),
        "event": event.name,
        "publisher": _account(event.publisher),
        "digest": event.digest,
        "change": change(event, decoded),
        "details": decoded,
    }


def _account(address: Address | None) -> str | None:
    return None if address is None else str(address)


def _mapping(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _digest(value: object) -> str | None:
    """A bytes32 argument that holds a sha256 digest, as ``sha256:…``; zero is none."""
    if not isinstance(value, str) or value == _ZERO_WORD:
        return None
    text = value.lower()
    return "sha256:" + text[2:] if _WORD.fullmatch(text) else value


def _status(value: object) -> str | None:
    if isinstance(value, int) and 0 <= value < len(_STATUS_ORDER):
        return _STATUS_ORDER[value].value
    return None if value is None else str(value)


def _kind_text(value: object) -> str | None:
    if not isinstance(value, str) or not value.startswith("0x"):
        return None if value is None else str(value)
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        return value
    return raw.rstrip(b"\0").decode("utf-8", "replace")


def _short(digest: str | None) -> str:
    return short_digest(digest) if digest else "-"
