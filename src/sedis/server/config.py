"""ServeConfig: what ``sedis serve`` listens on, who may do what, and how people sign in.

Read from a TOML file (``--config``) with flags on top. Secrets never sit in
the file itself: the identity's password comes from an environment variable
or a file that the configuration names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from sedis.core.address import Address


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
