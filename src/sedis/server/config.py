"""ServeConfig: what ``sedis serve`` listens on, who may do what, and how people sign in.

Read from a TOML file (``--config``) with flags on top. Secrets never sit in
the file itself: the identity's password comes from an environment variable
or a file that the configuration names.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from sedis.core.address import Address
from sedis.core.durations import parse_duration
from sedis.core.errors import ConfigError, InvalidInputError
from sedis.core.tomltext import KEY, shown, syntax_error, unquote
from sedis.fsutil import read_config_text


class Role(IntEnum):
    """What a caller may do; each role may do all that the ones below it may."""

    viewer = 1
    operator = 2
    admin = 3


# The least role each action asks for, unless the configuration says otherwise.
DEFAULT_ACTION_ROLES: dict[str, Role] = {
    "status": Role.operator,
    "attest": Role.operator,
    "rescan": Role.operator,
    "share": Role.admin,
    "unshare": Role.admin,
    "watch-report": Role.operator,
}


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """One server's settings (see the module's docstring)."""

    host: str = "127.0.0.1"
    port: int = 8480
    # Where people reach the server: the SIWE message's domain and URI, the
    # cookie's scope. Default: the scheme, host and port it listens on.
    public_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The identity the server acts as; None serves reads only.
    identity: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    roles: dict[Address, Role] = field(default_factory=dict)
    action_roles: dict[str, Role] = field(default_factory=lambda: dict(DEFAULT_ACTION_ROLES))
    # Reads without signing in: off unless configured.
    anonymous_read: bool = False
    # The chain id a SIWE message must name; None: the ledger's own.
    chain_id: int | None = None
    nonce_ttl: int = 300  # seconds a sign-in nonce stays usable
    session_ttl: int = 8 * 3600  # seconds a session cookie or bearer token lives
    sign_in_per_minute: int = 30  # sign-in requests per client address a minute
    # Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (addresses or
    # networks). None by default: a header any local process can send must not
    # choose the address that rate limits and logs see.
    trusted_proxies: tuple[str, ...] = ()
    # A watchdog run in the same process: its configuration file.
    watch_config: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def origin(self) -> str:
        """The scheme, host and port people use, without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def role_of(self, address: Address | None) -> Role | None:
        """The role configured for an address; a signed-in address with none is a viewer
        only when anonymous reads are allowed anyway."""
        if address is not None and address in self.roles:
            return self.roles[address]
        return Role.viewer if self.anonymous_read else None


# -- the configuration file ------------------------------------------------------------------

