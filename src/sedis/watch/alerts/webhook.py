"""Alerts as one JSON document POSTed to any HTTP receiver.

The document (``text.alert_document``) names the host, the container and
what it runs, its state and the one before, the reason, who changed the
ledger, in which block and transaction, and for an enforcement action what
was done. Every text field is one printable line, and the document is ASCII
JSON, so a reason from the ledger can neither break the document nor add to
it.
"""

from __future__ import annotations

from collections.abc import Mapping

from sedis.core.errors import ConfigError
from sedis.watch.alerts.base import Alert
from sedis.watch.alerts.posting import http_client, origin, post_json
from sedis.watch.alerts.text import alert_document, http_url


class WebhookChannel:
    def __init__(
        self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 5.0
    ) -> None:
        self._url = http_url(url, "webhook")
        self._label = f"the webhook at {origin(self._url)}"
        for key, value in (headers or {}).items():
            if not _header_safe(key) or not _header_safe(value):
                raise ConfigError(f"the webhook header {key[:64]!r} has a character no header may")
        self._client = http_client(timeout, headers)

    @property
    def name(self) -> str:
        return "webhook"

    def send(self, alert: Alert) -> None:
        post_json(self._client, self._url, alert_document(alert), self._label)

    def close(self) -> None:
        self._client.close()


def _header_safe(text: str) -> bool:
    return bool(text) and all(" " <= c <= "~" for c in text)
