"""The watchdog's configuration: a TOML file, defaults, and the flags that override it.

Every refusal is one InvalidInputError line naming the file, the line and the
key (``watch.toml:12: key 'grace': ...``). The file is bounded (1 MiB, and a
bounded number of exemptions and alert targets), so reading it is linear in
its size. Secrets are never values in the file: a token or a password is
named by the environment variable or the file that holds it.

    engine = "unix:///run/podman/podman.sock"   # default: DOCKER_HOST, else docker's
    node = "edge-1"             # this host's identity: withdrawn grants are NOT_GRANTED
    policy = "policy.toml"      # relative to this file
    interval = "60s"            # full passes; poll = "500ms" for the ledger's blocks
    listen = "127.0.0.1:9464"   # /metrics and /healthz ("off": none)

    [enforce]                   # opt-in; ERROR only if listed in states
    action = "stop"             # or "kill"
    states = ["UNTRUSTED", "REVOKED", "NOT_GRANTED"]
    grace = "30s"
    dry_run = true

    [[exempt]]                  # every field given must match
    reason = "the on-call debug shell"
    containers = ["debug-*"]    # also images, image_ids, labels = ["team=sre*"]

    [influxdb]                  # 1.x: database; 2.x: org, bucket, token_env/token_file
    url = "http://127.0.0.1:8086"
    database = "sedis"

    [alerts]
    reminder = "6h"
    ledger_unreachable_after = "30s"
    [[alerts.alertmanager]]
    url = "http://127.0.0.1:9093"
    [[alerts.webhook]]
    url = "https://hooks.example/sedis"
    headers = { "X-Team" = "sre" }
    [[alerts.email]]
    host = "smtp.example"
    port = 587
    from = "sedis@example.org"
    to = ["ops@example.org"]
    username = "sedis"
    password_env = "SEDIS_SMTP_PASSWORD"

    [report]                    # push the verdicts to a sedis serve
    url = "https://sedis.example.org:8480"
    token_file = "/run/secrets/sedis-token"   # or token_env; default: what sedis login saved
    ca_file = "/etc/sedis/ca.pem"             # a private CA for its TLS certificate
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sedis.core.containers import ContainerState, Exemption
from sedis.core.errors import ConfigError, InvalidInputError
from sedis.core.tomltext import KEY, shown, syntax_error, unquote
from sedis.fsutil import read_config_text

DEFAULT_ENGINE = "unix:///var/run/docker.sock"
DEFAULT_LISTEN = ("127.0.0.1", 9464)
DEFAULT_ENFORCED = frozenset(
    {ContainerState.UNTRUSTED, ContainerState.REVOKED, ContainerState.NOT_GRANTED}
)
ACTIONS = ("stop", "kill")
MAX_CONFIG_BYTES = 1 << 20
MAX_EXEMPTIONS = 1000
MAX_TARGETS = 32  # of each kind of alert channel
_MAX_SECRET_BYTES = 64 * 1024
# The longest any duration here may be: a week covers every sensible interval.
_MAX_SECONDS = 7 * 86400

_DURATION = re.compile(r"^(\d{1,9}(?:\.\d{1,6})?)(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_ENGINE = re.compile(r"^(unix://|tcp://|http://|https://)\S+$")
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_TABLE = re.compile(r"\s*(\[\[?)\s*([A-Za-z0-9_.\s-]*?)\s*\]\]?\s*(?:#.*)?$")


@dataclass(frozen=True, slots=True)
class EnforceConfig:
    """What the watchdog does to a container in an enforced state (``action`` None: nothing)."""

    action: str | None = None  # stop, kill
    states: frozenset[ContainerState] = DEFAULT_ENFORCED
    grace: float = 30.0  # seconds in an enforced state before acting
    dry_run: bool = False
    stop_timeout: int = 10  # seconds between SIGTERM and SIGKILL for stop


@dataclass(frozen=True, slots=True)
class InfluxConfig:
    url: str
    database: str | None = None  # InfluxDB 1.x
    org: str | None = None  # InfluxDB 2.x, with bucket and a token
    bucket: str | None = None
    token_env: str | None = None
    token_file: Path | None = None
    buffer: int = 10_000


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """Where the watchdog pushes its verdicts: a ``sedis serve``, with a bearer token."""

    url: str
    token_env: str | None = None
    token_file: Path | None = None
    ca_file: Path | None = None


@dataclass(frozen=True, slots=True)
class AlertmanagerTarget:
    url: str


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class EmailTarget:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    starttls: bool = True


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    reminder: float | None = None  # seconds; None: no reminders
    ledger_unreachable_after: float = 30.0
    alertmanager: tuple[AlertmanagerTarget, ...] = ()
    webhook: tuple[WebhookTarget, ...] = ()
    email: tuple[EmailTarget, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.alertmanager or self.webhook or self.email)


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """Everything ``sedis watch`` runs by (see the module's docstring)."""

    engine: str = DEFAULT_ENGINE
    host: str | None = None  # None: the name the engine reports
    node: str | None = None  # an address or an identity's name
    policy: Path | None = None
    interval: float = 60.0
    poll: float = 0.5
    lookup_timeout: float = 5.0  # one container's ledger lookup, within a pass
    listen: tuple[str, int] | None = DEFAULT_LISTEN
    enforce: EnforceConfig = field(default_factory=EnforceConfig)
    exemptions: tuple[Exemption, ...] = ()
    influxdb: InfluxConfig | None = None
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    report: ReportConfig | None = None
    source: str = "the defaults"


def default_config(env: Mapping[str, str] | None = None) -> WatchConfig:
    """The configuration with no file: DOCKER_HOST's engine where it is set."""
    return WatchConfig(engine=_default_engine(os.environ if env is None else env))


def load_watch_config(path: Path, env: Mapping[str, str] | None = None) -> WatchConfig:
    """The configuration in the file at ``path`` (one line naming it when it cannot be read)."""
    text = read_config_text(path, "watch", MAX_CONFIG_BYTES)
    return parse_watch_config(text, str(path), env, base=path.parent)


def parse_watch_config(
    text: str,
    source: str,
    env: Mapping[str, str] | None = None,
    *,
    base: Path | None = None,
) -> WatchConfig:
    """The configuration that ``text`` (TOML from ``source``) writes; relative paths in it
    are taken from ``base`` (the file's directory)."""
    if len(text) > MAX_CONFIG_BYTES:
        raise InvalidInputError(f"{source}: larger than 1 MiB, which no watch configuration needs")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise syntax_error(source, text, str(error)) from None
    except RecursionError:
        raise InvalidInputError(
            f"{source}: nested too deeply to be a watch configuration"
        ) from None
    reader = _Reader(source, _KeyLines.scan(text), base)
    return reader.config(data, os.environ if env is None else env)


def parse_duration(text: str, *, what: str = "duration", zero: bool = False) -> float:
    """Seconds in ``text``: ``500ms``, ``0.5s``, ``30s``, ``5m``, ``6h``, ``1d``, ``1w``."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise InvalidInputError(f"invalid {what} {text[:40]!r} (use e.g. 500ms, 30s, 5m, 6h, 1d)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds == 0 and not zero:
        raise InvalidInputError(f"invalid {what} {text[:40]!r}: it must be more than zero")
    if seconds > _MAX_SECONDS:
        raise InvalidInputError(f"invalid {what} {text[:40]!r}: at most a week")
    return seconds


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6; an empty host is every address)."""
    match = _HOST_PORT.match(text.strip())
    if match is None or not 0 <= int(match.group(2)) <= 65535:
        raise InvalidInputError(f"invalid listen address {text[:80]!r} (use HOST:PORT)")
    return match.group(1).strip("[]"), int(match.group(2))


def parse_engine(text: str) -> str:
    if not _ENGINE.match(text.strip()):
        raise InvalidInputError(
            f"invalid engine endpoint {text[:80]!r} (use unix:///PATH, tcp://HOST:PORT "
            "or http://HOST:PORT)"
        )
    return text.strip()


def parse_server_url(text: str) -> str:
    """A ``sedis serve`` base URL: http(s)://HOST[:PORT][/PATH], with no user, query or
    fragment (a token goes in a header, never in the URL)."""
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - a port that is no number fails here
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or not text.strip().isprintable()
        or any(c.isspace() for c in text.strip())
    ):
        raise InvalidInputError(f"invalid server URL {text[:80]!r} (use http(s)://HOST:PORT)")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise InvalidInputError(
            f"invalid server URL {text[:80]!r}: no user, query or fragment in it"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def read_secret(env_name: str | None, path: Path | None, what: str) -> str | None:
    """A secret from the environment variable or the file that holds it; None if neither
    is named. Its value never reaches a message."""
    if env_name is not None:
        value = os.environ.get(env_name)
        if not value:
            raise ConfigError(f"the {what} is to come from ${env_name}, which is not set")
        return value
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} from {path}: {exc.strerror}") from None
    if len(raw) > _MAX_SECRET_BYTES:
        raise ConfigError(f"the {what} file {path} is larger than 64 KiB")
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} file {path} is not UTF-8 text") from None
    if not value:
        raise ConfigError(f"the {what} file {path} is empty")
    return value


