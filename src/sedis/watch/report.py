"""ServerReporter: the watchdog's verdicts pushed to a ``sedis serve``.

Each report is the host's whole table, ``POST {url}/api/v1/watch/report`` with
``{"host": ..., "containers": [verdict documents]}`` and ``Authorization:
Bearer TOKEN``; the server keeps the latest report of each host. A report goes
out after each full pass, and after a change of any verdict (changes coalesced,
at most one report a ``min_interval``).

``update`` never waits for the server: the report waits in a bounded queue
(of one, by default), and when the server is away the oldest reports are
dropped (and counted), since a newer one says all they said. A thread of the reporter's own sends
them, and retries on a connection error, a timeout, a 5xx or a 429 with
backoff doubling up to ``backoff_max``. A 401 or 403 (a dead token, a role
too low) and any other 4xx refuse the report: it is dropped, and the next
one waits for the backoff, so a refusal is not retried hot. Each failed
attempt is one escaped log line, without the token; a refusal is logged
again only when its reason changes. On a 401 the token is read again from
its source (``renew``), and a new one there (a ``sedis login`` since) is used
at once.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from sedis.core.containers import ContainerVerdict
from sedis.core.errors import ConfigError, SedisError
from sedis.replies import IDENTITY, printable, read_courtesy
from sedis.watch.config import parse_server_url
from sedis.watch.watchdog import verdict_document

_log = logging.getLogger("sedis.watch.report")
_log.addHandler(logging.NullHandler())

REPORT_PATH = "/api/v1/watch/report"
_BACKOFF_INITIAL = 0.5
_ERROR_BODY = 4096
_ERROR_MESSAGE = 300  # characters of the server's reason in a log line


@dataclass(frozen=True, slots=True)
class _Report:
    body: bytes
    containers: int
    urgent: bool  # after a full pass: sent at once, not held for the coalescing interval


class ServerReporter:
    """Verdicts to a ``sedis serve``, never blocking the caller; see the module's docstring."""

    def __init__(
        self,
        url: str,
        token: str,
        host: str,
        *,
        ca_file: Path | None = None,
        buffer: int = 1,
        timeout: float = 10.0,
        min_interval: float = 1.0,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        renew: Callable[[], str] | None = None,
    ) -> None:
        base = parse_server_url(url)
        if not _usable(token):
            raise ConfigError("the server token must be one word of printable text")
        if not host:
            raise ConfigError("a report to the server names its host")
        if buffer < 1:
            raise ConfigError(f"the report queue must hold at least one report, not {buffer}")
        if timeout <= 0 or backoff_max <= 0 or min_interval < 0:
            raise ConfigError("the report timeout and backoff must be positive")
        self.url = base
        self.host = host
        if not base.startswith("https://") and not _loopback(base):
            _log.warning(
                "reporting to %s over plain HTTP: the token crosses the network unencrypted; "
                "use https://",
                base,
            )
        self._endpoint = base + REPORT_PATH
        self._buffer = buffer
        self._min_interval = min_interval
        self._token = token
        self._renew = renew
        self._backoff_max = backoff_max
        self._clock = clock
        self._client = httpx.Client(
            timeout=timeout,
            verify=_verify(ca_file),
            follow_redirects=False,
            headers={
                **IDENTITY,
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            },
        )
        self._queue: deque[_Report] = deque()
        self._inflight: _Report | None = None
        self._last_seen: list[dict[str, Any]] | None = None  # the table as last given
        self._not_before = 0.0  # no attempt before this (clock): coalescing, backoff
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closing = False
        self._sent = 0
        self._dropped = 0
        self._refused = 0
        self._last_error: str | None = None
        self._logged_refusal: str | None = None
        self._thread = threading.Thread(target=self._run, name="sedis-report", daemon=True)
        self._thread.start()

    # -- the caller's side: never waits on the network

    def update(self, verdicts: Sequence[ContainerVerdict], *, whole_pass: bool = False) -> None:
        """The host's whole table now: reported at once after a full pass (``whole_pass``),
        else only when some verdict says something else than before, coalesced."""
        documents = [verdict_document(v) for v in verdicts]
        said = [_what_it_says(d) for d in documents]
        with self._lock:
            if self._closing:
                return
            if not whole_pass and said == self._last_seen:
                return
            self._last_seen = said
            body = json.dumps(
                {"host": self.host, "containers": documents}, separators=(",", ":")
            ).encode()
            report = _Report(body, len(documents), whole_pass)
            if self._queue and not whole_pass:
                # Held for the coalescing interval: the newer table takes its place.
                urgent = self._queue[-1].urgent
                self._queue.pop()
                self._dropped += 1
                report = _Report(body, len(documents), urgent)
            self._queue.append(report)
            while len(self._queue) > self._buffer:
                self._queue.popleft()
                self._dropped += 1
            self._changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued report is sent (or refused), trying at once; False if
        ``timeout`` passed first, or the next try after a failure would come after it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            due_by = self._clock() + timeout
            if self._queue:
                self._not_before = min(self._not_before, self._clock())
                self._changed.notify_all()
            while self._queue or self._inflight is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                failed = self._inflight is None and self._last_error is not None
                if failed and self._not_before > due_by:
                    return False
                self._changed.wait(left)
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued for up to ``timeout`` seconds, then stop."""
        self.flush(timeout)
        with self._lock:
            self._closing = True
            left = len(self._queue)
            self._dropped += left
            self._queue.clear()
            self._changed.notify_all()
        if left:
            _log.warning("reporting to %s: %d reports dropped at close", self.url, left)
        self._thread.join(self._client.timeout.read or 5.0)
        self._client.close()

    @property
    def sent(self) -> int:
        """Reports the server accepted."""
        with self._lock:
            return self._sent

    @property
    def dropped(self) -> int:
        """Reports never sent: superseded by a newer one, refused, or left at close."""
        with self._lock:
            return self._dropped

    @property
    def refused(self) -> int:
        with self._lock:
            return self._refused

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + (self._inflight is not None)

    @property
    def last_error(self) -> str | None:
        """Why the last attempt failed, until one succeeds."""
        with self._lock:
            return self._last_error

    def __enter__(self) -> ServerReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the sender's side

    def _run(self) -> None:
        backoff = _BACKOFF_INITIAL
        while True:
            with self._lock:
                report = self._next()
                if report is None:
                    return
            try:
                outcome, detail, wait = self._send(report)
            except Exception as exc:  # the sender must outlive any one surprise
                _log.exception("reporting to %s failed", self.url)
                outcome, detail, wait = "retry", f"sending failed: {type(exc).__name__}", None
            log_refusal = False
            with self._lock:
                self._inflight = None
                if outcome == "sent":
                    self._sent += 1
                    recovered = self._last_error is not None
                    self._last_error = None
                    self._logged_refusal = None
                    backoff = _BACKOFF_INITIAL
                    self._not_before = self._clock() + self._min_interval
                else:
                    recovered = False
                    self._last_error = detail
                    # The server's Retry-After may ask for more than the backoff, never less.
                    delay = min(self._backoff_max, max(backoff, wait or 0.0))
                    delay = max(delay, self._min_interval)
                    backoff = min(self._backoff_max, backoff * 2)
                    self._not_before = self._clock() + delay
                    if outcome == "refused":
                        self._refused += 1
                        self._dropped += 1
                        log_refusal = detail != self._logged_refusal
                        self._logged_refusal = detail
                    elif not self._queue:
                        self._queue.append(report)  # nothing newer to send in its place
                    else:
                        self._dropped += 1
                self._changed.notify_all()
            if recovered:
                _log.info("reporting to %s again", self.url)
            if outcome == "refused" and log_refusal:
                _log.error(
                    "%s refused the report of %d containers: %s",
                    self.url,
                    report.containers,
                    detail,
                )
            elif outcome == "retry":
                _log.warning("reporting to %s: %s; again in %.1f s", self.url, detail, delay)

    def _next(self) -> _Report | None:
        """The report to send now, once it is due; None when closing (lock held)."""
        while True:
            if self._closing:
                return None
            if self._queue:
                now = self._clock()
                # A pass's report goes at once, unless the last attempt failed: then it
                # too waits for the backoff.
                urgent = self._queue[0].urgent and self._last_error is None
                left = 0.0 if urgent else self._not_before - now
                if left <= 0:
                    self._inflight = self._queue.popleft()
                    return self._inflight
                self._changed.wait(left)
            else:
                self._changed.wait()

    def _send(self, report: _Report) -> tuple[str, str, float | None]:
        """("sent" | "refused" | "retry", why, the server's Retry-After if any)."""
        try:
            request = self._client.build_request("POST", self._endpoint, content=report.body)
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException:
            return "retry", "timed out", None
        except httpx.HTTPError as exc:
            return "retry", f"unreachable: {printable(str(exc)) or type(exc).__name__}", None
        status = response.status_code
        body = read_courtesy(response, _ERROR_BODY) or b""
        if 200 <= status < 300:
            return "sent", "", None
        why = f"HTTP {status}" + (f": {words}" if (words := _reason(body)) else "")
        if status == 429 or status >= 500:
            return "retry", why, _retry_after(response.headers.get("Retry-After", ""))
        if status == 401 and self._renewed():
            return "retry", why + "; a new token is read", None
        return "refused", why, None

    def _renewed(self) -> bool:
        """Whether the token source holds another token now (a ``sedis login`` since, say);
        if so it is used from now on."""
        if self._renew is None:
            return False
        try:
            token = self._renew()
        except SedisError as exc:
            _log.debug("reading the token for %s again: %s", self.url, exc)
            return False
        if token == self._token or not _usable(token):
            return False
        self._token = token
        self._client.headers["Authorization"] = f"Bearer {token}"
        return True


def _what_it_says(document: dict[str, Any]) -> dict[str, Any]:
    """A verdict document without when it was made."""
    return {k: v for k, v in document.items() if k not in ("judged_at", "block")}


def _reason(body: bytes) -> str:
    """The server's own message (``{"errors":[{"message"}]}``), else its text; control
    characters blanked, cut short."""
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        pass
    else:
        text = ""
        try:
            message = document["errors"][0]["message"]
        except (LookupError, TypeError):
            message = None
        if isinstance(message, str):
            text = message
    return printable(" ".join(text.split()), _ERROR_MESSAGE)


def _retry_after(value: str) -> float | None:
    value = value.strip()
    return float(value) if value.isdigit() else None


def _usable(token: str) -> bool:
    return bool(token) and not any(c.isspace() or not c.isprintable() for c in token)


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"the CA file {ca_file} is not a readable PEM certificate: {exc}"
        ) from None
