"""InfluxSink: the watchdog's verdicts as InfluxDB points, buffered and retried.

Each verdict becomes one point of the measurement ``sedis_verification``,
tagged host, container, image, image_digest and status, with the fields
``failed`` (1 for a state that is not allowed to run, else 0) and
``ledger_block`` (the block it was judged at, where known).

Two write forms:

- InfluxDB 1.x: ``POST {url}/write?db=DATABASE&precision=ns`` (a ``token``, if
  given, goes in ``Authorization: Token …``, which 1.8 and later accept);
- InfluxDB 2.x: ``POST {url}/api/v2/write?org=ORG&bucket=BUCKET&precision=ns``
  with ``Authorization: Token TOKEN``.

``write`` never waits for InfluxDB: points go to a bounded buffer, and when it
is full the oldest points are dropped (and counted). A thread of the sink's
own sends them in batches, in order, and retries a batch on a connection
error, a timeout, a 5xx or a 429, with backoff doubling up to
``backoff_max``; an outage of InfluxDB loses nothing that fits in the buffer.
Any other 4xx means the batch itself is refused: it is logged, dropped and
counted as rejected, and the points after it go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from urllib.parse import urlencode, urlsplit

import httpx

from sedis.core.containers import ContainerVerdict
from sedis.core.errors import ConfigError
from sedis.replies import IDENTITY, printable, read_courtesy

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())

MEASUREMENT = "sedis_verification"

_BATCH = 5000  # points per request: InfluxDB's own advice for a batch
_BACKOFF_INITIAL = 0.5
_ERROR_BODY = 4096

# Line protocol escapes these in tag keys and values with a backslash.
_TAG_SPECIAL = frozenset(", =")
# InfluxDB reads a backslash before any of these as an escape, so a literal one
# there (or at the end of a value, before the separator) cannot be written.
_AFTER_BACKSLASH = frozenset(', ="')
_UNREPRESENTABLE = "\ufffd"
# Names and references come from the engine: a point stays small whatever it reports.
TAG_LIMIT = 1024


def escape_tag(text: str) -> str:
    """``text`` as a line-protocol tag key or value.

    Commas, equals signs and spaces are escaped. Line protocol has no escape for
    a line break, nor (as InfluxDB reads it) for a backslash before an escaped
    character or at the end of a value: those, and every other control
    character, become U+FFFD. Any other backslash is kept as it is.
    """
    out: list[str] = []
    last = len(text) - 1
    for i, char in enumerate(text):
        control = not char.isprintable() and char != " "
        stranded = char == "\\" and (i == last or text[i + 1] in _AFTER_BACKSLASH)
        if control or stranded:
            out.append(_UNREPRESENTABLE)
        elif char in _TAG_SPECIAL:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def point(verdict: ContainerVerdict, at: float) -> str:
    """One verdict as a line of line protocol, at ``at`` (Unix seconds); a tag value
    longer than ``TAG_LIMIT`` characters is cut short, ending in an ellipsis."""
    tags = (
        ("container", verdict.container),
        ("host", verdict.host),
        ("image", verdict.image),
        ("image_digest", verdict.image_id),
        ("status", verdict.state.value),
    )
    # A tag with an empty value is not valid line protocol: it is left out.
    tag_text = "".join(f",{key}={escape_tag(_cut(value))}" for key, value in tags if value)
    fields = f"failed={1 if verdict.failed else 0}i"
    if verdict.block is not None:
        fields += f",ledger_block={int(verdict.block)}i"
    return f"{MEASUREMENT}{tag_text} {fields} {_nanoseconds(at)}"


def _cut(text: str) -> str:
    return text if len(text) <= TAG_LIMIT else text[: TAG_LIMIT - 1] + "\u2026"


def _nanoseconds(at: float) -> int:
    whole = int(at)
    return whole * 1_000_000_000 + round((at - whole) * 1_000_000_000)


class InfluxSink:
    """Verdicts to InfluxDB, never blocking the caller; see the module's docstring."""

    def __init__(
        self,
        url: str,
        *,
        database: str | None = None,
        token: str | None = None,
        org: str | None = None,
        bucket: str | None = None,
        buffer: int = 10_000,
        timeout: float = 5.0,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.time,
        batch: int = _BATCH,
    ) -> None:
        self._endpoint, self._headers = _write_endpoint(url, database, token, org, bucket)
        if buffer < 1:
            raise ConfigError(f"the InfluxDB buffer must hold at least one point, not {buffer}")
        if timeout <= 0 or backoff_max <= 0:
            raise ConfigError("the InfluxDB timeout and backoff must be positive")
        self.url = url.rstrip("/")
        self._buffer_size = buffer
        self._batch = max(1, min(batch, buffer))
        self._backoff_max = backoff_max
        self._clock = clock
        self._client = httpx.Client(timeout=timeout, headers={**IDENTITY, **self._headers})
        self._queue: deque[str] = deque()
        self._inflight: list[str] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closing = False
        self._dropped = 0
        self._rejected = 0
        self._written = 0
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="sedis-influx", daemon=True)
        self._thread.start()

    # -- the caller's side: never waits on the network

    def write(self, verdicts: Sequence[ContainerVerdict], at: float | None = None) -> None:
        """Queue one point per verdict, at ``at`` (Unix seconds; now when not given)."""
        when = self._clock() if at is None else at
        lines = [point(v, when) for v in verdicts]
        if not lines:
            return
        with self._lock:
            if self._closing:
                self._dropped += len(lines)
                return
            self._queue.extend(lines)
            overflow = len(self._queue) - self._buffer_size
            for _ in range(max(0, overflow)):
                self._queue.popleft()
            self._dropped += max(0, overflow)
            self._changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued point is sent (or refused); False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queue or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._changed.wait(left)
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued for up to ``timeout`` seconds, then stop; what is left is dropped."""
        self.flush(timeout)
        with self._lock:
            self._closing = True
            left = len(self._queue)
            self._dropped += left
            self._queue.clear()
            self._changed.notify_all()
        if left:
            _log.warning("InfluxDB at %s: %d points dropped at close", self.url, left)
        self._thread.join(self._client.timeout.read or 5.0)
        self._client.close()

    @property
    def pending(self) -> int:
        """Points not yet accepted by InfluxDB: queued, and in the batch being sent."""
        with self._lock:
            return len(self._queue) + len(self._inflight)

    @property
    def dropped(self) -> int:
        """Points that will never be written: pushed out of a full buffer, refused by
        InfluxDB (also counted in ``rejected``), or left at close."""
        with self._lock:
            return self._dropped

    @property
    def rejected(self) -> int:
        with self._lock:
            return self._rejected

    @property
    def written(self) -> int:
        """Points InfluxDB accepted."""
        with self._lock:
            return self._written

    @property
    def last_error(self) -> str | None:
        """Why the last attempt failed, until one succeeds."""
        with self._lock:
            return self._last_error

    def __enter__(self) -> InfluxSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the sender's side

    def _run(self) -> None:
        backoff = _BACKOFF_INITIAL
        while True:
            with self._lock:
                while not self._queue and not self._inflight and not self._closing:
                    self._changed.wait()
                if self._closing:
                    # What close() could not send in its time is dropped, and counted.
                    self._dropped += len(self._inflight)
                    self._inflight = []
                    self._changed.notify_all()
                    return
                if not self._inflight:
                    count = min(self._batch, len(self._queue))
                    self._inflight = [self._queue.popleft() for _ in range(count)]
                batch = self._inflight
            try:
                outcome, detail, wait = self._send(batch)
            except Exception as exc:  # the sender must outlive any one surprise
                _log.exception("InfluxDB at %s: sending failed", self.url)
                outcome, detail, wait = "retry", f"sending failed: {type(exc).__name__}", None
            with self._lock:
                if outcome == "written":
                    self._written += len(batch)
                    self._last_error = None
                elif outcome == "rejected":
                    self._rejected += len(batch)
                    self._dropped += len(batch)
                    self._last_error = detail
                else:
                    self._last_error = detail
                if outcome != "retry":
                    self._inflight = []
                    backoff = _BACKOFF_INITIAL
                self._changed.notify_all()
            if outcome == "rejected":
                _log.error(
                    "InfluxDB at %s refused %d points, dropped: %s", self.url, len(batch), detail
                )
            if outcome == "retry":
                delay = min(self._backoff_max, wait if wait is not None else backoff)
                _log.warning("InfluxDB at %s: %s; retrying in %.1f s", self.url, detail, delay)
                backoff = min(self._backoff_max, backoff * 2)
                with self._lock:
                    self._changed.wait_for(lambda: self._closing, delay)

    def _send(self, batch: Sequence[str]) -> tuple[str, str, float | None]:
        """("written" | "rejected" | "retry", why, the server's Retry-After if any)."""
        body = ("\n".join(batch) + "\n").encode()
        try:
            request = self._client.build_request(
                "POST",
                self._endpoint,
                content=body,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException:
            return "retry", "timed out", None
        except httpx.HTTPError as exc:
            return "retry", f"unreachable: {printable(str(exc)) or type(exc).__name__}", None
        status = response.status_code
        detail = read_courtesy(response, _ERROR_BODY)
        if 200 <= status < 300:
            return "written", "", None
        words = printable(detail.decode("utf-8", "replace")) if detail else ""
        why = f"HTTP {status}" + (f": {words}" if words else "")
        if status == 429 or status >= 500:
            return "retry", why, _retry_after(response.headers.get("Retry-After", ""))
        return "rejected", why, None


def _retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    return None


def _write_endpoint(
    url: str,
    database: str | None,
    token: str | None,
    org: str | None,
    bucket: str | None,
) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the InfluxDB URL {url!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"the InfluxDB URL {url!r} has a query or fragment; give the base URL")
    base = url.rstrip("/")
    headers = {"Authorization": f"Token {token}"} if token else {}
    if bucket or org:
        if database:
            raise ConfigError("give InfluxDB either a database (1.x) or an org and bucket (2.x)")
        if not (bucket and org and token):
            raise ConfigError("InfluxDB 2.x needs an org, a bucket and a token")
        query = urlencode({"org": org, "bucket": bucket, "precision": "ns"})
        return f"{base}/api/v2/write?{query}", headers
    if not database:
        raise ConfigError("InfluxDB needs a database (1.x) or an org and bucket (2.x)")
    return f"{base}/write?{urlencode({'db': database, 'precision': 'ns'})}", headers