def _default_engine(env: Mapping[str, str]) -> str:
    docker_host = env.get("DOCKER_HOST", "").strip()
    return docker_host or DEFAULT_ENGINE


# -- reading the file ---------------------------------------------------------------------

_TOP_KEYS = {
    "engine",
    "host",
    "node",
    "policy",
    "interval",
    "poll",
    "lookup_timeout",
    "listen",
    "enforce",
    "exempt",
    "influxdb",
    "alerts",
    "report",
}
_ENFORCE_KEYS = {"action", "states", "grace", "dry_run", "stop_timeout"}
_EXEMPT_KEYS = {"reason", "containers", "images", "image_ids", "labels"}
_INFLUX_KEYS = {"url", "database", "org", "bucket", "token_env", "token_file", "buffer"}
_REPORT_KEYS = {"url", "token_env", "token_file", "ca_file"}
_ALERT_KEYS = {"reminder", "ledger_unreachable_after", "alertmanager", "webhook", "email"}
_ALERTMANAGER_KEYS = {"url"}
_WEBHOOK_KEYS = {"url", "headers"}
_EMAIL_KEYS = {
    "host",
    "port",
    "from",
    "to",
    "username",
    "password_env",
    "password_file",
    "starttls",
}
_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_URL = re.compile(r"^https?://[^\s/?#]+(?:[/?#]\S*)?$")
_ADDRESSEE = re.compile(r"^[^\s<>()\[\],;:\\\"@]+@[^\s<>()\[\],;:\\\"@]+$")


