"""One JSON document POSTed to a receiver, and its answer read no further than a limit."""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from sedis.core.errors import UnavailableError
from sedis.replies import IDENTITY, printable, read_courtesy

# A receiver's answer matters only for its status; its body only explains a refusal.
_MAX_REPLY = 4096


def http_client(timeout: float, headers: Mapping[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        headers={**IDENTITY, **(headers or {})},
        trust_env=False,
    )


def post_json(client: httpx.Client, url: str, document: object, label: str) -> None:
    """POST ``document`` as JSON to ``url``; UnavailableError (opening with ``label``,
    which names the receiver) unless the receiver answers 2xx."""
    body = json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode()
    try:
        with client.stream(
            "POST", url, content=body, headers={"Content-Type": "application/json"}
        ) as response:
            if 200 <= response.status_code < 300:
                read_courtesy(response, _MAX_REPLY)
                return
            detail = read_courtesy(response, _MAX_REPLY)
    except httpx.HTTPError as exc:
        raise UnavailableError(
            f"{label} is unreachable: {type(exc).__name__}: {printable(str(exc))}"
        ) from None
    said = printable((detail or b"").decode("utf-8", "replace"))
    raise UnavailableError(
        f"{label} refused the alert: HTTP {response.status_code}" + (f": {said}" if said else "")
    )


def origin(url: str) -> str:
    """Where ``url`` points, without its path or query: those may carry a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
