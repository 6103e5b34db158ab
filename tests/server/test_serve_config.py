"""load_serve_config: what a good file gives, and every refusal as one line with file:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from eth_account import Account

from sedis.core.address import Address
from sedis.core.errors import ConfigError, InvalidInputError, NotFoundError
from sedis.server.config import (
    DEFAULT_ACTION_ROLES,
    Role,
    ServeConfig,
    is_loopback,
    load_serve_config,
    parse_listen,
    read_password,
)

ADMIN = Account.create().address
OPERATOR = Account.create().address
VIEWER = Account.create().address

GOOD = f"""\
# a server
[server]
listen = "127.0.0.1:9000"
public_url = "https://sedis.example:8443/"
tls_cert = "tls/cert.pem"
tls_key = "/etc/sedis/key.pem"
anonymous_read = true
chain_id = 31337
nonce_ttl = "2m"
session_ttl = 3600
sign_in_per_minute = 5
trusted_proxies = ["10.0.0.1", "10.8.0.0/16"]

[identity]
name = "server"
password_file = "secret/password"

[roles]
admin = ["{ADMIN}"]
operator = [
    "{OPERATOR}",
]
viewer = "{VIEWER}"

[actions]
status = "admin"
share = "operator"

[watch]
config = "watch.toml"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.toml"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(InvalidInputError) as caught:
        load_serve_config(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    return message[len(str(path)) + 1 :]


def test_a_full_configuration(tmp_path: Path) -> None:
    config = load_serve_config(write(tmp_path, GOOD))
    assert (config.host, config.port) == ("127.0.0.1", 9000)
    assert config.public_url == "https://sedis.example:8443"
    assert config.origin == "https://sedis.example:8443"
    assert config.tls_cert == tmp_path / "tls" / "cert.pem"
    assert config.tls_key == Path("/etc/sedis/key.pem") and config.tls
    assert config.anonymous_read and config.chain_id == 31337
    assert (config.nonce_ttl, config.session_ttl, config.sign_in_per_minute) == (120, 3600, 5)
    assert config.trusted_proxies == ("10.0.0.1/32", "10.8.0.0/16")
    assert config.identity == "server" and config.password_env is None
    assert config.password_file == tmp_path / "secret" / "password"
    assert config.roles == {
        Address.parse(ADMIN): Role.admin,
        Address.parse(OPERATOR): Role.operator,
        Address.parse(VIEWER): Role.viewer,
    }
    assert config.action_roles == {
        **DEFAULT_ACTION_ROLES,
        "status": Role.admin,
        "share": Role.operator,
    }
    assert config.watch_config == tmp_path / "watch.toml"


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_serve_config(write(tmp_path, "")) == ServeConfig()


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no serve configuration file at"):
        load_serve_config(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="is a directory, not a file"):
        load_serve_config(tmp_path)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * ((1 << 20) + 1))
    with pytest.raises(InvalidInputError, match="larger than 1 MiB"):
        load_serve_config(big)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"[server]\nlisten = '\xff'\n")
    with pytest.raises(InvalidInputError, match="is UTF-8 text"):
        load_serve_config(binary)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[server]\nlisten = "127.0.0.1:1"\nlisten = 2\n', "3: key 'listen': not valid TOML"),
        ("[bogus]\n", "1: key 'bogus': not a key here"),
        ("server = 1\n", "1: key 'server': must be a table"),
        ("[server]\n\nport = 1\n", "3: key 'server.port': not a key here (known: anonymous_read"),
        ('[identity]\nname = "s"\npassword = "hunter2"\n', "3: key 'identity.password': a pass"),
        ('[server]\nlisten = "nowhere"\n', "2: key 'server.listen': invalid listen address"),
        ('[server]\nlisten = ":8480"\n', "2: key 'server.listen': invalid listen address ':8480':"),
        ('[server]\nlisten = "h:0"\n', "2: key 'server.listen': invalid listen address"),
        ("[server]\nlisten = 8480\n", "2: key 'server.listen': must be a string"),
        ('[server]\nlisten = "a\\nb:1"\n', "2: key 'server.listen': must be one line"),
        ('[server]\npublic_url = "ftp://x"\n', "2: key 'server.public_url': invalid public URL"),
        ('[server]\npublic_url = "https://u@x"\n', "2: key 'server.public_url': invalid public"),
        ('[server]\npublic_url = "https://x/?a=1"\n', "2: key 'server.public_url': invalid"),
        ('[server]\ntls_cert = "c.pem"\n', "1: key 'server.tls_key': TLS needs both"),
        ('[server]\ntls_key = "k.pem"\n', "1: key 'server.tls_cert': TLS needs both"),
        ('[server]\nanonymous_read = "yes"\n', "2: key 'server.anonymous_read': must be true"),
        ("[server]\nchain_id = 0\n", "2: key 'server.chain_id': must be a whole number from 1"),
        ("[server]\nchain_id = true\n", "2: key 'server.chain_id': must be a whole number"),
        ("[server]\nnonce_ttl = 1\n", "2: key 'server.nonce_ttl': must be seconds from 10 to"),
        ('[server]\nnonce_ttl = "soon"\n', "2: key 'server.nonce_ttl': invalid duration 'soon'"),
        ('[server]\nsession_ttl = "90d"\n', "2: key 'server.session_ttl': must be seconds"),
        ("[server]\nsign_in_per_minute = 0\n", "2: key 'server.sign_in_per_minute': must be a"),
        (
            '[server]\ntrusted_proxies = ["proxy.local"]\n',
            "2: key 'server.trusted_proxies': 'proxy.local' is not an IP address or network",
        ),
        (
            '[server]\ntrusted_proxies = "10.0.0.1"\n',
            "2: key 'server.trusted_proxies': must be a list",
        ),
        ('[identity]\nname = "../etc"\n', "2: key 'identity.name': must be an identity's name"),
        ('[identity]\nname = "s"\npassword_env = "A-B"\n', "3: key 'identity.password_env':"),
        (
            '[identity]\nname = "s"\npassword_env = "P"\npassword_file = "f"\n',
            "4: key 'identity.password_file': give password_env or password_file, not both",
        ),
        ('[identity]\npassword_env = "P"\n', "2: key 'identity.password_env': a password needs"),
        ("[roles]\nroot = []\n", "2: key 'roles.root': not a role (known: admin, operator"),
        ("[roles]\nadmin = 5\n", "2: key 'roles.admin': must be a list of at most 10000"),
        ('[roles]\nadmin = ["alice"]\n', "2: key 'roles.admin': 'alice' is not an address"),
        (
            f'[roles]\nadmin = ["{ADMIN}"]\nviewer = ["{ADMIN.lower()}"]\n',
            f"3: key 'roles.viewer': {Address.parse(ADMIN)} is already given the role admin",
        ),
        ('[actions]\ndelete = "admin"\n', "2: key 'actions.delete': not an action (known: "),
        ('[actions]\nstatus = "root"\n', "2: key 'actions.status': must name a role"),
        ('[watch]\nconfig = ""\n', "2: key 'watch.config': must be a string that is not empty"),
        ("[watch]\nfile = 'w.toml'\n", "2: key 'watch.file': not a key here (known: config)"),
    ],
)
def test_every_refusal_names_the_line_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert refused(tmp_path, text).startswith(expected)


