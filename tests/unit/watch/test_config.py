"""The watch configuration: defaults, every key read, and each refusal one line naming the
file, the line and the key."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sedis.core.containers import ContainerState, RunningContainer
from sedis.core.errors import ConfigError, InvalidInputError, NotFoundError
from sedis.watch.config import (
    DEFAULT_ENFORCED,
    DEFAULT_ENGINE,
    AlertmanagerTarget,
    WebhookTarget,
    default_config,
    load_watch_config,
    parse_duration,
    parse_listen,
    parse_watch_config,
    read_secret,
)

FULL = """\
engine = "tcp://127.0.0.1:2375"
host = "node-7"
node = "0x00000000000000000000000000000000000000aa"
policy = "policy.toml"
interval = "5m"
poll = "250ms"
lookup_timeout = "2s"
listen = "0.0.0.0:9500"

[enforce]
action = "kill"
states = ["untrusted", "revoked", "error"]
grace = "0s"
dry_run = true
stop_timeout = 3

[[exempt]]
reason = "the debug shell"
containers = ["debug-*"]

[[exempt]]
reason = "infrastructure"
images = ["registry.local/infra/*"]
labels = ["team=sre*"]

[influxdb]
url = "http://127.0.0.1:8086/"
database = "sedis"
buffer = 500

[alerts]
reminder = "6h"
ledger_unreachable_after = "45s"

[[alerts.alertmanager]]
url = "http://127.0.0.1:9093"

[[alerts.webhook]]
url = "https://hooks.example/sedis"
headers = { "X-Token" = "abc" }

