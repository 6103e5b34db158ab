"""An alert's fields as text that every channel can carry safely.

Reasons come from the ledger and names from the container engine: either may
hold line breaks, control characters or bidirectional overrides, and either
may be long. Each field is made one printable line of bounded length before
it reaches a header, a JSON document or a mail body, so nobody who writes to
the ledger can add a header to a mail or a field to a report.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from sedis.core.errors import ConfigError
from sedis.watch.alerts.base import Alert

# Long enough for any reason the ledger gives, short enough for a subject or a label.
MAX_FIELD = 1000
MAX_SUMMARY = 200


def one_line(text: str, limit: int = MAX_FIELD) -> str:
    """``text`` as one printable line: every control or invisible character a space,
    runs of them one space, cut at ``limit`` characters with an ellipsis."""
    cleaned = "".join(c if c.isprintable() else " " for c in text[: limit + 1])
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def rfc3339(at: float) -> str:
    """Unix seconds as an RFC 3339 time in UTC, to the millisecond."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_document(alert: Alert) -> dict[str, object]:
    """The alert as the JSON webhook sends it, and as a mail body lists it."""
    return {
        "kind": alert.kind.value,
        "host": one_line(alert.host),
        "container": one_line(alert.container),
        "container_id": one_line(alert.container_id),
        "image": one_line(alert.image),
        "image_id": one_line(alert.image_id),
        "digest": None if alert.digest is None else one_line(alert.digest),
        "status": one_line(alert.status),
        "previous_status": None if alert.previous is None else one_line(alert.previous),
        "reason": one_line(alert.reason),
        "set_by": None if alert.set_by is None else alert.set_by.checksummed,
        "block": alert.block,
        "transaction": None if alert.tx_hash is None else one_line(alert.tx_hash),
        "action": None if alert.action is None else one_line(alert.action),
        "dry_run": alert.dry_run,
        "at": rfc3339(alert.at),
        "summary": one_line(alert.summary, MAX_SUMMARY),
    }


def http_url(url: str, what: str) -> str:
    """``url`` without a trailing slash, once it is an http(s) URL with a host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the {what} URL {one_line(url, 200)!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ConfigError(f"the {what} URL must not carry credentials; give them as headers")
    return url.strip().rstrip("/")
