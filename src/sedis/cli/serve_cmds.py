"""``sedis serve``: the REST API, the web UI and Sign-In with Ethereum, until SIGTERM.

The command reads its configuration file and flags (flags win), opens one
``Engines`` and, when an identity is named, unlocks one ``Actor`` with a
password from the environment or a file. It binds a loopback address unless
told ``--allow-remote``, serves TLS when given a certificate and key, and
can run a watchdog in the same process (``--watch``), whose verdicts the API
and the UI show. Every request is one line on stderr, escaped, without
credentials.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer

from sedis.cli import context
from sedis.cli.output import printable
from sedis.cli.trust_cmds import PolicyOption

if TYPE_CHECKING:
    from fastapi import FastAPI, Request, Response

    from sedis.server.config import ServeConfig
    from sedis.server.context import ServerContext
    from sedis.watch.watchdog import Watchdog

_LOGGER = "sedis.serve"
_STOP_SECONDS = 10.0


def serve(
    config_file: Path | None = typer.Option(
        None, "--config", metavar="FILE", help="The server's configuration (TOML)."
    ),
    listen: str | None = typer.Option(
        None, "--listen", metavar="HOST:PORT", help="Where to listen (default 127.0.0.1:8480)."
    ),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow listening on an address other hosts can reach."
    ),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        metavar="URL",
        help="Where people reach the server (sign-in domain; default: the listen address).",
    ),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", metavar="FILE", help="Serve HTTPS with this certificate (PEM)."
    ),
    tls_key: Path | None = typer.Option(
        None, "--tls-key", metavar="FILE", help="The certificate's private key (PEM)."
    ),
    identity: str | None = typer.Option(
        None,
        "--identity",
        metavar="NAME",
        help="The identity the server acts as (without one it serves reads only).",
    ),
    password_env: str | None = typer.Option(
        None, "--password-env", metavar="VAR", help="The identity's password is in $VAR."
    ),
    password_file: Path | None = typer.Option(
        None,
        "--password-file",
        metavar="FILE",
        help="The identity's password is the first line of FILE (not world-readable).",
    ),
    anonymous_read: bool = typer.Option(
        False, "--anonymous-read", help="Let anyone read without signing in."
    ),
    policy_file: Path | None = PolicyOption,
    watch_config: Path | None = typer.Option(
        None,
        "--watch",
        metavar="CONFIG",
        help="Run a watchdog with this configuration in the same process.",
    ),
) -> None:
    """Serve the REST API and the web UI over the ledger, until SIGTERM or SIGINT.

    Reads need a signed-in address with a role (or --anonymous-read); actions
    are done by the server's own identity, for the roles the configuration
    allows, and each is recorded on the ledger with the caller's address.
    """
    from sedis.server.config import load_serve_config

    config = load_serve_config(config_file) if config_file is not None else None
    settings = _with_flags(
        config,
        listen=listen,
        public_url=public_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
        identity=identity,
        password_env=password_env,
        password_file=password_file,
        anonymous_read=anonymous_read,
        watch_config=watch_config,
    )
    _check(settings, allow_remote)
    with _logging():
        _run(settings, policy_file)


def _with_flags(config: ServeConfig | None, **flags: Any) -> ServeConfig:
    """The configuration with each flag given put over the file's value."""
    from sedis.core.errors import InvalidInputError
    from sedis.server.config import ServeConfig, parse_listen, parse_public_url

    settings = config or ServeConfig()
    changes: dict[str, Any] = {}
    if flags["listen"] is not None:
        try:
            changes["host"], changes["port"] = parse_listen(flags["listen"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"--listen: {exc}") from None
    if flags["public_url"] is not None:
        try:
            changes["public_url"] = parse_public_url(flags["public_url"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"--public-url: {exc}") from None
    cert, key = flags["tls_cert"], flags["tls_key"]
    if (cert is None) != (key is None):
        raise InvalidInputError("--tls-cert and --tls-key go together: give both")
    if cert is not None:
        changes["tls_cert"], changes["tls_key"] = cert, key
    if flags["password_env"] is not None and flags["password_file"] is not None:
        raise InvalidInputError("give --password-env or --password-file, not both")
    if flags["identity"] is not None:
        changes["identity"] = flags["identity"].strip()
    if flags["password_env"] is not None:
        changes["password_env"], changes["password_file"] = flags["password_env"], None
    if flags["password_file"] is not None:
        changes["password_env"], changes["password_file"] = None, flags["password_file"]
    if flags["anonymous_read"]:
        changes["anonymous_read"] = True
    if flags["watch_config"] is not None:
        changes["watch_config"] = flags["watch_config"]
    return replace(settings, **changes)


def _check(config: ServeConfig, allow_remote: bool) -> None:
    """Refusals that need nothing opened: a reachable bind without consent, missing TLS
    files, a password with no identity."""
    from sedis.core.errors import InvalidInputError, NotFoundError
    from sedis.server.config import is_loopback

    if not allow_remote and not is_loopback(config.host):
        raise InvalidInputError(
            f"{config.host}:{config.port} can be reached from other hosts: "
            "give --allow-remote to listen there, or listen on 127.0.0.1"
        )
    for path in (config.tls_cert, config.tls_key):
        if path is not None and not path.is_file():
            raise NotFoundError(f"no TLS file at {path}")
    if config.identity is None and (config.password_env or config.password_file):
        raise InvalidInputError("a password was given but no --identity to unlock with it")


def _run(config: ServeConfig, policy_file: Path | None) -> None:
    import uvicorn

    from sedis.cli.trust_cmds import trust_policy
    from sedis.server.app import create_app
    from sedis.server.config import read_password
    from sedis.server.context import ServerContext
    from sedis.service.engines import Actor

    log = logging.getLogger(_LOGGER)
    password = read_password(config) if config.identity is not None else None
    policy = trust_policy(policy_file)
    with ExitStack() as stack:
        engines = stack.enter_context(context.engines())
        actor = None
        if config.identity is not None and password is not None:
            actor = Actor.unlock(engines, config.identity, password)
        ctx = ServerContext.build(engines, config, policy, actor)
        if config.watch_config is not None:
            _watching(ctx, config.watch_config, stack)
        app = create_app(ctx)
        _log_requests(app, ctx)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.port,
                ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
                ssl_keyfile=str(config.tls_key) if config.tls_key else None,
                log_level="warning",
                access_log=False,
                server_header=False,
                # Forwarded headers only from the proxies the configuration names.
                proxy_headers=bool(config.trusted_proxies),
                forwarded_allow_ips=list(config.trusted_proxies) or None,
                lifespan="on",
                log_config=None,  # its logs go through this command's one-line handler
            )
        )
        who = f"acting as {actor.address}" if actor is not None else "reads only (no identity)"
        log.info("starting %s on %s:%d, %s, under %s", config.origin, config.host, config.port,
                 who, policy.source)  # fmt: skip
        with _quiet_signals():
            try:
                server.run()
            except SystemExit:  # uvicorn's answer to an address it cannot bind
                server.started = False
        if not server.started:
            from sedis.core.errors import UnavailableError

            raise UnavailableError(f"could not listen on {config.host}:{config.port}")
        log.info("stopped")