[[alerts.email]]
host = "smtp.example"
port = 2525
from = "sedis@example.org"
to = ["ops@example.org", "sec@example.org"]
username = "sedis"
password_env = "SMTP_PASSWORD"
"""


def parse(text: str) -> object:
    return parse_watch_config(text, "watch.toml", {})


def refusal(text: str) -> str:
    with pytest.raises(InvalidInputError) as caught:
        parse_watch_config(text, "watch.toml", {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_defaults() -> None:
    config = default_config({})
    assert config.engine == DEFAULT_ENGINE == "unix:///var/run/docker.sock"
    assert config.interval == 60.0 and config.poll == 0.5
    assert config.listen == ("127.0.0.1", 9464)
    assert config.enforce.action is None
    assert config.enforce.states == DEFAULT_ENFORCED
    assert ContainerState.ERROR not in config.enforce.states
    assert config.enforce.grace == 30.0 and not config.enforce.dry_run
    assert config.influxdb is None and not config.alerts.any
    assert parse_watch_config("", "watch.toml", {}) == config.__class__(source="watch.toml")


def test_docker_host_is_the_engine_when_no_key_names_one() -> None:
    env = {"DOCKER_HOST": "tcp://10.0.0.5:2375"}
    assert default_config(env).engine == "tcp://10.0.0.5:2375"
    assert parse_watch_config("", "w", env).engine == "tcp://10.0.0.5:2375"
    named = parse_watch_config('engine = "unix:///run/podman.sock"', "w", env)
    assert named.engine == "unix:///run/podman.sock"


def test_every_key_is_read(tmp_path: Path) -> None:
    path = tmp_path / "watch.toml"
    path.write_text(FULL)
    config = load_watch_config(path, {})
    assert config.source == str(path)
    assert config.engine == "tcp://127.0.0.1:2375"
    assert config.host == "node-7"
    assert config.node == "0x00000000000000000000000000000000000000aa"
    assert config.policy == tmp_path / "policy.toml"
    assert (config.interval, config.poll, config.lookup_timeout) == (300.0, 0.25, 2.0)
    assert config.listen == ("0.0.0.0", 9500)
    enforce = config.enforce
    assert enforce.action == "kill" and enforce.dry_run and enforce.grace == 0.0
    assert enforce.stop_timeout == 3
    assert enforce.states == {
        ContainerState.UNTRUSTED,
        ContainerState.REVOKED,
        ContainerState.ERROR,
    }
    shell, infra = config.exemptions
    assert (shell.reason, shell.containers, shell.line) == ("the debug shell", ("debug-*",), 17)
    assert infra.images == ("registry.local/infra/*",) and infra.labels == (("team", "sre*"),)
    assert infra.line == 21
    running = RunningContainer("id", "web", "registry.local/infra/dns:1", "sha256:" + "a" * 64)
    assert not infra.matches(running)  # no label
    labelled = RunningContainer(
        "id", "web", "registry.local/infra/dns:1", "sha256:" + "a" * 64, labels=(("team", "sre"),)
    )
    assert infra.matches(labelled)
    assert config.influxdb is not None
    assert config.influxdb.url == "http://127.0.0.1:8086"
    assert config.influxdb.database == "sedis" and config.influxdb.buffer == 500
    alerts = config.alerts
    assert alerts.reminder == 6 * 3600 and alerts.ledger_unreachable_after == 45
    assert alerts.alertmanager == (AlertmanagerTarget("http://127.0.0.1:9093"),)
    assert alerts.webhook == (WebhookTarget("https://hooks.example/sedis", (("X-Token", "abc"),)),)
    (mail,) = alerts.email
    assert (mail.host, mail.port, mail.sender) == ("smtp.example", 2525, "sedis@example.org")
    assert mail.recipients == ("ops@example.org", "sec@example.org")
    assert mail.username == "sedis" and mail.password_env == "SMTP_PASSWORD"
    assert mail.starttls


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('interval = "soon"', "watch.toml:1: key 'interval': invalid duration 'soon'"),
        ("interval = 0", "watch.toml:1: key 'interval': invalid duration '0s': it must be more"),
        ('poll = "2w"', "watch.toml:1: key 'poll': invalid duration '2w': at most a week"),
        ("\n\nlisten = 'nowhere'", "watch.toml:3: key 'listen': invalid listen address"),
        ('engine = "ftp://x"', "watch.toml:1: key 'engine': invalid engine endpoint"),
        ("colour = 'blue'", "watch.toml:1: key 'colour': not a key here"),
        ("[enforce]\naction = 'pause'", "watch.toml:2: key 'action': must be stop or kill"),
        ("[enforce]\nstates = ['trusted']", "watch.toml:2: key 'states': TRUSTED is never"),
        ("[enforce]\nstates = ['exempt']", "watch.toml:2: key 'states': EXEMPT is never"),
        ("[enforce]\nstates = ['sad']", "watch.toml:2: key 'states': unknown container state"),
        ("[enforce]\nstates = []", "watch.toml:2: key 'states': names no state"),
        ("[enforce]\n\ngrace = true", "watch.toml:3: key 'grace': must be a duration"),
        ("[enforce]\nstop_timeout = -1", "watch.toml:2: key 'stop_timeout': must be a whole"),
        ("[[exempt]]\ncontainers = ['x']", "watch.toml:1: key 'reason': is required"),
        ("[[exempt]]\nreason = 'why'", "watch.toml:2: key 'reason': an exemption needs"),
        (
            "[[exempt]]\nreason = 'a'\nimages = ['x']\n[[exempt]]\nreason = 'b'\nimage_ids = ['x']",
            "watch.toml:6: key 'image_ids': 'x' is not sha256:<hex>",
        ),
        ("[[exempt]]\nreason = 'a'\nlabels = ['x']", "watch.toml:3: key 'labels': 'x' is not KEY"),
        ("exempt = 3", "watch.toml:1: key 'exempt': must be tables of [[exempt]]"),
        ("[influxdb]\ndatabase = 'x'", "watch.toml:1: key 'url': is required"),
        ("[influxdb]\nurl = 'x'\ndatabase = 'x'", "watch.toml:2: key 'url': must be an http"),
        ("[influxdb]\nurl = 'http://i:8086'", "watch.toml:1: key 'database': is required"),
        (
            "[influxdb]\nurl = 'http://i:8086'\norg = 'o'\nbucket = 'b'",
            "watch.toml:3: key 'org': InfluxDB 2.x needs org, bucket and token_env",
        ),
        (
            "[influxdb]\nurl = 'http://i:8086'\ntoken = 'secret'",
            "watch.toml:3: key 'token': a token is never written here",
        ),
        (
            "[[alerts.email]]\nhost = 'h'\nfrom = 'a@b'\nto = ['c@d']\npassword = 'x'",
            "watch.toml:5: key 'password': a password is never written here",
        ),
        (
            "[[alerts.email]]\nhost = 'h'\nfrom = 'a@b'\nto = ['c@d']\npassword_env = 'P'",
            "watch.toml:1: key 'username': is required with a password",
        ),
        (
            "[[alerts.email]]\nhost = 'h'\nfrom = 'a@b'\nto = ['c@d']\nusername = 'u'\n"
            "password_env = 'P'\nstarttls = false",
            "watch.toml:7: key 'starttls': a password is sent only over STARTTLS",
        ),
        (
            "[[alerts.email]]\nhost = 'h'\nfrom = 'a@b'\nto = [\"c\\r\\nBcc: x@y\"]",
            "watch.toml:4: key 'to': each entry must be",
        ),
        (
            "[[alerts.email]]\nhost = 'h'\nfrom = 'a@b'",
            "watch.toml:1: key 'to': names no recipient",
        ),
        (
            "[[alerts.webhook]]\nurl = 'http://h'\n[[alerts.webhook]]\nurl = 'http://h'\n"
            "headers = { 'X-A' = \"1\\r\\nX-B: 2\" }",
            "watch.toml:5: key 'headers': the value of X-A must be one line",
        ),
        ('host = "a\\nb"', "watch.toml:1: key 'host': must be one line"),
        ("interval = ", "watch.toml:1: key 'interval': not valid TOML"),
    ],
)
def test_a_bad_configuration_is_refused_in_one_line_naming_line_and_key(
    text: str, expected: str
) -> None:
    assert refusal(text).startswith(expected)


def test_a_file_that_is_too_large_or_not_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "watch.toml"
    path.write_bytes(b"# " + b"x" * (1 << 20))
    with pytest.raises(InvalidInputError, match="larger than 1 MiB"):
        load_watch_config(path, {})
    path.write_bytes(b"host = '\xff'")
    with pytest.raises(InvalidInputError, match="UTF-8"):
        load_watch_config(path, {})
    with pytest.raises(NotFoundError, match="no watch configuration file at"):
        load_watch_config(tmp_path / "missing.toml", {})
    with pytest.raises(ConfigError, match="is a directory"):
        load_watch_config(tmp_path, {})


def test_too_many_exemptions_are_refused_in_time_linear_in_the_file() -> None:
    text = "".join(f"[[exempt]]\nreason = 'r'\ncontainers = ['c{i}']\n" for i in range(1001))
    started = time.monotonic()
    assert "at most 1000" in refusal(text)
    print(f"1001 exemptions refused in {time.monotonic() - started:.3f} s")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("0.5s", 0.5), ("30s", 30), ("5m", 300), ("6h", 21600), ("1w", 604800)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_zero_is_a_duration_only_where_it_may_be() -> None:
    assert parse_duration("0s", zero=True) == 0
    with pytest.raises(InvalidInputError, match="more than zero"):
        parse_duration("0s")


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    assert parse_listen(":9464") == ("", 9464)
    with pytest.raises(InvalidInputError):
        parse_listen("127.0.0.1:99999")
    assert parse("listen = 'off'") is not None
    assert parse_watch_config("listen = 'off'", "w", {}).listen is None


def test_secrets_come_from_the_environment_or_a_file_and_never_reach_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCH_TEST_SECRET", "s3cret")
    assert read_secret("WATCH_TEST_SECRET", None, "SMTP password") == "s3cret"
    monkeypatch.delenv("WATCH_TEST_SECRET")
    with pytest.raises(ConfigError, match=r"from \$WATCH_TEST_SECRET, which is not set"):
        read_secret("WATCH_TEST_SECRET", None, "SMTP password")
    secret = tmp_path / "token"
    secret.write_text("t0ken\n")
    assert read_secret(None, secret, "InfluxDB token") == "t0ken"
    secret.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        read_secret(None, secret, "InfluxDB token")
    assert read_secret(None, None, "x") is None
    assert "t0ken" not in os.environ.values()


def test_the_example_in_the_documentation_is_a_valid_configuration() -> None:
    import sedis.watch.config as module

    assert module.__doc__ is not None
    lines = [line[4:] for line in module.__doc__.splitlines() if line.startswith("    ")]
    config = parse_watch_config("\n".join(lines), "example", {})
    assert config.enforce.action == "stop" and config.enforce.dry_run
    assert config.exemptions[0].containers == ("debug-*",)
    assert config.alerts.email[0].password_env == "SEDIS_SMTP_PASSWORD"