MAX_CONFIG_BYTES = 1 << 20
_TOP_KEYS = {"server", "identity", "roles", "actions", "watch"}
_SERVER_KEYS = {
    "listen",
    "public_url",
    "tls_cert",
    "tls_key",
    "anonymous_read",
    "chain_id",
    "nonce_ttl",
    "session_ttl",
    "sign_in_per_minute",
    "trusted_proxies",
}
_IDENTITY_KEYS = {"name", "password_env", "password_file"}
_WATCH_KEYS = {"config"}
_ROLE_NAMES = {r.name for r in Role}
_TABLE = re.compile(r"\s*\[\s*([A-Za-z0-9_.\s-]*?)\s*\]\s*(?:#.*)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_IDENTITY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PUBLIC_URL = re.compile(r"^https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(/[^\s?#]*)?$")
_MAX_ADDRESSES = 10_000
_MAX_PROXIES = 64


def load_serve_config(path: Path) -> ServeConfig:
    """The configuration in the TOML file at ``path``; a refusal is one line naming the
    file, the line and the key. Relative paths in it are taken from its directory."""
    text = read_config_text(path, "serve", MAX_CONFIG_BYTES)
    return parse_serve_config(text, str(path), base=path.parent)


def parse_serve_config(text: str, source: str, *, base: Path | None = None) -> ServeConfig:
    """The configuration that ``text`` (TOML from ``source``) writes."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise syntax_error(source, text, str(error)) from None
    except RecursionError:
        raise InvalidInputError(
            f"{source}: nested too deeply to be a serve configuration"
        ) from None
    return _Reader(source, _key_lines(text), base).config(data)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8480`` for IPv6), with a host named and a port from 1."""
    from sedis.watch.config import parse_listen as host_and_port

    host, port = host_and_port(text)
    if not host or port == 0:
        raise InvalidInputError(
            f"invalid listen address {text[:80]!r}: name the host and a port from 1 to 65535"
        )
    return host, port


def parse_public_url(text: str) -> str:
    """An http:// or https:// URL with a host and no user, query or fragment."""
    text = text.strip()
    if not _PUBLIC_URL.match(text):
        raise InvalidInputError(
            f"invalid public URL {text[:80]!r}: use http:// or https:// with a host, "
            "and no query or user"
        )
    return text.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_password(config: ServeConfig) -> str:
    """The identity's password: from the environment variable the configuration names, or
    the first line of its file, which nobody but its owner and group may read."""
    if config.password_env is not None:
        value = os.environ.get(config.password_env)
        if not value:
            raise ConfigError(
                f"the password of identity {config.identity!r} is to come from "
                f"${config.password_env}, which is not set"
            )
        return value
    path = config.password_file
    if path is None:
        raise ConfigError(
            f"the identity {config.identity!r} needs its password from --password-env VAR "
            "or --password-file FILE"
        )
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            raw = f.read(4097)
    except OSError as exc:
        raise ConfigError(f"cannot read the password file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"the password file {path} is not a regular file")
    if mode & stat.S_IROTH:
        raise ConfigError(
            f"the password file {path} is readable by everyone: chmod o-r (or 600) it first"
        )
    try:
        first = raw.decode("utf-8").splitlines()[0] if raw.strip() else ""
    except UnicodeDecodeError:
        raise ConfigError(f"the password file {path} is not UTF-8 text") from None
    if len(raw) > 4096 or not first:
        raise ConfigError(f"the password file {path} must hold the password on its first line")
    return first


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table starts and each key is first written (tomllib gives no lines)."""
    lines: dict[tuple[str, ...], int] = {}
    section: tuple[str, ...] = ()
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if in_string is not None:
            if line.count(in_string) % 2:
                in_string = None
            continue
        header = _TABLE.match(line)
        if header is not None and header.group(1):
            section = tuple(p.strip() for p in header.group(1).split("."))
            lines.setdefault(section, number)
            continue
        key = KEY.match(line)
        if key is not None:
            lines.setdefault((*section, unquote(key.group(1))), number)
        for quote in ('"""', "'''"):
            if line.count(quote) % 2:
                in_string = quote
                break
    return lines


class _Reader:
    def __init__(self, source: str, lines: dict[tuple[str, ...], int], base: Path | None) -> None:
        self.source = source
        self.lines = lines
        self.base = base

    def refuse(self, where: tuple[str, ...], problem: str) -> InvalidInputError:
        path = where
        while path and path not in self.lines:
            path = path[:-1]
        line = self.lines.get(path, 1)
        key = ".".join(where) or "(top)"
        return InvalidInputError(f"{self.source}:{line}: key {shown(key, 60)}: {problem}")

    def config(self, data: dict[str, Any]) -> ServeConfig:
        self.known(data, _TOP_KEYS, ())
        server = self.table(data, "server")
        identity = self.table(data, "identity")
        watch = self.table(data, "watch")
        self.known(server, _SERVER_KEYS, ("server",))
        self.known(identity, _IDENTITY_KEYS, ("identity",))
        self.known(watch, _WATCH_KEYS, ("watch",))
        changes: dict[str, Any] = {}
        listen = self.string(server, ("server", "listen"))
        if listen is not None:
            try:
                changes["host"], changes["port"] = parse_listen(listen)
            except InvalidInputError as exc:
                raise self.refuse(("server", "listen"), str(exc)) from None
        public_url = self.string(server, ("server", "public_url"))
        if public_url is not None:
            try:
                changes["public_url"] = parse_public_url(public_url)
            except InvalidInputError as exc:
                raise self.refuse(("server", "public_url"), str(exc)) from None
        cert = self.path(server, ("server", "tls_cert"))
        key = self.path(server, ("server", "tls_key"))
        if (cert is None) != (key is None):
            missing = "tls_key" if key is None else "tls_cert"
            raise self.refuse(("server", missing), "TLS needs both tls_cert and tls_key")
        changes["tls_cert"], changes["tls_key"] = cert, key
        changes["anonymous_read"] = self.boolean(server, ("server", "anonymous_read"), False)
        if "chain_id" in server:
            changes["chain_id"] = self.integer(server, ("server", "chain_id"), 1, 2**63 - 1)
        changes["nonce_ttl"] = self.seconds(server, ("server", "nonce_ttl"), 300, 10, 3600)
        changes["session_ttl"] = self.seconds(
            server, ("server", "session_ttl"), 8 * 3600, 60, 30 * 86400
        )
        if "sign_in_per_minute" in server:
            changes["sign_in_per_minute"] = self.integer(
                server, ("server", "sign_in_per_minute"), 1, 100_000
            )
        changes["trusted_proxies"] = self.networks(server, ("server", "trusted_proxies"))
        changes.update(self.identity(identity))
        changes["roles"] = self.roles(self.table(data, "roles"))
        changes["action_roles"] = self.actions(self.table(data, "actions"))
        changes["watch_config"] = self.path(watch, ("watch", "config"))
        return ServeConfig(**changes)

    def identity(self, table: dict[str, Any]) -> dict[str, Any]:
        name = self.string(table, ("identity", "name"))
        if name is not None and not _IDENTITY_NAME.match(name):
            raise self.refuse(("identity", "name"), "must be an identity's name")
        env = self.string(table, ("identity", "password_env"))
        if env is not None and not _ENV_NAME.match(env):
            raise self.refuse(("identity", "password_env"), "must name an environment variable")
        file = self.path(table, ("identity", "password_file"))
        if env is not None and file is not None:
            raise self.refuse(
                ("identity", "password_file"), "give password_env or password_file, not both"
            )
        if name is None and (env is not None or file is not None):
            which = "password_env" if env is not None else "password_file"
            raise self.refuse(("identity", which), "a password needs the identity's name")
        return {"identity": name, "password_env": env, "password_file": file}

    def roles(self, table: dict[str, Any]) -> dict[Address, Role]:
        roles: dict[Address, Role] = {}
        for role_name, raw in table.items():
            where = ("roles", role_name)
            if role_name not in _ROLE_NAMES:
                raise self.refuse(where, f"not a role (known: {', '.join(sorted(_ROLE_NAMES))})")
            if isinstance(raw, str):
                raw = [raw]
            if not isinstance(raw, list) or len(raw) > _MAX_ADDRESSES:
                raise self.refuse(where, f"must be a list of at most {_MAX_ADDRESSES} addresses")
            for item in raw:
                try:
                    address = Address.parse(item)
                except InvalidInputError as exc:
                    raise self.refuse(where, str(exc)) from None
                if address in roles:
                    raise self.refuse(
                        where, f"{address} is already given the role {roles[address].name}"
                    )
                roles[address] = Role[role_name]
        return roles

    def networks(self, data: dict[str, Any], where: tuple[str, ...]) -> tuple[str, ...]:
        raw = data.get(where[-1], [])
        if not isinstance(raw, list) or len(raw) > _MAX_PROXIES:
            raise self.refuse(where, f"must be a list of at most {_MAX_PROXIES} addresses")
        networks = []
        for item in raw:
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except (TypeError, ValueError):
                raise self.refuse(
                    where, f"{shown(str(item), 60)} is not an IP address or network"
                ) from None
        return tuple(networks)

    def actions(self, table: dict[str, Any]) -> dict[str, Role]:
        chosen = dict(DEFAULT_ACTION_ROLES)
        for action, raw in table.items():
            where = ("actions", action)
            if action not in DEFAULT_ACTION_ROLES:
                known = ", ".join(sorted(DEFAULT_ACTION_ROLES))
                raise self.refuse(where, f"not an action (known: {known})")
            if not isinstance(raw, str) or raw.strip().lower() not in _ROLE_NAMES:
                raise self.refuse(where, "must name a role: viewer, operator or admin")
            chosen[action] = Role[raw.strip().lower()]
        return chosen

    # -- values ------------------------------------------------------------------------------

    def known(self, table: dict[str, Any], keys: set[str], where: tuple[str, ...]) -> None:
        for key in table:
            if key == "password":
                raise self.refuse(
                    (*where, key),
                    "a password is never written here: name it with password_env or password_file",
                )
            if key not in keys:
                raise self.refuse(
                    (*where, key), f"not a key here (known: {', '.join(sorted(keys))})"
                )

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        raw = data.get(key, {})
        if not isinstance(raw, dict):
            raise self.refuse((key,), "must be a table")
        return raw

    def string(self, data: dict[str, Any], where: tuple[str, ...]) -> str | None:
        raw = data.get(where[-1])
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw.strip():
            raise self.refuse(where, "must be a string that is not empty")
        if len(raw) > 4096 or not raw.isprintable():
            raise self.refuse(where, "must be one line of printable text, at most 4096 long")
        return raw.strip()

    def path(self, data: dict[str, Any], where: tuple[str, ...]) -> Path | None:
        text = self.string(data, where)
        if text is None:
            return None
        path = Path(text).expanduser()
        return self.base / path if not path.is_absolute() and self.base is not None else path

    def boolean(self, data: dict[str, Any], where: tuple[str, ...], default: bool) -> bool:
        raw = data.get(where[-1], default)
        if not isinstance(raw, bool):
            raise self.refuse(where, "must be true or false")
        return raw

    def integer(self, data: dict[str, Any], where: tuple[str, ...], low: int, high: int) -> int:
        raw = data.get(where[-1])
        if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
            raise self.refuse(where, f"must be a whole number from {low} to {high}")
        return raw

    def seconds(
        self, data: dict[str, Any], where: tuple[str, ...], default: int, low: int, high: int
    ) -> int:
        raw = data.get(where[-1], default)
        if isinstance(raw, str):
            try:
                raw = parse_duration(raw)
            except InvalidInputError as exc:
                raise self.refuse(where, str(exc)) from None
        if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
            raise self.refuse(
                where, f'must be seconds from {low} to {high}, or a duration such as "5m"'
            )
        return raw