def _watching(ctx: ServerContext, path: Path, stack: ExitStack) -> None:
    """A watchdog of ``path``'s configuration on its own thread; its verdicts in ``ctx``."""
    from sedis.cli.watch_cmds import build_watchdog, reloader
    from sedis.watch.config import load_watch_config

    watchdog = build_watchdog(load_watch_config(path), ctx.engines, stack)
    ctx.watch.append(WatchdogState(watchdog))
    thread = threading.Thread(
        target=watchdog.run, args=(reloader(path),), name="sedis-serve-watch", daemon=True
    )
    thread.start()

    def stop() -> None:
        watchdog.request_stop()
        thread.join(_STOP_SECONDS)
        watchdog.flush(_STOP_SECONDS)

    stack.callback(stop)


class WatchdogState:
    """A watchdog run in this process, as the API's watch state."""

    def __init__(self, watchdog: Watchdog) -> None:
        self._watchdog = watchdog

    def documents(self) -> list[dict[str, Any]]:
        from sedis.watch.watchdog import verdict_document

        return [verdict_document(v) for v in self._watchdog.verdicts()]


@contextmanager
def _quiet_signals() -> Iterator[None]:
    """SIGTERM and SIGINT end the server cleanly: uvicorn handles them while it runs and
    raises them again once it has stopped, which these handlers then take quietly."""

    def taken(signum: int, frame: FrameType | None) -> None:
        return None

    previous = {sig: signal.signal(sig, taken) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- the request log -----------------------------------------------------------------------


def _log_requests(app: FastAPI, ctx: ServerContext) -> None:
    """One line per request: method, path, status, milliseconds, request id, caller. The
    query string and every header are left out: they may carry tokens."""
    from sedis.server.auth import caller_of
    from sedis.server.errors import ApiError

    log = logging.getLogger(_LOGGER)

    @app.middleware("http")
    async def request_line(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        try:
            caller = caller_of(request, ctx.config, ctx.sessions)
            who = "-" if caller is None or caller.address is None else str(caller.address)
        except ApiError:
            who = "-"
        try:
            response = await call_next(request)
        except BaseException:
            line(request, 500, started, "-", who)
            raise
        line(request, response.status_code, started, response.headers.get("X-Request-Id", "-"), who)
        return response

    def line(request: Request, status: int, started: float, rid: str, who: str) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        log.info(
            "%s %s %d %.1fms id=%s caller=%s",
            request.method,
            request.url.path,
            status,
            elapsed,
            rid,
            who,
        )


class _OneLineFormatter(logging.Formatter):
    """One line per event, what it quotes (paths, errors from the ledger) escaped."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        line = f"{stamp} {record.levelname.lower()} {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f": {type(error).__name__}: {error}"
        return "sedis serve: " + printable(" ".join(line.split()))


@contextmanager
def _logging() -> Iterator[None]:
    """The server's and its watchdog's logs to stderr, for this command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    debug = logging.getLogger("sedis").isEnabledFor(logging.DEBUG)
    levels = {
        _LOGGER: logging.DEBUG if debug else logging.INFO,
        "sedis.watch": logging.DEBUG if debug else logging.INFO,
        "uvicorn.error": logging.DEBUG if debug else logging.WARNING,
    }
    loggers = [logging.getLogger(name) for name in levels]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(levels[logger.name])
        logger.propagate = False
    try:
        yield
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