def test_a_wrong_checksum_is_refused(tmp_path: Path) -> None:
    bad = "0x" + ADMIN[2:].swapcase()
    if bad[2:] == bad[2:].lower() or bad[2:] == bad[2:].upper():
        pytest.skip("an address with no letters has no checksum to get wrong")
    message = refused(tmp_path, f'\n[roles]\noperator = ["{bad}"]\n')
    assert message.startswith("3: key 'roles.operator':") and "checksum" in message


def test_listen_and_loopback() -> None:
    assert parse_listen("[::1]:8480") == ("::1", 8480)
    assert parse_listen("0.0.0.0:1") == ("0.0.0.0", 1)
    for host in ("127.0.0.1", "127.9.9.9", "::1", "localhost"):
        assert is_loopback(host)
    for host in ("0.0.0.0", "::", "10.0.0.1", "example.com"):
        assert not is_loopback(host)


def test_the_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServeConfig(identity="server", password_env="SERVE_TEST_PASSWORD")
    monkeypatch.delenv("SERVE_TEST_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match=r"from \$SERVE_TEST_PASSWORD, which is not set"):
        read_password(config)
    monkeypatch.setenv("SERVE_TEST_PASSWORD", "s3cret")
    assert read_password(config) == "s3cret"


def test_the_password_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "password"
    config = ServeConfig(identity="server", password_file=path)
    with pytest.raises(ConfigError, match="cannot read the password file"):
        read_password(config)
    path.write_text("first line\nsecond line\n")
    os.chmod(path, 0o640)
    assert read_password(config) == "first line"
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="is readable by everyone"):
        read_password(config)
    path.write_text("\n\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="must hold the password on its first line"):
        read_password(config)
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_password(ServeConfig(identity="server", password_file=Path("/dev/null")))


def test_an_identity_without_a_password_source() -> None:
    with pytest.raises(ConfigError, match="needs its password from --password-env"):
        read_password(ServeConfig(identity="server"))


def test_the_example_configuration_loads() -> None:
    example = Path(__file__).parents[2] / "deploy" / "serve.example.toml"
    config = load_serve_config(example)
    assert (config.host, config.port, config.identity) == ("127.0.0.1", 8480, "sedis-server")
    assert config.action_roles == DEFAULT_ACTION_ROLES and not config.anonymous_read