@dataclass(slots=True)
class _KeyLines:
    """Where each table starts and each key is first written, found by a scan of the text
    (tomllib gives values without lines). Tables of arrays are counted, so the third
    ``[[exempt]]`` is ``("exempt", 2)``."""

    keys: dict[tuple[object, ...], int] = field(default_factory=dict)

    @classmethod
    def scan(cls, text: str) -> _KeyLines:
        found = cls()
        counts: dict[str, int] = {}
        section: tuple[object, ...] = ()
        in_string: str | None = None
        for number, line in enumerate(text.splitlines(), 1):
            if in_string is not None:
                if line.count(in_string) % 2:
                    in_string = None
                continue
            header = _TABLE.match(line)
            if header is not None and header.group(2):
                name = ".".join(p.strip() for p in header.group(2).split("."))
                if header.group(1) == "[[":
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                    section = (name, index)
                else:
                    parent, _, last = name.rpartition(".")
                    # [alerts.webhook.headers] belongs to the latest [[alerts.webhook]].
                    latest = counts[parent] - 1 if parent in counts else None
                    section = (name,) if latest is None else (parent, latest, last)
                found.keys.setdefault(section, number)
                continue
            key = KEY.match(line)
            if key is not None:
                found.keys.setdefault((*section, unquote(key.group(1))), number)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2:
                    in_string = quote
                    break
        return found

    def line(self, *where: object) -> int:
        """The line of the key (or table) at ``where``, else of the nearest table holding it."""
        path = tuple(where)
        while path:
            if path in self.keys:
                return self.keys[path]
            path = path[:-1]
        return 1


