"""``sedis watch``: every running container judged against the ledger, once or for good.

The command builds the watchdog from its configuration file and flags (flags
win), and either makes one pass (``--once``: a table, or one JSON array) or
runs until SIGTERM or SIGINT, serving metrics, writing to InfluxDB and
sending alerts; SIGHUP reads the configuration and the policy again.
Everything it logs goes to stderr, one line per event, escaped.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer

from sedis.cli import context
from sedis.cli.output import Format, OutputOption, info, printable
from sedis.cli.trust_cmds import PolicyOption

if TYPE_CHECKING:
    from sedis.core.address import Address
    from sedis.core.containers import ContainerVerdict
    from sedis.watch.alerts.base import AlertChannel
    from sedis.watch.config import ReportConfig, WatchConfig
    from sedis.watch.runtime.base import ContainerRuntime
    from sedis.watch.watchdog import Reloaded, Watchdog

_LOGGER = "sedis.watch"
# Time given to InfluxDB and the alert channels to deliver what is queued at exit.
_FLUSH_SECONDS = 10.0


def watch(
    config_file: Path | None = typer.Option(
        None, "--config", metavar="FILE", help="The watch configuration (TOML)."
    ),
    engine: str | None = typer.Option(
        None,
        "--engine",
        metavar="URL",
        help="The container engine: unix:///PATH, tcp://HOST:PORT or http://HOST:PORT "
        "(default: DOCKER_HOST, else unix:///var/run/docker.sock).",
    ),
    once: bool = typer.Option(
        False, "--once", help="One pass: print every container's verdict and exit."
    ),
    policy_file: Path | None = PolicyOption,
    node: str | None = typer.Option(
        None,
        "--node",
        metavar="WHO",
        help="This host's identity (identity, contact or 0x address): a withdrawn grant to "
        "it is NOT_GRANTED.",
    ),
    listen: str | None = typer.Option(
        None,
        "--listen",
        metavar="HOST:PORT",
        help="Serve /metrics and /healthz here (default 127.0.0.1:9464; off: none).",
    ),
    interval: str | None = typer.Option(
        None, "--interval", metavar="DURATION", help="Time between full passes (default 60s)."
    ),
    enforce: str | None = typer.Option(
        None,
        "--enforce",
        metavar="ACTION",
        help="stop or kill: act on containers in the enforced states (default UNTRUSTED, REVOKED, "
        "NOT_GRANTED) once the grace period has passed.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="With --enforce: log and alert what would be done, do nothing."
    ),
    grace: str | None = typer.Option(
        None,
        "--grace",
        metavar="DURATION",
        help="Time in an enforced state before acting (default 30s; --once acts only at 0s).",
    ),
    report_to: str | None = typer.Option(
        None,
        "--report-to",
        metavar="URL",
        help="Push the verdicts to this sedis serve (its token: --report-token-file, else "
        "the one `sedis login URL` saved).",
    ),
    report_token_file: Path | None = typer.Option(
        None,
        "--report-token-file",
        metavar="FILE",
        help="The file holding the bearer token for --report-to.",
    ),
    report_ca_file: Path | None = typer.Option(
        None,
        "--report-ca-file",
        metavar="FILE",
        help="Trust the server's TLS certificate if this CA (PEM) signed it.",
    ),
    output: Format = OutputOption,
) -> None:
    """Watch the running containers: judge what each runs (its image ID and manifest
    digests, never its name) against the ledger under the trust policy.

    With --once: one pass, a table (or -o json, one array of objects, one per
    container), and exit 0 when every container is TRUSTED or EXEMPT, 5 when
    any is ERROR, 1 otherwise. No alerts are sent and nothing is served; the
    pass goes to InfluxDB and to the server reported to when they are named.

    Without it, the watchdog runs until SIGTERM or SIGINT: the engine's
    events, the ledger's new blocks and a full pass every interval keep the
    verdicts current, served as Prometheus metrics, written to InfluxDB,
    pushed to a sedis serve (--report-to) and sent as alerts on every change.
    SIGHUP reads the configuration file and the policy again (the engine,
    listen address, InfluxDB, report and alert targets change only at a
    restart).
    """
    from sedis.core.errors import InvalidInputError

    if output == Format.json and not once:
        raise InvalidInputError("-o json prints the verdicts of --once; give --once with it")
    flags = _Flags(
        engine,
        node,
        listen,
        interval,
        enforce,
        dry_run,
        grace,
        policy_file,
        report_to=report_to,
        report_token_file=report_token_file,
        report_ca_file=report_ca_file,
    )
    config = _configuration(config_file, flags)
    with _logging(quiet=once):
        if once:
            code = _once(config, output)
            raise typer.Exit(code)
        _watch(config_file, flags, config)


class _Flags:
    """The options that override the configuration file, read again at each reload."""

    def __init__(
        self,
        engine: str | None,
        node: str | None,
        listen: str | None,
        interval: str | None,
        enforce: str | None,
        dry_run: bool,
        grace: str | None,
        policy: Path | None,
        *,
        report_to: str | None = None,
        report_token_file: Path | None = None,
        report_ca_file: Path | None = None,
    ) -> None:
        self.engine = engine
        self.node = node
        self.listen = listen
        self.interval = interval
        self.enforce = enforce
        self.dry_run = dry_run
        self.grace = grace
        self.policy = policy
        self.report_to = report_to
        self.report_token_file = report_token_file
        self.report_ca_file = report_ca_file

    def applied(self, config: WatchConfig) -> WatchConfig:
        from sedis.core.errors import InvalidInputError
        from sedis.watch.config import ACTIONS, parse_duration, parse_engine, parse_listen

        changes: dict[str, Any] = {}
        if self.engine is not None:
            changes["engine"] = parse_engine(self.engine)
        if self.node is not None:
            changes["node"] = self.node.strip()
        if self.policy is not None:
            changes["policy"] = self.policy
        if self.listen is not None:
            off = self.listen.strip().lower() == "off"
            changes["listen"] = None if off else _flag(parse_listen, "--listen", self.listen)
        if self.interval is not None:
            changes["interval"] = _flag(parse_duration, "--interval", self.interval)
        enforce = config.enforce
        if self.enforce is not None:
            action = self.enforce.strip().lower()
            if action not in ACTIONS:
                raise InvalidInputError(f"--enforce {self.enforce[:40]!r}: use stop or kill")
            enforce = replace(enforce, action=action)
        if self.dry_run:
            if enforce.action is None:
                raise InvalidInputError("--dry-run goes with --enforce stop|kill")
            enforce = replace(enforce, dry_run=True)
        if self.grace is not None:
            seconds = _flag(lambda t: parse_duration(t, zero=True), "--grace", self.grace)
            enforce = replace(enforce, grace=seconds)
        changes["enforce"] = enforce
        changes["report"] = self._report(config.report)
        return replace(config, **changes)

    def _report(self, report: ReportConfig | None) -> ReportConfig | None:
        from sedis.core.errors import InvalidInputError
        from sedis.watch.config import ReportConfig, parse_server_url

        if self.report_to is not None:
            url = _flag(parse_server_url, "--report-to", self.report_to)
            report = ReportConfig(url) if report is None else replace(report, url=url)
        if report is None:
            if self.report_token_file is not None or self.report_ca_file is not None:
                raise InvalidInputError(
                    "--report-token-file and --report-ca-file go with --report-to URL "
                    "(or [report] url in the configuration)"
                )
            return None
        if self.report_token_file is not None:
            report = replace(report, token_file=self.report_token_file, token_env=None)
        if self.report_ca_file is not None:
            report = replace(report, ca_file=self.report_ca_file)
        if report.ca_file is not None and not report.url.startswith("https://"):
            raise InvalidInputError(f"a CA file goes with an https:// server, not {report.url}")
        return report


def _flag(parse: Any, option: str, text: str) -> Any:
    from sedis.core.errors import InvalidInputError

    try:
        return parse(text)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{option}: {exc}") from None


def _configuration(path: Path | None, flags: _Flags) -> WatchConfig:
    from sedis.watch.config import default_config, load_watch_config

    config = default_config() if path is None else load_watch_config(path)
    return flags.applied(config)


def _node(config: WatchConfig) -> Address | None:
    return None if config.node is None else context.account(config.node)


def _reloaded(config: WatchConfig) -> Reloaded:
    from sedis.cli.trust_cmds import trust_policy
    from sedis.watch.watchdog import Reloaded

    return Reloaded(trust_policy(config.policy), config, _node(config))


def _runtime(config: WatchConfig) -> ContainerRuntime:
    from sedis.watch.runtime.docker_api import DockerEngine

    return DockerEngine(config.engine)


def _host(config: WatchConfig, runtime: ContainerRuntime) -> str:
    from sedis.core.errors import SedisError

    if config.host is not None:
        return config.host
    try:
        return runtime.host()
    except SedisError as exc:
        fallback = socket.gethostname()
        logging.getLogger(_LOGGER).warning(
            "the engine did not say its host name (%s): %s is used", exc, fallback
        )
        return fallback


def _engines() -> Any:
    from sedis.service.engines import Engines

    # Lookups wait on the ledger more than they compute: more threads than cores.
    return Engines.from_settings(context.settings(), threads=16)


# -- --once --------------------------------------------------------------------------------


def _once(config: WatchConfig, output: Format) -> int:
    from sedis.watch.watchdog import Watchdog, exit_code_of, verdict_document

    start = _reloaded(config)
    with ExitStack() as stack:
        engines = stack.enter_context(_engines())
        runtime = _runtime(config)
        stack.callback(runtime.close)
        influx = _influx(config, stack)
        host = config.host or runtime.host()
        reporter = _reporter(config, host, stack)
        watchdog = Watchdog(
            engines,
            runtime,
            start.policy,
            config,
            node=start.node,
            host=host,
            influx=influx,
            reporter=reporter,
        )
        verdicts = watchdog.once()
        if influx is not None and not influx.flush(_FLUSH_SECONDS):
            logging.getLogger(_LOGGER).warning("InfluxDB did not take every point in time")
        if reporter is not None and not reporter.flush(_FLUSH_SECONDS):
            logging.getLogger(_LOGGER).warning("%s did not take the report in time", reporter.url)
    if output == Format.json:
        sys.stdout.write(json.dumps([verdict_document(v) for v in verdicts], indent=2) + "\n")
    else:
        _table(verdicts)
    return exit_code_of(verdicts)


_HEADER = ("CONTAINER", "STATE", "IMAGE", "IMAGE ID", "REASON")


def _table(verdicts: Sequence[ContainerVerdict]) -> None:
    if not verdicts:
        info("no running containers")
        return
    rows = [_HEADER] + [
        (v.container, v.state.value, v.image, v.image_id[:19], v.reason) for v in verdicts
    ]
    shown = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in shown) for i in range(len(_HEADER) - 1)]
    for row in shown:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        sys.stdout.write("  ".join([*cells, row[-1]]).rstrip() + "\n")


# -- the long-running mode -------------------------------------------------------------------


def _watch(config_file: Path | None, flags: _Flags, config: WatchConfig) -> None:
    log = logging.getLogger(_LOGGER)
    with ExitStack() as stack:
        engines = stack.enter_context(_engines())
        watchdog = build_watchdog(config, engines, stack)

        def reload() -> Reloaded:
            return _reloaded(_configuration(config_file, flags))

        log.info(
            "watching %s on %s under %s (every %gs, ledger every %gs%s)",
            config.engine,
            watchdog.host,
            watchdog.policy.source,
            config.interval,
            config.poll,
            _enforcing(config),
        )
        with _signals(watchdog):
            watchdog.run(reload)
        log.info("stopping: delivering what is queued")
        watchdog.flush(_FLUSH_SECONDS)


def build_watchdog(config: WatchConfig, engines: Any, stack: ExitStack) -> Watchdog:
    """The long-running watchdog that ``config`` describes, on ``engines``: its metrics
    served, its alert channels, InfluxDB and the server it reports to connected;
    ``stack`` closes what it opens."""
    from sedis.watch.alerts.dispatch import AlertDispatcher
    from sedis.watch.alerts.tracker import AlertTracker
    from sedis.watch.metrics import WatchMetrics, serve_metrics
    from sedis.watch.watchdog import Watchdog

    log = logging.getLogger(_LOGGER)
    start = _reloaded(config)
    runtime = _runtime(config)
    host = _host(config, runtime)
    metrics = WatchMetrics()
    channels = _channels(config)
    dispatcher = AlertDispatcher(channels, on_result=metrics.alert_sent)
    stack.callback(dispatcher.close, _FLUSH_SECONDS)
    influx = _influx(config, stack)
    reporter = _reporter(config, host, stack)
    tracker = AlertTracker(
        host,
        reminder=config.alerts.reminder,
        ledger_grace=config.alerts.ledger_unreachable_after,
    )
    watchdog = Watchdog(
        engines,
        runtime,
        start.policy,
        config,
        node=start.node,
        host=host,
        metrics=metrics,
        influx=influx,
        dispatcher=dispatcher,
        tracker=tracker,
        reporter=reporter,
    )
    if reporter is not None:
        log.info("reporting to %s as %s", reporter.url, host)
    if config.listen is not None:
        server = serve_metrics(metrics, config.listen[0], config.listen[1], watchdog.health)
        stack.callback(server.close)
        log.info("metrics on %s/metrics", server.url)
    return watchdog


def reloader(config_file: Path) -> Callable[[], Reloaded]:
    """What reads the watch configuration at ``config_file`` and its policy again."""
    from sedis.watch.config import load_watch_config

    return lambda: _reloaded(load_watch_config(config_file))


def _enforcing(config: WatchConfig) -> str:
    enforce = config.enforce
    if enforce.action is None:
        return ""
    states = ", ".join(sorted(s.value for s in enforce.states))
    dry = " (dry run)" if enforce.dry_run else ""
    return f"; {enforce.action} {states} after {enforce.grace:g}s{dry}"


@contextmanager
def _signals(watchdog: Any) -> Iterator[None]:
    """SIGTERM and SIGINT stop the watchdog, SIGHUP reloads it (the handlers only ask:
    the watchdog's own loop does the work)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        watchdog.request_stop()

    def reload(signum: int, frame: FrameType | None) -> None:
        watchdog.request_reload()

    handlers = {signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: reload}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _channels(config: WatchConfig) -> list[AlertChannel]:
    from sedis.watch.alerts.alertmanager import AlertmanagerChannel
    from sedis.watch.alerts.email import EmailChannel
    from sedis.watch.alerts.webhook import WebhookChannel
    from sedis.watch.config import read_secret

    alerts = config.alerts
    channels: list[AlertChannel] = [AlertmanagerChannel(t.url) for t in alerts.alertmanager]
    channels += [WebhookChannel(t.url, headers=dict(t.headers)) for t in alerts.webhook]
    for mail in alerts.email:
        password = read_secret(mail.password_env, mail.password_file, "SMTP password")
        channels.append(
            EmailChannel(
                mail.host,
                mail.port,
                sender=mail.sender,
                recipients=mail.recipients,
                username=mail.username,
                password=password,
                starttls=mail.starttls,
            )
        )
    return channels


def _influx(config: WatchConfig, stack: ExitStack) -> Any:
    from sedis.watch.config import read_secret

    target = config.influxdb
    if target is None:
        return None
    from sedis.watch.influx import InfluxSink

    sink = InfluxSink(
        target.url,
        database=target.database,
        token=read_secret(target.token_env, target.token_file, "InfluxDB token"),
        org=target.org,
        bucket=target.bucket,
        buffer=target.buffer,
    )
    stack.callback(sink.close)
    return sink


def _reporter(config: WatchConfig, host: str, stack: ExitStack) -> Any:
    from sedis.watch.config import read_secret

    target = config.report
    if target is None:
        return None
    from sedis.watch.report import ServerReporter

    def token() -> str:
        named = read_secret(target.token_env, target.token_file, "server token")
        return named if named is not None else saved_token(target.url)

    # Read again when the server says the token is dead: a new login is taken up at once.
    reporter = ServerReporter(target.url, token(), host, ca_file=target.ca_file, renew=token)
    stack.callback(reporter.close)
    return reporter


def saved_token(url: str) -> str:
    """The token ``sedis login URL`` saved for the server at ``url``."""
    from sedis.cli.login_cmd import token_path
    from sedis.core.errors import ConfigError

    path = token_path(context.settings().home, url)
    hint = (
        f"run `sedis login {url}`, or name a token with [report] token_file or token_env, "
        "or --report-token-file"
    )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no token for {url}: {hint}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the token saved in {path} ({exc}): {hint}") from None
    token = document.get("token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        raise ConfigError(f"{path} holds no token: {hint}")
    expires = document.get("expires_at")
    if (
        isinstance(expires, int | float)
        and not isinstance(expires, bool)
        and expires <= time.time()
    ):
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        raise ConfigError(f"the token saved for {url} expired at {when}: {hint}")
    return token


# -- logging ----------------------------------------------------------------------------------


class _OneLineFormatter(logging.Formatter):
    """One line per event, what it quotes (reasons from the ledger, engine errors) escaped."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime(datefmt or "%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%SZ")
        line = f"{stamp} {record.levelname.lower()} {record.message}"
        if record.exc_info and logging.getLogger("sedis").isEnabledFor(logging.DEBUG):
            line += " | " + " | ".join(self.formatException(record.exc_info).splitlines())
        elif record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f": {type(error).__name__}: {error}"
        return "sedis watch: " + printable(" ".join(line.split()))


@contextmanager
def _logging(*, quiet: bool) -> Iterator[None]:
    """The watchdog's log to stderr for this command: warnings only for --once (the
    verdicts are its output), every event otherwise, and debug with --debug."""
    logger = logging.getLogger(_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    debug = logging.getLogger("sedis").isEnabledFor(logging.DEBUG)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