class _Reader:
    def __init__(self, source: str, lines: _KeyLines, base: Path | None) -> None:
        self.source = source
        self.lines = lines
        self.base = base

    def refuse(self, where: tuple[object, ...], problem: str) -> InvalidInputError:
        key = next((w for w in reversed(where) if isinstance(w, str)), "")
        line = self.lines.line(*where)
        return InvalidInputError(f"{self.source}:{line}: key {shown(key, 60)}: {problem}")

    def config(self, data: dict[str, object], env: Mapping[str, str]) -> WatchConfig:
        self.known(data, _TOP_KEYS, ())
        engine_raw = self.string(data, "engine", ())
        engine = _default_engine(env) if engine_raw is None else self.engine(engine_raw)
        listen = self.string(data, "listen", ())
        return WatchConfig(
            engine=engine,
            host=self.string(data, "host", ()),
            node=self.string(data, "node", ()),
            policy=self.path(data, "policy", ()),
            interval=self.duration(data, "interval", (), 60.0),
            poll=self.duration(data, "poll", (), 0.5),
            lookup_timeout=self.duration(data, "lookup_timeout", (), 5.0),
            listen=DEFAULT_LISTEN if listen is None else self.listen(listen),
            enforce=self.enforce(self.table(data, "enforce", ())),
            exemptions=self.exemptions(data.get("exempt", [])),
            influxdb=self.influx(data.get("influxdb")),
            alerts=self.alerts(self.table(data, "alerts", ())),
            report=self.report(data.get("report")),
            source=self.source,
        )

    # -- values --------------------------------------------------------------------------

    def known(self, table: Mapping[str, object], keys: set[str], where: tuple[object, ...]) -> None:
        for key in table:
            if key in ("password", "token"):
                raise self.refuse(
                    (*where, key),
                    f"a {key} is never written here: name it with {key}_env or {key}_file",
                )
            if key not in keys:
                names = ", ".join(sorted(keys))
                raise self.refuse((*where, key), f"not a key here (known: {names})")

    def table(
        self, data: Mapping[str, object], key: str, where: tuple[object, ...]
    ) -> dict[str, object]:
        raw = data.get(key, {})
        if not isinstance(raw, dict):
            raise self.refuse((*where, key), "must be a table")
        return raw

    def string(self, data: Mapping[str, object], key: str, where: tuple[object, ...]) -> str | None:
        raw = data.get(key)
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw.strip():
            raise self.refuse((*where, key), "must be a string that is not empty")
        if len(raw) > 4096 or not raw.isprintable():
            raise self.refuse(
                (*where, key), "must be one line of printable text, at most 4096 long"
            )
        return raw.strip()

    def strings(
        self, data: Mapping[str, object], key: str, where: tuple[object, ...]
    ) -> tuple[str, ...]:
        raw = data.get(key, [])
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or len(raw) > 1000:
            raise self.refuse((*where, key), "must be a string or a list of at most 1000")
        out = []
        for item in raw:
            if not isinstance(item, str) or not item.strip() or len(item) > 1024:
                raise self.refuse((*where, key), "each entry must be a string (1 to 1024 long)")
            if not item.isprintable():
                raise self.refuse((*where, key), "each entry must be one line of printable text")
            out.append(item.strip())
        return tuple(out)

    def boolean(
        self, data: Mapping[str, object], key: str, where: tuple[object, ...], default: bool
    ) -> bool:
        raw = data.get(key, default)
        if not isinstance(raw, bool):
            raise self.refuse((*where, key), "must be true or false")
        return raw

    def integer(
        self,
        data: Mapping[str, object],
        key: str,
        where: tuple[object, ...],
        default: int,
        low: int,
        high: int,
    ) -> int:
        raw = data.get(key, default)
        if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
            raise self.refuse((*where, key), f"must be a whole number from {low} to {high}")
        return raw

    def duration(
        self,
        data: Mapping[str, object],
        key: str,
        where: tuple[object, ...],
        default: float,
        *,
        zero: bool = False,
    ) -> float:
        raw = data.get(key)
        if raw is None:
            return default
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise self.refuse((*where, key), 'must be a duration such as "30s", "5m" or "6h"')
        try:
            if isinstance(raw, str):
                return parse_duration(raw, zero=zero)
            return parse_duration(f"{raw}s", zero=zero)
        except InvalidInputError as exc:
            raise self.refuse((*where, key), str(exc)) from None

    def path(self, data: Mapping[str, object], key: str, where: tuple[object, ...]) -> Path | None:
        text = self.string(data, key, where)
        if text is None:
            return None
        path = Path(text).expanduser()
        if not path.is_absolute() and self.base is not None:
            path = self.base / path
        return path

    def env_name(
        self, data: Mapping[str, object], key: str, where: tuple[object, ...]
    ) -> str | None:
        text = self.string(data, key, where)
        if text is not None and not _ENV_NAME.match(text):
            raise self.refuse((*where, key), "must name an environment variable")
        return text

    def url(self, data: Mapping[str, object], key: str, where: tuple[object, ...]) -> str:
        text = self.string(data, key, where)
        if text is None:
            raise self.refuse((*where, key), "is required")
        if not _URL.match(text):
            raise self.refuse((*where, key), "must be an http:// or https:// URL")
        return text.rstrip("/")

    def engine(self, text: str) -> str:
        try:
            return parse_engine(text)
        except InvalidInputError as exc:
            raise self.refuse(("engine",), str(exc)) from None

    def listen(self, text: str) -> tuple[str, int] | None:
        if text.lower() == "off":
            return None
        try:
            return parse_listen(text)
        except InvalidInputError as exc:
            raise self.refuse(("listen",), str(exc)) from None

    def array(self, raw: object, key: str, limit: int) -> list[dict[str, object]]:
        if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
            raise self.refuse((key,), f"must be tables of [[{key}]]")
        if len(raw) > limit:
            raise self.refuse((key, limit), f"at most {limit} of them")
        return raw

    # -- tables --------------------------------------------------------------------------

    def enforce(self, data: dict[str, object]) -> EnforceConfig:
        where: tuple[object, ...] = ("enforce",)
        self.known(data, _ENFORCE_KEYS, where)
        action = self.string(data, "action", where)
        if action is not None:
            action = action.lower()
            if action not in ACTIONS:
                raise self.refuse((*where, "action"), "must be stop or kill")
        states = DEFAULT_ENFORCED
        if "states" in data:
            named = self.strings(data, "states", where)
            chosen = set()
            for name in named:
                try:
                    state = ContainerState.parse(name)
                except ValueError as exc:
                    raise self.refuse((*where, "states"), str(exc)) from None
                if state in (ContainerState.TRUSTED, ContainerState.EXEMPT):
                    raise self.refuse(
                        (*where, "states"), f"{state.value} is never enforced against"
                    )
                chosen.add(state)
            if not chosen:
                raise self.refuse((*where, "states"), "names no state")
            states = frozenset(chosen)
        return EnforceConfig(
            action=action,
            states=states,
            grace=self.duration(data, "grace", where, 30.0, zero=True),
            dry_run=self.boolean(data, "dry_run", where, False),
            stop_timeout=self.integer(data, "stop_timeout", where, 10, 0, 3600),
        )

    def exemptions(self, raw: object) -> tuple[Exemption, ...]:
        out = []
        for index, table in enumerate(self.array(raw, "exempt", MAX_EXEMPTIONS)):
            where: tuple[object, ...] = ("exempt", index)
            self.known(table, _EXEMPT_KEYS, where)
            reason = self.string(table, "reason", where)
            if reason is None:
                raise self.refuse((*where, "reason"), "is required: say why it is exempt")
            image_ids = self.strings(table, "image_ids", where)
            for image_id in image_ids:
                if not _IMAGE_ID.match(image_id):
                    raise self.refuse(
                        (*where, "image_ids"), f"{image_id[:80]!r} is not sha256:<hex>"
                    )
            labels = []
            for label in self.strings(table, "labels", where):
                key, equals, value = label.partition("=")
                if not equals or not key:
                    raise self.refuse((*where, "labels"), f"{label[:80]!r} is not KEY=VALUE")
                labels.append((key, value))
            exemption = Exemption(
                reason=reason,
                containers=self.strings(table, "containers", where),
                images=self.strings(table, "images", where),
                image_ids=image_ids,
                labels=tuple(labels),
                line=self.lines.line(*where),
            )
            if not (
                exemption.containers or exemption.images or exemption.image_ids or exemption.labels
            ):
                raise self.refuse(
                    (*where, "reason"),
                    "an exemption needs containers, images, image_ids or labels to match",
                )
            out.append(exemption)
        return tuple(out)

    def influx(self, raw: object) -> InfluxConfig | None:
        if raw is None:
            return None
        where: tuple[object, ...] = ("influxdb",)
        if not isinstance(raw, dict):
            raise self.refuse(where, "must be a table")
        self.known(raw, _INFLUX_KEYS, where)
        config = InfluxConfig(
            url=self.url(raw, "url", where),
            database=self.string(raw, "database", where),
            org=self.string(raw, "org", where),
            bucket=self.string(raw, "bucket", where),
            token_env=self.env_name(raw, "token_env", where),
            token_file=self.path(raw, "token_file", where),
            buffer=self.integer(raw, "buffer", where, 10_000, 1, 1_000_000),
        )
        two = config.org is not None or config.bucket is not None
        token = config.token_env is not None or config.token_file is not None
        if config.token_env is not None and config.token_file is not None:
            raise self.refuse((*where, "token_file"), "give token_env or token_file, not both")
        if config.database is not None and two:
            raise self.refuse(
                (*where, "database"), "give database (1.x) or org and bucket (2.x), not both"
            )
        if two and (config.org is None or config.bucket is None or not token):
            raise self.refuse(
                (*where, "bucket" if config.bucket is None else "org"),
                "InfluxDB 2.x needs org, bucket and token_env or token_file",
            )
        if not two and config.database is None:
            raise self.refuse((*where, "database"), "is required (or org and bucket for 2.x)")
        return config

    def report(self, raw: object) -> ReportConfig | None:
        if raw is None:
            return None
        where: tuple[object, ...] = ("report",)
        if not isinstance(raw, dict):
            raise self.refuse(where, "must be a table")
        self.known(raw, _REPORT_KEYS, where)
        text = self.string(raw, "url", where)
        if text is None:
            raise self.refuse((*where, "url"), "is required")
        try:
            url = parse_server_url(text)
        except InvalidInputError as exc:
            raise self.refuse((*where, "url"), str(exc)) from None
        config = ReportConfig(
            url=url,
            token_env=self.env_name(raw, "token_env", where),
            token_file=self.path(raw, "token_file", where),
            ca_file=self.path(raw, "ca_file", where),
        )
        if config.token_env is not None and config.token_file is not None:
            raise self.refuse((*where, "token_file"), "give token_env or token_file, not both")
        if config.ca_file is not None and not url.startswith("https://"):
            raise self.refuse((*where, "ca_file"), "a CA file goes with an https:// URL")
        return config

    def alerts(self, data: dict[str, object]) -> AlertsConfig:
        where: tuple[object, ...] = ("alerts",)
        self.known(data, _ALERT_KEYS, where)
        reminder = self.duration(data, "reminder", where, 0.0) if "reminder" in data else None
        managers = []
        for index, table in enumerate(
            self.array(data.get("alertmanager", []), "alerts.alertmanager", MAX_TARGETS)
        ):
            at: tuple[object, ...] = ("alerts.alertmanager", index)
            self.known(table, _ALERTMANAGER_KEYS, at)
            managers.append(AlertmanagerTarget(self.url(table, "url", at)))
        hooks = []
        for index, table in enumerate(
            self.array(data.get("webhook", []), "alerts.webhook", MAX_TARGETS)
        ):
            at = ("alerts.webhook", index)
            self.known(table, _WEBHOOK_KEYS, at)
            hooks.append(WebhookTarget(self.url(table, "url", at), self.headers(table, at)))
        mails = []
        for index, table in enumerate(
            self.array(data.get("email", []), "alerts.email", MAX_TARGETS)
        ):
            mails.append(self.email(table, ("alerts.email", index)))
        return AlertsConfig(
            reminder=reminder,
            ledger_unreachable_after=self.duration(
                data, "ledger_unreachable_after", where, 30.0, zero=True
            ),
            alertmanager=tuple(managers),
            webhook=tuple(hooks),
            email=tuple(mails),
        )

    def headers(
        self, table: dict[str, object], at: tuple[object, ...]
    ) -> tuple[tuple[str, str], ...]:
        raw = table.get("headers", {})
        if not isinstance(raw, dict) or len(raw) > 64:
            raise self.refuse((*at, "headers"), "must be a table of at most 64 headers")
        out = []
        for name, value in raw.items():
            if not _HEADER_NAME.match(name):
                raise self.refuse((*at, "headers"), f"{name[:80]!r} is not a header name")
            if (
                not isinstance(value, str)
                or len(value) > 4096
                or any(c in value for c in "\r\n\x00")
            ):
                raise self.refuse((*at, "headers"), f"the value of {name} must be one line of text")
            out.append((name, value))
        return tuple(out)

    def email(self, table: dict[str, object], at: tuple[object, ...]) -> EmailTarget:
        self.known(table, _EMAIL_KEYS, at)
        host = self.string(table, "host", at)
        if host is None:
            raise self.refuse((*at, "host"), "is required")
        sender = self.string(table, "from", at)
        if sender is None or not _ADDRESSEE.match(sender):
            raise self.refuse((*at, "from"), "must be one e-mail address")
        recipients = self.strings(table, "to", at)
        if not recipients:
            raise self.refuse((*at, "to"), "names no recipient")
        for recipient in recipients:
            if not _ADDRESSEE.match(recipient):
                raise self.refuse((*at, "to"), f"{recipient[:80]!r} is not an e-mail address")
        password_env = self.env_name(table, "password_env", at)
        password_file = self.path(table, "password_file", at)
        if password_env is not None and password_file is not None:
            raise self.refuse(
                (*at, "password_file"), "give password_env or password_file, not both"
            )
        username = self.string(table, "username", at)
        has_password = password_env is not None or password_file is not None
        if has_password and username is None:
            raise self.refuse((*at, "username"), "is required with a password")
        if username is not None and not has_password:
            raise self.refuse((*at, "username"), "needs password_env or password_file")
        starttls = self.boolean(table, "starttls", at, True)
        if username is not None and not starttls:
            raise self.refuse((*at, "starttls"), "a password is sent only over STARTTLS")
        return EmailTarget(
            host=host,
            port=self.integer(table, "port", at, 587, 1, 65535),
            sender=sender,
            recipients=recipients,
            username=username,
            password_env=password_env,
            password_file=password_file,
            starttls=starttls,
        )
